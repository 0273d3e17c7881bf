"""The simulator must be reproducible and produce data with the properties the app relies on.

Statistics here are computed from the counts with plain numpy, independently of the
simulator's internals, so they check the data a user would see.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from bulkformer.errors import InputError
from bulkformer.simulate import (
    FEMALE_GENES,
    KNOWN_MARKERS,
    MALE_GENES,
    SimulatedCohort,
    negative_binomial,
    simulate_cohort,
)

REAL_SYMBOLS = [s for names in KNOWN_MARKERS.values() for s in names] + [*FEMALE_GENES, *MALE_GENES]


def make_genes(n_fake: int = 2000, seed: int = 7) -> pd.DataFrame:
    """Fake genes plus every real marker and sex gene, in a shuffled order."""
    rng = np.random.default_rng(seed)
    symbols = [f"FAKE{i}" for i in range(n_fake)] + REAL_SYMBOLS
    order = rng.permutation(len(symbols))
    return pd.DataFrame(
        {
            "ensg_id": [f"ENSG{i:011d}" for i in range(len(symbols))],
            "symbol": np.array(symbols)[order],
            "length": np.round(rng.lognormal(np.log(2500), 0.8, len(symbols))) + 200,
        }
    )


@pytest.fixture(scope="module")
def genes() -> pd.DataFrame:
    return make_genes()


@pytest.fixture(scope="module")
def cohort(genes: pd.DataFrame) -> SimulatedCohort:
    return simulate_cohort(genes, n_samples=180, seed=0, n_modules=8)


def cpm(counts: pd.DataFrame) -> pd.DataFrame:
    return counts / counts.sum(axis=0) * 1e6


def test_same_seed_same_cohort_other_seed_differs(genes: pd.DataFrame) -> None:
    a = simulate_cohort(genes, n_samples=30, seed=3)
    b = simulate_cohort(genes, n_samples=30, seed=3)
    c = simulate_cohort(genes, n_samples=30, seed=4)
    pd.testing.assert_frame_equal(a.counts, b.counts)
    pd.testing.assert_frame_equal(a.sample_sheet, b.sample_sheet)
    assert dict(a.markers) == dict(b.markers)
    assert not a.counts.equals(c.counts)


def test_sample_draw_gives_new_samples_of_the_same_biology(genes: pd.DataFrame) -> None:
    a = simulate_cohort(genes, n_samples=30, seed=3)
    b = simulate_cohort(genes, n_samples=30, seed=3, sample_draw=1, id_prefix="P")
    pd.testing.assert_series_equal(a.dispersion, b.dispersion)
    assert dict(a.markers) == dict(b.markers)
    assert not np.array_equal(a.counts.to_numpy(), b.counts.to_numpy())
    assert b.counts.columns[0] == "P001"


def test_shapes_ids_and_sample_sheet(cohort: SimulatedCohort, genes: pd.DataFrame) -> None:
    assert cohort.counts.shape == (len(genes), 180)
    assert list(cohort.counts.index) == list(genes["ensg_id"])
    assert list(cohort.counts.columns[:2]) == ["S001", "S002"]
    sheet = cohort.sample_sheet
    assert list(sheet.index) == list(cohort.counts.columns)
    assert {"tissue", "sex", "batch", "age", "is_outlier"} <= set(sheet.columns)
    assert sheet["tissue"].value_counts().to_dict() == {t: 30 for t in KNOWN_MARKERS}
    assert set(sheet["sex"]) == {"female", "male"}
    assert sheet["age"].between(20, 80).all() and sheet["age"].nunique() > 100
    assert sheet["is_outlier"].sum() == round(0.03 * 180)


def test_counts_are_nonnegative_integers(cohort: SimulatedCohort) -> None:
    values = cohort.counts.to_numpy()
    assert np.issubdtype(values.dtype, np.integer)
    assert values.min() >= 0


def test_library_sizes(cohort: SimulatedCohort) -> None:
    library = cohort.counts.sum(axis=0)
    low_depth = cohort.sample_sheet["outlier_type"] == "low_depth"
    assert low_depth.any()
    assert library[~low_depth].between(5e6, 50e6).all()
    assert (library[low_depth] < 5e6).all()
    assert library[~low_depth].std() / library[~low_depth].mean() > 0.2  # depths really vary


def test_negative_binomial_variance_matches_formula() -> None:
    mu, phi = 40.0, 0.25
    draws = negative_binomial(np.full(200_000, mu), phi, np.random.default_rng(0))
    assert draws.mean() == pytest.approx(mu, rel=0.01)
    assert draws.var() == pytest.approx(mu + phi * mu**2, rel=0.03)
    assert draws.var() > 5 * draws.mean()


def test_cohort_counts_are_overdispersed_as_stated(cohort: SimulatedCohort) -> None:
    mu = cohort.true_mean.to_numpy()
    y = cohort.counts.to_numpy()
    phi = cohort.dispersion.to_numpy()[:, None]
    assert np.allclose(y.mean(axis=1), mu.mean(axis=1), rtol=0.25, atol=1.0)
    strong = mu > 100
    sq = (y - mu) ** 2
    assert np.mean(sq / (mu + phi * mu**2)) == pytest.approx(1.0, abs=0.05)
    assert np.mean(sq[strong] / mu[strong]) > 3.0  # far beyond Poisson
    assert cohort.dispersion.corr(cohort.true_mean.mean(axis=1), method="spearman") < -0.5


def test_markers_are_the_top_differentially_expressed_genes(cohort: SimulatedCohort) -> None:
    sheet = cohort.sample_sheet[~cohort.sample_sheet["is_outlier"]]
    expr = cpm(cohort.counts[sheet.index]).to_numpy()
    for tissue, markers in cohort.markers.items():
        inside = (sheet["tissue"] == tissue).to_numpy()
        lfc = np.log2(expr[:, inside].mean(axis=1) + 1) - np.log2(expr[:, ~inside].mean(axis=1) + 1)
        top = cohort.counts.index[np.argsort(lfc)[::-1][: len(markers)]]
        assert set(top) == set(markers), tissue
        assert np.sort(lfc)[::-1][len(markers) - 1] > 2.0, tissue


def test_known_markers_are_used_by_symbol(cohort: SimulatedCohort, genes: pd.DataFrame) -> None:
    symbol = genes.set_index("ensg_id")["symbol"]
    for tissue, names in KNOWN_MARKERS.items():
        marker_symbols = [symbol[g] for g in cohort.markers[tissue]]
        assert marker_symbols[: len(names)] == list(names)
        assert all(s.startswith("FAKE") for s in marker_symbols[len(names) :])


def test_absent_marker_symbols_are_skipped() -> None:
    genes = make_genes(n_fake=500)
    genes = genes[genes["symbol"] != "ALB"]
    result = simulate_cohort(genes, n_samples=12, tissues=["liver", "gut"], n_tissue_genes=5)
    assert list(result.markers) == ["liver", "gut"]
    assert len(result.markers["liver"]) == len(KNOWN_MARKERS["liver"]) - 1 + 5
    assert len(result.markers["gut"]) == 5


def test_sex_genes(cohort: SimulatedCohort, genes: pd.DataFrame) -> None:
    by_symbol = cohort.counts.set_axis(genes["symbol"].to_numpy(), axis=0)
    female = (cohort.sample_sheet["sex"] == "female").to_numpy()
    assert (by_symbol.loc[list(MALE_GENES)].to_numpy()[:, female] <= 1).all()
    assert (by_symbol.loc[list(MALE_GENES)].to_numpy()[:, ~female].mean(axis=1) > 20).all()
    xist = by_symbol.loc["XIST"].to_numpy()
    assert xist[female].mean() > 50 * (xist[~female].mean() + 1)


def test_age_drives_some_genes(cohort: SimulatedCohort) -> None:
    sheet = cohort.sample_sheet[~cohort.sample_sheet["is_outlier"]]
    log_expr = np.log1p(cpm(cohort.counts[sheet.index]))
    ranks = log_expr.rank(axis=1).to_numpy()
    age_rank = sheet["age"].rank().to_numpy()
    corr = [np.corrcoef(r, age_rank)[0, 1] for r in ranks if np.ptp(r) > 0]
    assert np.sum(np.abs(corr) > 0.5) >= 5


def test_expected_counts_scale_with_gene_length(genes: pd.DataFrame) -> None:
    longer = genes.assign(length=genes["length"].where(genes.index != 0, genes["length"] * 10))
    a = simulate_cohort(genes, n_samples=10, outlier_fraction=0).true_mean.to_numpy()
    b = simulate_cohort(longer, n_samples=10, outlier_fraction=0).true_mean.to_numpy()
    assert np.allclose((b[0] / b[1]) / (a[0] / a[1]), 10.0)


def test_targeted_panel_measures_only_its_genes_at_full_depth(genes: pd.DataFrame) -> None:
    full = simulate_cohort(genes, n_samples=20, seed=5, outlier_fraction=0)
    liver = list(full.markers["liver"][:3])
    panel = [*liver, *genes["ensg_id"].iloc[::10]]
    panel = list(dict.fromkeys(panel))
    result = simulate_cohort(genes, n_samples=20, seed=5, outlier_fraction=0, panel=panel)
    assert list(result.counts.index) == panel
    assert result.counts.sum(axis=0).between(5e6, 50e6).all()
    assert set(result.markers["liver"]) == set(full.markers["liver"]) & set(panel)
    # Same biology: relative expression among panel genes is unchanged.
    a, b = full.true_mean.loc[panel].to_numpy(), result.true_mean.to_numpy()
    assert np.allclose(a / a[0], b / b[0])
    with pytest.raises(InputError):
        simulate_cohort(genes, panel=["ENSG_NOT_THERE"])


def test_bad_gene_table_is_an_input_error(genes: pd.DataFrame) -> None:
    with pytest.raises(InputError):
        simulate_cohort(genes.drop(columns="length"))
    with pytest.raises(InputError):
        simulate_cohort(genes.assign(length=0))
    with pytest.raises(InputError):
        simulate_cohort(pd.concat([genes, genes.head(1)]))
    with pytest.raises(InputError):
        simulate_cohort(genes, outlier_fraction=0.9)


def test_full_size_cohort_is_fast() -> None:
    genes = make_genes(n_fake=20_000 - len(REAL_SYMBOLS))
    start = time.perf_counter()
    result = simulate_cohort(genes, n_samples=200)
    assert result.counts.shape == (20_000, 200)
    assert time.perf_counter() - start < 30
