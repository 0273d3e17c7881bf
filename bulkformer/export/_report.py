"""What a run used and produced (:class:`RunFacts`), the notes every file of a run carries
(the demo model, low coverage), and the Markdown run report with its methods paragraph."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata

from bulkformer.choices import AGGREGATION

CITATION = ("Kang B, Fan R, Yi M, Cui C, Cui Q. A large-scale foundation model for bulk "
            "transcriptomes. bioRxiv (2025). doi:10.1101/2025.06.11.659222")
DEMO_NOTICE = ("DEMO model trained on SIMULATED data: these numbers show how BulkFormer Studio works and mean "
               "nothing biologically. Get the published model: 'bulkformer download model', or the app's "
               "Model page -> Get the published model.")
REPORTED_PACKAGES = (
    ("torch", "torch"), ("torch_geometric", "torch-geometric"), ("performer_pytorch", "performer-pytorch"),
    ("numpy", "numpy"), ("pandas", "pandas"), ("bulkformer", "bulkformer-studio"),
)


def file_notes(*, is_demo: bool, n_measured: int, n_model_genes: int) -> tuple[str, ...]:
    """What every result file of a run must say about it: the demo model, low coverage."""
    from bulkformer.inputs._qc import low_coverage_warning

    return tuple(note for note in (DEMO_NOTICE if is_demo else None,
                                   low_coverage_warning(n_measured, n_model_genes)) if note)


@dataclass(frozen=True)
class RunFacts:
    """What a run used and produced, for the report and for AnnData's ``uns``."""

    model_name: str
    model_checksum: str
    model_source: str
    is_demo: bool
    device: str
    aggregate: str
    batch_size: int | None
    precision: str
    n_samples: int
    n_genes: int
    qc_summary: tuple[str, ...]
    extra: tuple[tuple[str, str], ...] = ()
    #: Model genes the input measured (``None``: not recorded); under ``qc.LOW_COVERAGE`` the
    #: report opens with the low-coverage warning.
    n_measured_genes: int | None = None
    #: The imputation hold-out check's verdict and table summary (``holdout.Verdict.lines()``).
    holdout: tuple[str, ...] = ()

    @property
    def notes(self) -> tuple[str, ...]:
        """What every file of this run must say (:func:`file_notes`)."""
        if self.n_measured_genes is None:
            return (DEMO_NOTICE,) if self.is_demo else ()
        return file_notes(is_demo=self.is_demo, n_measured=self.n_measured_genes, n_model_genes=self.n_genes)


DEMO_WARNING = ("**These results come from a DEMO model trained on SIMULATED data.** They show how "
                "the app works and mean nothing biologically. Run `bulkformer download` to get the "
                "published BulkFormer weights and run the analysis again with them.")


def run_report(facts: RunFacts) -> str:
    """A Markdown record of a run: model, parameters, QC, versions, and a methods paragraph."""
    lines = ["# BulkFormer run report", "",
             f"Created {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.", ""]
    if facts.is_demo:
        lines += [DEMO_WARNING, ""]
    lines += [f"**Warning:** {note}\n" for note in facts.notes if note != DEMO_NOTICE]
    if facts.holdout:
        lines += ["## Imputation hold-out check", "", *(f"- {line}" for line in facts.holdout), ""]
    lines += [
        "## Model", "",
        f"- Model: {facts.model_name}{' (demo model, simulated data)' if facts.is_demo else ''}",
        f"- Weights checksum (sha256): `{facts.model_checksum}`",
        f"- Loaded from: `{facts.model_source}`",
        "",
        "## Parameters", "",
        f"- Device: {facts.device}",
        f"- Precision: {facts.precision}",
        f"- Batch size: {facts.batch_size if facts.batch_size is not None else 'automatic'}",
        f"- Gene aggregation for sample embeddings: {facts.aggregate}",
        f"- Samples: {facts.n_samples}",
        f"- Model genes: {facts.n_genes}",
        *(f"- {key}: {value}" for key, value in facts.extra),
        "",
        "## Input quality control", "",
        *(f"- {line}" for line in facts.qc_summary or ("(no QC summary recorded)",)),
        "",
        "## Software", "",
        *(f"- {name}: {version}" for name, version in package_versions()),
        "",
        "## Methods", "",
        methods_paragraph(facts),
        "",
    ]
    return "\n".join(lines)


