"""Downloads: every result as a file (CSV, AnnData .h5ad) and the run report."""

from __future__ import annotations

import tempfile
from pathlib import Path

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

model, prepared = frame.open_page(":material/download: Downloads")
progress.collect("main")
progress.collect("genes")
outcome = runs.current("main", model)
if outcome is None:
    st.info("Nothing to download yet: run BulkFormer on the Embeddings page first.", icon=":material/info:")
    st.page_link(keys.PAGES["embeddings"], label="Go to Embeddings", icon=":material/scatter_plot:")
    progress.job_panel("main")
    st.stop()

prefix = frame.file_prefix(model)
if prefix:
    st.caption("Every file made with the demo model has a name starting with **DEMO_** and says so inside.")
result = outcome.run.result
aligned = prepared.aligned
metadata = prepared.metadata
observed = np.asarray(aligned.observed, dtype=bool)
ids = list(result.sample_ids)
symbols = uploads.symbols_for(list(result.gene_ids))
umap = outcome.run.projections["umap"]
pca = outcome.run.projections["pca"]
data = uploads.dataset()
assert data is not None
CSV = "text/csv"


def name(what: str) -> str:
    return frame.output_name(model, what)


folder = session.session_folder()

holdout = runs.current("holdout", model)
extra = [("Input file", data.table.name), ("Reading choices", ", ".join(
    f"{k} = {getattr(v, 'value', v)}" for k, v in uploads.guess_items(prepared).items()))]
if data.sheet is not None:
    extra.append(("Sample sheet", data.sheet.name))
if outcome.run.options.aggregate_genes:
    extra.append(("Genes used for the sample embedding", f"{len(outcome.run.options.aggregate_genes)} chosen genes"))
extra.append(("Map", f"{umap.method.upper()}" + (f" ({umap.note})" if umap.note else "")))
extra.extend(separation.report_rows(outcome, metadata))  # the columns measured on the Embeddings page
facts = run_facts(model, prepared, outcome.run.options, extra=extra,
                  holdout=holdout.run.verdict.lines() if holdout is not None else ())
notes = facts.notes


def offer(label: str, data, file_name: str, *, key: str, info, help: str | None = None) -> None:
    """A file and its run report, with this run's notes and facts."""
    plots.download_with_report(label, data, file_name, key=key, info=info, notes=notes, facts=facts, help=help)


def table_file(frame, fmt: str = "csv") -> bytes:
    """A table's file: header and data rows only (notes in the report beside it; Parquet keeps
    them in its metadata too)."""
    return to_bytes(frame, fmt, notes=notes)


def result_table(kind: str, fmt: str = ".csv", **options):
    """The table (and its description) the CLI would write for this kind of result."""
    return result_file(result, fmt, kind=kind, measured_values=aligned.values, observed=observed,
                       symbols=symbols, embedding_columns=model.config.feature_names(), **options)



def card(title: str, text: str):
    box = st.container(border=True)
    box.markdown(f"**{title}**")
    box.caption(text)
    return box


c1, c2 = st.columns(2)
with c1:
    with card("Sample embeddings", f"{len(ids):,} rows (one per sample) × {result.sample_embedding.shape[1]:,} "
                                   "numbers: the fingerprints for your own analyses. Rows are samples "
                                   "(first column sample_id), columns emb_0 …"):
        embeddings = result_table("transcriptome_level")
        offer("Sample embeddings (CSV)", table_file(embeddings.data), name("sample_embeddings.csv"),
              key="dl_embeddings", info=embeddings.info)
    with card("Map coordinates", "x and y of every sample on the map, with your sample sheet columns."):
        maps_info = FileInfo(("Rows: samples; columns sample_id, x, y, method, then your sample sheet's columns.",))
        if umap.method == "umap":
            offer("UMAP coordinates (CSV)", table_file(projection_frame(umap, ids, metadata)),
                  name("umap_coordinates.csv"), key="dl_umap", info=maps_info)
        else:
            st.caption(umap.note or "Only a PCA map was made.")
        offer("PCA coordinates (CSV)", table_file(projection_frame(pca, ids, metadata)),
              name("pca_coordinates.csv"), key="dl_pca", info=maps_info)
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
                expression = result_table("expression_imputation", f".{fmt}", mode=mode)
                return to_bytes(expression.data, fmt, notes=notes, info=expression.info)

            offer(f"{IMPUTE_MODE.label(mode).split(':')[0]} expression ({fmt.upper() if fmt == 'csv' else 'Parquet'})",
                  expression_bytes, name(f"expression_{mode}.{fmt}"), key="dl_imputed",
                  info=lambda: result_table("expression_imputation", f".{fmt}", mode=mode).info,
                  help=EXPRESSION_LAYOUT + " Read it with pandas.read_csv(path, index_col=0).")
with c2:
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

        offer("AnnData (.h5ad)", h5ad_bytes, name("bulkformer.h5ad"), key="dl_h5ad", info=FileInfo((
            ("X: filled expression, log1p TPM (samples × genes); layers 'measured' (NaN where not measured) "
             "and 'bulkformer' (the model's value for every gene); var: gene_id, symbol (unique), measured."),
            ("obsm['X_bulkformer']: sample embeddings (use_rep='X_bulkformer'); obsm['X_umap'] / ['X_pca']: "
             "the maps; obs: your sample sheet."))))

    with card("Run report", "What was run, with which model and settings, the QC summary, software "
                            "versions and a methods paragraph for your paper (Markdown)."):
        report = run_report(facts)
        plots.download("Run report (Markdown)", report.encode("utf-8"), name("run_report.md"),
                       mime="text/markdown", key="dl_report")
        with st.expander("Preview the report"):
            st.markdown(report)

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
            offer("Gene embeddings (CSV)", lambda: table_file(gene_embedding_frame(gres)),
                  name("gene_embeddings.csv"), key="dl_gene_embeddings", info=FileInfo((
                      "Rows: one per sample and gene; columns sample_id, gene_id, then emb_0 …",
                      "Values: per-gene embeddings (model features, not expression).")))
