"""Load test: N app sessions at once, each running BulkFormer on its own upload.

Every session is a headless Streamlit session (``streamlit.testing.v1.AppTest``: the real
``app.py`` and pages, the real background jobs and result caches, no browser), driven in its
own thread as a user would: open the app, upload a table of ``--samples`` samples of the demo
cohort, open Embeddings, press *Run BulkFormer*, wait for the result. For each N the time from
the press to the result is reported per session, beside the plain Python call that does the
same work alone (``model.run`` plus the two maps the page draws).

With ``--server`` a real ``streamlit run app.py`` is started too and its health endpoint
(``/_stcore/health``) is polled every 0.25 s during each round. The sessions run in this
process, not in that server, so the latency says how responsive a server on the same cores
stays while they run, not how loaded that server's own event loop is.

    python benchmarks/load_app.py --sessions 1 4 8 --samples 12 [--server]

Not a test: nothing is asserted beyond "no error on any page". Run it on an otherwise idle
machine; other work on the same cores changes every number.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd
from streamlit.testing.v1 import AppTest

from bulkformer import paths

JOB_TIMEOUT_S = 1800


def demo_table(n_samples: int) -> bytes:
    """The first ``n_samples`` samples of the demo cohort, as the CSV a user would upload."""
    with gzip.open(paths.demo_dir() / "demo_counts.csv.gz") as fh:
        frame = pd.read_csv(fh, index_col=0)
    return frame.iloc[:, :n_samples].to_csv().encode()


def plain_call(table: bytes) -> float:
    """Seconds for the work of one run without the app: the model's forward passes and maps."""
    from bulkformer.projection import project
    from bulkformer.wrapper import BulkFormerModel

    model = BulkFormerModel.load("demo")
    prepared = model.prepare(table, filename="load.csv")
    values, ids = prepared.aligned.values, prepared.aligned.sample_ids
    warm = model.run(values[: min(len(ids), 16)], ids[:16])  # one-off costs out of the timing: the first
    for method in ("umap", "pca"):                           # forward pass, UMAP's compilation
        project(warm.sample_embedding, method=method)
    start = time.perf_counter()
    result = model.run(values, ids, embed=True, impute=True)
    for method in ("umap", "pca"):
        project(result.sample_embedding, method=method)
    return time.perf_counter() - start


def one_session(table: bytes, out: list[float], errors: list[str]) -> None:
    """Open the app, upload, run, wait; append the seconds from the press to the result."""
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        at.run()
        at.switch_page("pages/upload.py").run()
        at.file_uploader(key="table_uploader").set_value(("load.csv", table, "text/csv"))
        at.run()
        at.switch_page("pages/embeddings.py").run()
        next(b for b in at.button if b.label == "Run BulkFormer").click()
        start = time.perf_counter()
        at.run()
        entry = at.session_state["bf_jobs"].get("main")
        if entry is not None and not entry.job.wait(JOB_TIMEOUT_S):
            raise TimeoutError(f"no result after {JOB_TIMEOUT_S} s")
        at.run()  # the page collects the result, as the browser's next rerun does
        out.append(time.perf_counter() - start)
        problems = [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]
        if problems or "main" not in at.session_state["bf_results"]:
            errors.append("; ".join(problems) or "no result shown")
    except Exception as exc:  # noqa: BLE001 - reported with the figures
        errors.append(f"{type(exc).__name__}: {exc}")


@contextlib.contextmanager
def streamlit_server() -> Iterator[str]:
    """``streamlit run app.py`` on a free port; yields its health URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/_stcore/health"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(url, timeout=2).status == 200:
                    break
            time.sleep(0.5)
        else:
            raise RuntimeError("the Streamlit server did not start within 2 minutes")
        yield url
    finally:
        process.terminate()
        process.wait(30)


def poll_health(url: str, stop: threading.Event, latencies: list[float]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=30).read()
            latencies.append(time.perf_counter() - start)
        stop.wait(0.25)


def round_of(n: int, table: bytes, health_url: str | None) -> tuple[list[float], list[str], list[float]]:
    times: list[float] = []
    errors: list[str] = []
    latencies: list[float] = []
    stop = threading.Event()
    poller = threading.Thread(target=poll_health, args=(health_url, stop, latencies)) if health_url else None
    if poller:
        poller.start()
    threads = [threading.Thread(target=one_session, args=(table, times, errors)) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    if poller:
        poller.join()
    return times, errors, latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--samples", type=int, default=12)
    parser.add_argument("--server", action="store_true", help="also poll a real server's health endpoint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bulkformer-load-") as cache:
        os.environ.setdefault("BULKFORMER_CACHE_DIR", cache)  # the sessions' caches go away with it
        return run_rounds(args)


def run_rounds(args: argparse.Namespace) -> int:
    table = demo_table(args.samples)
    alone = plain_call(table)
    print(f"{platform.node()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
          f"{time.strftime('%Y-%m-%d %H:%M')}; load average before: {os.getloadavg()[0]:.1f}")
    print(f"plain Python call ({args.samples} samples, demo model, run + maps): {alone:.1f} s\n")
    print("| sessions | run time per session (press → result) | vs plain call | health latency median / max | errors |")
    print("|---:|---|---:|---|---|")
    with streamlit_server() if args.server else contextlib.nullcontext() as url:
        for n in args.sessions:
            times, errors, latencies = round_of(n, table, url)
            health = (f"{1000 * statistics.median(latencies):.0f} / {1000 * max(latencies):.0f} ms"
                      if latencies else "not measured")
            failed = f"{len(errors)}{': ' + errors[0][:120] if errors else ''}"
            if times:
                median = statistics.median(times)
                print(f"| {n} | {min(times):.1f}–{max(times):.1f} s (median {median:.1f} s) | "
                      f"{median / alone:.1f}× | {health} | {failed} |", flush=True)
            else:
                print(f"| {n} | – | – | {health} | {failed} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
