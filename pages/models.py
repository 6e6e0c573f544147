"""Models: versions, manifests, evaluations, the promotion gate, canary / promote / rollback, history."""

import math

import pandas as pd
import streamlit as st

import app_charts as charts
import app_support as app
from faceguard import gate, operations, rollout
from faceguard.errors import FaceguardError
from faceguard.registry import Version

app.ensure_router()
GATE_MARK = {"pass": "✓", "fail": "✗", "inconclusive": "?"}

s = app.settings()
store = app.store(s)
st.title(":material/deployed_code: Models")

status = app.safe(lambda: rollout.status(store, s), "Model store")
if status is None:
    st.stop()
versions = store.versions()
canary = status.canary

with st.container(horizontal=True, gap="medium"):
    st.metric("Current", status.current, border=True, help="Serves all traffic outside the canary.")
    st.metric("Previous stable", status.previous_stable or "none", border=True,
              help="Where a rollback goes by default.")
    st.metric("Canary", canary.version if canary else "none", border=True,
              delta=f"{canary.percent:g} % since {app.when(canary.started_at)}" if canary else None,
              delta_color="off", delta_arrow="off")
    st.metric("Quarantined", len(status.quarantined), border=True,
              delta=", ".join(status.quarantined) or None, delta_color="red", delta_arrow="off")


# -- versions and their evaluations -----------------------------------------------------------------
def _eval(v: str):
    try:
        return rollout.latest_evaluation(store, v, db=s.db_path)
    except FaceguardError:
        return None, None


rows, curves, operating = [], [], []
evals = app.query("evaluations", s)
for v in versions:
    try:
        m = store.manifest(v)
    except FaceguardError as err:
        rows.append({"version": v, "status": "broken manifest", "changelog": str(err)})
        continue
    ev, source = _eval(v)
    ev = ev or {}
    tags = [t for t, on in (("current", v == status.current), ("canary", canary and v == canary.version),
                            ("previous stable", v == status.previous_stable),
                            ("quarantined", v in status.quarantined)) if on]
    rows.append({
        "version": v, "status": ", ".join(tags), "architecture": m.base_architecture.value,
        "threshold": m.confidence_threshold, "recall": ev.get("recall"), "precision": ev.get("precision"),
        "AP": ev.get("average_precision", ev.get("ap")), "small-face recall": ev.get("recall_small"),
        "FP / 100 negatives": ev.get("fp_per_100_negatives"), "evaluated on": ev.get("dataset"),
        "created": m.created_at[:10], "changelog": m.changelog,
    })
    curve = None
    mine = evals[evals["model_version"] == v] if len(evals) else evals
    if len(mine) and mine.iloc[0]["pr_curve"]:
        curve = mine.iloc[0]["pr_curve"]
    elif (m.performance_benchmarks.evaluation or {}).get("pr_curve"):
        curve = m.performance_benchmarks.evaluation["pr_curve"]
    if curve:
        pts = pd.DataFrame(curve, columns=["recall", "precision", "threshold"][: len(curve[0])])
        pts["model_version"] = v
        curves.append(pts)
        if "threshold" in pts:
            nearest = pts.iloc[(pts["threshold"] - m.confidence_threshold).abs().argsort()[:1]]
            operating.append(nearest)

st.subheader("Versions")
table = pd.DataFrame(rows)
for col in ("recall", "precision", "AP", "small-face recall", "FP / 100 negatives"):
    if col in table:
        table[col] = pd.to_numeric(table[col], errors="coerce")  # never evaluated: empty, not "None"
st.dataframe(
    table.fillna({"status": "", "evaluated on": "–"}), hide_index=True, width="stretch",
    column_config={
        "recall": st.column_config.NumberColumn(format="percent"),
        "precision": st.column_config.NumberColumn(format="percent"),
        "small-face recall": st.column_config.NumberColumn(format="percent"),
        "AP": st.column_config.NumberColumn(format="%.3f"),
        "threshold": st.column_config.NumberColumn(format="%.2f"),
        "changelog": st.column_config.TextColumn(width="large"),
    },
)
st.caption("Evaluation figures are the latest `faceguard eval` run on the reference set (from the log, else the "
           f"manifest). A canary needs recall ≥ {s.rollout.min_eval_recall:.0%}, small-face recall ≥ "
           f"{s.rollout.min_eval_small_recall:.0%} and ≤ {s.rollout.max_eval_fp_per_100:g} false positives per 100 "
           "negative images.")

