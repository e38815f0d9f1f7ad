"""VampNet's prompt masks (True = generate) on small token grids, with exact expected values."""

import math

import numpy as np
import pytest
import torch

from hf_musiccodec.pipelines.vampnet import masks as M


def grid(b=1, k=2, t=10):
    return torch.arange(b * k * t).reshape(b, k, t)


def frames(*keep, t=10):
    """The mask of one example, 2 codebooks, ``t`` frames, keeping the listed frames."""
    generate = torch.ones(t, dtype=torch.bool)
    generate[list(keep)] = False
    return generate.expand(1, 2, t)


def test_full_and_empty():
    codes = grid(2, 3, 4)
    assert M.full_mask(codes).dtype == torch.bool and M.full_mask(codes).shape == (2, 3, 4)
    assert M.full_mask(codes).all() and not M.empty_mask(codes).any()


@pytest.mark.parametrize("prefix, suffix, keep", [
    (0, 0, []),
    (3, 0, [0, 1, 2]),
    (0, 2, [8, 9]),
    (2, 3, [0, 1, 7, 8, 9]),
    (6, 6, list(range(10))),
    (20, 0, list(range(10))),
    (0, 20, list(range(10))),
])  # fmt: skip
def test_prefix_suffix(prefix, suffix, keep):
    assert torch.equal(M.prefix_suffix_mask(grid(), prefix, suffix), frames(*keep))


def test_periodic():
    assert torch.equal(M.periodic_mask(grid(), 4), frames(0, 4, 8))
    assert torch.equal(M.periodic_mask(grid(), 4, width=2), frames(0, 1, 4, 5, 8, 9))
    assert torch.equal(M.periodic_mask(grid(), 1), frames(*range(10)))  # every frame kept
    assert torch.equal(M.periodic_mask(grid(), 3, width=5), frames(*range(10)))  # width >= period keeps all
    assert M.periodic_mask(grid(), 0).all()  # period 0: no prompt


