"""Upload & QC: the table (and optional sample sheet), the pipeline's guesses, the QC report.

The upload box comes first and needs no model: people can upload while the model still loads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from bulkformer.choices import ID_TYPE, ORIENTATION, VALUE_TYPE
from bulkformer.inputs._qc import (
    LOW_COVERAGE,
    LOW_DEPTH_READS,
    MIN_DETECTED_SHARE,
    MIN_LIBRARY_FOLD,
    MIN_SAMPLES_FOR_OUTLIERS,
    OUTLIER_Z,
)
from ui import frame, keys, plots, uploads

if TYPE_CHECKING:
    from bulkformer.inputs import PreparedInput

TABLE_TYPES = ["csv", "tsv", "txt", "tab", "xlsx", "h5ad", "parquet", "gz"]
SHEET_TYPES = TABLE_TYPES  # a sample sheet comes in every format and compression a table may

CHOICES = {"orientation": ORIENTATION, "id_type": ID_TYPE, "value_type": VALUE_TYPE}
TITLES = {
    "orientation": ("Table layout", "Which way round your table is: one column per sample, or one row per sample."),
    "id_type": ("Gene names", ("How genes are named in your table. Ensembl IDs are the ENSG… codes; "
                               "symbols are the short names such as TP53; NCBI (Entrez) gene IDs are "
                               "numbers such as 7157 (TCGA, many R workflows).")),
    "value_type": ("What the numbers are", ("Raw counts are reads per gene. TPM and FPKM are already "
                                            "normalised for sequencing depth (and gene length). "
                                            "The model needs log(TPM + 1); the app converts for you.")),
}

MAX_BARS = 300  # above this many samples, ranked dots (WebGL) instead of bars
ss = st.session_state


def sheet_cleared() -> None:
    """The sheet uploader's ×: stop using that sheet; the table and its results stay.

    (A callback, so that an uploader that is merely empty again after a visit to another page
    removes nothing.)"""
    if ss.get("sheet_uploader") is None and ss.get(keys.K_SHEET_FILE_ID):
        ss[keys.K_SHEET_FILE_ID] = None
        uploads.set_sheet(None)


def upload_section() -> uploads.Dataset:
    """1 · The table and sample-sheet upload boxes (or the demo data); stops the page without data."""
    limit_mb = int(st.get_option("server.maxUploadSize"))
    with st.container(border=True):
        st.markdown("#### 1 · Your expression table")
        st.caption(
            f"Counts, TPM or FPKM from bulk RNA-seq of human samples. CSV, TSV/TXT, Excel (.xlsx), "
            f"Parquet or AnnData (.h5ad), optionally gzipped (.gz). Largest file: {limit_mb:,} MB."
        )
        c1, c2 = st.columns(2)
        table_file = c1.file_uploader(
            "Expression table", type=TABLE_TYPES, key="table_uploader",
            help="Genes × samples or samples × genes — the app works out which. Gene names may be "
                 "Ensembl IDs (with or without version) or gene symbols.",
        )
        sheet_file = c2.file_uploader(
            "Sample sheet (optional)", type=SHEET_TYPES, key="sheet_uploader", on_change=sheet_cleared,
            help="One row per sample: a column with the sample names as in the table, then anything "
                 "you want to colour plots by (tissue, treatment, batch…).",
        )

        if table_file is not None and table_file.file_id != ss.get(keys.K_TABLE_FILE_ID):
            ss[keys.K_TABLE_FILE_ID] = table_file.file_id
            ss[keys.K_SHEET_FILE_ID] = None
            uploads.set_table(uploads.Upload.of(table_file.name, table_file.getvalue()))
            st.rerun()  # so that the sidebar, drawn before this page, names the new table
        if sheet_file is not None and sheet_file.file_id != ss.get(keys.K_SHEET_FILE_ID) and uploads.dataset() is not None:
            ss[keys.K_SHEET_FILE_ID] = sheet_file.file_id
            uploads.set_sheet(uploads.Upload.of(sheet_file.name, sheet_file.getvalue()))
            st.rerun()

        data = uploads.dataset()
        if data is None:
            st.info("Upload a table above, or start with the demo data.", icon=":material/info:")
            if st.button("Try the demo data", type="primary", icon=":material/play_arrow:", key="demo_button_upload"):
                with frame.guarded("loading the demo data"):
                    uploads.load_demo("demo")
                    st.rerun()
            st.stop()

        cols = st.columns([4, 1])
        cols[0].markdown(f"**Table:** `{data.table.name}` ({len(data.table.data) / 1e6:,.1f} MB)"
                         + (f" · **Sample sheet:** `{data.sheet.name}`" if data.sheet else " · no sample sheet"))
        if cols[1].button("Remove", icon=":material/delete:", key="remove_data",
                          help="Forget this table and its results in this session."):
            uploads.clear_dataset()
            ss[keys.K_TABLE_FILE_ID] = table_file.file_id if table_file is not None else None
            st.rerun()
    return data


def sheet_section(data: uploads.Dataset, prepared: PreparedInput | None) -> None:
    """The sample sheet: which column names the samples, near matches, remove it."""
    sheet_file = ss.get("sheet_uploader")
    with st.container(border=True):
        st.markdown(f"#### Sample sheet · `{data.sheet.name}`")
        sheet_error = uploads.sheet_error()
        if sheet_error is not None:
            frame.show_error(sheet_error, what="reading the sample sheet")
            st.caption("The table is used without the sample sheet until this is solved: choose the "
                       "column that holds the sample names, or remove the sheet.")
        columns = uploads.sheet_columns()
        chosen = uploads.sheet_id_column()
        c1, c2 = st.columns([3, 1])
        choices = [None, *columns]
        picked = c1.selectbox(
            "Sample names are in column", choices, format_func=lambda c: "Decide for me" if c is None else c,
            index=choices.index(chosen) if chosen in choices else 0, key=f"sheet_id_column_{data.sheet.sha[:12]}",
            help="The column of the sample sheet whose values are the sample names of your table. Names "
                 "written slightly differently (case, a prefix such as Sample_) are still matched.")
        if picked != chosen:
            uploads.set_sheet_id_column(picked)
            st.rerun()
        if prepared is not None and prepared.sheet_id_column is not None and sheet_error is None:
            c1.caption(f"Why: {prepared.sheet_id_column.reason}")
            near = prepared.qc.sheet_near_matched
            if near:
                st.info(f"Matched {len(near)} sample(s) by near-identical names, e.g. "
                        + ", ".join(f"`{a}` → `{b}`" for a, b in near[:3]) + ". Check that these pairs are right.",
                        icon=":material/join:")
        if c2.button("Remove sample sheet", icon=":material/delete:", key="remove_sheet",
                     help="Use the table without a sample sheet (the table and its results are kept)."):
            ss[keys.K_SHEET_FILE_ID] = sheet_file.file_id if sheet_file is not None else None
            uploads.set_sheet(None)
            st.rerun()


def reading_section(data: uploads.Dataset, prepared: PreparedInput | None) -> None:
    """2 · The three guesses about the file, each with its reason and a way to correct it."""
    with st.container(border=True):
        st.markdown("#### 2 · How the app read your table")
        st.caption("The app makes three guesses about your file. Check them; if one is wrong, "
                   "pick the right answer and the table is read again.")
        guesses = uploads.guess_items(prepared) if prepared is not None else {}
        current = uploads.overrides()
        new: dict[str, str] = {}
        cols = st.columns(3)
        for col, name in zip(cols, ("orientation", "id_type", "value_type")):
            title, help_text = TITLES[name]
            choices = list(CHOICES[name])
            with col:
                new[name] = st.selectbox(
                    title, choices, index=choices.index(current.get(name, "auto")),
                    format_func=CHOICES[name].label, help=help_text,
                    key=f"override_{name}_{data.table.sha[:12]}",
                )
                guess = guesses.get(name)
                if guess is not None:
                    shown = CHOICES[name].label(guess.value) if guess.value in CHOICES[name] else guess.value
                    verb = "You chose" if current.get(name, "auto") != "auto" else "Guessed"
                    st.markdown(f"{verb}: **{shown}**")
                    st.caption(f"Why: {guess.reason}")
                if name == "value_type" and prepared is not None and prepared.qc.value_type_warning:
                    st.warning(prepared.qc.value_type_warning, icon=":material/warning:")
        if new != current:
            uploads.set_overrides(**new)
            st.rerun()


def qc_metrics(prepared: PreparedInput) -> None:
    """3 · The QC report's numbers and warnings."""
    qc = prepared.qc
    per_sample = qc.per_sample
    st.markdown("#### 3 · Quality check")
    m = st.columns(5)
    m[0].metric("Samples", f"{qc.n_samples:,}", help="Samples found in the table.")
    m[1].metric("Genes read", f"{qc.n_genes_read:,}", help="Rows (or columns) of genes in the file.")
    m[2].metric("Genes recognised", f"{qc.n_genes_mapped:,}",
                help=f"Gene names matched to the human gene annotation: {qc.n_genes_mapped:,} of the "
                     f"{qc.n_genes_read:,} read ({qc.n_genes_mapped / max(qc.n_genes_read, 1):.0%}). The rest are "
                     "not human genes known here (spike-ins, retired names, other species); **Details of the QC "
                     "report** lists examples. They still count towards TPM.")
    m[3].metric("Model genes covered", f"{qc.coverage:.0%}",
                help=f"{qc.n_model_genes_observed:,} of the model's {qc.n_model_genes:,} genes are in your "
                     "table. The model fills in the rest (imputation). Under "
                     f"{LOW_COVERAGE:.0%} the results rest mostly on imputation and carry a low-coverage warning.")
    flagged = int(per_sample["outlier"].sum()) if "outlier" in per_sample else 0
    m[4].metric("Flagged samples", f"{flagged:,}",
                help=f"Samples under {LOW_DEPTH_READS:,} reads (raw counts only), or far from this cohort's median "
                     f"(robust z-score beyond ±{OUTLIER_Z}) on log library size or detected genes, and by an "
                     f"amount that matters: at least {MIN_LIBRARY_FOLD:g}-fold in library size or "
                     f"{MIN_DETECTED_SHARE:.0%} in detected genes. That comparison needs at least "
                     f"{MIN_SAMPLES_FOR_OUTLIERS} samples.")

    for warning in qc.warnings:
        if warning != qc.value_type_warning:  # already shown beside the value-type choice
            st.warning(warning, icon=":material/warning:")
    with st.expander("Details of the QC report", icon=":material/list:"):
        for line in qc.summary_lines():
            if not line.startswith("Warning:"):
                st.markdown(f"- {line}")


