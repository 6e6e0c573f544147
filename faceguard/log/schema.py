"""The log's schema, built only by numbered migrations.

``MIGRATIONS`` is an ordered list of ``(number, name, sql)``. Opening a database for writing
applies every migration it has not seen, each in its own transaction, and records it in
``schema_migrations``; a database that already has a migration this code does not know (it
was written by a newer faceguard) is refused with ``SchemaTooNewError``.

Layout decisions (the 1M-row benchmark drives them): DuckDB is columnar, so the metric
columns (``ts``, ``model_version``, ``num_faces``, ``processing_ms``, ``status``, ``flagged``)
are plain typed columns and everything only shown, never aggregated (boxes, per-stage
times, evidence) is JSON text. Rows arrive roughly in time order, so DuckDB's per-block
min/max (zone maps) make time-window filters cheap without an explicit index. Ids are unique
but deliberately not PRIMARY KEYs: an ART index over a million random ids costs more on every
ingest and checkpoint than the anti-join by which the ingest skips ids already present (the
second guard, after the spool offsets, against ingesting a record twice). All timestamps
are ``TIMESTAMPTZ`` read in a UTC session.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Iterator

import duckdb

from faceguard.errors import LogError, SchemaTooNewError
from faceguard.log import access

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "images, reviews, events and spool offsets",
        """
        CREATE TABLE images (
            image_id        VARCHAR NOT NULL,   -- unique: ingest skips ids already present
            ts              TIMESTAMPTZ NOT NULL,
            input_sha256    VARCHAR NOT NULL,
            source          VARCHAR NOT NULL,
            model_version   VARCHAR NOT NULL,
            variant         VARCHAR NOT NULL,
            num_faces       INTEGER NOT NULL,
            boxes           VARCHAR NOT NULL,      -- JSON [{x,y,w,h,score}]
            processing_ms   DOUBLE NOT NULL,
            stage_ms        VARCHAR NOT NULL,      -- JSON {stage: ms}
            width           INTEGER,
            height          INTEGER,
            status          VARCHAR NOT NULL,      -- 'ok' or an error code
            error           VARCHAR,
            flagged         BOOLEAN NOT NULL,
            flag_reason     VARCHAR,
            shadow_version  VARCHAR,
            shadow_boxes    VARCHAR,               -- JSON, when a second version ran
            shadow_disagree BOOLEAN,               -- set at ingest, see ingest.shadow_disagrees
            union_blur      BOOLEAN NOT NULL,
            review_path     VARCHAR,
            demo            BOOLEAN NOT NULL DEFAULT false
        );
        CREATE TABLE reviews (
            review_id       VARCHAR NOT NULL,   -- unique: ingest skips ids already present
            ts              TIMESTAMPTZ NOT NULL,
            image_id        VARCHAR NOT NULL,
            reviewer        VARCHAR NOT NULL,
            model_version   VARCHAR NOT NULL,
            verdict         VARCHAR NOT NULL,      -- correct | false_positive | missed
            detection_index INTEGER,
            box             VARCHAR,               -- JSON {x,y,w,h} of a missed face
            demo            BOOLEAN NOT NULL DEFAULT false
        );
        CREATE TABLE events (
            event_id        VARCHAR NOT NULL,   -- unique: ingest skips ids already present
            ts              TIMESTAMPTZ NOT NULL,
            kind            VARCHAR NOT NULL,
            actor           VARCHAR NOT NULL,
            from_version    VARCHAR,
            to_version      VARCHAR,
            reason          VARCHAR NOT NULL,
            evidence        VARCHAR NOT NULL,      -- JSON
            demo            BOOLEAN NOT NULL DEFAULT false
        );
        -- how far each spool file has been ingested; advanced in the same transaction as its rows
        CREATE TABLE spool_offsets (
            spool           VARCHAR PRIMARY KEY,
            offset_bytes    BIGINT NOT NULL,
            updated_ts      TIMESTAMPTZ NOT NULL
        );
        """,
    ),
    (
        2,
        "alerts, acknowledgements, resource samples and evaluations",
        """
        CREATE TABLE alerts (
            alert_id        VARCHAR NOT NULL,   -- unique: ingest skips ids already present
            ts              TIMESTAMPTZ NOT NULL,
            rule            VARCHAR NOT NULL,
            version         VARCHAR,
            message         VARCHAR NOT NULL,
            evidence        VARCHAR NOT NULL,      -- JSON
            demo            BOOLEAN NOT NULL DEFAULT false
        );
        CREATE TABLE alert_acks (
            ack_id          VARCHAR NOT NULL,   -- unique: ingest skips ids already present
            alert_id        VARCHAR NOT NULL,
            ts              TIMESTAMPTZ NOT NULL,
            actor           VARCHAR NOT NULL,
            demo            BOOLEAN NOT NULL DEFAULT false
        );
        CREATE TABLE resource_samples (
            sample_id       VARCHAR NOT NULL,   -- unique: ingest skips ids already present
            ts              TIMESTAMPTZ NOT NULL,
            pid             INTEGER NOT NULL,
            source          VARCHAR NOT NULL,
            cpu_percent     DOUBLE NOT NULL,
            rss_mb          DOUBLE NOT NULL,
            demo            BOOLEAN NOT NULL DEFAULT false
        );
        CREATE TABLE evaluations (
            eval_id         VARCHAR NOT NULL,   -- unique: ingest skips ids already present
            ts              TIMESTAMPTZ NOT NULL,
            model_version   VARCHAR NOT NULL,
            dataset         VARCHAR NOT NULL,
            metrics         VARCHAR NOT NULL,      -- JSON {recall, precision, ap, ...}
            pr_curve        VARCHAR NOT NULL,      -- JSON [[recall, precision, threshold]]
            demo            BOOLEAN NOT NULL DEFAULT false
        );
        """,
    ),
]

LATEST_VERSION = MIGRATIONS[-1][0]

# Tables holding log records, in the order the status page lists them.
RECORD_TABLES = ("images", "reviews", "events", "alerts", "alert_acks", "resource_samples", "evaluations")


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest migration applied (0 for an empty database)."""
    try:
        row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    except duckdb.CatalogException:
        return 0  # no schema_migrations table: nothing applied yet
    return int(row[0]) if row else 0


