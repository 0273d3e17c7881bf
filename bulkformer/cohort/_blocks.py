"""Reading a cohort a block of samples at a time, whatever holds it.

Samples-as-rows CSV/TSV (pyarrow's streaming reader), Parquet (row groups), h5ad (backed) and
ARCHS4-style HDF5 (``data/expression`` genes × samples, read by column slices with h5py) are
read block by block, so memory depends on the block, not on the cohort. Any other table (a
genes-as-rows CSV, featureCounts, Excel …) cannot be cut by sample without reading it all: it
is read once, within the usual cell budget (:mod:`bulkformer.io`), and served from memory.

Every source says, without reading values, its sample IDs, its gene labels and what its format
fixes (layout, value type); :meth:`CohortSource.iter_blocks` then yields float32
``[block samples, genes]`` for lists of sample positions, in file order. Counters of the
read-counting tool (HTSeq-count's ``__no_feature``, STAR's ``N_unmapped`` …) are not genes: every
reader leaves them out of the gene labels and of the blocks, as :func:`bulkformer.genes.orient`
does for a table read whole, so a cohort run gives the numbers of a single-process run.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bulkformer.errors import InputError
from bulkformer.genes import split_counters
from bulkformer.io import Guess

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_PARQUET_MAGIC = b"PAR1"
#: ARCHS4's datasets: the matrix, the sample IDs and (first found) the gene labels.
ARCHS4_EXPRESSION = "data/expression"
ARCHS4_SAMPLES = "meta/samples/geo_accession"
ARCHS4_GENES = ("meta/genes/ensembl_gene", "meta/genes/ensembl_gene_id", "meta/genes/gene_symbol",
                "meta/genes/symbol", "meta/genes/genes")
#: Bytes of text pyarrow parses at a time (a few hundred samples of 20,000 genes).
CSV_BLOCK_BYTES = 8 << 20
_ROWS_FOR_LAYOUT = 64  # first rows looked at to decide which axis holds the genes
_CONVERT_HINT = ("Save the table with samples as rows (CSV/TSV or Parquet, one row per sample) or as an "
                 "h5ad file, which are read a block of samples at a time; for example in Python: "
                 "pandas.read_csv('table.csv', index_col=0).T.to_parquet('samples_as_rows.parquet').")


@dataclass(frozen=True, eq=False)
class CohortSource:
    """What a cohort file holds, learnt without reading its values.

    ``sample_ids`` in file order, as written (duplicates possible); ``gene_labels`` the data
    columns; ``gene_lengths`` (bp) where the format carries them; ``layout``/``value_hint``
    what the format fixes; ``ignored_columns`` text columns set aside; ``counter_labels`` the
    gene axis's counters of the read-counting tool, left out of ``gene_labels`` and the blocks.
    """

    path: Path
    source_format: str
    sample_ids: tuple[str, ...]
    gene_labels: tuple[str, ...]
    layout: Guess
    value_hint: Guess | None = None
    gene_lengths: np.ndarray | None = None
    ignored_columns: tuple[str, ...] = ()
    streamed: bool = True
    counter_labels: tuple[str, ...] = ()
    _reader: object = None

    @property
    def format(self) -> str:
        """The file's format: one of :data:`FORMATS`, or the format ``read_table`` found."""
        return self.source_format

    @property
    def orientation(self) -> Guess:
        """Which axis of the file holds the genes, and why."""
        return self.layout

    def iter_blocks(self, blocks: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
        """For each array of (increasing) sample positions, float32 ``[len(positions), genes]``.

        ``blocks`` must come in file order (each block's positions after the previous one's).
        """
        return self._reader.iter_blocks(self, blocks)  # type: ignore[attr-defined]


#: The formats read a block of samples at a time.
FORMATS = ("csv", "parquet", "h5ad", "archs4")


def open_source(path: Path, *, orientation: str = "auto", annotation=None) -> CohortSource:
    """Open ``path`` as a cohort: the streamed reader its content calls for, else the whole
    table read within the cell budget (genes-as-rows text tables and other formats)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file.", hint="Check the path of INPUT.")
    head = _head(path)
    if head.startswith(_HDF5_MAGIC):
        import h5py

        with h5py.File(path, "r") as f:
            is_anndata = "obs" in f and "var" in f
        source = _H5ad.open(path) if is_anndata else _Archs4.open(path)
    elif head.startswith(_PARQUET_MAGIC):
        source = _Parquet.open(path)
    elif _is_text(head):
        source = _Csv.open(path)
    else:
        source = None
    if source is not None and (orientation == "genes_in_columns" or (
            orientation == "auto" and source.layout.value == "genes_in_columns")):
        return source
    if source is not None and source.source_format in ("h5ad", "archs4"):
        return source  # their layout is fixed by the format
    return _InMemory.open(path, orientation=orientation, annotation=annotation)


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(8)


def _is_text(head: bytes) -> bool:
    if head.startswith(b"\x1f\x8b"):
        return True  # gzip: a compressed text table
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _layout(row_labels: Sequence[str], column_labels: Sequence[str], annotation) -> Guess:
    """Which axis holds the genes, decided as :func:`bulkformer.genes.orient` does."""
    from bulkformer.genes import load_annotation
    from bulkformer.genes._orient import _guess_orientation
    from bulkformer.io import RawTable

    probe = RawTable(np.zeros((0, 0), dtype=np.float32), tuple(row_labels), tuple(column_labels), "probe")
    guess = _guess_orientation(probe, annotation or load_annotation())
    shape = f"({len(row_labels)} rows × {len(column_labels)} columns)"  # the probe's, not the file's
    return Guess(guess.value, guess.reason.replace(shape, f"(the first {len(row_labels)} rows looked at)"))


def _contiguous(positions: np.ndarray) -> tuple[int, int]:
    return int(positions[0]), int(positions[-1]) + 1


# --------------------------------------------------------------------------------- CSV / TSV
class _Csv:
    """Samples-as-rows text tables, parsed by pyarrow a few MB at a time."""

    @staticmethod
    def _delimiter(path: Path) -> str:
        opener = gzip.open if _head(path).startswith(b"\x1f\x8b") else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:  # type: ignore[operator]
            first = f.readline(1 << 20)
        return "\t" if first.count("\t") > first.count(",") else ","

    @staticmethod
    def _n_columns(path: Path, delimiter: str) -> int:
        opener = gzip.open if _head(path).startswith(b"\x1f\x8b") else open
        n, ended = 1, False
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:  # type: ignore[operator]
            while not ended and (piece := f.read(1 << 20)):
                line, ended = piece.split("\n", 1)[0], "\n" in piece
                n += line.count(delimiter)
        return n

    @classmethod
    def _reader(cls, path: Path, delimiter: str, *, columns: Sequence[str] | None = None,
                types: dict | None = None):
        import pyarrow as pa
        from pyarrow import csv

        return csv.open_csv(
            pa.input_stream(str(path), compression="detect"),
            read_options=csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            parse_options=csv.ParseOptions(delimiter=delimiter),
            convert_options=csv.ConvertOptions(include_columns=list(columns) if columns else None,
                                               column_types=types or {}, strings_can_be_null=True))

    @classmethod
    def open(cls, path: Path) -> CohortSource:
        import pyarrow as pa

        from bulkformer.io import check_cells

        delimiter = cls._delimiter(path)
        check_cells(path.name, 1, cls._n_columns(path, delimiter))  # a header of millions of columns
        try:
            reader = cls._reader(path, delimiter)
            first = reader.read_next_batch()
        except (pa.ArrowInvalid, StopIteration) as exc:
            raise InputError(f"{path.name} could not be read as a table: {exc}",
                             hint="Give a CSV/TSV with a header line and one sample per row.") from exc
        names = first.schema.names
        id_col = names[0]
        data, ignored = [], []
        for field in first.schema:
            if field.name == id_col:
                continue
            numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type) \
                or pa.types.is_null(field.type)
            (data if numeric else ignored).append(field.name)
        row_labels = [str(x) for x in first.column(0).to_pylist()[:_ROWS_FOR_LAYOUT]]
        layout = _layout(row_labels, data, None)  # on every label, as orient() decides
        if layout.value != "genes_in_columns":
            return CohortSource(path, "csv", (), tuple(data), layout)
        ids = []
        for batch in cls._reader(path, delimiter, columns=[id_col], types={id_col: pa.string()}):
            ids.extend("" if x is None else x for x in batch.column(0).to_pylist())
        genes, counters, _ = split_counters(data)  # blocks read the genes' columns by name
        return CohortSource(path, "csv", tuple(ids), genes, layout, ignored_columns=tuple(ignored),
                            counter_labels=counters, _reader=_CsvBlocks(delimiter, id_col))


@dataclass(frozen=True)
class _CsvBlocks:
    delimiter: str
    id_col: str

    def iter_blocks(self, source: CohortSource, blocks: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
        import pyarrow as pa

        columns = [self.id_col, *source.gene_labels]
        types = {name: pa.float32() for name in source.gene_labels}
        reader = _Csv._reader(source.path, self.delimiter, columns=columns, types=types)
        row = 0  # file position of the first row of `pending`
        pending: list[np.ndarray] = []
        n_pending = 0
        try:
            batches = iter(reader)
            for positions in blocks:
                lo, hi = _contiguous(positions)
                while row + n_pending < hi:
                    batch = next(batches)
                    pending.append(np.column_stack([batch.column(i).to_numpy(zero_copy_only=False)
                                                    for i in range(1, batch.num_columns)])
                                   .astype(np.float32, copy=False) if batch.num_rows else
                                   np.zeros((0, len(source.gene_labels)), np.float32))
                    n_pending += batch.num_rows
                    # drop whole batches before the block
                    while pending and row + len(pending[0]) <= lo:
                        row += len(pending[0])
                        n_pending -= len(pending[0])
                        pending.pop(0)
                stacked = np.concatenate(pending) if len(pending) > 1 else pending[0]
                yield np.ascontiguousarray(stacked[positions - row])
                keep = stacked[hi - row:]
                pending, n_pending, row = [keep], len(keep), hi
        except pa.ArrowInvalid as exc:
            raise InputError(f"{source.path.name}: a value could not be read as a number ({exc}).",
                             hint="Every cell outside the ID column and the header must be a number.") from exc
        except StopIteration:
            raise InputError(f"{source.path.name} ended before its last sample: it changed since the plan.",
                             hint="Make the plan again (bulkformer plan … --restart).") from None


# --------------------------------------------------------------------------------- Parquet
class _Parquet:
    @classmethod
    def open(cls, path: Path) -> CohortSource:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path.name} is not a readable Parquet file: {exc}",
                             hint="Write it again with pandas' to_parquet.") from exc
        schema = pf.schema_arrow
        index_cols = []
        if schema.pandas_metadata:
            index_cols = [c for c in schema.pandas_metadata.get("index_columns", []) if isinstance(c, str)]
        id_col = index_cols[0] if index_cols else schema.names[0]
        data, ignored = [], []
        for field in schema:
            if field.name == id_col or field.name in index_cols:
                continue
            numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
            (data if numeric else ignored).append(field.name)
        ids = [("" if x is None else str(x)) for x in pf.read(columns=[id_col]).column(0).to_pylist()]
        layout = _layout(ids[:_ROWS_FOR_LAYOUT], data, None)  # on every label, as orient() decides
        offsets = np.cumsum([0] + [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)])
        genes, counters, _ = split_counters(data)  # blocks read the genes' columns by name
        return CohortSource(path, "parquet", tuple(ids), genes, layout, ignored_columns=tuple(ignored),
                            counter_labels=counters, _reader=_ParquetBlocks(tuple(int(x) for x in offsets)))


@dataclass(frozen=True)
class _ParquetBlocks:
    offsets: tuple[int, ...]  # first row of each row group, then the row count

    def iter_blocks(self, source: CohortSource, blocks: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(source.path)
        starts = np.asarray(self.offsets)
        for positions in blocks:
            lo, hi = _contiguous(positions)
            first = int(np.searchsorted(starts, lo, side="right") - 1)
            last = int(np.searchsorted(starts, hi, side="left"))
            table = pf.read_row_groups(list(range(first, last)), columns=list(source.gene_labels))
            values = np.column_stack([table.column(i).to_numpy().astype(np.float32, copy=False)
                                      for i in range(table.num_columns)])
            yield np.ascontiguousarray(values[positions - starts[first]])


# --------------------------------------------------------------------------------- h5ad
class _H5ad:
    """AnnData read with h5py, the matrix a block of rows at a time (dense, or CSR through anndata's
    ``sparse_dataset``): ``layers['counts']`` when present (as :mod:`bulkformer.io` reads it), else
    ``X``. Only the index of ``obs`` and ``var`` is read, never the other layers."""

    @staticmethod
    def matrix_name(f) -> str | None:  # type: ignore[no-untyped-def]
        return "layers/counts" if "layers/counts" in f else "X" if "X" in f else None

    @classmethod
    def open(cls, path: Path) -> CohortSource:
        import h5py

        try:
            with h5py.File(path, "r") as f:
                where = cls.matrix_name(f)
                if where is None:
                    raise InputError(f"{path.name} holds no expression matrix in X.",
                                     hint="Store the values in X (samples × genes).")
                ids, genes = _index(f["obs"]), _index(f["var"])
                shape = _matrix(f[where]).shape
        except InputError:
            raise
        except Exception as exc:  # h5py/anndata raise many types for a damaged file
            raise InputError(f"{path.name} is not a readable AnnData (.h5ad) file: {exc}",
                             hint="Write it again with anndata's write_h5ad.") from exc
        if tuple(shape) != (len(ids), len(genes)):
            raise InputError(f"{path.name}: the matrix has shape {tuple(shape)}, not {len(ids)} × {len(genes)}.",
                             hint="Write it again with anndata's write_h5ad.")
        kept, counters, columns = split_counters(genes)  # blocks read every column: keep by position
        return CohortSource(path, "h5ad", ids, kept,
                            Guess("genes_in_columns", "AnnData stores samples as observations and genes "
                                                      "as variables"),
                            value_hint=Guess("counts", "AnnData layers['counts']") if where != "X" else None,
                            counter_labels=counters, _reader=_H5adBlocks(where, columns))


def _index(group) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    """An AnnData dataframe's index (obs or var names), without reading its columns."""
    name = group.attrs.get("_index", "_index")
    return tuple(_text(x) for x in group[name][:])


def _matrix(node):  # type: ignore[no-untyped-def]
    """A dense HDF5 dataset as it is, a sparse group as anndata's row-sliceable sparse dataset."""
    import h5py

    if isinstance(node, h5py.Dataset):
        return node
    try:
        from anndata.io import sparse_dataset
    except ImportError:  # anndata < 0.11
        from anndata.experimental import sparse_dataset
    return sparse_dataset(node)


@dataclass(frozen=True, eq=False)
class _H5adBlocks:
    where: str
    columns: np.ndarray | None = None  # the genes' positions among the variables; None: all

    def iter_blocks(self, source: CohortSource, blocks: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
        import h5py

        with h5py.File(source.path, "r") as f:
            matrix = _matrix(f[self.where])
            for positions in blocks:
                lo, hi = _contiguous(positions)
                part = matrix[lo:hi]
                if self.columns is not None:
                    part = part[:, self.columns]
                part = part.toarray() if hasattr(part, "toarray") else np.asarray(part)
                yield np.ascontiguousarray(np.asarray(part, dtype=np.float32)[positions - lo])


# --------------------------------------------------------------------------------- ARCHS4
class _Archs4:
    @classmethod
    def open(cls, path: Path) -> CohortSource:
        import h5py

        with h5py.File(path, "r") as f:
            genes_at = next((name for name in ARCHS4_GENES if name in f), None)
            missing = [name for name in (ARCHS4_EXPRESSION, ARCHS4_SAMPLES) if name not in f] \
                + ([" or ".join(ARCHS4_GENES[:2])] if genes_at is None else [])
            if missing:
                raise InputError(
                    f"{path.name} is an HDF5 file but not an ARCHS4 or AnnData one: it lacks "
                    f"{', '.join(missing)}.",
                    hint="Give an ARCHS4 gene-level file (human_gene_v2.x.h5) or an .h5ad written by anndata.")
            matrix = f[ARCHS4_EXPRESSION]
            ids = tuple(_text(x) for x in f[ARCHS4_SAMPLES][:])
            genes = tuple(_text(x) for x in f[genes_at][:])
            if matrix.ndim != 2 or matrix.shape != (len(genes), len(ids)):
                raise InputError(
                    f"{path.name}: {ARCHS4_EXPRESSION} has shape {matrix.shape}, not genes × samples "
                    f"({len(genes):,} × {len(ids):,}).",
                    hint="Give an unmodified ARCHS4 gene-level file.")
        kept, counters, rows = split_counters(genes)  # blocks read every gene: keep by position
        return CohortSource(path, "archs4", ids, kept,
                            Guess("genes_in_columns", f"ARCHS4 file: {ARCHS4_EXPRESSION} holds genes × "
                                                      f"samples, read by sample"),
                            value_hint=Guess("counts", "ARCHS4 files hold read counts"),
                            counter_labels=counters, _reader=_Archs4Blocks(rows))


def _text(x: object) -> str:
    return x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)


@dataclass(frozen=True, eq=False)
class _Archs4Blocks:
    rows: np.ndarray | None = None  # the genes' rows of the matrix; None: all

    def iter_blocks(self, source: CohortSource, blocks: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
        import h5py

        with h5py.File(source.path, "r") as f:
            matrix = f[ARCHS4_EXPRESSION]
            for positions in blocks:
                lo, hi = _contiguous(positions)
                part = np.asarray(matrix[:, lo:hi], dtype=np.float32)
                part = (part if self.rows is None else part[self.rows]).T
                yield np.ascontiguousarray(part[positions - lo])


# --------------------------------------------------------------------------------- in memory
class _InMemory:
    @classmethod
    def open(cls, path: Path, *, orientation: str, annotation) -> CohortSource:
        from bulkformer import genes, io

        try:
            raw = io.read_table(path)
        except InputError as exc:
            if "read at once" in str(exc):
                raise InputError(f"{exc.message} A table with genes as rows cannot be read a block of "
                                 f"samples at a time.", hint=_CONVERT_HINT) from exc
            raise
        table = genes.orient(raw, orientation=orientation, annotation=annotation)
        return CohortSource(path, raw.source_format, table.sample_ids, table.gene_labels, table.orientation,
                            value_hint=raw.value_hint, gene_lengths=table.gene_lengths,
                            ignored_columns=raw.ignored_columns, streamed=False,
                            counter_labels=table.counter_labels, _reader=_MemoryBlocks(table.values))


@dataclass(frozen=True, eq=False)
class _MemoryBlocks:
    values: np.ndarray

    def iter_blocks(self, source: CohortSource, blocks: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
        for positions in blocks:
            yield np.ascontiguousarray(self.values[positions], dtype=np.float32)


def check_finite(values: np.ndarray, *, sample_ids: Sequence[str], gene_labels: Sequence[str], name: str) -> None:
    """Refuse an empty (NA) or infinite cell of a block, naming its sample and gene."""
    finite = np.isfinite(values)
    if not finite.all():
        row, column = (int(i[0]) for i in np.nonzero(~finite))
        what = "an empty / NA cell" if np.isnan(values[row, column]) else "an infinite value"
        raise InputError(f"{name}: {what} for sample {sample_ids[row]!r}, gene {gene_labels[column]!r}.",
                         hint="Fill every cell with a number (0 for a gene that was not detected).")
