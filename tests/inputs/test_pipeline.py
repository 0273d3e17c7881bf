"""``prepare`` end to end, checked against an independent computation with pandas."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkformer import paths
from bulkformer.errors import InputError
from bulkformer.genes import load_annotation, protein_coding_ids
from bulkformer.inputs._pipeline import prepare

ORDER = protein_coding_ids()[:300]


@pytest.fixture(scope="module")
def counts() -> pd.DataFrame:
    """Counts for 200 model genes (Ensembl IDs with versions), 3 lncRNA-like extras and one
    unknown label; 6 samples."""
    rng = np.random.default_rng(3)
    genes = [f"{g}.{i % 9 + 1}" for i, g in enumerate(ORDER[:200])] + ["ENSG00000230876", "MALAT1", "mystery"]
    values = rng.negative_binomial(2, 0.01, size=(len(genes), 6))
    return pd.DataFrame(values, index=pd.Index(genes, name="gene"), columns=[f"S{i}" for i in range(6)])


def expected_log_tpm(counts: pd.DataFrame, lengths: pd.Series) -> pd.DataFrame:
    """Upstream's formula written out with pandas: rates over ALL genes, 1 kb when unknown."""
    rate = counts.div(lengths.fillna(1000.0).to_numpy() / 1000.0, axis=0)
    return np.log1p(rate / rate.sum(axis=0) * 1e6).T


def annotation_lengths(labels: pd.Index) -> pd.Series:
    annotation = load_annotation()
    ids = [annotation.ensg_of(x) if not x.startswith("ENSG") else x.split(".")[0] for x in labels]
    return pd.Series([annotation.length_of(i) if i else None for i in ids], index=labels, dtype=float)


def upstream_lengths(labels: pd.Index) -> pd.Series:
    """Upstream's ``gene_length_df.csv`` looked up by hand (the shipped copy, read with pandas)."""
    table = pd.read_csv(paths.GENE_LENGTHS_DIR / "gene_length_df.csv.gz", index_col="ensg_id")["length"]
    annotation = load_annotation()
    ids = [annotation.ensg_of(x) if not x.startswith("ENSG") else x.split(".")[0] for x in labels]
    return pd.Series([table.get(i) if i else None for i in ids], index=labels, dtype=float)


def test_counts_default_to_upstreams_gene_lengths(counts: pd.DataFrame, tmp_path: Path) -> None:
    """The published models' normalisation: counts / upstream's lengths (1 kb if unlisted)."""
    counts.to_csv(tmp_path / "counts.csv")
    prepared = prepare(tmp_path / "counts.csv", gene_order=ORDER)
    expected = expected_log_tpm(counts, upstream_lengths(counts.index))
    np.testing.assert_allclose(prepared.aligned.values[:, :200], expected.iloc[:, :200].to_numpy(),
                               rtol=2e-6, atol=2e-6)
    assert any("upstream BulkFormer gene lengths" in n for n in prepared.qc.notes)
    differs = expected_log_tpm(counts, annotation_lengths(counts.index)).iloc[:, :200].to_numpy()
    assert np.abs(differs - prepared.aligned.values[:, :200]).max() > 0.1  # the tables really differ


def test_counts_csv(counts: pd.DataFrame, tmp_path: Path) -> None:
    counts.to_csv(tmp_path / "counts.csv")
    prepared = prepare(tmp_path / "counts.csv", gene_order=ORDER, gene_lengths="annotation")
    assert any("annotation lengths" in n for n in prepared.qc.notes)
    expected = expected_log_tpm(counts, annotation_lengths(counts.index))
    aligned = prepared.aligned
    assert aligned.sample_ids == tuple(counts.columns) and aligned.gene_ids == ORDER
    np.testing.assert_allclose(aligned.values[:, :200], expected.iloc[:, :200].to_numpy(),
                               rtol=2e-6, atol=2e-6)
    assert (aligned.values[:, 200:] == -10.0).all()
    assert aligned.mask_prob == pytest.approx(100 / 300)
    g = prepared.guesses
    assert (g.orientation.value, g.id_type.value, g.value_type.value) == ("genes_in_rows", "mixed", "counts")
    assert prepared.metadata is None
    assert prepared.qc.n_genes_read == 203 and prepared.qc.unmapped_examples == ("mystery",)
    np.testing.assert_array_equal(prepared.qc.per_sample["library_size"], counts.sum(axis=0))


