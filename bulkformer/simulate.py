"""Seeded simulator of human bulk RNA-seq read counts.

The app needs a demo cohort that behaves like real data (so every step — gene mapping, TPM
normalisation, QC, embeddings — has something meaningful to show) yet can be shipped and
regenerated freely. :func:`simulate_cohort` draws one from a simple generative model:

* **Baseline** log-expression per gene, heavy-tailed as in real tissue: about a fifth of the
  genes barely expressed, most at moderate levels, a few percent very high.
* **Tissues** (liver, muscle, brain, blood, lung, kidney by default): each tissue's well-known
  marker genes (:data:`KNOWN_MARKERS`, matched by symbol; absent ones skipped) plus some random
  tissue-specific genes are strongly up in that tissue and low elsewhere; every other gene gets
  a small tissue-specific shift, so tissues separate clearly.
* **Co-expression modules**: groups of genes whose expression follows a shared per-sample
  latent factor (pathway activity, cell-type mix).
* **Sex**: XIST expressed in females only; RPS4Y1, DDX3Y, UTY, KDM5D, EIF1AY in males only.
* **Batch**: small per-gene shifts per sequencing batch.
* **Age**: a continuous covariate driving a small module.
* **Gene length**: expected reads ∝ expression × length, so raw counts over-represent long
  genes and TPM normalisation matters.
* **Sampling noise**: negative binomial (gamma–Poisson) with a per-gene dispersion that falls
  with expression (Poisson-like noise dominates for weak genes, biological noise for strong
  ones), times per-gene log-normal noise.
* **Library sizes**: log-normal, between 5 and 50 M reads.
* **Outliers**, flagged in the sample sheet: very low depth; degraded RNA (3' bias: long genes
  lose reads); low library complexity (a handful of genes take most reads).

Everything is vectorised numpy drawn from :class:`numpy.random.Generator` streams derived from
``seed``, so the same call always returns the same cohort. The gene-level biology depends only
on ``seed``, the gene table and the tissue list; ``sample_draw`` picks an independent set of
samples from that same biology (e.g. a second cohort measured later).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

from bulkformer.errors import InputError

DEFAULT_TISSUES: tuple[str, ...] = ("liver", "muscle", "brain", "blood", "lung", "kidney")

#: Well-established marker genes per tissue (HGNC symbols), strongest first.
KNOWN_MARKERS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "liver": ("ALB", "APOA1", "APOC3", "TF", "HP", "FGB", "SERPINA1", "CYP3A4"),
        "muscle": ("ACTA1", "MYH7", "CKM", "DES", "TNNT1", "MB"),
        "brain": ("GFAP", "SNAP25", "SYP", "GAD1", "OLIG2", "MBP"),
        "blood": ("HBB", "HBA1", "HBA2", "PTPRC", "CD3E", "LYZ", "S100A8"),
        "lung": ("SFTPC", "SFTPB", "SFTPA1", "AGER", "NKX2-1"),
        "kidney": ("UMOD", "SLC34A1", "NPHS1", "NPHS2", "PAX8"),
    }
)
FEMALE_GENES: tuple[str, ...] = ("XIST",)
MALE_GENES: tuple[str, ...] = ("RPS4Y1", "DDX3Y", "UTY", "KDM5D", "EIF1AY")
OUTLIER_TYPES: tuple[str, ...] = ("low_depth", "degraded", "low_complexity")

_LIBRARY_RANGE = (5e6, 50e6)  # reads per sample, outside low-depth outliers
_LIBRARY_MEDIAN, _LIBRARY_LOG_SD = 15e6, 0.45
_LOW_DEPTH_RANGE = (0.3e6, 2e6)
_AGE_RANGE = (20.0, 80.0)
_OFF = -12.0  # log-expression shift that silences a gene (sex genes in the other sex)


@dataclass(frozen=True)
class SimulatedCohort:
    """A simulated cohort and the ground truth it was drawn from.

    ``counts``: integer reads, genes × samples (index ``ensg_id``, columns sample IDs).
    ``sample_sheet``: indexed by sample ID; tissue, sex, batch, age, is_outlier, outlier_type.
    ``markers``: tissue → Ensembl IDs strongly up in that tissue (known markers first).
    ``true_mean``: the negative-binomial mean of every count (same shape as ``counts``).
    ``dispersion``: per-gene NB dispersion φ, so Var = μ + φ·μ².
    """

    counts: pd.DataFrame
    sample_sheet: pd.DataFrame
    markers: Mapping[str, tuple[str, ...]]
    true_mean: pd.DataFrame
    dispersion: pd.Series


@dataclass(frozen=True)
class _GeneModel:
    """Gene-level parameters: the simulated 'biology', fixed by the seed."""

    tissues: tuple[str, ...]
    base: np.ndarray  # [G] baseline log-expression
    tissue_effect: np.ndarray  # [G, T] log-shift per tissue
    markers: tuple[tuple[str, tuple[str, ...]], ...]
    module_loading: np.ndarray  # [G, K] log-shift per unit of each module's factor
    age_loading: np.ndarray  # [G] log-shift per SD of age
    batch_effect: np.ndarray  # [G, B]
    sex_effect: np.ndarray  # [G, 2] (female, male)
    dispersion: np.ndarray  # [G]


def negative_binomial(mean: np.ndarray, dispersion: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """NB counts with Var = mean + dispersion·mean², drawn as a gamma–Poisson mixture.

    ``dispersion`` broadcasts against ``mean``; a mean of 0 gives 0.
    """
    mean = np.asarray(mean, dtype=float)
    shape = 1.0 / np.asarray(dispersion, dtype=float)
    rate = rng.gamma(np.broadcast_to(shape, mean.shape), mean / shape)
    return rng.poisson(rate).astype(np.int64)


def simulate_cohort(
    genes: pd.DataFrame,
    *,
    n_samples: int = 200,
    seed: int = 0,
    sample_draw: int = 0,
    tissues: Sequence[str] | None = None,
    n_tissue_genes: int = 40,
    n_modules: int = 20,
    n_age_genes: int = 40,
    n_batches: int = 3,
    outlier_fraction: float = 0.03,
    id_prefix: str = "S",
    panel: Sequence[str] | None = None,
) -> SimulatedCohort:
    """Simulate ``n_samples`` bulk RNA-seq libraries over the genes of ``genes``.

    ``genes`` needs columns ``ensg_id`` (unique), ``symbol`` and ``length`` (bp, > 0).
    Tissues are assigned in equal shares; ``n_tissue_genes`` random genes per tissue join the
    known markers; ``outlier_fraction`` of the samples are outliers, cycling through
    :data:`OUTLIER_TYPES`. Sample IDs are ``id_prefix`` + a zero-padded number (``S001``).
    Another ``sample_draw`` with the same ``seed`` gives new samples of the same biology.
    ``panel`` (Ensembl IDs) simulates a targeted panel: only those genes are measured, in that
    order, and each library's reads are spread over them alone.
    """
    ids, symbols, lengths = _check_genes(genes)
    tissues = tuple(DEFAULT_TISSUES if tissues is None else tissues)
    _check_options(n_samples, tissues, n_tissue_genes, n_modules, n_age_genes, n_batches, outlier_fraction)
    rows = np.arange(len(ids)) if panel is None else _panel_rows(ids, panel)

    gene_rng = np.random.default_rng([seed, 0])
    sample_rng = np.random.default_rng([seed, 1, sample_draw])
    model = _draw_gene_model(
        gene_rng, ids, symbols, lengths, tissues, n_tissue_genes, n_modules, n_age_genes, n_batches
    )
    sheet, library, factors = _draw_samples(
        sample_rng, n_samples, tissues, n_modules, n_batches, outlier_fraction, id_prefix
    )
    mean = _expected_counts(sample_rng, model, sheet, library, factors, lengths, rows)
    dispersion = model.dispersion[rows]
    counts = negative_binomial(mean, dispersion[:, None], sample_rng)

    index = pd.Index(ids[rows], name="ensg_id")
    columns = sheet.index
    measured = set(index)
    markers = {t: tuple(g for g in members if g in measured) for t, members in model.markers}
    return SimulatedCohort(
        counts=pd.DataFrame(counts, index=index, columns=columns),
        sample_sheet=sheet,
        markers=MappingProxyType(markers),
        true_mean=pd.DataFrame(mean, index=index, columns=columns),
        dispersion=pd.Series(dispersion, index=index, name="dispersion"),
    )


def _check_genes(genes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    missing = {"ensg_id", "symbol", "length"} - set(genes.columns)
    if missing:
        raise InputError(
            f"The gene table lacks column(s) {', '.join(sorted(missing))}.",
            hint="Pass a table with columns ensg_id, symbol and length (bp).",
        )
    if genes.empty:
        raise InputError("The gene table is empty.", hint="Pass at least one gene.")
    ids = genes["ensg_id"].astype(str).to_numpy()
    if pd.Index(ids).has_duplicates:
        raise InputError("The gene table repeats some ensg_id values.", hint="Keep one row per gene.")
    lengths = pd.to_numeric(genes["length"], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(lengths) & (lengths > 0)):
        raise InputError("Some gene lengths are missing or not positive.", hint="Give every gene a length in bp.")
    symbols = genes["symbol"].fillna("").astype(str).to_numpy()
    return ids, symbols, lengths


def _panel_rows(ids: np.ndarray, panel: Sequence[str]) -> np.ndarray:
    rows = pd.Index(ids).get_indexer(list(panel))
    if len(rows) == 0 or (rows < 0).any() or len(set(rows)) != len(rows):
        raise InputError(
            "The panel must list distinct genes of the gene table.",
            hint="Pass ensg_id values from the gene table, each once.",
        )
    return rows


def _check_options(
    n_samples: int,
    tissues: tuple[str, ...],
    n_tissue_genes: int,
    n_modules: int,
    n_age_genes: int,
    n_batches: int,
    outlier_fraction: float,
) -> None:
    problems = []
    if n_samples < 1:
        problems.append("n_samples must be at least 1")
    if not tissues or len(set(tissues)) != len(tissues):
        problems.append("tissues must be a non-empty list without repeats")
    if min(n_tissue_genes, n_modules, n_age_genes) < 0:
        problems.append("n_tissue_genes, n_modules and n_age_genes cannot be negative")
    if n_batches < 1:
        problems.append("n_batches must be at least 1")
    if not 0.0 <= outlier_fraction <= 0.5:
        problems.append("outlier_fraction must lie between 0 and 0.5")
    if problems:
        raise InputError("Cannot simulate: " + "; ".join(problems) + ".", hint="Fix the simulation settings.")


def _draw_gene_model(
    rng: np.random.Generator,
    ids: np.ndarray,
    symbols: np.ndarray,
    lengths: np.ndarray,
    tissues: tuple[str, ...],
    n_tissue_genes: int,
    n_modules: int,
    n_age_genes: int,
    n_batches: int,
) -> _GeneModel:
    """Every gene's parameters (the module docstring's model), drawn from ``rng`` in a fixed
    order: the helpers below are called in that order, and changing it changes every seeded
    cohort, the shipped demo data included."""
    n_genes = len(ids)
    first_row = {s: i for i, s in reversed(list(enumerate(symbols))) if s}

    def rows_of(names: Sequence[str]) -> np.ndarray:
        return np.array([first_row[s] for s in names if s in first_row], dtype=int)

    # Heavy-tailed baseline: ~20% barely expressed, most moderate, 1.5% very high.
    u = rng.random(n_genes)
    base = np.where(
        u < 0.2,
        rng.normal(-4.0, 1.5, n_genes),
        np.where(u < 0.985, rng.normal(0.0, 1.3, n_genes), rng.normal(3.5, 1.5, n_genes)),
    )
    tissue_effect = rng.normal(0.0, 0.2, (n_genes, len(tissues)))
    known = [rows_of(KNOWN_MARKERS.get(t, ())) for t in tissues]
    female, male = rows_of(FEMALE_GENES), rows_of(MALE_GENES)
    free, markers = _place_markers(rng, base, tissue_effect, ids=ids, tissues=tissues, known=known,
                                   reserved=(female, male), n_tissue_genes=n_tissue_genes)
    sex_effect = _place_sex_genes(rng, base, tissue_effect, female=female, male=male)
    module_loading, age_loading = _module_loadings(rng, free, n_genes=n_genes, n_modules=n_modules,
                                                   n_age_genes=n_age_genes)
    batch_effect = rng.normal(0.0, 0.15, (n_genes, n_batches))
    dispersion = _dispersion(rng, base, lengths)
    return _GeneModel(tissues=tissues, base=base, tissue_effect=tissue_effect, markers=markers,
                      module_loading=module_loading, age_loading=age_loading, batch_effect=batch_effect,
                      sex_effect=sex_effect, dispersion=dispersion)


def _place_markers(rng: np.random.Generator, base: np.ndarray, tissue_effect: np.ndarray, *, ids: np.ndarray,
                   tissues: tuple[str, ...], known: list[np.ndarray], reserved: tuple[np.ndarray, ...],
                   n_tissue_genes: int) -> tuple[np.ndarray, tuple[tuple[str, tuple[str, ...]], ...]]:
    """Markers: low elsewhere, strongly up in their tissue (known markers strongest).

    Writes the markers' baseline and tissue effects into ``base`` ``[genes]`` and
    ``tissue_effect`` ``[genes, tissues]``; each tissue gets its ``known`` rows and up to
    ``n_tissue_genes`` random ones, never a ``reserved`` (sex) gene. → (the rows left free, in
    random order; (tissue, marker gene IDs) per tissue).
    """
    taken = np.zeros(len(base), dtype=bool)
    for rows in (*known, *reserved):
        taken[rows] = True
    free = rng.permutation(np.flatnonzero(~taken))
    n_extra = min(n_tissue_genes, len(free) // (len(tissues) + 1))
    extra = [free[i * n_extra : (i + 1) * n_extra] for i in range(len(tissues))]
    markers = []
    for t, (tissue, k_rows, x_rows) in enumerate(zip(tissues, known, extra)):
        rows = np.concatenate([k_rows, x_rows])
        base[rows] = rng.normal(-1.0, 0.5, len(rows))
        tissue_effect[rows, :] = 0.0
        tissue_effect[k_rows, t] = np.sort(rng.uniform(5.5, 8.5, len(k_rows)))[::-1]
        tissue_effect[x_rows, t] = rng.uniform(4.0, 6.5, len(x_rows))
        markers.append((tissue, tuple(ids[rows])))
    return free[len(tissues) * n_extra :], tuple(markers)


def _place_sex_genes(rng: np.random.Generator, base: np.ndarray, tissue_effect: np.ndarray, *,
                     female: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Sex genes: expressed in one sex, silent in the other. Writes their baseline into ``base``
    and clears their tissue effects; → the sex effect ``[genes, 2]`` (female, male)."""
    sex_effect = np.zeros((len(base), 2))
    base[female] = rng.normal(2.5, 0.3, len(female))
    base[male] = rng.normal(1.5, 0.5, len(male))
    tissue_effect[np.concatenate([female, male])] = 0.0
    sex_effect[female, 1] = _OFF
    sex_effect[male, 0] = _OFF
    return sex_effect


