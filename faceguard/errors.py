"""Every error faceguard raises, in one tree.

The engine raises; it never prints. The CLI and the app turn these into one-line messages
(``str(err)`` is written for a person). Third-party errors are translated where they enter
(``raise X(...) from exc``), so callers only ever catch ``FaceguardError``. The errors that
can fail one image (input, model, detection) carry a class-level ``code``: the status the
processing log records for that image.

::

    FaceguardError
    ├── ConfigError                  a setting has a bad value (names the key)
    ├── InputError                   an input image cannot be used (names the file)
    │   ├── NotAnImageError            bytes are not an image at all
    │   ├── UnsupportedFormatError     an image, but of a format we do not decode
    │   ├── TruncatedImageError        the file ends early / is corrupt
    │   └── TooManyPixelsError         above the configured pixel limit
    ├── OutputError                  the result could not be written (names the file)
    ├── ModelError                   anything about a model version (names the version)
    │   ├── InvalidVersionError        name not v{major}.{minor}.{patch}-{prod|beta|alpha}
    │   ├── ManifestError              manifest missing or a field invalid (names the field)
    │   ├── ChecksumMismatchError      model file sha256 differs from the manifest
    │   ├── VersionNotFoundError       no such version in the store
    │   ├── ModelLoadError             the runtime refused the model file
    │   ├── QuarantinedError           the version was quarantined by a rollback
    │   └── PruneRefusedError          prune would remove a protected version
    ├── DetectionError               a detector failed on one image
    ├── LogError                     the processing log (DuckDB) cannot be used
    │   └── SchemaTooNewError          the database was written by a newer faceguard
    ├── EvaluationError              an evaluation data set is malformed (names the file)
    ├── ReviewError                  a review action cannot be done (names the image)
    └── RolloutError                 canary / promotion / rollback refused (says why)
        └── GateFailedError            promotion gate not met
"""

from __future__ import annotations

from pathlib import Path


class FaceguardError(Exception):
    """Base of every faceguard error."""


class ConfigError(FaceguardError):
    """A setting has an invalid value."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"setting {key!r}: {reason}")


class InputError(FaceguardError):
    """An input image cannot be used."""

    code = "bad_input"

    def __init__(self, source: str | Path | None, reason: str) -> None:
        self.source = str(source) if source is not None else "<bytes>"
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class NotAnImageError(InputError):
    """The bytes are not an image."""

    code = "not_an_image"


class UnsupportedFormatError(InputError):
    """The file is an image of a format faceguard does not read."""

    code = "unsupported_format"


class TruncatedImageError(InputError):
    """The image data ends early or is corrupt."""

    code = "truncated"


class TooManyPixelsError(InputError):
    """The image has more pixels than the configured limit."""

    code = "too_many_pixels"


class OutputError(FaceguardError):
    """An output file could not be written."""

    def __init__(self, target: str | Path, reason: str) -> None:
        self.target = str(target)
        self.reason = reason
        super().__init__(f"{self.target}: {reason}")


class ModelError(FaceguardError):
    """Something is wrong with a model version."""

    code = "model_error"

    def __init__(self, version: str, reason: str) -> None:
        self.version = version
        self.reason = reason
        super().__init__(f"model {version}: {reason}")


class InvalidVersionError(ModelError):
    """A version name does not follow v{major}.{minor}.{patch}-{prod|beta|alpha}."""


class ManifestError(ModelError):
    """The manifest is missing or one of its fields is invalid."""

    def __init__(self, version: str, field: str, reason: str) -> None:
        self.field = field
        super().__init__(version, f"manifest field {field!r}: {reason}")


class ChecksumMismatchError(ModelError):
    """The model file's sha256 differs from the one in the manifest."""


class VersionNotFoundError(ModelError):
    """No such version in the model store."""


class ModelLoadError(ModelError):
    """The inference runtime refused the model file."""


class QuarantinedError(ModelError):
    """The version was quarantined after a rollback and may not be served automatically."""


class PruneRefusedError(ModelError):
    """Pruning this version would leave the store without a protected version."""


class DetectionError(FaceguardError):
    """A detector failed on one image."""

    code = "detector_error"

    def __init__(self, version: str, reason: str) -> None:
        self.version = version
        self.reason = reason
        super().__init__(f"detector {version}: {reason}")


class LogError(FaceguardError):
    """The processing log cannot be used."""


class SchemaTooNewError(LogError):
    """The database was written by a newer faceguard than this one."""


class EvaluationError(FaceguardError):
    """An evaluation data set is malformed."""


class ReviewError(FaceguardError):
    """A review action cannot be done (names the image)."""

    def __init__(self, image_id: str, reason: str) -> None:
        self.image_id = image_id
        self.reason = reason
        super().__init__(f"image {image_id}: {reason}")


class RolloutError(FaceguardError):
    """A canary, promotion or rollback was refused."""


class GateFailedError(RolloutError):
    """The promotion gate is not met."""
