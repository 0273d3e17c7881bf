"""Downloads: every result as a file (CSV, AnnData .h5ad) and the run report."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from bulkformer.choices import IMPUTE_MODE, OUTPUT_FORMAT
from bulkformer.export import (
    EXPRESSION_LAYOUT,
    FileInfo,
    gene_embedding_frame,
    projection_frame,
    result_file,
    run_report,
    to_anndata,
    to_bytes,
    write_output,
)
from bulkformer.model._run_options import RunOptions
from bulkformer.workflows import run_facts
from ui import frame, keys, plots, progress, runs, separation, session, uploads

if TYPE_CHECKING:
    from bulkformer.inputs import PreparedInput
    from bulkformer.model import BulkFormerModel




@dataclass(frozen=True, eq=False)
class Shown:
    """The run the page offers files of, with the notes and facts every file carries."""

    model: BulkFormerModel
    prepared: PreparedInput
    outcome: runs.Held
    facts: Any
    symbols: dict[str, str]

    @property
    def result(self) -> Any:
        return self.outcome.run.result

    @property
    def observed(self) -> np.ndarray:
        return np.asarray(self.prepared.aligned.observed, dtype=bool)

    @property
    def notes(self) -> tuple[str, ...]:
        return self.facts.notes

    def name(self, what: str) -> str:
        return frame.output_name(self.model, what)

    def offer(self, label: str, data, file_name: str, *, key: str, info, help: str | None = None) -> None:
        """A file and its run report, with this run's notes and facts."""
        plots.download_with_report(label, data, file_name, key=key, info=info, notes=self.notes, facts=self.facts,
                                   help=help)

    def table_file(self, table, fmt: str = "csv") -> bytes:
        """A table's file: header and data rows only (notes in the report beside it; Parquet keeps
        them in its metadata too)."""
        return to_bytes(table, fmt, notes=self.notes)

    def result_table(self, kind: str, fmt: str = ".csv", **options):
        """The table (and its description) the CLI would write for this kind of result."""
        return result_file(self.result, fmt, kind=kind, measured_values=self.prepared.aligned.values,
                           observed=self.observed, symbols=self.symbols,
                           embedding_columns=self.model.config.feature_names(), **options)


def card(title: str, text: str):
    box = st.container(border=True)
    box.markdown(f"**{title}**")
    box.caption(text)
    return box


def run_facts_of(model: BulkFormerModel, prepared: PreparedInput, outcome: runs.Held) -> Any:
    """The facts of this run for every file's report: input, reading choices, maps, separations
    measured on the Embeddings page and the hold-out verdict."""
    data = uploads.dataset()
    assert data is not None
    umap = outcome.run.projections["umap"]
    holdout = runs.current("holdout", model)
    extra = [("Input file", data.table.name), ("Reading choices", ", ".join(
        f"{k} = {getattr(v, 'value', v)}" for k, v in uploads.guess_items(prepared).items()))]
    if data.sheet is not None:
        extra.append(("Sample sheet", data.sheet.name))
    if outcome.run.options.aggregate_genes:
        extra.append(("Genes used for the sample embedding", f"{len(outcome.run.options.aggregate_genes)} chosen genes"))
    extra.append(("Map", f"{umap.method.upper()}" + (f" ({umap.note})" if umap.note else "")))
    extra.extend(separation.report_rows(outcome, prepared.metadata))  # the columns measured on the Embeddings page
    return run_facts(model, prepared, outcome.run.options, extra=extra,
                     holdout=holdout.run.verdict.lines() if holdout is not None else ())


def embeddings_card(shown: Shown) -> None:
    result = shown.result
    ids = list(result.sample_ids)
    with card("Sample embeddings", f"{len(ids):,} rows (one per sample) × {result.sample_embedding.shape[1]:,} "
                                   "numbers: the fingerprints for your own analyses. Rows are samples "
                                   "(first column sample_id), columns emb_0 …"):
        embeddings = shown.result_table("transcriptome_level")
        shown.offer("Sample embeddings (CSV)", shown.table_file(embeddings.data), shown.name("sample_embeddings.csv"),
                    key="dl_embeddings", info=embeddings.info)


