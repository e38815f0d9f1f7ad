"""benchmarks/lm_speed.py on the tiny random pipeline (the table's structure and numbers sanity), and
the fast sampling loop it times: the same tokens as the reference loop (every step through
transformers' forward), sampled, with and without guidance, continuing a prompt, with padded
prompts, on a reloaded folder (sdpa attention) and after the weights change."""

import json

import pytest
import torch
from tests.benchmarks.load import benchmark_fixture

from hf_musiccodec.pipelines.text_to_music import TextToMusicPipeline
from hf_musiccodec.pipelines.text_to_music.sampling import SamplingOptions, sample_window
from hf_musiccodec.testing.tiny import tiny_text_to_music_pipeline


lm = benchmark_fixture("lm_speed")


@pytest.fixture(scope="module")
def pipe():
    pipe = tiny_text_to_music_pipeline(context_seconds=1.0)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def saved(pipe, tmp_path_factory):
    folder = tmp_path_factory.mktemp("t2m") / "pipe"
    pipe.save_pretrained(folder)
    return folder


def _conditions(pipe, prompts):
    states, mask, _ = pipe.encode_prompt(prompts, use_clap=False)
    return pipe.conditioner(states, mask)


def _both(musicgen, states, mask, frames, options, prompt=None, seed=0):
    return [sample_window(musicgen, states, mask, frames, options, prompt, generator=torch.Generator().manual_seed(seed),
                          fast=fast) for fast in (False, True)]  # fmt: skip


@pytest.mark.parametrize("guidance", [None, 3.0])
def test_fast_loop_samples_the_reference_tokens(pipe, guidance):
    states, mask = _conditions(pipe, ["a slow chorale for strings", "fast"])  # padded: two lengths
    assert (mask == 0).any()
    reference, fast = _both(pipe.musicgen, states, mask, 40, SamplingOptions(guidance_scale=guidance, top_k=8))
    assert reference.shape == (2, 2, 40) and torch.equal(fast, reference)
    prompt = torch.randint(0, 16, (2, 2, 15), generator=torch.Generator().manual_seed(1))
    reference, fast = _both(pipe.musicgen, states, mask, 40, SamplingOptions(guidance_scale=guidance), prompt)
    assert torch.equal(fast, reference) and torch.equal(fast[..., :15], prompt)


def test_fast_loop_on_a_reloaded_folder_and_after_the_weights_change(pipe, saved):
    again = TextToMusicPipeline.from_pretrained(saved)
    assert again.musicgen.decoder.config._attn_implementation == "sdpa"  # built models: None (eager)
    states, mask = _conditions(again, ["a march", "a lullaby for a music box"])
    options = SamplingOptions(guidance_scale=3.0)
    reference, fast = _both(again.musicgen, states, mask, 30, options)
    assert torch.equal(fast, reference)
    with torch.no_grad():  # the fast loop's prepared weights must follow in-place updates
        for head in again.musicgen.decoder.lm_heads:
            head.weight.mul_(-3.0)
    reference_after, fast_after = _both(again.musicgen, states, mask, 30, options)
    assert torch.equal(fast_after, reference_after) and not torch.equal(fast_after, fast)


def test_bf16_products_give_valid_codes_and_callbacks_see_the_sequence(pipe):
    states, mask = _conditions(pipe, ["a waltz"])
    seen = []
    codes = sample_window(pipe.musicgen, states, mask, 20, SamplingOptions(dtype=torch.bfloat16),
                          generator=torch.Generator().manual_seed(0),
                          on_step=lambda step, seq: seen.append((step, seq.shape[-1], seq.clone())))  # fmt: skip
    assert codes.shape == (1, 2, 20) and 0 <= int(codes.min()) and int(codes.max()) < 16
    assert [s for s, _, _ in seen] == list(range(21)) and [n for _, n, _ in seen] == list(range(2, 23))
    assert torch.equal(seen[-1][2][0, 1:21], codes[0, 0]) and torch.equal(seen[-1][2][1, 2:22], codes[0, 1])