def test_same_result_transposed_and_as_bytes(counts: pd.DataFrame, tmp_path: Path) -> None:
    counts.to_csv(tmp_path / "counts.csv")
    reference = prepare(tmp_path / "counts.csv", gene_order=ORDER).aligned.values
    counts.T.to_csv(tmp_path / "wide.tsv", sep="\t")
    wide = prepare((tmp_path / "wide.tsv").read_bytes(), filename="wide.tsv", gene_order=ORDER)
    assert wide.guesses.orientation.value == "genes_in_columns"
    np.testing.assert_array_equal(wide.aligned.values, reference)


def test_featurecounts_lengths_win(tmp_path: Path) -> None:
    genes = ORDER[:3]
    text = "# featureCounts\nGeneid\tChr\tStart\tEnd\tStrand\tLength\tS1\n" + "".join(
        f"{g}\tchr1\t1\t2\t+\t{length}\t{c}\n"
        for g, length, c in zip(genes, (1000, 2000, 500), (10, 20, 30)))
    prepared = prepare(text.encode(), filename="fc.txt", gene_order=genes)
    np.testing.assert_allclose(prepared.aligned.values, np.log1p([[125_000, 125_000, 750_000]]), rtol=1e-6)
    assert prepared.qc.source_format == "featurecounts"
    assert any("the file's own length column for 3 rows" in n for n in prepared.qc.notes)


def test_one_sample_and_overrides(tmp_path: Path) -> None:
    genes = ORDER[:3]
    tpm = pd.DataFrame({"only": [1.0, 2.0, 3.0]}, index=genes)
    tpm.to_csv(tmp_path / "one.csv")
    prepared = prepare(tmp_path / "one.csv", gene_order=genes, value_type="tpm")
    np.testing.assert_allclose(prepared.aligned.values, np.log1p([[1.0, 2.0, 3.0]]), rtol=1e-6)
    assert prepared.guesses.value_type.reason == "chosen by you"
    assert any("outlier checks" in n for n in prepared.qc.notes)
    with pytest.raises(InputError, match="Unknown value type"):
        prepare(tmp_path / "one.csv", gene_order=genes, value_type="cpm")


def test_sample_sheet(counts: pd.DataFrame, tmp_path: Path) -> None:
    counts.to_csv(tmp_path / "counts.csv")
    sheet = pd.DataFrame({"tissue": ["lung", "liver", "lung", "skin", "blood"],
                          "id": ["S4", "S0", "S1", "S2", "extra"]})
    sheet.to_csv(tmp_path / "sheet.tsv", sep="\t", index=False)
    prepared = prepare(tmp_path / "counts.csv", gene_order=ORDER, sample_sheet=tmp_path / "sheet.tsv")
    metadata = prepared.metadata
    assert tuple(metadata.index) == prepared.aligned.sample_ids
    assert metadata.loc["S4", "tissue"] == "lung" and metadata.loc["S0", "tissue"] == "liver"
    assert metadata.loc[["S3", "S5"], "tissue"].isna().all()
    assert any("'S3', 'S5'" in w for w in prepared.qc.warnings)
    assert any("'extra'" in n for n in prepared.qc.notes)


@pytest.mark.parametrize(("content", "message"), [
    (b"gene,S1,S1\nTP53,1,2\n", "appear more than once"),
    (b"gene,S1,S2\nTP53,1,-2\nACTB,1,2\n", "Negative value -2 for gene 'TP53' in sample 'S2'"),
    (b"gene,S1,S2\nTP53,1,0\nACTB,1,0\n", "'S2' have only zeros"),
    (b"gene,S1\nActb,1\nGapdh,2\nTrp53,3\n", "mouse or rat"),
    (b"gene,S1\nENSMUSG00000029580,1\nENSMUSG00000057666,2\n", "mouse"),
    (b"gene,S1\nfoo,1\nbar,2\n", "No recognisable human gene IDs"),
])
def test_user_errors(content: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        prepare(content, filename="t.csv", gene_order=ORDER)


GENE_LABEL = st.one_of(st.sampled_from(ORDER[:20]),
                       st.sampled_from(["TP53", "actb", "MARCH1", "ENSG00000141510.9"]),
                       st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=5))
