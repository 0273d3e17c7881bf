"""Imputation: how well the model fills in values (hold-out check), one gene at a time, and the
list of genes your table did not measure with the values the model gives them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from bulkformer.analysis import _holdout as ho
from bulkformer.export import (
    EXPRESSION_LAYOUT,
    FileInfo,
    expression_frame,
    file_notes,
    to_bytes,
)
from bulkformer.model._run_options import RunOptions
from ui import frame, plots, progress, runs, session, uploads, verdicts

if TYPE_CHECKING:
    from bulkformer.inputs import PreparedInput
    from bulkformer.model import BulkFormerModel

#: Above this many points the observed-vs-imputed plot is a density map instead of dots.
MAX_SCATTER_POINTS = 20_000
#: What each hold-out verdict means for the imputed genes: "no better" already says "do not rely on them".
VERDICT_TONES = {"better": "good", "no better": "bad", "worse": "bad", "cannot judge": "neutral"}
UNDEFINED = "undefined (the values do not vary)"
METRIC_FORMAT = {"pearson": st.column_config.TextColumn("Pearson r", help=f"{UNDEFINED}: a correlation needs "
                                                        "values that vary, such as genes that are expressed"),
                 "spearman": st.column_config.TextColumn("Spearman"),
                 "mae": st.column_config.NumberColumn("mean abs. error", format="%.3f")}



def show_verdict(judged: ho.Verdict, *, is_demo: bool) -> None:
    """The verdict in words, coloured by what it says, at the top of the page."""
    with st.container(border=True, key="holdout_verdict"):
        st.markdown("#### " + verdicts.headline(VERDICT_TONES[judged.level], f"Hold-out verdict: {judged.headline}"))
        st.markdown(f"**{judged.meaning}**")
        st.caption(judged.sentence)
        for warning in judged.warnings:
            st.warning(warning, icon=":material/warning:")
        if is_demo:
            st.caption("This verdict is about the DEMO model (trained on simulated data), not BulkFormer itself.")


def holdout_cost(n_samples: int, main: runs.Held | None) -> str:
    """What the check costs, from what this server measured: the check is one more pass of the
    model over every sample (imputation only, no maps), so the main run's pace after its first
    batch (which alone may carry compiling) is the best guide; without one, the job's panel
    measures the pace once it starts."""
    words = f"The check runs the model once more over all {n_samples:,} samples, filling in every gene (no maps)."
    if main is not None and main.run.pace is not None:
        expected = progress.format_seconds(main.run.pace * n_samples)
        return (f"{words} At the pace of your main run on this server (after its first batch), that is about "
                f"{expected}, longer if the server is busy with other work.")
    if main is not None and not main.run.from_cache:
        return (f"{words} The model's pass of your main run took {progress.format_seconds(main.run.model_seconds)} "
                "on this server (its first batch included), so expect at most about as long, longer if the server "
                "is busy with other work.")
    return f"{words} The time left appears below once the first samples are done, measured on this server."


def holdout_tab(model: BulkFormerModel, prepared: PreparedInput, holdout: runs.Held | None,
                main: runs.Held | None, notes: tuple[str, ...]) -> None:
    """(a) The hold-out check: start it, then the scores of the model and the baselines."""
    st.markdown(
        "The app hides some of the values you **did** measure, asks the model to fill them in, and "
        "compares its answers with the real values. Values are log(TPM + 1)."
    )
    c1, c2 = st.columns([3, 1])
    fraction = c1.slider("Share of measured genes to hide in each sample", min_value=0.05, max_value=0.5,
                         value=0.1, step=0.05, format="%.2f", key="holdout_fraction",
                         help="0.10 hides 10% of each sample's measured genes at random (the same ones "
                              "every time, so the check is repeatable).")
    c2.write("")
    if c2.button("Run the hold-out check", type="primary", icon=":material/play_arrow:", key="holdout_run",
                 disabled=progress.is_running("holdout")):
        with frame.guarded("starting the hold-out check"):
            options = RunOptions(precision="fp32", batch_size=runs.batch_size_setting())
            runs.start_holdout_run(model, prepared, options, fraction=fraction)
    progress.job_panel("holdout", finishing_text="scoring the answers…")

    if holdout is None:
        if not progress.is_running("holdout"):
            st.info("Press **Run the hold-out check** to see how well the model fills in your values, "
                    "compared with two simple guesses from your other samples. "
                    + holdout_cost(len(prepared.aligned.sample_ids), main), icon=":material/info:")
    else:
        comparison = holdout.run.comparison
        st.caption("Shown from the cache: this check was computed earlier for this table with these settings."
                   if holdout.run.from_cache else
                   f"The check took {progress.format_seconds(holdout.run.seconds)}: the model's pass "
                   f"{progress.format_seconds(holdout.run.model_seconds)}, the simple guesses and the scoring the "
                   "rest.")
        holdout_scores(comparison, fraction=holdout.run.fraction)
        holdout_methods(model, comparison)
        holdout_scatter(model, comparison)
        holdout_per_sample(model, comparison, notes=(*notes, *holdout.run.verdict.lines()))


def holdout_scores(comparison: ho.HoldoutComparison, *, fraction: float) -> None:
    """The model's scores, each beside the best baseline's."""
    score = comparison.scores[ho.MODEL]
    st.markdown(f"**Result for {fraction:.0%} hidden** ({score.n:,} values scored across "
                f"{comparison.n_samples:,} samples; every method fills in the same values)")
    if comparison.baseline_note:
        st.info(comparison.baseline_note, icon=":material/info:")
    m = st.columns(4)
    for column, (label, key, help_text) in zip(m, (
            ("Pearson correlation", "pearson", ("How well the filled-in values follow the real ones in a "
                                                "straight line (1 = perfectly, 0 = not at all).")),
            ("Spearman correlation", "spearman", "Like Pearson, but only the ranking counts."),
            ("Mean absolute error", "mae", ("Average distance between filled-in and real values, in "
                                            "log(TPM + 1) units.")))):
        value, rival = getattr(score, key), comparison.best_baseline(key)
        delta = None if rival is None else f"{value - getattr(comparison.scores[rival], key):+.3f} vs {rival}"
        column.metric(label, "undefined" if np.isnan(value) else f"{value:.3f}", delta=delta,
                      delta_color="inverse" if key == "mae" else "normal", help=help_text)
    m[3].metric("Values checked", f"{score.n:,}",
                help="Measured values hidden and filled in by every method; the more, the steadier the scores.")



def holdout_methods(model: BulkFormerModel, comparison: ho.HoldoutComparison) -> None:
    """Every method's Pearson r overall and per expression level, as bars and as a table."""
    table = comparison.table
    overall = table[table["scope"] != "sample"].copy()
    overall["group"] = overall["group"].where(overall["scope"] != "overall", "all hidden values")
    fig = go.Figure()
    for i, method in enumerate(comparison.scores):
        rows = overall[overall["method"] == method]
        fig.add_trace(go.Bar(x=rows["group"], y=rows["pearson"], name=method, marker_color=plots.PALETTE[i],
                             customdata=rows[["mae", "n"]],
                             hovertemplate=f"{method}<br>%{{x}}<br>Pearson r %{{y:.3f}}<br>"
                                           "MAE %{customdata[0]:.3f}<br>%{customdata[1]:,} values<extra></extra>"))
    fig.update_layout(title="Pearson r of each method, overall and by expression level of the hidden value",
                      barmode="group", height=380, yaxis_title="Pearson r", xaxis_title="hidden values",
                      legend={"orientation": "h", "y": -0.25})
    plots.show_figure(fig, f"{frame.file_prefix(model)}holdout_methods", key="holdout_methods_plot")
    st.caption(ho.describe_levels(comparison))
    shown = overall.drop(columns="scope").rename(columns={"group": "hidden values"})
    for column in ("pearson", "spearman"):  # a correlation of values that do not vary is undefined, not "None"
        shown[column] = [UNDEFINED if pd.isna(v) else f"{v:.3f}" for v in shown[column]]
    st.dataframe(shown, hide_index=True, width="stretch", column_config=METRIC_FORMAT)