def test_window_count_matches_the_pipeline_walk(lm, pipe):
    window = pipe.context_frames
    assert lm.count_windows(window, window, 37) == 1
    assert lm.count_windows(750, 450, 225) == 3  # the bundled model's 10 s: 450 frames, then 225 new twice
    assert lm.count_windows(window + 1, window, 37) == 2


def test_measure_tiny_pipeline_table(lm, pipe):
    rows = lm.measure(pipe, seconds=1.5, window_seconds=1.0, repeats=1)
    assert [(r["system"], r["seconds"]) for r in rows] == [
        ("ours", 1.5), ("transformers", 1.5), ("ours", 1.5), ("transformers", 1.5),
        ("ours", 1.0), ("transformers", 1.0), ("ours", 1.0), ("transformers", 1.0),
        ("ours, reference loop", 1.5), ("ours, bf16 products", 1.5)]  # fmt: skip
    by = {(r["system"], r["seconds"], r["guidance"]): r for r in rows}
    ours, tf = by[("ours", 1.5, 3.0)], by[("transformers", 1.5, 3.0)]
    assert ours["frames"] == tf["frames"] == 113 and ours["codebooks"] == 2
    assert ours["windows"] == 2 and tf["windows"] == 1 and tf["steps"] == 114
    assert ours["steps"] == pipe._steps(113, 0, pipe.context_frames, 37, 2)
    assert by[("ours", 1.0, 3.0)]["windows"] == 1 and by[("ours", 1.0, 3.0)]["steps"] == 76 == by[("transformers", 1.0, 3.0)]["steps"]
    for r in rows:
        assert 0 < r["decode_s"] < r["wall_s"] and 0 < r["decode_share"] < 1
        assert r["lm_s"] == pytest.approx(r["wall_s"] - r["decode_s"], rel=0.5)
        assert r["rtf"] == pytest.approx(r["wall_s"] / r["audio_seconds"])
        assert r["tokens_per_s"] == pytest.approx(r["frames"] * 2 / r["lm_s"])
        if r["system"] == "transformers":
            assert "ours_over_transformers" not in r
        else:
            tf = by[("transformers", r["seconds"], r["guidance"] if r["guidance"] > 1 else None)]
            assert r["ours_over_transformers"] == pytest.approx(r["wall_s"] / tf["wall_s"])
    table = lm.format_table(rows).splitlines()
    assert len(table) == 2 + len(rows) and table[0].count("|") == table[2].count("|") == 12
    assert "| ours | 1.5 | 3 | 2 |" in table[2] and "| transformers | 1.5 | none | 1 |" in table[5]


def test_step_table(lm, pipe):
    rows = lm.step_times(pipe, frames=12, repeats=1)
    assert [(r["loop"].split(" (")[0], r["guidance"]) for r in rows] == [
        ("reference loop", 3.0), ("fast loop", 3.0), ("fast loop, bf16 products", 3.0),
        ("reference loop", None), ("fast loop", None), ("fast loop, bf16 products", None)]  # fmt: skip
    assert all(r["ms_per_step"] > 0 and r["p90_ms"] >= r["ms_per_step"] and r["frames"] == 12 for r in rows)
    assert rows[0]["speed_up"] == 1.0
    assert len(lm.format_steps(rows).splitlines()) == 2 + len(rows)


def test_main_on_a_saved_folder_and_missing_folder(lm, saved, tmp_path, capsys):
    assert lm.main(["--model", str(tmp_path / "nope")]) == 2
    assert "model_index.json" in capsys.readouterr().err
    threads = torch.get_num_threads()
    try:
        code = lm.main(["--model", str(saved), "--seconds", "1.2", "--repeats", "1", "--threads", "1",
                        "--step-frames", "8", "--no-variants", "--json", str(tmp_path / "out.json")])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert code == 0 and "torch" in out and "1 threads" in out and "| ours | 1.2 | 3 |" in out
    assert "target (10 s of music in under 10 s" in out and "median ms/step" in out
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["machine"]["torch_threads"] == 1 and len(result["rows"]) == 8 and len(result["steps"]) == 6
