"""``prepare``: from a user's file to the model's input, in one call.

read → orient → map genes → detect value type → log1p TPM (over all genes of the table) →
merge duplicated genes → align to the model's genes → QC. The app, the CLI and training all
call this, so every input is checked and normalised the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bulkformer import genes, io
from bulkformer.choices import VALUE_TYPE
from bulkformer.errors import InputError
from bulkformer.inputs import _normalise as normalise
from bulkformer.inputs._align import AlignedMatrix, align, require_enough_genes
from bulkformer.inputs._gene_lengths import UPSTREAM, GeneLengthTable, load_gene_lengths
from bulkformer.inputs._qc import QCReport, make_report
from bulkformer.io import DEFAULT_MAX_BYTES, Guess, Source


@dataclass(frozen=True)
class Guesses:
    """The decisions ``prepare`` made on its own, each with its reason."""

    orientation: Guess
    id_type: Guess
    value_type: Guess


@dataclass(frozen=True, eq=False)
class PreparedInput:
    """The model's input, the QC report, the sample sheet (indexed by sample ID, in
    ``aligned.sample_ids`` order, NaN rows for samples it lacks; or ``None``) and the guesses."""

    aligned: AlignedMatrix
    qc: QCReport
    metadata: pd.DataFrame | None
    guesses: Guesses
    #: The sample sheet's column holding sample names, and why (``None`` without a sheet).
    sheet_id_column: Guess | None = None
    #: The table's measured genes that are not the model's (a long non-coding RNA such as XIST,
    #: a pseudogene, a label no annotation knows): float32 log1p TPM, samples (in
    #: ``aligned.sample_ids`` order) × genes, as :func:`_not_in_model` names them. Kept so that
    #: a user can still look at the values they measured; never fed to the model, which
    #: neither fills them in nor reproduces them. ``None`` where not recorded. Its size is
    #: bounded by the upload budget (``max_bytes``) like the table it comes from.
    other_genes: pd.DataFrame | None = None


def prepare(
    source: Source,
    *,
    gene_order: Sequence[str],
    filename: str | None = None,
    orientation: str = "auto",
    id_type: str = "auto",
    value_type: str = "auto",
    sample_sheet: Source | pd.DataFrame | None = None,
    sample_sheet_filename: str | None = None,
    sample_id_column: str | None = None,
    annotation: genes.GeneAnnotation | None = None,
    gene_lengths: str | GeneLengthTable = UPSTREAM,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> PreparedInput:
    """Read an expression table and turn it into the model's input: log1p TPM in ``gene_order``.

    Every guess (orientation, gene-ID type, value type, the sample sheet's ID column) is made
    once here, recorded with its reason in :attr:`PreparedInput.guesses` and the QC report, and
    can be overridden.

    Parameters
    ----------
    source
        A path, or the file's bytes with ``filename`` (CSV/TSV/TXT, Excel, Parquet, h5ad,
        featureCounts, RSEM, salmon; gzip too).
    gene_order
        The model's genes (Ensembl IDs without version): ``BulkFormerModel.gene_ids``.
    filename
        The file's name when ``source`` is bytes (its extension helps to tell the format).
    orientation
        ``"auto"``, ``"genes_in_rows"`` or ``"genes_in_columns"`` (:data:`bulkformer.choices.ORIENTATION`).
    id_type
        ``"auto"``, ``"ensembl"``, ``"symbol"`` or ``"entrez"`` (:data:`bulkformer.choices.ID_TYPE`).
    value_type
        ``"auto"``, ``"counts"``, ``"tpm"``, ``"fpkm"``, ``"log1p_tpm"`` or ``"log2_tpm"``
        (:data:`bulkformer.choices.VALUE_TYPE`).
    sample_sheet, sample_sheet_filename, sample_id_column
        An optional sample sheet (one row per sample), its file name when given as bytes, and
        the column holding the sample names (default: found).
    annotation
        The gene annotation IDs are mapped with (default: the shipped one).
    gene_lengths
        The gene-length table counts are divided by: the model's (``BulkFormerModel.gene_lengths``).
    max_bytes
        The largest file read.

    Returns
    -------
    The aligned matrix ``[samples, genes]`` (``-10`` where a gene was not measured), the QC
    report, the sample sheet indexed by sample ID, and the guesses made.

    Raises
    ------
    bulkformer.InputError
        For every problem with the files, with a hint saying what to do.

    Examples
    --------
    >>> import bulkformer
    >>> from bulkformer import paths
    >>> model = bulkformer.BulkFormerModel.load("demo", device="cpu")
    >>> prepared = bulkformer.prepare(paths.demo_dir() / "demo_panel_counts.csv.gz",
    ...                               gene_order=model.gene_ids, gene_lengths=model.gene_lengths)
    >>> prepared.aligned.values.shape == (len(prepared.aligned.sample_ids), len(model.gene_ids))
    True
    >>> prepared.guesses.value_type.value
    'counts'
    """
    VALUE_TYPE.check(value_type, error=InputError)
    annotation = annotation or genes.load_annotation()
    raw = io.read_table(source, filename=filename, max_bytes=max_bytes)
    table = genes.orient(raw, orientation=orientation, annotation=annotation)
    mapping = genes.map_genes(table.gene_labels, annotation=annotation, id_type=id_type)
    values_guess = _value_type(raw, table, value_type)
    lengths, lengths_note = None, ""
    if values_guess.value == "counts":
        lengths, lengths_note = _count_lengths(table, mapping, gene_lengths)
    log_tpm = normalise.log1p_tpm(table.values, value_type=values_guess.value, lengths_bp=lengths)
    combined = genes.combine_duplicates(log_tpm, mapping=mapping, sample_ids=table.sample_ids,
                                        keep=gene_order)
    aligned = align(combined.table, gene_order=gene_order)
    require_enough_genes(aligned)
    other_genes = _not_in_model(log_tpm, mapping=mapping, sample_ids=table.sample_ids,
                               gene_order=gene_order, annotation=annotation)

    sheet = None if sample_sheet is None else io.read_sample_sheet(
        sample_sheet, filename=sample_sheet_filename, sample_ids=table.sample_ids,
        id_column=sample_id_column, max_bytes=max_bytes)
    metadata = None if sheet is None else sheet.table.reindex(
        pd.Index(aligned.sample_ids, name="sample_id"))
    qc = make_report(table.values, sample_ids=table.sample_ids, value_type=values_guess.value,
                     mapping=mapping, duplicates=combined.duplicates, aligned=aligned,
                     source_format=raw.source_format, ignored_columns=raw.ignored_columns,
                     sheet_missing=sheet.missing if sheet else (),
                     sheet_unused=sheet.unused if sheet else (), lengths_note=lengths_note,
                     sheet_near_matched=sheet.near_matched if sheet else (),
                     value_type_warning=normalise.value_type_warning(table.values, value_type),
                     counter_labels=table.counter_labels,
                     genes_in="rows" if table.orientation.value == "genes_in_rows" else "columns")
    return PreparedInput(aligned, qc, metadata, Guesses(table.orientation, mapping.id_type,
                                                        values_guess),
                         sheet.id_column if sheet else None, other_genes)


#: Marks a key made of a table's own label (for rows no annotation knows): no Ensembl ID
#: starts with it, so such keys never meet a gene's.
_LABEL_KEY = "="


def _not_in_model(log_tpm: np.ndarray, *, mapping: genes.GeneMapping, sample_ids: Sequence[str],
                  gene_order: Sequence[str], annotation: genes.GeneAnnotation) -> pd.DataFrame:
    """The measured rows that are not among the model's genes: float32 log1p TPM, samples ×
    genes (no columns when every row is a model gene).

    ``log_tpm`` is ``[n_samples, n_labels]``, normalised over all rows, as the model's genes are.
    A row counts as its Ensembl gene where one is known, else as its label (spaces trimmed;
    empty labels left out); rows of one gene merge by :func:`bulkformer.genes.combine_duplicates`,
    the rule the model's genes follow. Columns read ``SYMBOL (ENSG…)`` (as the app's gene
    pickers write the model's genes), the Ensembl ID alone where it has no symbol, or the
    label as written in the file where no gene is known.
    """
    model = set(gene_order)
    keys = tuple(
        None if ensg in model else ensg if ensg is not None
        else (_LABEL_KEY + label.strip() if label.strip() else None)
        for label, ensg in zip(mapping.labels, mapping.ensg_ids))
    by_key = genes.GeneMapping(mapping.labels, keys, mapping.id_type)
    table = genes.combine_duplicates(log_tpm, mapping=by_key, sample_ids=sample_ids).table
    symbols = annotation.symbols_of([k for k in table.columns if not k.startswith(_LABEL_KEY)])
    from_label = np.array([k.startswith(_LABEL_KEY) for k in table.columns], dtype=bool)
    names = pd.Series([k[len(_LABEL_KEY):] if own else f"{symbols[k]} ({k})" if k in symbols else k
                       for k, own in zip(table.columns, from_label)], dtype=object)
    # Genes' names are unique, and so are labels; a label written exactly like a gene's name is told apart.
    clash = from_label & names.isin(names[~from_label]).to_numpy()
    names[clash] = names[clash] + " (as written in your file)"
    table.columns = pd.Index(names, dtype=object, name="gene")
    return table


def _value_type(raw: io.RawTable, table: genes.OrientedTable, value_type: str) -> Guess:
    """What the values are: the user's choice (checked against the values), else the format's
    own word, else detected from the values. Values that no type allows are refused first."""
    normalise.check_values(table.values, sample_ids=table.sample_ids,
                           gene_labels=table.gene_labels)
    if value_type != "auto":
        normalise.check_value_type(table.values, value_type=value_type)
        return Guess(value_type, "chosen by you")
    return raw.value_hint or normalise.detect_value_type(table.values)


def _count_lengths(table: genes.OrientedTable, mapping: genes.GeneMapping,
                   gene_lengths: str | GeneLengthTable) -> tuple[np.ndarray, str]:
    """Per-row lengths (bp; NaN → 1 kb later) for counts → TPM, and a QC line saying whose.

    The file's own length column wins; then the model's table; then 1 kb, as upstream.
    """
    source = gene_lengths if isinstance(gene_lengths, GeneLengthTable) else load_gene_lengths(gene_lengths)
    lengths = source.lengths_bp(mapping.ensg_ids)
    from_table = np.isfinite(lengths)
    from_file = np.zeros(len(lengths), dtype=bool)
    if table.gene_lengths is not None:
        from_file = np.isfinite(table.gene_lengths)
        lengths = np.where(from_file, table.gene_lengths, lengths)
    n_file = int(from_file.sum())
    n_table = int((from_table & ~from_file).sum())
    n_default = len(lengths) - n_file - n_table
    parts = ([f"the file's own length column for {n_file:,} rows"] if n_file else []) + \
        ([f"{source.description} for {n_table:,} rows"] if n_table else []) + \
        ([f"1 kb (as upstream) for {n_default:,} rows without a known length"] if n_default else [])
    return lengths, "Counts were turned into TPM with gene lengths from " + "; ".join(parts) + "."
