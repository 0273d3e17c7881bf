"""Embeddings: run BulkFormer on the table in the background, then map and colour the samples."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from bulkformer.choices import AGGREGATION, PRECISION
from bulkformer.export import embedding_frame
from bulkformer.model._config import V2_SAMPLE_FEATURES
from bulkformer.model._run_options import RunOptions
from ui import frame, keys, plots, progress, runs, separation, session, uploads

if TYPE_CHECKING:
    from bulkformer.inputs import PreparedInput
    from bulkformer.model import BulkFormerModel

#: The precisions offered on this page (the others are for GPUs and the command line).
PAGE_PRECISIONS = ("fp32", "bf16")
NONE, CLUSTERS = "(no colour)", "Clusters found by the app"
BASELINE = "PCA of expression (baseline)"
MAX_CLUSTER_CHOICE = 30


def run_form(model: BulkFormerModel, prepared: PreparedInput, data: uploads.Dataset) -> None:
    """The run's options and its button: a press starts the main run in the background."""
    aligned = prepared.aligned
    with st.form("run_options", border=True):
        st.markdown(f"#### Run BulkFormer on {len(aligned.sample_ids):,} samples · `{data.table.name}`")
        c1, c2, c3, c4 = st.columns([3, 3, 1, 2])
        aggregate = c1.selectbox(
            "Summarise genes by", AGGREGATION.names, format_func=AGGREGATION.label, key="emb_aggregate",
            help="The model describes every gene in a sample; the fingerprint of the sample summarises "
                 "those gene descriptions. The average works well in most cases.",
        )
        gene_text = c2.text_area(
            "Only use these genes (optional)", key="emb_gene_subset", height=68,
            placeholder="e.g. ALB, APOA1, CYP3A4 — leave empty to use all genes",
            help="Gene symbols or Ensembl IDs, separated by commas, spaces or new lines. The fingerprint "
                 "is then built from these genes only (for example a pathway you care about).",
        )
        batch_choices = runs.batch_size_choices()
        batch_size = c3.selectbox(
            "Batch size", batch_choices, index=batch_choices.index(runs.batch_size_setting() or 0),
            format_func=runs.batch_size_label, key="emb_batch",
            help="How many samples the model reads at once. Automatic: one at a time on a CPU, as "
                 "many as fit on a GPU. Change it only if a run runs out of memory.",
        )
        precision = c4.selectbox("Precision", PAGE_PRECISIONS, format_func=PRECISION.label, key="emb_precision",
                                 help="Full precision (fp32) gives exact results. Half precision (bf16) saves memory and "
                                      "time on modern GPUs, with tiny differences in the numbers.")
        submitted = st.form_submit_button("Run BulkFormer", type="primary", icon=":material/play_arrow:",
                                          disabled=progress.is_running("main"))
    if submitted:
        start_run(model, prepared, aggregate=aggregate, gene_text=gene_text, batch_size=int(batch_size),
                  precision=precision)


def start_run(model: BulkFormerModel, prepared: PreparedInput, *, aggregate: str, gene_text: str, batch_size: int,
              precision: str) -> None:
    """Start the main run with the form's choices, after checking the typed genes."""
    subset = None
    ok = True
    if gene_text.strip():
        subset, unknown = uploads.resolve_gene_text(gene_text, model.gene_ids)
        if unknown:
            st.warning(f"{len(unknown)} gene name(s) are not among the model's genes and were left out: "
                       f"{', '.join(unknown[:10])}{'…' if len(unknown) > 10 else ''}.", icon=":material/warning:")
        if not subset:
            st.error("None of the genes you listed is among the model's genes. Check the spelling, "
                     "or leave the box empty to use all genes.", icon=":material/error:")
            ok = False
    if ok:
        with frame.guarded("starting the run"):
            state = runs.start_main_run(model, prepared, RunOptions(
                aggregate=aggregate, aggregate_genes=subset or None, precision=precision,
                batch_size=batch_size or None))
            if state == "have":
                st.success("These results are already computed for this table and these options.",
                           icon=":material/check_circle:")


