"""Blur: drop photos, pick a version and a style, compare before/after, download."""

import dataclasses

import streamlit as st

import app_support as app
from faceguard.anonymize import AnonymizeOptions, Mode
from faceguard.errors import FaceguardError

MAX_UPLOAD_MB = 50
CURRENT = "current"  # the picker's "follow the live routing" choice
IMAGE_TYPES = ["jpg", "jpeg", "jpe", "jfif", "png", "webp", "bmp", "tif", "tiff", "gif", "avif", "mpo"]

app.ensure_router()
s = app.settings()
engine = app.engine(s)
store = engine.store

st.title(":material/blur_on: Blur photos")
st.caption("Photos are processed on this machine and never leave it. Results are re-encoded without any metadata "
           "(no EXIF, no GPS).")

current = app.safe(store.current, "Current version")
state = app.safe(store.state, "Registry state")
versions = app.safe(store.versions, "Model versions") or []
canary = state.canary.version if state and state.canary else None
quarantined = set(state.quarantined) if state else set()

controls, main = st.columns([1, 3], gap="large")
with controls.container(border=True):
    st.markdown("**Settings**")
    picked = st.selectbox(
        "Model version", [CURRENT, *versions], key="blur_version",
        format_func=lambda v: f"Current ({current})" if v == CURRENT else app.version_label(
            v, current=current, canary=canary, quarantined=quarantined),
        help="*Current* follows the live routing (a canary may serve a share of images). "
             "Pick a version to pin it; switching is instant, nothing restarts.",
    )
    version = None if picked == CURRENT else picked
    manifest = app.safe(lambda: store.manifest(version or current), "Manifest") if (version or current) else None
    base = AnonymizeOptions.from_dict(manifest.anonymizer) if manifest else AnonymizeOptions()
    mode = st.segmented_control("Style", [m.value for m in Mode], default=base.mode.value, required=True,
                                format_func=str.title, key="blur_mode", width="stretch")
    strength = st.slider("Strength", 0.5, 4.0, float(base.strength), 0.25, key="blur_strength",
                         help="Coarser blur / bigger mosaic blocks. At 1 a face is averaged down to about 4 cells across.")
    margin = st.slider("Margin", 0.0, 1.0, float(base.margin), 0.05, key="blur_margin",
                       help="Share of the face box added on each side (hair, ears and jaw identify people too).")
    show_boxes = st.toggle("Draw boxes and scores on the result", value=False, key="blur_boxes")
    options = dataclasses.replace(base, mode=Mode(mode or base.mode.value), strength=strength, margin=margin,
                                  show_boxes=show_boxes)

with main:
    files = st.file_uploader(
        "Drop photos here", type=IMAGE_TYPES, accept_multiple_files=True, key="blur_files",
        max_upload_size=MAX_UPLOAD_MB,
        help=f"JPEG, PNG, WebP, BMP, TIFF, GIF or AVIF, up to {MAX_UPLOAD_MB} MB and "
             f"{s.max_pixels / 1e6:,.0f} megapixels each.",
    )
    if not files:
        st.info("Drop one or more photos above. Each is shown before and after, with the faces found and their "
                "scores, and can be downloaded alone or with the others as a zip.", icon=":material/upload:")
        st.stop()

    opts_key = repr(sorted(options.to_dict().items()))
    done: list[tuple[str, object, bytes]] = []
    failed = 0
    progress = st.empty()
    for n, f in enumerate(files):
        key = f"{f.file_id}|{version}|{opts_key}"
        entry = app.recall(key)
        if entry is None:
            progress.progress(n / len(files), text=f"Processing {f.name} ({n + 1} of {len(files)})…")
            data = f.getvalue()
            try:
                if len(data) > MAX_UPLOAD_MB * 1024 * 1024:
                    raise ValueError(f"{len(data) / 2**20:.0f} MB is over the {MAX_UPLOAD_MB} MB limit")
                result = engine.process(data, name=f.name, version=version, options=options, keep_array=False)
                entry = ("ok", result, app.annotated_original(data, result, max_pixels=s.max_pixels))
            except (FaceguardError, ValueError) as err:
                entry = ("error", str(getattr(err, "reason", err)), None)
            except Exception as err:  # noqa: BLE001 - one bad file must never break the page
                entry = ("error", f"unexpected {type(err).__name__}: {err}", None)
            app.remember(key, entry)
        status, payload, before = entry
        if status == "ok":
            done.append((f.name, payload, before))
        else:
            failed += 1
            st.error(f"**{f.name}** was not processed: {payload}", icon=":material/broken_image:")
    progress.empty()

    if done:
        with st.container(horizontal=True, vertical_alignment="center"):
            faces = sum(len(r.detections) for _, r, _ in done)
            st.markdown(f"**{len(done)} photo{'s' * (len(done) != 1)} blurred**, {faces} face{'s' * (faces != 1)} "
                        f"hidden" + (f" · {failed} failed" if failed else ""))
            if len(done) > 1:
                st.download_button(
                    "Download all (zip)", app.zip_outputs([(app.output_name(n, r.output_format), r.output) for n, r, _ in done]),
                    file_name="faceguard_blurred.zip", mime="application/zip", icon=":material/folder_zip:",
                    type="primary", key="blur_zip", on_click="ignore")

    for i, (name, r, before) in enumerate(done):
        with st.container(border=True):
            with st.container(horizontal=True, vertical_alignment="center"):
                st.markdown(f"**{name}**")
                st.badge(r.model_version + (" · canary" if r.variant.value == "canary" else ""),
                         color="orange" if r.variant.value == "canary" else "blue", icon=":material/deployed_code:")
                st.badge(f"{len(r.detections)} face{'s' * (len(r.detections) != 1)}",
                         color="green" if len(r.detections) else "gray", icon=":material/face:")
                st.badge(f"{r.total_ms:,.0f} ms", color="gray", icon=":material/timer:")
                st.space("stretch")
                st.download_button("Download", r.output, file_name=app.output_name(name, r.output_format),
                                   mime=app.mime(r.output_format), icon=":material/download:", key=f"dl_{i}",
                                   on_click="ignore")
            left, right = st.columns(2)
            left.image(before, caption="Before: faces found, with scores", width="stretch")
            right.image(r.output, caption=f"After: {options.mode.value}", width="stretch")
            if len(r.detections):
                rows = [{"face": k + 1, "score": d["score"], "x": d["x"], "y": d["y"], "w": d["w"], "h": d["h"]}
                        for k, d in enumerate(r.detections.to_records())]
                with st.expander("Detections and timings"):
                    st.dataframe(rows, hide_index=True, width="stretch",
                                 column_config={"score": st.column_config.ProgressColumn(
                                     "score", min_value=0.0, max_value=1.0, format="%.2f")})
                    st.caption(" · ".join(f"{k} {v:.1f} ms" for k, v in r.timings_ms.items()))
            else:
                st.caption("No face found: the photo is returned unchanged (metadata removed). "
                           f"{' · '.join(f'{k} {v:.1f} ms' for k, v in r.timings_ms.items())}")
            if r.review_path:
                st.caption(f":material/visibility: Kept for review ({r.flag_reason}); deleted after "
                           f"{s.review.retention_days:g} days, shown only to reviewers.")
