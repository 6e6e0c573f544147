"""BlazeFace through MediaPipe Tasks ``FaceDetector``: the only module that imports mediapipe.

MediaPipe task objects are not safe to share between threads that call ``detect`` at once,
so each thread gets its own ``FaceDetector`` built from the same verified model bytes (a
detector costs ~1 MB and a few ms to create). Results are converted to ``Detections`` once,
here.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import weakref
from dataclasses import dataclass

import numpy as np

from faceguard.detections import Detections
from faceguard.errors import DetectionError, ModelLoadError

# mediapipe logs through absl/glog to stderr; keep the CLI's output readable
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import mediapipe as mp  # noqa: E402
from mediapipe.tasks.python import BaseOptions  # noqa: E402
from mediapipe.tasks.python import vision  # noqa: E402


# Live detectors, closed at interpreter exit. MediaPipe closes a task through a thread pool
# that Python shuts down before ``atexit`` handlers run, so its own __del__ at exit prints a
# traceback; closing from a threading-shutdown hook (run before the pools stop) avoids it.
_LIVE: "weakref.WeakSet[BlazeFaceDetector]" = weakref.WeakSet()


def _close_all() -> None:
    for det in list(_LIVE):
        det.close()


_register = getattr(threading, "_register_atexit", None)
(_register or atexit.register)(_close_all)


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence file descriptor 2 while LiteRT starts up.

    LiteRT prints dozens of INFO/WARNING lines from C++ when a model is loaded and on the first
    inference (its log level is not settable from Python), which buries the CLI's own messages.
    Python-level writes to sys.stderr are unaffected only if they don't happen in this short
    window, hence the lock and the narrow scope.
    """
    with _STDERR_LOCK:
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 (some embedded runners): nothing to silence
            yield
            return
        try:
            with open(os.devnull, "wb") as devnull:
                os.dup2(devnull.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@dataclass(frozen=True, kw_only=True)
class BlazeFaceOptions:
    min_confidence: float
    nms_iou: float = 0.3


def from_mediapipe(result, width: int, height: int) -> Detections:
    """Convert a ``FaceDetectorResult`` to ``Detections`` in pixel coordinates."""
    dets = result.detections
    if not dets:
        return Detections.empty()
    xyxy = np.empty((len(dets), 4), np.float32)
    conf = np.empty(len(dets), np.float32)
    kps = []
    for i, d in enumerate(dets):
        b = d.bounding_box
        xyxy[i] = (b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height)
        conf[i] = d.categories[0].score if d.categories else 0.0
        kps.append([(k.x * width, k.y * height) for k in (d.keypoints or [])])
    keypoints = None
    if kps and all(len(k) == len(kps[0]) and len(k) for k in kps):
        keypoints = np.asarray(kps, np.float32)
    return Detections(xyxy=xyxy, confidence=conf, keypoints=keypoints).clipped(width, height)


class BlazeFaceDetector:
    """One BlazeFace model (short or full range) on whole images."""

    def __init__(self, model_bytes: bytes, options: BlazeFaceOptions, *, version: str = "?") -> None:
        self.version = version
        self.options = options
        self._model = bytes(model_bytes)
        self._local = threading.local()
        self._task_list: list = []  # every thread's task, so close() can release them all
        self._lock = threading.Lock()
        self._task()  # fail now, with a clear error, if the runtime refuses the file
        _LIVE.add(self)

    def _task(self):
        task = getattr(self._local, "task", None)
        if task is None:
            opts = vision.FaceDetectorOptions(
                base_options=BaseOptions(model_asset_buffer=self._model),
                min_detection_confidence=self.options.min_confidence,
                min_suppression_threshold=self.options.nms_iou,
            )
            try:
                with _quiet_native_stderr():
                    task = vision.FaceDetector.create_from_options(opts)
                    # the first inference logs memory-alignment notices: do it here, quietly
                    task.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8)))
            except (RuntimeError, ValueError) as exc:
                raise ModelLoadError(self.version, f"MediaPipe refused the model file: {exc}") from exc
            self._local.task = task
            with self._lock:
                self._task_list.append(task)
        return task

    def detect(self, image: np.ndarray) -> Detections:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise DetectionError(self.version, f"expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        mp_image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        try:
            result = self._task().detect(mp_image)
        except RuntimeError as exc:
            raise DetectionError(self.version, str(exc).splitlines()[0]) from exc
        return from_mediapipe(result, w, h)

    def close(self) -> None:
        with self._lock:
            for task in self._task_list:
                try:
                    with _quiet_native_stderr():
                        task.close()
                except Exception:  # noqa: BLE001 - closing at shutdown must not mask the real error
                    task._handle = None  # so MediaPipe's __del__ does not try again
            self._task_list.clear()
        self._local = threading.local()

    def __del__(self) -> None:  # close explicitly so MediaPipe's own __del__ never runs at exit
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
