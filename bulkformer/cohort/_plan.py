"""The cohort plan: everything cohort-level decided once, before any model work.

Layout, gene-ID mapping, value type (detected once on the first samples, or given), gene-length
table, sample IDs (repeats renamed), model and its checksum, every run option (precision and
compile explicit, never ``auto``), blocks and shards, and a fingerprint of the input. Written to a
work folder as ``plan.json`` (with its own sha256) and ``samples.tsv`` (each sample's ID and row
in the file). A block's numbers depend only on its samples and the plan, so any split of the
cohort into shards gives the same result, and a rerun can tell finished work from work to do.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bulkformer.cohort._blocks import CohortSource, check_finite, open_source
from bulkformer.errors import BulkFormerError, InputError

if TYPE_CHECKING:
    from bulkformer.model import BulkFormerModel, RunOptions

PLAN_NAME = "plan.json"
SAMPLES_NAME = "samples.tsv"
FORMAT_TAG = "bulkformer-cohort-plan/1"
#: Samples per block when ``chunk`` is not given (lowered to fit the cell budget).
DEFAULT_CHUNK = 1000
#: What a cohort run writes: one embedding per sample, or expression for every model gene.
OUTPUTS = ("embeddings", "expression")
_DETECT_ROWS = 256  # samples looked at to decide the value type, as prepare() looks at
_FINGERPRINT_BYTES = 1 << 20


@dataclass(frozen=True)
class CohortPlan:
    """A cohort's plan (see the module notes).

    ``facts``: the JSON-able decisions (input, genes, values, model, options, QC lines);
    ``sample_ids`` (unique) and ``positions`` (row of each in the file), in file order;
    ``blocks``: sample ranges ``[start, stop)`` over ``sample_ids``; ``shards``: block ranges.
    """

    facts: dict[str, Any]
    sample_ids: tuple[str, ...]
    positions: tuple[int, ...]
    blocks: tuple[tuple[int, int], ...]
    shards: tuple[tuple[int, int], ...]

    @property
    def hash(self) -> str:
        """sha256 of everything the plan decides (facts, samples, blocks, shards)."""
        return _digest({"facts": self.facts, "samples": _digest([self.sample_ids, self.positions]),
                        "blocks": self.blocks, "shards": self.shards})

    @property
    def n_samples(self) -> int:
        return len(self.sample_ids)

    @property
    def options(self) -> RunOptions:
        from bulkformer.model import RunOptions

        return RunOptions(**self.facts["options"])

    @property
    def input_path(self) -> Path:
        return Path(self.facts["input"]["path"])

    def shard_blocks(self, shard: int) -> range:
        """Block indices of shard ``shard``; an index out of range is refused."""
        if not 0 <= shard < len(self.shards):
            raise BulkFormerError(
                f"Shard {shard} does not exist: this plan has {len(self.shards)} shard(s), numbered 0 to "
                f"{len(self.shards) - 1}.", hint="Give --shard between 0 and the number of shards - 1.")
        return range(*self.shards[shard])

    def block_positions(self, block: int) -> np.ndarray:
        """File positions (rows) of block ``block``'s samples, increasing."""
        start, stop = self.blocks[block]
        return np.asarray(self.positions[start:stop], dtype=np.int64)

    def open_input(self) -> CohortSource:
        """The input file, checked against the plan: a changed file is refused."""
        path = self.input_path
        if not path.is_file():
            raise InputError(f"The plan's input {path} is not there.",
                             hint="Run where the input file is, or make the plan again (--restart).")
        if fingerprint(path) != self.facts["input"]["fingerprint"]:
            raise InputError(f"{path.name} changed since the plan was made (size or content differ).",
                             hint="Make the plan again with --restart: finished blocks belong to the old file.")
        source = open_source(path, orientation=self.facts["orientation"]["value"])
        if _digest(list(source.gene_labels)) != self.facts["genes"]["labels_sha256"]:
            raise InputError(f"The genes of {path.name} are not those the plan was made for.",
                             hint="Make the plan again with --restart.")
        return source

    def check_model(self, model: BulkFormerModel) -> None:
        """Refuse a model other than the plan's (another checkpoint gives other numbers)."""
        if model.checksum != self.facts["model"]["checksum"]:
            raise BulkFormerError(
                f"The model loaded ({model.name}, sha256 {model.checksum[:12]}…) is not the plan's "
                f"({self.facts['model']['name']}, {self.facts['model']['checksum'][:12]}…).",
                hint="Use the plan's model (--model as in the plan), or make the plan again with --restart.")


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def fingerprint(path: Path) -> dict[str, Any]:
    """A quick fingerprint of a (possibly huge) file: its size and the sha256 of its first and last
    MiB. Not its modification time, which changes when a file is copied to a cluster."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        digest.update(handle.read(_FINGERPRINT_BYTES))
        if size > _FINGERPRINT_BYTES:
            handle.seek(max(_FINGERPRINT_BYTES, size - _FINGERPRINT_BYTES))
            digest.update(handle.read(_FINGERPRINT_BYTES))
    return {"bytes": size, "head_tail_sha256": digest.hexdigest()}


def unique_ids(ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Sample IDs made unique: the second ``X`` becomes ``X-2`` (and so on, skipping names taken);
    an empty ID becomes ``sample_<row>``. Returns the IDs and a line per kind of rename."""
    taken = set(ids)
    seen: dict[str, int] = {}
    out: list[str] = []
    renamed: list[str] = []
    empty = 0
    for row, name in enumerate(ids):
        if not str(name).strip():
            name = f"sample_{row + 1}"
            empty += 1
        if name in seen:
            k = seen[name] + 1
            while f"{name}-{k}" in taken:
                k += 1
            seen[name] = k
            new = f"{name}-{k}"
            taken.add(new)
            renamed.append(f"{name} → {new}")
            out.append(new)
        else:
            seen[name] = 1
            out.append(name)
    notes = ([(f"{len(renamed):,} repeated sample ID(s) were renamed: {', '.join(renamed[:5])}"
               f"{' …' if len(renamed) > 5 else ''}.")] if renamed else []) \
        + ([f"{empty:,} sample(s) without an ID were named sample_<row>."] if empty else [])
    return out, notes


