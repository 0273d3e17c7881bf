"""Stage 2b, large cohorts: planned once, streamed block by block, resumable, spread over a cluster.

A cohort too large for one table in memory (ARCHS4, GEO in bulk, TCGA/GTEx) is first **planned**
(:func:`make_plan`: layout, genes, value type, gene lengths, samples, model, options, blocks and
shards decided once, written as ``plan.json``), then each **shard** runs on its own machine or GPU
(:func:`run_shard`: block by block, each finished block recorded, a rerun continues), then the
blocks are **gathered** into the user's file without holding the cohort (:func:`gather`). The
Snakemake workflow shipped in ``workflow/`` chains the three steps on one machine or a SLURM cluster.

Modules: ``_blocks`` (reading samples block by block: CSV/TSV, Parquet, h5ad, ARCHS4 HDF5),
``_plan`` (:class:`CohortPlan`), ``_shards`` (one shard, the block records), ``_gather`` (the
output file, cohort QC, run report), ``_advice`` (the commands shown when a file is too large
for the app), ``_workflow`` (writing the Snakemake workflow).
"""

from __future__ import annotations

from bulkformer._lazy import exports

__all__, __getattr__, __dir__ = exports(__name__, {
    "_blocks": ("CohortSource", "open_source", "FORMATS", "ARCHS4_EXPRESSION", "ARCHS4_SAMPLES", "ARCHS4_GENES"),
    "_plan": ("CohortPlan", "make_plan", "write_plan", "read_plan", "clear_work", "fingerprint", "unique_ids",
              "PLAN_NAME", "SAMPLES_NAME", "DEFAULT_CHUNK", "OUTPUTS"),
    "_shards": ("ShardOutcome", "run_shard", "block_record", "done_path", "part_path", "record_path"),
    "_gather": ("GatherOutcome", "gather", "missing_shards", "check_output", "GATHER_FORMATS"),
    "_advice": ("cohort_commands",),
    "_workflow": ("WORKFLOW_FILES", "write_workflow"),
})
