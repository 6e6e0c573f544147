"""Set-up of the model store, run once by ``make install`` (``faceguard models setup``).

Nothing here downloads: derived model files are built from files in installed wheels, and
every version is verified against its manifest's sha256.
"""

from __future__ import annotations

from typing import Callable, Iterator

from faceguard.config import Settings
from faceguard.errors import FaceguardError
from faceguard.registry.store import ModelStore

# Builders of model files that are derived at set-up rather than committed: version -> builder
# returning a message. Empty while every shipped model file is committed.
BUILDERS: dict[str, Callable[[ModelStore, str], str]] = {}


def prepare(settings: Settings) -> Iterator[str]:
    """Build the derived model files, then verify every version; yields one line per step and
    raises ``FaceguardError`` at the end if any version failed."""
    store = ModelStore.from_settings(settings)
    for version, build in BUILDERS.items():
        yield build(store, version)
    failed = []
    for v in store.versions():
        try:
            store.verify(v)
            yield f"ok      {v}"
        except FaceguardError as exc:
            failed.append(v)
            yield f"FAILED  {v}: {exc}"
    if failed:
        raise FaceguardError(f"{len(failed)} model version(s) failed verification: {', '.join(failed)}")