def holdout_scatter(model: BulkFormerModel, comparison: ho.HoldoutComparison) -> None:
    """Real against filled-in values (a density map when there are many)."""
    truth, guess = comparison.truth, comparison.guesses[ho.MODEL]
    lo = float(min(truth.min(), guess.min())) if truth.size else 0.0
    hi = float(max(truth.max(), guess.max())) if truth.size else 1.0
    if truth.size > MAX_SCATTER_POINTS:
        counts, xedges, yedges = np.histogram2d(truth, guess, bins=80)
        ticks = [10 ** k for k in range(int(np.log10(max(counts.max(), 1))) + 1)]
        fig = go.Figure(go.Heatmap(
            x=(xedges[:-1] + xedges[1:]) / 2, y=(yedges[:-1] + yedges[1:]) / 2,
            z=np.where(counts.T > 0, np.log10(np.maximum(counts.T, 1)), np.nan), customdata=counts.T,
            colorscale="Blues", zmin=-0.5, colorbar={"title": {"text": "values"}, "tickvals": np.log10(ticks),
                                                  "ticktext": [f"{t:,}" for t in ticks]},
            hovertemplate="real %{x:.2f}<br>model %{y:.2f}<br>%{customdata:,} values<extra></extra>"))
        subtitle = f"density of {truth.size:,} values (log colour scale: each step on the colour bar is 10× more values)"
    else:
        fig = go.Figure(go.Scattergl(x=truth, y=guess, mode="markers",
                                     marker={"size": 4, "opacity": 0.5, "color": plots.PALETTE[0]},
                                     hovertemplate="real %{x:.2f}<br>model %{y:.2f}<extra></extra>"))
        subtitle = f"{truth.size:,} values"
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="perfect agreement",
                             line={"color": "#6b7280", "dash": "dash"}, hoverinfo="skip"))
    fig.update_layout(title="Real vs filled-in values (the model)", height=520, showlegend=False,
                      xaxis_title="real (hidden) value, log(TPM + 1)",
                      yaxis_title="model's value, log(TPM + 1)")
    plots.show_figure(fig, f"{frame.file_prefix(model)}holdout_scatter", key="holdout_plot")
    closest = comparison.best_baseline("mae")
    beside = ("" if closest is None else
              f" (the best simple guess, {closest}: {ho.share_close(comparison, closest):.0%})")
    st.caption(f"Showing {subtitle}. Values on the dashed line were filled in exactly right; "
               f"{ho.share_close(comparison, ho.MODEL):.0%} of the model's values are within "
               f"{ho.CLOSE_TOLERANCE} of the real one{beside}; {ho.CLOSE_TOLERANCE} is a factor of about 1.6 "
               "in TPM.")


