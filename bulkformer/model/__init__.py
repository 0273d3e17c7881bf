"""The BulkFormer network (plain ``nn.Module`` s) and its configuration."""

from bulkformer.model.bulkformer import BulkFormer
from bulkformer.model.config import PRESETS, BulkFormerConfig
from bulkformer.model.layers import MISSING

__all__ = ["BulkFormer", "BulkFormerConfig", "MISSING", "PRESETS"]
