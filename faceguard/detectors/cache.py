"""One detector per model version and process, built on first use.

A version's detector is built from sha256-verified bytes the first time an image needs it and
kept for the life of the process; in-flight images hold their ``LoadedModel`` so a switch
never pulls a detector out from under them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from faceguard.detectors import Detector, build_detector
from faceguard.registry import Manifest, ModelStore
from faceguard.registry.manifest import MANIFEST_NAME


@dataclass(frozen=True)
class LoadedModel:
    """A version's manifest with the detector built from it."""

    manifest: Manifest
    detector: Detector

    @property
    def version(self) -> str:
        return self.manifest.model_version


class DetectorCache:
    """One detector per version, built on first use from sha256-verified bytes.

    Keyed by the manifest file's mtime as well, so an edited manifest (new thresholds) is
    picked up without a restart. Thread-safe; a version is built once even if many threads
    ask for it at the same moment.
    """

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self._models: dict[str, tuple[int, LoadedModel]] = {}
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def get(self, version: str) -> LoadedModel:
        """The version's detector, built now if it is new or its manifest changed.

        Raises ``ModelError`` (e.g. ``VersionNotFoundError``, ``ChecksumMismatchError``).
        """
        stamp = (self.store.path(version) / MANIFEST_NAME).stat().st_mtime_ns
        hit = self._models.get(version)
        if hit and hit[0] == stamp:
            return hit[1]
        with self._lock:
            build_lock = self._building.setdefault(version, threading.Lock())
        with build_lock:
            hit = self._models.get(version)
            if hit and hit[0] == stamp:
                return hit[1]
            manifest, model = self.store.load(version)
            loaded = LoadedModel(manifest, build_detector(manifest, model))
            self._models[version] = (stamp, loaded)
            # The replaced detector is not closed: images in flight may still be using it.
            return loaded

    def close(self) -> None:
        """Close every cached detector; the next ``get`` builds afresh."""
        with self._lock:
            for _, loaded in self._models.values():
                loaded.detector.close()
            self._models.clear()