def run_summary(outcome: runs.Held) -> None:
    """Samples, fingerprint length, summary and time of the shown run."""
    result = outcome.run.result
    embedding = result.sample_embedding
    ids = list(result.sample_ids)
    m = st.columns(4)
    m[0].metric("Samples", f"{len(ids):,}")
    m[1].metric("Fingerprint length", f"{embedding.shape[1]:,}", help="Numbers per sample embedding.")
    m[2].metric("Summary", outcome.run.options.aggregate,
                help="How the gene descriptions were summarised"
                     + (f" ({len(outcome.run.options.aggregate_genes)} chosen genes)." if outcome.run.options.aggregate_genes
                        else " (all genes)."))
    m[3].metric("Time", "from cache" if outcome.run.from_cache else progress.format_seconds(outcome.run.seconds),
                help="A run with the same table and options is stored for this session and reused instantly.")


def sample_map(model: BulkFormerModel, prepared: PreparedInput, outcome: runs.Held) -> None:
    """The map of the samples, coloured by a sample-sheet column or by clusters, beside how far
    apart the groups are against the expression baseline."""
    aligned, metadata = prepared.aligned, prepared.metadata
    embedding = outcome.run.result.sample_embedding
    ids = list(outcome.run.result.sample_ids)
    columns = [] if metadata is None else [c for c in metadata.columns if metadata[c].notna().any()]
    options = [NONE, CLUSTERS, *columns]
    default = columns[0] if columns else CLUSTERS
    c1, c2, c3 = st.columns([2, 2, 1])
    color_by = c1.selectbox("Colour samples by", options, index=options.index(default), key="emb_color_by",
                            help="A column of your sample sheet, or groups of similar samples found by the app "
                                 "(spectral clustering of each sample's nearest neighbours).")
    method = c2.radio("Map", ["UMAP", "PCA", BASELINE], horizontal=True, key="emb_method",
                      help="UMAP keeps neighbours together and shows groups well; PCA shows the two "
                           "directions in which samples differ most (distances are more faithful). "
                           "PCA of expression (baseline): the same without the model, the two main directions "
                           "of the measured genes' log(TPM + 1), to compare with the model's maps.")
    k_choices = [0, *range(2, min(MAX_CLUSTER_CHOICE, len(ids)) + 1)]
    n_clusters = c3.selectbox("Number of clusters", k_choices, key="emb_k",
                              format_func=lambda k: "automatic" if k == 0 else f"{k} clusters",
                              help="Automatic: the app picks the number of groups the neighbour graph of the "
                                   "samples splits into most clearly. Pick a number to split into that many.",
                              disabled=color_by != CLUSTERS)

    if method == BASELINE:
        baseline = separation.expression_baseline(outcome, aligned)
        if baseline is None:
            st.stop()
        projection = baseline.projection()
    else:
        projection = outcome.run.projections["umap" if method == "UMAP" else "pca"]
    if projection.note:
        st.info(projection.note, icon=":material/info:")

    color_values: pd.Series | None = None
    apart = None  # how far apart the sample sheet's groups are, against the expression baseline
    if color_by == CLUSTERS:
        memo_key = ("clusters", outcome.key, int(n_clusters))
        cache = session.memo()
        if memo_key not in cache:
            from bulkformer.analysis._projection import cluster

            with frame.guarded("finding clusters"), st.spinner("Finding groups of similar samples…"):
                cache[memo_key] = cluster(embedding, n_clusters=int(n_clusters) or None)
        found = cache.get(memo_key)
        if found is not None:
            color_values = pd.Series([f"cluster {int(x) + 1}" for x in found.labels], index=ids)
            session.memo()["cluster_labels"] = (outcome.key, color_values)
            st.caption(f"**Clusters:** {found.method}; {found.criterion}. Clusters are numbered from the largest. "
                       "They are found in the full fingerprints, not on the map, so a cluster may look split on it.")
    elif color_by != NONE and metadata is not None:
        color_values = metadata[color_by]
        apart = separation.group_separation(outcome, aligned, metadata, color_by)

    if method == BASELINE:
        axis = baseline.axis_titles()
        title, file_stem = f"PCA of expression (baseline, no model) · {len(ids):,} samples", "expression_pca_map"
    else:
        axis = ("UMAP 1", "UMAP 2") if projection.method == "umap" else ("PC 1", "PC 2")
        title, file_stem = f"{projection.method.upper()} map of {len(ids):,} samples", f"{projection.method}_map"
    map_area, box_area = st.columns([3, 1]) if separation.measured(apart) else (st.container(), None)
    fig = plots.sample_scatter(projection.coords, ids, metadata=metadata,
                               color_by=None if color_by == NONE else color_by, color_values=color_values,
                               axis_titles=axis, title=title,
                               palette=plots.CLUSTER_PALETTE if color_by == CLUSTERS else plots.PALETTE)
    with map_area:
        plots.show_figure(fig, f"{frame.file_prefix(model)}{file_stem}", key="emb_map")
    if box_area is not None:
        with box_area:
            separation.show_box(color_by, apart)
    elif apart is not None:
        st.caption(f"**How clearly do the {color_by} groups separate?** Not measured: {apart.reason}")
    st.caption("Each dot is one sample; hover for its name and sample-sheet details. Use the camera "
               "button at the top right of the plot to save it as a picture."
               + (" The baseline map is made from the measured genes' log(TPM + 1) alone (each gene as it is, "
                  "not scaled), without the model: where groups are as far apart here as on the model's maps, "
                  "the model's maps show nothing the expression did not show already." if method == BASELINE else ""))