def holdout_per_sample(model: BulkFormerModel, comparison: ho.HoldoutComparison, *, notes: tuple[str, ...]) -> None:
    """The per-sample scores, and the whole table as a file."""
    table = comparison.table
    with st.expander("Per sample", icon=":material/table_rows:"):
        per_sample = table[table["scope"] == "sample"].pivot(index="group", columns="method",
                                                             values=["pearson", "mae"])
        per_sample = per_sample.reindex(index=list(comparison.scores[ho.MODEL].per_sample.index))
        per_sample.columns = [f"{method}: {'Pearson r' if metric == 'pearson' else 'MAE'}"
                              for metric, method in per_sample.columns]
        st.dataframe(per_sample.rename_axis("sample"), width="stretch", height=300,
                     column_config={c: st.column_config.NumberColumn(format="%.3f") for c in per_sample.columns})
        plots.download_with_report(
            "Download the whole table: overall, per level, per sample (CSV)", to_bytes(table, notes=notes),
            frame.output_name(model, "holdout.csv"), key="dl_holdout", notes=notes,
            info=FileInfo(("Rows: one per method (model, gene mean, kNN) and group (overall, each expression "
                           "level of the hidden values, each sample); columns: Pearson r, Spearman, mean "
                           "absolute error and the number of values, on log(TPM + 1).",)),
            help="One row per method and group; what the check found is in the run report beside it.")


