"""Predict: does a sample-sheet column follow from the samples? Cross-validated models on the
main run's embeddings, on PCA of the expression and on both, run in the background."""

from __future__ import annotations


import numpy as np
import plotly.graph_objects as go
import streamlit as st

from bulkformer.analysis import predict
from bulkformer.errors import InputError
from bulkformer.export import file_notes, to_bytes
from ui import frame, keys, plots, progress, runs, verdicts
from ui.uploads import Upload

NOT_SURVIVAL = "(none: not a survival outcome)"
KINDS = {"auto": "Decide from the values", "classification": "Classes", "regression": "Numbers (regression)"}
PERMUTATIONS = (99, 199, 499)
TASK_WORDS = {"classification": "classes", "regression": "numbers", "survival": "survival"}
BOOTSTRAPS = (1000, 200, 2000)
WITHIN_COHORT = (
    "A within-cohort score **can** say that the column follows from the expression in these samples, and how "
    "well a model would predict *more samples like these*: from the same lab, protocol, batch and way of "
    "labelling. It **cannot** say how well the model carries to another study or lab: whatever this cohort's "
    "samples share with their labels (a batch processed on one day, one site per group, a protocol) is learned "
    "along with the biology and counts as skill here. Only a second cohort, scored once by models fitted on "
    "this one, says that."
)

model, prepared = frame.open_page(
    ":material/model_training: Predict",
    "Does a column of your sample sheet (tissue, disease, response, survival …) follow from the "
    "expression? Models are trained on some samples and tested on the others, again and again, "
    "and the BulkFormer embeddings are compared with the usual baseline, PCA of the expression.",
)
progress.collect("main")
progress.collect("predict")
progress.collect("predict_external")
main = runs.current("main", model)
if main is None:
    st.info("Prediction uses the sample embeddings: run BulkFormer on the Embeddings page first, "
            "then come back here.", icon=":material/info:")
    st.page_link(keys.PAGES["embeddings"], label="Go to Embeddings", icon=":material/scatter_plot:")
    progress.job_panel("main")
    st.stop()
with st.expander("Apply a saved predictor to this table", icon=":material/input:"):
    st.caption("A predictor saved on this page (.zip) or by `bulkformer predict --save-predictor` (its folder, "
               "zipped) predicts every sample of this table from the embeddings above and / or the table's "
               "expression. It must come from the same BulkFormer model; one that reads genes (PCA) needs this "
               "table to measure them.")
    saved_file = st.file_uploader("Saved predictor (.zip)", type=["zip"], key="pred_apply_file")
    if saved_file is not None:
        with frame.guarded("applying the saved predictor"):
            saved = predict.load_predictor(saved_file.getvalue())
            st.markdown(saved.words())
            aligned = prepared.aligned
            applied = saved.apply(main.run.result.sample_embedding, aligned.values, aligned.sample_ids,
                                  aligned.gene_ids, aligned.observed, model_checksum=model.checksum)
            st.dataframe(applied, width="stretch")
            plots.download("Its predictions (CSV)", to_bytes(applied.reset_index(), notes=(saved.words(),)),
                           frame.output_name(model, "predict_" + frame.file_safe(saved.column) + "_applied.csv"), mime="text/csv",
                           key="pred_dl_applied")

metadata = prepared.metadata
columns = [] if metadata is None else [c for c in metadata.columns if metadata[c].notna().any()]
if not columns:
    st.info("There is no sample sheet with labels to predict. Add one (one row per sample, a column "
            "such as tissue or disease) on the Upload & QC page.", icon=":material/info:")
    st.page_link(keys.PAGES["upload"], label="Go to Upload & QC", icon=":material/upload_file:")
    st.stop()


held = runs.current("predict", model)
if held is not None and held.run.pace is not None:
    progress.remember_pace("predict", held.table_fp, held.key, held.run.pace)


