"""The registry of published models: its facts against the spec, and everything derived from it."""

from __future__ import annotations

import dataclasses

import pytest

from bulkformer.errors import BulkFormerError
from bulkformer.fetch import _registry as registry
from bulkformer.fetch import zenodo as dl

# From ../shared/spec/bulkformer-format.md, typed in by hand: name → (family, dim, gb_repeat ×
# p_repeat, checkpoint, graph, Zenodo record with gene table and graph, Drive file id).
SPEC = {
    "37M": ("v2", 128, 1, 1, "bulkformer_37M.pt", "G_tcga.pt", "15744294", "1qY2qaXfKfDot9EMcOF9gr8T0jghrH7km"),
    "50M": ("v2", 256, 1, 2, "bulkformer_50M.pt", "G_tcga.pt", "15744294", "12ZYGYrZIQJyodaVicrJpnY_8_JG-hamK"),
    "93M": ("v2", 512, 1, 6, "bulkformer_93M.pt", "G_tcga.pt", "15744294", "1s_3XoMaHiBfxi5C8D3bgwwzNrihafaIk"),
    "127M": ("v2", 640, 1, 8, "bulkformer_127M.pt", "G_tcga.pt", "15744294", "1-5AdgIpkm8dOm9tuwOXcqS1sUyGN6vHg"),
    "147M": ("v2", 640, 1, 12, "bulkformer_147M.pt", "G_tcga.pt", "15744294", "1UtqN_vCh3669Fs-GU5CTE7F7UnuQCAzN"),
    "v1": ("v1", 640, 3, 4, "Bulkformer_ckpt_epoch_29.pt", "G_gtex.pt", "15559368", ""),
}


def test_every_published_model_matches_the_spec() -> None:
    assert list(registry.MODELS) == list(SPEC)
    for name, (family, dim, blocks, layers, ckpt, graph, record, drive_id) in SPEC.items():
        model = registry.MODELS[name]
        shape = (model.family, model.config.dim, model.config.gb_repeat, model.config.p_repeat)
        assert shape == (family, dim, blocks, layers), name
        assert model.config.n_genes == 20010 and model.config.heads == 8 and model.config.name == name
        assert (model.checkpoint, model.graph) == (ckpt, (graph, graph.replace(".pt", "_weight.pt")))
        assert model.data_record.record_id == record and model.drive_id == drive_id
        assert model.source == ("drive" if drive_id else "zenodo")
        assert model.gene_table == "bulkformer_gene_info.csv" and model.gene_lengths == "upstream"
        assert model.esm2 == "esm2_feature_concat.pt"
    assert registry.MODELS["v1"].config.esm_dim == 1280


def test_download_sizes_are_the_spec_ones_or_4_bytes_per_parameter() -> None:
    assert registry.MODELS["v1"].download_bytes == 568_000_000  # "~568 MB"
    assert registry.MODELS["147M"].download_bytes == 4 * 147_000_000
    assert registry.MODELS["37M"].download_bytes == 4 * 37_000_000


def test_presets_published_files_and_download_lists_derive_from_the_registry() -> None:
    from bulkformer.fetch._registry import PRESETS, preset_name
    from bulkformer.model import PRESETS as from_package
    from bulkformer.model._files import PUBLISHED_FILES

    assert PRESETS is registry.PRESETS is from_package
    assert {n: p for n, p in PRESETS.items()} == {n: m.config for n, m in registry.MODELS.items()}
    assert preset_name(dataclasses.replace(PRESETS["v1"], name="x")) == "v1"
    assert PUBLISHED_FILES == {"37M": ("bulkformer_37M.pt", "G_tcga.pt", "G_tcga_weight.pt"),
                               "50M": ("bulkformer_50M.pt", "G_tcga.pt", "G_tcga_weight.pt"),
                               "93M": ("bulkformer_93M.pt", "G_tcga.pt", "G_tcga_weight.pt"),
                               "127M": ("bulkformer_127M.pt", "G_tcga.pt", "G_tcga_weight.pt"),
                               "147M": ("bulkformer_147M.pt", "G_tcga.pt", "G_tcga_weight.pt"),
                               "v1": ("Bulkformer_ckpt_epoch_29.pt", "G_gtex.pt", "G_gtex_weight.pt")}
    assert [m.name for m in dl.DRIVE_CHECKPOINTS] == ["37M", "50M", "93M", "127M", "147M"]
    assert [(k.record_id, k.label) for k in dl.KNOWN_RECORDS] == [("15744294", "v2"), ("15559368", "v1")]
    assert "https://drive.google.com/file/d/1UtqN_vCh3669Fs-GU5CTE7F7UnuQCAzN/view" in dl.drive_instructions()


def test_cli_help_names_every_published_model() -> None:
    from bulkformer.cli import ModelOption

    (option,) = ModelOption.__metadata__
    assert registry.names_text() == "'37M', '50M', '93M', '127M', '147M', 'v1'"
    assert registry.names_text() in option.help


def test_unknown_name_lists_the_published_ones() -> None:
    assert registry.get(" 147M ").name == "147M"
    with pytest.raises(BulkFormerError, match="no published model called '148M'") as info:
        registry.get("148M")
    assert "37M, 50M, 93M, 127M, 147M, v1" in info.value.hint


def test_reading_the_registry_needs_no_torch() -> None:
    import subprocess
    import sys

    probe = "import sys; import bulkformer.fetch._registry, bulkformer.fetch.zenodo; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "False"


def test_family_facts_come_from_the_registry() -> None:
    """A checkpoint loaded from a path gets its family's graph and gene-length table."""
    assert registry.for_family("v1").graph == ("G_gtex.pt", "G_gtex_weight.pt")
    assert registry.for_family("v2").graph == ("G_tcga.pt", "G_tcga_weight.pt")
    assert {registry.for_family(f).gene_lengths for f in ("v1", "v2")} == {"upstream"}
