"""The pages stay thin: no database, detector or OpenCV imports, no SQL, and each page is routed."""

from __future__ import annotations

import ast
import re

import pytest

from tests.app.conftest import PAGES, REPO

APP_FILES = ["Home.py", "app_support.py", "app_state.py", "app_auth.py", "app_format.py", "app_charts.py", *PAGES]
FORBIDDEN_IMPORTS = {"duckdb", "mediapipe", "cv2"}
SQL = re.compile(r"\b(SELECT\s+.+\s+FROM|INSERT\s+INTO|CREATE\s+TABLE|DELETE\s+FROM|UPDATE\s+\w+\s+SET)\b",
                 re.IGNORECASE | re.DOTALL)


def imported_modules(path):
    tree = ast.parse((REPO / path).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("path", APP_FILES)
def test_no_database_detector_or_opencv_imports(path):
    assert not FORBIDDEN_IMPORTS & set(imported_modules(path))


@pytest.mark.parametrize("path", APP_FILES)
def test_no_sql(path):
    strings = [n.value for n in ast.walk(ast.parse((REPO / path).read_text()))
               if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert not [s for s in strings if SQL.search(s)]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_is_registered_and_routed_through_home(page):
    assert f'st.Page("{page}"' in (REPO / "Home.py").read_text()
    assert "app.ensure_router()" in (REPO / page).read_text()


def test_every_page_file_is_in_the_navigation():
    on_disk = sorted(f"pages/{p.name}" for p in (REPO / "pages").glob("*.py"))
    assert on_disk == sorted(PAGES)
