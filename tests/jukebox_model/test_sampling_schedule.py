"""Window schedules follow spec §4.3 (with the documented primed-length fix); logit filtering follows §4.1."""

from __future__ import annotations

import itertools

import pytest
import torch

from jukebox_model.api import SamplingParams
from jukebox_model.sampling.logits import filter_logits, sample_tokens
from jukebox_model.sampling.schedule import Window, level_hop, plan_level, seconds_to_samples, window_starts


@pytest.mark.parametrize(
    "total,expected",
    [(8192, [0]), (8193, [0, 1]), (10000, [0, 1024, 1808])],
)
def test_window_starts_match_the_spec_examples(total, expected):
    assert window_starts(total, 8192, 1024) == expected


@pytest.mark.parametrize("seconds,windows", [(20, None), (60, 14), (180, None)])
def test_top_level_windows_for_songs_of_20_60_180_seconds(seconds, windows):
    total = seconds_to_samples(seconds) // 128
    starts = window_starts(total, 8192, level_hop(0.125, 8192)) if total >= 8192 else []
    if windows is not None:
        assert len(starts) == windows and starts[-1] == total - 8192 == 12479
    if starts:
        assert starts[0] == 0 and starts[-1] + 8192 == total
        assert all(b - a <= 1024 for a, b in itertools.pairwise(starts))
    else:
        assert plan_level(total, 0, 8192, 1024) == [Window(0, total, 0, total)]


def test_plan_skips_windows_already_filled_and_primes_the_rest():
    plan = plan_level(10000, 5000, 8192, 1024)
    assert plan[0] == Window(start=0, end=8192, n_existing=5000, n_new=3192)
    assert [w.start for w in plan] == [0, 1024, 1808]
    assert all(w.n_existing == 8192 - 1024 for w in plan[1:2])


def test_short_level_is_filled_to_its_length_not_past_it():
    # the reference would sample 300 new tokens after a 100-token prompt (400 in all)
    assert plan_level(300, 100, 8192, 1024) == [Window(start=0, end=300, n_existing=100, n_new=200)]
    assert plan_level(300, 300, 8192, 1024) == []


def test_lengths_round_down_to_whole_top_level_tokens():
    assert seconds_to_samples(20) == 881920  # spec §4.7


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0]])
    kept = filter_logits(logits, top_k=2)
    assert torch.isfinite(kept).tolist() == [[False, True, False, True]]


def test_top_p_keeps_the_smallest_prefix_whose_mass_reaches_p():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = torch.isfinite(filter_logits(probs.log(), top_p=0.7))
    assert kept.tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(probs.log(), top_p=0.01)).tolist() == [[True, False, False, False]]


def test_same_seed_same_tokens_and_greedy_limit():
    logits = torch.randn(4, 50)
    a = sample_tokens(logits, generator=torch.Generator().manual_seed(3))
    b = sample_tokens(logits, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(sample_tokens(logits, top_k=1), logits.argmax(dim=-1))


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(temperature=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="hop_fraction"):
        SamplingParams(hop_fraction=(0.5, 0.5))
    with pytest.raises(ValueError, match="one 8192-token window"):
        window_starts(100, 8192, 1024)
