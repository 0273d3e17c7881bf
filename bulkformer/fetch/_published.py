"""Fetching one published model: the gene table and graph of its family from Zenodo, its
checkpoint from Zenodo (v1) or Google Drive (v2); and, for the app, doing so in the
background once for the whole server ("Get the published model").

Downloads land in the server's model and data folders, which every session shares, so
there is one download slot per server, not per session (:data:`FETCHER`): a second start
while one runs is refused (two downloads of the same graph file would write the same
``.part``). Any session sees the download's progress and may cancel it; when it is done, the
model is on disk and the app's model list (which scans the folder on every page run) offers
it at once.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bulkformer import paths
from bulkformer.errors import DownloadError
from bulkformer.fetch import _gdrive as drive
from bulkformer.fetch import _registry as registry
from bulkformer.fetch import zenodo as dl
from bulkformer.fetch._registry import PublishedModel

if TYPE_CHECKING:  # jobs imports torch: only the app's download slot needs it
    from bulkformer.jobs import Job

StartOutcome = Literal["started", "running", "busy"]


@dataclass(frozen=True)
class ModelFiles:
    """What fetching one published model involves: the Zenodo files of its family (gene
    table, graph, and for v1 the checkpoint) and, for v2, its Drive checkpoint.

    ``total_bytes`` is approximate where Drive publishes no size (the registry's estimate).
    """

    model: PublishedModel
    zenodo: tuple[dl.RemoteFile, ...]
    drive: dl.RemoteFile | None
    model_dir: Path
    data_dir: Path

    @property
    def files(self) -> tuple[dl.RemoteFile, ...]:
        return self.zenodo + ((self.drive,) if self.drive is not None else ())

    @property
    def total_bytes(self) -> int:
        return sum(r.size for r in self.files)

    @property
    def checkpoint_size_text(self) -> str:
        """``568.5 MB`` from Zenodo's listing, ``about 588.0 MB`` for a Drive checkpoint."""
        (checkpoint,) = [r for r in self.files if r.key == self.model.checkpoint]
        return ("about " if checkpoint.source == "drive" else "") + dl.human_size(checkpoint.size)

    def folder(self, remote: dl.RemoteFile) -> Path:
        return self.model_dir if remote.key == self.model.checkpoint else self.data_dir

    def missing_bytes(self) -> int:
        """Bytes still to fetch: files not yet in place, less the parts already on disk."""
        n_bytes = 0
        for remote in self.files:
            final = paths.safe_child(self.folder(remote), remote.key)
            if not final.is_file():
                n_bytes += max(remote.size - dl.partial_bytes(final), 0)
        return n_bytes


def plan_model(
    name: str,
    *,
    model_dir: Path | str | None = None,
    data_dir: Path | str | None = None,
    base_url: str | None = None,
    drive_url: str | None = None,
    timeout: float = dl.DEFAULT_TIMEOUT,
    retries: int = dl.DEFAULT_RETRIES,
    backoff: float = dl.DEFAULT_BACKOFF,
) -> ModelFiles:
    """List what :func:`download_model` fetches for the published model ``name``."""
    model = registry.get(name)
    record = model.data_record.record_id
    try:
        listed = {r.key: r for r in dl.list_record(record, base_url=base_url, timeout=timeout, retries=retries,
                                                backoff=backoff)}
    except DownloadError as exc:
        raise DownloadError(exc.message, hint=by_hand(model, base_url)) from None
    wanted = model.data_files + ((model.checkpoint,) if model.source == "zenodo" else ())
    absent = [key for key in wanted if key not in listed]
    if absent:
        raise DownloadError(
            f"Zenodo record {record} does not list {', '.join(absent)}, which {model.label} needs.",
            hint=f"Download them by hand from {dl.record_page_url(record, base_url)} into {paths.data_dir()}.",
        )
    on_drive = None
    if model.source == "drive":
        on_drive = dl.RemoteFile("drive", model.checkpoint, model.download_bytes, "",
                                 dl.drive_download_url(model.drive_id, drive_url), "model", source="drive")
    return ModelFiles(model, tuple(listed[k] for k in wanted), on_drive,
                      Path(model_dir or paths.model_dir()), Path(data_dir or paths.data_dir()))


def by_hand(model: PublishedModel, base_url: str | None = None) -> str:
    """How to fetch ``model``'s own files in a web browser: which file from which page into
    which folder (the record's other files are not needed)."""
    page = dl.record_page_url(model.data_record.record_id, base_url)
    from_record = model.data_files + ((model.checkpoint,) if model.source == "zenodo" else ())
    words = (f"Check your internet connection and try again. To get {model.label} by hand, open {page} in a "
             f"web browser and download {', '.join(from_record)}; put "
             + (f"{model.checkpoint} in {paths.model_dir()} and the others in {paths.data_dir()}."
                if model.source == "zenodo" else f"them in {paths.data_dir()}."))
    if model.source == "drive":
        words += (f" The checkpoint is on Google Drive: open {model.source_url} and put the file, keeping its name "
                  f"{model.checkpoint}, in {paths.model_dir()}.")
    return words


def download_model(
    plan: ModelFiles,
    *,
    progress: dl.FileProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    timeout: float = dl.DEFAULT_TIMEOUT,
    retries: int = dl.DEFAULT_RETRIES,
    backoff: float = dl.DEFAULT_BACKOFF,
    pace: dl.Pace | None = None,
) -> list[Path]:
    """Fetch a planned model (see :func:`plan_model`); files already in place and valid are kept.

    Free space is checked for everything first; the small Zenodo files come before the
    checkpoint. ``should_stop()`` True raises :class:`DownloadCancelled` (parts are kept).
    """
    for folder in {plan.model_dir, plan.data_dir}:
        dl.make_dir(folder)
    dl.check_free_space(plan.model_dir, plan.missing_bytes())
    saved = []
    for remote in plan.files:
        file_progress = functools.partial(progress, remote) if progress is not None else None
        folder = plan.folder(remote)
        if remote.source == "drive":
            saved.append(drive.fetch_drive_checkpoint(
                plan.model, folder, url=remote.url, progress=file_progress, should_stop=should_stop,
                timeout=timeout, retries=retries, pace=pace))
        else:
            saved.append(dl.download_file(
                remote, folder, progress=file_progress, should_stop=should_stop, timeout=timeout,
                retries=retries, backoff=backoff, pace=pace))
    return saved


@dataclass(frozen=True)
class PublishedChoice:
    """One published model as the app offers it: name, label, size, whether it is on disk."""

    name: str
    label: str
    size_text: str
    present: bool


def published_choices(model_dir: Path | None = None) -> list[PublishedChoice]:
    """Every published model, with its download size (``about`` where Drive publishes none)."""
    folder = Path(model_dir or paths.model_dir())
    return [
        PublishedChoice(
            name=m.name,
            label=m.label,
            size_text="about " + dl.human_size(m.download_bytes),
            present=(folder / m.checkpoint).is_file(),
        )
        for m in registry.MODELS.values()
    ]


@dataclass
class Fetch:
    """The server's current (or last) model download."""

    name: str
    job: Job
    started: float


class ModelFetcher:
    """The server-wide download slot (thread-safe; the app keeps one in :data:`FETCHER`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: Fetch | None = None

    @property
    def current(self) -> Fetch | None:
        return self._current

    def start(self, name: str, *, model_dir: Path | None = None, data_dir: Path | None = None) -> StartOutcome:
        """Start fetching ``name``; ``"running"`` if it is under way, ``"busy"`` if another is."""
        from bulkformer.jobs import Job

        name = registry.get(name).name
        with self._lock:
            current = self._current
            if current is not None and current.job.status in ("pending", "running"):
                return "running" if current.name == name else "busy"

            def work(progress: dl.ProgressFn, should_stop: Callable[[], bool]) -> list[Path]:
                plan = plan_model(name, model_dir=model_dir, data_dir=data_dir)
                done: dict[str, int] = {}

                def on_file(remote: dl.RemoteFile, n_bytes: int, total: int) -> None:
                    done[remote.key] = n_bytes
                    progress(sum(done.values()), max(plan.total_bytes, sum(done.values())))

                progress(0, plan.total_bytes)
                return download_model(plan, progress=on_file, should_stop=should_stop)

            self._current = Fetch(name, Job(work), time.time())
            self._current.job.start()
            return "started"

    def cancel(self) -> None:
        """Ask the current download to stop (the part fetched so far is kept for a restart)."""
        if self._current is not None:
            self._current.job.cancel()

    def forget(self) -> None:
        """Drop a finished download's outcome (once it has been shown)."""
        with self._lock:
            if self._current is not None and self._current.job.status not in ("pending", "running"):
                self._current = None


FETCHER = ModelFetcher()
"""The one download slot of this server process."""
