"""The Imputation page says what the hold-out check costs before it runs, from what this
server measured (issue #26: a check that took 7× another's came with no hint why)."""

from __future__ import annotations

from tests.app.test_pages import (
    _isolated,
    assert_clean,
    go,
    new_app,
    pytestmark,
    run_main,
    texts,
    wait_for,
)

__all__ = ["_isolated", "pytestmark"]  # the page tests' isolation (own cache folder) and skip rule


def test_holdout_says_its_cost_from_the_main_run_and_what_it_took() -> None:
    at = new_app()
    at.button(key="panel_button").click()
    at.run()
    assert_clean(at)
    go(at, "imputation")
    before = texts(at.info)
    assert "runs the model once more over all 24 samples" in before
    assert "time left appears below once the first samples are done" in before  # no main run: no number

    run_main(at)
    go(at, "imputation")
    main = at.session_state["bf_results"]["main"].run
    from ui.progress import format_seconds

    assert 0 < main.model_seconds < main.seconds  # the maps come after the model's pass
    assert 0 < main.pace * 23 < main.model_seconds  # 24 samples: the pace leaves the first batch out
    assert (f"At the pace of your main run on this server (after its first batch), that is about "
            f"{format_seconds(main.pace * 24)}") in texts(at.info)

    at.button(key="holdout_run").click()
    at.run()
    assert_clean(at)
    wait_for(at, "holdout")
    held = at.session_state["bf_results"]["holdout"].run
    assert not held.from_cache and 0 < held.model_seconds < held.seconds
    assert (f"The check took {format_seconds(held.seconds)}: the model's pass {format_seconds(held.model_seconds)}, "
            "the simple guesses and the scoring the rest.") in texts(at.caption)
