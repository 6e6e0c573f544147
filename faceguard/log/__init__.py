"""The processing log: what every image, review, model event and alert left behind.

One DuckDB database (``Settings.db_path``) that several processes feed at once without ever
holding it open: each process appends records to its own spool file (``writer``), a short
ingest merges spools into DuckDB exactly once (``spool``), and readers open the file
read-only for one query (``queries`` for figures, ``lookups`` for rows). The schema is built
by numbered migrations (``schema``).

::

    LogWriter.write(record) ──> spool/<host>-<pid>-<uuid>.jsonl ──ingest()──> faceguard.duckdb
                                                                                  │
                                         queries.metrics_by_version(...) <────────┘ (read-only, one query)
"""

from faceguard.log.demo import remove_demo_data, write_demo_data
from faceguard.log.spool import IngestStats, ingest
from faceguard.log.records import (
    AlertAck,
    AlertRecord,
    EvaluationRecord,
    EventKind,
    EventRecord,
    ImageRecord,
    Record,
    ResourceSample,
    ReviewRecord,
    Source,
    Variant,
    Verdict,
    record_from_json,
)
from faceguard.log.schema import LATEST_VERSION, MIGRATIONS, open_for_read, open_for_write
from faceguard.log.writer import LogWriter, ResourceSampler

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "AlertAck",
    "AlertRecord",
    "EvaluationRecord",
    "EventKind",
    "EventRecord",
    "ImageRecord",
    "IngestStats",
    "LogWriter",
    "Record",
    "ResourceSample",
    "ResourceSampler",
    "ReviewRecord",
    "Source",
    "Variant",
    "Verdict",
    "ingest",
    "open_for_read",
    "open_for_write",
    "record_from_json",
    "remove_demo_data",
    "write_demo_data",
]
