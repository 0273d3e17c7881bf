"""Running one shard of a plan, block by block, each finished block recorded.

Per block: read the samples → check them → log1p TPM with the PLAN's value type (never detected
again: a block of whole-number TPM stays TPM) → merge duplicated genes → align → model → one
Parquet part, written under a temporary name and renamed when complete → a record (plan hash,
rows, bytes, sha256, per-sample QC numbers) written the same way. A rerun skips recorded blocks;
a stop (Ctrl-C, a full disk, a killed job) leaves only whole blocks, so the rerun continues from
the first missing one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bulkformer.cohort._blocks import check_finite
from bulkformer.cohort._plan import CohortPlan

if TYPE_CHECKING:
    from bulkformer.model import BulkFormerModel

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class ShardOutcome:
    """What a shard run did: blocks computed now, blocks found finished, samples in the shard."""

    shard: int
    n_blocks_run: int
    n_blocks_skipped: int
    n_samples: int


def part_path(work: Path, block: int) -> Path:
    """Where block ``block``'s results go."""
    return Path(work) / "parts" / f"block-{block:06d}.parquet"


def record_path(work: Path, block: int) -> Path:
    """Where block ``block``'s record goes (written after its part, so a record means a whole part)."""
    return Path(work) / "parts" / f"block-{block:06d}.json"


def done_path(work: Path, shard: int) -> Path:
    """The marker of a finished shard (the Snakemake workflow's output of a shard job)."""
    return Path(work) / "done" / f"shard-{shard:04d}.json"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def block_record(plan: CohortPlan, work: Path, block: int) -> dict | None:
    """Block ``block``'s record if the block is finished for this plan, else ``None``."""
    path = record_path(work, block)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    part = part_path(work, block)
    start, stop = plan.blocks[block]
    if record.get("plan_sha256") != plan.hash or record.get("rows") != stop - start \
            or not part.is_file() or part.stat().st_size != record.get("bytes"):
        return None
    return record


def run_shard(plan: CohortPlan, work: Path, shard: int, model: BulkFormerModel, *,
              restart: bool = False, progress: ProgressFn | None = None) -> ShardOutcome:
    """Run shard ``shard`` of ``plan`` with ``model`` (the plan's), writing into ``work``.

    Finished blocks are skipped (``restart``: computed again). ``progress(done, total)`` counts
    the shard's samples, the skipped ones included.
    """
    blocks = plan.shard_blocks(shard)
    plan.check_model(model)
    todo = [b for b in blocks if restart or block_record(plan, work, b) is None]
    total = sum(plan.blocks[b][1] - plan.blocks[b][0] for b in blocks)
    done = total - sum(plan.blocks[b][1] - plan.blocks[b][0] for b in todo)
    if progress is not None:
        progress(done, total)
    if todo:
        runner = _BlockRunner(plan, model)
        reads = runner.source.iter_blocks([plan.block_positions(b) for b in todo])
        for block, raw in zip(todo, reads, strict=True):
            def step(batch_done: int, _total: int, base: int = done) -> None:
                if progress is not None:
                    progress(base + batch_done, total)

            frame, qc = runner.run(block, raw, progress=step)
            _write_block(plan, work, shard, block, frame, qc)
            done += len(frame)
            if progress is not None:
                progress(done, total)
    _write_json(done_path(work, shard), {"plan_sha256": plan.hash, "shard": shard, "blocks": list(blocks),
                                         "samples": total})
    return ShardOutcome(shard, len(todo), len(blocks) - len(todo), total)


class _BlockRunner:
    """The per-block pipeline, with everything cohort-level taken from the plan once."""

    def __init__(self, plan: CohortPlan, model: BulkFormerModel) -> None:
        from bulkformer import genes

        self.plan = plan
        self.model = model
        self.source = plan.open_input()
        self.mapping = genes.map_genes(self.source.gene_labels, id_type=plan.facts["genes"]["id_type_choice"])
        self.value_type = plan.facts["values"]["value"]
        self.lengths = None
        if self.value_type == "counts":
            from bulkformer.inputs._pipeline import _count_lengths

            self.lengths, _ = _count_lengths(SimpleNamespace(gene_lengths=self.source.gene_lengths), self.mapping,
                                             plan.facts["values"]["gene_lengths"])
        self.options = plan.options

    def run(self, block: int, raw: np.ndarray, *, progress: ProgressFn) -> tuple[pd.DataFrame, dict]:
        from bulkformer import genes
        from bulkformer.inputs import _normalise as normalise
        from bulkformer.inputs._align import align
        from bulkformer.inputs._qc import _sample_table

        start, stop = self.plan.blocks[block]
        ids = self.plan.sample_ids[start:stop]
        check_finite(raw, sample_ids=ids, gene_labels=self.source.gene_labels, name=self.source.path.name)
        normalise.check_values(raw, sample_ids=ids, gene_labels=self.source.gene_labels)
        normalise.check_value_type(raw, value_type=self.value_type)
        log_tpm = normalise.log1p_tpm(raw, value_type=self.value_type, lengths_bp=self.lengths)
        combined = genes.combine_duplicates(log_tpm, mapping=self.mapping, sample_ids=ids, keep=self.model.gene_ids)
        aligned = align(combined.table, gene_order=self.model.gene_ids)
        result = self.model.run(aligned.values, ids, self.options, progress=progress)
        if self.plan.facts["output"]["kind"] == "embeddings":
            from bulkformer.export import embedding_frame

            frame = embedding_frame(result, column_names=self.model.config.feature_names())
        else:
            from bulkformer.export import expression_values

            values, gene_ids = expression_values(result, measured_values=aligned.values, observed=aligned.observed,
                                                 mode=self.plan.facts["output"]["impute_mode"])
            frame = pd.DataFrame(values, index=pd.Index(list(ids), name="sample_id"), columns=list(gene_ids))
        per_sample = _sample_table(raw, sample_ids=ids, is_counts=self.value_type == "counts", aligned=aligned)
        qc = {column: per_sample[column].astype(float).tolist() for column in per_sample.columns}
        return frame, qc


def _write_block(plan: CohortPlan, work: Path, shard: int, block: int, frame: pd.DataFrame, qc: dict) -> None:
    """The part, then its record; each complete or absent (a full disk leaves the block unrecorded)."""
    from bulkformer.export import written_in_full

    part = part_path(work, block)
    with written_in_full(part) as tmp:
        frame.to_parquet(tmp, index=True)
    _write_json(record_path(work, block), {
        "plan_sha256": plan.hash, "shard": shard, "block": block, "rows": len(frame),
        "first": str(frame.index[0]), "last": str(frame.index[-1]),
        "bytes": part.stat().st_size, "sha256": file_sha256(part), "qc": qc})


def _write_json(path: Path, body: dict) -> None:
    from bulkformer.export import written_in_full

    with written_in_full(path) as tmp:
        tmp.write_text(json.dumps(body, allow_nan=True) + "\n", encoding="utf-8")
