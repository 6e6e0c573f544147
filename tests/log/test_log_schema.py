from __future__ import annotations

import duckdb
import pytest

from faceguard.errors import SchemaTooNewError
from faceguard.log import LATEST_VERSION, MIGRATIONS, LogWriter, ingest, open_for_write, queries
from faceguard.log.schema import migrate, schema_version

from .conftest import image


def _tables(path) -> set[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    finally:
        con.close()


def test_migrations_are_numbered_in_order() -> None:
    numbers = [n for n, _, _ in MIGRATIONS]
    assert numbers == list(range(1, len(numbers) + 1))
    assert LATEST_VERSION == numbers[-1]


def test_a_fresh_database_gets_every_migration_each_recorded(settings) -> None:
    with open_for_write(settings.db_path) as con:
        rows = con.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    assert rows == [(n, name) for n, name, _ in MIGRATIONS]
    assert {"images", "reviews", "events", "alerts", "alert_acks", "resource_samples", "evaluations",
            "spool_offsets"} <= _tables(settings.db_path)


def test_an_older_database_is_upgraded_and_keeps_its_rows(settings) -> None:
    settings.db_path.parent.mkdir(parents=True)
    con = duckdb.connect(str(settings.db_path))
    assert migrate(con, target=1) == 1
    con.execute(
        "INSERT INTO images (image_id, ts, input_sha256, source, model_version, variant, num_faces, boxes,"
        " processing_ms, stage_ms, status, flagged, union_blur) VALUES"
        " ('old', TIMESTAMPTZ '2024-01-01 00:00:00+00', 'ab', 'cli', 'v1', 'stable', 1, '[]', 5.0, '{}', 'ok', false, false)"
    )
    con.close()
    assert "alerts" not in _tables(settings.db_path)

    status = queries.log_status(settings)  # a reader upgrades it too (briefly opening for write)
    assert status.schema_version == LATEST_VERSION
    assert status.rows["images"] == 1
    assert "alerts" in _tables(settings.db_path)
    with open_for_write(settings.db_path) as con:
        assert schema_version(con) == LATEST_VERSION


def _make_too_new(path) -> None:
    with open_for_write(path) as con:
        con.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', current_timestamp)")


def test_a_newer_database_is_refused_by_writers_readers_and_ingest(settings) -> None:
    _make_too_new(settings.db_path)
    with pytest.raises(SchemaTooNewError) as err:
        with open_for_write(settings.db_path):
            pass
    message = str(err.value)
    assert str(settings.db_path) in message and "99" in message and f"up to {LATEST_VERSION}" in message
    with pytest.raises(SchemaTooNewError):
        queries.metrics_by_version(settings)

    writer = LogWriter(settings, source="cli", autoingest=False)
    writer.write(image(1))  # the request still succeeds: the record waits in the spool
    assert writer.ingest_now() == 0 and isinstance(writer.last_error, SchemaTooNewError)
    writer.close()
    with pytest.raises(SchemaTooNewError):
        ingest(settings)
