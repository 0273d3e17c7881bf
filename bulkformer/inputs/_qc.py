"""What was read, what was mapped, how much of the model's gene set is covered, and what
looks wrong: the report shown before any model runs, so that problems surface early."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bulkformer.genes import GeneMapping, counting_tools
from bulkformer.inputs._align import AlignedMatrix

#: Below this share of the model's genes, the input is mostly imputation: the QC report, the
#: hold-out verdict and every output file carry :func:`low_coverage_warning`.
LOW_COVERAGE = 0.25
#: A counts library below this many reads is very shallow: warn.
LOW_DEPTH_READS = 1_000_000
#: |robust z-score| above this marks an outlier (Iglewicz & Hoaglin's modified z-score).
OUTLIER_Z = 3.5
#: ... and only when it matters: detected genes at least this share away from the cohort's
#: median, library size at least this fold away. A robust z on a nearly constant quantity
#: (10,080 vs a median of 10,099 detected genes) is noise, not an outlier.
MIN_DETECTED_SHARE = 0.10
MIN_LIBRARY_FOLD = 3.0
#: Fewer samples than this give no meaningful between-sample spread.
MIN_SAMPLES_FOR_OUTLIERS = 5
_EXAMPLES = 5
_MONTH = "(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
#: What Excel makes of symbols such as SEPT2, MARCH1 or DEC1 ("2-Sep", "Mar-1", "2023-09-02";
#: an .xlsx date cell read as a datetime: "2023-09-02 00:00:00").
_EXCEL_DATE = re.compile(rf"\d{{1,2}}-{_MONTH}|{_MONTH}-\d{{1,2}}|\d{{4}}-\d{{2}}-\d{{2}}(?:[ T]\d{{2}}:\d{{2}}(?::\d{{2}})?)?"
                         rf"|\d{{1,2}}/\d{{1,2}}/\d{{2,4}}", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class QCReport:
    """Checks on one prepared input.

    ``per_sample`` (indexed by sample ID) has ``library_size`` (counts only, else NaN),
    ``detected_genes`` and ``zero_fraction`` over all genes of the table,
    ``model_genes_detected``, the robust z-scores ``library_size_z`` / ``detected_genes_z``,
    ``outlier`` and ``flags`` (why a sample is flagged, or empty).
    """

    source_format: str
    value_type: str
    n_samples: int
    n_genes_read: int
    n_genes_mapped: int
    unmapped_examples: tuple[str, ...]
    duplicates: pd.DataFrame
    n_model_genes: int
    n_model_genes_observed: int
    per_sample: pd.DataFrame
    warnings: tuple[str, ...]
    notes: tuple[str, ...]
    #: (name in the sample sheet, sample) pairs matched although written differently.
    sheet_near_matched: tuple[tuple[str, str], ...] = ()
    #: Why the values contradict the value type the user chose ("" when they do not); also a warning.
    value_type_warning: str = ""
    #: Labels left out as counters of the read-counting tool, not genes (HTSeq-count's
    #: ``__no_feature``, STAR's ``N_unmapped`` …); not among ``n_genes_read``.
    counter_labels: tuple[str, ...] = ()

    @property
    def n_genes_unmapped(self) -> int:
        return self.n_genes_read - self.n_genes_mapped

    @property
    def n_duplicate_rows(self) -> int:
        """Rows merged into another row of the same gene."""
        return int(self.duplicates["n_rows"].sum() - len(self.duplicates))

    @property
    def outliers_checked(self) -> bool:
        """Whether the between-sample outlier checks ran: with fewer than
        :data:`MIN_SAMPLES_FOR_OUTLIERS` samples "nothing flagged" means "not checked"."""
        return outliers_checkable(self.n_samples)

    @property
    def coverage(self) -> float:
        """Share of the model's genes that the table measured."""
        return self.n_model_genes_observed / self.n_model_genes if self.n_model_genes else 0.0

    def summary_lines(self) -> list[str]:
        """Plain-text lines for the CLI."""
        lines = [
            (f"Read {self.n_genes_read:,} genes × {self.n_samples:,} samples "
             f"({self.source_format}, {self.value_type})."),
            f"Mapped {self.n_genes_mapped:,} genes to Ensembl IDs"
            + (f"; {self.n_genes_unmapped:,} not recognised (e.g. "
               f"{', '.join(self.unmapped_examples)})." if self.n_genes_unmapped else "."),
        ]
        if len(self.duplicates):
            lines.append(f"Merged {self.n_duplicate_rows:,} duplicated row(s) into "
                         f"{len(self.duplicates):,} gene(s).")
        lines.append(f"Model genes measured: {self.n_model_genes_observed:,} of "
                     f"{self.n_model_genes:,} ({self.coverage:.1%}).")
        library = self.per_sample["library_size"].dropna()
        if len(library):
            lines.append(f"Library size: median {library.median() / 1e6:.3g} M reads "
                         f"(min {library.min() / 1e6:.3g} M, max {library.max() / 1e6:.3g} M).")
        detected = self.per_sample["detected_genes"]
        lines.append(f"Detected genes per sample: median {detected.median():,.0f} "
                     f"(min {detected.min():,}, max {detected.max():,}).")
        lines += [f"Warning: {w}" for w in self.warnings]
        lines += [f"Note: {n}" for n in self.notes]
        return lines


