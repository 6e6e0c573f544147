"""faceguard: anonymize faces in photos locally, on CPU, with versioned detectors.

The public API (checked by a test)::

    from faceguard import Engine, Settings
    settings = Settings.load()
    with Engine.from_settings(settings) as engine:
        result = engine.process(open("photo.jpg", "rb").read(), name="photo.jpg")
        open("blurred.jpg", "wb").write(result.output)
"""

from faceguard.anonymize import AnonymizeOptions, MaskShape, Mode
from faceguard.config import Settings
from faceguard.detections import Detections
from faceguard.detectors import Detector, FakeDetector, build_detector
from faceguard.errors import FaceguardError
from faceguard.pipeline import Engine, Result, Variant
from faceguard.registry import Manifest, ModelStore, Version

__all__ = [
    "AnonymizeOptions",
    "Detections",
    "Detector",
    "Engine",
    "FaceguardError",
    "FakeDetector",
    "Manifest",
    "MaskShape",
    "Mode",
    "ModelStore",
    "Result",
    "Settings",
    "Variant",
    "Version",
    "build_detector",
]
