"""The detector protocol every model family implements, and a fake for tests."""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import numpy as np

from faceguard.detections import Detections


@runtime_checkable
class Detector(Protocol):
    """Finds faces in one RGB uint8 image of shape (H, W, 3).

    Implementations must be safe to call from several threads at once (each keeps its own
    per-thread runtime state where the runtime is not thread-safe) and must return boxes in
    the pixel coordinates of the image they were given.
    """

    def detect(self, image: np.ndarray) -> Detections: ...

    def close(self) -> None: ...


class FakeDetector:
    """A detector that returns fixed boxes (or runs a function): for tests of everything
    around detection, where the real model would only add time."""

    def __init__(self, result: Detections | Callable[[np.ndarray], Detections] | None = None) -> None:
        self._result = result if result is not None else Detections.empty()
        self.calls = 0

    def detect(self, image: np.ndarray) -> Detections:
        self.calls += 1
        if callable(self._result):
            return self._result(image)
        return self._result

    def close(self) -> None:
        pass
