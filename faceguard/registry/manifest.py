"""Model versions and their manifests.

On-disk layout of one version (``models/<version>/``)::

    model_manifest.json     this dataclass as JSON
    face_detection.tflite   the model file named by ``model_file`` (or model.onnx, ...)
    LICENSE / NOTICE        licence of the model file, where it has one

The manifest is validated on load: every error names the field. The model file's sha256 is
recorded in the manifest and checked before a version is loaded or made current.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from functools import total_ordering
from pathlib import Path
from typing import Any

from faceguard.errors import InvalidVersionError, ManifestError

MANIFEST_NAME = "model_manifest.json"
_VERSION_RE = re.compile(r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)-(prod|beta|alpha)$")


class Channel(Enum):
    """Release channel in the version name: only ``prod`` versions count as stable."""

    ALPHA = "alpha"
    BETA = "beta"
    PROD = "prod"


@total_ordering
@dataclass(frozen=True)
class Version:
    """A parsed ``v{major}.{minor}.{patch}-{prod|beta|alpha}`` name, ordered by number."""

    major: int
    minor: int
    patch: int
    channel: Channel

    @classmethod
    def parse(cls, name: str) -> "Version":
        """``InvalidVersionError`` unless ``name`` looks like ``v1.2.0-beta``."""
        m = _VERSION_RE.match(name or "")
        if not m:
            raise InvalidVersionError(
                str(name), "version names must look like v{major}.{minor}.{patch}-{prod|beta|alpha}, e.g. v1.2.0-beta"
            )
        return cls(int(m[1]), int(m[2]), int(m[3]), Channel(m[4]))

    @property
    def is_stable(self) -> bool:
        return self.channel is Channel.PROD

    def _key(self) -> tuple:
        order = {Channel.ALPHA: 0, Channel.BETA: 1, Channel.PROD: 2}
        return (self.major, self.minor, self.patch, order[self.channel])

    def __lt__(self, other: "Version") -> bool:
        return self._key() < other._key()

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}-{self.channel.value}"


class Architecture(Enum):
    """Detector families; each maps to a detector class in ``faceguard.detectors``."""

    BLAZEFACE_SHORT = "blazeface_short_range"
    BLAZEFACE_FULL = "blazeface_full_range"
    CENTERFACE = "centerface"


@dataclass(frozen=True, kw_only=True)
class PerformanceBenchmarks:
    avg_inference_time_ms: float | None = None
    cpu_usage_percent: float | None = None
    memory_peak_mb: float | None = None
    # Filled by `faceguard eval` on the reference set (internal-test stage of a release).
    evaluation: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """Everything that describes one model version. Round-trips to ``model_manifest.json``."""

    model_version: str
    created_at: str
    base_architecture: Architecture
    input_size: tuple[int, int]
    confidence_threshold: float
    iou_threshold: float
    target_scenes: tuple[str, ...]
    performance_benchmarks: PerformanceBenchmarks
    model_file: str
    sha256: str
    source: str
    license: str
    anonymizer: dict[str, Any]
    changelog: str
    inference: dict[str, Any] = field(default_factory=dict)  # family-specific options (tiling, scales)
    latency_budget_ms: float | None = None  # overrides the guard/gate latency targets when set

    def __post_init__(self) -> None:
        v = self.model_version
        Version.parse(v)
        try:
            datetime.fromisoformat(self.created_at)
        except (TypeError, ValueError) as exc:
            raise ManifestError(v, "created_at", f"expected an ISO 8601 timestamp, got {self.created_at!r}") from exc
        for name in ("confidence_threshold", "iou_threshold"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0:
                raise ManifestError(v, name, f"expected a number in (0, 1), got {value!r}")
        if (
            len(self.input_size) != 2
            or not all(isinstance(x, int) and x > 0 for x in self.input_size)
        ):
            raise ManifestError(v, "input_size", f"expected [width, height] positive integers, got {self.input_size!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256 or ""):
            raise ManifestError(v, "sha256", f"expected 64 lowercase hex digits, got {self.sha256!r}")
        if not self.model_file or "/" in self.model_file or self.model_file.startswith("."):
            raise ManifestError(v, "model_file", f"expected a plain file name, got {self.model_file!r}")
        for name in ("source", "license", "changelog"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ManifestError(v, name, "must be a non-empty string")
        if self.latency_budget_ms is not None and self.latency_budget_ms <= 0:
            raise ManifestError(v, "latency_budget_ms", f"must be positive, got {self.latency_budget_ms}")

    @property
    def version(self) -> Version:
        return Version.parse(self.model_version)

    # -- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["base_architecture"] = self.base_architecture.value
        d["input_size"] = list(self.input_size)
        d["target_scenes"] = list(self.target_scenes)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, version_hint: str = "?") -> "Manifest":
        """Inverse of ``to_dict``; ``ManifestError`` naming the first missing, unknown or invalid
        field (``version_hint`` names the version when the data does not)."""
        if not isinstance(data, dict):
            raise ManifestError(version_hint, "<root>", "expected a JSON object")
        v = str(data.get("model_version", version_hint))
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]  # type: ignore[misc]
        for name in required:
            if name not in data:
                raise ManifestError(v, name, "missing")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ManifestError(v, unknown[0], "unknown field")
        try:
            arch = Architecture(data["base_architecture"])
        except ValueError as exc:
            allowed = ", ".join(a.value for a in Architecture)
            raise ManifestError(v, "base_architecture", f"expected one of {allowed}, got {data['base_architecture']!r}") from exc
        pb = data["performance_benchmarks"]
        if not isinstance(pb, dict):
            raise ManifestError(v, "performance_benchmarks", "expected an object")
        try:
            bench = PerformanceBenchmarks(**pb)
        except TypeError as exc:
            raise ManifestError(v, "performance_benchmarks", str(exc)) from exc
        for name in ("anonymizer", "inference"):
            if name in data and not isinstance(data[name], dict):
                raise ManifestError(v, name, "expected an object")
        if not isinstance(data["target_scenes"], list):
            raise ManifestError(v, "target_scenes", "expected a list of strings")
        if not isinstance(data["input_size"], list):
            raise ManifestError(v, "input_size", "expected [width, height]")
        fields = dict(data)
        fields.update(
            base_architecture=arch,
            performance_benchmarks=bench,
            input_size=tuple(data["input_size"]),
            target_scenes=tuple(data["target_scenes"]),
        )
        return cls(**fields)

    @classmethod
    def read(cls, directory: Path) -> "Manifest":
        """The manifest in a version folder, which must carry the version's name."""
        path = Path(directory) / MANIFEST_NAME
        hint = Path(directory).name
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ManifestError(hint, "<file>", f"{path} does not exist") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(hint, "<file>", f"{path} is not valid JSON: {exc}") from exc
        manifest = cls.from_dict(data, version_hint=hint)
        if manifest.model_version != hint:
            raise ManifestError(hint, "model_version", f"{manifest.model_version!r} does not match its folder name {hint!r}")
        return manifest

    def with_evaluation(self, evaluation: dict[str, Any], **bench: float) -> "Manifest":
        """A copy recording evaluation figures (and benchmark fields) in ``performance_benchmarks``."""
        pb = dataclasses.replace(self.performance_benchmarks, evaluation=evaluation, **bench)
        return dataclasses.replace(self, performance_benchmarks=pb)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
