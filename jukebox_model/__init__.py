"""OpenAI Jukebox re-implemented from its specification, loading the official checkpoints."""

from .config import AttnType, ConditionerConfig, LabelConfig, LyricsMode, PriorConfig, TransformerConfig, VQVAEConfig

__all__ = [
    "AttnType",
    "ConditionerConfig",
    "LabelConfig",
    "LyricsMode",
    "PriorConfig",
    "TransformerConfig",
    "VQVAEConfig",
]
