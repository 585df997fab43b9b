"""The learning-rate schedule: warm-up, then constant or a linear decay that a resumed run can change."""

from __future__ import annotations

import torch

from jukebox_model.training.loop import OptimSettings, lr_scale, make_optimizer


def test_rate_warms_up_then_stays_constant_without_decay():
    s = OptimSettings(lr_warmup=10)
    assert lr_scale(0, s) == 0.1
    assert lr_scale(9, s) == 1.0
    assert lr_scale(100_000, s) == 1.0


def test_rate_decays_linearly_to_zero_after_its_start():
    s = OptimSettings(lr_warmup=10, lr_decay_start=100, lr_decay=50)
    assert lr_scale(99, s) == 1.0
    assert lr_scale(125, s) == 0.5
    assert lr_scale(150, s) == 0.0
    assert lr_scale(400, s) == 0.0


def test_resumed_schedule_follows_the_new_decay_from_its_own_step():
    model = torch.nn.Linear(2, 2)
    opt, schedule = make_optimizer(model, OptimSettings(lr=1.0, lr_warmup=1))
    for _ in range(20):
        opt.step()
        schedule.step()
    saved_opt, saved_schedule = opt.state_dict(), schedule.state_dict()

    decayed = OptimSettings(lr=0.5, lr_warmup=1, lr_decay_start=0, lr_decay=40)
    opt2, schedule2 = make_optimizer(model, decayed)
    opt2.load_state_dict(saved_opt)
    schedule2.load_state_dict(saved_schedule)
    opt2.step()
    schedule2.step()
    # the saved base rate (1.0) stays; the new decay is applied at step 21 of 40
    assert abs(schedule2.get_last_lr()[0] - (1 - 21 / 40)) < 1e-9
