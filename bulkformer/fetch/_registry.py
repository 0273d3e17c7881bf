"""The published BulkFormer models and the Zenodo records that hold their files: one table.

Everything that names a published model derives from :data:`MODELS`: the shape presets
(``bulkformer.model.PRESETS``), the file names ``BulkFormerModel.load`` looks up
(``wrapper.PUBLISHED_FILES``), the download lists (``download.DRIVE_CHECKPOINTS``,
``download.KNOWN_RECORDS``), the CLI's help text and the app's model list. Adding a size is
one :class:`PublishedModel` line here.

Standard library plus :mod:`bulkformer.model._config` only (no torch), so the CLI's help and
the download client stay light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bulkformer.errors import BulkFormerError
from bulkformer.model._config import PUBLISHED_GENE_COUNT, BulkFormerConfig

GENE_INFO_NAME = "bulkformer_gene_info.csv"
"""The published gene table; its row order is every published model's gene order."""
ESM2_NAME = "esm2_feature_concat.pt"
"""The published ESM2 protein-embedding table ``[20010, 1280]``."""
DRIVE_VIEW_URL = "https://drive.google.com/file/d/{file_id}/view"

SourceKind = Literal["zenodo", "drive"]


@dataclass(frozen=True)
class ZenodoRecord:
    """A Zenodo record that holds published BulkFormer assets."""

    record_id: str
    label: str
    description: str


V2_RECORD = ZenodoRecord(
    "15744294",
    "v2",
    "Current release: gene table, TCGA gene graph, ESM2 protein table, demo data and "
    "the optional pretraining data (PreBULK). Its five checkpoints are on Google Drive.",
)
V1_RECORD = ZenodoRecord(
    "15559368",
    "v1",
    "First release: the BulkFormer checkpoint (epoch 29), GTEx gene graph, ESM2 protein "
    "table, gene table and demo data.",
)
RECORDS: tuple[ZenodoRecord, ...] = (V2_RECORD, V1_RECORD)
"""Newest first: when both records offer a file name, the newer copy wins."""


@dataclass(frozen=True)
class PublishedModel:
    """One published checkpoint and the files it needs.

    Attributes:
        name: what users type (``"147M"``, ``"v1"``); also ``config.name``.
        config: the network's shape (every field but the dropouts can be read off the file).
        checkpoint: file name in the model folder.
        graph: the gene-graph pair (edge index, edge weights) in the data folder.
        data_record: the Zenodo record with the gene table and graph of this family.
        source: where the checkpoint is published: ``"zenodo"`` (in ``data_record``) or
            ``"drive"`` (Google Drive, by ``drive_id``).
        drive_id: the Google Drive file id, for ``source == "drive"``.
        download_bytes: about the size of the checkpoint file, for people before a download:
            Drive publishes no size (a plain fp32 state_dict is 4 bytes × parameters); Zenodo's
            listing gives v1's exact size when the download starts.
        gene_table: the gene table (its row order is the model's gene order).
        gene_lengths: the gene-length table its inputs were normalised with
            (a name :mod:`bulkformer.inputs._gene_lengths` resolves).
        esm2: the ESM2 protein table (gene-level embeddings with ``--esm2``).
    """

    name: str
    config: BulkFormerConfig
    checkpoint: str
    graph: tuple[str, str]
    data_record: ZenodoRecord
    source: SourceKind
    download_bytes: int
    drive_id: str = ""
    gene_table: str = GENE_INFO_NAME
    gene_lengths: str = "upstream"
    esm2: str = ESM2_NAME

    @property
    def family(self) -> str:
        return self.config.family

    @property
    def label(self) -> str:
        """``BulkFormer-147M`` / ``BulkFormer v1 (first release)``, for people."""
        return "BulkFormer v1 (first release)" if self.name == "v1" else f"BulkFormer-{self.name}"

    @property
    def source_url(self) -> str:
        """The page a person opens to fetch the checkpoint by hand."""
        if self.source == "drive":
            return DRIVE_VIEW_URL.format(file_id=self.drive_id)
        return f"https://zenodo.org/records/{self.data_record.record_id}"

    @property
    def data_files(self) -> tuple[str, ...]:
        """Files from ``data_record`` that loading needs besides the checkpoint."""
        return (self.gene_table, *self.graph)


_TCGA = ("G_tcga.pt", "G_tcga_weight.pt")
_GTEX = ("G_gtex.pt", "G_gtex_weight.pt")


def _v2(size: str, dim: int, layers: int, drive_id: str, parameters_m: int) -> PublishedModel:
    return PublishedModel(
        name=size,
        config=BulkFormerConfig(dim=dim, p_repeat=layers, name=size),
        checkpoint=f"bulkformer_{size}.pt",
        graph=_TCGA,
        data_record=V2_RECORD,
        source="drive",
        drive_id=drive_id,
        download_bytes=4 * parameters_m * 10**6,
    )


_ALL: tuple[PublishedModel, ...] = (
    _v2("37M", 128, 1, "1qY2qaXfKfDot9EMcOF9gr8T0jghrH7km", 37),
    _v2("50M", 256, 2, "12ZYGYrZIQJyodaVicrJpnY_8_JG-hamK", 50),
    _v2("93M", 512, 6, "1s_3XoMaHiBfxi5C8D3bgwwzNrihafaIk", 93),
    _v2("127M", 640, 8, "1-5AdgIpkm8dOm9tuwOXcqS1sUyGN6vHg", 127),
    _v2("147M", 640, 12, "1UtqN_vCh3669Fs-GU5CTE7F7UnuQCAzN", 147),
    PublishedModel(
        name="v1",
        config=BulkFormerConfig(family="v1", dim=640, p_repeat=4, gb_repeat=3, esm_dim=1280, name="v1"),
        checkpoint="Bulkformer_ckpt_epoch_29.pt",
        graph=_GTEX,
        data_record=V1_RECORD,
        source="zenodo",
        download_bytes=568 * 10**6,
    ),
)

MODELS: dict[str, PublishedModel] = {m.name: m for m in _ALL}
"""Every published model by name, v2 sizes from small to large, then v1."""

PRESETS: dict[str, BulkFormerConfig] = {m.name: m.config for m in _ALL}
"""The published shapes by name (also ``bulkformer.model.PRESETS``)."""


def preset_name(config: BulkFormerConfig) -> str:
    """The published name whose shape ``config`` has, or ``"custom"``."""
    for name, preset in PRESETS.items():
        same_shape = (preset.family, preset.dim, preset.p_repeat, preset.gb_repeat, preset.heads) == (
            config.family, config.dim, config.p_repeat, config.gb_repeat, config.heads)
        if same_shape and config.n_genes == PUBLISHED_GENE_COUNT:
            return name
    return "custom"


def get(name: str) -> PublishedModel:
    """The published model called ``name``, or a :class:`BulkFormerError` listing the names."""
    model = MODELS.get(str(name).strip())
    if model is None:
        raise BulkFormerError(f"There is no published model called {name!r}.",
                              hint=f"Use one of: {', '.join(MODELS)}.")
    return model


def for_family(family: str) -> PublishedModel:
    """A published model of ``family``: its graph, gene table and gene-length table are the
    family's (a checkpoint loaded from a path names no size)."""
    return next(m for m in MODELS.values() if m.family == family)


def names_text() -> str:
    """``'37M', '50M', …, 'v1'``: the names for help texts."""
    return ", ".join(f"'{n}'" for n in MODELS)
