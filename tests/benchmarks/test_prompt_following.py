"""benchmarks/prompt_following.py: the verdicts on callables that do and do not follow the tempo they
are asked for (real tempo estimation on synthesised clicks), the statistics, and the script end to
end on the tiny random text-to-music pipeline and a tiny random CLAP."""

import json
import re

import numpy as np
import pytest

from tests.benchmarks.common import one_line_error, save_tiny_clap
from tests.benchmarks.load import benchmark_fixture, load_benchmark
from tests.pipelines.test_pipeline_utils import ToneGenerator, arpeggio, saved

SR = 16_000
SECONDS = 4.0
WORD_BPM = {"very fast": 170.0, "fast": 140.0, "moderate": 100.0, "slow": 65.0}  # longest word first


pf = benchmark_fixture("prompt_following")


def clicks(bpm: float, seconds: float, seed: int) -> np.ndarray:
    """A decaying 1 kHz click on every beat, with seeded noise."""
    t = np.arange(int(seconds * SR)) / SR
    phase = t % (60.0 / bpm)
    y = 0.5 * np.exp(-60.0 * phase) * np.sin(2 * np.pi * 1000.0 * t)
    return (y + 0.01 * np.random.default_rng(seed).standard_normal(t.size)).astype(np.float32)


def following(prompt: str, seconds: float, seed: int):
    """Plays the BPM or tempo word the prompt names (else 120 BPM)."""
    bpm = re.search(r"(\d+) BPM", prompt)
    word = next((w for w in WORD_BPM if w in prompt), None)
    tempo = float(bpm.group(1)) if bpm else WORD_BPM[word] if word else 120.0
    return clicks(tempo, seconds, seed), SR


def ignoring(prompt: str, seconds: float, seed: int):
    """Prompt-blind: a tempo that depends on the seed only."""
    return clicks(110.0 + 7.0 * (seed % 3), seconds, seed), SR


def _summary(result):
    return {(a["name"], m["measure"]): m for a in result["attributes"] for m in a["measures"]}


def test_tempo_following_generator_is_judged_follows(pf):
    attrs = [pf.ATTRIBUTES["tempo_bpm"], pf.ATTRIBUTES["tempo_words"]]
    result = pf.evaluate(following, attrs, per_value=3, seconds=SECONDS, seed=0)
    assert [a["verdict"] for a in result["attributes"]] == ["follows", "follows"]
    summary = _summary(result)
    rho = summary[("tempo_bpm", "rank correlation")]
    assert rho["generator"] > 0.8 and rho["p"] < 0.05 and rho["verdict"] == "follows"
    assert rho["baseline"] == 0 or rho["baseline"] != rho["baseline"]  # 0 by construction, nan if constant
    band = summary[("tempo_words", "band accuracy")]
    assert band["verdict"] == "follows" and band["generator"] > band["baseline"] and band["chance"] == 0.25
    # per-value medians recover the asked tempi (the clicks are unambiguous)
    rows = {r["value"]: r["median BPM"] for r in result["attributes"][0]["rows"]}
    for bpm in (65, 100, 140, 170):
        assert abs(rows[str(bpm)] - bpm) <= 0.08 * bpm, rows


def test_prompt_blind_generator_is_judged_ignores(pf):
    result = pf.evaluate(ignoring, [pf.ATTRIBUTES["tempo_bpm"], pf.ATTRIBUTES["tempo_words"]], per_value=3,
                         seconds=SECONDS, seed=0)
    assert [a["verdict"] for a in result["attributes"]] == ["ignores", "ignores"]
    for m in _summary(result).values():
        assert m["verdict"] == "ignores", m
        assert m["p"] >= 0.05
        if m["test"] == "label permutation":  # every clip equals its baseline clip
            assert m["generator"] == m["baseline"] and m["ci95"] == [0.0, 0.0]


def test_key_following_tone_generator(pf, tmp_path, monkeypatch):
    """ToneGenerator (a real generator folder) plays the key a prompt names, else C major: key follows,
    mode prompts ("major key") name no key, so mode is ignored."""
    pipe = pf.load_generator(saved(tmp_path / "tones", ToneGenerator, monkeypatch, SR))
    result = pf.evaluate(pf.pipeline_generate(pipe), [pf.ATTRIBUTES["key"], pf.ATTRIBUTES["mode"]], per_value=2,
                         seconds=2.0, seed=0)
    key, mode = result["attributes"]
    assert key["verdict"] == "follows" and mode["verdict"] == "ignores"
    accuracy = _summary(result)[("key", "key accuracy")]
    # the empty prompt plays C major: right only for the C major prompts
    assert accuracy["generator"] == 1.0 and accuracy["baseline"] == 0.25 and accuracy["p"] < 0.05


def test_fixed_part_of_the_prompt_does_not_count_as_following(pf):
    """Any non-empty prompt gives C major, the empty prompt other keys: the prompted clips beat the
    baseline on the "C major" prompt, but their key does not depend on the key asked: ignores."""

    def c_major_when_prompted(prompt, seconds, seed):
        key = "C major" if prompt else ("D major", "G minor", "B major")[seed % 3]
        return arpeggio(100.0, key, seconds, SR, 0.005 * np.random.default_rng(seed).standard_normal(
            int(seconds * SR))), SR

    result = pf.evaluate(c_major_when_prompted, [pf.ATTRIBUTES["key"]], per_value=3, seconds=2.0, seed=0)
    key = _summary(result)[("key", "key accuracy")]
    assert key["generator"] == 0.25 and key["baseline"] == 0.0 and key["p"] == 1.0
    assert result["attributes"][0]["verdict"] == "ignores"


