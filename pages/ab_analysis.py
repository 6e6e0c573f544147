"""A/B analysis: two versions over one period, with intervals, the sample-ratio check and a verdict."""

import math
from datetime import datetime, timezone

import pandas as pd
import streamlit as st

import app_charts as charts
import app_support as app
from faceguard import rollout
from faceguard.abtest import ABOptions, ABVerdict
from faceguard.registry import Version

# A thousand resamples of at most 5,000 images keep the latency intervals within about a
# millisecond of the 2,000 x 10,000 default, in a quarter of the time (the page's 2 s budget).
OPTIONS = dict(n_boot=1000, max_latency_samples=5000)

app.ensure_router()
s = app.settings()
store = app.store(s)
st.title(":material/compare_arrows: A/B analysis")
st.caption("Baseline **A** (usually the stable version) against candidate **B** (usually the canary). "
           "Intervals are 95 %: Wilson for proportions, bootstrap for latency differences.")

if not app.has_images(s):
    app.empty_state(s, "The processing log is empty: an A/B comparison needs traffic on two versions.")
    st.stop()

status = app.safe(lambda: rollout.status(store, s), "Rollout status")
current = status.current if status else None
canary = status.canary if status else None
traffic = app.query("variant_counts", s)
with_traffic = sorted(set(traffic["model_version"]) - {"-"}, key=Version.parse)
versions = sorted(set(with_traffic) | set(store.versions()), key=Version.parse)
if len(with_traffic) < 2:
    st.info("Fewer than two versions have traffic so far; start a canary on the Models page to compare two.",
            icon=":material/info:")
    st.stop()

default_a = current if current in with_traffic else with_traffic[-1]
# the canary, else the newest other version with traffic
default_b = canary.version if canary else next(v for v in reversed(with_traffic) if v != default_a)
with st.container(horizontal=True, vertical_alignment="bottom", gap="medium"):
    a = st.selectbox("A: baseline", versions, index=versions.index(default_a), key="ab_a", width=240)
    b = st.selectbox("B: candidate", versions, index=versions.index(default_b), key="ab_b", width=240)
    ranges = (["Since canary start"] if canary else []) + list(app.RANGES)
    choice = st.segmented_control("Time range", ranges, default=ranges[0] if canary else "7 days", key="ab_range",
                                  required=True)
    include_demo = st.toggle("Include demo data", value=True, key="ab_demo")
if a == b:
    st.warning("Pick two different versions.")
    st.stop()

if choice == "Since canary start" and canary:
    since = datetime.fromisoformat(canary.started_at).astimezone(timezone.utc)
else:
    span = app.RANGES.get(choice or "7 days")
    since = app.now_minute() - span if span else None
is_live_split = bool(canary) and a == current and b == canary.version
split = status.expected_split if is_live_split else None

with st.spinner("Comparing…"):
    report = app.query("compare", s, a, b, since, None, module="abtest", expected_split=split,
                       options=ABOptions(include_demo=include_demo, **OPTIONS))

VERDICT_STYLE = {
    ABVerdict.BETTER: (st.success, ":material/thumb_up:", f"{b} is better than {a}"),
    ABVerdict.WORSE: (st.error, ":material/thumb_down:", f"{b} is worse than {a}"),
    ABVerdict.NO_DIFFERENCE: (st.info, ":material/drag_handle:", "No difference as large as the minimum detectable effect"),
    ABVerdict.NOT_ENOUGH_DATA: (st.warning, ":material/hourglass_empty:", "Not enough reviewed data for a verdict yet"),
}
box, icon, headline = VERDICT_STYLE[report.verdict]
box(f"**Verdict: {headline}.**" + "".join(f"\n- {r}" for r in report.reasons), icon=icon)

with st.container(horizontal=True):
    if report.srm is None:
        st.badge("Sample-ratio check: not applicable (A and B are not the live stable/canary split)", color="gray",
                 icon=":material/balance:")
    elif report.srm.mismatch:
        st.badge(f"Sample ratio MISMATCH (p = {report.srm.p_value:.2g}): split or logging broken", color="red",
                 icon=":material/balance:")
    else:
        st.badge(f"Sample ratio OK (p = {report.srm.p_value:.2f}; {report.srm.observed[0]:,} / "
                 f"{report.srm.observed[1]:,} images)", color="green", icon=":material/balance:")
    st.badge(f"Needed per variant: {report.min_sample_size['recall']:,} reviewed faces (recall), "
             f"{report.min_sample_size['precision']:,} reviewed detections (precision)", color="blue",
             icon=":material/functions:")


def _ci(e, fmt="{:.1%}") -> str:
    return "–" if e.n == 0 or math.isnan(e.value) else f"{fmt.format(e.value)} [{fmt.format(e.low)}, {fmt.format(e.high)}]"


rows = []
for label, v in (("A", report.a), ("B", report.b)):
    rows.append({"": label, "version": v.version, "images": v.images, "reviewed images": v.reviewed_images,
                 "recall": _ci(v.recall), "precision": _ci(v.precision), "error rate": _ci(v.error_rate, "{:.2%}"),
                 "flagged": _ci(v.flagged_rate), "p50": app.ms(v.p50_ms), "p95": app.ms(v.p95_ms),
                 "mean": app.ms(v.mean_ms)})
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

colors = charts.version_color(versions)
gate = s.gate


def _frame(attr: str) -> pd.DataFrame:
    out = []
    for v in (report.a, report.b):
        e = getattr(v, attr)
        if e.n:
            out.append({"model_version": v.version, "value": e.value, "low": e.low, "high": e.high, "n": e.n})
    return pd.DataFrame(out, columns=["model_version", "value", "low", "high", "n"])


left, right = st.columns(2)
for col, attr, title, fmt, thr, thr_label in (
    (left, "recall", "recall", ".0%", gate.min_recall, f"gate ≥ {gate.min_recall:.0%}"),
    (right, "precision", "precision", ".0%", gate.min_precision, f"gate ≥ {gate.min_precision:.0%}"),
    (left, "error_rate", "error rate", ".2%", None, ""),
    (right, "flagged_rate", "flagged for review", ".1%", None, ""),
):
    frame = _frame(attr)
    if frame.empty:
        col.info(f"No {title} data for either version in this range" +
                 (" (needs reviews)." if attr in ("recall", "precision") else "."), icon=":material/info:")
    else:
        col.altair_chart(charts.intervals(frame, value="value", low="low", high="high", title=title, fmt=fmt,
                                          colors=colors, threshold=thr, threshold_label=thr_label), width="stretch")

diffs = []
for name, est in (("p50", report.p50_diff_ms), ("p95", report.p95_diff_ms)):
    if est is not None:
        diffs.append({"model_version": f"{name}: B − A", "value": est.value, "low": est.low, "high": est.high,
                      "n": est.n})
if diffs:
    st.altair_chart(charts.intervals(pd.DataFrame(diffs), value="value", low="low", high="high",
                                     title="latency difference B − A (ms)", fmt=".1f",
                                     colors=charts.neutral([d["model_version"] for d in diffs]),
                                     threshold=0.0, threshold_label="no difference"), width="stretch")
st.caption(f"Range: {app.when(report.since) if report.since else 'all time'} → now. Differences of proportions "
           f"use Newcombe's interval: recall B − A [{report.recall_diff.low:+.3f}, {report.recall_diff.high:+.3f}], "
           f"precision [{report.precision_diff.low:+.3f}, {report.precision_diff.high:+.3f}], error rate "
           f"[{report.error_rate_diff.low:+.4f}, {report.error_rate_diff.high:+.4f}].")
