"""Home: what faceguard is, the versions serving now, today's volume, open alerts."""

import streamlit as st

import app_support as app

app.ensure_router()
s = app.settings()
store = app.store(s)

st.title(":material/shield_person: faceguard")
st.markdown(
    "Local, CPU-only face anonymization. Photos are blurred on this machine by a versioned face "
    "detector; new versions go out as a **canary** on a share of the traffic, are judged by **human "
    "review** and the **promotion gate**, and are **rolled back** automatically when they misbehave."
)

current = app.safe(store.current, "Current version")
state = app.safe(store.state, "Registry state")
canary = state.canary if state else None
volume = app.query("today_volume", s)
open_alerts = app.query("alerts", s, open_only=True)

with st.container(horizontal=True, gap="medium"):
    st.metric("Current version", current or "–", border=True, help="The stable version serving all non-canary traffic.")
    st.metric("Canary", f"{canary.version}" if canary else "none", delta=f"{canary.percent:g} % of traffic" if canary else None,
              delta_color="off", delta_arrow="off", border=True)
    st.metric("Images today", app.count(volume.images), border=True,
              delta=f"{app.count(volume.faces)} faces · {volume.errors:,} errors" if volume.images else None,
              delta_color="off", delta_arrow="off", help="Since midnight UTC, all sources (app, CLI, batch).")
    st.metric("Open alerts", len(open_alerts), border=True,
              delta="see System status" if len(open_alerts) else "all clear",
              delta_color="inverse" if len(open_alerts) else "off", delta_arrow="off")

if not app.has_images(s):
    app.empty_state(s, "The processing log is empty: no image has been blurred here yet.")

st.subheader("Where to go")
cols = st.columns(3)
links = [
    ("pages/blur.py", "Blur photos", ":material/blur_on:", "Drop photos, pick a version and a style, download the result."),
    ("pages/review.py", "Review", ":material/rule:", "Judge flagged detections, mark missed faces (reviewers only)."),
    ("pages/metrics.py", "Metrics", ":material/monitoring:", "Recall, precision, latency and errors per version over time."),
    ("pages/ab_analysis.py", "A/B analysis", ":material/compare_arrows:", "Compare two versions with intervals and a verdict."),
    ("pages/models.py", "Models", ":material/deployed_code:", "Manifests, evaluations, canary, promotion and rollback."),
    ("pages/system_status.py", "System status", ":material/vital_signs:", "CPU, memory, live latency, alerts and rollback rules."),
]
for i, (path, label, icon, text) in enumerate(links):
    with cols[i % 3].container(border=True):
        st.page_link(path, label=label, icon=icon)
        st.caption(text)

status = app.query("log_status", s)
if status.demo_rows:
    with st.container(horizontal=True, vertical_alignment="center"):
        st.caption(f":material/dataset: The log holds {status.demo_rows:,} demo rows (marked as demo; never used by the rollback rules).")
        if st.button("Remove demo data", icon=":material/delete:", type="tertiary"):
            app.remove_demo(s)
