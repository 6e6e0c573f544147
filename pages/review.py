"""Review: judge each detection of a flagged image, mark missed faces, one image after another."""

import base64
import io

import altair as alt
import pandas as pd
import streamlit as st
from PIL import Image

import app_support as app
from faceguard import reviewing
from faceguard.errors import FaceguardError

CHART_MAX_W = 720
CORRECT, WRONG = "Correct", "False positive"

app.ensure_router()
s = app.settings()
st.title(":material/rule: Review")
st.info(
    "**Privacy.** Images are kept for review only while review sampling is on "
    f"({s.review.sample_rate:.0%} of stable traffic, {s.review.canary_sample_rate:.0%} of canary traffic), "
    f"stored under `{s.review_dir}` and deleted after {s.review.retention_days:g} days. They are shown to "
    "reviewers only, blurred; reveal one face at a time when you need to. **Every reveal is logged with your "
    "name and the time.**",
    icon=":material/privacy_tip:",
)

if not app.unlock_form(app.reviewer_access(s), state_key=app.REVIEW_UNLOCKED, title="Review images",
                       name_key=app.REVIEWER, name_label="Reviewer name"):
    st.stop()
reviewer = st.session_state[app.REVIEWER]
skipped: list = st.session_state.setdefault(app.REVIEW_SKIPPED, [])

try:
    item = reviewing.next_for_review(s, reviewer, skip=skipped)
except FaceguardError as err:
    st.error(f"The review queue cannot be read: {err}")
    st.stop()

with st.container(horizontal=True, vertical_alignment="center"):
    st.markdown(f":material/person: Reviewing as **{reviewer}**")
    if item is not None:
        more = "+" if item.queue_size >= reviewing.QUEUE_BATCH else ""
        st.badge(f"{item.queue_size}{more} waiting", color="blue", icon=":material/inbox:")
    if skipped:
        st.badge(f"{len(skipped)} skipped", color="gray")
        if st.button("Bring skipped back", type="tertiary", icon=":material/undo:"):
            skipped.clear()
            st.rerun()
    st.space("stretch")
    app.lock_button(app.REVIEW_UNLOCKED, label="Sign out")

if item is None:
    st.success("**Nothing waiting for review.** Flagged images appear here when review sampling keeps them: "
               "shadow disagreements, scores close to the threshold and a random sample. Blur photos on the "
               "**Blur** page (or run a canary) to fill the queue.", icon=":material/task_alt:")
    st.page_link("pages/blur.py", label="Go to Blur", icon=":material/blur_on:")
    if not app.has_images(s):
        app.empty_state(s, "The processing log is empty, so there is nothing to review yet.")
    st.stop()

image_id = item.image_id
missed: list = st.session_state.setdefault(app.REVIEW_MISSED, {}).setdefault(image_id, [])
revealed = st.session_state.get(app.REVIEW_REVEALED)
if revealed and revealed[0] != image_id:
    revealed = None
    st.session_state.pop(app.REVIEW_REVEALED, None)

try:
    preview = reviewing.blurred_preview(s, image_id, item=item, extra_boxes=missed)
except FaceguardError as err:
    st.warning(f"{err}. Skipping it.")
    skipped.append(image_id)
    st.stop()


def _image_chart(rgb, width_px: int):
    """The preview as a chart background with a drag-to-select box in image pixels."""
    h, w = rgb.shape[:2]
    scale = min(1.5, width_px / w)  # small images drawn a little larger, so boxes are easy to drag
    cw, ch = round(w * scale), round(h * scale)
    buf = io.BytesIO()
    Image.fromarray(rgb).resize((cw, ch)).save(buf, format="JPEG", quality=85)
    url = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    brush = alt.selection_interval(name="box", encodings=["x", "y"], empty=False,
                                   mark=alt.BrushConfig(fill="#ff8c00", fillOpacity=0.15, stroke="#ff8c00"))
    xs = alt.Scale(domain=[0, w], nice=False, zero=False)
    ys = alt.Scale(domain=[0, h], nice=False, zero=False, reverse=True)
    img = alt.Chart(pd.DataFrame({"x": [0], "y": [0], "url": [url]})).mark_image(
        width=cw, height=ch, align="left", baseline="top").encode(
        x=alt.X("x:Q", scale=xs, axis=None), y=alt.Y("y:Q", scale=ys, axis=None), url="url:N")
    # an invisible grid the brush can select over
    grid = alt.Chart(pd.DataFrame({"x": [0, w], "y": [0, h]})).mark_point(opacity=0).encode(
        x=alt.X("x:Q", scale=xs, axis=None), y=alt.Y("y:Q", scale=ys, axis=None)).add_params(brush)
    return alt.layer(img, grid).properties(width=cw, height=ch).configure_view(strokeWidth=0)


