"""Automatic rollback: the rules, the in-process guard, ``faceguard check``, and the action.

One decision, two ways of feeding it. ``evaluate_rules(stats, thresholds)`` (``rules``) is a
pure function of a version's ``RuleStats``; the in-process ``Guard`` (``inprocess``) builds
those from counters it keeps per version as requests finish (O(1) per request, no database),
and ``check`` (``periodic``) builds them from the log (``queries.window_stats``) for cron or a
systemd timer. Both act through ``roll_back`` (``action``).

Watched versions: the canary, and (``watch_current``) the current version when there is a
previous stable version to return to. What each rule measures is in ``rules``; what a
rollback does, and how two processes seeing the same breach act once, in ``action``; how a
failed request is still served, in ``inprocess``.
"""

from faceguard.guard.action import RollbackAction, RollbackResult, roll_back
from faceguard.guard.inprocess import Guard
from faceguard.guard.periodic import CheckReport, check, stats_from_log, watched_versions
from faceguard.guard.rules import Breach, FpSource, Rule, RuleStats, Thresholds, evaluate_rules, thresholds_for

__all__ = [
    "Breach", "CheckReport", "FpSource", "Guard", "RollbackAction", "RollbackResult", "Rule", "RuleStats",
    "Thresholds", "check", "evaluate_rules", "roll_back", "stats_from_log", "thresholds_for", "watched_versions",
]
