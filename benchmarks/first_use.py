"""First use: how long a fresh server takes to show Home and the next page, and the first UMAP
map of a fresh process with numba's on-disk cache empty and then filled.

``app``: starts ``streamlit run app.py`` (headless, its own empty cache folder) with headless
Chromium already open, and reports the seconds from the start of the server to its health
endpoint answering, to Home's title and to Home drawn in full (its last element, the privacy
note, on screen and the script finished); then, after ``--read`` seconds on Home (a user
reading it), the seconds from clicking *Upload & QC* to that page drawn in full.

``umap``: two fresh processes one after the other, each importing the package and drawing one
UMAP map of 200 random samples × 640 dimensions, sharing an empty ``BULKFORMER_CACHE_DIR``:
the first compiles (cold cache), the second reads what the first kept (warm cache).

    python benchmarks/first_use.py app [--read 20]
    python benchmarks/first_use.py umap

Not a test: nothing is asserted. Other work on the same cores changes every number.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UMAP_PROBE = """
import time
t0 = time.perf_counter()
import numpy as np
from bulkformer.analysis._projection import project
x = np.random.default_rng(0).normal(size=(200, 640))
project(x, method="umap")
print(f"{time.perf_counter() - t0:.1f}")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(condition, timeout: float = 300.0) -> float:
    """Poll ``condition`` every 0.1 s; the time it first held (perf_counter)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            if condition():
                return time.perf_counter()
        except Exception:  # noqa: BLE001 - a page mid-render, a server not up yet: look again
            pass
        time.sleep(0.1)
    raise TimeoutError("gave up waiting")


def _drawn(driver, css: str) -> bool:
    """An element matching ``css`` is on the page and the script has finished (no running indicator)."""
    from selenium.webdriver.common.by import By

    running = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
    return bool(driver.find_elements(By.CSS_SELECTOR, css)) and not any(e.is_displayed() for e in running)


def app(read_s: float) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"  # Debian's (apt-get install chromium chromium-driver)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "BULKFORMER_CACHE_DIR": cache}
        start = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            health = _until(lambda: urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200)
            driver.get(url)
            title = _until(lambda: "BulkFormer Studio" in driver.find_element(By.TAG_NAME, "h1").text)
            home = _until(lambda: _drawn(driver, '[data-testid="stAlertContentInfo"]'))
            time.sleep(read_s)
            driver.find_element(By.CSS_SELECTOR, 'a[href$="/upload"]').click()
            clicked = time.perf_counter()
            upload = _until(lambda: _drawn(driver, '[data-testid="stFileUploader"]'))
        finally:
            server.terminate()
            server.wait(30)
            driver.quit()
    print(f"health {health - start:.1f} s, Home's title {title - start:.1f} s, Home drawn {home - start:.1f} s; "
          f"Upload & QC {upload - clicked:.1f} s after the click ({read_s:.0f} s on Home)")


def umap() -> None:
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | {"BULKFORMER_CACHE_DIR": cache}
        for label in ("cold", "warm"):
            done = subprocess.run([sys.executable, "-c", UMAP_PROBE], cwd=ROOT, env=env, capture_output=True,
                                  text=True, check=True)
            print(f"first UMAP of a fresh process, {label} cache: {done.stdout.strip()} s (import included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("app", "umap"))
    parser.add_argument("--read", type=float, default=20.0, help="seconds spent on Home before clicking on")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    app(args.read) if args.what == "app" else umap()
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