left, right = st.columns([3, 2], gap="large")
with left:
    event = st.altair_chart(_image_chart(preview, CHART_MAX_W), on_select="rerun", selection_mode="box",
                            key=f"chart_{image_id}", width="content")
    box = None
    sel = (event or {}).get("selection", {}).get("box") if event else None
    if sel and "x" in sel and "y" in sel:
        (x1, x2), (y1, y2) = sorted(sel["x"]), sorted(sel["y"])
        if x2 - x1 >= 4 and y2 - y1 >= 4:
            box = {"x": round(x1, 1), "y": round(y1, 1), "w": round(x2 - x1, 1), "h": round(y2 - y1, 1)}
    with st.container(horizontal=True, vertical_alignment="center"):
        if box:
            if st.button("Add as missed face", icon=":material/add_box:", type="primary",
                         help="The box you dragged is recorded as a face the detector missed."):
                missed.append(box)
                st.rerun()
            if st.button("Reveal this region", icon=":material/visibility:",
                         help="Shows the marked region sharp; logged with your name."):
                try:
                    crop = reviewing.reveal_region(s, image_id, box, reviewer, item=item, writer=app.log_writer(s))
                    st.session_state[app.REVIEW_REVEALED] = (image_id, "marked region", crop)
                    st.rerun()
                except (FaceguardError, ValueError) as err:
                    st.error(str(err))
        else:
            st.caption(":material/drag_pan: Drag a box on the image to mark a face the detector missed.")
    if missed:
        st.markdown(f"**Missed faces to add** ({len(missed)}, orange):")
        for k, b in enumerate(missed):
            with st.container(horizontal=True, vertical_alignment="center"):
                st.caption(f"{k + 1}. x {b['x']:.0f}, y {b['y']:.0f}, {b['w']:.0f}×{b['h']:.0f} px")
                if st.button("Remove", key=f"rm_{image_id}_{k}", type="tertiary", icon=":material/close:"):
                    missed.pop(k)
                    st.rerun()

with right:
    with st.container(horizontal=True):
        st.badge(item.model_version, color="blue", icon=":material/deployed_code:")
        if item.variant != "stable":
            st.badge(item.variant, color="orange")
        for reason in item.reasons:
            st.badge(reason.replace("_", " "), color="violet", icon=":material/flag:")
    st.caption(f"{app.when(item.ts)} · {item.width}×{item.height} px · {item.n_faces} detection"
               f"{'s' * (item.n_faces != 1)}" + (f" · shadow {item.shadow_version}" if item.shadow_version else ""))

    n = item.n_faces
    if n:
        def _reveal() -> None:
            choice = st.session_state.get(f"reveal_{image_id}")
            if choice is None:
                st.session_state.pop(app.REVIEW_REVEALED, None)
                return
            try:
                crop = reviewing.reveal_face(s, image_id, choice - 1, reviewer, item=item, writer=app.log_writer(s))
                st.session_state[app.REVIEW_REVEALED] = (image_id, f"face {choice}", crop)
            except FaceguardError as err:
                st.session_state[app.FLASH] = (f"Reveal failed: {err}", ":material/error:")

        st.pills("Reveal one face (logged)", list(range(1, n + 1)), selection_mode="single",
                 key=f"reveal_{image_id}", on_change=_reveal, format_func=lambda k: f"Face {k}",
                 help="Shows one face sharp at a time. Each reveal is logged with your name and the time.")
    if revealed:
        with st.container(border=True):
            st.image(app.shrink(revealed[2], 360), caption=f"Revealed: {revealed[1]} (logged)")
            if st.button("Hide", icon=":material/visibility_off:", type="tertiary"):
                st.session_state.pop(app.REVIEW_REVEALED, None)
                st.session_state.pop(f"reveal_{image_id}", None)
                st.rerun()

    with st.form(f"verdicts_{image_id}", border=True):
        if n:
            st.markdown("**Is each numbered box a face?**")
            scores = item.detections.confidence.tolist()
            for k in range(n):
                st.radio(f"Face {k + 1} · score {scores[k]:.2f}", [CORRECT, WRONG], horizontal=True,
                         key=f"v_{image_id}_{k}")
        else:
            st.markdown("**No detection.** Mark any missed face on the image, then save.")
        st.caption("Every box starts as *Correct*: change the wrong ones. "
                   "**Ctrl+Enter** saves, **Alt+S** skips.")
        with st.container(horizontal=True):
            save = st.form_submit_button("Save and next", type="primary", icon=":material/check:", shortcut="Ctrl+Enter")
            skip = st.form_submit_button("Skip", icon=":material/skip_next:", shortcut="Alt+S")

    if skip:
        skipped.append(image_id)
        st.session_state.pop(app.REVIEW_REVEALED, None)
        st.rerun()
    if save:
        verdicts = {k: "false_positive" if st.session_state.get(f"v_{image_id}_{k}") == WRONG else "correct"
                    for k in range(n)}
        try:
            reviewing.submit_verdicts(s, image_id, reviewer, verdicts, missed, item=item, writer=app.log_writer(s))
        except (FaceguardError, ValueError) as err:
            st.error(str(err))
        else:
            wrong = sum(v == "false_positive" for v in verdicts.values())
            st.session_state[app.REVIEW_MISSED].pop(image_id, None)
            st.session_state.pop(app.REVIEW_REVEALED, None)
            app.refresh()
            app.flash(f"Saved: {n - wrong} correct, {wrong} false positive, {len(missed)} missed")
            st.rerun()
