"""Rule figures for the System status page: watched versions, figures against thresholds."""

from __future__ import annotations

from faceguard import status
from faceguard.guard import Rule
from faceguard.log import ImageRecord, LogWriter
from faceguard.registry import ModelStore


def test_current_version_is_watched_with_every_rule(fg_env):
    rows = status.rule_figures(ModelStore.from_settings(fg_env), fg_env)
    assert {(r.version, r.role) for r in rows} == {("v1.1.0-prod", "current")}
    assert [r.rule for r in rows] == [Rule.CONSECUTIVE_FAILURES, Rule.FALSE_POSITIVE_RATE, Rule.MEAN_LATENCY]
    fp = rows[1]
    assert fp.figure is None and not fp.ready and fp.threshold == fg_env.guard.max_fp_rate
    assert not any(r.breached for r in rows)


def test_failures_count_against_the_threshold(fg_env):
    with LogWriter(fg_env, source="app", autoingest=False) as log:
        for _ in range(fg_env.guard.max_consecutive_failures):
            log.write(ImageRecord(input_sha256="0" * 64, source="app", model_version="v1.1.0-prod",
                                  status="detector_error", error="boom"))
    rows = status.rule_figures(ModelStore.from_settings(fg_env), fg_env)
    failures = next(r for r in rows if r.rule is Rule.CONSECUTIVE_FAILURES)
    assert failures.figure == fg_env.guard.max_consecutive_failures and failures.breached
    assert failures.share_of_threshold == 1.0