@dataclass(frozen=True)
class SampleMarks:
    """How each sample is drawn in the ranked plots: its name, hover text and colour (red when flagged)."""

    ids: list[str]
    hover: list[str]
    color: np.ndarray

    @classmethod
    def of(cls, prepared: PreparedInput) -> SampleMarks:
        per_sample = prepared.qc.per_sample
        flag_color = np.where(per_sample.get("outlier", pd.Series(False, index=per_sample.index)).to_numpy(bool),
                              "#dc2626", plots.PALETTE[0])
        ids = [str(s) for s in per_sample.index]
        hover = plots.hover_texts(ids, prepared.metadata)
        if "flags" in per_sample:
            hover = [h + (f"<br><b>flagged:</b> {f}" if f else "") for h, f in zip(hover, per_sample["flags"].fillna(""))]
        return cls(ids, hover, flag_color)


def ranked_plot(values: np.ndarray, marks: SampleMarks, *, title: str, y_title: str, x_title: str, value_fmt: str, key: str,
                lines: tuple[tuple[float, str], ...] = ()) -> None:
    """One mark per sample, sorted; flagged samples in red; hover shows the sample's details; the
    cohort's median drawn across (what "far from the median" is measured from) and ``lines``."""
    order = np.argsort(values, kind="stable")
    hover_sorted = [marks.hover[i] for i in order]
    template = "%{text}<br>" + value_fmt + "<extra></extra>"
    if len(values) <= MAX_BARS:
        trace = go.Bar(x=[marks.ids[i] for i in order], y=values[order], marker_color=marks.color[order], marker_line_width=0,
                       text=hover_sorted, hovertemplate=template, textposition="none")
    else:
        trace = go.Scattergl(x=np.arange(len(values)), y=values[order], mode="markers", text=hover_sorted,
                             marker={"color": marks.color[order], "size": 4}, hovertemplate=template)
    fig = go.Figure(trace)
    for y, label in ((float(np.nanmedian(values)), "cohort median"), *lines):
        fig.add_hline(y=y, line_dash="dot", line_color="#555555", annotation_text=label,
                      annotation_position="top left")
    fig.update_layout(title=title, height=360, xaxis={"showticklabels": len(marks.ids) <= 40},
                      yaxis_title=y_title, xaxis_title=x_title)
    plots.show_figure(fig, key, key=f"qc_{key}")


