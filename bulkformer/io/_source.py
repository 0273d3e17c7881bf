"""Opening a source (a path, or the bytes of an upload): its first bytes, gzip decompression under
the byte budget, and the file type decided by content (magic bytes), not by the name alone.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

from bulkformer.errors import InputError
from bulkformer.io._budget import _too_large

#: A path, or the raw bytes of an upload.
Source = Union[str, "os.PathLike[str]", bytes, bytearray]

_HEAD_BYTES = 64 * 1024
_HEAD_LINES = 20  # lines wanted for sniffing; very wide tables need more than _HEAD_BYTES
_MAX_HEAD_BYTES = 64 * 1024**2
_MAGIC = (  # (leading bytes, what the file is, the reader that takes it)
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or a zip archive", "xlsx"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (for example AnnData .h5ad)", "h5ad"),
    (b"PAR1", "a Parquet file", "parquet"),
    (b"\xd0\xcf\x11\xe0", "a legacy Excel workbook (.xls)", None),
    (b"\x1f\x8b", "a gzip file compressed twice", None),
)
_TEXT_SUFFIXES = {".csv", ".tsv", ".txt", ".tab", ".sf", ".results", ".tabular"}


class _LimitedReader(io.RawIOBase):
    """Passes reads through and fails once more than ``limit`` bytes came out (gzip bombs)."""

    def __init__(self, inner: BinaryIO | gzip.GzipFile, limit: int, name: str) -> None:
        self._inner, self._left, self._limit, self._name = inner, limit, limit, name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            chunk = self._inner.read(len(buffer))
        except (OSError, EOFError, zlib.error) as err:
            raise InputError(f"{self._name} is damaged: {err}.",
                             hint="Compress it again, or upload it uncompressed.") from err
        self._left -= len(chunk)
        if self._left < 0:
            raise _too_large(self._name, self._limit, decompressed=True)
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        self._inner.close()
        super().close()


def _open_raw(source: Path | bytes) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")


@dataclass(frozen=True)
class _Input:
    """One source (a path, or the bytes of an upload), its display name, and the first bytes
    of its (decompressed) content."""

    name: str
    source: Path | bytes
    gzipped: bool
    head: bytes
    head_is_all: bool
    max_bytes: int

    @classmethod
    def of(cls, source: Source, *, filename: str | None, max_bytes: int) -> _Input:
        if isinstance(source, (bytes, bytearray)):
            source = bytes(source)
            name = filename or "the uploaded file"
            size = len(source)
        else:
            source = Path(source)
            name = filename or source.name
            if not source.is_file():
                raise InputError(f"{source} does not exist or is not a file.",
                                 hint="Check the path.")
            size = source.stat().st_size
        if size > max_bytes:
            raise _too_large(name, max_bytes)
        try:
            with _open_raw(source) as raw:
                gzipped = raw.read(2) == b"\x1f\x8b"
            with cls(name, source, gzipped, b"", False, max_bytes).open() as stream:
                head = stream.read(_HEAD_BYTES)
                more = head
                while more and head.count(b"\n") < _HEAD_LINES and len(head) < _MAX_HEAD_BYTES:
                    more = stream.read(len(head))
                    head += more
                is_all = not stream.peek(1)
        except OSError as err:  # unreadable path (permissions, a vanished mount)
            raise InputError(f"{name} cannot be read: {err.strerror or err}.",
                             hint="Check that the file is readable.") from err
        if not head.strip():
            raise InputError(f"{name} is empty.", hint="Upload the file again; it has no content.")
        return cls(name, source, gzipped, head, is_all, max_bytes)

    @property
    def path(self) -> Path | None:
        return self.source if isinstance(self.source, Path) else None

    def open(self) -> io.BufferedReader:
        """The (decompressed) content as a stream that refuses to exceed ``max_bytes``."""
        raw = _open_raw(self.source)
        inner: BinaryIO | gzip.GzipFile = gzip.GzipFile(fileobj=raw) if self.gzipped else raw
        return io.BufferedReader(_LimitedReader(inner, self.max_bytes, self.name), 1 << 20)

    def readable_binary(self) -> str | BinaryIO:
        """What a binary-format library should open: the path where possible, else bytes."""
        if self.gzipped:
            with self.open() as stream:
                return io.BytesIO(stream.read())
        return io.BytesIO(self.source) if isinstance(self.source, bytes) else str(self.source)

    @property
    def suffix(self) -> str:
        """The name's extension, lower case, without a trailing ``.gz``."""
        name = self.name.lower().removesuffix(".gz")
        return Path(name).suffix

    def kind(self) -> str:
        """``xlsx`` / ``h5ad`` / ``parquet`` / ``text`` from the content; binary files that
        carry a text name, or that no reader here understands, are refused."""
        found, kind = next(((what, kind) for magic, what, kind in _MAGIC
                            if self.head.startswith(magic)), (None, None))
        if found is None and self.head[:2] not in (b"\xff\xfe", b"\xfe\xff") and b"\0" in self.head:
            found = "a binary file"
        if found is None:
            return "text"
        if self.suffix in _TEXT_SUFFIXES:
            raise InputError(
                f"{self.name} is named like a text table but is {found}.",
                hint="Upload the original file under its real extension, or export the table "
                     "as CSV/TSV from the program that made it.")
        if kind is None:
            raise InputError(
                f"{self.name} is {found}, which cannot be read here.",
                hint="Supported: CSV, TSV/TXT, XLSX, AnnData .h5ad and Parquet (each also .gz).")
        if kind == "xlsx" and self.suffix == ".zip":
            raise InputError(f"{self.name} is a zip archive.",
                             hint="Unzip it and upload the table inside.")
        return kind
