"""Training the text-to-music LM on a real (tiny) latent cache with melody and CLAP conditions:
a resumed run ends exactly where an uninterrupted one does, the export is a pipeline that
generates, condition dropout behaves, and LoRA fine-tunes an official-layout MusicGen folder."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import (
    EncodecModel,
    MusicgenDecoderConfig,
    MusicgenForCausalLM,
    MusicgenForConditionalGeneration,
    T5Config,
    T5EncoderModel,
)

from hf_musiccodec.data import latent_cache as lc
from hf_musiccodec.pipelines.text_to_music import TextToMusicPipeline, load_lm_tokenizer
from hf_musiccodec.testing.parity import OFFICIAL_CONFIGS, build_reference, convert_through_hub_layout
from hf_musiccodec.training.lm_solver import LMSolver, LMTrainingConfig
from tests.training.token_workspace import SR, Killed, build_token_workspace, dies_after_step, write_tone_clips

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    rows = write_tone_clips(root / "audio", [f"a tune number {i}" for i in range(5)] + [""])  # one uncaptioned
    for i, row in enumerate(rows):
        row["captions"] = [row["caption"], f"tune {i}"] if row["caption"] else [""]
        # each clip pulses at i + 1 Hz; an estimated key is not a training target
        row.update(tempo_bpm=60.0 * (i + 1), key=["A minor", "C major"][i % 2], key_estimated=i == 3)
    return build_token_workspace(root, rows)


def _config(root, out, **kw):
    values = dict(output_dir=str(out), codec=str(root / "codec"), bandwidth=0.6, train_cache=str(root / "cache"),
                  validation_cache=str(root / "cache"), clap=str(root / "clap"), crop_seconds=0.5, batch_size=2,
                  hidden_size=32, num_layers=1, num_heads=2, ffn_dim=64, warmup_steps=2, max_steps=6, save_every=2,
                  validate_every=3, validation_items=4, log_every=1, report_to=None, mixed_precision="no",
                  clap_prob=0.5, melody_prob=0.5)  # fmt: skip
    values.update(kw)
    return LMTrainingConfig(**values)


def _weights(folder):
    pipe = TextToMusicPipeline.from_pretrained(folder)
    return {**{f"m.{k}": v for k, v in pipe.musicgen.decoder.state_dict().items()},
            **{f"c.{k}": v for k, v in pipe.conditioner.state_dict().items()}}  # fmt: skip


def test_resumed_run_matches_an_uninterrupted_one_and_exports_a_pipeline(workspace, tmp_path):
    whole = LMSolver(_config(workspace, tmp_path / "whole")).fit()
    with pytest.raises(Killed):
        dies_after_step(LMSolver, 4)(_config(workspace, tmp_path / "parts")).fit()
    resumed = LMSolver(_config(workspace, tmp_path / "parts"))  # a new process would start the same way
    assert resumed.train_set.has_melody and resumed.train_set.has_clap
    parts = resumed.fit()
    assert json.loads((parts / "training_state.json").read_text())["step"] == 6
    a, b = _weights(whole), _weights(parts)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    initial = LMSolver(_config(workspace, tmp_path / "fresh", max_steps=0))
    fresh = initial.accelerator.unwrap_model(initial.conditioner).state_dict()
    assert any(not torch.equal(fresh[k], a["c." + k]) for k in fresh if k != "anchor")  # conditions were trained

    pipe = TextToMusicPipeline.from_pretrained(parts)
    pipe.set_progress_bar_config(disable=True)
    out = pipe("a tune number 2", audio_length_in_s=0.8, generator=torch.Generator().manual_seed(0),
               melody=np.sin(np.arange(SR) / SR * 2 * np.pi * 440).astype(np.float32), melody_sampling_rate=SR,
               use_clap=True)  # fmt: skip
    assert out.audios.shape == (1, 1, int(0.8 * SR)) and np.isfinite(out.audios).all()


def test_condition_dropout(workspace, tmp_path):
    solver = LMSolver(_config(workspace, tmp_path / "run", max_steps=0, drop_all=0.0, text_dropout=0.0,
                              clap_prob=1.0, melody_prob=0.0))  # fmt: skip
    has_text = torch.tensor([True, False] * 200)
    flags = solver.condition_flags(400, has_text)
    assert torch.equal(flags["text"], has_text) and flags["clap"].all() and not flags["melody"].any()
    solver.cfg.drop_all, solver.cfg.text_dropout, solver.cfg.melody_prob = 0.5, 0.3, 0.3
    torch.manual_seed(0)
    flags = solver.condition_flags(4000, torch.ones(4000, dtype=torch.bool))
    none = ~(flags["text"] | flags["clap"] | flags["melody"])
    assert abs(float(none.float().mean()) - 0.5) < 0.03  # drop_all; text/clap/melody never all off otherwise (clap=1)
    assert abs(float(flags["text"].float().mean()) - 0.5 * 0.7) < 0.03
    assert abs(float(flags["melody"].float().mean()) - 0.5 * 0.3) < 0.03


def test_fine_tuning_adds_rhythm_and_key_conditions(workspace, tmp_path, capsys):
    base = LMSolver(_config(workspace, tmp_path / "base", max_steps=2, validate_every=0)).fit()
    assert TextToMusicPipeline.from_pretrained(base).conditioner.config.rhythm_vocab == 0
    tuned = LMSolver(_config(workspace, tmp_path / "tuned", init_from=str(base), rhythm_vocab=8, key_condition=True,
                             decoder_inputs=True, rhythm_prob=1.0, key_prob=1.0, max_steps=3, validate_every=3))  # fmt: skip
    initial = {k: v.clone() for k, v in tuned._trained[1].model.state_dict().items()}
    batch = next(iter(torch.utils.data.DataLoader(tuned.train_set, batch_size=6)))
    assert batch["rhythm"].shape == (6, batch["codes"].shape[-1]) and batch["rhythm"].max() < 8
    assert batch["key"].tolist() == [9 + 12, 0, 9 + 12, -1, 9 + 12, 0]  # A minor, C major; -1: estimated
    assert batch["rhythm_valid"].all()  # every pulsed clip has beats
    tuned.cfg.drop_all = 0.0
    flags = tuned.condition_flags(6, torch.ones(6, dtype=torch.bool), batch["rhythm_valid"], batch["key"] >= 0)
    assert flags["key"].tolist() == (batch["key"] >= 0).tolist() and flags["rhythm"].all()
    tuned.cfg.drop_all = 0.1
    folder = tuned.fit()
    state = json.loads((folder / "training_state.json").read_text())
    assert state["step"] == 3
    assert "val_loss_attributes" in capsys.readouterr().out  # validation also with the new conditions on
    pipe = TextToMusicPipeline.from_pretrained(folder)
    assert pipe.conditioner.config.rhythm_vocab == 8 and pipe.conditioner.config.key_condition
    before, after = _weights(base), _weights(folder)
    assert "c.rhythm_embedding.weight" in after and "c.key_roles" in after
    # the per-frame decoder inputs (the decoder's width) are trained with the rest
    assert pipe.conditioner.config.decoder_input_size == pipe.musicgen.decoder.config.hidden_size
    for name in ("rhythm_input.weight", "key_input.weight"):
        assert not torch.equal(initial[name], after[f"c.{name}"])
    assert not torch.equal(before["c.melody_embedding.weight"], after["c.melody_embedding.weight"])  # trained on
    pipe.set_progress_bar_config(disable=True)
    out = pipe("a tune number 2 at 120 BPM in A minor", audio_length_in_s=0.8, generator=torch.Generator().manual_seed(0))
    assert out.audios.shape == (1, 1, int(0.8 * SR)) and np.isfinite(out.audios).all()
    # a new beat-phase table is drawn at the position sinusoids' scale, not lost beside them
    assert 0.3 < after["c.rhythm_embedding.weight"].std() < 0.7

    # fresh_conditions: the named condition starts over, the others keep their trained weights
    again = LMSolver(_config(workspace, tmp_path / "again", init_from=str(folder), rhythm_vocab=8, key_condition=True,
                             decoder_inputs=True, fresh_conditions=["rhythm"], max_steps=1))  # fmt: skip
    conditioner = dict(again._trained[1].model.state_dict())
    assert not torch.equal(conditioner["rhythm_embedding.weight"], after["c.rhythm_embedding.weight"])
    assert not torch.equal(conditioner["rhythm_input.weight"], after["c.rhythm_input.weight"])
    assert torch.equal(conditioner["key_roles"], after["c.key_roles"])
    assert torch.equal(conditioner["key_input.weight"], after["c.key_input.weight"])
    assert torch.equal(conditioner["melody_embedding.weight"], after["c.melody_embedding.weight"])
    with pytest.raises(ValueError, match="are not conditions"):
        LMTrainingConfig(fresh_conditions=["tempo"]).validate()


def _official_layout_musicgen(folder):
    """A tiny MusicGen in transformers' own layout (T5 + EncodecModel + decoder) and a codec of ours
    with the same weights (to make the token cache)."""
    torch.manual_seed(0)
    _, kwargs = OFFICIAL_CONFIGS["encodec_32khz"]
    encodec = build_reference("encodec", **dict(kwargs, num_filters=4, hidden_size=16, num_lstm_layers=1,
                                                codebook_size=16, target_bandwidths=[1.2]))  # fmt: skip
    assert isinstance(encodec, EncodecModel)
    tokenizer = load_lm_tokenizer()  # any tokenizer; official folders carry T5's
    text = T5EncoderModel(T5Config(vocab_size=tokenizer.vocab_size, d_model=16, d_kv=8, num_heads=2, num_layers=1,
                                   d_ff=32))  # fmt: skip
    decoder = MusicgenForCausalLM(MusicgenDecoderConfig(vocab_size=16, hidden_size=16, num_hidden_layers=1,
                                                        num_attention_heads=2, ffn_dim=32, num_codebooks=4,
                                                        max_position_embeddings=64, pad_token_id=16,
                                                        bos_token_id=16, audio_channels=1))  # fmt: skip
    model = MusicgenForConditionalGeneration(text_encoder=text, audio_encoder=encodec, decoder=decoder)
    model.generation_config.update(pad_token_id=16, decoder_start_token_id=16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, convert_through_hub_layout(encodec)


def test_lora_fine_tunes_an_official_layout_folder(tmp_path):
    original, ours = _official_layout_musicgen(tmp_path / "official")
    rows = []
    for i in range(4):
        x = 0.3 * np.sin(2 * np.pi * (300 + 50 * i) * np.arange(32000) / 32000)
        sf.write(str(tmp_path / f"c{i}.wav"), x.astype(np.float32), 32000)
        rows.append({"path": str(tmp_path / f"c{i}.wav"), "duration": 1.0, "caption": f"tone {i}"})
    lc.build_latent_cache(ours.eval(), rows, tmp_path / "cache", shard_size=4, progress=False)
    cfg = LMTrainingConfig(output_dir=str(tmp_path / "run"), init_from=str(tmp_path / "official"),
                           train_cache=str(tmp_path / "cache"), clap=None, crop_seconds=0.5, batch_size=2,
                           lora_rank=4, learning_rate=1e-2, warmup_steps=1, max_steps=3, save_every=3,
                           validate_every=100, report_to=None, mixed_precision="no")  # fmt: skip
    solver = LMSolver(cfg)
    trainable = {n for n, p in solver.accelerator.unwrap_model(solver.musicgen).named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    exported = solver.fit()
    tuned = MusicgenForConditionalGeneration.from_pretrained(exported / "musicgen")
    assert not any("lora" in k for k in tuned.state_dict())  # merged into a plain MusicGen
    before, after = original.decoder.state_dict(), tuned.decoder.state_dict()
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all(k.endswith(".weight") and "proj" in k or "fc" in k for k in changed)
    assert all(torch.equal(a, b) for a, b in zip(original.text_encoder.state_dict().values(),
                                                 tuned.text_encoder.state_dict().values()))  # fmt: skip


# Each rank trains, then records the world size and a hash of its decoder and conditioner weights.
RANK_SCRIPT = """
import hashlib, json, sys
from pathlib import Path
from hf_musiccodec.training.lm_solver import LMSolver, LMTrainingConfig

