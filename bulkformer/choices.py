"""Every choice a user makes, one list each: its names, the words people see, and what each means.

The CLI's option help, the app's radio and select labels, the run report's words and the checks
of :class:`~bulkformer.model.RunOptions` all read these lists, so a new aggregation or output
format is one line here (and the code that computes it). The ``Literal`` types beside each list
are what type checkers and typer see; a test keeps each equal to its list.

Standard library only: the app's pages import this before torch is loaded.

Examples
--------
>>> from bulkformer.choices import AGGREGATION
>>> AGGREGATION.names
('mean', 'max', 'median', 'all')
>>> AGGREGATION.label("max")
'Strongest signal per dimension (max)'
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from bulkformer.errors import BulkFormerError, check_choice


@dataclass(frozen=True)
class Option:
    """One possible answer: its ``name`` (what code and the CLI use), its ``label`` (what the
    app shows), and ``help`` (what it means, in a sentence fragment people can read)."""

    name: str
    label: str
    help: str


@dataclass(frozen=True)
class Choice:
    """A list of :class:`Option` s; ``what`` names the choice in messages ("aggregation")."""

    what: str
    options: tuple[Option, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def option(self, name: str) -> Option:
        self.check(name)
        return next(o for o in self.options if o.name == name)

    def label(self, name: str) -> str:
        """The words the app shows for ``name`` (a ``format_func`` for Streamlit widgets)."""
        return self.option(name).label

    def help(self, name: str) -> str:
        """What ``name`` means."""
        return self.option(name).help

    def check(self, name: object, *, error: type[BulkFormerError] = BulkFormerError) -> None:
        """Refuse a name not in the list, naming the ones that are."""
        check_choice(name, self.names, what=self.what, error=error)

    def cli_help(self) -> str:
        """``name: meaning; …`` for a command-line option's help."""
        return "; ".join(f"{o.name}: {o.help}" for o in self.options) + "."

    def page_help(self) -> str:
        """``**label**: meaning`` paragraphs for a widget's help tooltip."""
        return "\n\n".join(f"**{o.label}**: {o.help}." for o in self.options)


Aggregate = Literal["mean", "max", "median", "all"]
AGGREGATION = Choice("aggregation", (
    Option("mean", "Average over genes (recommended)", "the mean over genes of each embedding dimension"),
    Option("max", "Strongest signal per dimension (max)", "the element-wise maximum over genes"),
    Option("median", "Median over genes", "the median over genes of each embedding dimension"),
    Option("all", "All three combined (max + mean + median)",
           "the sum of the element-wise maximum, mean and median, as upstream defines it"),
))
"""How per-gene embeddings are pooled into one vector per sample."""

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISION = Choice("precision", (
    Option("auto", "Fastest that keeps the numbers (auto)",
           "fp16 on a GPU; on a CPU bf16 where it computes it natively (embeddings within cosine "
           "0.999 of fp32), else fp32"),
    Option("fp32", "Full (fp32)", "exact reference arithmetic"),
    Option("bf16", "Half (bf16)", "bfloat16 linear layers, the attention's exponent kept in fp32"),
    Option("fp16", "Half (fp16)", "float16 linear layers (GPUs), the attention's exponent kept in fp32"),
))
"""The arithmetic of the model's linear layers."""

Compile = Literal["auto", "on", "off"]
COMPILE = Choice("compile setting", (
    Option("auto", "When it pays off (auto)", "compile when the run is long enough to repay the one-off wait"),
    Option("on", "Always", "compile the layers with torch.compile (a one-off wait of ~30 s on a CPU, ~12 s on a GPU)"),
    Option("off", "Never", "run the layers as they are"),
))
"""Whether the Performer layers are compiled with ``torch.compile`` (speed only, not numbers)."""

Orientation = Literal["auto", "genes_in_rows", "genes_in_columns"]
ORIENTATION = Choice("orientation", (
    Option("auto", "Decide for me", "detected from which axis holds gene names"),
    Option("genes_in_rows", "Genes are rows, samples are columns", "one row per gene, one column per sample"),
    Option("genes_in_columns", "Samples are rows, genes are columns", "one row per sample, one column per gene"),
))
"""Which way round an expression table is."""

IdType = Literal["auto", "ensembl", "symbol", "entrez"]
ID_TYPE = Choice("gene ID type", (
    Option("auto", "Decide for me", "detected from the names"),
    Option("ensembl", "Ensembl gene IDs (ENSG…)", "ENSG… codes, with or without a version"),
    Option("symbol", "Gene symbols (e.g. TP53, GAPDH)", "HGNC symbols, previous symbols and aliases"),
    Option("entrez", "NCBI (Entrez) gene IDs (e.g. 7157)", "numeric NCBI gene IDs"),
))
"""How an expression table names its genes."""

ValueType = Literal["auto", "counts", "tpm", "fpkm", "log1p_tpm", "log2_tpm"]
VALUE_TYPE = Choice("value type", (
    Option("auto", "Decide for me", "detected from the values"),
    Option("counts", "Raw read counts", "reads per gene; divided by gene length and scaled to TPM"),
    Option("tpm", "TPM (transcripts per million)", "already normalised for gene length and depth"),
    Option("fpkm", "FPKM / RPKM", "rescaled so each sample sums to a million, which gives TPM"),
    Option("log1p_tpm", "log(TPM + 1), natural log", "the scale the model reads, used as is"),
    Option("log2_tpm", "log2(TPM + 1)", "converted to the natural log"),
))
"""What the numbers of an expression table are."""

ImputeMode = Literal["filled", "model", "missing"]
IMPUTE_MODE = Choice("expression output", (
    Option("filled", "Filled: your measured values, model only for the unmeasured genes",
           "measured values kept; only the genes your table did not measure are the model's predictions"),
    Option("model", "Model reconstruction: the model's value for every gene",
           "the model's reconstruction of every gene, measured ones included (measured values replaced)"),
    Option("missing", "Missing genes only: the model's values for the unmeasured genes",
           "only the genes your table did not measure, as the model predicts them"),
))
"""Which expression values an output holds (log1p TPM)."""

OutputFormat = Literal[".csv", ".tsv", ".parquet", ".h5ad", ".npy", ".pt"]
OUTPUT_FORMAT = Choice("output format", (
    Option(".csv", "CSV (opens in Excel)", "comma-separated text, opens in Excel, R and pandas"),
    Option(".tsv", "TSV", "tab-separated text"),
    Option(".parquet", "Parquet (compact; R/Python)", "compact typed columns for R (arrow) and Python"),
    Option(".h5ad", "AnnData (.h5ad, for scanpy)", "the whole run in one AnnData file for scanpy"),
    Option(".npy", "NumPy array (.npy)", "the bare array, no labels"),
    Option(".pt", "PyTorch tensor (.pt)", "the array as a torch tensor, as upstream's scripts save it"),
))
"""The file types results are written as (by extension)."""

Tone = Literal["good", "neutral", "bad"]
"""What a verdict means for the model, so that its colour and icon follow its meaning on every page:
``good`` (the model does better than the baseline), ``neutral`` (no better, or cannot judge),
``bad`` (worse than the baseline, or no better than chance)."""
