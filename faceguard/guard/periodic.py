"""``faceguard check``: the rules judged from the log, for cron or a systemd timer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from faceguard.alerts import Poster, post_json
from faceguard.config import Settings
from faceguard.guard.action import RollbackResult, roll_back
from faceguard.guard.rules import Breach, FpSource, RuleStats, Thresholds, evaluate_rules, thresholds_for
from faceguard.registry import ModelStore
from faceguard.rollout import active_canary


def stats_from_log(db, version: str, th: Thresholds, *, now: datetime) -> RuleStats:
    """The rules' windows for ``version`` read from the log (``db``: Settings or path)."""
    from faceguard.log import queries

    fails = queries.window_stats(db, version=version, last_n=th.max_consecutive_failures, now=now)
    reviewed = queries.window_stats(db, version=version, last_n=th.fp_window_images, reviewed_only=True, now=now)
    if reviewed.reviewed_total >= th.fp_min_images:
        fp = dict(fp_source=FpSource.REVIEWS, fp_count=reviewed.reviewed_fp, fp_images=reviewed.reviewed_total,
                  fp_from=reviewed.first_ts, fp_to=reviewed.last_ts)
    else:
        recent = queries.window_stats(db, version=version, last_n=th.fp_window_images, now=now)
        fp = dict(fp_source=FpSource.SHADOW if recent.shadow_total else FpSource.NONE,
                  fp_count=recent.shadow_disagreements, fp_images=recent.shadow_total,
                  fp_from=recent.first_ts, fp_to=recent.last_ts)
    lat = queries.window_stats(db, version=version, last_minutes=th.latency_window_minutes, now=now)
    all_failed = fails.consecutive_failures
    return RuleStats(
        version=version, consecutive_failures=all_failed,
        failures_from=fails.first_ts if all_failed else None, failures_to=fails.last_ts if all_failed else None,
        latency_samples=lat.n - lat.errors, mean_ms=lat.mean_ms, latency_from=lat.first_ts, latency_to=lat.last_ts,
        **fp,
    )


@dataclass(frozen=True)
class CheckReport:
    """One ``check`` run: the figures of every watched version, the breaches, and the actions taken."""

    now: datetime
    checked: tuple[RuleStats, ...]
    breaches: tuple[Breach, ...]
    actions: tuple[RollbackResult, ...] = field(default_factory=tuple)

    @property
    def acted(self) -> bool:
        return any(a.action.acted and a.alert_id is not None for a in self.actions)


def watched_versions(store: ModelStore, settings: Settings) -> list[str]:
    """The canary, and the current version when it can be rolled back."""
    state = store.state()
    current = store.current()
    out = []
    canary = active_canary(state, current)
    if canary is not None:
        out.append(canary.version)
    if settings.guard.watch_current and store.previous_stable() is not None:
        out.append(current)
    return out


def check(store: ModelStore, settings: Settings, *, log=None, now: datetime | None = None,
          post: Poster = post_json, actor: str = "check") -> CheckReport:
    """Judge every watched version from the log and act on the first breach of each."""
    now = now or datetime.now(timezone.utc)
    checked, breaches, actions = [], [], []
    for version in watched_versions(store, settings):
        th = thresholds_for(store, version, settings.guard)
        stats = stats_from_log(settings, version, th, now=now)
        checked.append(stats)
        found = evaluate_rules(stats, th)
        breaches.extend(found)
        if found:
            actions.append(roll_back(store, found[0], settings=settings, log=log, actor=actor, post=post))
    return CheckReport(now, tuple(checked), tuple(breaches), tuple(actions))


__all__ = ["CheckReport", "check", "stats_from_log", "watched_versions"]