def maps_card(shown: Shown) -> None:
    ids = list(shown.result.sample_ids)
    metadata = shown.prepared.metadata
    umap, pca = shown.outcome.run.projections["umap"], shown.outcome.run.projections["pca"]
    with card("Map coordinates", "x and y of every sample on the map, with your sample sheet columns."):
        maps_info = FileInfo(("Rows: samples; columns sample_id, x, y, method, then your sample sheet's columns.",))
        if umap.method == "umap":
            shown.offer("UMAP coordinates (CSV)", shown.table_file(projection_frame(umap, ids, metadata)),
                        shown.name("umap_coordinates.csv"), key="dl_umap", info=maps_info)
        else:
            st.caption(umap.note or "Only a PCA map was made.")
        shown.offer("PCA coordinates (CSV)", shown.table_file(projection_frame(pca, ids, metadata)),
                    shown.name("pca_coordinates.csv"), key="dl_pca", info=maps_info)


def expression_card(shown: Shown) -> None:
    observed = shown.observed
    with card("Expression: measured and imputed", "log(TPM + 1) for every sample, not counts "
                                                 f"({int((~observed).sum()):,} of the model's genes were not "
                                                 "measured in your table). Every expression file runs genes as "
                                                 "rows (first column gene, e.g. TP53_ENSG00000141510), one "
                                                 "column per sample: the model's ~20,000 genes do not fit in "
                                                 "a spreadsheet's 16,384 columns."):
        mode = st.radio("Values", IMPUTE_MODE.names, key="dl_imputed_which", format_func=IMPUTE_MODE.label,
                        help=IMPUTE_MODE.page_help())
        fmt = st.radio("File type", ["csv", "parquet"], key="dl_imputed_format", horizontal=True,
                       format_func=lambda f: OUTPUT_FORMAT.label(f".{f}"),
                       help="Parquet files are several times smaller and faster to read in R (arrow) or "
                            "Python (pandas).")
        if mode == "model":
            st.caption("Measured genes hold the model's reconstruction here, not your values.")
        if mode == "missing" and observed.all():
            st.caption("Your table measured every model gene: nothing is missing.")
        else:
            def expression_bytes() -> bytes:
                expression = shown.result_table("expression_imputation", f".{fmt}", mode=mode)
                return to_bytes(expression.data, fmt, notes=shown.notes, info=expression.info)

            shown.offer(f"{IMPUTE_MODE.label(mode).split(':')[0]} expression ({fmt.upper() if fmt == 'csv' else 'Parquet'})",
                        expression_bytes, shown.name(f"expression_{mode}.{fmt}"), key="dl_imputed",
                        info=lambda: shown.result_table("expression_imputation", f".{fmt}", mode=mode).info,
                        help=EXPRESSION_LAYOUT + " Read it with pandas.read_csv(path, index_col=0).")


def anndata_card(shown: Shown) -> None:
    result, aligned, model, facts, notes = shown.result, shown.prepared.aligned, shown.model, shown.facts, shown.notes
    observed, metadata, symbols = shown.observed, shown.prepared.metadata, shown.symbols
    umap, pca = shown.outcome.run.projections["umap"], shown.outcome.run.projections["pca"]
    folder = session.session_folder()
    with card("Everything in one AnnData file (.h5ad)",
              "For scanpy / Python: X = filled expression (log1p TPM, measured values kept), layers "
              "'measured' and 'bulkformer' (the model's value for every gene), the embeddings in "
              "obsm['X_bulkformer'] (sc.pp.neighbors(adata, use_rep='X_bulkformer')), both maps and "
              "your sample sheet in obs."):

        def h5ad_bytes() -> bytes:
            adata = to_anndata(result, measured_values=aligned.values, observed=observed, metadata=metadata,
                               projection=umap, symbols=symbols, facts=facts,
                               embedding_columns=model.config.feature_names())
            adata.obsm.setdefault("X_pca", pca.coords)  # the UMAP map is X_umap (or X_pca with few samples)
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                path = write_output(adata, Path(tmp) / "run.h5ad", notes=notes, sidecar=False)
                return path.read_bytes()

        shown.offer("AnnData (.h5ad)", h5ad_bytes, shown.name("bulkformer.h5ad"), key="dl_h5ad", info=FileInfo((
                  ("X: filled expression, log1p TPM (samples × genes); layers 'measured' (NaN where not measured) "
                   "and 'bulkformer' (the model's value for every gene); var: gene_id, symbol (unique), measured."),
                  ("obsm['X_bulkformer']: sample embeddings (use_rep='X_bulkformer'); obsm['X_umap'] / ['X_pca']: "
                   "the maps; obs: your sample sheet."))))


