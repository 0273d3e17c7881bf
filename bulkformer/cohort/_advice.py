"""The commands that run a file too large for the app: one home for their wording (the app's
refusal, the CLI and the README show the same lines)."""

from __future__ import annotations

import shlex


def cohort_commands(name: str = "FILE") -> str:
    """The command-line steps for the file ``name`` (as the user knows it), in words and commands."""
    quoted = shlex.quote(name)
    return (f"Run it from the command line, which reads it a block of samples at a time and continues "
            f"where it stopped: `bulkformer extract-cohort {quoted} embeddings.parquet --work cohort_work` "
            f"on one machine; or over a cluster: `bulkformer workflow init cohort_run --input {quoted}`, "
            f"then `cd cohort_run && snakemake --profile profiles/slurm` "
            f"(or `--profile profiles/local` on one machine with several GPUs).")