def need_main_run(model: BulkFormerModel, prepared: PreparedInput, where: str) -> None:
    st.info("This needs the model's output for your samples. Run BulkFormer on the Embeddings page, "
            "or start it here with the standard options.", icon=":material/info:")
    if st.button("Run BulkFormer (standard options)", icon=":material/play_arrow:", key=f"main_run_{where}",
                 disabled=progress.is_running("main")):
        with frame.guarded("starting the run"):
            runs.start_main_run(model, prepared, RunOptions(precision="fp32", batch_size=runs.batch_size_setting()))
            st.rerun()
    progress.job_panel("main", finishing_text="drawing the map of your samples…", where=where)


def show_trust(holdout: runs.Held | None) -> None:
    """Beside the model's estimates of unmeasured genes: how far the hold-out check says to trust them."""
    if holdout is None:
        st.warning("These estimates are not checked yet: run the **Hold-out check** (first tab) to see whether "
                   "the model fills in your measured genes better than a simple guess from your other samples.",
                   icon=":material/help:")
    elif holdout.run.verdict.level == "better":
        st.caption(f"Hold-out check: {holdout.run.verdict.headline}. {holdout.run.verdict.meaning}")
    else:
        st.warning(f"Hold-out check: {holdout.run.verdict.headline}. {holdout.run.verdict.meaning}", icon=":material/warning:")


#: How a picker names a gene the table measured that is not part of the model.
NOT_IN_MODEL = "measured, not in the model"


def gene_tab(model: BulkFormerModel, prepared: PreparedInput, holdout: runs.Held | None,
             outcome: runs.Held | None) -> None:
    """(b) One gene: the model's values against the measured ones, or its estimates; for a measured
    gene that is not part of the model (such as XIST), the measured values alone."""
    aligned, metadata = prepared.aligned, prepared.metadata
    gene_ids = list(aligned.gene_ids)
    observed = np.asarray(aligned.observed, dtype=bool)
    others = prepared.other_genes if prepared.other_genes is not None else pd.DataFrame()
    if outcome is None:
        need_main_run(model, prepared, "gene")
    else:
        imputed = outcome.run.result.imputed
        labels = uploads.gene_labels(gene_ids) + [f"{name} · {NOT_IN_MODEL}" for name in others.columns]
        c1, c2 = st.columns([2, 1])
        choice = c1.selectbox("Gene", range(len(labels)), format_func=labels.__getitem__, index=None,
                              placeholder="Type a gene symbol, e.g. ALB", key="gene_pick",
                              help="Type to search by symbol or Ensembl ID among the model's genes, then the "
                                   "other genes your table measured.")
        c1.caption(gene_list_caption(len(gene_ids), others.shape[1]))
        columns = [] if metadata is None else [c for c in metadata.columns if metadata[c].notna().any()]
        group_by = c2.selectbox("Colour by", ["(no colour)", *columns], key="gene_group",
                                index=1 if columns else 0,
                                help="A sample-sheet column; the same colours as on the Embeddings page.")
        color_values = metadata[group_by] if metadata is not None and group_by != "(no colour)" else None
        if choice is not None and int(choice) >= len(gene_ids):
            measured_only(model, prepared, others.columns[int(choice) - len(gene_ids)], color_values, group_by)
        elif choice is not None:
            g = int(choice)
            ids = list(outcome.run.result.sample_ids)
            model_vals = imputed[:, g]
            hover = plots.hover_texts(ids, metadata)
            fig = go.Figure()
            if observed[g]:
                real = aligned.values[:, g]
                st.markdown(f"**{labels[g]}** was measured in your table: the model's value for each "
                            "sample is plotted against the measured one.")
                st.caption("The model was given these measured values, so agreement here shows how faithfully it "
                           "reproduces its input, not how well it fills in a gene: the **Hold-out check** hides "
                           "values to test that. Downloads keep your measured values unless you choose the model "
                           "reconstruction.")
                xs, ys, xt = real, model_vals, "measured value, log(TPM + 1)"
            else:
                st.markdown(f"**{labels[g]}** was **not** measured in your table: these values are the "
                            "model's estimates, one per sample.")
                show_trust(holdout)
                xs, ys, xt = ranks(model_vals), model_vals, "samples, lowest to highest"
            add_sample_dots(fig, xs, ys, ids, hover, color_values, group_by=group_by, word="model")
            if observed[g]:
                lo, hi = float(min(xs.min(), ys.min())), float(max(xs.max(), ys.max()))
                fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", showlegend=False,
                                         line={"color": "#6b7280", "dash": "dash"}, hoverinfo="skip"))
            fig.update_layout(title=labels[g], height=460, xaxis_title=xt,
                              yaxis_title="model's value, log(TPM + 1)")
            plots.show_figure(fig, f"{frame.file_prefix(model)}gene_{gene_ids[g]}", key="gene_plot")