def test_statistics(pf):
    rng = np.random.default_rng(0)
    asked = np.repeat(np.arange(4), 2)
    right = np.eye(4)[asked]  # each clip right for its own value only
    assert pf.label_permutation_p(right, asked, 1.0, rng) < 0.01
    assert pf.label_permutation_p(np.ones((8, 4)), asked, 1.0, rng) == 1.0  # the output ignores the value
    assert pf.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert pf.spearman([1, 2, 3, 4], [5, 5, 5, 5]) != pf.spearman([1, 2, 3, 4], [5, 5, 5, 5])  # nan: constant
    assert pf.permutation_p(np.arange(8), np.arange(8), 1.0, rng) < 0.01
    low, high = pf.paired_bootstrap([1, 1, 0, 1], [0, 0, 0, 0], rng)
    assert 0 <= low <= 0.75 <= high <= 1
    assert [pf.tempo_band(b) for b in (79, 80, 119, 120, 159, 160)] == [
        "slow", "moderate", "moderate", "fast", "fast", "very fast"]


def test_prompts_use_training_caption_words(pf):
    from hf_musiccodec.data.captions import DYNAMICS_WORDS, TEMPO_WORDS
    from hf_musiccodec.data.music21_render import SOLO_INSTRUMENTS, tempo_band

    for band in pf.ATTRIBUTES["tempo_words"].values:
        assert band in TEMPO_WORDS["train"][band]
    assert [pf.tempo_band(b) for b in pf.ATTRIBUTES["tempo_bpm"].values] == [
        tempo_band(b) for b in pf.ATTRIBUTES["tempo_bpm"].values]
    assert set(pf.ATTRIBUTES["instrument"].values) <= set(SOLO_INSTRUMENTS)
    train_dynamics = {w for words in DYNAMICS_WORDS["train"].values() for w in words}
    assert all(p.rsplit(", ", 1)[1].rstrip(".") in train_dynamics for p in pf.ATTRIBUTES["dynamics"].prompts)


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    """(tiny random text-to-music pipeline folder, tiny random CLAP folder)."""
    from hf_musiccodec.testing.tiny import tiny_text_to_music_pipeline

    root = tmp_path_factory.mktemp("pf")
    tiny_text_to_music_pipeline().save_pretrained(root / "t2m")
    save_tiny_clap(root / "clap", SR)
    return root / "t2m", root / "clap"


def test_end_to_end_on_the_tiny_pipeline(pf, tiny_folders, tmp_path, capsys):
    t2m, clap = tiny_folders
    out_json = tmp_path / "out.json"
    argv = ["--generator", str(t2m), "--clap", str(clap), "--seconds", "0.5", "--per-value", "1", "--threads", "1",
            "--json", str(out_json)]
    assert pf.main(argv) == 0
    out = capsys.readouterr().out
    for name in pf.ATTRIBUTES:
        assert f"### {name} (" in out
    summary = [line for line in out.split("### summary", 1)[1].splitlines() if line.startswith("|")]
    head = [c.strip() for c in summary[0].strip("|").split("|")]
    assert head == pf.SUMMARY_HEAD
    result = json.loads(out_json.read_text())  # strict JSON: NaN written as null
    assert [a["name"] for a in result["attributes"]] == list(pf.ATTRIBUTES)
    measures = [m for a in result["attributes"] for m in a["measures"]]
    assert len(summary) - 2 == len(measures)
    for m in measures:
        assert m["verdict"] in ("follows", "ignores", "n/a")
    # 0.5 s clips have no tempo (librosa needs 1 s): n/a, not an error
    assert all(m["verdict"] == "n/a" for a in result["attributes"] if a["name"].startswith("tempo")
               for m in a["measures"])
    assert "total time:" in out and result["total_seconds"] > 0


def _one_line_error(pf, capsys, argv) -> str:
    return one_line_error(pf, "prompt_following", capsys, argv)


def test_bad_inputs_are_one_line(pf, tiny_folders, tmp_path, capsys):
    t2m, _ = tiny_folders
    assert "does not exist" in _one_line_error(pf, capsys, ["--generator", str(tmp_path / "none")])
    assert "--clap" in _one_line_error(pf, capsys, ["--generator", str(t2m), "--clap", str(tmp_path / "no"),
                                                    "--attributes", "instrument"])


def test_call_arguments_reach_every_generator_call():
    pf = load_benchmark("prompt_following")
    args = pf.parse_args(["--generator", "g", "--call", "use_clap=true", "guidance_scale=5"])
    assert args.call_kwargs == {"use_clap": True, "guidance_scale": 5}
    seen = []

    class Pipe:
        sampling_rate = 8000

        def __call__(self, prompt, audio_length_in_s, generator, **kwargs):
            seen.append(kwargs)
            return type("Out", (), {"audios": np.zeros((1, 1, int(audio_length_in_s * 8000)), np.float32)})()

    audio, sr = pf.pipeline_generate(Pipe(), **args.call_kwargs)("a", 0.5, 0)
    assert seen == [{"use_clap": True, "guidance_scale": 5}] and sr == 8000 and audio.shape == (1, 4000)