def check_not_too_new(version: int, db_path: Path | str) -> None:
    """Raise ``SchemaTooNewError`` when the database was migrated by a newer faceguard."""
    if version > LATEST_VERSION:
        raise SchemaTooNewError(
            f"{db_path}: log database is at schema version {version}, but this faceguard only knows "
            f"versions up to {LATEST_VERSION}; upgrade faceguard (or point FACEGUARD_DB elsewhere)"
        )


def migrate(con: duckdb.DuckDBPyConnection, *, db_path: Path | str = "<memory>", target: int | None = None) -> int:
    """Apply pending migrations up to ``target`` (default: all); return the resulting version."""
    target = LATEST_VERSION if target is None else target
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_ts TIMESTAMPTZ NOT NULL)"
    )
    current = schema_version(con)
    check_not_too_new(current, db_path)
    for number, name, sql in MIGRATIONS:
        if current < number <= target:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(sql)
                con.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, current_timestamp)", [number, name]
                )
                con.execute("COMMIT")
            except duckdb.Error as exc:
                con.execute("ROLLBACK")
                raise LogError(f"{db_path}: migration {number} ({name}) failed: {exc}") from exc
            current = number
    return current


@contextlib.contextmanager
def open_for_write(
    db_path: Path | str, *, timeout_s: float = access.DEFAULT_WRITE_TIMEOUT_S, skip_if_busy: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection for one batch, the schema brought up to date first.

    Raises ``SchemaTooNewError`` for a database from a newer faceguard and ``LogError`` when
    the file cannot be opened (after retrying lock conflicts until ``timeout_s``), or at once
    ``WriterBusy`` when ``skip_if_busy`` and another faceguard process is writing.
    """
    path = Path(db_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LogError(f"{path}: cannot create the log directory: {exc}") from exc
    with access.connection(path, read_only=False, timeout_s=timeout_s, skip_if_busy=skip_if_busy) as con:
        migrate(con, db_path=path)
        yield con


@contextlib.contextmanager
def open_for_read(
    db_path: Path | str, *, timeout_s: float = access.DEFAULT_READ_TIMEOUT_S
) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A read-only connection for one query, or ``None`` when there is no database yet.

    A database from an older faceguard is migrated first (briefly opening it for writing);
    one from a newer faceguard raises ``SchemaTooNewError``; DuckDB's errors while reading
    (a damaged file, a failed query in the ``with`` block) come out as ``LogError``.
    """
    path = Path(db_path)
    if not path.exists():
        yield None
        return
    deadline = time.monotonic() + timeout_s
    for _ in range(2):
        with access.connection(path, read_only=True, timeout_s=max(deadline - time.monotonic(), 0.1)) as con:
            try:
                version = schema_version(con)
                check_not_too_new(version, path)
                if version == LATEST_VERSION:
                    yield con
                    return
            except duckdb.Error as exc:  # a damaged file or a failed query: name the file, not DuckDB
                raise LogError(f"{path}: cannot read the log database: {exc}") from exc
        with open_for_write(path, timeout_s=max(deadline - time.monotonic(), 0.1)):
            pass  # migrated; read again
    raise LogError(f"{path}: schema stayed at version {version} after migrating")  # pragma: no cover


def memory_connection() -> duckdb.DuckDBPyConnection:
    """An empty in-memory log: queries on a missing database run here for typed empty results."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    return con