def low_coverage_warning(n_measured: int, n_model_genes: int) -> str | None:
    """The warning every result of an input measuring under :data:`LOW_COVERAGE` of the
    model's genes carries, or ``None`` when the input measures enough of them."""
    coverage = n_measured / n_model_genes if n_model_genes else 0.0
    if coverage >= LOW_COVERAGE:
        return None
    return (f"Low coverage: the table measures only {n_measured:,} of the model's {n_model_genes:,} genes "
            f"({coverage:.1%}, under {LOW_COVERAGE:.0%}); the model treats the others as unmeasured, "
            f"so its outputs rest on few measurements.")


def robust_z(x: np.ndarray) -> np.ndarray:
    """Modified z-score 0.6745·(x − median)/MAD; 0 where the MAD is 0 (no spread)."""
    median = np.median(x)
    mad = np.median(np.abs(x - median))
    if mad == 0:
        return np.zeros_like(x, dtype=np.float64)
    return 0.6745 * (x - median) / mad


def make_report(values: np.ndarray, *, sample_ids: Sequence[str], value_type: str,
                mapping: GeneMapping, duplicates: pd.DataFrame, aligned: AlignedMatrix,
                source_format: str, ignored_columns: Sequence[str] = (),
                sheet_missing: Sequence[str] = (), sheet_unused: Sequence[str] = (),
                lengths_note: str = "", sheet_near_matched: Sequence[tuple[str, str]] = (),
                value_type_warning: str = "", counter_labels: Sequence[str] = (),
                genes_in: str = "rows") -> QCReport:
    """Build the report from the values as read (``[n_samples, n_genes]``, before
    normalisation), the gene mapping, merged duplicates and the aligned matrix;
    ``lengths_note`` says which gene lengths turned counts into TPM; ``value_type_warning``
    says why the values contradict the value type the user chose; ``counter_labels`` the
    tool's counters left out of ``values``, which lie in the table's ``genes_in``
    (``"rows"`` or ``"columns"``)."""
    n_samples, n_genes = values.shape
    is_counts = value_type == "counts"
    per_sample = _sample_table(values, sample_ids=sample_ids, is_counts=is_counts, aligned=aligned)
    sample_warnings, sample_notes = _flag_samples(per_sample, is_counts=is_counts)
    n_observed = int(aligned.observed.sum())
    low_coverage = low_coverage_warning(n_observed, len(aligned.gene_ids))
    sheet_warnings, sheet_notes = _sheet_messages(sheet_missing, sheet_unused, sheet_near_matched)
    gene_warnings, gene_notes = _gene_messages(mapping, duplicates, ignored_columns)
    if counter_labels:
        gene_notes.insert(0, counter_note(counter_labels, where=genes_in))
    warnings = ([value_type_warning] if value_type_warning else []) + sample_warnings \
        + ([low_coverage] if low_coverage else []) + sheet_warnings + gene_warnings
    notes = ([lengths_note] if lengths_note else []) + sample_notes + sheet_notes + gene_notes
    return QCReport(
        source_format=source_format, value_type=value_type, n_samples=n_samples,
        n_genes_read=n_genes, n_genes_mapped=mapping.n_mapped,
        unmapped_examples=tuple(mapping.unmapped_labels[:_EXAMPLES]), duplicates=duplicates,
        n_model_genes=len(aligned.gene_ids), n_model_genes_observed=n_observed,
        per_sample=per_sample, warnings=tuple(warnings), notes=tuple(notes),
        sheet_near_matched=tuple(sheet_near_matched), value_type_warning=value_type_warning,
        counter_labels=tuple(counter_labels))


