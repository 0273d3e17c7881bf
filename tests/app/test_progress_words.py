"""The progress panel's words for the time left: a range said as people say it."""

from __future__ import annotations


def test_the_panel_words_a_range_as_people_say_it() -> None:
    from ui.progress import time_left_words

    assert time_left_words((100.0, 300.0)) == "about 2–5 minutes left"
    assert time_left_words((170.0, 190.0)) == "about 3 minutes left"
    assert time_left_words((10.0, 30.0)) == "less than a minute left"
    assert time_left_words(None) == "estimating the time left…"
