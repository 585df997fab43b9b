"""The per-token loop of a sampling window on fixed buffers, replayed from a CUDA graph on the GPU.

A Jukebox step is ~30 small kernels per layer, 2,000–2,500 in all: launched one by one from Python
they cost 10–25 ms, far above the 0.5–3.6 ms it takes an H100 to read the weights once
(docs/perf-anchors.md §4.3). So the step — the prior's position-independent `step`, the token draw
from pre-drawn Gumbel noise, writing the token and advancing the position — runs on buffers whose
addresses and shapes never change: the KV cache, the conditioning, the token fed, the position (a
device scalar), the noise and the output tokens. On CUDA it is captured once as a graph and each
token is one `replay()`; elsewhere (and when logits are kept) the same function runs eagerly.
With `compile`, the step is first compiled whole by `torch.compile` (fullgraph, static shapes), which
fuses its ~30 small kernels per layer (norms, activations, residuals, masks) before the graph
captures them; it costs a compilation per decoder (about a minute on a CPU for a tiny prior).

Nothing is read back per token. The host refills the noise every `noise_steps` tokens from each
row's generator and, on CUDA, waits at most for the block before last, so progress and cancel stay
within two blocks of the device.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..api import CancelToken
from ..prior.prior import DecoderInputs, Prior
from .logits import Generators, draw, gumbel_noise

NOISE_STEPS = 64  # tokens per noise refill (and per host check-in on CUDA)


@dataclass(frozen=True)
class DrawSettings:
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.0

    @property
    def shape_key(self) -> tuple[int, bool]:
        """What a captured step is built for: top-k's k is a shape; temperature and top-p are device values."""
        return self.top_k, self.top_p > 0