def outliers_checkable(n_samples: int) -> bool:
    """Whether ``n_samples`` are enough to compare samples with each other (robust z-scores)."""
    return n_samples >= MIN_SAMPLES_FOR_OUTLIERS


def _sample_table(values: np.ndarray, *, sample_ids: Sequence[str], is_counts: bool,
                  aligned: AlignedMatrix) -> pd.DataFrame:
    """Library size (counts only, else NaN), detected genes and zero fraction over all genes of
    the table, and model genes detected, per sample."""
    n_samples, n_genes = values.shape
    detected = np.count_nonzero(values, axis=1)  # values are never negative here
    library = values.sum(axis=1, dtype=np.float64) if is_counts else np.full(n_samples, np.nan)
    return pd.DataFrame({
        "library_size": library,
        "detected_genes": detected,
        "zero_fraction": 1.0 - detected / n_genes,
        "model_genes_detected": np.count_nonzero(aligned.values > 0, axis=1),
    }, index=pd.Index(list(sample_ids), name="sample_id"))


def _flag_samples(per_sample: pd.DataFrame, *, is_counts: bool) -> tuple[list[str], list[str]]:
    """Add the robust z-scores, ``flags`` and ``outlier`` columns to ``per_sample`` (in place);
    return the warnings and notes about very shallow and outlying samples."""
    library = per_sample["library_size"].to_numpy()
    detected = per_sample["detected_genes"].to_numpy()
    warnings: list[str] = []
    notes: list[str] = []
    flags = pd.Series("", index=per_sample.index, dtype=object)
    if is_counts:
        shallow = per_sample.index[library < LOW_DEPTH_READS]
        flags[shallow] += "very low depth; "
        if len(shallow):
            warnings.append(f"{len(shallow)} sample(s) have fewer than {LOW_DEPTH_READS:,} reads "
                            f"(very low depth): {_examples(shallow)}.")
    if outliers_checkable(len(per_sample)):
        per_sample["library_size_z"] = robust_z(np.log10(library + 1)) if is_counts else np.nan
        per_sample["detected_genes_z"] = robust_z(detected.astype(np.float64))
        far = {"library_size_z": _fold_from_median(library) >= MIN_LIBRARY_FOLD if is_counts else False,
               "detected_genes_z": _share_from_median(detected) >= MIN_DETECTED_SHARE}
        for column, what in (("library_size_z", "library size"),
                             ("detected_genes_z", "detected genes")):
            odd = per_sample.index[(per_sample[column].abs() > OUTLIER_Z).to_numpy() & far[column]]
            flags[odd] += f"outlying {what}; "
        outliers = flags.index[flags.str.contains("outlying")]
        if len(outliers):
            warnings.append(f"{len(outliers)} sample(s) look like outliers (robust z-score beyond "
                            f"±{OUTLIER_Z} on log library size or detected genes, and at least "
                            f"{MIN_LIBRARY_FOLD:g}-fold or {MIN_DETECTED_SHARE:.0%} from the cohort's median): "
                            f"{_examples(outliers)}.")
    else:
        per_sample["library_size_z"] = np.nan
        per_sample["detected_genes_z"] = np.nan
        notes.append(f"{len(per_sample)} sample(s): outlier checks need at least "
                     f"{MIN_SAMPLES_FOR_OUTLIERS}.")
    per_sample["flags"] = flags.str.removesuffix("; ")
    per_sample["outlier"] = per_sample["flags"] != ""
    return warnings, notes