def embedding_numbers(model: BulkFormerModel, outcome: runs.Held) -> None:
    """A preview of the embeddings table, with what its last three columns mean."""
    result = outcome.run.result
    ids = list(result.sample_ids)
    with st.expander("The embedding numbers", icon=":material/table:"):
        table = embedding_frame(result, column_names=model.config.feature_names())
        names = list(table.columns)
        shown = [*range(min(12, len(names))), *(i for i in range(len(names)) if names[i] in V2_SAMPLE_FEATURES)]
        preview = table.iloc[:, shown]
        st.dataframe(preview, width="stretch", height=240)
        sample_features = tuple(names[-len(V2_SAMPLE_FEATURES):]) == V2_SAMPLE_FEATURES
        if len(shown) < len(names):
            st.caption(f"The first 12 of {len(names):,} columns{', and the last three' if sample_features else ''}; "
                       "the downloads have them all.")
        if sample_features:
            constant = [n for n in V2_SAMPLE_FEATURES if len(ids) > 1 and np.ptp(preview[n].to_numpy()) == 0]
            st.caption(
                "The last three columns are not learned: this model adds three facts about each sample to every "
                "gene's description. **missing_share**: the share of the model's genes the sample did not measure; "
                "**mean_expression**: the mean of its measured values (log(TPM + 1)); **nonzero_share**: the share "
                "of the model's genes whose value is not 0 (unmeasured genes count as not 0, as upstream has it)."
                + (f" Here {' and '.join(constant)} {'is' if len(constant) == 1 else 'are'} the same for every "
                   "sample (all samples of one table lack the same genes), so it tells the samples apart in no way."
                   if constant else "")
                + (" With “All three combined”, each is three times its value (max + mean + median of a constant)."
                   if outcome.run.options.aggregate == "all" else ""))


def main() -> None:
    model, prepared = frame.open_page(
        ":material/scatter_plot: Embeddings",
        "BulkFormer reads each sample's whole expression profile and turns it into an *embedding*: a "
        "list of numbers that works like a fingerprint. Samples with similar biology get similar "
        "fingerprints, so on the map below they sit close together.",
    )
    data = uploads.dataset()
    assert data is not None
    progress.collect("main")
    run_form(model, prepared, data)
    progress.job_panel("main", finishing_text="drawing the map of your samples…" if session.maps_ready() else
                       "drawing the map of your samples; the first map since the server started prepares the "
                       "map code first (up to a minute)…")
    outcome = runs.current_or_stop("main", model, hint=(
        "Choose the options above and press **Run BulkFormer**. The run goes on in the background; "
        "after its first samples it tells you how long the rest will take."))
    run_summary(outcome)
    sample_map(model, prepared, outcome)
    embedding_numbers(model, outcome)
    st.divider()
    c1, c2 = st.columns(2)
    c1.page_link(keys.PAGES["imputation"], label="Check imputation", icon=":material/auto_fix_high:")
    c2.page_link(keys.PAGES["downloads"], label="Download results", icon=":material/download:")


main()