def gene_list_caption(n_model: int, n_others: int) -> str:
    """What the gene picker lists, and why a measured gene may not be part of the model."""
    lists = (f"Lists the model's {n_model:,} genes: the protein-coding genes it was trained on. A gene that is "
             "not protein-coding (a long non-coding RNA such as XIST, a pseudogene, a microRNA) is not part "
             "of the model.")
    if not n_others:
        return lists + " Your table measured none of those."
    which = "the 1 other gene" if n_others == 1 else f"the {n_others:,} other genes"
    return (f"{lists} After them come {which} your table measured (marked “{NOT_IN_MODEL}”): for those you see "
            "your own measured values; the model cannot fill them in or reproduce them.")


def measured_only(model: BulkFormerModel, prepared: PreparedInput, name: str, color_values: pd.Series | None,
                  group_by: str) -> None:
    """A measured gene that is not part of the model: its measured values per sample, lowest to highest."""
    assert prepared.other_genes is not None
    values = prepared.other_genes[name].to_numpy()
    ids = [str(s) for s in prepared.other_genes.index]
    st.markdown(f"**{name}** was measured in your table but is **not part of the model**: these are your "
                "measured values, one per sample; the model cannot fill it in or reproduce it.")
    st.caption("Values are log(TPM + 1), the same scale as the model's input, worked out over every gene in "
               "your table.")
    fig = go.Figure()
    add_sample_dots(fig, ranks(values), values, ids, plots.hover_texts(ids, prepared.metadata), color_values,
                    group_by=group_by, word="measured")
    fig.update_layout(title=f"{name}: measured values (not part of the model)", height=460,
                      xaxis_title="samples, lowest to highest", yaxis_title="measured value, log(TPM + 1)")
    safe = frame.file_safe(name).strip("_") or "gene"
    plots.show_figure(fig, f"{frame.file_prefix(model)}measured_{safe}", key="gene_plot")


def ranks(values: np.ndarray) -> np.ndarray:
    """Each sample's place from lowest (0) to highest value, for plots of samples in order."""
    rank = np.empty(len(values))
    rank[np.argsort(values, kind="stable")] = np.arange(len(values))
    return rank


def add_sample_dots(fig: go.Figure, xs: np.ndarray, ys: np.ndarray, ids: list[str], hover: list[str],
                    color_values: pd.Series | None, *, group_by: str, word: str) -> None:
    """One dot per sample, coloured by the chosen sample-sheet column as on the Embeddings page."""
    template = f"%{{text}}<br>{word} %{{y:.2f}}<extra></extra>"
    if color_values is None or plots.is_continuous(color_values):
        fig.add_trace(go.Scattergl(x=xs, y=ys, mode="markers", text=hover,
                                   marker={"size": 7, "color": plots.PALETTE[0]}, hovertemplate=template))
    else:
        plots.add_category_traces(fig, xs, ys, ids, hover, color_values, marker={"size": 7},
                                  hovertemplate=template)
        fig.update_layout(legend={"title": {"text": group_by}})


