"""Adapter that lets the model store record its events in the processing log."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("faceguard")


class LogEventRecorder:
    """Implements ``registry.EventRecorder`` by writing ``EventRecord``s to a ``LogWriter``."""

    def __init__(self, writer, *, actor_default: str = "system") -> None:
        self.writer = writer
        self.actor_default = actor_default

    def record_event(self, *, kind: str, actor: str, from_version: str | None, to_version: str | None,
                     reason: str, evidence: dict[str, Any]) -> None:
        from faceguard.log import EventRecord

        self.writer.write(EventRecord(kind=kind, actor=actor or self.actor_default, from_version=from_version,
                                      to_version=to_version, reason=reason, evidence=evidence))
        # Model events are rare and operators look for them at once: do not wait for the
        # periodic ingest.
        try:
            self.writer.ingest_now()
        except Exception:  # noqa: BLE001 - the record is safe in the spool; ingest retries later
            logger.debug("immediate ingest of a model event failed; left to the periodic ingest", exc_info=True)
