"""The model store: versions on disk, the current pointer, rollout state, quarantine, prune.

Layout of the store root (``FACEGUARD_MODELS``, default ``./models``)::

    <version>/                  one folder per version (see manifest.py)
    current -> <version>        symlink; replaced atomically with os.replace, so a crash
                                mid-switch leaves the old or the new target, never a broken one
    registry_state.json         canary split, quarantined versions, history of stable versions;
                                written to a temp file and renamed
    .registry.lock              inter-process lock for read-modify-write of the two above

Nothing here is cached in memory between calls: a running app or batch job asks the store for
the current version for every image, which is how a switch reaches it without a restart
(readlink costs microseconds). Every change is reported to an ``EventRecorder`` (the
processing log) with who, when, from, to and why.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from filelock import FileLock

from faceguard.errors import (
    ChecksumMismatchError,
    InvalidVersionError,
    ManifestError,
    ModelError,
    PruneRefusedError,
    QuarantinedError,
    VersionNotFoundError,
)
from faceguard.registry.manifest import MANIFEST_NAME, Manifest, Version, sha256_file

CURRENT = "current"
STATE = "registry_state.json"
LOCK = ".registry.lock"


class EventRecorder(Protocol):
    """Where model events go (the processing log implements this)."""

    def record_event(
        self, *, kind: str, actor: str, from_version: str | None, to_version: str | None,
        reason: str, evidence: dict[str, Any],
    ) -> None: ...


@dataclass(frozen=True)
class Canary:
    """A running canary: the version, its share of traffic in % and who started it when."""

    version: str
    percent: float
    started_at: str
    actor: str
    reason: str = ""


@dataclass(frozen=True)
class RegistryState:
    """The contents of ``registry_state.json``."""

    canary: Canary | None = None
    quarantined: dict[str, dict[str, str]] = field(default_factory=dict)
    stable_history: tuple[str, ...] = ()  # prod versions in the order they became current

    def to_json(self) -> str:
        d = asdict(self)
        d["stable_history"] = list(self.stable_history)
        return json.dumps(d, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "RegistryState":
        d = json.loads(text)
        canary = Canary(**d["canary"]) if d.get("canary") else None
        return cls(canary=canary, quarantined=dict(d.get("quarantined") or {}),
                   stable_history=tuple(d.get("stable_history") or ()))


@dataclass(frozen=True)
class SwitchEvent:
    """A change of the current version, as returned by ``use`` and ``rollback``."""

    kind: str
    actor: str
    from_version: str | None
    to_version: str
    reason: str
    at: str


class ModelStore:
    """Versioned models under one folder. Construct with ``ModelStore(root)`` or
    ``ModelStore.from_settings(settings)``; pass it where needed (no global current model)."""

    def __init__(self, root: Path, *, recorder: EventRecorder | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.root = Path(root)
        self.recorder = recorder
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        if not self.root.is_dir():
            raise ModelError("<store>", f"model folder {self.root} does not exist")

    @classmethod
    def from_settings(cls, settings, *, recorder: EventRecorder | None = None) -> "ModelStore":
        return cls(settings.models, recorder=recorder)

    # -- reading ---------------------------------------------------------------------------------
    def versions(self) -> list[str]:
        """All version folders with a manifest, oldest first (by version number)."""
        found = []
        for p in self.root.iterdir():
            if p.is_dir() and not p.is_symlink() and (p / MANIFEST_NAME).exists():
                try:
                    found.append(Version.parse(p.name))
                except InvalidVersionError:
                    continue  # stray folders are not versions; `verify` reports them
        return [str(v) for v in sorted(found)]

    def path(self, version: str) -> Path:
        """The version's folder; ``InvalidVersionError`` / ``VersionNotFoundError`` otherwise."""
        Version.parse(version)
        p = self.root / version
        if not (p / MANIFEST_NAME).exists():
            raise VersionNotFoundError(version, f"not in the model store {self.root}")
        return p

    def manifest(self, version: str) -> Manifest:
        """The version's validated manifest (the model file is not checked; see ``verify``)."""
        return Manifest.read(self.path(version))

    def verify(self, version: str) -> Manifest:
        """Validate the manifest and the model file's sha256; return the manifest."""
        manifest, model = self._manifest_and_model_file(version)
        if not model.is_file():
            raise ManifestError(version, "model_file", f"{model} does not exist")
        _check_sha256(manifest, model, sha256_file(model))
        return manifest

    def load(self, version: str) -> tuple[Manifest, bytes]:
        """Manifest and model bytes, checked against the manifest's sha256.

        The checked bytes are the ones handed to the runtime, so the file cannot change
        between the check and the load.
        """
        manifest, model = self._manifest_and_model_file(version)
        try:
            data = model.read_bytes()
        except OSError as exc:
            raise ManifestError(version, "model_file", f"cannot read {model}: {exc.strerror}") from exc
        _check_sha256(manifest, model, hashlib.sha256(data).hexdigest())
        return manifest, data

    def _manifest_and_model_file(self, version: str) -> tuple[Manifest, Path]:
        folder = self.path(version)
        manifest = Manifest.read(folder)
        return manifest, folder / manifest.model_file

    def current(self) -> str:
        """The version the ``current`` symlink points to (read from disk on every call)."""
        link = self.root / CURRENT
        try:
            target = os.readlink(link)
        except FileNotFoundError as exc:
            raise VersionNotFoundError("current", f"{link} does not exist; run `faceguard models use VERSION`") from exc
        except OSError as exc:
            raise ModelError("current", f"{link} is not a symlink: {exc.strerror}") from exc
        return Path(target).name

    def state(self) -> RegistryState:
        """Canary, quarantine and stable history; the empty state when none was written yet."""
        p = self.root / STATE
        try:
            return RegistryState.from_json(p.read_text())
        except FileNotFoundError:
            return RegistryState()
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ModelError("<store>", f"{p} is corrupt: {exc}") from exc

    def is_quarantined(self, version: str) -> bool:
        return version in self.state().quarantined

    def previous_stable(self) -> str | None:
        """The last prod version that was current before the current one and still exists."""
        current = self.current()
        state = self.state()  # read once: is_quarantined() would reread the file per version
        candidates = [v for v in self.versions() if v != current and v not in state.quarantined]
        for v in reversed(state.stable_history):
            if v in candidates:
                return v
        stable = [v for v in candidates if Version.parse(v).is_stable]
        return stable[-1] if stable else None

    # -- changing --------------------------------------------------------------------------------
    def _lock(self) -> FileLock:
        return FileLock(str(self.root / LOCK), timeout=30)

    def _write_state(self, state: RegistryState) -> None:
        tmp = self.root / f".{STATE}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(state.to_json())
        os.replace(tmp, self.root / STATE)

    def update_state(self, change: Callable[[RegistryState], RegistryState]) -> RegistryState:
        """Read-modify-write of the registry state under the inter-process lock."""
        with self._lock():
            new = change(self.state())
            self._write_state(new)
            return new

    def record_event(self, kind: str, actor: str, from_v: str | None, to_v: str | None, reason: str,
                     evidence: dict[str, Any] | None = None) -> None:
        """Report a model event (switch, canary, rollback, ...) to the store's recorder, if any:
        the one path rollout, guard and the store itself use."""
        if self.recorder is not None:
            self.recorder.record_event(kind=kind, actor=actor, from_version=from_v, to_version=to_v,
                                       reason=reason, evidence=evidence or {})

    def _point_current(self, version: str) -> None:
        tmp = self.root / f".{CURRENT}.{uuid.uuid4().hex}.tmp"
        os.symlink(version, tmp)
        os.replace(tmp, self.root / CURRENT)  # atomic on POSIX: old or new, never neither
        for stray in self.root.glob(f".{CURRENT}.*.tmp"):
            stray.unlink(missing_ok=True)  # left by a crash between symlink() and replace()

    def use(self, version: str, *, actor: str, reason: str, force: bool = False,
            kind: str = "switch", evidence: dict[str, Any] | None = None) -> SwitchEvent:
        """Make ``version`` current after verifying it. Quarantined versions need ``force``."""
        self.verify(version)  # a version whose file fails its checksum never becomes current
        with self._lock():
            state = self.state()
            if version in state.quarantined and not force:
                why = state.quarantined[version].get("reason", "")
                raise QuarantinedError(version, f"quarantined after a rollback ({why}); use --force with a reason to override")
            try:
                old = self.current()
            except ModelError:
                old = None
            self._point_current(version)
            history = list(state.stable_history)
            if old and Version.parse(old).is_stable and (not history or history[-1] != old):
                history.append(old)
            if Version.parse(version).is_stable:
                history.append(version)
            quarantined = dict(state.quarantined)
            if force:
                quarantined.pop(version, None)
            self._write_state(RegistryState(canary=state.canary, quarantined=quarantined,
                                            stable_history=tuple(_dedupe_tail(history))))
        event = SwitchEvent(kind=kind, actor=actor, from_version=old, to_version=version,
                            reason=reason, at=self._clock().isoformat())
        self.record_event(kind, actor, old, version, reason, evidence)
        return event

    def rollback(self, to: str | None = None, *, actor: str, reason: str,
                 evidence: dict[str, Any] | None = None, quarantine: str | None = None) -> SwitchEvent:
        """Switch back to a retained stable version (default: the previous stable one).

        ``quarantine`` names a version (usually the failed one) to mark so nothing re-promotes
        it automatically.
        """
        target = to or self.previous_stable()
        if target is None:
            raise ModelError(self.current(), "no other stable version to roll back to")
        if not Version.parse(target).is_stable:
            raise ModelError(target, "rollback goes to a stable (-prod) version only")
        if quarantine:
            self.quarantine(quarantine, reason=reason, actor=actor)
        return self.use(target, actor=actor, reason=reason, kind="rollback", evidence=evidence)

    def quarantine(self, version: str, *, reason: str, actor: str) -> None:
        """Mark ``version`` so nothing serves it automatically (stops it if it is the canary)."""
        def change(s: RegistryState) -> RegistryState:
            q = dict(s.quarantined)
            q[version] = {"reason": reason, "at": self._clock().isoformat(), "actor": actor}
            canary = None if (s.canary and s.canary.version == version) else s.canary
            return RegistryState(canary=canary, quarantined=q, stable_history=s.stable_history)

        self.update_state(change)
        self.record_event("quarantine", actor, version, None, reason)

    def add_version(self, manifest: Manifest, model_file: Path, *, extra_files: Iterator[Path] = ()) -> Path:
        """Create a version folder from a model file (copied) and a manifest (written)."""
        dest = self.root / manifest.model_version
        if dest.exists():
            raise ModelError(manifest.model_version, f"{dest} already exists")
        tmp = self.root / f".{manifest.model_version}.{uuid.uuid4().hex}.tmp"
        tmp.mkdir()
        shutil.copyfile(model_file, tmp / manifest.model_file)
        for extra in extra_files:
            shutil.copyfile(extra, tmp / Path(extra).name)
        if sha256_file(tmp / manifest.model_file) != manifest.sha256:
            shutil.rmtree(tmp)
            raise ChecksumMismatchError(manifest.model_version, "the copied model file does not match the manifest sha256")
        (tmp / MANIFEST_NAME).write_text(manifest.to_json())
        os.replace(tmp, dest)
        return dest

    def write_manifest(self, manifest: Manifest) -> None:
        """Replace a version's manifest atomically (e.g. to record evaluation figures)."""
        dest = self.path(manifest.model_version)
        tmp = dest / f".{MANIFEST_NAME}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(manifest.to_json())
        os.replace(tmp, dest / MANIFEST_NAME)

    def protected(self, keep_stable: int = 2) -> dict[str, str]:
        """Versions prune must keep, with the reason for each."""
        keep: dict[str, str] = {}
        current = self.current()
        keep[current] = "current"
        prev = self.previous_stable()
        if prev:
            keep.setdefault(prev, "previous stable")
        state = self.state()
        if state.canary:
            keep.setdefault(state.canary.version, "canary")
        stable = [v for v in self.versions() if Version.parse(v).is_stable]
        for v in stable[-max(keep_stable, 2):]:
            keep.setdefault(v, "newest stable")
        cur = Version.parse(current)
        for v in self.versions():
            if not Version.parse(v).is_stable and Version.parse(v) > cur and v not in state.quarantined:
                keep.setdefault(v, "candidate newer than current")
        return keep

    def prune(self, versions: list[str] | None = None, *, keep_stable: int = 2, dry_run: bool = False,
              actor: str = "cli", reason: str = "prune") -> list[str]:
        """Remove old versions. Never removes the current, the previous stable, the canary or
        the ``keep_stable`` (at least two) newest stable versions. Returns what was (or would be)
        removed. Naming a protected version raises PruneRefusedError."""
        with self._lock():
            protected = self.protected(keep_stable)
            if versions:
                for v in versions:
                    self.path(v)
                    if v in protected:
                        raise PruneRefusedError(v, f"it is the {protected[v]} version")
                doomed = list(versions)
            else:
                doomed = [v for v in self.versions() if v not in protected]
            if not dry_run:
                for v in doomed:
                    trash = self.root / f".{v}.{uuid.uuid4().hex}.deleting"
                    os.replace(self.root / v, trash)  # vanishes from versions() atomically
                    shutil.rmtree(trash)
        if not dry_run:
            for v in doomed:
                self.record_event("prune", actor, v, None, reason)
        return doomed


def _check_sha256(manifest: Manifest, model: Path, actual: str) -> None:
    if actual != manifest.sha256:
        raise ChecksumMismatchError(
            manifest.model_version,
            f"{model.name} has sha256 {actual[:12]}..., manifest says {manifest.sha256[:12]}...; refusing to load it",
        )


def _dedupe_tail(history: list[str]) -> list[str]:
    out: list[str] = []
    for v in history:
        if not out or out[-1] != v:
            out.append(v)
    return out[-50:]