def estimate(column: str, event: str, kind: str, permutations: int) -> str:
    """What evaluating ``column`` includes, in model fits, and how long it may take at the paces this
    session measured on this table (none measured yet: no number, the run measures its own)."""
    try:
        target = predict.make_target(metadata, column, event_column=None if event == NOT_SURVIVAL else event,
                                     kind=kind)
    except InputError:
        return ""  # Evaluate says why
    work = predict.planned_work(target, n_permutations=permutations,
                                n_expression=int(np.asarray(prepared.aligned.observed).sum()),
                                n_embedding=main.run.result.sample_embedding.shape[1])
    paces = [p for p in progress.measured_paces("predict", main.table_fp) if p.kind == target.kind]
    seconds = predict.time_range(work, paces)
    if seconds is None:
        when = "The time left appears, measured on this server, once the first folds are fitted."
    else:
        which = "your last evaluation" if len(paces) == 1 else f"your last {len(paces)} evaluations"
        when = (f"At the pace measured here in {which} of {TASK_WORDS[target.kind]} on this table, it takes "
                f"{progress.duration_words(seconds)} (the range allows for the server being up to "
                f"{predict.LOAD_FACTOR:g} times faster or slower than it was then).")
    return f"This evaluation: {work.words()} {when}"


with st.container(border=True):  # not a form: the estimate follows each choice
    st.markdown(f"#### What to predict · {prepared.aligned.values.shape[0]:,} samples")
    c1, c2, c3, c4 = st.columns([3, 3, 2, 1])
    column = c1.selectbox("Column", columns, key="pred_column",
                          help="Samples with an empty cell are left out of the evaluation and get a "
                               "predicted value at the end. For survival: the follow-up time.")
    event = c2.selectbox("Event column (survival only)", [NOT_SURVIVAL, *columns], key="pred_event",
                         help="Whether the event (death, relapse …) happened: 1/0, yes/no, dead/alive. "
                              "With it, the column on the left is the time and a Cox model is fitted.")
    kind = c3.selectbox("Read the column as", list(KINDS), format_func=KINDS.get, key="pred_kind",
                        help="Numbers with more than 10 different values are predicted as numbers, "
                             "anything else as classes.")
    permutations = c4.selectbox("Shuffles", PERMUTATIONS, key="pred_permutations",
                                help="Times the labels are shuffled to see what chance scores. With 99 "
                                     "the smallest p-value is 0.01.")
    submitted = st.button("Evaluate", type="primary", icon=":material/play_arrow:", key="pred_evaluate",
                          disabled=progress.is_running("predict"))
    planned = estimate(column, event, kind, int(permutations))
    if held is not None and planned:
        st.caption(planned)

if submitted:
    with frame.guarded("starting the prediction"):
        target = predict.make_target(metadata, column, event_column=None if event == NOT_SURVIVAL else event,
                                     kind=kind)
        if runs.start_predict_run(model, prepared, main, target, n_permutations=int(permutations)) == "have":
            st.success("This evaluation is already shown below.", icon=":material/check_circle:")

progress.job_panel("predict", finishing_text="writing up the results…", unit="model fits")
outcome = runs.current_or_stop("predict", model, hint=(
    f"Choose a column and press **Evaluate**. It runs in the background. {planned}").strip())

result = outcome.run
target = result.target

# ------------------------------------------------------------------------------ the answer
st.markdown(f"### Predicting **{target.name}** ({target.kind})")
verdicts.show(result.tone, f"**Verdict:** {result.verdict}")


def metric_help(metric: str) -> str:
    """A score column's meaning and, where known, what guessing scores on this target."""
    chance = predict.chance_level(target, metric)
    return predict.METRIC_MEANINGS[metric] + ("" if chance is None else f" Guessing scores about {chance:.2g} here.")


score_help = {predict.METRIC_LABELS[m]: st.column_config.TextColumn(help=metric_help(m))
              for m in predict.metric_names(target)}
