"""Traffic split between the stable version and a canary.

The split is registry state (``ModelStore.state().canary``), read for every image, so
``faceguard rollout start`` in one process changes the traffic of every running process
without a restart. Assignment hashes the input bytes' sha256, so the same image always
meets the same version.
"""

from __future__ import annotations

from faceguard.config import Settings
from faceguard.pipeline import Assignment, Variant
from faceguard.registry import ModelStore


def bucket(key: str, salt: str = "") -> float:
    """A stable position in [0, 100) for a hex key (the input's sha256)."""
    import hashlib

    digest = hashlib.sha256((salt + key).encode()).digest() if salt else bytes.fromhex(key[:16].ljust(16, "0"))
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


class CanaryRouter:
    """Sends ``canary.percent`` % of inputs to the canary; on a share of those the stable
    version runs as a shadow (its boxes are compared, and blurred too unless disabled)."""

    def __init__(self, store: ModelStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def assign(self, key: str) -> Assignment:
        current = self.store.current()
        state = self.store.state()
        canary = state.canary
        if canary is None or canary.version == current or canary.version in state.quarantined:
            return Assignment(current, Variant.STABLE)
        if bucket(key) < canary.percent:
            shadow = current if bucket(key, "shadow") < self.settings.rollout.shadow_rate * 100 else None
            return Assignment(canary.version, Variant.CANARY, shadow_version=shadow)
        return Assignment(current, Variant.STABLE)
