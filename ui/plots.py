"""Colours (a public palette shared by every page), plots and download buttons."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.colors as pcolors
import plotly.graph_objects as go
import streamlit as st

from ui.keys import K_IMAGE_FORMAT
from ui.session import init_session

#: Colours for the categories of a sample-sheet column, most distinct first: each is the colour
#: (from Okabe-Ito, D3, Dark2, Bold, Vivid, Safe and Plotly) farthest in CIE Lab from those before
#: it, leaving out pale ones and ones near :data:`MISSING_COLOR`. The first ten differ by ΔE ≥ 41.
PALETTE: tuple[str, ...] = ("#0072B2", "#F2B701", "#E73F74", "#00CC96", "#AB63FA",
                            "#661100", "#99C945", "#D95F02", "#19D3F3", "#24796C")
#: Colours of the clusters the app finds: none of :data:`PALETTE`'s, so that "cluster 1" never
#: looks like the first category of a sample-sheet column.
CLUSTER_PALETTE: tuple[str, ...] = ("#332288", "#AA4499", "#A6761D", "#117733", "#FF97FF",
                                    "#8C564B", "#F97B72", "#E41A1C", "#FFA15A", "#2CA02C")
#: More colours for columns with more than ten categories.
_MORE_COLORS: tuple[str, ...] = tuple(c for c in dict.fromkeys(
    pcolors.qualitative.Dark24 + pcolors.qualitative.Light24) if c not in PALETTE + CLUSTER_PALETTE)
MISSING_COLOR = "#b0b7c3"
CONTINUOUS_SCALE = "Viridis"


def _natural_key(text: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", text))


def category_colors(values: Sequence[Any] | pd.Series, *, palette: Sequence[str] = PALETTE) -> dict[str, str]:
    """Category → colour, deterministic: categories in natural sort order take palette colours in turn.

    Pass *all* values of a column (the whole sample sheet's column), so every page that colours
    by that column gets the same colours. Missing values map to grey under the key ``"(missing)"``.
    """
    labels = sorted({category_label(v) for v in values} - {"(missing)"}, key=_natural_key)
    colours = (*palette, *(c for c in (*PALETTE, *CLUSTER_PALETTE, *_MORE_COLORS) if c not in palette))
    colors = {label: colours[i % len(colours)] for i, label in enumerate(labels)}
    colors["(missing)"] = MISSING_COLOR
    return colors


def category_label(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "(missing)"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def is_continuous(column: pd.Series) -> bool:
    """Numbers with many distinct values are shown on a colour scale, not as categories."""
    return (pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
            and column.nunique(dropna=True) > 12)


# ================================================================================= plots


def image_format() -> str:
    init_session()
    return str(st.session_state[K_IMAGE_FORMAT])


def plot_config(filename: str) -> dict[str, Any]:
    """Plotly config: the camera button saves a picture (PNG or SVG, chosen in the sidebar)."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": image_format(), "filename": filename, "scale": 2},
        "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
    }


def show_figure(fig: go.Figure, filename: str, *, key: str | None = None) -> None:
    fig.update_layout(template="plotly_white", margin={"l": 10, "r": 10, "t": 40, "b": 10})
    st.plotly_chart(fig, width="stretch", config=plot_config(filename), key=key, theme=None)


def hover_texts(sample_ids: Sequence[str], metadata: pd.DataFrame | None, *, max_columns: int = 8) -> list[str]:
    """``<b>sample</b><br>column: value…`` per sample, for plot tooltips."""
    ids = [str(s) for s in sample_ids]
    if metadata is None or metadata.empty:
        return [f"<b>{s}</b>" for s in ids]
    meta = metadata.reindex(ids).iloc[:, :max_columns]
    parts = [pd.Series([f"<b>{s}</b>" for s in ids])]
    for column in meta.columns:
        values = meta[column].map(category_label).to_numpy()
        parts.append(pd.Series([f"{column}: {v}" for v in values]))
    return list(pd.concat(parts, axis=1).agg("<br>".join, axis=1))


def add_category_traces(fig: go.Figure, x: np.ndarray, y: np.ndarray, sample_ids: Sequence[str],
                        hover: Sequence[str], color_values: pd.Series, *, marker: Mapping[str, Any],
                        hovertemplate: str, palette: Sequence[str] = PALETTE) -> None:
    """One WebGL trace of dots per category of ``color_values`` (a sample-sheet column indexed by
    sample), in :func:`category_colors`' order and colours, so that legends agree across pages."""
    colors = category_colors(color_values, palette=palette)
    labels = color_values.reindex([str(s) for s in sample_ids]).map(category_label).to_numpy()
    for label in [c for c in colors if c in set(labels)]:
        idx = np.flatnonzero(labels == label)
        fig.add_trace(go.Scattergl(
            x=x[idx], y=y[idx], mode="markers", name=label,
            text=[hover[i] for i in idx], hovertemplate=hovertemplate,
            marker={**marker, "color": colors[label]},
        ))