score_help[predict.P_COLUMN] = st.column_config.TextColumn(help=(
    f"Share of label shuffles that scored as high: under {predict.ALPHA:g}, better than chance."))
st.dataframe(result.table(), width="stretch", column_config=score_help)
primary = predict.METRIC_LABELS[result.primary]
st.caption(
    f"Each score is the mean ± standard deviation over the test folds: {result.plan.description}. "
    f"Settings (penalty, number of principal components) were chosen by a {result.plan.inner_folds}-fold "
    "cross-validation inside each training fold, never on the test samples; PCA and scaling were fitted "
    f"on the training samples only. p: the share of {result.n_permutations} label shuffles that scored a "
    f"{primary} at least as high (is it better than chance?). Embeddings vs PCA: "
    f"{result.comparison.method}, p = {result.comparison.p_value:.2g}. "
    f"{target.n_labelled} labelled samples; {len(target.sample_ids) - target.n_labelled} without a label "
    f"(predicted below). Took {progress.format_seconds(result.seconds)}."
)
if model.is_demo:
    st.caption("The embeddings come from the demo model (simulated data): the comparison shows how the tool "
               "works, not what BulkFormer can do.")

# ------------------------------------------------------------------------------ the plots
features = st.radio("Show plots for", predict.FEATURE_SETS, format_func=predict.FEATURE_LABELS.get,
                    horizontal=True, key="pred_features")
oof = result.out_of_fold[result.out_of_fold["features"] == features]
name = frame.file_safe(target.column)  # a file name, whatever the column
stem = f"predict_{name}_{features}"
if target.kind == "classification":
    left, right = st.columns(2)
    matrix = predict.confusion(result, features)
    fig = go.Figure(go.Heatmap(z=matrix.to_numpy(), x=list(matrix.columns), y=list(matrix.index),
                               colorscale="Blues", text=matrix.to_numpy(), texttemplate="%{text}",
                               hovertemplate="observed %{y}<br>predicted %{x}<br>%{z} samples<extra></extra>"))
    fig.update_layout(title={"text": "Confusion matrix (out-of-fold predictions)", "y": 0.97, "yanchor": "top"},
                      xaxis_title="predicted", yaxis_title="observed", yaxis_autorange="reversed", height=440,
                      margin={"t": 90})  # the title clear of the plot's toolbar
    with left:
        plots.show_figure(fig, f"{stem}_confusion", key="pred_confusion")
        st.caption(predict.majority_baseline(matrix).words())
    if len(target.classes) == 2:
        fpr, tpr, auc = predict.roc(result, features)
        fig = go.Figure([go.Scatter(x=fpr, y=tpr, mode="lines", name=f"AUROC {auc:.3f}"),
                         go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance (0.5)",
                                    line={"dash": "dash", "color": plots.MISSING_COLOR})])
        fig.update_layout(title=f"ROC curve: {target.classes[1]} vs {target.classes[0]}",
                          xaxis_title="false-positive rate", yaxis_title="true-positive rate", height=420)
        with right:
            plots.show_figure(fig, f"{stem}_roc", key="pred_roc")
    else:
        right.caption("The ROC curve is drawn for two classes; with more, read the confusion matrix: "
                      "the diagonal holds the samples predicted right.")
