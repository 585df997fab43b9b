"""Hierarchical VQ-VAE: per-level encoders/decoders and EMA codebooks."""

from .vqvae import VQVAE, VQVAEOutput

__all__ = ["VQVAE", "VQVAEOutput"]