left, right = st.columns([3, 2], gap="large")
with left:
    st.markdown("**Precision-recall on the reference set**")
    if curves:
        st.altair_chart(charts.pr_curve(pd.concat(curves), colors=charts.version_color(versions),
                                        operating=pd.concat(operating) if operating else None), width="stretch")
        st.caption("Diamonds: each version's operating point (its confidence threshold).")
    else:
        st.info("No evaluation yet. Run `faceguard eval VERSION` on a labelled set to see precision-recall curves.",
                icon=":material/query_stats:")
with right:
    st.markdown("**Manifest**")
    pick = st.selectbox("Version", versions, index=versions.index(status.current), key="models_manifest",
                        label_visibility="collapsed")
    manifest = app.safe(lambda: store.manifest(pick), "Manifest")
    if manifest:
        with st.container(height=380, border=True):
            st.json(manifest.to_dict(), expanded=1)

# -- promotion gate ------------------------------------------------------------------------------------
st.subheader("Promotion gate")
candidates = [v for v in versions if v != status.current and v not in status.quarantined]
default_candidate = canary.version if canary else (candidates[-1] if candidates else None)
if not candidates:
    st.info("No candidate version: every other version is quarantined, or there is only one.")
else:
    with st.container(horizontal=True, vertical_alignment="bottom"):
        candidate = st.selectbox("Candidate", candidates, index=candidates.index(default_candidate), key="gate_version",
                                 width=260)
        preview_demo = st.toggle("Preview with demo data", value=False, key="gate_demo",
                                 help="Promotion itself never counts demo rows.")
    report = app.safe(lambda: app.gate_report(s, candidate, include_demo=preview_demo), "Promotion gate")
    if report and not any(d.images for d in report.days):
        st.info(f"No traffic on {candidate} in the last {len(report.days)} days, so the gate has nothing to judge. "
                "Start a canary below; its reviewed images feed the gate day by day.", icon=":material/hourglass_empty:")
    elif report:
        color = {gate.Verdict.PASS: "green", gate.Verdict.FAIL: "red", gate.Verdict.INCONCLUSIVE: "orange"}
        st.badge(f"Gate {report.verdict.value.upper()} for {candidate} over {len(report.judged)} day(s)",
                 color=color[report.verdict], icon=":material/verified:")
        order = [gate.Criterion.RECALL, gate.Criterion.PRECISION, gate.Criterion.FP_PER_100, gate.Criterion.MEAN_MS,
                 gate.Criterion.REVIEWED]
        table = {}
        for day in report.days:
            col = {}
            for c in day.criteria:
                if c.figure is None or (isinstance(c.figure, float) and math.isnan(c.figure)):
                    fig = "no data"
                elif c.criterion is gate.Criterion.REVIEWED:
                    fig = f"{int(c.figure):,}"
                elif c.criterion in (gate.Criterion.RECALL, gate.Criterion.PRECISION):
                    fig = f"{c.figure:.1%}"
                else:
                    fig = f"{c.figure:.1f}"
                col[c.criterion.value] = f"{GATE_MARK[c.verdict.value]} {fig}"
            table[str(day.day) + (" (judged)" if day.day in report.judged else "")] = col
        frame = pd.DataFrame(table).reindex([c.value for c in order])
        frame.index = ["recall", "precision", "FP per 100 images", "mean latency (ms)", "reviewed images"]
        st.dataframe(frame, width="stretch")
        st.caption(f"✓ pass · ✗ fail · ? inconclusive: the 95 % interval straddles the target, or fewer than "
                   f"{s.gate.min_reviewed_per_day} reviewed images that day. Targets: recall ≥ {s.gate.min_recall:.0%}, "
                   f"precision ≥ {s.gate.min_precision:.0%}, ≤ {s.gate.max_fp_per_100:g} false positives per 100 "
                   f"images, mean latency ≤ {s.gate.max_mean_ms:g} ms, on {s.gate.days} consecutive days.")

