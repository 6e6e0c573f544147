"""Writing to the log: append to this process's own spool, ingest into DuckDB in the background.

``LogWriter.write`` costs one JSON encode and one ``os.write`` of a line to
``settings.spool_dir/<host>-<pid>-<uuid>.jsonl``; it never opens the database, so a locked,
missing or broken database cannot slow down or fail a request: records wait in the spool.
A daemon thread runs :func:`faceguard.log.spool.ingest` every ``ingest_interval_s`` while
there is something to merge, and ``close()`` (also run at interpreter exit) seals the spool
and ingests one last time.

Durability: once ``write`` returns, the line is in the kernel's page cache, which survives
the process being killed (SIGKILL, OOM, a crash): the next ingest by any process picks it
up. It does not survive the machine losing power before the kernel flushes (typically
within ~30 s). ``LogWriter(..., fsync=True)`` closes that gap at the cost of a disk flush per
record (0.1-10 ms depending on the disk), which would break the 1 ms budget on most disks.

>>> with LogWriter(settings, source="cli") as log:          # doctest: +SKIP
...     log.write(ImageRecord(input_sha256=h, source="cli", model_version="v1.1.0-prod"))
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path

import psutil

from faceguard.config import Settings
from faceguard.errors import FaceguardError, LogError
from faceguard.log.spool import SEALED_SUFFIX, SPOOL_SUFFIX, host_tag, ingest, owner_gone, spool_files
from faceguard.log.records import Record, ResourceSample, new_id

DEFAULT_MAX_SPOOL_BYTES = 64 * 1024 * 1024


class LogWriter:
    """Appends records to one spool file of this process and merges spools into the database.

    Thread-safe: many request threads may call ``write`` at once. Create it after forking.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        source: str,
        ingest_interval_s: float = 2.0,
        autoingest: bool = True,
        fsync: bool = False,
        max_spool_bytes: int = DEFAULT_MAX_SPOOL_BYTES,
        ingest_timeout_s: float = 10.0,
    ) -> None:
        self.settings = settings
        self.source = source
        self.ingest_interval_s = ingest_interval_s
        self.ingest_timeout_s = ingest_timeout_s
        self.fsync = fsync
        self.max_spool_bytes = max_spool_bytes
        self.last_error: Exception | None = None  # the latest ingest failure, for status pages
        self.ingest_failures = 0  # ingests that could not reach the database (records waited in the spool)
        self._lock = threading.Lock()
        self._ingest_lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._written = 0  # records written by this writer
        self._ingested_mark = 0  # value of _written when the last successful ingest started
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if autoingest:
            self._thread = threading.Thread(target=self._run, name="faceguard-log-ingest", daemon=True)
            self._thread.start()
        atexit.register(self.close)

    # -- writing ----------------------------------------------------------------------------
    @property
    def spool_path(self) -> Path | None:
        """The spool file currently appended to (None before the first write)."""
        return self._path

    def write(self, record: Record) -> None:
        """Append one record to the spool; when this returns it survives the process being killed.

        Never touches the database. Raises ``LogError`` only if the spool itself cannot be
        written (disk full, no permission), or after ``close()``.
        """
        line = (record.to_json() + "\n").encode()
        with self._lock:
            if self._closed:
                raise LogError(f"{self._path}: log writer is closed")
            try:
                if self._fd is None:
                    self._open_spool()
                assert self._fd is not None
                view = memoryview(line)
                while view:
                    view = view[os.write(self._fd, view):]
                if self.fsync:
                    os.fsync(self._fd)
            except OSError as exc:
                raise LogError(f"{self._path or self.settings.spool_dir}: cannot write the log spool: {exc}") from exc
            self._size += len(line)
            self._written += 1
            if self._size >= self.max_spool_bytes:
                self._seal()

    def _open_spool(self) -> None:
        self.settings.spool_dir.mkdir(parents=True, exist_ok=True)
        self._path = self.settings.spool_dir / f"{host_tag()}-{os.getpid()}-{new_id()}{SPOOL_SUFFIX}"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        self._size = 0

    def _seal(self) -> None:
        """Close the current spool and rename it ``*.jsonl.done``: it will never grow again."""
        if self._fd is None or self._path is None:
            return
        os.close(self._fd)
        self._fd = None
        try:
            os.rename(self._path, self._path.with_name(self._path.name[: -len(SPOOL_SUFFIX)] + SEALED_SUFFIX))
        except OSError:
            pass  # still ingested, and deleted once this process has exited

    # -- ingesting --------------------------------------------------------------------------
    def ingest_now(self, *, timeout_s: float | None = None, skip_if_busy: bool = False) -> int:
        """Merge every spool into the database now; the number of new rows (0 if it is unavailable).

        Never raises: a failure is kept in ``last_error`` and the records stay in the spool.
        ``skip_if_busy`` leaves the work to an ingest already running in another process.
        """
        with self._ingest_lock:
            mark = self._written
            try:
                stats = ingest(self.settings, timeout_s=timeout_s or self.ingest_timeout_s, skip_if_busy=skip_if_busy)
            except FaceguardError as exc:
                self.last_error = exc
                self.ingest_failures += 1
                return 0
            except Exception as exc:  # noqa: BLE001 - a log problem must never surface in a request
                self.last_error = LogError(f"{self.settings.db_path}: ingest failed: {exc!r}")
                self.ingest_failures += 1
                return 0
            self.last_error = None
            if not stats.skipped:
                self._ingested_mark = mark
            return stats.inserted

    def _needs_ingest(self) -> bool:
        if self._written > self._ingested_mark:
            return True
        return any(p != self._path and owner_gone(p) for p in spool_files(self.settings.spool_dir))

    def _run(self) -> None:
        while not self._stop.wait(self.ingest_interval_s):
            try:
                if self._needs_ingest():
                    self.ingest_now(skip_if_busy=True)
            except Exception as exc:  # noqa: BLE001 - keep the thread alive whatever happens
                self.last_error = exc

    def close(self, *, timeout_s: float | None = None) -> None:
        """Seal the spool and ingest one last time (best effort; what fails waits in the spool)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._seal()
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.ingest_timeout_s)
        if self._written:
            self.ingest_now(timeout_s=timeout_s)
        atexit.unregister(self.close)

    def __enter__(self) -> "LogWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class ResourceSampler:
    """Writes a ``ResourceSample`` (CPU %, resident memory) of this process every ``interval_s``.

    >>> with ResourceSampler(writer, interval_s=10):   # doctest: +SKIP
    ...     serve()
    """

    def __init__(self, writer: LogWriter, *, interval_s: float = 10.0, source: str | None = None) -> None:
        self.writer = writer
        self.interval_s = interval_s
        self.source = source or writer.source
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # primes the counter: the first real reading covers one interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> ResourceSample:
        """Take one sample and write it."""
        with self._process.oneshot():
            record = ResourceSample(
                pid=self._process.pid,
                source=self.source,
                cpu_percent=float(self._process.cpu_percent(None)),
                rss_mb=self._process.memory_info().rss / (1024 * 1024),
            )
        self.writer.write(record)
        return record

    def start(self) -> "ResourceSampler":
        """Start sampling in a daemon thread (again a no-op while it runs); returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="faceguard-resource-sampler", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except LogError:
                return  # the writer was closed (or its spool cannot be written): nothing to sample into

    def stop(self) -> None:
        """Stop the sampling thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 1)
            self._thread = None

    def __enter__(self) -> "ResourceSampler":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
