"""Functions run in child processes (spawn) by the concurrency and crash tests."""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path


def writer_process(home: str, worker: int, n: int, queue, start) -> None:
    """Write n image records (in bursts, over ~1 s) through a LogWriter with background ingest, then close it."""
    try:
        from faceguard.config import Settings
        from faceguard.log import ImageRecord, LogWriter

        settings = Settings(home=Path(home))
        writer = LogWriter(settings, source="batch", ingest_interval_s=0.25)
        start.wait(60)
        for i in range(n):
            if i % 50 == 0:
                time.sleep(0.02)
            writer.write(ImageRecord(
                image_id=f"w{worker}-{i:05d}", input_sha256=f"{worker:02d}{i:062x}", source="batch",
                model_version="v1.1.0-prod" if i % 10 else "v1.2.0-beta", variant="stable" if i % 10 else "canary",
                num_faces=i % 3, processing_ms=5.0 + i % 7, status="ok" if i % 50 else "detector_error",
            ))
        writer.close(timeout_s=30)
        queue.put(("writer", worker, writer.ingest_failures, repr(writer.last_error) if writer.last_error else None))
    except BaseException:  # noqa: BLE001 - report everything to the parent
        queue.put(("writer", worker, -1, traceback.format_exc()))


def reader_process(home: str, stop, queue, start) -> None:
    """Run dashboard queries in a loop until told to stop; report how many and any error."""
    try:
        from faceguard.config import Settings
        from faceguard.log import queries

        settings = Settings(home=Path(home))
        done = 0
        start.wait(60)
        slowest = 0.0
        while not stop.is_set():
            started = time.monotonic()
            queries.metrics_by_version(settings, bucket="hour")
            queries.window_stats(settings, version="v1.2.0-beta", last_n=100)
            queries.recent_images(settings, limit=20)
            queries.log_status(settings)
            done += 1
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.005)
        queue.put(("reader", done, 0, round(slowest, 3)))
    except BaseException:  # noqa: BLE001
        queue.put(("reader", -1, -1, traceback.format_exc()))


def killed_writer(home: str, conn) -> None:
    """Write records forever, telling the parent each id once write() has returned."""
    from faceguard.config import Settings
    from faceguard.log import ImageRecord, LogWriter

    writer = LogWriter(Settings(home=Path(home)), source="app", ingest_interval_s=0.05)
    i = 0
    while True:
        record = ImageRecord(input_sha256=f"{i:064x}", source="app", model_version="v1.1.0-prod")
        writer.write(record)
        conn.send_bytes(record.image_id.encode())  # "the result was returned to the user"
        i += 1
        if i % 100 == 0:
            time.sleep(0.001)


def hold_write_lock(db_path: str, ready, release) -> None:
    """Hold a plain read-write DuckDB connection (no faceguard locking) until released."""
    import duckdb

    con = duckdb.connect(db_path)
    ready.set()
    release.wait(60)
    con.close()
    os._exit(0)
