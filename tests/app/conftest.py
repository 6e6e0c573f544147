"""AppTest fixtures: the app against a private model store and log (see ``fg_env``)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOME_PY = REPO / "Home.py"
PAGES = ["pages/home.py", "pages/blur.py", "pages/review.py", "pages/metrics.py", "pages/ab_analysis.py",
         "pages/models.py", "pages/system_status.py"]
# The first run loads MediaPipe and a detector; a loaded CI machine needs the headroom.
TIMEOUT_S = 60


@pytest.fixture
def steady_server(monkeypatch):
    """Run AppTests the way a server runs once any session has called ``st.navigation``.

    AppTest starts every run as a brand-new server (it resets
    ``PagesManager.uses_pages_directory``). A new server that finds ``pages/`` beside the entry
    script starts in folder navigation, which ``app_support.ensure_router`` leaves with a rerun,
    and a rerun drops the click that caused the run. A real server makes that switch once, on
    its first run; this fixture makes every AppTest run start after it.
    """
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import app_test

    class NavigationPagesManager(PagesManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            PagesManager.uses_pages_directory = False

    monkeypatch.setattr(app_test, "PagesManager", NavigationPagesManager)


@pytest.fixture
def app_env(fg_env, monkeypatch):
    """``fg_env`` with every password and review setting the app reads cleared."""
    monkeypatch.delenv("FACEGUARD_REVIEWER_PASSWORD", raising=False)
    yield fg_env
    import app_support

    app_support._engine.clear()  # closes this test's engine (log writer, sampler threads)
    app_support.refresh()


@pytest.fixture
def demo_env(app_env):
    from faceguard.log import write_demo_data

    write_demo_data(app_env, rows=20_000)
    return app_env


@pytest.fixture
def open_page(steady_server):
    """``open_page("pages/blur.py")``: an AppTest of Home.py switched to that page and run."""
    from streamlit.testing.v1 import AppTest

    def _open(page: str = "pages/home.py", **session):
        at = AppTest.from_file(str(HOME_PY), default_timeout=TIMEOUT_S)
        for k, v in session.items():
            at.session_state[k] = v
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        if page != "pages/home.py":
            at.switch_page(page).run()
        return at

    return _open
