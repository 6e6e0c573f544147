"""Metrics: quality (from reviews), latency, errors and traffic share per version over time."""

import streamlit as st

import app_charts as charts
import app_support as app
from faceguard.metrics import rollup

app.ensure_router()
s = app.settings()
gate = s.gate
st.title(":material/monitoring: Metrics")
st.caption("Every figure comes from the processing log. Recall and precision come from human reviews "
           "(point size = sample size); dashed red lines are the promotion gate's thresholds.")

if not app.has_images(s):
    app.empty_state(s, "The processing log is empty: metrics appear once images have been processed.")
    st.stop()

with st.container(horizontal=True, vertical_alignment="bottom", gap="large"):
    since, bucket = app.range_picker(key="metrics_range")
    include_demo = st.toggle("Include demo data", value=True, key="metrics_demo")

# One read of the log; daily quality and per-version totals are exact roll-ups of it.
ops = app.query("metrics_by_version", s, bucket=bucket, since=since, include_demo=include_demo)
if ops.empty:
    st.info("No images in this time range. Pick a longer range.", icon=":material/search_off:")
    st.stop()

versions = sorted(set(ops["model_version"]) - {"-"})
picked = st.multiselect("Versions", versions, default=versions, key="metrics_versions")
ops = ops[ops["model_version"].isin(picked)]
quality = rollup(ops, "day")
quality = quality[quality["reviewed_images"] > 0]
totals = rollup(ops, None)
colors = charts.version_color(versions)

with st.container(horizontal=True):
    for _, row in totals.iterrows():
        st.metric(row["model_version"], app.count(row["images"]) + " images", border=True,
                  delta=f"recall {app.pct(row['recall'])} · precision {app.pct(row['precision'])}",
                  delta_color="off", delta_arrow="off",
                  help=f"{row['n_recall']:,} faces judged for recall, {row['n_precision']:,} detections for precision, "
                       f"{row['reviewed_images']:,} images reviewed; mean latency {app.ms(row['mean_ms'])}, "
                       f"error rate {app.pct(row['error_rate'], 2)}.")

st.subheader("Quality (from reviews, per day)")
if quality.empty:
    st.info("No reviews in this range yet: recall and precision need reviewed images (see the Review page).",
            icon=":material/rule:")
else:
    left, right = st.columns(2)
    left.altair_chart(charts.trend(quality, "recall", title="recall", fmt=".0%", colors=colors, n_col="n_recall",
                                   threshold=gate.min_recall, threshold_label=f"gate ≥ {gate.min_recall:.0%}"),
                      width="stretch")
    right.altair_chart(charts.trend(quality, "precision", title="precision", fmt=".0%", colors=colors,
                                    n_col="n_precision", threshold=gate.min_precision,
                                    threshold_label=f"gate ≥ {gate.min_precision:.0%}"), width="stretch")
    left.altair_chart(charts.trend(quality, "fp_per_100", title="false positives per 100 images", fmt=".1f",
                                   colors=colors, n_col="reviewed_images", threshold=gate.max_fp_per_100,
                                   threshold_label=f"gate ≤ {gate.max_fp_per_100:g}"), width="stretch")
    right.caption(f"Gate: on {gate.days} consecutive days with at least {gate.min_reviewed_per_day} reviewed "
                  f"images each, recall ≥ {gate.min_recall:.0%}, precision ≥ {gate.min_precision:.0%}, "
                  f"false positives ≤ {gate.max_fp_per_100:g} per 100 images and mean latency ≤ "
                  f"{gate.max_mean_ms:g} ms. Small samples swing widely: hover a point for its sample size.")

st.subheader(f"Operations (per {bucket})")
left, right = st.columns(2)
left.altair_chart(charts.latency(ops, colors=colors, threshold=gate.max_mean_ms,
                                 threshold_label=f"gate: mean ≤ {gate.max_mean_ms:g} ms"), width="stretch")
right.altair_chart(charts.trend(ops, "error_rate", title="error rate", fmt=".1%", colors=colors, n_col="images"),
                   width="stretch")
left.altair_chart(charts.share(ops, colors=colors), width="stretch")
right.altair_chart(charts.trend(ops, "flagged_rate", title="flagged for review", fmt=".1%", colors=colors,
                                n_col="images"), width="stretch")
