"""Predict says what an evaluation includes and how long it may take, from this machine (issue #26:
"the demo cohort (200 samples) takes under a minute" was a fixed promise that did not hold)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from sklearn.linear_model import LogisticRegression

from bulkformer.analysis import predict
from tests.app.test_pages import (  # noqa: F401  (the demo assets, the recorded downloads)
    _isolated,
    assert_clean,
    button,
    go,
    new_app,
    pytestmark,
    run_main,
    texts,
    wait_for,
)
from tests.waiting import EVENT_WAIT_S
from ui.progress import duration_words


def test_predict_names_its_model_fits_then_prices_the_next_run_at_the_measured_pace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fits: list[int] = []
    original: Callable = LogisticRegression.fit

    @functools.wraps(original)
    def counted(self, *args, **kwargs):
        fits.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", counted)
    at = new_app()
    at.button(key="demo_button").click()
    at.run()
    run_main(at)
    go(at, "predict")
    at.selectbox(key="pred_column").set_value("tissue").run()
    hint = texts(at.info)
    assert "under a minute" not in hint
    assert "5 folds × 3 feature sets" in hint and "then 99 label shuffles" in hint
    assert "The time left appears, measured on this server, once the first folds are fitted." in hint
    planned = int(hint.split(" model fits in all")[0].rsplit(": ", 1)[1].replace(",", ""))

    fits.clear()
    button(at, "Evaluate").click()
    at.run()
    assert_clean(at)
    entry = at.session_state["bf_jobs"]["predict"]
    assert entry.job.wait(EVENT_WAIT_S)
    assert entry.job.progress == (planned, planned)  # the panel counts what the words announced…
    assert len(fits) == planned  # …and what was fitted
    wait_for(at, "predict")
    result = at.session_state["bf_results"]["predict"].run
    assert "Took " in texts(at.caption)

    # another column of the same kind: a time range, at the pace just measured
    at.selectbox(key="pred_column").set_value("sex").run()
    assert_clean(at)
    captions = texts(at.caption)
    assert "At the pace measured here in your last evaluation of classes on this table, it takes" in captions
    assert "the range allows for the server being up to 1.5 times faster or slower than it was then" in captions
    prepared = at.session_state["bf_prepared"][1]
    work = predict.planned_work(predict.make_target(prepared.metadata, "sex"), n_permutations=99,
                                n_expression=int(prepared.aligned.observed.sum()), n_embedding=result.models[0].n_inputs)
    seconds = result.pace.tuned * work.tuned_fits + result.pace.shuffled * work.permutation_fits
    assert f"it takes {duration_words((seconds / 1.5, seconds * 1.5))} (the range" in captions
    assert "The time left appears" not in captions

    # a number is another kind of model, whose pace was never measured here: no number
    at.selectbox(key="pred_column").set_value("age").run()
    assert_clean(at)
    captions = texts(at.caption)
    assert "The time left appears, measured on this server, once the first folds are fitted." in captions
    assert "At the pace measured" not in captions
