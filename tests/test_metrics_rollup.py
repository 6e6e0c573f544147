"""Rolling hourly metric rows up gives exactly what the log computes at the coarser bucket."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from faceguard.log import queries, write_demo_data
from faceguard.metrics import rollup

EXACT = ["images", "faces", "errors", "flagged", "reviewed_images", "confirmed", "false_positives", "missed",
         "n_precision", "n_recall", "error_rate", "flagged_rate", "precision", "recall", "fp_per_100", "mean_ms"]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    from faceguard.config import Settings

    home = tmp_path_factory.mktemp("rollup")
    settings = Settings(home=home)
    write_demo_data(settings, rows=30_000, days=5, now=datetime(2025, 6, 10, 15, 30, tzinfo=timezone.utc))
    return settings


@pytest.mark.parametrize("bucket", ["day", None])
def test_rollup_matches_the_database(demo_db, bucket):
    since = datetime(2025, 6, 6, tzinfo=timezone.utc)
    hourly = queries.metrics_by_version(demo_db, bucket="hour", since=since)
    direct = queries.metrics_by_version(demo_db, bucket=bucket, since=since)
    rolled = rollup(hourly, bucket)
    assert list(rolled.columns) == list(direct.columns)
    assert list(rolled["model_version"]) == list(direct["model_version"])
    np.testing.assert_allclose(rolled[EXACT].to_numpy(float), direct[EXACT].to_numpy(float), rtol=1e-9,
                               equal_nan=True)
    if bucket:
        assert (rolled["bucket"] == direct["bucket"]).all()
    assert rolled[["p50_ms", "p95_ms", "share"]].isna().all().all()  # not additive: left out


def test_rates_without_a_sample_are_nan_not_zero():
    rows = pd.DataFrame({"bucket": pd.to_datetime(["2025-06-01 10:00"], utc=True), "model_version": ["v1.1.0-prod"],
                         "images": [5], "faces": [3], "errors": [5], "mean_ms": [np.nan], "flagged": [0],
                         "reviewed_images": [0], "confirmed": [0], "false_positives": [0], "missed": [0]})
    out = rollup(rows, None).iloc[0]
    assert out["error_rate"] == 1.0
    assert np.isnan(out["precision"]) and np.isnan(out["recall"]) and np.isnan(out["fp_per_100"])
    assert np.isnan(out["mean_ms"])


def test_empty_input_gives_typed_empty_output():
    empty = queries.metrics_by_version("/nonexistent/faceguard.duckdb", bucket="hour")
    assert rollup(empty, "day").empty and list(rollup(empty, "day").columns) == list(empty.columns)


def test_unknown_bucket_is_refused():
    with pytest.raises(ValueError, match="bucket must be one of"):
        rollup(pd.DataFrame(), "month")
