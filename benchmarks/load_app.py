"""Load test: N app sessions at once against one real server, each running BulkFormer.

Starts ``streamlit run app.py`` and drives N sessions through it over Streamlit's own
websocket protocol, as N browsers would but without a browser per session on the same cores:
each session opens the app, uploads a table of ``--samples`` samples of the demo cohort on
*Upload & QC*, opens *Embeddings*, presses *Run BulkFormer*, keeps asking for the progress
panel's refresh every second as a browser does (the fragment's ``run_every``), and waits for
the page that shows the result. Per session the time from the press to that page is
reported, beside the plain Python call that does the same work alone (``model.run`` plus the
two maps the page draws). During each round the server's health endpoint
(``/_stcore/health``) is polled every 0.25 s: its latency says how responsive the server
stays while the sessions run.

    python benchmarks/load_app.py --sessions 1 4 8 --samples 12 [--repeat 3] [--server-option runner.postScriptGC=true]
    python benchmarks/load_app.py --url http://127.0.0.1:8501   # a running server (XSRF protection off)

Not a test: nothing is asserted beyond "no error on any page". Other work on the same cores
changes every number; each row says the load average before and after its rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

from bulkformer import paths

RUN_TIMEOUT_S = 1800
PAGE_TIMEOUT_S = 600
FULL_RUN_DONE = ForwardMsg.ScriptFinishedStatus.FINISHED_SUCCESSFULLY


def demo_table(n_samples: int) -> bytes:
    """The first ``n_samples`` samples of the demo cohort, as the CSV a user would upload."""
    with gzip.open(paths.demo_dir() / "demo_counts.csv.gz") as fh:
        frame = pd.read_csv(fh, index_col=0)
    return frame.iloc[:, :n_samples].to_csv().encode()


def plain_call(table: bytes) -> float:
    """Seconds for the work of one run without the app: the model's forward passes (in fp32, the
    Embeddings page's default precision) and the two maps; the median of three calls."""
    from bulkformer.analysis._projection import project
    from bulkformer.model._bulkformer_model import BulkFormerModel

    model = BulkFormerModel.load("demo")
    prepared = model.prepare(table, filename="load.csv")
    values, ids = prepared.aligned.values, prepared.aligned.sample_ids
    warm = model.run(values[:16], ids[:16], precision="fp32")  # one-off costs out of the timing: the first
    for method in ("umap", "pca"):                           # forward pass, UMAP's compilation
        project(warm.sample_embedding, method=method)
    times = []
    for _ in range(3):  # the median of three: one call is at the mercy of other work on the machine
        start = time.perf_counter()
        result = model.run(values, ids, embed=True, impute=True, precision="fp32")
        for method in ("umap", "pca"):
            project(result.sample_embedding, method=method)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Browser:
    """One headless client of the app: Streamlit's websocket protocol, as the browser speaks it.

    Widget values are kept and sent with every rerun (as the browser does; a widget left out
    goes back to its default), a button press is sent once, and each fragment the server asks
    to refresh itself (``auto_rerun``) is rerun at its interval until a full run of the page
    starts or the server stops it.
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self.session_id = ""
        self.pages: dict[str, str] = {}  # url path ("" for Home) → page script hash
        self.page = ""
        self.widgets: dict[str, WidgetState] = {}
        self.elements: list[Element] = []  # this full run's elements (outside fragments)
        self.finished = asyncio.Event()
        self.fragment_reruns = 0
        self._ws: websockets.ClientConnection | None = None
        self._reader: asyncio.Task | None = None
        self._timers: dict[str, asyncio.Task] = {}

    async def __aenter__(self) -> Browser:
        self._ws = await websockets.connect(self.base.replace("http", "ws", 1) + "/_stcore/stream",
                                            subprotocols=["streamlit"], max_size=None)
        self._reader = asyncio.create_task(self._read())
        await self.rerun()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._reader.cancel()
        await self._ws.close()

    async def rerun(self, *, page: str | None = None, timeout: float = PAGE_TIMEOUT_S) -> None:
        """A full run of ``page`` (by url path; the current one if None), until it finished."""
        if page is not None:
            self.page = self.pages[page]
        self.finished.clear()
        await self._send(ClientState(page_script_hash=self.page, widget_states=self._states()))
        await asyncio.wait_for(self.finished.wait(), timeout)

    def element(self, kind: str, *, label: str | None = None, key: str | None = None) -> Any:
        """The first element of this kind on the page (by label or widget key), or None."""
        for element in self.elements:
            if element.WhichOneof("type") != kind:
                continue
            proto = getattr(element, kind)
            if (label is None or proto.label == label) and (key is None or proto.id.endswith(f"-{key}")):
                return proto
        return None

    def errors(self) -> list[str]:
        found = [e.exception.message for e in self.elements if e.WhichOneof("type") == "exception"]
        return found + [e.alert.body for e in self.elements
                        if e.WhichOneof("type") == "alert" and e.alert.format == e.alert.ERROR]

    async def upload(self, key: str, name: str, data: bytes) -> None:
        """PUT the file as the browser does, and set the uploader's value to it."""
        file_id = uuid.uuid4().hex
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                f"Content-Type: text/csv\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(f"{self.base}/_stcore/upload_file/{self.session_id}/{file_id}",
                                         data=body, method="PUT",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=120).read())
        uploader = self.element("file_uploader", key=key)
        state = WidgetState(id=uploader.id)
        state.file_uploader_state_value.uploaded_file_info.add(name=name, size=len(data), file_id=file_id)
        self.widgets[uploader.id] = state

    def press(self, button: Any) -> None:
        self.widgets[button.id] = WidgetState(id=button.id, trigger_value=True)

    def _states(self) -> WidgetStates:
        return WidgetStates(widgets=list(self.widgets.values()))

    async def _send(self, state: ClientState) -> None:
        await self._ws.send(BackMsg(rerun_script=state).SerializeToString())
        self.widgets = {k: v for k, v in self.widgets.items() if v.WhichOneof("value") != "trigger_value"}

    async def _refresh(self, fragment_id: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.fragment_reruns += 1
            await self._send(ClientState(page_script_hash=self.page, widget_states=self._states(),
                                         fragment_id=fragment_id, is_auto_rerun=True))

    async def _read(self) -> None:
        async for raw in self._ws:
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            self._on_message(msg)

    def _on_message(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session" and not msg.metadata.run.fragment_ids:  # a full run starts
            self.session_id = msg.new_session.initialize.session_id or self.session_id
            self.page = msg.new_session.page_script_hash
            self.elements = []
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
        elif kind == "navigation":
            self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element" and not msg.delta.fragment_id:
            self.elements.append(msg.delta.new_element)
        elif kind == "auto_rerun" and msg.auto_rerun.fragment_id not in self._timers:
            self._timers[msg.auto_rerun.fragment_id] = asyncio.create_task(
                self._refresh(msg.auto_rerun.fragment_id, msg.auto_rerun.interval))
        elif kind == "stop_auto_rerun":
            for fragment_id in msg.stop_auto_rerun.fragment_ids or list(self._timers):
                if fragment_id in self._timers:
                    self._timers.pop(fragment_id).cancel()
        elif kind == "script_finished" and msg.script_finished == FULL_RUN_DONE:
            self.finished.set()


async def one_session(base: str, table: bytes) -> tuple[float, int]:
    """Open the app, upload, run, wait for the result page: seconds from the press, and the
    progress panel's refreshes meanwhile."""
    async with Browser(base) as browser:
        await browser.rerun(page="upload")
        await browser.upload("table_uploader", "load.csv", table)
        await browser.rerun()
        if browser.errors():
            raise RuntimeError(f"upload: {browser.errors()[0]}")
        await browser.rerun(page="embeddings")
        button = browser.element("button", label="Run BulkFormer")
        if button is None:
            raise RuntimeError(f"no Run BulkFormer button on Embeddings: {browser.errors() or 'no error shown'}")
        browser.press(button)
        start, browser.fragment_reruns = time.perf_counter(), 0
        await browser.rerun()
        deadline = start + RUN_TIMEOUT_S
        while browser.element("metric", label="Samples") is None:  # the result page's first line
            if browser.errors():
                raise RuntimeError(f"run: {browser.errors()[0]}")
            browser.finished.clear()  # the panel's refresh reruns the whole page when the job ended
            await asyncio.wait_for(browser.finished.wait(), max(1.0, deadline - time.perf_counter()))
        return time.perf_counter() - start, browser.fragment_reruns


async def round_of(n: int, base: str, table: bytes) -> list[tuple[float, int] | BaseException]:
    return await asyncio.gather(*(one_session(base, table) for _ in range(n)), return_exceptions=True)


@contextlib.contextmanager
def streamlit_server(cache: str, options: list[str], log: Path) -> Iterator[tuple[str, int]]:
    """``streamlit run app.py`` on a free port, its caches in ``cache``, its output in ``log``;
    yields its base URL and process ID.

    XSRF protection is off so that the uploads need no cookie dance; ``options``
    (``section.name=value``) are passed on as flags; nothing else differs.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = log.open("wb")  # noqa: SIM115 - open while the server runs
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--server.enableXsrfProtection", "false", "--server.fileWatcherType", "none",
         *(f"--{option}" for option in options)],
        cwd=ROOT, env={**os.environ, "BULKFORMER_CACHE_DIR": cache},
        stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).status == 200:
                    break
            time.sleep(0.5)
        else:
            raise RuntimeError("the Streamlit server did not start within 2 minutes")
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(30)
        out.close()


def wait_until_idle(pid: int, *, quiet_s: float = 3.0, timeout_s: float = 600.0) -> None:
    """Wait until process ``pid`` used < 5 % of a core for ``quiet_s`` (Linux; elsewhere no wait)."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.is_file():
        return

    def cpu_seconds() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = cpu_seconds()
        time.sleep(quiet_s)
        if cpu_seconds() - before < 0.05 * quiet_s:
            return


def poll_health(url: str, stop: threading.Event, latencies: list[float]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=30).read()
            latencies.append(time.perf_counter() - start)
        stop.wait(0.25)


def measured_round(n: int, base: str, table: bytes, alone: float, *, repeat: int) -> tuple[str, int]:
    """``repeat`` rounds of ``n`` sessions, the health endpoint polled meanwhile: a table row, errors."""
    latencies: list[float] = []
    stop = threading.Event()
    poller = threading.Thread(target=poll_health, args=(f"{base}/_stcore/health", stop, latencies))
    load_before = os.getloadavg()[0]
    poller.start()
    try:
        outcomes = [o for _ in range(repeat) for o in asyncio.run(round_of(n, base, table))]
    finally:
        stop.set()
        poller.join()
    times = [o[0] for o in outcomes if isinstance(o, tuple)]
    refreshes = [o[1] for o in outcomes if isinstance(o, tuple)]
    errors = [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, BaseException)]
    health = (f"{1000 * statistics.median(latencies):.0f} / {1000 * max(latencies):.0f} ms"
              if latencies else "not measured")
    failed = f"{len(errors)}{': ' + errors[0][:120] if errors else ''}"
    load = f"{load_before:.1f} → {os.getloadavg()[0]:.1f}"
    if not times:
        return f"| {n} | – | – | – | {health} | {load} | {failed} |", len(errors)
    return (f"| {n} | {min(times):.1f}–{max(times):.1f} s (median {statistics.median(times):.1f} s) | "
            f"{statistics.median(times) / alone:.1f}× | {max(refreshes)} | {health} | {load} | {failed} |",
            len(errors))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--samples", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=1, help="rounds per number of sessions, pooled")
    parser.add_argument("--url", help="drive this running server instead of starting one (e.g. to profile it)")
    parser.add_argument("--server-option", action="append", default=[], metavar="SECTION.NAME=VALUE",
                        help="a Streamlit option for the server started, e.g. runner.postScriptGC=true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` too stops the server it started
    table = demo_table(args.samples)
    with contextlib.ExitStack() as stack:
        cache = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bulkformer-load-")))
        log = cache / "server.log"
        base, pid = (args.url, None) if args.url else stack.enter_context(
            streamlit_server(str(cache), args.server_option, log))
        alone = plain_call(table)
        warm = asyncio.run(round_of(1, base, table))[0]  # the server's one-off costs: model, map code
        if pid is not None:
            wait_until_idle(pid)  # e.g. the map code's warm-up, compiling on in the background
        print(f"{platform.node()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
              f"{time.strftime('%Y-%m-%d %H:%M %Z')} · server options: {args.server_option or 'as configured'}")
        print(f"plain Python call ({args.samples} samples, demo model, run + maps): {alone:.1f} s; the server's "
              f"first run (loads the model, compiles the map code): "
              f"{f'{warm[0]:.1f} s' if isinstance(warm, tuple) else warm}\n")
        print("| sessions | run time per session (press → result page) | median vs plain call | "
              "panel refreshes after the press (most) | health latency median / max | load average before → after | errors |")
        print("|---:|---|---:|---:|---|---|---|")
        failures = 0
        for n in args.sessions:
            row, errors = measured_round(n, base, table, alone, repeat=args.repeat)
            failures += errors
            print(row, flush=True)
        if failures and log.is_file():
            print("\nThe end of the server's log:\n" + log.read_text(errors="replace")[-4000:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