def test_periodic_random_roll_is_seeded_and_per_example():
    codes = grid(b=8, t=12)
    a = M.periodic_mask(codes, 4, random_roll=True, generator=torch.Generator().manual_seed(0))
    b = M.periodic_mask(codes, 4, random_roll=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    for example in a:  # each example is a period-4 grid of one kept frame, at some offset
        kept = torch.nonzero(~example[0]).flatten().tolist()
        assert len(kept) == 3 and kept[0] < 4 and kept == [kept[0], kept[0] + 4, kept[0] + 8]
        assert torch.equal(example[0], example[1])
    offsets = {int(torch.nonzero(~e[0])[0]) for e in a}
    assert len(offsets) > 1  # not every example at the same offset
    seeds = {tuple(M.periodic_mask(codes, 4, random_roll=True, generator=torch.Generator().manual_seed(s))
                   .flatten().tolist()) for s in range(5)}
    assert len(seeds) > 1


def test_time_keep_per_example():
    keep = np.array([[1, 0, 0, 1], [0, 1, 0, 0]], dtype=bool)
    mask = M.time_keep_mask(grid(b=2, k=2, t=4), keep)
    assert torch.equal(mask, torch.from_numpy(~keep)[:, None, :].expand(2, 2, 4))
    mask[0, 0, 0] = True  # a new tensor, not a view of a shared one
    assert not mask[0, 1, 0]


def test_beat_and_onset_frames():
    codes = grid(t=20)  # 10 frames per second: frame i covers [i/10, (i+1)/10)
    assert torch.equal(M.beat_mask(codes, [0.5, 1.2], frame_rate=10, width_s=0.2), frames(5, 6, 12, 13, t=20))
    assert torch.equal(M.beat_mask(codes, [0.5], frame_rate=10, width_s=0.2, before_s=0.1),
                       frames(4, 5, 6, t=20))
    assert torch.equal(M.beat_mask(codes, [0.5], frame_rate=10, width_s=0.01), frames(5, t=20))  # at least a frame
    assert torch.equal(M.beat_mask(codes, [1.95], frame_rate=10, width_s=0.3), frames(19, t=20))  # clipped at the end
    assert M.beat_mask(codes, [], frame_rate=10, width_s=0.2).all()  # no beats: nothing kept
    assert torch.equal(M.onset_mask(codes, np.array([0.0, 1.0]), frame_rate=10, width_s=0.1), frames(0, 10, t=20))


def test_codebook_masks():
    mask = frames(0, 5)
    lower = M.keep_lower_codebooks(mask, 1)
    assert not lower[:, 0].any() and torch.equal(lower[:, 1], mask[:, 1])
    assert not M.keep_lower_codebooks(mask, 5).any() and torch.equal(M.keep_lower_codebooks(mask, 0), mask)
    upper = M.codebook_mask(mask, 1)
    assert torch.equal(upper[:, 0], mask[:, 0]) and upper[:, 1].all()
    assert M.codebook_mask(mask, 0).all() and torch.equal(M.codebook_mask(mask, 2), mask)


def test_dropout_only_adds_generated_positions():
    mask = M.periodic_mask(grid(b=4, k=4, t=200), 2)
    dropped = M.dropout_mask(mask, 0.3, generator=torch.Generator().manual_seed(0))
    assert (dropped | mask).equal(dropped)  # generated positions stay generated
    newly = dropped & ~mask
    assert 0.2 < newly.sum() / (~mask).sum() < 0.4  # ~30 % of the kept tokens
    assert torch.equal(dropped, M.dropout_mask(mask, 0.3, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(M.dropout_mask(mask, 0.0), mask) and M.dropout_mask(mask, 1.0).all()


def test_and_or():
    a, b = frames(0, 1, 2), frames(2, 3)
    assert torch.equal(M.mask_and(a, b), frames(0, 1, 2, 3))  # kept if any prompt keeps it
    assert torch.equal(M.mask_or(a, b), frames(2))  # kept only if every prompt keeps it
    assert torch.equal(M.mask_and(a), a) and torch.equal(M.mask_or(a, b, frames(5)), frames())
    assert torch.equal(M.mask_and(a, b, frames(9)), frames(0, 1, 2, 3, 9))


def test_bits_per_second():
    mask = torch.ones(2, 4, 150, dtype=torch.bool)  # 2 s at 75 Hz
    assert M.bits_per_second(mask, 1024, 75) == 0.0
    assert M.bits_per_second(~mask, 1024, 75) == 4 * 10 * 75  # every token: 4 codebooks x 10 bits x 75 Hz
    mask[0, 0, :75] = False  # example 0 keeps 1 s of codebook 0, example 1 nothing: 375 bps on average
    assert M.bits_per_second(mask, 1024, 75) == pytest.approx(10 * 75 * 75 / 150 / 2)
    assert M.bits_per_second(mask, 16, 50) == pytest.approx(75 * 4 * 50 / 150 / 2)


def test_cosine_schedule():
    assert float(M.cosine_schedule(0.0)) == 1.0 and abs(float(M.cosine_schedule(1.0))) < 1e-6
    assert float(M.cosine_schedule(0.5)) == pytest.approx(math.cos(math.pi / 4))


@pytest.mark.parametrize("r", [0.0, 0.3, 0.5, 0.8])
def test_random_mask_share_follows_the_cosine(r):
    codes = torch.zeros(4, 4, 5000, dtype=torch.long)
    mask = M.random_mask(codes, r, generator=torch.Generator().manual_seed(0))
    assert abs(float(mask.float().mean()) - math.cos(math.pi * r / 2)) < 0.01


def test_random_mask_ratio_per_example_and_seeded():
    codes = torch.zeros(3, 2, 4000, dtype=torch.long)
    mask = M.random_mask(codes, torch.tensor([0.0, 0.5, 1.0]), generator=torch.Generator().manual_seed(1))
    assert mask[0].all() and not mask[2].any()
    assert abs(float(mask[1].float().mean()) - math.cos(math.pi / 4)) < 0.02
    again = M.random_mask(codes, torch.tensor([0.0, 0.5, 1.0]), generator=torch.Generator().manual_seed(1))
    assert torch.equal(mask, again)


def test_inputs_are_never_modified():
    codes = grid(b=2, k=3, t=12)
    base = M.periodic_mask(codes, 3)
    before_codes, before_mask = codes.clone(), base.clone()
    M.prefix_suffix_mask(codes, 2, 2)
    M.periodic_mask(codes, 4, random_roll=True, generator=torch.Generator().manual_seed(0))
    M.beat_mask(codes, [0.1], 10, 0.2)
    M.random_mask(codes, 0.5)
    M.keep_lower_codebooks(base, 1)
    M.codebook_mask(base, 1)
    M.dropout_mask(base, 0.5)
    M.mask_and(base, M.full_mask(codes))
    M.mask_or(base, M.empty_mask(codes))
    M.bits_per_second(base, 16, 75)
    assert torch.equal(codes, before_codes) and torch.equal(base, before_mask)
    # and what they return is writable without touching the inputs
    for out in (M.keep_lower_codebooks(base, 1), M.codebook_mask(base, 1), M.dropout_mask(base, 0.0)):
        out[:] = True
        assert torch.equal(base, before_mask)


@pytest.mark.parametrize("call", [
    lambda: M.full_mask(torch.zeros(2, 3)),
    lambda: M.prefix_suffix_mask(grid(), -1, 0),
    lambda: M.prefix_suffix_mask(grid(), 0, -2),
    lambda: M.periodic_mask(grid(), -1),
    lambda: M.periodic_mask(grid(), 4, width=0),
    lambda: M.time_keep_mask(grid(), np.ones(9, dtype=bool)),
    lambda: M.beat_mask(grid(), [0.1], 10, width_s=0),
    lambda: M.beat_mask(grid(), [0.1], 10, width_s=0.1, before_s=-0.1),
    lambda: M.onset_mask(grid(), [0.1], 10, width_s=-1),
    lambda: M.keep_lower_codebooks(frames(), -1),
    lambda: M.codebook_mask(frames(), -1),
    lambda: M.dropout_mask(frames(), 1.5),
    lambda: M.dropout_mask(frames(), -0.1),
    lambda: M.random_mask(torch.zeros(4, 4), 0.5),
])  # fmt: skip
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()