def missing_tab(model: BulkFormerModel, prepared: PreparedInput, holdout: runs.Held | None,
                outcome: runs.Held | None, notes: tuple[str, ...]) -> None:
    """(c) The genes the table did not measure: a summary of the model's estimates, and files."""
    aligned = prepared.aligned
    gene_ids = list(aligned.gene_ids)
    observed = np.asarray(aligned.observed, dtype=bool)
    n_missing = int((~observed).sum())
    if n_missing == 0:
        st.success("Your table measured every one of the model's genes, so nothing had to be filled in. "
                   "Try the targeted-panel demo on the Home page to see this list.", icon=":material/check_circle:")
    elif outcome is None:
        st.markdown(f"Your table lacks **{n_missing:,}** of the model's {len(gene_ids):,} genes.")
        need_main_run(model, prepared, "missing")
    else:
        st.markdown(f"Your table lacks **{n_missing:,}** of the model's {len(gene_ids):,} genes; the "
                    "model estimated them for every sample. Values are log(TPM + 1).")
        show_trust(holdout)
        symbols = uploads.symbols_for(gene_ids)
        memo_key = ("missing_summary", outcome.key)
        cache = session.memo()
        if memo_key not in cache:
            values = outcome.run.result.imputed[:, ~observed]
            missing_ids = np.asarray(gene_ids, dtype=object)[~observed]
            cache[memo_key] = pd.DataFrame({
                "gene": [symbols.get(g, "") for g in missing_ids],
                "ensembl_id": missing_ids,
                "mean": values.mean(axis=0),
                "sd": values.std(axis=0),
                "min": values.min(axis=0),
                "max": values.max(axis=0),
            }).sort_values("mean", ascending=False, ignore_index=True)
        summary = cache[memo_key]
        top_n = st.number_input("Show the top genes (by average estimated expression)", min_value=10,
                                max_value=max(10, len(summary)), value=min(100, max(10, len(summary))),
                                step=10, key="missing_top")
        st.dataframe(summary.head(int(top_n)), hide_index=True, width="stretch", height=420,
                     column_config={c: st.column_config.NumberColumn(format="%.3f", help=f"{words} of the model's "
                                                                      "estimate across your samples, log(TPM + 1)")
                                    for c, words in (("mean", "Average"), ("sd", "Standard deviation"),
                                                     ("min", "Lowest value"), ("max", "Highest value"))})
        c1, c2 = st.columns(2)
        with c1:
            plots.download_with_report(
                "Download this summary (CSV)", to_bytes(summary, notes=notes),
                frame.output_name(model, "missing_genes_summary.csv"), key="dl_missing_summary", notes=notes,
                info=FileInfo(("Rows: the model's genes your table did not measure; columns: symbol, Ensembl "
                               "ID, and the mean, SD, lowest and highest of the model's estimates across your "
                               "samples, log(TPM + 1).",)))
        with c2:
            result = outcome.run.result
            plots.download_with_report(
                "Download estimated values, all samples (CSV)",
                lambda: to_bytes(expression_frame(result, measured_values=aligned.values, observed=observed,
                                                  mode="missing", symbols=symbols), notes=notes),
                frame.output_name(model, "imputed_missing_genes.csv"), key="dl_missing_values", notes=notes,
                info=FileInfo((EXPRESSION_LAYOUT, "Values: the model's estimates, log(TPM + 1), of the genes "
                               "your table did not measure.")),
                help="Rows are the genes your table did not measure (SYMBOL_ENSG…), columns the samples: "
                     "expression files always run genes as rows.")


def main() -> None:
    model, prepared = frame.open_page(
        ":material/auto_fix_high: Imputation",
        "*Imputation* means the model estimates the expression of genes from everything else it sees in "
        "the sample. It fills in genes your experiment did not measure. The hold-out check below shows "
        "how far to trust those estimates on your own data.",
    )
    aligned = prepared.aligned
    progress.collect("holdout")
    progress.collect("main")
    holdout = runs.current("holdout", model)
    outcome = runs.current("main", model)
    notes = file_notes(is_demo=bool(model.is_demo), n_measured=int(np.asarray(aligned.observed).sum()),
                       n_model_genes=len(aligned.gene_ids))
    if holdout is not None:
        show_verdict(holdout.run.verdict, is_demo=bool(model.is_demo))
    tab_check, tab_gene, tab_missing = st.tabs(
        [":material/fact_check: Hold-out check", ":material/search: One gene", ":material/playlist_add: Missing genes"]
    )
    with tab_check:
        holdout_tab(model, prepared, holdout, outcome, notes)
    with tab_gene:
        gene_tab(model, prepared, holdout, outcome)
    with tab_missing:
        missing_tab(model, prepared, holdout, outcome, notes)


main()