def make_plan(
    input_path: Path,
    *,
    model: BulkFormerModel,
    model_spec: str,
    options: RunOptions,
    output: str = "embeddings",
    impute_mode: str = "filled",
    samples: Sequence[str] | None = None,
    chunk: int | None = None,
    n_shards: int = 1,
    value_type: str = "auto",
    id_type: str = "auto",
    orientation: str = "auto",
) -> CohortPlan:
    """Decide the plan for ``input_path``; nothing is written (:func:`write_plan` does).

    Parameters
    ----------
    input_path
        The cohort file (samples-as-rows CSV/TSV or Parquet, h5ad, ARCHS4 HDF5; other tables are
        read whole, within the cell budget).
    model, model_spec
        The loaded model and how it was named (``"demo"``, ``"147M"``, a path): shards load it again.
    options
        Run options; ``precision`` and ``compile`` must be explicit (not ``"auto"``).
    output
        ``"embeddings"`` or ``"expression"`` (see :data:`OUTPUTS`); ``impute_mode`` for the latter.
    samples
        Sample IDs to keep (file order is kept); ``None``: all.
    chunk
        Samples per block (default :data:`DEFAULT_CHUNK`, lowered to fit the cell budget).
    n_shards
        Shards the blocks are split into (jobs that may run on different machines).
    """
    from bulkformer import genes
    from bulkformer.choices import ID_TYPE, IMPUTE_MODE, ORIENTATION, VALUE_TYPE
    from bulkformer.inputs import _normalise as normalise
    from bulkformer.inputs._align import AlignedMatrix, require_enough_genes
    from bulkformer.io import max_cells

    VALUE_TYPE.check(value_type, error=InputError)
    ID_TYPE.check(id_type, error=InputError)
    ORIENTATION.check(orientation, error=InputError)
    IMPUTE_MODE.check(impute_mode, error=InputError)
    if output not in OUTPUTS:
        raise BulkFormerError(f"Unknown cohort output {output!r}.", hint=f"Use one of {', '.join(OUTPUTS)}.")
    for name, value in (("precision", options.precision), ("compile", options.compile)):
        if value == "auto":
            raise BulkFormerError(f"A cohort plan fixes {name}: 'auto' could choose differently on each machine.",
                                  hint=f"Give --{name} explicitly.")
    if n_shards < 1:
        raise BulkFormerError("The number of shards must be at least 1.", hint="Give --shards 1 or more.")
    input_path = Path(input_path).resolve()
    source = open_source(input_path, orientation=orientation)
    positions, source_ids = _select(source, samples)
    sample_ids, rename_notes = unique_ids(source_ids)
    n_labels = len(source.gene_labels)

    budget_rows = max(1, max_cells() // max(1, n_labels) - 1)
    if chunk is not None and chunk < 1:
        raise BulkFormerError("--chunk must be at least 1 sample.", hint="Give a positive number of samples per block.")
    if chunk is not None and chunk > budget_rows:
        raise InputError(f"A block of {chunk:,} samples × {n_labels:,} genes is more than the "
                         f"{max_cells():,} cells read at once.",
                         hint=f"Give --chunk {budget_rows:,} or less.")
    block_size = chunk or min(DEFAULT_CHUNK, budget_rows)

    mapping = genes.map_genes(source.gene_labels, id_type=id_type)
    observed = np.isin(np.asarray(model.gene_ids, dtype=object),
                       np.asarray([g for g in mapping.ensg_ids if g is not None], dtype=object))
    require_enough_genes(AlignedMatrix(np.zeros((0, len(model.gene_ids)), np.float32), (), model.gene_ids,
                                       observed))

    head_positions = np.asarray(positions[:_DETECT_ROWS], dtype=np.int64)
    head = next(source.iter_blocks([head_positions]))
    check_finite(head, sample_ids=sample_ids, gene_labels=source.gene_labels, name=input_path.name)
    normalise.check_values(head, sample_ids=sample_ids[:_DETECT_ROWS], gene_labels=source.gene_labels)
    if value_type != "auto":
        normalise.check_value_type(head, value_type=value_type)
        values_guess = {"value": value_type, "reason": "chosen by you"}
    else:
        guess = source.value_hint or normalise.detect_value_type(head)
        values_guess = {"value": guess.value, "reason": f"{guess.reason} (decided once, on the first "
                                                       f"{len(head_positions):,} samples)"}
    warning = normalise.value_type_warning(head, value_type) if value_type != "auto" else ""
    lengths_note = ""
    if values_guess["value"] == "counts":
        from types import SimpleNamespace

        from bulkformer.inputs._pipeline import _count_lengths

        _, lengths_note = _count_lengths(SimpleNamespace(gene_lengths=source.gene_lengths), mapping,
                                         model.gene_lengths)

    blocks = tuple((start, min(start + block_size, len(sample_ids)))
                   for start in range(0, len(sample_ids), block_size))
    shards = _shards(len(blocks), n_shards)
    duplicated = pd.Series([g for g in mapping.ensg_ids if g is not None]).duplicated().sum()
    facts = {
        "format": FORMAT_TAG,
        "input": {"path": str(input_path), "format": source.source_format, "streamed": source.streamed,
                  "fingerprint": fingerprint(input_path)},
        "orientation": {"value": source.layout.value, "reason": source.layout.reason},
        "genes": {"n_labels": n_labels, "labels_sha256": _digest(list(source.gene_labels)),
                  "id_type_choice": id_type, "id_type": mapping.id_type.value, "id_type_reason": mapping.id_type.reason,
                  "n_mapped": mapping.n_mapped, "n_model_genes": len(model.gene_ids),
                  "n_model_genes_measured": int(observed.sum()), "n_merged_rows": int(duplicated),
                  "unmapped_examples": list(mapping.unmapped_labels[:5]),
                  "ignored_columns": list(source.ignored_columns[:20]),
                  # only when there are some: plans of tables without counters keep their hash
                  **({"counter_labels": list(source.counter_labels)} if source.counter_labels else {})},
        "values": {**values_guess, "warning": warning, "gene_lengths": model.gene_lengths, "lengths_note": lengths_note},
        "samples": {"n": len(sample_ids), "selected": samples is not None, "notes": rename_notes},
        "model": {"spec": str(model_spec), "name": model.name, "checksum": model.checksum,
                  "is_demo": bool(model.is_demo), "n_genes": len(model.gene_ids)},
        "output": {"kind": output, "impute_mode": impute_mode},
        "options": options.as_dict(),
        "block_size": block_size,
    }
    return CohortPlan(facts, tuple(sample_ids), tuple(int(p) for p in positions), blocks, shards)


def _select(source: CohortSource, samples: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    """File positions and IDs of the samples to run, in file order."""
    ids = pd.Index(source.sample_ids)
    if not len(ids):
        raise InputError(f"{source.path.name} holds no samples.", hint="Give a table with at least one sample.")
    if samples is None:
        return np.arange(len(ids)), list(source.sample_ids)
    wanted = pd.Index(list(dict.fromkeys(str(s).strip() for s in samples if str(s).strip())))
    if not len(wanted):
        raise InputError("The sample list is empty.", hint="Give one sample ID per line.")
    missing = wanted[~wanted.isin(ids)]
    if len(missing):
        raise InputError(f"{len(missing):,} sample(s) of the list are not in {source.path.name}: "
                         f"{', '.join(map(repr, missing[:5]))}.",
                         hint="Check the IDs (for ARCHS4: GSM accessions, one per line).")
    positions = np.flatnonzero(ids.isin(wanted))
    return positions, [source.sample_ids[i] for i in positions]


def _shards(n_blocks: int, n_shards: int) -> tuple[tuple[int, int], ...]:
    """Blocks split into ``n_shards`` runs of consecutive blocks, as even as whole blocks allow."""
    if n_shards > n_blocks:
        raise BulkFormerError(f"{n_shards} shards need at least {n_shards} blocks, but the cohort makes "
                              f"{n_blocks}.", hint="Give fewer --shards, or a smaller --chunk.")
    sizes = [len(part) for part in np.array_split(np.arange(n_blocks), n_shards)]
    edges = np.cumsum([0, *sizes])
    return tuple((int(a), int(b)) for a, b in itertools.pairwise(edges))


def write_plan(plan: CohortPlan, work: Path, *, restart: bool = False) -> bool:
    """Write ``plan`` into ``work``; returns ``False`` if the same plan is there already.

    A *different* plan already in ``work`` is refused (its finished blocks would be mixed with
    new ones) unless ``restart``, which removes the old plan and everything it made.
    """
    from bulkformer.export import written_in_full

    work = Path(work)
    existing = work / PLAN_NAME
    if existing.exists():
        try:
            old = read_plan(work)
        except BulkFormerError:
            old = None
        if old is not None and old.hash == plan.hash:
            return False
        if not restart:
            raise BulkFormerError(
                f"{work} holds the plan of another run (another input, model, option or sample list).",
                hint="Rerun with --restart to start over (its finished blocks are deleted), or choose "
                     "another work folder.")
        clear_work(work)
    body = {**plan.facts, "plan_sha256": plan.hash, "blocks": plan.blocks, "shards": plan.shards}
    with written_in_full(work / SAMPLES_NAME) as tmp:
        pd.DataFrame({"sample_id": plan.sample_ids, "row": plan.positions}).to_csv(tmp, sep="\t", index=False)
    with written_in_full(existing) as tmp:
        tmp.write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return True


def clear_work(work: Path) -> None:
    """Remove what a cohort run wrote in ``work`` (plan, samples, parts, records); nothing else."""
    import shutil

    for name in ("parts", "done"):
        shutil.rmtree(work / name, ignore_errors=True)
    for name in (PLAN_NAME, SAMPLES_NAME, "qc_samples.csv", "report.md"):
        (work / name).unlink(missing_ok=True)


def read_plan(work: Path) -> CohortPlan:
    """The plan in ``work``, checked against its own hash (a hand-edited plan is refused)."""
    work = Path(work)
    path = work / PLAN_NAME
    if not path.is_file():
        raise BulkFormerError(f"There is no cohort plan in {work}.",
                              hint="Make one first: bulkformer plan INPUT WORK_FOLDER.")
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        table = pd.read_csv(work / SAMPLES_NAME, sep="\t", dtype={"sample_id": str}, keep_default_na=False)
        facts = {k: v for k, v in body.items() if k not in ("plan_sha256", "blocks", "shards")}
        plan = CohortPlan(facts, tuple(table["sample_id"].astype(str)), tuple(int(x) for x in table["row"]),
                          tuple(tuple(b) for b in body["blocks"]), tuple(tuple(s) for s in body["shards"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BulkFormerError(f"The cohort plan in {work} could not be read: {exc}.",
                              hint="Make the plan again with --restart.") from exc
    if body.get("format") != FORMAT_TAG or plan.hash != body.get("plan_sha256"):
        raise BulkFormerError(f"The cohort plan in {work} does not match its own checksum (edited by hand?).",
                              hint="Make the plan again with --restart.")
    return plan
