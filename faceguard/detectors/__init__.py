"""Detector families behind one protocol, built from a version's manifest.

``build_detector`` maps the manifest's ``base_architecture`` (an Enum) to a builder, so adding
a family is one entry in ``BUILDERS``, not another branch in an if/elif chain.
"""

from __future__ import annotations

from typing import Callable

from faceguard.detectors.base import Detector, FakeDetector
from faceguard.errors import ManifestError, ModelLoadError
from faceguard.registry.manifest import Architecture, Manifest


def _blazeface(manifest: Manifest, model: bytes) -> Detector:
    from faceguard.detectors.blazeface import BlazeFaceDetector, BlazeFaceOptions
    from faceguard.detectors.tiled import TiledDetector, TilingOptions

    tiling = manifest.inference.get("tiling")
    try:  # before the detector is built, so a bad manifest costs nothing
        tiling_options = TilingOptions.from_dict(tiling) if tiling else None
    except (TypeError, ValueError) as exc:
        raise ManifestError(manifest.model_version, "inference", f"tiling: {exc}") from exc
    det: Detector = BlazeFaceDetector(
        model,
        BlazeFaceOptions(min_confidence=manifest.confidence_threshold, nms_iou=manifest.iou_threshold),
        version=manifest.model_version,
    )
    return TiledDetector(det, tiling_options) if tiling_options else det


def _centerface(manifest: Manifest, model: bytes) -> Detector:
    from faceguard.detectors.centerface import CenterFaceDetector, CenterFaceOptions

    try:
        options = CenterFaceOptions.from_manifest(
            threshold=manifest.confidence_threshold, nms_iou=manifest.iou_threshold, inference=manifest.inference
        )
    except (TypeError, ValueError) as exc:
        raise ManifestError(manifest.model_version, "inference", str(exc)) from exc
    return CenterFaceDetector(model, options, version=manifest.model_version)


BUILDERS: dict[Architecture, Callable[[Manifest, bytes], Detector]] = {
    Architecture.BLAZEFACE_SHORT: _blazeface,
    Architecture.BLAZEFACE_FULL: _blazeface,
    Architecture.CENTERFACE: _centerface,
}


def build_detector(manifest: Manifest, model: bytes) -> Detector:
    """A ready detector for one version, from its manifest and its verified model bytes."""
    try:
        builder = BUILDERS[manifest.base_architecture]
    except KeyError:  # an Architecture added to the Enum without a builder
        raise ModelLoadError(manifest.model_version, f"no detector for {manifest.base_architecture.value}") from None
    return builder(manifest, model)


__all__ = ["BUILDERS", "Detector", "FakeDetector", "build_detector"]
