"""Settings: one frozen object, read from ``faceguard.toml`` and ``FACEGUARD_*`` variables.

Precedence (last wins): defaults < ``faceguard.toml`` (in the working directory, or the file
named by ``FACEGUARD_CONFIG``) < environment variables. A top-level key ``k`` is overridden
by ``FACEGUARD_K``; a key ``k`` of section ``[s]`` by ``FACEGUARD_S_K``. Paths given
relative are taken from the working directory, so several instances can run side by side
with different ``FACEGUARD_HOME`` / ``FACEGUARD_DB`` / ``FACEGUARD_MODELS``.

Example ``faceguard.toml``::

    home = "data"
    max_pixels = 100_000_000

    [rollout]
    canary_percent = 5

    [guard]
    max_consecutive_failures = 10
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from faceguard.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class ReviewSettings:
    """Which images are kept for human review, and for how long."""

    sample_rate: float = 0.02  # share of stable traffic kept for review
    canary_sample_rate: float = 1.0  # share of canary/shadow traffic kept (review is how canaries are judged)
    retention_days: float = 7.0
    low_margin: float = 0.15  # detections within this of the threshold are flagged as uncertain


@dataclass(frozen=True, kw_only=True)
class RolloutSettings:
    """Traffic split between the stable version and a canary."""

    canary_percent: float = 5.0
    shadow_rate: float = 0.5  # share of canary traffic on which the stable version also runs
    union_blur: bool = True  # blur the union of both versions' boxes while a canary/shadow runs
    # Internal-test bar a version's latest evaluation must meet before a canary may start.
    min_eval_recall: float = 0.80
    min_eval_small_recall: float = 0.70
    max_eval_fp_per_100: float = 25.0
    # Only evaluations on this data set count for the bar (None: the latest on any data set).
    reference_dataset: str | None = None


@dataclass(frozen=True, kw_only=True)
class GateSettings:
    """Promotion gate: the seed's targets, met on consecutive days."""

    min_recall: float = 0.95
    min_precision: float = 0.90
    max_fp_per_100: float = 0.5
    max_mean_ms: float = 60.0
    days: int = 3
    min_reviewed_per_day: int = 30


@dataclass(frozen=True, kw_only=True)
class GuardSettings:
    """Automatic rollback rules."""

    max_consecutive_failures: int = 10
    max_fp_rate: float = 0.015  # false positives per judged image (see README "Rollback rules")
    fp_window_images: int = 100
    fp_min_images: int = 100  # judged images needed in the window before the rate can trip
    max_mean_ms: float = 100.0  # a version's manifest latency_budget_ms replaces it
    latency_window_minutes: float = 5.0
    min_latency_samples: int = 20
    watch_current: bool = True  # also roll back the current version (to the previous stable one)
    webhook_timeout_s: float = 2.0


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything configurable, resolved once and passed in (never a module global)."""

    home: Path = Path("data")
    db: Path | None = None  # default: home / "faceguard.duckdb"
    models: Path = Path("models")
    max_pixels: int = 100_000_000
    jpeg_quality: int = 90
    admin_password: str | None = None
    reviewer_password: str | None = None  # opens the Review page (the admin password does too)
    webhook_url: str | None = None
    review: ReviewSettings = field(default_factory=ReviewSettings)
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    gate: GateSettings = field(default_factory=GateSettings)
    guard: GuardSettings = field(default_factory=GuardSettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home))
        object.__setattr__(self, "models", Path(self.models))
        object.__setattr__(self, "db", Path(self.db) if self.db is not None else self.home / "faceguard.duckdb")
        if self.max_pixels <= 0:
            raise ConfigError("max_pixels", f"must be positive, got {self.max_pixels}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError("jpeg_quality", f"must be 1..100, got {self.jpeg_quality}")
        if not 0 <= self.rollout.canary_percent <= 100:
            raise ConfigError("rollout.canary_percent", f"must be 0..100, got {self.rollout.canary_percent}")
        if not 0 <= self.rollout.shadow_rate <= 1:
            raise ConfigError("rollout.shadow_rate", f"must be 0..1, got {self.rollout.shadow_rate}")
        if self.gate.days < 1 or self.gate.min_reviewed_per_day < 0:
            raise ConfigError("gate.days", f"need days >= 1 and min_reviewed_per_day >= 0, got {self.gate.days}, "
                                           f"{self.gate.min_reviewed_per_day}")
        if self.guard.max_consecutive_failures < 1 or self.guard.fp_window_images < 1:
            raise ConfigError("guard", "max_consecutive_failures and fp_window_images must be >= 1")

    @property
    def db_path(self) -> Path:
        assert self.db is not None
        return self.db

    @property
    def spool_dir(self) -> Path:
        """Per-process append-only spool files waiting to be ingested into DuckDB."""
        return self.home / "spool"

    @property
    def review_dir(self) -> Path:
        """Images kept for review (only when sampling is on), deleted after retention."""
        return self.home / "review"

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, *, config_file: Path | None = None) -> "Settings":
        """Defaults, then ``faceguard.toml``, then ``FACEGUARD_*`` environment variables."""
        env = os.environ if environ is None else environ
        path = config_file or Path(env.get("FACEGUARD_CONFIG", "faceguard.toml"))
        data: dict[str, Any] = {}
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
        return _build(cls, data, env, prefix="FACEGUARD_", where="")

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def _build(cls: type, data: Mapping[str, Any], env: Mapping[str, str], *, prefix: str, where: str):
    kwargs: dict[str, Any] = {}
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}{key}", "unknown setting")
    for name, f in known.items():
        env_key = f"{prefix}{name.upper()}"
        ftype = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if ftype.endswith("Settings"):
            sub = data.get(name, {})
            if not isinstance(sub, Mapping):
                raise ConfigError(f"{where}{name}", "must be a table")
            kwargs[name] = _build(globals()[ftype], sub, env, prefix=f"{env_key}_", where=f"{where}{name}.")
            continue
        if env_key in env:
            kwargs[name] = _coerce(f"{where}{name}", ftype, env[env_key])
        elif name in data:
            kwargs[name] = _coerce(f"{where}{name}", ftype, data[name])
    return cls(**kwargs)


def _coerce(key: str, ftype: str, value: Any) -> Any:
    try:
        if "Path" in ftype:
            return Path(value) if value not in ("", None) else None
        if ftype.startswith("bool"):
            if isinstance(value, bool):
                return value
            low = str(value).strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"expected true/false, got {value!r}")
        if ftype.startswith("int"):
            return int(str(value).replace("_", ""))
        if ftype.startswith("float"):
            return float(value)
        if ftype.startswith("str"):
            return None if value == "" else str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(key, f"expected {ftype}, got {value!r}") from exc
    return value
