"""EMA codebook learning: initialisation, EMA moves, dead-code restarts, restore, eval immutability,
and the multi-process sync of codebook statistics."""

from __future__ import annotations

import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from jukebox_model.vqvae.bottleneck import Bottleneck, BottleneckBlock


def _batch(n: int, t: int, w: int, centres: torch.Tensor) -> torch.Tensor:
    picks = centres[torch.randint(len(centres), (n * t,))]
    return (picks + 0.01 * torch.randn_like(picks)).view(n, t, w).permute(0, 2, 1)


def test_first_training_batch_initialises_codebook_from_batch_vectors():
    torch.manual_seed(0)
    block = BottleneckBlock(8, 4, mu=0.9)
    x = torch.randn(2, 4, 16)
    block(x, update_k=True)
    assert block.initialised
    assert block.k.abs().sum() > 0


def test_ema_pulls_used_codes_towards_their_assigned_means():
    torch.manual_seed(0)
    centres = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    block = BottleneckBlock(4, 4, mu=0.5)
    block.k.copy_(centres + 0.3)
    block.restore_k()
    for _ in range(30):
        block(_batch(4, 32, 4, centres), update_k=True)
    nearest = torch.cdist(centres, block.k).min(dim=1).values
    assert (nearest < 0.05).all()


def test_dead_codes_are_restarted_from_batch_vectors():
    torch.manual_seed(0)
    centres = torch.randn(3, 4) * 5
    block = BottleneckBlock(6, 4, mu=0.5)
    block.k.copy_(100.0 + 10 * torch.arange(6.0)[:, None].expand(6, 4))  # far from the data, code 0 nearest
    block.restore_k()
    q = block(_batch(2, 64, 4, centres), update_k=True)
    used = torch.zeros(6, dtype=torch.bool)
    used[q.codes.unique()] = True
    assert used.sum() == 1  # everything lands on one far code, which the EMA moves towards the data
    near_data = torch.cdist(block.k, centres).min(dim=1).values < 1
    assert near_data[~used].all()  # every code that got no vectors was restarted onto a data vector
    assert q.metrics["used_curr"] == 1 and q.metrics["usage"] == 1


def test_usage_counts_live_codes():
    torch.manual_seed(0)
    centres = torch.eye(4)
    block = BottleneckBlock(4, 4, mu=0.0)
    block.k.copy_(centres)
    block.restore_k()
    metrics = block(_batch(1, 400, 4, centres[:2]), update_k=True).metrics
    assert metrics["usage"] == 2


def test_restore_k_rebuilds_ema_state_from_expected_usage():
    block = BottleneckBlock(4, 2, mu=0.99)
    block.k.copy_(torch.arange(8.0).view(4, 2))
    block.restore_k(num_tokens=400, threshold=2.0)
    assert torch.equal(block.k_elem, torch.full((4,), 100.0))
    assert torch.equal(block.k_sum, block.k * 100)
    assert block.threshold == 2.0


def test_without_update_the_codebook_is_unchanged_and_output_is_nearest_code():
    torch.manual_seed(0)
    block = BottleneckBlock(5, 3, mu=0.9)
    block.k.copy_(torch.randn(5, 3))
    before = block.k.clone()
    x = torch.randn(2, 3, 7)
    q = block(x, update_k=False)
    assert torch.equal(block.k, before)
    flat = x.permute(0, 2, 1).reshape(-1, 3)
    assert torch.equal(q.codes.view(-1), torch.cdist(flat, before).argmin(dim=1))
    torch.testing.assert_close(q.vectors, block.decode(q.codes))


def test_straight_through_estimator_passes_gradients_to_the_encoder():
    block = BottleneckBlock(5, 3, mu=0.9)
    block.k.copy_(torch.randn(5, 3))
    x = torch.randn(1, 3, 4, requires_grad=True)
    q = block(x, update_k=False)
    q.vectors.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))


def test_codes_are_chosen_in_float32_under_autocast():
    torch.manual_seed(0)
    block = BottleneckBlock(64, 8, mu=0.9)
    block.k.copy_(torch.randn(64, 8) * 0.3 + 4.0)  # norms ~11: bf16 cannot tell these codes apart, float32 can
    x = (block.k[torch.randint(64, (40,))] + 0.01 * torch.randn(40, 8)).T.reshape(1, 8, 40)
    expected = torch.cdist(x[0].T.double(), block.k.double()).argmin(dim=1)[None]  # independent float64 answer
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        assert torch.equal(block.encode(x), expected)
        assert torch.equal(block(x, update_k=False).codes, expected)


