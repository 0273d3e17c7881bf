"""The shipped human gene annotation, and turning a table's gene labels into Ensembl IDs.

BulkFormer knows genes by Ensembl ID without version. Tables name them in many ways: Ensembl
IDs with or without a version (``ENSG00000141510.17``), GENCODE's ``_PAR_Y`` copies, HGNC
symbols in any case, older symbols and aliases, or a mix. This package resolves all of those,
decides which axis of a table holds the genes, and refuses, with a reason, tables from other
species or with no gene IDs at all. Rows that read-counting tools add to a table as counters
(HTSeq-count's ``__no_feature``, STAR's ``N_unmapped`` …) are not genes and are left out.

Modules: ``_annotation`` (:class:`GeneAnnotation`, :func:`load_annotation`), ``_orient``
(:func:`orient`), ``_counters`` (:func:`is_counter_label`: HTSeq-count's and STAR's counter rows,
which are not genes), ``_mapping`` (:func:`map_genes`), ``_duplicates`` (:func:`combine_duplicates`),
``_gene_list`` (:func:`parse_gene_list`).
"""

from __future__ import annotations

from bulkformer.genes._annotation import (
    ANNOTATION_COLUMNS,
    ANNOTATION_FILE,
    ENTREZ_IDS_FILE,
    FORMER_IDS_FILE,
    GeneAnnotation,
    load_annotation,
    protein_coding_ids,
)
from bulkformer.genes._counters import (
    COUNTER_LABEL,
    counter_mask,
    counting_tools,
    is_counter_label,
    split_counters,
)
from bulkformer.genes._duplicates import CombinedGenes, combine_duplicates
from bulkformer.genes._gene_list import GeneList, parse_gene_list
from bulkformer.genes._mapping import ID_TYPES, GeneMapping, map_genes
from bulkformer.genes._orient import ORIENTATIONS, OrientedTable, orient

__all__ = [
    "ANNOTATION_COLUMNS",
    "ANNOTATION_FILE",
    "COUNTER_LABEL",
    "ENTREZ_IDS_FILE",
    "FORMER_IDS_FILE",
    "ID_TYPES",
    "ORIENTATIONS",
    "CombinedGenes",
    "GeneAnnotation",
    "GeneList",
    "GeneMapping",
    "OrientedTable",
    "combine_duplicates",
    "counter_mask",
    "counting_tools",
    "is_counter_label",
    "load_annotation",
    "map_genes",
    "orient",
    "parse_gene_list",
    "protein_coding_ids",
    "split_counters",
]
