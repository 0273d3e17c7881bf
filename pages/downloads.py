"""Downloads: every result as a file (CSV, AnnData .h5ad) and the run report."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import streamlit as st

from bulkformer.choices import IMPUTE_MODE

from bulkformer.export import (
    embedding_frame,
    expression_frame,
    gene_embedding_frame,
    projection_frame,
    run_report,
    to_anndata,
    to_bytes,
    too_wide_for_excel,
    write_output,
)
from bulkformer.model._run_options import RunOptions
from bulkformer.workflows import run_facts
from ui import frame, progress, keys, plots, runs, separation, session, uploads

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
result = outcome.result
aligned = prepared.aligned
metadata = prepared.metadata
observed = np.asarray(aligned.observed, dtype=bool)
ids = list(result.sample_ids)
symbols = uploads.symbols_for(list(result.gene_ids))
umap = outcome.projections["umap"]
pca = outcome.projections["pca"]
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
if outcome.options.aggregate_genes:
    extra.append(("Genes used for the sample embedding", f"{len(outcome.options.aggregate_genes)} chosen genes"))
extra.append(("Map", f"{umap.method.upper()}" + (f" ({umap.note})" if umap.note else "")))
extra.extend(separation.report_rows(outcome, metadata))  # the columns measured on the Embeddings page
facts = run_facts(model, prepared, outcome.options, extra=extra,
                  holdout=holdout.verdict.lines() if holdout is not None else ())
notes = facts.notes


def csv(frame) -> bytes:
    """A CSV download that opens with this run's notes (demo model, low coverage) as # lines."""
    return to_bytes(frame, notes=notes)



def card(title: str, text: str):
    box = st.container(border=True)
    box.markdown(f"**{title}**")
    box.caption(text)
    return box


c1, c2 = st.columns(2)
with c1:
    with card("Sample embeddings", f"{len(ids):,} rows (one per sample) × {result.sample_embedding.shape[1]:,} "
                                   "numbers: the fingerprints for your own analyses."):
        plots.download("Sample embeddings (CSV)",
                       csv(embedding_frame(result, column_names=model.config.feature_names())),
                       name("sample_embeddings.csv"), mime=CSV, key="dl_embeddings")
    with card("Map coordinates", "x and y of every sample on the map, with your sample sheet columns."):
        if umap.method == "umap":
            plots.download("UMAP coordinates (CSV)", csv(projection_frame(umap, ids, metadata)),
                           name("umap_coordinates.csv"), mime=CSV, key="dl_umap")
        else:
            st.caption(umap.note or "Only a PCA map was made.")
        plots.download("PCA coordinates (CSV)", csv(projection_frame(pca, ids, metadata)),
                       name("pca_coordinates.csv"), mime=CSV, key="dl_pca")
    with card("Expression: measured and imputed", "log(TPM + 1) for every sample "
                                                 f"({int((~observed).sum()):,} of the model's genes were not "
                                                 "measured in your table)."):
        mode = st.radio("Values", IMPUTE_MODE.names, key="dl_imputed_which", format_func=IMPUTE_MODE.label,
                        help=IMPUTE_MODE.page_help())
        fmt = st.radio("File type", ["csv", "parquet"], key="dl_imputed_format", horizontal=True,
                       format_func={"csv": "CSV (opens in Excel)", "parquet": "Parquet (compact; R/Python)"}.get,
                       help="Parquet files are several times smaller and faster to read in R (arrow) or "
                            "Python (pandas).")
        n_genes = int((~observed).sum()) if mode == "missing" else len(result.gene_ids)
        if mode == "model":
            st.caption("Measured genes hold the model's reconstruction here, not your values.")
        if mode == "missing" and observed.all():
            st.caption("Your table measured every model gene: nothing is missing.")
        else:
            layout = ("Rows are genes (Ensembl ID, symbol), columns samples: too many genes for Excel's "
                      "columns otherwise." if too_wide_for_excel(n_genes) else
                      "Rows are samples; columns are genes, named SYMBOL (ENSG…).")
            plots.download(
                f"{IMPUTE_MODE.label(mode).split(':')[0]} expression ({fmt.upper() if fmt == 'csv' else 'Parquet'})",
                lambda: to_bytes(expression_frame(result, measured_values=aligned.values, observed=observed,
                                                  mode=mode, symbols=symbols), fmt, notes=notes),
                name(f"expression_{mode}.{fmt}"),
                mime=CSV if fmt == "csv" else "application/vnd.apache.parquet",
                key="dl_imputed", help=layout + (" The first lines, starting with #, are notes about this run: "
                                                 "read with pandas.read_csv(path, comment='#')." if notes else ""),
            )
with c2:
    with card("Everything in one AnnData file (.h5ad)",
              "For scanpy / Python: X = filled expression (measured values kept), layers 'measured' and "
              "'bulkformer' (the model's value for every gene), embeddings, both maps and your sample sheet."):

        def h5ad_bytes() -> bytes:
            adata = to_anndata(result, measured_values=aligned.values, observed=observed, metadata=metadata,
                               projection=umap, symbols=symbols, facts=facts,
                               embedding_columns=model.config.feature_names())
            adata.obsm.setdefault("X_pca", pca.coords)  # the UMAP map is X_umap (or X_pca with few samples)
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                path = write_output(adata, Path(tmp) / "run.h5ad")
                return path.read_bytes()

        plots.download("AnnData (.h5ad)", h5ad_bytes, name("bulkformer.h5ad"),
                       mime="application/x-hdf5", key="dl_h5ad")

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
                        precision=outcome.options.precision, batch_size=runs.batch_size_setting()))
        progress.job_panel("genes")
        genes_outcome = runs.current("genes", model)
        if genes_outcome is not None:
            names = ", ".join(uploads.gene_labels(list(genes_outcome.genes))[:8])
            st.caption(f"Ready for {len(genes_outcome.genes)} gene(s): {names}"
                       f"{'…' if len(genes_outcome.genes) > 8 else ''}")
            gres = genes_outcome.result
            plots.download("Gene embeddings (CSV)", lambda: csv(gene_embedding_frame(gres)),
                           name("gene_embeddings.csv"), mime=CSV, key="dl_gene_embeddings")