def _same_shape(a: Tensor | None, b: Tensor | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape


class WindowDecoder:
    """Fixed buffers for one prior at one batch size and draw settings; reusable across windows."""

    def __init__(
        self,
        prior: Prior,
        inputs: DecoderInputs,
        batch: int,
        draw_settings: DrawSettings,
        *,
        device: torch.device,
        graph: bool | None = None,
        compile: bool = False,
        noise_steps: int = NOISE_STEPS,
    ):
        self.prior, self.model, self.shape_key = prior, prior.prior, draw_settings.shape_key
        self.batch, self.device, self.noise_steps = batch, device, noise_steps
        dtype = self.model.compute_dtype
        self.cache = prior.empty_cache(batch, dtype=dtype, device=device)
        self.x_cond = None if inputs.x_cond is None else torch.zeros_like(inputs.x_cond, dtype=dtype)
        self.y_cond = None if inputs.y_cond is None else torch.zeros_like(inputs.y_cond, dtype=dtype)
        self.has_encoder = inputs.encoder_kv is not None
        self.fed = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.position = torch.zeros((), dtype=torch.long, device=device)
        self.tokens = torch.zeros(batch, self.model.length, dtype=torch.long, device=device)
        self.noise = torch.zeros(batch, noise_steps, self.model.bins, device=device)
        self.noise_index = torch.zeros((), dtype=torch.long, device=device)
        self.inv_temperature = torch.ones((), device=device)
        self.top_p = torch.zeros((), device=device)
        self.logits: Tensor | None = None
        self._step = torch.compile(self._advance, fullgraph=True, dynamic=False) if compile else self._advance
        use_graph = device.type == "cuda" if graph is None else graph
        if use_graph and device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device")
        self.graph = self._capture() if use_graph else None

    def fits(self, inputs: DecoderInputs, batch: int, draw_settings: DrawSettings) -> bool:
        return (
            batch == self.batch
            and draw_settings.shape_key == self.shape_key
            and _same_shape(inputs.x_cond, self.x_cond)
            and _same_shape(inputs.y_cond, self.y_cond)
            and (inputs.encoder_kv is not None) == self.has_encoder
        )

    # -- the step -----------------------------------------------------------------------------

    def _advance(self) -> Tensor:
        """One token for every row, entirely on the device."""
        logits = self.model.step(self.fed, self.position, cache=self.cache, x_cond=self.x_cond, y_cond=self.y_cond)
        noise = self.noise.index_select(1, self.noise_index.view(1))[:, 0]
        top_k, nucleus = self.shape_key
        token = draw(logits, noise, scale=self.inv_temperature, top_k=top_k, top_p=self.top_p if nucleus else None)[
            :, None
        ]
        self.tokens.index_copy_(1, self.position.view(1), token)
        self.fed.copy_(token)
        self.position.add_(1)
        self.noise_index.add_(1)
        return logits

    @torch.no_grad()
    def _capture(self) -> torch.cuda.CUDAGraph:
        """Warm up on a side stream (as torch.cuda.graphs asks), then record one step."""
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._step()
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.logits = self._step()
        torch.cuda.synchronize(self.device)
        return graph  # the warm-up and capture steps wrote buffers: `run` resets every one it reads

    # -- a window -----------------------------------------------------------------------------

    @torch.no_grad()
    def run(
        self,
        inputs: DecoderInputs,
        prefix: Tensor,
        length: int,
        draw_settings: DrawSettings,
        *,
        generator: Generators,
        chunk_size: int,
        keep_logits: bool = False,
        on_token: Callable[[int, int], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Extend prefix (N, k) to `length` tokens -> (tokens (N, ≤ length), logits (N, L', V) or None)."""
        n, k = prefix.shape
        model = self.model
        if draw_settings.shape_key != self.shape_key:
            raise ValueError(f"this decoder was built for top_k/top-p {self.shape_key}, not {draw_settings.shape_key}")
        self.inv_temperature.fill_(1.0 / draw_settings.temperature)
        self.top_p.fill_(draw_settings.top_p)
        for c in self.cache:
            c.k.zero_()
            c.v.zero_()
        for buf, src in ((self.x_cond, inputs.x_cond), (self.y_cond, inputs.y_cond)):
            if buf is not None and src is not None:
                buf.copy_(src)
        if inputs.encoder_kv is not None and k == 0:  # a prefill (from position 0) projects them itself
            model.project_encoder(self.cache, inputs.encoder_kv)
        kept: list[Tensor] = []

        # prefill: positions [0, k) are fed [start, prefix[0], …, prefix[k − 2]]
        fed = torch.cat([prefix.new_zeros(n, 1), prefix[:, :-1]], dim=1) if k else prefix[:, :0]
        for start, stop in prefill_chunks(k, chunk_size, model.prefill_alignment):
            logits = model.forward_cached(
                fed[:, start:stop],
                start=start,
                cache=self.cache,
                x_cond=self.x_cond,
                y_cond=self.y_cond,
                encoder_kv=inputs.encoder_kv,
            )
            if keep_logits:
                kept.append(logits.float())

        self.tokens[:, :k] = prefix
        self.fed.copy_(prefix[:, -1:] if k else prefix.new_zeros(n, 1))
        self.position.fill_(k)
        graph = None if keep_logits else self.graph
        in_flight: deque[torch.cuda.Event] = deque()
        done = k
        for position in range(k, length):
            if cancel is not None and cancel.is_set():
                break
            if (position - k) % self.noise_steps == 0:
                self._refill(generator, in_flight)
            if graph is not None:
                graph.replay()
            else:
                logits = self._step()
                if keep_logits:
                    kept.append(logits[:, None].float())
            done = position + 1
            if on_token is not None:
                on_token(done - k, length - k)
        tokens = self.tokens[:, :done].clone()
        return tokens, (torch.cat(kept, dim=1)[:, :done] if keep_logits and kept else None)

    def _refill(self, generator: Generators, in_flight: deque) -> None:
        if self.device.type == "cuda":  # bound the host's lead to two noise blocks
            event = torch.cuda.Event()
            event.record()
            in_flight.append(event)
            if len(in_flight) > 2:
                in_flight.popleft().synchronize()
        gumbel_noise(self.batch, self.noise_steps, self.model.bins, generator=generator, out=self.noise)
        self.noise_index.zero_()


def prefill_chunks(k: int, chunk_size: int, block_ctx: int) -> list[tuple[int, int]]:
    """[start, stop) passes over k context positions, at most chunk_size each. The first, from position 0,
    takes the attention's cache-free path over whole blocks of `block_ctx` (the model's
    `prefill_alignment`): when it would cover the whole context but end inside a block, it stops at the
    last block boundary and the rest is a second pass."""
    first = min(k, chunk_size)
    if first == k and k % block_ctx and k > block_ctx:
        first = k - k % block_ctx
    bounds = [(0, first)] if first else []
    bounds += [(s, min(s + chunk_size, k)) for s in range(first, k, chunk_size)]
    return bounds


class DecoderPool:
    """Keeps window decoders (buffers, CUDA graph, compiled step) per level and batch size, so later windows
    and, when kept across runs, later jobs replay them instead of capturing or compiling again. At most
    `limit` are held (their KV caches are the memory); the least recently used goes first."""

    def __init__(self, *, graph: bool | None = None, compile: bool = False, limit: int = 4):
        self.graph, self.compile, self.limit = graph, compile, limit
        self._decoders: dict[tuple, WindowDecoder] = {}

    def get(
        self, prior: Prior, inputs: DecoderInputs, batch: int, settings: DrawSettings, device: torch.device
    ) -> WindowDecoder:
        key = (id(prior), batch, settings.shape_key)
        found = self._decoders.pop(key, None)
        if found is not None and not found.fits(inputs, batch, settings):
            found = None  # its buffers are freed before the new ones are made
        while len(self._decoders) >= self.limit:
            self._decoders.pop(next(iter(self._decoders)))
        if found is None:
            found = WindowDecoder(prior, inputs, batch, settings, device=device, graph=self.graph, compile=self.compile)
        self._decoders[key] = found  # most recently used last
        return found

    def clear(self) -> None:
        self._decoders.clear()