def report_card(shown: Shown) -> None:
    with card("Run report", "What was run, with which model and settings, the QC summary, software "
                            "versions and a methods paragraph for your paper (Markdown)."):
        report = run_report(shown.facts)
        plots.download("Run report (Markdown)", report.encode("utf-8"), shown.name("run_report.md"),
                       mime="text/markdown", key="dl_report")
        with st.expander("Preview the report"):
            st.markdown(report)


def gene_embeddings_card(shown: Shown) -> None:
    model, prepared, outcome = shown.model, shown.prepared, shown.outcome
    with card("Gene-level embeddings", "The model's description of chosen genes in every sample "
                                       "(one row per sample and gene). Computed on request."):
        gene_text = st.text_area("Genes", key="dl_gene_text", height=68, placeholder="e.g. TP53, MYC, ALB",
                                 help="Gene symbols or Ensembl IDs, separated by commas, spaces or new lines "
                                      "(up to 50).")
        progress.collect("genes")
        if st.button("Compute gene embeddings", icon=":material/play_arrow:", key="dl_gene_run",
                     disabled=progress.is_running("genes")):
            found, unknown = uploads.resolve_gene_text(gene_text, model.gene_ids)
            if unknown:
                st.warning(f"Not among the model's genes: {', '.join(unknown[:10])}.", icon=":material/warning:")
            if not found:
                st.error("Enter at least one gene of the model (a symbol such as TP53, or an Ensembl ID).",
                         icon=":material/error:")
            elif len(found) > 50:
                st.error(f"{len(found)} genes: please choose at most 50 at a time.", icon=":material/error:")
            else:
                with frame.guarded("starting the gene embeddings"):
                    runs.start_gene_run(model, prepared, found, RunOptions(
                        precision=outcome.run.options.precision, batch_size=runs.batch_size_setting()))
        progress.job_panel("genes")
        genes_outcome = runs.current("genes", model)
        if genes_outcome is not None:
            names = ", ".join(uploads.gene_labels(list(genes_outcome.run.genes))[:8])
            st.caption(f"Ready for {len(genes_outcome.run.genes)} gene(s): {names}"
                       f"{'…' if len(genes_outcome.run.genes) > 8 else ''}")
            gres = genes_outcome.run.result
            shown.offer("Gene embeddings (CSV)", lambda: shown.table_file(gene_embedding_frame(gres)),
                        shown.name("gene_embeddings.csv"), key="dl_gene_embeddings", info=FileInfo((
                            "Rows: one per sample and gene; columns sample_id, gene_id, then emb_0 …",
                            "Values: per-gene embeddings (model features, not expression).")))


def main() -> None:
    model, prepared = frame.open_page(":material/download: Downloads")
    progress.collect("main")
    progress.collect("genes")
    outcome = runs.current("main", model)
    if outcome is None:
        st.info("Nothing to download yet: run BulkFormer on the Embeddings page first.", icon=":material/info:")
        st.page_link(keys.PAGES["embeddings"], label="Go to Embeddings", icon=":material/scatter_plot:")
        progress.job_panel("main")
        st.stop()
    if frame.file_prefix(model):
        st.caption("Every file made with the demo model has a name starting with **DEMO_** and says so inside.")
    shown = Shown(model, prepared, outcome, run_facts_of(model, prepared, outcome),
                  uploads.symbols_for(list(outcome.run.result.gene_ids)))
    c1, c2 = st.columns(2)
    with c1:
        embeddings_card(shown)
        maps_card(shown)
        expression_card(shown)
    with c2:
        anndata_card(shown)
        report_card(shown)
        gene_embeddings_card(shown)


main()