solver = LMSolver(LMTrainingConfig.load(sys.argv[1]))
solver.fit()
acc = solver.accelerator
state = {**acc.unwrap_model(solver.musicgen).decoder.state_dict(), **acc.unwrap_model(solver.conditioner).state_dict()}
digest = hashlib.sha256(b"".join(v.cpu().numpy().tobytes() for v in state.values())).hexdigest()
Path(sys.argv[2], f"rank{acc.process_index}.json").write_text(json.dumps({"world": acc.num_processes, "hash": digest}))
"""


def test_two_processes_train_identical_weights(workspace, tmp_path):
    import dataclasses
    import os
    import subprocess

    import yaml

    from hf_musiccodec.testing.distributed import accelerate_launch_command

    cfg = _config(workspace, tmp_path / "run", max_steps=3, save_every=3, validate_every=3)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({k: list(v) if isinstance(v, tuple) else v
                                                       for k, v in dataclasses.asdict(cfg).items()}))
    (tmp_path / "rank.py").write_text(RANK_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(accelerate_launch_command([str(tmp_path / "rank.py"), str(tmp_path / "run.yaml"),
                                                       str(tmp_path)]),
                            env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2] and ranks[0]["hash"] == ranks[1]["hash"]
    assert json.loads((tmp_path / "run" / "model" / "training_state.json").read_text())["step"] == 3


def test_data_driven_key_vectors_are_centred_key_means_of_the_input_embedding():
    from hf_musiccodec.testing.tiny import tiny_text_to_music_pipeline
    from hf_musiccodec.training.key_vectors import key_vectors_from_clips

    musicgen = tiny_text_to_music_pipeline(with_attributes=True, decoder_inputs=True).musicgen
    embed = musicgen.decoder.model.decoder.embed_tokens
    torch.manual_seed(0)
    low, high = torch.randint(0, 8, (2, 2, 30)), torch.randint(8, 16, (2, 2, 30))
    clips = [{"codes": low[0], "key": 0}, {"codes": low[1], "key": 0}, {"codes": high[0], "key": 21},
             {"codes": torch.cat([high[1][:, :20], torch.full((2, 10), 16)], dim=1), "key": 21},  # padded end
             {"codes": high[1], "key": -1}]  # unknown key: not counted  # fmt: skip

    def mean_embedding(codes):
        real = (codes != 16).all(0)
        return (embed[0](codes[0, real]) + embed[1](codes[1, real])).mean(0)

    with torch.no_grad():
        vectors = key_vectors_from_clips(musicgen, clips, norm=0.5)
        major = (mean_embedding(low[0]) + mean_embedding(low[1])) / 2
        minor = (mean_embedding(high[0]) + mean_embedding(clips[3]["codes"])) / 2
    expected = (minor - major) / (minor - major).norm() * 0.5  # two keys: centred, opposite
    assert torch.allclose(vectors[21], expected, atol=1e-6) and torch.allclose(vectors[0], -expected, atol=1e-6)
    assert not vectors[[k for k in range(24) if k not in (0, 21)]].any()
    with pytest.raises(ValueError, match="two or more"):
        key_vectors_from_clips(musicgen, clips[:2])
    with pytest.raises(ValueError, match="same mean embedding"):
        key_vectors_from_clips(musicgen, [{"codes": low[0], "key": 0}, {"codes": low[0], "key": 5}])


def test_init_key_vectors_script_refuses_what_it_cannot_do(workspace, tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("init_key_vectors", ROOT / "scripts" / "init_key_vectors.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    cache = str(workspace / "cache")
    plain = LMSolver(_config(workspace, tmp_path / "plain", max_steps=1, validate_every=0)).fit()
    assert script.main(["--model", str(plain), "--out", str(tmp_path / "x"), "--cache", cache]) == 2
    assert "no per-frame key input" in capsys.readouterr().err
    keyed = LMSolver(_config(workspace, tmp_path / "keyed", rhythm_vocab=8, key_condition=True, decoder_inputs=True,
                             max_steps=1, validate_every=0)).fit()  # fmt: skip
    # this cache's tone clips all give the tiny codec the same codes: no vector can tell keys apart
    assert script.main(["--model", str(keyed), "--out", str(tmp_path / "x"), "--cache", cache]) == 2
    assert "same mean embedding" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert script.main(["--model", str(keyed), "--out", str(plain), "--cache", cache]) == 2
    assert "exists" in capsys.readouterr().err


def test_wrong_key_contrast_on_the_crop_start(workspace, tmp_path, capsys):
    from hf_musiccodec.training.lm_solver import _nll_per_example

    solver = LMSolver(_config(workspace, tmp_path / "contrast", rhythm_vocab=8, key_condition=True, decoder_inputs=True,
                              key_prob=1.0, drop_all=0.0, key_contrast_weight=1.0, key_contrast_seconds=0.2,
                              key_contrast_margin=5.0, max_steps=2, validate_every=0))  # fmt: skip
    batch = next(iter(torch.utils.data.DataLoader(solver.train_set, batch_size=6)))
    flags = solver.condition_flags(6, torch.ones(6, dtype=torch.bool), batch["rhythm_valid"], batch["key"] >= 0)
    # the per-example NLL is transformers' loss for one example (every codebook has as many labels)
    one = {k: (v[:1] if torch.is_tensor(v) else v[:1]) for k, v in batch.items()}
    out, labels = solver.lm_loss(one, {k: v[:1] for k, v in flags.items()})
    pad = solver._musicgen_unwrapped.decoder.config.pad_token_id
    assert torch.allclose(_nll_per_example(out.logits, labels, pad)[0], out.loss, atol=1e-5)
    # only the crops whose key is on (not the estimated one) are contrasted; with a margin far above
    # any gap of an untrained model the hinge is the margin minus the gap
    contrast, gap = solver.key_contrast(batch, flags)
    assert torch.isfinite(contrast) and abs(float(contrast.detach()) - (5.0 - float(gap))) < 1e-4
    contrast.backward()
    assert solver._trained[1].model.key_input.weight.grad.abs().sum() > 0  # the key table learns from it
    solver.fit()
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any("key_gap" in row for row in logged)
    with pytest.raises(ValueError, match="key_condition"):
        _config(workspace, tmp_path / "x", key_contrast_weight=1.0).validate()
    with pytest.raises(ValueError, match="key_contrast_seconds"):
        _config(workspace, tmp_path / "x", key_condition=True, key_contrast_weight=1.0, key_contrast_seconds=9.0).validate()
