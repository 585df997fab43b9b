"""How the lyric priors see the lyrics (spec §3.6, `LyricsMode`).

CROSS_ATTENTION (5b_lyrics): a separate causal lyrics encoder. `prime_prior` is an unconditioned
autoregressive transformer over the window's lyric tokens (so its output at i has seen tokens
< i only, and the window's last token never reaches the music); `prime_state_proj` and
`prime_state_ln` map its states to the music width — those are the keys/values (`encoder_kv`) of
the music transformer's CROSS layers — and `prime_x_out` reads next-character logits off them
for the prime loss. The modules are children of the Prior itself (their names are state-dict
prefixes), so this file builds them and states the computation over them.

MERGED (1b_lyrics): one sequence [lyric tokens | music tokens + n_vocab] over a joint vocabulary
of n_vocab + l_bins ids; the PRIME layers attend to its first `prime_attention_length` positions.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import TransformerConfig
from ..transformer.ops import Conv1D, LayerNorm
from .autoregressive import ConditionalAutoregressive2D

# -- CROSS_ATTENTION: the 5b_lyrics lyrics encoder ----------------------------------------------


def lyrics_encoder_modules(
    encoder: TransformerConfig, *, n_tokens: int, n_vocab: int, width: int, init_scale: float
) -> dict[str, nn.Module]:
    """The encoder's modules, by their reference names, in registration order."""
    return {
        "prime_prior": ConditionalAutoregressive2D(
            encoder, length=n_tokens, bins=n_vocab, y_cond=False, merged_decoder=False, only_encode=True
        ),
        "prime_state_proj": Conv1D(encoder.width, width, init_scale=encoder.init_scale),
        "prime_state_ln": LayerNorm(width),
        "prime_x_out": _linear_out(width, n_vocab, init_scale),
    }


def _linear_out(width: int, bins: int, init_scale: float) -> nn.Linear:
    out = nn.Linear(width, bins, bias=False)
    nn.init.normal_(out.weight, std=0.02 * init_scale)
    return out


def encoder_states(prime_prior: ConditionalAutoregressive2D, proj: Conv1D, ln: LayerNorm, lyrics: Tensor) -> Tensor:
    """lyrics (N, n_tokens) -> encoder_kv (N, n_tokens, W), float32: ln(proj(encoder(lyrics)))."""
    return ln(proj(prime_prior(lyrics)).float())


# -- MERGED: the 1b_lyrics single sequence ------------------------------------------------------


def prime_attention_length(n_tokens: int, blocks: int) -> int:
    """Keys a PRIME layer sees: the lyrics rounded up past a whole multiple of `blocks` (448 for 384 / 64)."""
    return (n_tokens // blocks + 1) * blocks


def merge_tokens(lyrics: Tensor, z: Tensor, n_vocab: int) -> Tensor:
    """lyrics (N, P) ids < n_vocab, music codes z (N, G) -> (N, P + G) over the joint vocabulary."""
    return torch.cat([lyrics, z + n_vocab], dim=1)


def merge_x_cond(x_cond: Tensor, n_tokens: int) -> Tensor:
    """Music conditioning (N, G, W) -> (N, P + G, W): the lyric positions get none (zeros)."""
    return torch.cat([x_cond.new_zeros(x_cond.shape[0], n_tokens, x_cond.shape[2]), x_cond], dim=1)


def music_codes(merged: Tensor, n_tokens: int, n_vocab: int) -> Tensor:
    """Merged tokens (N, P + G) -> music codes (N, G). A lyric id sampled at a music position (the
    model does not forbid it) becomes code 0, as the reference returns it (spec §4.2)."""
    return (merged[:, n_tokens:] - n_vocab).clamp(min=0)
