"""Gathering a plan's blocks into the user's file, a block at a time, and the cohort's QC and report.

Parquet is written a row group per block (pyarrow's ``ParquetWriter``), CSV/TSV appended a block
at a time, h5ad built with h5py datasets filled block by block (``X`` for expression,
``obsm['X_bulkformer']`` for embeddings), so the cohort is never held in memory. Each part is
checked against its record's sha256 first. Cohort-level QC (outlying samples, compared over the
whole cohort) is computed here, once, from the per-sample numbers the blocks recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bulkformer.cohort._plan import CohortPlan
from bulkformer.cohort._shards import block_record, file_sha256, part_path
from bulkformer.errors import BulkFormerError

if TYPE_CHECKING:
    from collections.abc import Callable

#: The file types :func:`gather` writes.
GATHER_FORMATS = (".parquet", ".csv", ".tsv", ".h5ad")


@dataclass(frozen=True)
class GatherOutcome:
    """What :func:`gather` wrote: the output, the per-sample QC table, the report, the QC lines."""

    output: Path
    qc_table: Path
    report: Path
    qc_lines: tuple[str, ...]
    n_samples: int


def missing_shards(plan: CohortPlan, work: Path) -> list[int]:
    """Shards with at least one block not finished (for this plan)."""
    return [s for s in range(len(plan.shards))
            if any(block_record(plan, work, b) is None for b in plan.shard_blocks(s))]


def check_output(output: Path) -> None:
    """Refuse, before any work, an output type :func:`gather` cannot write."""
    if Path(output).suffix.lower() not in GATHER_FORMATS:
        raise BulkFormerError(f"Cannot write a cohort's results as {Path(output).name!r}.",
                              hint=f"End OUTPUT with one of: {', '.join(GATHER_FORMATS)}.")


def gather(plan: CohortPlan, work: Path, output: Path, *,
           progress: Callable[[int, int], None] | None = None) -> GatherOutcome:
    """Write every block of ``plan`` (all finished, checked) into ``output``, in plan order."""
    from bulkformer.export import written_in_full

    work, output = Path(work), Path(output)
    check_output(output)
    missing = missing_shards(plan, work)
    if missing:
        raise BulkFormerError(
            f"Shard(s) {', '.join(map(str, missing[:10]))} of {len(plan.shards)} are not finished.",
            hint="Run them first: bulkformer run-shard WORK --shard N (or the Snakemake workflow).")
    records = [block_record(plan, work, b) for b in range(len(plan.blocks))]
    for block, record in enumerate(records):
        if file_sha256(part_path(work, block)) != record["sha256"]:
            raise BulkFormerError(f"The results of block {block} were changed or damaged since they were written.",
                                  hint=f"Delete {part_path(work, block)} and its .json record, then run its shard again.")
    qc_lines, per_sample = _cohort_qc(plan, records)
    notes = _notes(plan)
    writer = {".parquet": _write_parquet, ".csv": _write_text, ".tsv": _write_text, ".h5ad": _write_h5ad}
    with written_in_full(output) as tmp:
        writer[output.suffix.lower()](plan, work, tmp, notes=notes, sep="\t" if output.suffix.lower() == ".tsv" else ",",
                                      progress=progress)
    qc_table = work / "qc_samples.csv"
    with written_in_full(qc_table) as tmp:
        per_sample.to_csv(tmp)
    report = work / "report.md"
    with written_in_full(report) as tmp:
        tmp.write_text(_report(plan, qc_lines, output), encoding="utf-8")
    return GatherOutcome(output, qc_table, report, tuple(qc_lines), plan.n_samples)


def _parts(plan: CohortPlan, work: Path):
    for block in range(len(plan.blocks)):
        yield block, pd.read_parquet(part_path(work, block))


def _write_parquet(plan: CohortPlan, work: Path, tmp: Path, *, notes, sep, progress) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for block, frame in _parts(plan, work):
            frame.attrs["notes"] = list(notes)  # read back by pandas as attrs["notes"], as export writes them
            table = pa.Table.from_pandas(frame, preserve_index=True)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table.replace_schema_metadata(writer.schema.metadata))
            _tick(progress, plan, block)
    finally:
        if writer is not None:
            writer.close()


def _write_text(plan: CohortPlan, work: Path, tmp: Path, *, notes, sep, progress) -> None:
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        for note in notes:
            handle.write(f"# {note}\n")
        for block, frame in _parts(plan, work):
            frame.to_csv(handle, sep=sep, header=block == 0, float_format="%.7g")
            _tick(progress, plan, block)


def _write_h5ad(plan: CohortPlan, work: Path, tmp: Path, *, notes, sep, progress) -> None:
    """An h5ad written by anndata for the small parts (obs, var, uns), then its big matrix added
    with h5py and filled a block at a time (a dense array in anndata's own encoding)."""
    import anndata
    import h5py

    from bulkformer.export import write_h5ad

    first = pd.read_parquet(part_path(work, 0))
    expression = plan.facts["output"]["kind"] == "expression"
    obs = pd.DataFrame(index=pd.Index(list(plan.sample_ids), name="sample_id"))
    var = pd.DataFrame(index=pd.Index([str(c) for c in first.columns], name="gene_id")) if expression \
        else pd.DataFrame(index=pd.Index([], dtype=str))
    adata = anndata.AnnData(obs=obs, var=var)
    adata.uns["bulkformer"] = {"plan_sha256": plan.hash, "model_name": plan.facts["model"]["name"],
                               "model_checksum": plan.facts["model"]["checksum"], "notes": list(notes),
                               "values": "log1p TPM" if expression else "sample embeddings in obsm['X_bulkformer']"}
    if not expression:
        adata.uns["bulkformer"]["embedding_columns"] = [str(c) for c in first.columns]
    write_h5ad(adata, tmp)  # pandas 3's string arrays stored as every anndata reads them
    width = first.shape[1]
    with h5py.File(tmp, "a") as f:
        if expression:
            if "X" in f:
                del f["X"]
            dataset = f.create_dataset("X", shape=(plan.n_samples, width), dtype="float32",
                                       chunks=(min(plan.n_samples, 256), min(width, 4096)))
        else:
            group = f.require_group("obsm")
            dataset = group.create_dataset("X_bulkformer", shape=(plan.n_samples, width), dtype="float32")
        dataset.attrs["encoding-type"] = "array"
        dataset.attrs["encoding-version"] = "0.2.0"
        for block, frame in _parts(plan, work):
            start, stop = plan.blocks[block]
            dataset[start:stop] = frame.to_numpy(dtype=np.float32)
            _tick(progress, plan, block)


def _tick(progress, plan: CohortPlan, block: int) -> None:
    if progress is not None:
        progress(plan.blocks[block][1], plan.n_samples)


def _notes(plan: CohortPlan) -> tuple[str, ...]:
    from bulkformer.export import file_notes

    genes = plan.facts["genes"]
    return file_notes(is_demo=plan.facts["model"]["is_demo"], n_measured=genes["n_model_genes_measured"],
                      n_model_genes=genes["n_model_genes"])


def _cohort_qc(plan: CohortPlan, records: list[dict]) -> tuple[list[str], pd.DataFrame]:
    """The QC lines: the plan's (genes, values, samples) once, then the samples compared over the
    whole cohort (outliers, shallow libraries) from the numbers each block recorded."""
    from bulkformer.inputs._qc import _flag_samples, counter_note, low_coverage_warning

    per_sample = pd.concat([pd.DataFrame(r["qc"]) for r in records], ignore_index=True)
    per_sample.index = pd.Index(list(plan.sample_ids), name="sample_id")
    facts = plan.facts
    is_counts = facts["values"]["value"] == "counts"
    warnings, notes = _flag_samples(per_sample, is_counts=is_counts)
    genes = facts["genes"]
    genes_in = "rows" if facts["orientation"]["value"] == "genes_in_rows" else "columns"
    lines = [(f"{plan.n_samples:,} samples from {Path(facts['input']['path']).name} ({facts['input']['format']}; "
              f"{facts['orientation']['reason']})."),
             f"Values: {facts['values']['value']} — {facts['values']['reason']}.",
             (f"Genes: {genes['n_mapped']:,} of {genes['n_labels']:,} labels mapped ({genes['id_type_reason']}); "
              f"{genes['n_model_genes_measured']:,} of the model's {genes['n_model_genes']:,} genes measured."),
             *([f"Warning: {facts['values']['warning']}"] if facts["values"]["warning"] else []),
             *([facts["values"]["lengths_note"]] if facts["values"]["lengths_note"] else []),
             *([f"{genes['n_merged_rows']:,} rows merged into genes they share with other rows."]
               if genes["n_merged_rows"] else []),
             *([f"Columns ignored (not numbers): {', '.join(genes['ignored_columns'])}."]
               if genes["ignored_columns"] else []),
             *([counter_note(genes["counter_labels"], where=genes_in)] if genes.get("counter_labels") else []),
             *facts["samples"]["notes"]]
    coverage = low_coverage_warning(genes["n_model_genes_measured"], genes["n_model_genes"])
    lines += [f"Warning: {w}" for w in ([coverage] if coverage else []) + warnings] + notes
    return lines, per_sample


def _report(plan: CohortPlan, qc_lines: list[str], output: Path) -> str:
    from bulkformer.export import package_versions

    facts = plan.facts
    options = facts["options"]
    shard_lines = [f"- shard {i}: blocks {a}–{b - 1}, samples {plan.blocks[a][0]:,}–{plan.blocks[b - 1][1] - 1:,}"
                   for i, (a, b) in enumerate(plan.shards)]
    return "\n".join([
        "# BulkFormer cohort run report", "",
        *(["**These results come from the DEMO model trained on SIMULATED data.**", ""]
          if facts["model"]["is_demo"] else []),
        "## Plan", "",
        f"- Plan sha256: `{plan.hash}`",
        f"- Input: `{facts['input']['path']}` ({facts['input']['format']}, {facts['input']['fingerprint']['bytes']:,} bytes)",
        f"- Output: `{output}` ({facts['output']['kind']}"
        + (f", {facts['output']['impute_mode']}" if facts["output"]["kind"] == "expression" else "") + ")",
        f"- Samples: {plan.n_samples:,} in {len(plan.blocks):,} blocks of up to {facts['block_size']:,}", "",
        "## Model", "",
        f"- Model: {facts['model']['name']} (`{facts['model']['spec']}`)",
        f"- Weights checksum (sha256): `{facts['model']['checksum']}`", "",
        "## Options", "",
        *(f"- {key}: {value}" for key, value in options.items()), "",
        "## Shards", "", *shard_lines, "",
        "## Input quality control (whole cohort)", "", *(f"- {line}" for line in qc_lines), "",
        "## Software", "", *(f"- {name}: {version}" for name, version in package_versions()), "",
    ])