elif target.kind == "regression":
    low, high = float(oof[["observed", "predicted"]].min().min()), float(oof[["observed", "predicted"]].max().max())
    mean = float(oof["observed"].mean())
    fig = go.Figure([go.Scatter(x=oof["observed"], y=oof["predicted"], mode="markers", text=oof["sample_id"],
                                name="samples", hovertemplate="%{text}<br>observed %{x:.3g}<br>predicted %{y:.3g}"),
                     go.Scatter(x=[low, high], y=[low, high], mode="lines", name="perfect prediction",
                                line={"dash": "dash", "color": plots.MISSING_COLOR}),
                     go.Scatter(x=[low, high], y=[mean, mean], mode="lines", name="predicting the average (R² = 0)",
                                line={"dash": "dot", "color": plots.MISSING_COLOR})])
    fig.update_layout(title="Predicted vs observed (out-of-fold)", xaxis_title=f"observed {target.column}",
                      yaxis_title=f"predicted {target.column}", height=460)
    plots.show_figure(fig, f"{stem}_predicted_vs_observed", key="pred_scatter")
    st.caption(f"Points on the dashed diagonal are predicted exactly. The dotted line predicts every sample as "
               f"the average observed {target.column} ({mean:.3g}): it scores R² = 0; a model with R² above 0 misses "
               "the observed values by less, overall, than that line does.")
else:
    curves = predict.risk_group_curves(result, features)
    fig = go.Figure()
    for group, (times, surv) in curves.curves.items():
        fig.add_trace(go.Scatter(x=np.r_[0, times], y=np.r_[1, surv], mode="lines", line_shape="hv",
                                 name=f"{group} ({curves.counts[group]} samples)"))
    fig.update_layout(title="Kaplan–Meier curves of the out-of-fold risk groups", xaxis_title=target.column,
                      yaxis_title="surviving without the event", height=460)
    plots.show_figure(fig, f"{stem}_kaplan_meier", key="pred_km")
    st.caption(f"Each sample's risk was predicted by a model that never saw it, and split at the training "
               f"samples' median risk. {curves.logrank_words(alpha=predict.ALPHA)}")

# ------------------------------------------------------------------------------ tables and files
table = predict.predictions_table(result)
st.markdown("#### Predictions per sample")
st.caption("Labelled samples: the prediction of the model that did not see them (first repetition of the "
           "folds). Samples without a label: the prediction of the best-scoring features' model fitted "
           "on all labelled samples.")
st.dataframe(table, width="stretch", hide_index=True)
notes = (*file_notes(is_demo=model.is_demo, n_measured=int(np.asarray(prepared.aligned.observed).sum()),
                     n_model_genes=len(prepared.aligned.gene_ids)), result.verdict)
c1, c2, c3 = st.columns(3)
with c1:
    plots.download("Predictions (CSV)", to_bytes(table, notes=notes),
                   frame.output_name(model, f"predict_{name}_predictions.csv"), mime="text/csv",
                   key="pred_dl_predictions")
with c2:
    plots.download("Fold results (CSV)", to_bytes(result.folds, notes=notes),
                   frame.output_name(model, f"predict_{name}_folds.csv"), mime="text/csv", key="pred_dl_folds")
with c3:
    report = predict.report_section(result)
    plots.download("Report with the fitted models (Markdown)", report.encode("utf-8"),
                   frame.output_name(model, f"predict_{name}_report.md"), mime="text/markdown",
                   key="pred_dl_report")
with st.expander("Fitted models"):
    st.markdown(report)

# ------------------------------------------------------------------------------ across cohorts
st.markdown("#### What this score can and cannot say")
st.markdown(WITHIN_COHORT)


def fitted_predictor(features: str) -> bytes:
    """The chosen feature set's model fitted on all labelled samples, as a .zip of plain numbers."""
    aligned = prepared.aligned
    summary = result.summary(features)
    cv_scores = {s.metric: {"value": s.value, "spread": s.spread} for s in summary.scores}
    cv_scores["p_value"] = summary.p_value
    genes = tuple(g for g, keep in zip(aligned.gene_ids, aligned.observed, strict=True) if keep)
    fitted, _ = predict.fit_predictor(
        target, main.run.result.sample_embedding, predict.expression_features(aligned.values, aligned.observed),
        features=features, genes=genes, model_checksum=model.checksum, model_gene_ids=aligned.gene_ids,
        seed=result.seed, cv_scores=cv_scores,
        options={"seed": result.seed, "n_permutations": result.n_permutations, "plan": result.plan.description,
                 "n_labelled": target.n_labelled})
    return predict.predictor_zip(fitted)


