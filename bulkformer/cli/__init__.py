"""The ``bulkformer`` command line: a thin layer over the package, for people who don't program.

Every command runs its work inside :func:`user_errors`, so a problem the user can fix is
printed as a short red message (what went wrong, then what to do) with exit code 1, never
as a Python traceback.

One module per command group (``download``, ``verify``, ``extract``, ``holdout``, ``train``,
``predict``), each a short layer of typer/rich calls over the package; what they share lives in
:mod:`bulkformer.cli._common`. The commands are registered here, in the order ``--help`` lists them.
"""

from __future__ import annotations

import typer

from bulkformer.cli import (
    cohort,
    download,
    extract,
    holdout,
    predict,
    predict_apply,
    train,
    verify,
)
from bulkformer.cli._common import (
    DEMO_NOTE,
    DataDirOption,
    ModelDirOption,
    ModelOption,
    err,
    out,
    user_errors,
)

__all__ = ["DEMO_NOTE", "DataDirOption", "ModelDirOption", "ModelOption", "app", "err", "main", "out",
           "user_errors"]

app = typer.Typer(
    name="bulkformer",
    help="BulkFormer Studio: get the published BulkFormer model and use it on bulk RNA-seq data.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(download.download_app, name="download")
app.command()(verify.verify)
app.command()(extract.extract)
app.command("holdout")(holdout.holdout_check)
app.command()(train.train)
app.command()(predict.predict)
app.command("predict-apply")(predict_apply.predict_apply)  # a predictor saved by `predict --save-predictor`
# Cohorts too large for memory (issue #23): planned once, streamed, resumable, spread by Snakemake.
app.command("extract-cohort")(cohort.extract_cohort)
app.command("plan")(cohort.plan)
app.command("run-shard")(cohort.run_shard)
app.command("gather")(cohort.gather)
app.add_typer(cohort.workflow_app, name="workflow")


def main() -> None:
    """Entry point of the ``bulkformer`` program (``[project.scripts]``)."""
    app(prog_name="bulkformer")
