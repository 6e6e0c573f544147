"""System status: CPU and memory, live latency and errors, alerts, the rollback rules. Refreshes itself."""

from datetime import timedelta

import pandas as pd
import streamlit as st

import app_charts as charts
import app_support as app
from faceguard import alerts, status
from faceguard.errors import FaceguardError

REFRESH_S = 5
LIVE_MINUTES = 15

app.ensure_router()
s = app.settings()
store = app.store(s)
st.title(":material/vital_signs: System status")
st.caption(f"Live: this part of the page refreshes every {REFRESH_S} s without reloading. Times are UTC.")

if not app.has_images(s):
    app.empty_state(s, "The processing log is empty: status figures appear once images have been processed.")


@st.fragment(run_every=REFRESH_S)
def live() -> None:
    now = app.now_minute()
    with st.container(horizontal=True, vertical_alignment="center"):
        st.badge(f"updated {pd.Timestamp.now(tz='UTC').strftime('%H:%M:%S')} UTC", color="gray",
                 icon=":material/autorenew:")
        log = app.live_query("log_status", s)
        st.badge(f"log: {sum(log.rows.values()):,} rows, {log.size_bytes / 2**20:,.0f} MB", color="gray",
                 icon=":material/database:")
        if log.pending_spool_bytes:
            st.badge(f"{log.pending_spool_bytes / 1024:,.0f} KB waiting in the spool", color="orange")

    # -- rollback rules ------------------------------------------------------------------------------
    st.subheader("Rollback rules")
    try:
        figures = status.rule_figures(store, s)
    except FaceguardError as err:
        st.error(f"Rule figures unavailable: {err}")
        figures = []
    if not figures:
        st.caption("No version is watched: there is no canary, and no previous stable version to roll back to.")
    cols = st.columns(3) if figures else []
    for i, f in enumerate(figures):
        with cols[i % 3].container(border=True):
            name = {"consecutive_failures": "Consecutive failures", "false_positive_rate": "False-positive rate",
                    "mean_latency": "Mean latency"}[f.rule.value]
            if f.figure is None:
                value = "no data"
            elif f.unit == "rate":
                value = f"{f.figure:.1%}"
            elif f.unit == "ms":
                value = f"{f.figure:.0f} ms"
            else:
                value = f"{f.figure:.0f}"
            limit = f"{f.threshold:.1%}" if f.unit == "rate" else (
                f"{f.threshold:.0f} ms" if f.unit == "ms" else f"{f.threshold:.0f}")
            state = "BREACHED" if f.breached else ("ok" if f.ready else f"waiting for data ({f.samples}/{f.min_samples})")
            st.metric(f"{name} · {f.version} ({f.role})", value, delta=f"limit {limit} · {state}",
                      delta_color="red" if f.breached else ("green" if f.ready else "gray"), delta_arrow="off")
            share = f.share_of_threshold
            if share is not None:
                st.progress(min(1.0, share), text=f"{share:.0%} of the limit · {f.window}")
            else:
                st.caption(f.window)

    # -- live latency and errors --------------------------------------------------------------------
    st.subheader(f"Last {LIVE_MINUTES} minutes")
    recent = app.live_query("metrics_by_version", s, bucket="minute", since=now - timedelta(minutes=LIVE_MINUTES))
    recent = recent[recent["model_version"] != "-"]
    if recent.empty:
        st.caption(f"No image processed in the last {LIVE_MINUTES} minutes.")
    else:
        colors = charts.version_color(recent["model_version"])
        left, right = st.columns(2)
        left.altair_chart(charts.latency(recent, colors=colors, threshold=s.guard.max_mean_ms,
                                         threshold_label=f"rollback: mean > {s.guard.max_mean_ms:g} ms",
                                         height=200), width="stretch")
        right.altair_chart(charts.trend(recent, "error_rate", title="error rate", fmt=".0%", colors=colors,
                                        n_col="images", height=200), width="stretch")

    # -- resources -----------------------------------------------------------------------------------
    st.subheader("CPU and memory (last hour)")
    res = app.live_query("resource_samples", s, minutes=60)
    if res.empty:
        st.caption("No resource samples yet: the app and batch jobs record CPU and memory every 10 s.")
    else:
        left, right = st.columns(2)
        left.altair_chart(charts.resources(res, "cpu_percent", "CPU (%)"), width="stretch")
        right.altair_chart(charts.resources(res, "rss_mb", "memory (MB)"), width="stretch")

    # -- alerts --------------------------------------------------------------------------------------
    st.subheader("Alerts")
    table = app.live_query("alerts", s, limit=50)
    if table.empty:
        st.caption("No alerts. The rollback guard raises one whenever it acts.")
        return
    for row in table.itertuples():
        with st.container(border=True, horizontal=True, vertical_alignment="center"):
            icon = ":material/notifications_active:" if row.open else ":material/notifications_off:"
            badge = ":red-badge[open]" if row.open else f":gray-badge[acknowledged by {row.acked_by}]"
            st.markdown(f"{icon} **{row.rule.replace('_', ' ')}** {badge} {':violet-badge[demo]' if row.demo else ''}  \n"
                        f"{row.message}  \n:gray[{app.when(row.ts)} ({app.ago(row.ts)})]")
            if row.open and st.button("Acknowledge", key=f"ack_{row.alert_id}", icon=":material/done:"):
                alerts.acknowledge(s, row.alert_id, app.operator_name())
                app.refresh()
                st.rerun()  # the whole page, so the banner goes too


live()