c1, c2 = st.columns([2, 3], vertical_alignment="bottom")
keep = c1.selectbox("Model to keep", predict.FEATURE_SETS, index=predict.FEATURE_SETS.index(result.best),
                    format_func=predict.FEATURE_LABELS.get, key="pred_save_features",
                    help="The best-scoring feature set is chosen first.")
with c2:
    plots.download("Save this predictor (.zip)", lambda: fitted_predictor(keep),
                   frame.output_name(model, f"predict_{name}_{keep}_predictor.zip"), mime="application/zip",
                   key="pred_dl_predictor",
                   help="The model fitted on all labelled samples, with the model checksum, its genes, the options "
                        "and the cross-validated scores: JSON + NumPy arrays, no pickle (opening it runs no code).")
st.caption("Apply it later to new samples at the top of this page (with the same BulkFormer model) or with "
           "`bulkformer predict-apply PREDICTOR TABLE --output predictions.csv`.")

st.markdown("#### Score on a second cohort (external validation)")
st.caption("Upload another study's table and sample sheet (with the same column). The models are chosen and "
           "fitted on this cohort exactly as above, then scored once on the second one; its PCA is this cohort's, "
           "applied to the genes both measured. The BulkFormer embeddings need no shared genes.")
with st.form("predict_external", border=True):
    c1, c2, c3 = st.columns([3, 3, 1])
    test_table = c1.file_uploader("Expression table of the second cohort", key="pred_test_table")
    test_sheet = c2.file_uploader("Its sample sheet", key="pred_test_sheet")
    n_boot = c3.selectbox("Resamples", BOOTSTRAPS, key="pred_bootstrap",
                          help="Bootstrap resamples of the second cohort's samples for the 95 % intervals.")
    score_it = st.form_submit_button("Score on this cohort", icon=":material/play_arrow:",
                                     disabled=progress.is_running("predict_external"))
if score_it:
    if test_table is None or test_sheet is None:
        st.warning("Upload both the second cohort's table and its sample sheet.", icon=":material/warning:")
    else:
        with frame.guarded("starting the external validation"):
            runs.start_external_run(model, prepared, main, outcome, Upload.of(test_table.name, test_table.getvalue()),
                                    Upload.of(test_sheet.name, test_sheet.getvalue()), n_bootstrap=int(n_boot))
progress.job_panel("predict_external", finishing_text="scoring the second cohort…", unit="samples")
held_external = runs.current("predict_external", model)
if held_external is not None and held_external.run[1] == outcome.key:
    external = held_external.run[0]
    verdicts.show(external.tone, f"**On the second cohort:** {external.verdict}")
    st.dataframe(external.table(), width="stretch")
    st.caption(f"Scores on the second cohort's {external.target.n_labelled} labelled samples, with 95 % intervals "
               f"from {external.n_bootstrap} bootstrap resamples of them, beside the within-cohort cross-validated "
               f"score. Genes: {external.gene_note}")
    for warning in external.warnings:
        st.warning(warning, icon=":material/warning:")
    for note in external.notes:
        st.caption(note)
    with st.expander("The second cohort's predictions"):
        st.dataframe(external.predictions, width="stretch", hide_index=True)
    c1, c2 = st.columns(2)
    with c1:
        plots.download("Second cohort's predictions (CSV)", to_bytes(external.predictions, notes=(external.verdict,)),
                       frame.output_name(model, f"predict_{name}_external_predictions.csv"), mime="text/csv",
                       key="pred_dl_external")
    with c2:
        plots.download("Report on the second cohort (Markdown)", external.report_section().encode("utf-8"),
                       frame.output_name(model, f"predict_{name}_external_report.md"), mime="text/markdown",
                       key="pred_dl_external_report")