# -- controls (admin) --------------------------------------------------------------------------------
st.subheader("Controls")
if app.unlock_form(app.admin_access(s), state_key=app.ADMIN_UNLOCKED, title="Model controls",
                   name_key=app.OPERATOR, name_label="Operator name"):
    actor = st.session_state.get(app.OPERATOR) or "admin"
    with st.container(horizontal=True, vertical_alignment="center"):
        st.caption(f":material/lock_open: Unlocked for **{actor}**; every action is recorded with your name.")
        app.lock_button(app.ADMIN_UNLOCKED)
    section = st.segmented_control("Action", ["Canary", "Promote", "Rollback"], default="Canary", required=True,
                                   key="models_action")

    if section == "Canary":
        if canary:
            st.markdown(f"Canary **{canary.version}** serves **{canary.percent:g} %** of traffic since "
                        f"{app.when(canary.started_at)} (started by {canary.actor}).")
        with st.form("canary_form"):
            options = [v for v in versions if v != status.current]
            default = canary.version if canary else (candidates[-1] if candidates else options[0])
            version = st.selectbox("Version", options, index=options.index(default), key="canary_version")
            percent = st.slider("Share of traffic (%)", 1, 50, int(canary.percent if canary else s.rollout.canary_percent),
                                key="canary_percent")
            reason = st.text_input("Reason", placeholder="why this canary (recorded)")
            force = st.checkbox("Force (skip the internal-test bar / lift a quarantine; needs a reason)")
            start = st.form_submit_button("Change percent" if canary else "Start canary", type="primary",
                                          icon=":material/play_arrow:")
        if start:
            try:
                result = rollout.start_canary(store, version, percent, settings=s, actor=actor, reason=reason,
                                              force=force)
            except (FaceguardError, ValueError) as err:
                st.error(str(err))
            else:
                app.refresh()
                app.flash(f"Canary {result.canary.version} at {result.canary.percent:g} %")
                st.rerun()
        if canary:
            with st.form("stop_form"):
                reason = st.text_input("Reason for stopping", placeholder="optional")
                if st.form_submit_button("Stop canary", icon=":material/stop:"):
                    rollout.stop_canary(store, actor=actor, reason=reason)
                    app.refresh()
                    app.flash(f"Canary {canary.version} stopped: all traffic on {status.current}")
                    st.rerun()

    elif section == "Promote":
        if not candidates:
            st.info("No candidate to promote.")
        else:
            with st.form("promote_form"):
                version = st.selectbox("Version to make current", candidates, index=candidates.index(default_candidate))
                reason = st.text_input("Reason", placeholder="recorded with the event")
                force = st.checkbox("Promote even though the gate has not passed (needs a reason)")
                go = st.form_submit_button("Promote", type="primary", icon=":material/upgrade:")
            if go:
                try:
                    done = gate.promote(store, version, s, actor=actor, reason=reason, force=force)
                except (FaceguardError, ValueError) as err:
                    st.error(str(err))
                else:
                    app.refresh()
                    app.flash(f"{version} is now current" + (" (forced past the gate)" if done.forced else ""))
                    st.rerun()

    else:
        stable = [v for v in versions if Version.parse(v).is_stable and v != status.current]
        if not stable:
            st.info("No other stable (-prod) version to roll back to.")
        else:
            default = status.previous_stable if status.previous_stable in stable else stable[-1]
            with st.form("rollback_form"):
                st.markdown(f"Switch all traffic from **{status.current}** back to a stable version.")
                target = st.selectbox("Roll back to", stable, index=stable.index(default))
                reason = st.text_input("Reason (required)", placeholder="what went wrong")
                quarantine = st.checkbox(f"Quarantine {status.current} (nothing re-promotes it automatically)",
                                         value=True)
                confirm = st.checkbox(f"I confirm: roll back from {status.current} to the selected version")
                go = st.form_submit_button("Roll back", type="primary", icon=":material/undo:")
            if go:
                if not confirm:
                    st.error("Tick the confirmation first.")
                elif not reason.strip():
                    st.error("A reason is required: it is recorded with the event and the alert.")
                else:
                    try:
                        done = operations.manual_rollback(store, s, actor=actor, reason=reason, to=target,
                                                          quarantine=quarantine, log=app.log_writer(s))
                    except (FaceguardError, ValueError) as err:
                        st.error(str(err))
                    else:
                        app.refresh()
                        app.flash(f"Rolled back to {done.restored_version}", ":material/undo:")
                        st.rerun()

# -- history -------------------------------------------------------------------------------------------
st.subheader("Event history")
MODEL_EVENTS = ["switch", "canary_start", "canary_stop", "promote", "rollback", "quarantine", "prune"]
events = app.query("events", s, kinds=MODEL_EVENTS, limit=200)
if events.empty:
    st.caption("No model events yet: switches, canaries, promotions and rollbacks appear here.")
else:
    view = events[["ts", "kind", "actor", "from_version", "to_version", "reason"]].copy()
    view["ts"] = view["ts"].map(app.when)
    view = view.fillna("–")
    st.dataframe(view, hide_index=True, width="stretch",
                 column_config={"ts": "time", "from_version": "from", "to_version": "to",
                                "reason": st.column_config.TextColumn(width="large")})
