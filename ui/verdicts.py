"""How a verdict looks: its colour and icon follow what it means for the model (its tone), on
every page that gives one: good news green with a check, no better or cannot judge neutral,
worse than the baseline or than chance orange with a warning."""

from __future__ import annotations

from typing import Any

import streamlit as st

from bulkformer.choices import Tone

STYLE: dict[str, tuple[str, str]] = {
    "good": ("green", ":material/check_circle:"),
    "neutral": ("blue", ":material/info:"),
    "bad": ("orange", ":material/warning:"),
}
"""Tone → (Streamlit colour name, icon)."""

_BOX = {"good": "success", "neutral": "info", "bad": "warning"}


def show(tone: Tone, text: str, *, where: Any = st) -> None:
    """``text`` in a message box coloured by ``tone`` (``where``: ``st`` or a container)."""
    getattr(where, _BOX[tone])(text, icon=STYLE[tone][1])


def headline(tone: Tone, text: str) -> str:
    """``text`` as a Markdown headline in ``tone``'s colour, with its icon."""
    color, icon = STYLE[tone]
    return f"{icon} :{color}[{text}]"
