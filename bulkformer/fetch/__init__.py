"""Getting the published models: the registry of what exists and the clients that fetch it.

``_registry`` is the one table of published models and Zenodo records; :mod:`.zenodo` is the
Zenodo client (resumable, md5-checked), ``_gdrive`` the Google Drive client for the v2
checkpoints, ``_published`` one published model with its family's gene table and graph.

Loaded lazily: the CLI's help and the registry need no torch.
"""

from __future__ import annotations

from bulkformer._lazy import exports

__all__, __getattr__, __dir__ = exports(__name__, {
    "_gdrive": ("fetch_drive_checkpoint", "check_checkpoint",),
    "_published": (
        "StartOutcome", "ModelFiles", "plan_model", "download_model", "PublishedChoice",
        "published_choices", "Fetch", "ModelFetcher", "FETCHER",
    ),
    "_registry": (
        "GENE_INFO_NAME", "ESM2_NAME", "DRIVE_VIEW_URL", "SourceKind", "ZenodoRecord", "V2_RECORD",
        "V1_RECORD", "RECORDS", "PublishedModel", "MODELS", "PRESETS", "preset_name", "get",
        "for_family", "names_text",
    ),
})
