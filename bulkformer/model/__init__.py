"""Stage 2, the model: the BulkFormer network, its checkpoints and its forward passes.

:class:`BulkFormerModel` is the object users hold (load, prepare, run, save); below it are plain
``nn.Module`` s (:class:`BulkFormer`), their configuration (:class:`BulkFormerConfig`), gene
graphs, checkpoint files, batched inference under :class:`RunOptions`, and training.

Loaded lazily: reading a config or the published shapes (``PRESETS``) needs no torch.

Modules: ``_config``, ``_layers``, ``_network``, ``_graph``, ``_checkpoint`` (published
state_dicts and our safetensors folders), ``_files`` (finding a model's files),
``_bulkformer_model`` (:class:`BulkFormerModel`), ``_run_options``, ``_inference``,
``_masking``, ``_training``, ``_speed`` (expected time per sample).
"""

from __future__ import annotations

from bulkformer._lazy import exports

__all__, __getattr__, __dir__ = exports(__name__, {
    "_bulkformer_model": ("InferenceResult", "BulkFormerModel"),
    "_files": ("PUBLISHED_FILES", "ModelParts", "load_parts", "read_gene_order", "find_file"),
    "_checkpoint": (
        "WEIGHTS_NAME", "CONFIG_NAME", "GRAPH_NAMES", "FORMAT_TAG", "read_state_dict",
        "infer_config", "build_module", "file_sha256", "SavedModelInfo", "save_pretrained",
        "check_model_folder", "SavedModel", "read_pretrained",
    ),
    "_config": (
        "Family", "PUBLISHED_GENE_COUNT", "MISSING", "V2_SAMPLE_FEATURES", "BulkFormerConfig",
    ),
    "_graph": ("GeneGraph", "load_graph", "build_coexpression_graph",),
    "_inference": (
        "COMPILE_NOTE", "ProgressFn", "InferenceCancelled", "choose_device", "resolve_precision",
        "flop_per_sample", "resolve_compile", "compiled_layers", "aggregate_genes",
        "check_aggregate", "BatchOutput", "ForwardPlan", "iter_forward", "auto_batch_size",
        "resolve_indices",
    ),
    "_layers": (
        "LayerRunner", "ExpressionEmbedding", "favor_attention", "Fp32FastAttention", "GraphBlock",
    ),
    "_masking": ("hidden_count",),
    "_network": ("BulkFormer",),
    "_run_options": ("RunOptions",),
    "_speed": ("expected_time_per_sample",),
    "_training": (
        "Cohort", "TrainingConfig", "EpochReport", "StepProgress", "TrainingResult",
        "mask_measured", "simulate_panels", "state_path_for", "train", "pearson",
    ),
    "bulkformer.fetch._registry": ("PRESETS",),
})
