"""The shipped annotation, gene-ID mapping, orientation and duplicate merging."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkformer.errors import InputError
from bulkformer.genes import (
    ANNOTATION_COLUMNS,
    GeneMapping,
    combine_duplicates,
    load_annotation,
    map_genes,
    orient,
    protein_coding_ids,
)
from bulkformer.io import RawTable

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "gene_length_df.csv"
TP53, ACTB, GAPDH = "ENSG00000141510", "ENSG00000075624", "ENSG00000111640"


def test_annotation_table() -> None:
    annotation = load_annotation()
    assert load_annotation() is annotation  # cached
    table = annotation.table
    assert tuple(table.columns) == ANNOTATION_COLUMNS
    assert table["ensg_id"].is_unique and table["ensg_id"].str.fullmatch(r"ENSG\d{11}").all()
    ids = protein_coding_ids()
    assert 19_000 < len(ids) < 20_500
    assert list(ids) == sorted(ids) and TP53 in ids
    assert table.loc[table["ensg_id"].isin(ids), "length"].notna().mean() > 0.9


def test_lookups() -> None:
    annotation = load_annotation()
    assert annotation.symbol_of(TP53) == "TP53"
    assert annotation.symbol_of(f"{TP53}.17") == "TP53"
    assert annotation.symbol_of("ENSG99999999999") is None
    assert annotation.ensg_of("tp53") == annotation.ensg_of("TP53") == TP53
    # previous symbols: renamed genes, several of them Excel's favourite victims
    assert annotation.ensg_of("SEPT7") == annotation.ensg_of("SEPTIN7")
    assert annotation.ensg_of("MARCH1") == annotation.ensg_of("MARCHF1")
    assert annotation.ensg_of("CTGF") == annotation.ensg_of("CCN2")
    # SEPT2 is also an NCBI synonym of SEPTIN6; as SEPTIN2's previous official symbol
    # (HGNC renamed the septins in 2019) it goes to SEPTIN2, ENSG00000168385
    assert annotation.ensg_of("SEPT2") == annotation.ensg_of("SEPTIN2") == "ENSG00000168385"
    assert annotation.ensg_of("SEPT6") == annotation.ensg_of("SEPTIN6")
    assert annotation.ensg_of("CD97") == annotation.ensg_of("ADGRE5")
    assert annotation.ensg_of("no-such-gene") is None
    length = annotation.length_of(TP53)
    assert length is not None and 1_000 < length < 20_000
    np.testing.assert_array_equal(np.isnan(annotation.lengths_bp([TP53, None, "x"])), [False, True, True])


def test_map_ensembl_versions_par_and_symbols() -> None:
    labels = [f"{TP53}.17", "actb", f"{GAPDH}_PAR_Y", f"{GAPDH}.15", "MARCH1", "nonsense", f"{ACTB}|ACTB"]
    mapping = map_genes(labels)
    assert mapping.ensg_ids == (TP53, ACTB, GAPDH, GAPDH, load_annotation().ensg_of("MARCHF1"),
                                None, ACTB)
    assert mapping.labels == tuple(labels)
    assert map_genes([" TP53 "]).labels == (" TP53 ",)  # labels are kept exactly as written
    assert mapping.n_mapped == 6 and mapping.unmapped_labels == ("nonsense",)
    assert mapping.id_type.value == "mixed" and "version suffix" in mapping.id_type.reason
    assert map_genes(["TP53", "ACTB"]).id_type.value == "symbol"
    # overriding the ID type restricts the lookup
    assert map_genes(["TP53", TP53], id_type="ensembl").ensg_ids == (None, TP53)
    assert map_genes(["TP53", TP53], id_type="symbol").ensg_ids == (TP53, None)
    with pytest.raises(InputError, match="Unknown gene ID type"):
        map_genes(["TP53"], id_type="refseq")


@pytest.mark.parametrize(("labels", "message"), [
    (["ENSMUSG00000029580", "ENSMUSG00000057666", "ENSMUSG00000059552.4"], "from mouse"),
    (["ENSRNOG00000034254", "ENSRNOG00000018630"], "from rat"),
    (["ENSDARG00000037746", "ENSDARG00000043457"], "from zebrafish"),
    (["ENSXYZG00000000001", "ENSXYZG00000000002"], "Ensembl prefix ENSXYZ"),
    (["Actb", "Gapdh", "Trp53", "Cd4", "Xist"], "mouse or rat symbols"),
    (["FBgn0000008", "FBgn0000014"], "Drosophila"),
])
def test_other_species_refused(labels: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        map_genes(labels)
    assert "human" in err.value.hint


def test_title_case_symbols_accepted_when_forced() -> None:
    assert map_genes(["Actb", "Gapdh"], id_type="symbol").ensg_ids == (ACTB, GAPDH)


@pytest.mark.parametrize(("labels", "message"), [
    (["sample_1", "foo", "bar"], r"No recognisable human gene IDs.*'sample_1', 'foo', 'bar'"),
    (["ENST00000269305.9", "ENST00000646664.1"], "transcript IDs"),
    (["1", "2", "3"], "numbers, perhaps NCBI Entrez gene IDs"),  # row numbers (real Entrez IDs are read)
    (["1007_s_at", "1053_at", "117_at"], "probe IDs"),
    (["NM_000546", "NM_001101"], "RefSeq"),
])
def test_nothing_recognised(labels: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        map_genes(labels)
    assert err.value.hint


def test_combine_duplicates_adds_on_tpm_scale() -> None:
    labels = [TP53, f"{TP53}.2", ACTB, "unknown", f"{TP53}_PAR_Y"]
    tpm = np.array([[10.0, 5.0, 100.0, 7.0, 1.0], [0.0, 0.0, 3.0, 0.0, 0.0]])
    combined = combine_duplicates(np.log1p(tpm).astype(np.float32), mapping=map_genes(labels),
                                  sample_ids=["a", "b"])
    expected = pd.DataFrame(np.log1p([[16.0, 100.0], [0.0, 3.0]]), index=["a", "b"],
                            columns=[TP53, ACTB])
    np.testing.assert_allclose(combined.table.to_numpy(), expected.to_numpy(), rtol=1e-6)
    assert list(combined.table.columns) == [TP53, ACTB]
    assert combined.table.loc["b", ACTB] == np.float32(np.log1p(3.0))  # single genes untouched
    assert combined.duplicates.to_dict("records") == [
        {"ensg_id": TP53, "n_rows": 3, "labels": f"{TP53}; {TP53}.2; {TP53}_PAR_Y"}]
    kept = combine_duplicates(np.log1p(tpm).astype(np.float32), mapping=map_genes(labels),
                              sample_ids=["a", "b"], keep=[ACTB])
    assert list(kept.table.columns) == [ACTB] and len(kept.duplicates) == 1
    none_kept = combine_duplicates(np.log1p(tpm).astype(np.float32), mapping=map_genes(labels),
                                   sample_ids=["a", "b"], keep=[])
    assert none_kept.table.shape == (2, 0) and len(none_kept.duplicates) == 1
    unmapped = GeneMapping(tuple(labels), (None,) * len(labels), map_genes(labels).id_type)  # no row is a gene
    empty = combine_duplicates(np.log1p(tpm).astype(np.float32), mapping=unmapped, sample_ids=["a", "b"])
    assert empty.table.shape == (2, 0) and empty.duplicates.empty


def raw_table(rows: list[str], columns: list[str], **kwargs: object) -> RawTable:
    values = np.arange(len(rows) * len(columns), dtype=np.float32).reshape(len(rows), len(columns))
    return RawTable(values, tuple(rows), tuple(columns), "csv", **kwargs)


def test_orient() -> None:
    raw = raw_table(["TP53", "ACTB", "GAPDH"], ["S1", "S2"], row_lengths=np.array([1.0, 2.0, 3.0]))
    table = orient(raw)
    assert table.orientation.value == "genes_in_rows" and "row labels" in table.orientation.reason
    assert table.sample_ids == ("S1", "S2") and table.gene_labels == ("TP53", "ACTB", "GAPDH")
    np.testing.assert_array_equal(table.values, raw.values.T)
    np.testing.assert_array_equal(table.gene_lengths, [1.0, 2.0, 3.0])
    assert table.values.flags.c_contiguous

    wide = raw_table(["S1", "S2"], [TP53, ACTB, GAPDH])
    assert orient(wide).orientation.value == "genes_in_columns"
    forced = orient(wide, orientation="genes_in_rows")
    assert forced.orientation.reason == "chosen by you" and forced.sample_ids == (TP53, ACTB, GAPDH)
    with pytest.raises(InputError, match="appear more than once"):
        orient(raw_table(["TP53", "ACTB"], ["S1", "S1"]))
    with pytest.raises(InputError, match="Unknown orientation"):
        orient(raw, orientation="sideways")


def test_annotation_lengths_agree_with_reference() -> None:
    """Our lengths are estimated from hg19 transcript lengths; upstream's are exon unions
    on a newer GENCODE. Most protein-coding genes must agree within a factor of two."""
    if not REFERENCE.is_file():
        pytest.skip(f"reference gene lengths not available at {REFERENCE}")
    reference = pd.read_csv(REFERENCE).set_index("ensg_id")["length"]
    annotation = load_annotation().table.set_index("ensg_id")
    coding = annotation[annotation["biotype"] == "protein_coding"]
    common = coding.index.intersection(reference.index)
    ours = coding.loc[common, "length"].astype("float64")
    known = ours.notna()
    ratio = reference[common][known] / ours[known]
    within_2x = float(((ratio >= 0.5) & (ratio <= 2.0)).mean())
    within_1_5x = float(((ratio >= 1 / 1.5) & (ratio <= 1.5)).mean())
    assert known.sum() > 17_000
    assert within_2x >= 0.75, (
        f"only {within_2x:.1%} of {known.sum()} protein-coding genes within 2x of the reference "
        f"({within_1_5x:.1%} within 1.5x)")
    assert 0.8 < float(np.median(ratio)) < 1.25, f"median ratio {np.median(ratio):.2f}"


LABEL = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "._-|", max_size=12),
    st.integers(0, 99_999_999_999).map(lambda i: f"ENSG{i:011d}"),
    st.integers(0, 99_999_999_999).map(lambda i: f"ENSMUSG{i:011d}.{i % 7}"),
    st.sampled_from(["TP53", "Actb", "ENSG00000141510.3_PAR_Y", "MARCH1", "", " "]),
)


@settings(max_examples=80, deadline=None)
@given(labels=st.lists(LABEL, min_size=1, max_size=12),
       id_type=st.sampled_from(["auto", "ensembl", "symbol"]))
def test_random_labels_map_or_raise_input_error(labels: list[str], id_type: str) -> None:
    try:
        mapping = map_genes(labels, id_type=id_type)
    except InputError:
        return
    assert len(mapping.ensg_ids) == len(labels) and mapping.n_mapped > 0
    mapped = [x for x in mapping.ensg_ids if x is not None]
    assert all(len(x) == 15 and x.startswith("ENSG") for x in mapped)


def test_many_repeated_labels_map_like_each_label_alone() -> None:
    """A table of a million rows repeating a few labels (what a tiny gzip can hold) maps row
    for row as the labels do one at a time."""
    distinct = ["TP53", " actb ", "ENSG00000111640.15", "not a gene", "GAPDH|x"]
    alone = {label: map_genes([label, "TP53"]).ensg_ids[0] for label in distinct}
    assert alone == {"TP53": TP53, " actb ": ACTB, "ENSG00000111640.15": GAPDH, "not a gene": None,
                     "GAPDH|x": GAPDH}
    labels = distinct * 200_000
    mapping = map_genes(labels)
    assert mapping.ensg_ids == tuple(alone[label] for label in labels)
    assert mapping.n_mapped == 800_000 and len(mapping.unmapped_labels) == 200_000
    assert mapping.labels == tuple(labels)


def test_former_ensembl_ids_map_to_the_current_genes() -> None:
    """GRCh37-era tables (most of GEO) name CWC25 ENSG00000108296 and ZNHIT3 ENSG00000108278;
    current Ensembl has both genes under new IDs (the issue's examples)."""
    annotation = load_annotation()
    labels = ["ENSG00000108296.6", "ENSG00000108278", TP53, "not-a-gene"]
    mapping = map_genes(labels, annotation=annotation)
    assert [annotation.symbol_of(g) if g else None for g in mapping.ensg_ids] == ["CWC25", "ZNHIT3", "TP53", None]
    assert mapping.n_former_ids == 2 and "2 former IDs, matched to current genes" in mapping.id_type.reason
    # no current ID is taken for a former one
    assert not set(annotation.former_ids.index) & set(annotation.table["ensg_id"])
    assert map_genes([TP53, ACTB], annotation=annotation).n_former_ids == 0


def test_entrez_gene_ids_are_read_and_row_numbers_are_not() -> None:
    """NCBI Gene: TP53 is 7157, ACTB 60, GAPDH 2597 (TCGA tables and many R workflows use these)."""
    mapping = map_genes(["7157", "60", "2597", "999999999"])
    assert mapping.ensg_ids == (TP53, ACTB, GAPDH, None)
    assert mapping.id_type.value == "entrez" and "3 NCBI (Entrez) gene IDs among 4 labels" in mapping.id_type.reason
    assert map_genes(["7157", "60"], id_type="entrez").id_type.reason.startswith("chosen by you")
    # 1, 2, 3, … are row numbers: refused with a message, never read as genes 1 (A1BG), 2 (A2M), …
    with pytest.raises(InputError, match="row numbers"):
        map_genes([str(i) for i in range(1, 301)])
    with pytest.raises(InputError, match="NCBI"):
        map_genes(["TP53", "ACTB"], id_type="entrez")
    # Numbers too long for any gene ID (found by the fuzzer: they overflowed int64) are simply not genes.
    mapping = map_genes(["7157", "60", "2597", "7158", "7159", "7161", "7162", "7163", "7164", "7165",
                         "123456789012345678901234"])
    assert mapping.id_type.value == "entrez" and mapping.ensg_ids[:3] == (TP53, ACTB, GAPDH)
    assert mapping.ensg_ids[-1] is None


def test_one_gene_list_rule_for_files_and_text_boxes() -> None:
    """Lines, commas, semicolons and spaces separate names; '#' starts a comment; versions,
    symbols and aliases resolve; unknown names and genes the model lacks are told apart."""
    from bulkformer.genes import parse_gene_list

    text = f"# my genes\n{TP53}.17, actb;GAPDH  # housekeeping\nNOT_A_GENE_XYZ\n{TP53}\nMALAT1\n"
    found = parse_gene_list(text, [ACTB, TP53, GAPDH])
    assert found.genes == (TP53, ACTB, GAPDH)
    assert found.unknown == ("NOT_A_GENE_XYZ",) and found.outside == ("MALAT1",)
    assert parse_gene_list("# nothing\n\n", [TP53]).genes == ()
    assert parse_gene_list("zzz qqq", [TP53]).unknown == ("zzz", "qqq")
    assert load_annotation().symbols_of([TP53, "ENSG99999999999"]) == {TP53: "TP53"}