def methods_paragraph(facts: RunFacts) -> str:
    """A paragraph to paste into a paper's methods section."""
    versions = dict(package_versions())
    model = ("a demonstration model trained on simulated data (not the published weights)"
             if facts.is_demo else f"the published BulkFormer {facts.model_name} weights")
    return (
        f"Sample and gene representations were computed with BulkFormer (Kang et al., 2025), a "
        f"foundation model for human bulk transcriptomes, using {model} (sha256 "
        f"{facts.model_checksum[:12]}…) in BulkFormer Studio {versions.get('bulkformer', '')} with "
        f"PyTorch {versions.get('torch', '')}. Expression values of {facts.n_samples} samples were "
        f"converted to log1p-transformed TPM (log(TPM + 1)) and aligned to the model's "
        f"{facts.n_genes} genes; genes not measured in the input were given the placeholder value "
        f"-10, which the model treats as missing and imputes. Sample embeddings were obtained from "
        f"the per-gene embeddings as {AGGREGATION.help(facts.aggregate)} ({facts.precision} precision, "
        f"{facts.device}).\n\n"
        f"Reference: {CITATION}."
    )


def package_versions() -> list[tuple[str, str]]:
    """Versions of Python and the packages a result depends on ('not installed' if absent)."""
    from bulkformer import __version__

    found = [("python", platform.python_version())]
    for label, dist in REPORTED_PACKAGES:
        try:
            found.append((label, importlib_metadata.version(dist)))
        except importlib_metadata.PackageNotFoundError:  # this package run from a source checkout
            found.append((label, __version__ if label == "bulkformer" else "not installed"))
    return found


def facts_dict(facts: RunFacts) -> dict[str, object]:
    """RunFacts as plain strings and numbers (h5ad can store those)."""
    return {
        "model_name": facts.model_name, "model_checksum": facts.model_checksum,
        "model_source": facts.model_source, "is_demo": int(facts.is_demo), "device": facts.device,
        "batch_size": -1 if facts.batch_size is None else facts.batch_size, "precision": facts.precision,
        "n_samples": facts.n_samples, "n_genes": facts.n_genes, "qc_summary": "\n".join(facts.qc_summary),
        "notes": list(facts.notes), "holdout": "\n".join(facts.holdout),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **{f"extra_{k}".replace("/", "_"): v for k, v in facts.extra},
        **{f"version_{name}": version for name, version in package_versions()},
    }



def sidecar_report(name: str, info: object, facts: RunFacts | None = None) -> str:
    """The run-report sidecar of the file ``name`` (``<name>.report.md``): what the file holds
    and which way it runs, the notes about its run, then the whole run report when ``facts`` are
    known. ``info`` is the file's :class:`~bulkformer.export.FileInfo`."""
    contents = tuple(getattr(info, "contents", ()))
    notes = tuple(getattr(info, "notes", ()))
    lines = [f"# {name}", ""]
    if facts is not None and facts.is_demo or any(note == DEMO_NOTICE for note in notes):
        lines += [DEMO_WARNING, ""]
    if contents:
        lines += ["## What this file holds", "", *(f"- {line}" for line in contents), ""]
    shown = [note for note in notes if note != DEMO_NOTICE]
    if shown:
        lines += ["## Notes", "", *(f"- {note}" for note in shown), ""]
    if facts is not None:
        report = run_report(facts).split("\n", 1)[1]  # without its title: this file's name is the title
        lines += ["## Run", report.replace("\n## ", "\n### ").replace(DEMO_WARNING + "\n", "")]
    return "\n".join(lines).rstrip() + "\n"
