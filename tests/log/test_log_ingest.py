from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading

import duckdb
import pytest

from faceguard.log import LogWriter, ingest
from faceguard.log import spool as ingest_module
from faceguard.log.rows import shadow_disagrees
from faceguard.log.spool import host_tag, spool_files

from .conftest import image, review


def _count(settings, table: str = "images") -> int:
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def _offsets(settings) -> dict[str, int]:
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        return dict(con.execute("SELECT spool, offset_bytes FROM spool_offsets").fetchall())
    finally:
        con.close()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _spool(settings, pid: int, name: str = "0" * 32, suffix: str = ".jsonl"):
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    return settings.spool_dir / f"{host_tag()}-{pid}-{name}{suffix}"


def test_each_record_is_ingested_once_however_often_ingest_runs(settings) -> None:
    writer = LogWriter(settings, source="cli", autoingest=False)
    for i in range(3):
        writer.write(image(i))
    assert ingest(settings).inserted == 3
    again = ingest(settings)
    assert (again.inserted, again.lines) == (0, 0)  # nothing re-read: the offset moved with the rows
    writer.write(image(3))
    writer.write(review("img000000", "correct"))
    stats = ingest(settings)
    assert (stats.inserted, stats.lines, stats.duplicates) == (2, 2, 0)
    assert (_count(settings), _count(settings, "reviews")) == (4, 1)
    writer.close()
    assert _count(settings) == 4 and spool_files(settings.spool_dir) == []  # sealed, ingested, deleted


def test_ingest_without_spools_does_not_create_the_database(settings) -> None:
    assert ingest(settings).inserted == 0
    assert not settings.db_path.exists()


def test_a_copied_spool_is_caught_by_the_primary_key(settings) -> None:
    writer = LogWriter(settings, source="cli", autoingest=False)
    for i in range(5):
        writer.write(image(i))
    shutil.copy(writer.spool_path, _spool(settings, _dead_pid(), "f" * 32))
    stats = ingest(settings)
    assert (stats.lines, stats.inserted, stats.duplicates) == (10, 5, 5)
    assert _count(settings) == 5
    writer.close()


def test_a_half_written_line_waits_until_it_is_complete(settings) -> None:
    path = _spool(settings, os.getpid())  # owner alive (us): the line may still be finished
    lines = [image(i).to_json().encode() + b"\n" for i in range(3)]
    path.write_bytes(lines[0] + lines[1] + lines[2][:40])
    assert ingest(settings).inserted == 2
    with open(path, "ab") as fh:
        fh.write(lines[2][40:])
    assert ingest(settings).inserted == 1
    assert _count(settings) == 3 and path.exists()  # a live owner's spool is kept


def test_a_failed_transaction_commits_neither_rows_nor_offset(settings, monkeypatch) -> None:
    writer = LogWriter(settings, source="cli", autoingest=False)
    for i in range(4):
        writer.write(image(i))
        writer.write(review(f"img{i:06d}", "correct"))
    real = ingest_module.insert_lines

    def crash_on_reviews(con, kind, lines):
        if kind == "review":
            raise RuntimeError("power cut")
        return real(con, kind, lines)

    monkeypatch.setattr(ingest_module, "insert_lines", crash_on_reviews)
    with pytest.raises(RuntimeError, match="power cut"):
        ingest(settings)
    monkeypatch.setattr(ingest_module, "insert_lines", real)
    assert _count(settings) == 0 and _offsets(settings) == {}  # images of that batch rolled back too
    stats = ingest(settings)
    assert (stats.inserted, stats.duplicates) == (8, 0)
    writer.close()


def test_a_dead_process_spool_is_ingested_its_torn_tail_set_aside_and_deleted(settings) -> None:
    path = _spool(settings, _dead_pid())
    good = [image(i).to_json().encode() + b"\n" for i in range(3)]
    path.write_bytes(b"".join(good) + b'{"kind":"image","image_id":"torn')
    stats = ingest(settings)
    assert (stats.inserted, stats.rejected, stats.deleted_files) == (3, 1, 1)
    assert not path.exists() and _offsets(settings) == {}
    rejected = (settings.spool_dir / "rejected" / path.name).read_bytes()
    assert b'"image_id":"torn' in rejected


def test_an_unreadable_line_is_set_aside_and_the_rest_ingested(settings) -> None:
    path = _spool(settings, os.getpid(), suffix=".jsonl.done")
    path.write_bytes(image(1).to_json().encode() + b"\nnot json at all\n" + b'{"kind":"image"}\n'
                     + image(2).to_json().encode() + b"\n")
    stats = ingest(settings)
    assert (stats.inserted, stats.rejected, stats.deleted_files) == (2, 2, 1)
    assert len((settings.spool_dir / "rejected" / f"{path.name.split('.jsonl')[0]}.jsonl").read_bytes().splitlines()) == 2


def test_rotated_spools_are_all_ingested(settings) -> None:
    writer = LogWriter(settings, source="batch", autoingest=False, max_spool_bytes=2000)
    for i in range(30):
        writer.write(image(i))
    assert len(spool_files(settings.spool_dir)) > 3
    ingest(settings)
    assert len(spool_files(settings.spool_dir)) == 1  # only the live one is left
    writer.close()
    assert _count(settings) == 30 and spool_files(settings.spool_dir) == []


def test_concurrent_ingests_in_threads_insert_each_record_once(settings) -> None:
    writer = LogWriter(settings, source="batch", autoingest=False)
    errors: list[BaseException] = []
    results: list[int] = []

    def run() -> None:
        try:
            for _ in range(5):
                results.append(ingest(settings).inserted)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    for i in range(500):
        writer.write(image(i))
    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(500, 1000):
        writer.write(image(i))
    for t in threads:
        t.join()
    writer.close()
    assert errors == []
    assert sum(results) + 0 <= 1000 and _count(settings) == 1000


@pytest.mark.parametrize(
    ("boxes", "shadow", "disagree"),
    [
        ([], [], False),
        ([{"x": 0, "y": 0, "w": 10, "h": 10}], [{"x": 1, "y": 1, "w": 10, "h": 10}], False),
        ([{"x": 0, "y": 0, "w": 10, "h": 10}], [{"x": 8, "y": 8, "w": 10, "h": 10}], True),
        ([{"x": 0, "y": 0, "w": 10, "h": 10}], [], True),
        ([], [{"x": 0, "y": 0, "w": 10, "h": 10}], True),
    ],
)
def test_shadow_disagreement_is_an_unmatched_box_on_either_side(boxes, shadow, disagree) -> None:
    assert shadow_disagrees(boxes, shadow) is disagree
