"""Versioned models: manifests and the store (see each module's docstring for the layout)."""

from faceguard.registry.manifest import Architecture, Channel, Manifest, PerformanceBenchmarks, Version, sha256_file
from faceguard.registry.store import Canary, EventRecorder, ModelStore, RegistryState, SwitchEvent

__all__ = [
    "Architecture", "Canary", "Channel", "EventRecorder", "Manifest", "ModelStore",
    "PerformanceBenchmarks", "RegistryState", "SwitchEvent", "Version", "sha256_file",
]
