"""End to end in a real browser: `streamlit run` on a free port, headless Chromium through
Selenium. Uploads a photo on the Blur page, downloads the result and checks the face is blurred,
then opens every page and saves a screenshot of each under tests/artifacts/.

Uses Debian's ``chromium`` and ``chromium-driver`` (tools/system-deps.sh installs them); never
lets Selenium Manager download anything. Skips, saying why, only where they cannot be found.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import REPO
from tests.conftest import ASTRONAUT_FACE, jpeg_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and os.path.exists(p)), None)
CHROMEDRIVER = next((p for p in ("/usr/bin/chromedriver", shutil.which("chromedriver") or "")
                     if p and os.path.exists(p)), None)
PAGES = [("home", ""), ("metrics", "metrics"), ("ab_analysis", "ab_analysis"), ("models", "models"),
         ("system_status", "system_status")]


def laplacian_var(rgb: np.ndarray, box) -> float:
    x1, y1, x2, y2 = box
    g = rgb[y1:y2, x1:x2].astype(np.float64).mean(axis=2)
    lap = g[1:-1, 1:-1] * -4 + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
    return float(lap.var())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


@pytest.fixture
def server(fg_env, tmp_path, monkeypatch):
    """The app under `streamlit run`, on a free localhost port, against a private data folder
    holding demo data (so the pages have something to draw) and review sampling at 100 %."""
    from faceguard.log import write_demo_data

    write_demo_data(fg_env, rows=20_000)
    port = free_port()
    env = {**os.environ, "FACEGUARD_REVIEW_SAMPLE_RATE": "1.0", "FACEGUARD_REVIEWER_PASSWORD": "e2e-review",
           "FACEGUARD_CONFIG": str(tmp_path / "none.toml"), "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "streamlit"), "run", str(REPO / "Home.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", 30, proc)
        yield f"http://127.0.0.1:{port}", fg_env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        print((tmp_path / "streamlit.log").read_text(errors="replace")[-3000:])


@pytest.fixture
def browser(tmp_path):
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium and chromium-driver are not installed (Debian: apt-get install chromium "
                    "chromium-driver; `make install` runs tools/system-deps.sh, which installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--user-data-dir={tmp_path / 'chrome-profile'}", "--window-size=1440,2400"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    os.environ["SE_OFFLINE"] = "true"  # belt and braces: Selenium Manager must never go online
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.set_page_load_timeout(30)
    try:
        yield driver, downloads
    finally:
        driver.quit()


def wait_for(driver, css: str, *, timeout: float = 30, text: str | None = None):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout)
    if text is None:
        return wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))
    return wait.until(lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, css) if text in e.text), False))


def settle(driver, timeout: float = 45) -> None:
    """Wait until the script run is over (the app root says ``notRunning`` and no spinner is
    left), then give the charts a moment to draw."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    time.sleep(0.5)
    while time.monotonic() < deadline:
        state = driver.find_element(By.CSS_SELECTOR, '[data-testid="stApp"]').get_attribute("data-test-script-state")
        spinning = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSpinner"]')
        if state == "notRunning" and not spinning:
            break
        time.sleep(0.2)
    else:
        raise TimeoutError(f"the page was still running after {timeout} s")
    time.sleep(1.5)


def shoot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def no_exception(driver) -> None:
    from selenium.webdriver.common.by import By

    errors = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not errors, errors[0].text[:2000]


def test_blur_in_a_real_browser_and_screenshots_of_every_page(server, browser, tmp_path, astronaut):
    from selenium.webdriver.common.by import By

    base, settings = server
    driver, downloads = browser
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(jpeg_bytes(astronaut))

    # Blur: upload, wait for the result, download it
    driver.get(f"{base}/blur")
    wait_for(driver, 'input[type="file"]').send_keys(str(photo))
    button = wait_for(driver, '[data-testid="stDownloadButton"] button', timeout=60, text="Download")
    settle(driver)
    no_exception(driver)
    shoot(driver, "blur")
    button.click()
    deadline = time.monotonic() + 20
    files: list[Path] = []
    while time.monotonic() < deadline:
        files = [p for p in downloads.iterdir() if not p.name.endswith(".crdownload")]
        if files:
            break
        time.sleep(0.2)
    assert files, "the download did not arrive"
    assert files[0].name == "astronaut_blurred.jpg"
    out = np.asarray(Image.open(io.BytesIO(files[0].read_bytes())).convert("RGB"))
    assert out.shape == astronaut.shape
    before, after = laplacian_var(astronaut, ASTRONAUT_FACE), laplacian_var(out, ASTRONAUT_FACE)
    assert after < 0.1 * before, f"face not blurred: Laplacian variance {before:.0f} -> {after:.0f}"

    # Review: sign in; the uploaded photo was kept for review (sampling at 100 %)
    driver.get(f"{base}/review")
    name = wait_for(driver, 'input[aria-label="Reviewer name"]')
    name.send_keys("e2e")
    driver.find_element(By.CSS_SELECTOR, 'input[type="password"]').send_keys("e2e-review")
    wait_for(driver, '[data-testid="stFormSubmitButton"] button', text="Unlock").click()
    wait_for(driver, '[data-testid="stForm"]', text="Save and next", timeout=30)
    settle(driver)
    no_exception(driver)
    shoot(driver, "review")

    for name, path in PAGES:
        driver.get(f"{base}/{path}")
        wait_for(driver, "h1", timeout=30)
        settle(driver)
        no_exception(driver)
        shoot(driver, name)
    assert sorted(p.stem for p in ARTIFACTS.glob("*.png")) >= sorted(["blur", "review", *(n for n, _ in PAGES)])