def qc_plots(prepared: PreparedInput) -> None:
    """Library sizes and detected genes per sample, the coverage of the model's genes, the flagged samples."""
    qc = prepared.qc
    per_sample = qc.per_sample
    marks = SampleMarks.of(prepared)
    plot_cols = st.columns(2)
    library = per_sample["library_size"] if "library_size" in per_sample else pd.Series(dtype=float)
    with plot_cols[0]:
        if library.notna().any():
            ranked_plot(library.to_numpy(dtype=float) / 1e6, marks, title="Library size (million reads)",
                        y_title="million reads", x_title="samples, smallest to largest",
                        value_fmt="%{y:.2f} M reads", key="library_sizes",
                        lines=((LOW_DEPTH_READS / 1e6, "too few reads below this"),))
        else:
            st.caption("Library sizes are shown for raw counts only (your values are already normalised).")
    with plot_cols[1]:
        ranked_plot(per_sample["detected_genes"].to_numpy(dtype=float), marks, title="Detected genes per sample",
                    y_title="genes with a value above 0", x_title="samples, fewest to most", value_fmt="%{y:,} genes detected",
                    key="detected_genes")
    st.caption("Red marks a flagged sample (the rule is in the help of **Flagged samples** above; the reason is in "
               "its hover text). The dotted line is the cohort's median; the smallest and largest values are in "
               "**Details of the QC report**.")

    plot_cols = st.columns(2)
    with plot_cols[0]:
        observed = qc.n_model_genes_observed
        fig = go.Figure(go.Pie(
            labels=["measured in your table", "not measured (the model fills them in)"],
            values=[observed, qc.n_model_genes - observed], hole=0.55, sort=False,
            marker={"colors": [plots.PALETTE[0], plots.MISSING_COLOR]},
            hovertemplate="%{label}: %{value:,} genes (%{percent})<extra></extra>",
        ))
        fig.update_layout(title="Coverage of the model's genes", height=340, showlegend=True,
                          legend={"orientation": "h", "y": -0.1})
        plots.show_figure(fig, "gene_coverage", key="qc_coverage")
    with plot_cols[1]:
        if "flags" in per_sample and per_sample["flags"].astype(bool).any():
            st.markdown("**Flagged samples**")
            st.dataframe(per_sample.loc[per_sample["flags"].astype(bool), ["flags"]], width="stretch")
        elif not qc.outliers_checked:
            st.info(f"Outliers not checked: comparing samples with each other needs at least {MIN_SAMPLES_FOR_OUTLIERS} "
                    f"samples, and this table has {qc.n_samples}."
                    + (f" Only very low depth (under {LOW_DEPTH_READS:,} reads) was checked."
                       if library.notna().any() else ""),
                    icon=":material/info:")
        else:
            st.success("No sample stands out on sequencing depth or detected genes.", icon=":material/check_circle:")

    if prepared.metadata is not None:
        with st.expander("Sample sheet", icon=":material/table:"):
            st.dataframe(prepared.metadata, width="stretch", height=260)

    with st.expander("Per-sample numbers", icon=":material/table_rows:"):
        st.dataframe(per_sample, width="stretch", height=260)


def main() -> None:
    st.title(":material/upload_file: Upload & QC")
    frame.show_flash()
    data = upload_section()
    # What the last table showed (its error, its choices) goes as soon as a new table's run gets
    # here, not after the slow reading below.
    with frame.table_slot(data.table.sha + (data.sheet.sha if data.sheet else "")):
        show_table(data)


def show_table(data: uploads.Dataset) -> None:
    """The model, then the sample sheet, the reading choices and the QC report of ``data``."""
    model = frame.get_model()
    if model is None:
        st.stop()
    frame.model_badge(model)
    prepared, error = uploads.get_prepared(model)
    if data.sheet is not None and error is None:
        sheet_section(data, prepared)
    reading_section(data, prepared)
    if error is not None:
        frame.show_error(error, what="reading the table")
        st.stop()
    assert prepared is not None
    qc_metrics(prepared)
    qc_plots(prepared)
    st.divider()
    st.markdown("**Next:** turn every sample into an embedding and look at the map of your cohort.")
    st.page_link(keys.PAGES["embeddings"], label="Go to Embeddings", icon=":material/arrow_forward:")


main()