def _module_loadings(rng: np.random.Generator, free: np.ndarray, *, n_genes: int, n_modules: int,
                     n_age_genes: int) -> tuple[np.ndarray, np.ndarray]:
    """Co-expression modules and the age module: disjoint groups of the ``free`` genes.
    → loadings ``[genes, modules]`` and age loadings ``[genes]``."""
    sizes = rng.integers(20, 151, n_modules)
    module_loading = np.zeros((n_genes, n_modules))
    start = 0
    for k, size in enumerate(sizes):
        rows = free[start : start + size]
        start += len(rows)
        sign = np.where(rng.random(len(rows)) < 0.15, -1.0, 1.0)
        module_loading[rows, k] = sign * np.abs(rng.normal(0.5, 0.2, len(rows)))
    age_loading = np.zeros(n_genes)
    rows = free[start : start + n_age_genes]
    age_loading[rows] = rng.choice([-1.0, 1.0], len(rows)) * rng.uniform(0.15, 0.4, len(rows))
    return module_loading, age_loading


def _dispersion(rng: np.random.Generator, base: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Dispersion falls with expression (CPM at baseline), with per-gene scatter."""
    weight = np.exp(base) * lengths
    cpm = np.maximum(weight / weight.sum() * 1e6, 0.01)
    return (0.04 + 0.4 / np.sqrt(cpm)) * rng.lognormal(0.0, 0.35, len(base))


def _draw_samples(
    rng: np.random.Generator,
    n_samples: int,
    tissues: tuple[str, ...],
    n_modules: int,
    n_batches: int,
    outlier_fraction: float,
    id_prefix: str,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The sample sheet, the target library sizes [N] and the module factors [K, N]."""
    width = max(3, len(str(n_samples)))
    sample_ids = pd.Index([f"{id_prefix}{i + 1:0{width}d}" for i in range(n_samples)], name="sample_id")
    tissue = rng.permutation(np.resize(np.array(tissues, dtype=object), n_samples))
    sex = np.where(rng.random(n_samples) < 0.5, "female", "male")
    batch = np.array([f"B{b + 1}" for b in rng.integers(0, n_batches, n_samples)], dtype=object)
    age = np.round(rng.uniform(*_AGE_RANGE, n_samples), 1)

    # A margin inside the range, so that sampling noise on the total cannot leave it.
    low, high = np.log(_LIBRARY_RANGE[0] * 1.1), np.log(_LIBRARY_RANGE[1] * 0.95)
    library = np.exp(np.clip(rng.normal(np.log(_LIBRARY_MEDIAN), _LIBRARY_LOG_SD, n_samples), low, high))

    outlier_type = np.full(n_samples, "", dtype=object)
    n_out = int(round(outlier_fraction * n_samples))
    chosen = rng.choice(n_samples, n_out, replace=False)
    outlier_type[chosen] = np.resize(np.array(OUTLIER_TYPES, dtype=object), n_out)
    low_depth = outlier_type == "low_depth"
    library[low_depth] = np.exp(rng.uniform(*np.log(_LOW_DEPTH_RANGE), low_depth.sum()))

    sheet = pd.DataFrame(
        {
            "tissue": tissue,
            "sex": sex,
            "batch": batch,
            "age": age,
            "is_outlier": outlier_type != "",
            "outlier_type": outlier_type,
        },
        index=sample_ids,
    )
    return sheet, library, rng.normal(0.0, 1.0, (n_modules, n_samples))


def _expected_counts(
    rng: np.random.Generator,
    model: _GeneModel,
    sheet: pd.DataFrame,
    library: np.ndarray,
    factors: np.ndarray,
    lengths: np.ndarray,
    rows: np.ndarray,
) -> np.ndarray:
    """NB means [measured genes, N]: log-expression → × length → outlier distortions → depth."""
    tissue_idx = pd.Index(model.tissues).get_indexer(sheet["tissue"])
    batch_idx = sheet["batch"].str[1:].astype(int).to_numpy() - 1
    sex_idx = (sheet["sex"] == "male").to_numpy().astype(int)
    age = sheet["age"].to_numpy()
    age_std = (age - np.mean(_AGE_RANGE)) / (np.diff(_AGE_RANGE)[0] / np.sqrt(12))

    log_expr = (
        model.base[:, None]
        + model.tissue_effect[:, tissue_idx]
        + model.batch_effect[:, batch_idx]
        + model.sex_effect[:, sex_idx]
        + model.module_loading @ factors
        + model.age_loading[:, None] * age_std[None, :]
    )
    weight = np.exp(log_expr[rows]) * lengths[rows, None]

    outlier_type = sheet["outlier_type"].to_numpy()
    degraded = np.flatnonzero(outlier_type == "degraded")
    if len(degraded):  # 3' bias: reads per gene grow sub-linearly with length
        beta = rng.uniform(0.5, 0.8, len(degraded))
        weight[:, degraded] *= (lengths[rows, None] / np.median(lengths)) ** -beta[None, :]
    for s in np.flatnonzero(outlier_type == "low_complexity"):  # a few genes take most reads
        top = np.argsort(weight[:, s])[-20:]
        weight[top, s] *= weight[:, s].sum() / weight[top, s].sum() * 1.5
    return weight / weight.sum(axis=0, keepdims=True) * library[None, :]
