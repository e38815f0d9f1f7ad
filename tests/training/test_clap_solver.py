"""ClapSolver on sine tones captioned "a high tone" / "a low tone": the loss drops, the export loads
through AutoModel/AutoProcessor and tells high from low; crops and phrasings are seeded per epoch."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import AutoModel, AutoProcessor

from hf_musiccodec.training.clap_solver import (
    CaptionedCrops,
    ClapSolver,
    ClapTrainingConfig,
    read_captioned_jsonl,
    retrieval_metrics,
)

SR = 8000
TINY = dict(sampling_rate=SR, n_fft=256, hop_length=160, n_mels=32, f_min=20.0, f_max=4000.0, clip_seconds=1.0,
            audio_channels=[32, 32], audio_hidden_size=32, audio_num_layers=1, audio_num_heads=2,
            audio_intermediate_size=64,
            text_head_size=32, text_num_heads=2, text_num_layers=1, text_intermediate_size=64, text_max_length=16,
            projection_dim=16, dropout=0.0)
HIGH = ["a high tone", "a high pitched sine"]
LOW = ["a low tone", "a deep low sine"]


def tone(freq, seconds=2.0, sr=SR, phase=0.0):
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    root = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    lines = []
    for i in range(16):
        high = i % 2 == 0
        freq = rng.uniform(1200, 2400) if high else rng.uniform(80, 200)
        name = f"audio/tone{i}.wav"
        (root / "audio").mkdir(exist_ok=True)
        sf.write(root / name, tone(freq, rng.uniform(1.5, 3.0), phase=rng.uniform(0, 6)), SR)
        lines.append({"path": name, "captions": HIGH if high else LOW, "pitch": "high" if high else "low"})
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (root / "validation.jsonl").write_text("".join(json.dumps({**r, "captions": None, "caption": r["captions"][0]})
                                                   + "\n" for r in lines[:6]))
    return root


def test_trains_loss_drops_exports_and_separates_high_from_low(tones, tmp_path):
    cfg = ClapTrainingConfig(output_dir=str(tmp_path / "run"), train_file=str(tones / "train.jsonl"),
                             validation_file=str(tones / "validation.jsonl"), model_config=TINY, batch_size=8,
                             max_steps=40, learning_rate=1e-3, warmup_steps=5, report_to=None, log_every=100,
                             validate_every=40, save_every=40)
    solver = ClapSolver(cfg)
    folder = solver.fit()
    losses = solver.history
    assert len(losses) == 40
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3, losses
    metrics = solver.validate()
    assert set(metrics) >= {"val/t2a_R@1", "val/a2t_R@1", "val/t2a_R@10", "val/t2a_mAP@10", "val/score"}
    best = json.loads((tmp_path / "run" / "best" / "training_state.json").read_text())
    assert best["step"] == 40 and best["val/score"] >= metrics["val/score"] - 1e-6

    files = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json"} <= files
    model, processor = AutoModel.from_pretrained(folder).eval(), AutoProcessor.from_pretrained(folder)
    with torch.no_grad():
        text = model.get_text_features(**processor(text=["a high tone", "a low tone"])).pooler_output
        clips = [tone(f, 1.7, 16000) for f in (1500, 2000, 100, 150)]
        audio = model.get_audio_features(**processor(audio=clips, sampling_rate=16000)).pooler_output
    assert (audio @ text.T).argmax(1).tolist() == [0, 0, 1, 1]


def test_crops_and_phrasings_are_seeded_per_epoch(tones, tmp_path):
    from hf_musiccodec.conditioning import MusicClapConfig, build_music_clap_processor

    fe = build_music_clap_processor(MusicClapConfig(**TINY)).feature_extractor
    records = read_captioned_jsonl(tones / "train.jsonl")
    data = CaptionedCrops(records, fe, crop_frames=50, seed=1, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.pt"))) == len(records)
    again = CaptionedCrops(records, fe, crop_frames=50, seed=1, cache_dir=tmp_path / "cache")  # from the cache
    first = [data[i] for i in range(len(data))]
    assert all(torch.equal(a["input_features"], again[i]["input_features"]) for i, a in enumerate(first))
    assert first[0]["input_features"].shape == (32, 50) and first[0]["audio_attention_mask"].all()
    seen = set()
    for epoch in range(8):
        data.set_epoch(epoch)
        seen.add(data[0]["caption"])
    assert seen == set(HIGH)
    data.set_epoch(1)
    assert not all(torch.equal(a["input_features"], data[i]["input_features"]) for i, a in enumerate(first))
    augmented = CaptionedCrops(records, fe, crop_frames=50, seed=1, cache_dir=tmp_path / "cache", gain_db=3.0,
                               freq_masks=2, time_masks=2)
    x = augmented[0]["input_features"]
    assert x.shape == (32, 50) and torch.isfinite(x).all() and torch.equal(x, augmented[0]["input_features"])
    assert (x - first[0]["input_features"]).abs().max() > 0


def test_reader_and_metrics(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"path": "x.wav", "caption": ""}) + "\n")
    with pytest.raises(ValueError, match="no caption"):
        read_captioned_jsonl(tmp_path / "a.jsonl")
    sim = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.5, 0.0], [0.0, 0.1, 0.2]])
    m = retrieval_metrics(sim)
    assert m["R@1"] == pytest.approx(2 / 3) and m["R@10"] == 1.0
    assert m["mAP@10"] == pytest.approx((1 + 0.5 + 1) / 3)
    with pytest.raises(ValueError, match="train_file"):
        ClapTrainingConfig(report_to=None).validate()
