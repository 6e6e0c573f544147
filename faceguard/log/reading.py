"""One read-only query against the log: what ``queries`` and ``lookups`` share.

Each read opens the database read-only for one query (waiting briefly while an ingest holds
it, see ``access``) and closes it again. ``db`` is a ``Settings`` or the database path. A
database that does not exist yet gives the same query run on empty tables, so results are
empty but correctly typed and every page works on a fresh install.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from faceguard.config import Settings
from faceguard.log.schema import memory_connection, open_for_read

DbRef = Settings | Path | str

READ_TIMEOUT_S = 10.0

# The latest review of each (image, version) decides its verdicts: a second look replaces the first.
LATEST_REVIEWS = """
    latest_reviews AS (
        SELECT r.image_id, r.model_version, r.verdict, r.ts
        FROM reviews r
        JOIN (
            SELECT image_id, model_version, arg_max(reviewer, ts) AS reviewer
            FROM reviews WHERE $include_demo OR NOT demo GROUP BY image_id, model_version
        ) AS last USING (image_id, model_version, reviewer)
        WHERE $include_demo OR NOT r.demo
    )"""


def db_path(db: DbRef) -> Path:
    """The database file named by a Settings or a path."""
    return db.db_path if isinstance(db, Settings) else Path(db)


def as_utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC (None stays None); a naive timestamp is refused, not guessed at."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"timestamps must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(timezone.utc)


def utc_now_or(now: datetime | None) -> datetime:
    """``now`` in UTC, or the current time when None (tests pass a fixed clock)."""
    return as_utc(now) if now is not None else datetime.now(timezone.utc)  # type: ignore[return-value]


def read(db: DbRef, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """The result of one query as a DataFrame (see the module docstring for a missing database)."""
    used = set(re.findall(r"\$(\w+)", sql))  # DuckDB refuses parameters the statement does not use
    params = {k: v for k, v in (params or {}).items() if k in used}
    path = db_path(db)
    with open_for_read(path, timeout_s=READ_TIMEOUT_S) as con:
        if con is not None:
            return con.execute(sql, params or {}).df()
    empty = memory_connection()  # no database yet: the same query on empty tables, for typed columns
    try:
        return empty.execute(sql, params or {}).df()
    finally:
        empty.close()


def decode_json(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Parse the JSON text ``columns`` of ``df`` in place (NULL becomes None)."""
    for col in columns:
        if col in df.columns:
            # NULL comes back as None, pd.NA or NaN depending on the column's dtype (pandas 3 strings)
            df[col] = [None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else json.loads(v)
                       for v in df[col].astype(object)]
    return df
