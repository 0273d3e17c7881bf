"""The on-disk cache of finished results, keyed by content.

Finished results are stored in a :class:`ResultCache` under a content key (input, model
checksum, options), so running the same thing twice costs nothing. The cache holds only
``.npy`` arrays (read with ``allow_pickle=False``) and JSON: a cache folder can never make
Python run code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from bulkformer.errors import BulkFormerError
from bulkformer.model._bulkformer_model import InferenceResult

log = logging.getLogger(__name__)


def content_key(*parts: bytes | str) -> str:
    """sha256 hex over ``parts``, each length-prefixed so ``("ab", "c") != ("a", "bc")``."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else bytes(part)
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


_KEY = re.compile(r"[0-9a-f]{16,128}")
#: Default cap on one result cache's size on disk: 2 GiB (a 147M run over 1,000 samples with
#: imputation takes ~80 MB). ``BULKFORMER_CACHE_MAX_BYTES`` overrides it.
DEFAULT_CACHE_MAX_BYTES = 2 * 1024**3
CACHE_MAX_BYTES_ENV = "BULKFORMER_CACHE_MAX_BYTES"


def cache_max_bytes() -> int:
    """The result-cache cap: ``BULKFORMER_CACHE_MAX_BYTES`` if set (whole bytes), else the default."""
    text = os.environ.get(CACHE_MAX_BYTES_ENV, "").strip().replace("_", "")
    return int(text) if text.isdigit() else DEFAULT_CACHE_MAX_BYTES


_ARRAYS = ("sample_embedding", "imputed", "gene_embedding")
_META = "meta.json"
_TMP_PREFIX = ".tmp-"
_FORMAT = 1


class ResultCache:
    """:class:`~bulkformer.model._bulkformer_model.InferenceResult` s on disk, one folder per content key.

    A folder appears only complete: it is written under a temporary name and renamed.
    """

    def __init__(self, directory: Path, *, max_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.max_bytes = cache_max_bytes() if max_bytes is None else max_bytes

    def get(self, key: str) -> InferenceResult | None:
        """The stored result, or ``None`` if there is none (or it cannot be read)."""
        folder = self._folder(key)
        try:
            meta = json.loads((folder / _META).read_text())
            with contextlib.suppress(OSError):  # a read-only cache still serves its entries
                os.utime(folder)  # used now: evicted last
            if meta.get("format") != _FORMAT:
                return None
            arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False) if name in meta["arrays"] else None
                      for name in _ARRAYS}
            return InferenceResult(
                sample_ids=tuple(meta["sample_ids"]),
                gene_ids=tuple(meta["gene_ids"]),
                gene_embedding_ids=tuple(meta["gene_embedding_ids"]),
                aggregate=str(meta["aggregate"]),
                **arrays,
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("Ignoring unreadable cache entry %s", folder, exc_info=True)
            return None

    def put(self, key: str, result: InferenceResult) -> None:
        """Store ``result`` under ``key``; an existing entry for the key is kept as it is. The
        entries used longest ago are deleted until all fit in ``max_bytes``; a result larger
        than that on its own is not stored (it is computed again when asked for)."""
        final = self._folder(key)
        if final.is_dir():
            return
        size = sum(a.nbytes for a in (getattr(result, name) for name in _ARRAYS) if a is not None)
        if size > self.max_bytes:
            log.info("Not caching a %d-byte result: larger than the %d-byte cache", size, self.max_bytes)
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=self.directory))
        try:
            stored = []
            for name in _ARRAYS:
                array = getattr(result, name)
                if array is not None:
                    np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
                    stored.append(name)
            meta = {
                "format": _FORMAT,
                "arrays": stored,
                "sample_ids": list(result.sample_ids),
                "gene_ids": list(result.gene_ids),
                "gene_embedding_ids": list(result.gene_embedding_ids),
                "aggregate": result.aggregate,
            }
            (tmp / _META).write_text(json.dumps(meta))
            os.replace(tmp, final)
            self._evict(keep=final)
        except OSError as exc:
            if not final.is_dir():  # else another thread stored the same key first: fine
                raise BulkFormerError(
                    f"Could not store the result in the cache folder {self.directory}: {exc.strerror or exc}.",
                    hint="Check the free disk space, or set BULKFORMER_CACHE_DIR to another folder.",
                ) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def size_bytes(self) -> int:
        """Bytes held by the complete entries."""
        return sum(size for _, size in self._entries())

    def _entries(self) -> list[tuple[Path, int]]:
        """Complete entries and their sizes, used longest ago first."""
        found = []
        for child in self.directory.iterdir() if self.directory.is_dir() else ():
            with contextlib.suppress(OSError):  # an entry deleted meanwhile by another thread
                if child.is_dir() and _KEY.fullmatch(child.name):
                    found.append((child.stat().st_mtime, child, sum(f.stat().st_size for f in child.iterdir())))
        return [(path, size) for _, path, size in sorted(found)]

    def _evict(self, *, keep: Path) -> None:
        entries = self._entries()
        total = sum(size for _, size in entries)
        for path, size in entries:
            if total <= self.max_bytes:
                break
            if path != keep:
                shutil.rmtree(path, ignore_errors=True)
                total -= size

    def clear(self) -> None:
        """Delete every entry (and leftovers of interrupted writes); other files are left alone."""
        if not self.directory.is_dir():
            return
        for child in self.directory.iterdir():
            if child.is_dir() and (_KEY.fullmatch(child.name) or child.name.startswith(_TMP_PREFIX)):
                shutil.rmtree(child, ignore_errors=True)

    def _folder(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise BulkFormerError(f"{key!r} is not a cache key.",
                                  hint="Cache keys are lower-case hex digests, as content_key() makes them.")
        return self.directory / key
