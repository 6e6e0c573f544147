from __future__ import annotations

from datetime import datetime, timezone

import pytest

from faceguard.log import LogWriter, queries, remove_demo_data, write_demo_data

from .conftest import image

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from faceguard.config import Settings

    settings = Settings(home=tmp_path_factory.mktemp("demo") / "data")
    assert write_demo_data(settings, rows=30_000, days=7, seed=1, now=NOW) == 30_000
    return settings


def test_demo_history_has_three_versions_a_canary_and_reviews(demo) -> None:
    df = queries.metrics_by_version(demo, bucket=None)
    assert set(df["model_version"]) == {"v1.0.0-prod", "v1.1.0-prod", "v1.2.0-beta"}
    assert int(df["images"].sum()) == 30_000
    by = df.set_index("model_version")
    assert 0.9 <= by.loc["v1.1.0-prod", "precision"] <= 0.99 and 0.9 <= by.loc["v1.1.0-prod", "recall"] <= 0.99
    canary = queries.variant_counts(demo).set_index(["model_version", "variant"])
    assert canary.loc[("v1.2.0-beta", "canary"), "share"] == pytest.approx(0.45 * 0.05, abs=0.01)
    assert queries.current_version_at(demo, NOW) == "v1.1.0-prod"
    status = queries.log_status(demo)
    assert status.rows["images"] == 30_000 and status.demo_rows == sum(status.rows.values())
    assert len(queries.evaluations(demo)) == 3 and len(queries.alerts(demo)) == 2
    assert len(queries.resource_samples(demo, minutes=60, now=NOW)) >= 100


def test_the_canary_regresses_on_one_day(demo) -> None:
    daily = queries.metrics_by_version(demo, bucket="day", versions=["v1.2.0-beta"])
    worst, best = daily["mean_ms"].max(), daily["mean_ms"].min()
    assert worst > 1.8 * best
    assert daily.loc[daily["mean_ms"].idxmax(), "fp_per_100"] > daily["fp_per_100"].min()


def test_demo_rows_never_feed_the_rollback_windows(demo) -> None:
    assert queries.window_stats(demo, version="v1.2.0-beta", last_n=100, now=NOW).n == 0
    assert queries.window_stats(demo, version="v1.2.0-beta", last_n=100, now=NOW, include_demo=True).n == 100


def test_remove_demo_data_keeps_real_rows(settings) -> None:
    with LogWriter(settings, source="cli", autoingest=False) as writer:
        writer.write(image(1))
    write_demo_data(settings, rows=2_000, days=2, now=NOW)
    write_demo_data(settings, rows=1_000, days=2, now=NOW)  # replaces, never stacks
    assert queries.log_status(settings).rows["images"] == 1_001
    removed = remove_demo_data(settings)
    status = queries.log_status(settings)
    assert removed > 1_000 and status.demo_rows == 0 and status.rows["images"] == 1
    assert sum(status.rows.values()) == 1


def test_invalid_arguments_name_the_value(settings) -> None:
    with pytest.raises(ValueError, match="rows must be >= 0, got -1"):
        write_demo_data(settings, rows=-1)
    with pytest.raises(ValueError, match="days must be >= 1, got 0"):
        write_demo_data(settings, rows=10, days=0)
