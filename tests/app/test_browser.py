"""End to end in a real browser: upload a table, run BulkFormer, see the map, download the CSV.

Starts ``streamlit run app.py`` on a free port and drives headless Chromium with selenium.
Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium
chromium-driver``); skipped when they are absent. Uses the shipped demo model and demo counts
(``paths.demo_dir()``, which ``BULKFORMER_DEMO_DIR`` can point elsewhere).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bulkformer import paths
from tests.waiting import EVENT_WAIT_S

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
N_SAMPLES = 12  # enough for a UMAP map (10+), small enough to run in seconds
PAGE_TIMEOUT = EVENT_WAIT_S  # waits on what the page shows: generous, a slow machine must not fail them
RUN_TIMEOUT = EVENT_WAIT_S

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.is_file() or not Path(CHROMEDRIVER).is_file(),
                       reason="needs Debian chromium and chromium-driver (apt-get install chromium chromium-driver)"),
    pytest.mark.skipif(not (paths.demo_dir() / "demo_counts.csv.gz").is_file()
                       or not (paths.demo_model_dir() / "config.json").is_file(),
                       reason="demo assets (assets/demo) are not built"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    logs = tmp_path_factory.mktemp("streamlit")
    env = {**os.environ, "BULKFORMER_CACHE_DIR": str(logs / "cache"), "PYTHONUNBUFFERED": "1"}
    with (logs / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + PAGE_TIMEOUT
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"streamlit did not start:\n{(logs / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[tuple[object, Path]]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
        "safebrowsing.enabled": False,
    })
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver, downloads
    finally:
        driver.quit()


def _wait(driver, condition, timeout: float = PAGE_TIMEOUT, what: str = ""):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # Streamlit re-renders elements while the script reruns: an element found a moment ago
    # may be gone, so a stale reference just means "look again".
    return WebDriverWait(driver, timeout, poll_frequency=0.25,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition, message=what)


def _click_button(driver, label: str) -> None:
    """Click the button labelled ``label`` once it is there (retrying through re-renders)."""
    from selenium.webdriver.common.by import By

    def click(d):
        for b in d.find_elements(By.CSS_SELECTOR, "button"):
            if b.text.strip().endswith(label) and b.is_displayed() and b.is_enabled():
                b.click()
                return True
        return False

    _wait(driver, click, what=f"button {label!r}")


def _go(driver, page: str) -> None:
    """Click a sidebar link (a fresh URL would start a new session and lose the upload)."""
    from selenium.webdriver.common.by import By

    def click(d):
        for a in d.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a'):
            if a.get_attribute("href").rstrip("/").endswith(page):
                a.click()
                return True
        return False

    _wait(driver, click, what=f"sidebar link {page}")


def _page_text(driver) -> str:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(20):  # the main block is replaced while Streamlit re-renders
        try:
            return driver.find_element(By.CSS_SELECTOR, '[data-testid="stMain"]').text
        except StaleElementReferenceException:
            time.sleep(0.1)
    raise AssertionError("the page kept re-rendering")


def test_upload_run_map_and_download_embeddings(server: str, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver, downloads = browser
    counts = pd.read_csv(paths.demo_dir() / "demo_counts.csv.gz", index_col=0)
    small = counts.iloc[:, :N_SAMPLES]
    table = tmp_path / "my_counts.csv"
    small.to_csv(table)

    driver.get(server)
    _wait(driver, lambda d: "BulkFormer Studio" in d.find_element(By.TAG_NAME, "body").text, what="home page")
    _go(driver, "upload")
    file_input = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, 'input[type="file"]') or False,
                       what="file input")[0]
    file_input.send_keys(str(table))
    _wait(driver, lambda d: "Quality check" in _page_text(d) and "Samples" in _page_text(d),
          timeout=RUN_TIMEOUT, what="QC report")
    assert "my_counts.csv" in _page_text(driver)
    assert "Traceback" not in _page_text(driver)

    _go(driver, "embeddings")
    _click_button(driver, "Run BulkFormer")
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="stPlotlyChart"] .main-svg'),
          timeout=RUN_TIMEOUT, what="the UMAP plot")
    _wait(driver, lambda d: "UMAP map of 12 samples" in _page_text(d), what="UMAP title")
    time.sleep(1.0)
    driver.save_screenshot(str(tmp_path / "embeddings.png"))
    shots = os.environ.get("BULKFORMER_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(shots) / "embeddings.png"))

    _go(driver, "downloads")
    _click_button(driver, "Sample embeddings (CSV)")
    name = "DEMO_my_counts_sample_embeddings.csv"

    def downloaded(_driver):
        done = [p for p in downloads.iterdir() if p.suffix == ".csv"]
        return done or False

    files = _wait(driver, downloaded, timeout=PAGE_TIMEOUT, what="the downloaded CSV")
    assert files[0].name == name  # the demo model's file says so in its name
    assert files[0].read_text().startswith("sample_id,emb_0,")  # a plain table: a header, then data rows
    frame = pd.read_csv(files[0], index_col=0)  # the default read users type
    assert list(frame.index) == list(small.columns)
    assert frame.shape[0] == N_SAMPLES and frame.shape[1] >= 2
    assert np.isfinite(frame.to_numpy(dtype=float)).all()
    assert frame.to_numpy().std() > 0
    if shots:
        driver.save_screenshot(str(Path(shots) / "downloads.png"))

    # a reload of the page keeps the data and the results: the browser's cookie, not the URL, says whose
    assert "bf_reload" in {c["name"] for c in driver.get_cookies()}
    assert "bf_reload" not in driver.current_url
    driver.refresh()
    _wait(driver, lambda d: "Sample embeddings (CSV)" in _page_text(d), timeout=RUN_TIMEOUT,
          what="the downloads, after a reload")
    _go(driver, "embeddings")
    _wait(driver, lambda d: "UMAP map of 12 samples" in _page_text(d), what="the map, after a reload")
    assert "my_counts.csv" in _page_text(driver)


def test_a_new_upload_clears_the_last_files_error_before_reading(server: str, browser, tmp_path: Path) -> None:
    """Issue #26 item 8: after an upload that failed, the next file's reading must not sit under
    the old file's error. While the new table is still being read (its spinner is up), the
    error is gone: the page clears it before the slow part, not after.

    Only a browser shows this: Streamlit keeps a rerun's old elements on screen (greyed) until
    the rerun replaces them, and AppTest sees only the finished page."""
    from selenium.webdriver.common.by import By

    driver, _ = browser
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    counts = pd.read_csv(paths.demo_dir() / "demo_counts.csv.gz", index_col=0)
    big = pd.concat([counts, counts.add_suffix("_again")], axis=1)  # reading takes seconds: time to look
    table = tmp_path / "big_counts.csv.gz"
    big.to_csv(table)

    driver.get(server)
    _go(driver, "upload")
    file_input = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, 'input[type="file"]') or False,
                       what="file input")[0]
    file_input.send_keys(str(empty))
    _wait(driver, lambda d: "empty.csv is empty." in _page_text(d), timeout=RUN_TIMEOUT, what="the empty file's error")

    file_input = driver.find_elements(By.CSS_SELECTOR, 'input[type="file"]')[0]
    file_input.send_keys(str(table))
    reading = "Reading your table and matching its genes to the model"
    text = _wait(driver, lambda d: t if reading in (t := _page_text(d)) else False, timeout=RUN_TIMEOUT,
                 what="the new table being read")
    assert "empty.csv is empty." not in text, text
    _wait(driver, lambda d: "Quality check" in _page_text(d), timeout=RUN_TIMEOUT, what="the new table's QC")
    assert "empty.csv is empty." not in _page_text(driver)
