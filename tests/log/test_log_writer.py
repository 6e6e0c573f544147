from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import numpy as np

from faceguard.errors import LogError
from faceguard.log import LogWriter, ResourceSampler, ingest, open_for_read, queries
from faceguard.log.spool import spool_files

from . import workers
from .conftest import image


def _ids(settings) -> set[str]:
    with open_for_read(settings.db_path) as con:  # through the sidecar lock: the ingest thread may be writing
        return set() if con is None else {r[0] for r in con.execute("SELECT image_id FROM images").fetchall()}


def _wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_write_appends_one_json_line_per_record_to_its_own_spool(settings) -> None:
    with LogWriter(settings, source="cli", autoingest=False) as writer:
        writer.write(image(1))
        writer.write(image(2))
        path = writer.spool_path
        assert path.parent == settings.spool_dir and path.name.endswith(f"-{os.getpid()}-{path.name[-38:-6]}.jsonl")
        assert len(path.read_bytes().splitlines()) == 2  # on disk before write() returned
    assert _ids(settings) == {"img000001", "img000002"}  # close() ingested


def test_background_ingest_delivers_records_within_seconds(settings) -> None:
    writer = LogWriter(settings, source="cli", ingest_interval_s=0.1)
    writer.write(image(1))
    assert _wait_for(lambda: "img000001" in _ids(settings), timeout_s=5)
    writer.close()


def test_write_costs_well_under_a_millisecond(settings) -> None:
    with LogWriter(settings, source="app", ingest_interval_s=0.05) as writer:
        costs = []
        for i in range(2000):
            record = image(i)
            t = time.perf_counter()
            writer.write(record)
            costs.append(time.perf_counter() - t)
    assert np.percentile(costs, 95) < 0.001


def test_records_wait_in_the_spool_while_the_database_path_is_unusable(settings) -> None:
    settings.db_path.mkdir(parents=True)  # a directory where the database file should be
    writer = LogWriter(settings, source="cli", autoingest=False)
    for i in range(3):
        writer.write(image(i))  # the request never notices
    assert writer.ingest_now() == 0
    assert isinstance(writer.last_error, LogError) and str(settings.db_path) in str(writer.last_error)
    settings.db_path.rmdir()
    assert writer.ingest_now() == 3 and writer.last_error is None
    writer.close()
    assert _ids(settings) == {"img000000", "img000001", "img000002"}


def test_records_wait_while_another_process_holds_the_database(settings) -> None:
    with LogWriter(settings, source="cli", autoingest=False) as writer:
        writer.write(image(0))
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=workers.hold_write_lock, args=(str(settings.db_path), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        writer = LogWriter(settings, source="cli", autoingest=False)
        started = time.monotonic()
        writer.write(image(1))
        assert time.monotonic() - started < 0.1
        assert writer.ingest_now(timeout_s=0.5) == 0
        assert "lock" in str(writer.last_error).lower()
    finally:
        release.set()
        holder.join(30)
    assert writer.ingest_now() == 1
    writer.close()
    assert _ids(settings) == {"img000000", "img000001"}


def test_sigkill_loses_no_record_whose_result_was_returned(settings) -> None:
    ctx = mp.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=workers.killed_writer, args=(str(settings.home), sender))
    child.start()
    sender.close()
    returned: list[str] = []
    while len(returned) < 3000:
        returned.append(receiver.recv_bytes().decode())
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    while True:  # ids the child reported before it died
        try:
            returned.append(receiver.recv_bytes().decode())
        except (EOFError, OSError):
            break
    assert child.exitcode == -signal.SIGKILL
    stats = ingest(settings)
    missing = set(returned) - _ids(settings)
    assert not missing, f"{len(missing)} returned records lost, e.g. {sorted(missing)[:3]}"
    assert stats.deleted_files == 1 and spool_files(settings.spool_dir) == []  # the dead process's spool


def test_resource_sampler_writes_cpu_and_memory_of_this_process(settings) -> None:
    with LogWriter(settings, source="app", autoingest=False) as writer:
        with ResourceSampler(writer, interval_s=0.05):
            time.sleep(0.3)
        sample = ResourceSampler(writer).sample()
    assert sample.pid == os.getpid() and sample.rss_mb > 10 and sample.cpu_percent >= 0
    rows = queries.resource_samples(settings, minutes=5)
    assert len(rows) >= 3 and set(rows["pid"]) == {os.getpid()} and set(rows["source"]) == {"app"}


def test_write_after_close_is_an_error(settings) -> None:
    writer = LogWriter(settings, source="cli", autoingest=False)
    writer.close()
    try:
        writer.write(image(1))
    except LogError as exc:
        assert "closed" in str(exc)
    else:
        raise AssertionError("write after close must raise LogError")