def _fold_from_median(x: np.ndarray) -> np.ndarray:
    """How many times larger or smaller than the median each value is (≥ 1)."""
    x = np.maximum(np.asarray(x, dtype=np.float64), 1.0)
    ratio = x / max(float(np.median(x)), 1.0)
    return np.maximum(ratio, 1.0 / ratio)


def _share_from_median(x: np.ndarray) -> np.ndarray:
    """|x − median| as a share of the median."""
    x = np.asarray(x, dtype=np.float64)
    median = float(np.median(x))
    return np.abs(x - median) / max(abs(median), 1.0)


def _sheet_messages(missing: Sequence[str], unused: Sequence[str],
                    near_matched: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Warnings and notes on how the sample sheet lines up with the table's samples."""
    warnings: list[str] = []
    notes: list[str] = []
    if missing:
        warnings.append(f"{len(missing)} sample(s) have no row in the sample sheet: "
                        f"{_examples(missing)}.")
    if near_matched:
        pairs = [f"{a} → {b}" for a, b in near_matched]
        notes.append(f"Matched {len(pairs)} sample(s) by near-identical names in the sample sheet "
                     f"({_examples(pairs)}).")
    if unused:
        notes.append(f"{len(unused)} sample-sheet row(s) match no sample: "
                     f"{_examples(unused)}.")
    return warnings, notes


def _gene_messages(mapping: GeneMapping, duplicates: pd.DataFrame,
                   ignored_columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """Warnings and notes on the gene labels: former IDs, Excel dates, unknown labels, merged
    duplicates and ignored columns."""
    warnings: list[str] = []
    notes: list[str] = []
    if mapping.n_former_ids:
        notes.append(f"{mapping.n_former_ids:,} former (GRCh37-era) Ensembl gene IDs were matched to the "
                     f"current IDs of the same genes (through NCBI Gene links, else the gene symbol), so "
                     f"those genes count as measured.")
    unmapped = mapping.unmapped_labels
    dates = [label for label in unmapped if _EXCEL_DATE.fullmatch(str(label).strip())]
    if dates:
        warnings.append(f"{len(dates):,} gene names look like dates ({_examples(dates)}): Excel turns "
                        f"symbols such as SEPT2, MARCH1 or DEC1 into dates when a table is opened in "
                        f"it. Those genes are treated as unmeasured. Export the table again without "
                        f"opening it in Excel (or import the gene column as text), or use Ensembl IDs.")
    if unmapped:
        notes.append(f"{len(unmapped):,} gene labels are not human genes known here (e.g. "
                     f"{_examples(unmapped)}); they still count towards TPM.")
    if len(duplicates):
        notes.append(f"{len(duplicates):,} genes appeared in several rows, which were added up "
                     f"on the TPM scale (e.g. {_examples(duplicates['labels'])}).")
    if ignored_columns:
        notes.append(f"Columns without expression values were ignored: "
                     f"{_examples(ignored_columns)}.")
    return warnings, notes


def counter_note(labels: Sequence[str], *, where: str = "rows") -> str:
    """The note saying that the read-counting tool's counters (``labels``, which are the
    table's ``where``: ``"rows"`` or ``"columns"``) were left out, and what that spares."""
    n = len(labels)
    what = where[:-1] if n == 1 else where
    return (f"Left out {n:,} {what} that {'is a counter' if n == 1 else 'are counters'} of the "
            f"read-counting tool ({counting_tools(labels)}), not {'a gene' if n == 1 else 'genes'} "
            f"({_examples(labels)}): {'it is' if n == 1 else 'they are'} not part of any gene's TPM "
            f"or of the library size.")


def _examples(items: Sequence[str] | pd.Index | pd.Series) -> str:
    items = list(items)
    shown = ", ".join(repr(str(x)) for x in items[:_EXAMPLES])
    return shown + (f" and {len(items) - _EXAMPLES:,} more" if len(items) > _EXAMPLES else "")