VALUE = st.one_of(st.integers(0, 10_000).map(str), st.floats(0, 1e6).map(lambda x: f"{x:.3f}"),
                  st.sampled_from(["", "NA", "x", "-1", "1e999"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(genes=st.lists(GENE_LABEL, min_size=1, max_size=10),
       n_samples=st.integers(1, 4), data=st.data(),
       transpose=st.booleans(),
       sample_names=st.sampled_from([["S1", "S2", "S3", "S4"], ["a", "a", "b", "c"]]))
def test_random_tables_only_raise_input_error(genes: list[str], n_samples: int, data: st.DataObject,
                                              transpose: bool, sample_names: list[str]) -> None:
    cells = data.draw(st.lists(st.lists(VALUE, min_size=n_samples, max_size=n_samples),
                               min_size=len(genes), max_size=len(genes)))
    # 100 well-formed model genes, so that the random rows are judged on their own and not
    # merely refused for measuring too few genes.
    block = [[g, *[str(5 + i % 7)] * n_samples] for i, g in enumerate(ORDER[100:200])]
    rows = [["gene", *sample_names[:n_samples]]] + block + [[g, *c] for g, c in zip(genes, cells)]
    if transpose:
        rows = [list(r) for r in zip(*rows)]
    content = "\n".join(",".join(r) for r in rows).encode()
    try:
        prepared = prepare(content, filename="random.csv", gene_order=ORDER[:200])
    except InputError:
        return
    values = prepared.aligned.values
    assert values.shape == (len(prepared.aligned.sample_ids), 200)
    assert np.isfinite(values).all() and ((values >= 0) | (values == -10.0)).all()


def test_near_identical_sheet_names_and_a_contradicted_value_type(counts: pd.DataFrame, tmp_path: Path) -> None:
    counts.to_csv(tmp_path / "counts.csv")
    sheet = pd.DataFrame({"run": [f"Sample_{s}" for s in counts.columns], "dex": ["a"] * counts.shape[1]})
    prepared = prepare(tmp_path / "counts.csv", gene_order=ORDER, sample_sheet=sheet, value_type="tpm")
    assert list(prepared.metadata.index) == list(counts.columns) and (prepared.metadata["dex"] == "a").all()
    assert prepared.sheet_id_column.value == "run"
    assert any(f"Matched {counts.shape[1]} sample(s) by near-identical names" in n for n in prepared.qc.notes)
    assert any(w.startswith("You said the values are TPM, but every value is a whole number")
               for w in prepared.qc.warnings)


def test_excel_date_cells_in_a_real_workbook_are_warned_about(tmp_path: Path) -> None:
    import datetime

    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["gene", "s1", "s2"])
    for i, gene in enumerate(ORDER):
        sheet.append([gene, i + 1, 2 * i + 3])
    sheet.append([datetime.datetime(2024, 9, 2), 10, 20])  # what Excel made of SEPT2: a date cell
    workbook.save(tmp_path / "dates.xlsx")
    prepared = prepare(tmp_path / "dates.xlsx", gene_order=ORDER)
    (warning,) = [w for w in prepared.qc.warnings if "look like dates" in w]
    assert warning.startswith("1 gene names look like dates ('2024-09-02 00:00:00')")


def test_too_few_model_genes_are_refused_with_the_count(tmp_path: Path) -> None:
    """Under ``MIN_MEASURED_GENES`` measured model genes nothing is run; at the limit it works."""
    from bulkformer.inputs._align import MIN_MEASURED_GENES

    assert MIN_MEASURED_GENES == 100
    rng = np.random.default_rng(5)
    for n, refused in ((99, True), (100, False)):
        tpm = pd.DataFrame(rng.uniform(1, 100, size=(n, 2)), index=pd.Index(ORDER[:n], name="gene"),
                           columns=["a", "b"])
        if refused:
            with pytest.raises(InputError, match=f"measures only 99 of the model's {len(ORDER)} genes; at least "
                                                 "100 are needed") as info:
                prepare(tpm.to_csv().encode(), filename="t.csv", gene_order=ORDER, value_type="tpm")
            assert "symbols or Ensembl IDs" in info.value.hint
        else:
            prepared = prepare(tpm.to_csv().encode(), filename="t.csv", gene_order=ORDER, value_type="tpm")
            assert int(prepared.aligned.observed.sum()) == 100
    one_alias = b"gene,s1,s2\nP53,1,2\nnot_a_gene,3,4\nalso_not,5,6\n"  # 1 model gene (TP53's alias)
    with pytest.raises(InputError, match="measures only 1 of the model's"):
        prepare(one_alias, filename="t.csv", gene_order=protein_coding_ids())


def test_the_demo_panel_still_works() -> None:
    prepared = prepare(paths.demo_dir() / "demo_panel_counts.csv.gz", gene_order=protein_coding_ids())
    assert 990 <= int(prepared.aligned.observed.sum()) <= 1000  # a 1,000-gene panel
    assert any(w.startswith("Low coverage: the table measures only") for w in prepared.qc.warnings)


def test_a_table_with_entrez_gene_ids(counts: pd.DataFrame, tmp_path: Path) -> None:
    from bulkformer.genes import load_annotation

    entrez = load_annotation().entrez_ids
    by_gene = pd.Series(entrez.index, index=entrez.to_numpy()).groupby(level=0).first()
    table = counts.iloc[:200].set_axis([g.split(".")[0] for g in counts.index[:200]])
    table = table[table.index.isin(by_gene.index)]
    table.index = by_gene[table.index].to_numpy()  # the same genes, named by NCBI gene ID
    table.to_csv(tmp_path / "entrez.csv")
    prepared = prepare(tmp_path / "entrez.csv", gene_order=ORDER)
    assert prepared.guesses.id_type.value == "entrez" and prepared.guesses.orientation.value == "genes_in_rows"
    assert prepared.qc.n_genes_mapped == len(table) and len(table) > 150
    assert prepared.qc.n_model_genes_observed == len(table)  # each NCBI ID led to its own model gene


def test_measured_genes_outside_the_model_are_kept_for_showing(tmp_path: Path) -> None:
    """XIST (a lncRNA, not a model gene), written twice (symbol and versioned Ensembl ID), and a label no
    annotation knows, written twice: kept as log1p TPM beside the model's input, each merged to one column
    by adding TPM; TPM is taken over every row of the file, as for the model's genes."""
    rng = np.random.default_rng(7)
    labels = [*ORDER[:200], "XIST", "ENSG00000229807.2", "mystery", " mystery", "MALAT1"]
    counts = pd.DataFrame(rng.negative_binomial(2, 0.01, size=(len(labels), 5)) + 1,
                          index=pd.Index(labels, name="gene"), columns=[f"S{i}" for i in range(5)])
    counts.to_csv(tmp_path / "counts.csv")
    prepared = prepare(tmp_path / "counts.csv", gene_order=ORDER)

    # by hand: rates over all rows with upstream's lengths (1 kb where unknown), per million, per sample
    lengths = upstream_lengths(counts.index).fillna(1000.0).to_numpy()
    rate = counts.to_numpy(dtype=np.float64) / (lengths[:, None] / 1000.0)
    tpm = rate / rate.sum(axis=0) * 1e6  # genes × samples
    np.testing.assert_allclose(prepared.aligned.values[:, :200], np.log1p(tpm[:200]).T, rtol=2e-6, atol=2e-6)

    other = prepared.other_genes
    assert other is not None and other.dtypes.eq(np.float32).all()
    assert list(other.index) == list(prepared.aligned.sample_ids)
    assert set(other.columns) == {"XIST (ENSG00000229807)", "mystery", "MALAT1 (ENSG00000251562)"}
    np.testing.assert_allclose(other["XIST (ENSG00000229807)"], np.log1p(tpm[200] + tpm[201]), rtol=2e-6)
    np.testing.assert_allclose(other["mystery"], np.log1p(tpm[202] + tpm[203]), rtol=2e-6)
    np.testing.assert_allclose(other["MALAT1 (ENSG00000251562)"], np.log1p(tpm[204]), rtol=2e-6)
    assert "ENSG00000229807" not in prepared.aligned.gene_ids  # shown only; never the model's input

    only_model = prepare(counts.iloc[:200].to_csv().encode(), filename="t.csv", gene_order=ORDER)
    assert only_model.other_genes is not None and only_model.other_genes.shape == (5, 0)