#: Maps of at most this many samples show each sample's name beside its dot.
LABELLED_SAMPLES = 20


def sample_scatter(
    coords: np.ndarray,
    sample_ids: Sequence[str],
    *,
    metadata: pd.DataFrame | None,
    color_by: str | None,
    color_values: pd.Series | None = None,
    axis_titles: tuple[str, str] = ("1", "2"),
    title: str = "",
    palette: Sequence[str] = PALETTE,
) -> go.Figure:
    """One dot per sample (WebGL, so 5,000+ samples stay smooth), coloured by one column
    (categories take ``palette``'s colours); up to :data:`LABELLED_SAMPLES` samples are named."""
    coords = np.asarray(coords, dtype=float)
    ids = [str(s) for s in sample_ids]
    hover = hover_texts(ids, metadata)
    fig = go.Figure()
    few = len(ids) <= LABELLED_SAMPLES
    marker_size = 13 if few else 8 if len(ids) <= 500 else 5 if len(ids) <= 3000 else 4
    if color_by is None or color_values is None:
        fig.add_trace(go.Scattergl(x=coords[:, 0], y=coords[:, 1], mode="markers", text=hover,
                                   hovertemplate="%{text}<extra></extra>", name="samples",
                                   marker={"size": marker_size, "color": PALETTE[0], "opacity": 0.85}))
    else:
        values = color_values.reindex(ids)
        if is_continuous(color_values):
            fig.add_trace(go.Scattergl(
                x=coords[:, 0], y=coords[:, 1], mode="markers", text=hover, name=color_by,
                hovertemplate="%{text}<extra></extra>",
                marker={"size": marker_size, "color": values.to_numpy(dtype=float), "colorscale": CONTINUOUS_SCALE,
                        "colorbar": {"title": {"text": color_by}}, "opacity": 0.9},
            ))
        else:
            add_category_traces(fig, coords[:, 0], coords[:, 1], ids, hover, color_values, palette=palette,
                                marker={"size": marker_size, "opacity": 0.85},
                                hovertemplate="%{text}<extra></extra>")
            fig.update_layout(legend={"title": {"text": color_by}, "itemsizing": "constant"})
    if few:  # a handful of samples: name them on the map
        fig.add_trace(go.Scatter(x=coords[:, 0], y=coords[:, 1], mode="text", text=ids, textposition="top center",
                                 textfont={"size": 11, "color": "#374151"}, hoverinfo="skip", showlegend=False))
    fig.update_layout(title=title, height=560, xaxis_title=axis_titles[0], yaxis_title=axis_titles[1],
                      hoverlabel={"align": "left"})
    fig.update_xaxes(showgrid=False, zeroline=False)
    fig.update_yaxes(showgrid=False, zeroline=False)
    return fig


# =========================================================================== downloads


def download(label: str, data: bytes | Callable[[], bytes], file_name: str, *, mime: str, key: str,
             help: str | None = None) -> None:
    st.download_button(label, data=data, file_name=file_name, mime=mime, key=key, help=help,
                       icon=":material/download:", on_click="ignore")


def download_with_report(label: str, data: bytes | Callable[[], bytes], file_name: str, *, key: str,
                         info: Any, notes: Sequence[str], facts: Any = None, help: str | None = None) -> None:
    """A file's download button and, beside it, its run report (``<name>.report.md``: what the
    file holds, which way it runs, the notes about this run, and the run report when ``facts``
    are known), as the CLI writes beside its files. ``info``: the file's
    :class:`~bulkformer.export.FileInfo`, or a function that makes it (when the file is big)."""
    from bulkformer.export import FileInfo, mime_of, sidecar_report

    download(label, data, file_name, mime=mime_of(Path(file_name).suffix), key=key, help=help)

    def report() -> bytes:
        held = info() if callable(info) else info
        return sidecar_report(file_name, FileInfo(held.contents, tuple(notes)), facts).encode("utf-8")

    download("Its run report (.md)", report, f"{file_name}.report.md", mime="text/markdown", key=f"{key}_report",
             help="What this file holds, which way it runs, the scale of its values and the notes about this "
                  "run (demo model, low coverage, the hold-out verdict).")
