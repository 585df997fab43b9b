"""EMA codebook learning: initialisation, EMA moves, dead-code restarts, restore, eval immutability."""

from __future__ import annotations

import torch

from jukebox_model.vqvae.bottleneck import BottleneckBlock


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