def test_entropy_and_codebook_change_metrics():
    torch.manual_seed(0)
    centres = torch.eye(4)
    block = BottleneckBlock(4, 4, mu=0.5)
    block.k.copy_(centres)
    block.restore_k(num_tokens=400)
    x = torch.cat([centres[:2].repeat(8, 1), centres[:2].repeat(8, 1) + 0.2]).T.reshape(1, 4, 32)
    before = block.k.clone()
    metrics = block(x, update_k=True).metrics
    # two codes, used equally
    torch.testing.assert_close(metrics["entropy"], torch.tensor(math.log(2)), rtol=1e-5, atol=1e-6)
    assert metrics["used_curr"] == 2 and metrics["usage"] == 4  # EMA counts of 100 keep the unused codes alive
    dk = torch.linalg.vector_norm(block.k - before) / math.sqrt(before.numel())
    assert dk > 0
    torch.testing.assert_close(metrics["dk"], dk)
    assert set(metrics) >= {"fit", "pn", "entropy", "usage", "dk"}


def test_bottleneck_in_eval_mode_leaves_codebooks_alone_and_detaches():
    torch.manual_seed(0)
    bottleneck = Bottleneck(6, 3, mu=0.9, levels=2).eval()
    for block in bottleneck.level_blocks:
        block.k.copy_(torch.randn(6, 3))
    before = [block.k.clone() for block in bottleneck.level_blocks]
    xs = [torch.randn(2, 3, 8, requires_grad=True), torch.randn(2, 3, 4, requires_grad=True)]
    out = bottleneck(xs)
    assert all(not block.initialised for block in bottleneck.level_blocks)  # no init_k from the batch either
    for q, x, k, block in zip(out, xs, before, bottleneck.level_blocks):
        assert torch.equal(block.k, k)
        assert not q.vectors.requires_grad
        torch.testing.assert_close(q.vectors, block.decode(q.codes))
        assert torch.equal(q.codes, block.encode(x))
        assert set(q.metrics) == {"fit", "pn"}


def test_training_mode_initialises_each_level_from_its_own_batch():
    torch.manual_seed(0)
    bottleneck = Bottleneck(8, 3, mu=0.9, levels=2).train()
    xs = [torch.randn(1, 3, 16), 50 + torch.randn(1, 3, 16)]
    bottleneck(xs)
    assert all(block.initialised for block in bottleneck.level_blocks)
    assert bottleneck.level_blocks[0].k.abs().max() < 10 and bottleneck.level_blocks[1].k.min() > 40


# -- multi-process sync (gloo, CPU) ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_batches(world_size: int) -> torch.Tensor:
    """Different data per rank, the same on every process: (world, N, W, T)."""
    g = torch.Generator().manual_seed(7)
    return torch.randn(world_size, 2, 4, 24, generator=g)


def _known_codebook() -> torch.Tensor:
    return torch.randn(5, 4, generator=torch.Generator().manual_seed(8))


def _sync_worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        batches = _rank_batches(world_size)
        torch.manual_seed(100 + rank)  # each rank draws different restart vectors; rank 0's must win

        fresh = BottleneckBlock(5, 4, mu=0.9)
        fresh(batches[rank], update_k=True)  # init_k, then an update that restarts codes

        restored = BottleneckBlock(5, 4, mu=0.9)
        restored.k.copy_(_known_codebook())
        restored.restore_k(num_tokens=5 * 1000)  # every code stays alive: no restarts
        restored(batches[rank], update_k=True)
        torch.save({"fresh": fresh.k.clone(), "restored": restored.k.clone()}, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_share_codebook_statistics_and_restart_vectors(tmp_path):
    world_size = 2
    mp.spawn(_sync_worker, args=(world_size, _free_port(), str(tmp_path)), nprocs=world_size, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world_size)]

    assert torch.equal(ranks[0]["fresh"], ranks[1]["fresh"])  # broadcast init and restart vectors
    assert torch.equal(ranks[0]["restored"], ranks[1]["restored"])

    # The synced update equals one process updating on both ranks' data at once.
    single = BottleneckBlock(5, 4, mu=0.9)
    single.k.copy_(_known_codebook())
    single.restore_k(num_tokens=5 * 1000)
    single(torch.cat(list(_rank_batches(world_size))), update_k=True)
    torch.testing.assert_close(ranks[0]["restored"], single.k, rtol=1e-5, atol=1e-6)
