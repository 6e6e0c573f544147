"""Every page through ``streamlit.testing.v1.AppTest``: empty log, demo log, and the actions
that write (blur, review verdict, reveal, rollback)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import app_support
from faceguard.log import queries
from faceguard.registry import ModelStore
from tests.app.conftest import PAGES
from tests.conftest import ASTRONAUT_FACE


def texts(at) -> str:
    """Everything a person reads on the page, as one string."""
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [w.value for w in at.warning]
    parts += [i.value for i in at.info] + [s.value for s in at.success] + [c.value for c in at.caption]
    parts += [f"{m.label} {m.value}" for m in at.metric] + [h.value for h in (*at.title, *at.header, *at.subheader)]
    return "\n".join(str(p) for p in parts)


def laplacian_var(rgb: np.ndarray, box) -> float:
    x1, y1, x2, y2 = box
    g = rgb[y1:y2, x1:x2].astype(np.float64).mean(axis=2)
    lap = g[1:-1, 1:-1] * -4 + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
    return float(lap.var())


# -- rendering ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_an_empty_log(app_env, open_page, page):
    at = open_page(page)
    assert not at.exception, [e.message for e in at.exception]
    if page in ("pages/home.py", "pages/metrics.py", "pages/ab_analysis.py", "pages/system_status.py"):
        assert any(b.label == "Load demo data" for b in at.button), f"{page} offers no demo data on an empty log"


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_a_demo_log(demo_env, open_page, page):
    at = open_page(page)
    assert not at.exception, [e.message for e in at.exception]
    assert not any(b.label == "Load demo data" for b in at.button)
    shown = texts(at)
    expected = {
        "pages/home.py": "Images today", "pages/metrics.py": "Quality (from reviews, per day)",
        "pages/ab_analysis.py": "Verdict:", "pages/models.py": "Promotion gate",
        "pages/system_status.py": "Rollback rules", "pages/blur.py": "Drop one or more photos",
        "pages/review.py": "Privacy.",
    }[page]
    assert expected in shown


def test_demo_button_fills_the_log(app_env, open_page, monkeypatch):
    monkeypatch.setattr(app_support, "DEMO_ROWS", 2_000)
    at = open_page("pages/metrics.py")
    next(b for b in at.button if b.label == "Load demo data").click().run()
    assert not at.exception
    assert queries.log_status(app_env).rows["images"] == 2_000
    assert "Quality (from reviews, per day)" in texts(at)


# -- Blur ---------------------------------------------------------------------------------------------
def test_blur_page_processes_uploads_and_reports_bad_files(app_env, open_page, astronaut, astronaut_jpeg):
    at = open_page("pages/blur.py")
    at.file_uploader[0].set_value([("astronaut.jpg", astronaut_jpeg, "image/jpeg"),
                                   ("notes.jpg", b"this is not an image", "image/jpeg")]).run()
    assert not at.exception, [e.message for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "notes.jpg" in errors[0] and "not an image" in errors[0]
    assert [d.label for d in at.download_button] == ["Download"]
    assert "1 face" in texts(at)

    results = [v for v in at.session_state[app_support.BLUR_RESULTS].values() if v[0] == "ok"]
    out = np.asarray(Image.open(io.BytesIO(results[0][1].output)).convert("RGB"))
    assert laplacian_var(out, ASTRONAUT_FACE) < 0.1 * laplacian_var(astronaut, ASTRONAUT_FACE)

    app_support.log_writer(app_env).ingest_now()
    logged = queries.recent_images(app_env, limit=10)
    assert sorted(logged["status"]) == ["not_an_image", "ok"]
    assert set(logged["source"]) == {"app"}


def test_blur_version_picker_pins_a_version_without_reloading_the_engine(app_env, open_page, astronaut_jpeg):
    at = open_page("pages/blur.py")
    engine = app_support.engine(app_env)
    at.file_uploader[0].set_value(("a.jpg", astronaut_jpeg, "image/jpeg")).run()
    at.selectbox(key="blur_version").set_value("v1.0.0-prod").run()
    assert not at.exception
    assert app_support.engine(app_env) is engine  # same engine, detectors of both versions cached in it
    assert "v1.0.0-prod" in texts(at)
    assert {"v1.0.0-prod", "v1.1.0-prod"} <= set(engine.detectors._models)


# -- Review -------------------------------------------------------------------------------------------
@pytest.fixture
def kept_image(app_env, monkeypatch, astronaut_jpeg):
    """One processed image kept for review (sampling at 100 %), ingested; returns (settings, image id)."""
    monkeypatch.setenv("FACEGUARD_REVIEW_SAMPLE_RATE", "1.0")
    monkeypatch.setenv("FACEGUARD_REVIEWER_PASSWORD", "let-me-review")
    from faceguard.config import Settings
    from faceguard.pipeline import Engine

    settings = Settings.load()
    with Engine.from_settings(settings, source="app") as engine:
        result = engine.process(astronaut_jpeg, name="astronaut.jpg")
    assert result.flagged and result.review_path
    return settings, result.image_id


def _sign_in(at, name="ann", password="let-me-review"):
    at.text_input(key=f"{app_support.REVIEW_UNLOCKED}_name").input(name)
    at.text_input(key=f"{app_support.REVIEW_UNLOCKED}_password").input(password)
    next(b for b in at.form_submit_button if b.label == "Unlock").click()
    return at.run()


def test_review_is_locked_without_a_reviewer_password(app_env, open_page):
    at = open_page("pages/review.py")
    assert "Review images are locked" in texts(at)
    assert not at.image and not at.radio


def test_review_verdict_lands_in_the_database(kept_image, open_page):
    settings, image_id = kept_image
    at = _sign_in(open_page("pages/review.py"))
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state[app_support.REVIEWER] == "ann"
    radios = at.radio
    assert len(radios) == 1 and radios[0].value == "Correct"
    radios[0].set_value("False positive")
    next(b for b in at.form_submit_button if b.label == "Save and next").click()
    at.run()
    assert not at.exception, [e.message for e in at.exception]

    rows = queries.reviews_for(settings, image_id)
    assert list(rows["verdict"]) == ["false_positive"] and list(rows["reviewer"]) == ["ann"]
    assert list(rows["detection_index"]) == [0]
    assert "Nothing waiting for review" in texts(at)  # the queue moved on


def test_review_reveal_is_logged_with_who_and_when(kept_image, open_page):
    settings, image_id = kept_image
    at = _sign_in(open_page("pages/review.py"), name="bob")
    at.pills(key=f"reveal_{image_id}").set_value(1).run()
    assert not at.exception, [e.message for e in at.exception]
    shown_id, label, crop = at.session_state[app_support.REVIEW_REVEALED]
    assert (shown_id, label) == (image_id, "face 1") and crop.shape[0] > 80
    events = queries.events(settings, kinds=["reveal"])
    assert list(events["actor"]) == ["bob"]
    assert events.iloc[0]["evidence"]["image_id"] == image_id
    assert events.iloc[0]["ts"] is not None


def test_review_wrong_password_stays_locked(kept_image, open_page):
    at = _sign_in(open_page("pages/review.py"), password="guess")
    assert "Wrong password." in texts(at)
    assert not at.radio


# -- Models: admin controls, rollback ------------------------------------------------------------------
def test_admin_controls_are_locked_without_the_password(app_env, open_page):
    at = open_page("pages/models.py")
    shown = texts(at)
    assert "Model controls are locked" in shown and "FACEGUARD_ADMIN_PASSWORD" in shown
    labels = [b.label for b in at.button] + [b.label for b in at.form_submit_button]
    assert not {"Roll back", "Promote", "Start canary", "Unlock"} & set(labels)


def test_admin_controls_need_the_right_password(app_env, open_page, monkeypatch):
    monkeypatch.setenv("FACEGUARD_ADMIN_PASSWORD", "s3cret")
    at = open_page("pages/models.py")
    at.text_input(key=f"{app_support.ADMIN_UNLOCKED}_name").input("ops")
    at.text_input(key=f"{app_support.ADMIN_UNLOCKED}_password").input("wrong")
    next(b for b in at.form_submit_button if b.label == "Unlock").click()
    at.run()
    assert "Wrong password." in texts(at)
    assert "Roll back" not in [b.label for b in at.form_submit_button]


def test_rollback_from_the_models_page_switches_version_and_shows_the_banner(app_env, open_page, monkeypatch):
    monkeypatch.setenv("FACEGUARD_ADMIN_PASSWORD", "s3cret")
    store = ModelStore.from_settings(app_env)
    before, target = store.current(), store.previous_stable()
    assert target and target != before
    at = open_page("pages/models.py")
    at.text_input(key=f"{app_support.ADMIN_UNLOCKED}_name").input("ops")
    at.text_input(key=f"{app_support.ADMIN_UNLOCKED}_password").input("s3cret")
    next(b for b in at.form_submit_button if b.label == "Unlock").click()
    at.run()
    at.segmented_control(key="models_action").set_value("Rollback").run()
    form_inputs = [t for t in at.text_input if t.label == "Reason (required)"]
    form_inputs[0].input("faces come out sharp")
    next(c for c in at.checkbox if c.label.startswith("I confirm")).check()
    next(b for b in at.form_submit_button if b.label == "Roll back").click()
    at.run()
    assert not at.exception, [e.message for e in at.exception]

    assert store.current() == target
    assert before in store.state().quarantined
    assert f"Restored to stable version {target}" in texts(at)
    events = queries.events(app_env, kinds=["rollback"])
    assert list(events["actor"]) == ["ops"] and events.iloc[0]["reason"] == "faces come out sharp"

    # the banner shows on every page until someone acknowledges it
    at.switch_page("pages/home.py").run()
    assert f"Restored to stable version {target}" in texts(at)
    at.button(key="banner_ack").click().run()
    assert "Restored to stable version" not in texts(at)


def test_a_deep_link_on_a_fresh_server_still_runs_inside_home(app_env):
    """Without ``steady_server``: every AppTest run is a fresh server in folder navigation."""
    from streamlit.testing.v1 import AppTest

    from faceguard import operations
    from tests.app.conftest import HOME_PY, TIMEOUT_S

    store = app_support.store(app_env)
    done = operations.manual_rollback(store, app_env, actor="ops", reason="test", log=app_support.log_writer(app_env))
    at = AppTest.from_file(str(HOME_PY), default_timeout=TIMEOUT_S).run()
    at.switch_page("pages/metrics.py").run()
    assert not at.exception, [e.message for e in at.exception]
    shown = texts(at)
    assert "Metrics" in shown and f"Restored to stable version {done.restored_version}" in shown  # Home.py's banner


def test_blur_page_says_which_file_is_too_large(app_env, open_page, monkeypatch, astronaut_jpeg):
    monkeypatch.setenv("FACEGUARD_MAX_PIXELS", "100000")  # the 512x512 astronaut is 262,144 pixels
    at = open_page("pages/blur.py")
    at.file_uploader[0].set_value(("big.jpg", astronaut_jpeg, "image/jpeg")).run()
    assert not at.exception
    [error] = [e.value for e in at.error]
    assert "big.jpg" in error and "over the limit" in error
    assert not at.download_button


def test_canary_controls_start_and_stop_a_canary(app_env, open_page, monkeypatch):
    monkeypatch.setenv("FACEGUARD_ADMIN_PASSWORD", "s3cret")
    at = open_page("pages/models.py", **{app_support.ADMIN_UNLOCKED: True, app_support.OPERATOR: "ops"})
    at.selectbox(key="canary_version").set_value("v1.2.0-beta")
    at.slider(key="canary_percent").set_value(10)
    next(t for t in at.text_input if t.label == "Reason").input("try the tiled detector")
    next(c for c in at.checkbox if c.label.startswith("Force")).check()
    next(b for b in at.form_submit_button if b.label == "Start canary").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    canary = ModelStore.from_settings(app_env).state().canary
    assert (canary.version, canary.percent, canary.actor) == ("v1.2.0-beta", 10.0, "ops")

    next(b for b in at.form_submit_button if b.label == "Stop canary").click()
    at.run()
    assert ModelStore.from_settings(app_env).state().canary is None
    assert {"canary_start", "canary_stop"} <= set(queries.events(app_env)["kind"])


def test_review_hide_puts_the_face_back_under_blur(kept_image, open_page):
    settings, image_id = kept_image
    at = _sign_in(open_page("pages/review.py"))
    at.pills(key=f"reveal_{image_id}").set_value(1).run()
    assert app_support.REVIEW_REVEALED in at.session_state
    next(b for b in at.button if b.label == "Hide").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert app_support.REVIEW_REVEALED not in at.session_state
    assert at.pills(key=f"reveal_{image_id}").value is None
