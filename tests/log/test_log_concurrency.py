"""The issue's acceptance test: 4 writer processes x 5,000 records while a reader loops queries."""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module

import duckdb

from faceguard.log import ingest
from faceguard.log.spool import spool_files

from . import workers

WRITERS, PER_WRITER = 4, 5000


def test_four_writers_and_a_reader_lose_nothing_duplicate_nothing_and_see_no_lock_error(settings) -> None:
    ctx = mp.get_context("spawn")
    reports = ctx.Queue()
    stop = ctx.Event()
    start = ctx.Barrier(WRITERS + 1)  # everyone imported and ready: the reader runs while writers write
    reader = ctx.Process(target=workers.reader_process, args=(str(settings.home), stop, reports, start))
    writers = [
        ctx.Process(target=workers.writer_process, args=(str(settings.home), w, PER_WRITER, reports, start))
        for w in range(WRITERS)
    ]
    reader.start()
    for p in writers:
        p.start()
    for p in writers:
        p.join(120)
    stop.set()
    reader.join(60)

    got = []
    while True:
        try:
            got.append(reports.get(timeout=1))
        except queue_module.Empty:
            break
    writer_reports = sorted(r for r in got if r[0] == "writer")
    reader_reports = [r for r in got if r[0] == "reader"]
    assert [p.exitcode for p in writers] == [0] * WRITERS and reader.exitcode == 0
    # each writer: no exception, and not one ingest that failed to get the database (no lock error)
    assert writer_reports == [("writer", w, 0, None) for w in range(WRITERS)], writer_reports
    assert len(reader_reports) == 1 and reader_reports[0][1] > 0, reader_reports  # queries ran, none failed
    print("reader loops:", reader_reports[0][1], "slowest loop (s):", reader_reports[0][3])

    ingest(settings)  # nothing should be left, but a final ingest must not change the count either
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        total, distinct = con.execute("SELECT count(*), count(DISTINCT image_id) FROM images").fetchone()
        per_writer = dict(con.execute(
            "SELECT split_part(image_id, '-', 1), count(*) FROM images GROUP BY 1"
        ).fetchall())
    finally:
        con.close()
    assert (total, distinct) == (WRITERS * PER_WRITER, WRITERS * PER_WRITER)
    assert per_writer == {f"w{w}": PER_WRITER for w in range(WRITERS)}
    assert spool_files(settings.spool_dir) == []  # every spool sealed, ingested and removed
