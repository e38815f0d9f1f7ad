"""The committed pipelines/musiccodec-24khz-music21: loads offline from its shards and, on a
General-MIDI render (the bundled Bach chorale), is closer to the input than the base codec."""

from pathlib import Path

import numpy as np
import pytest
import torch

from hf_musiccodec.audio.io import load_audio, measure_loudness, normalize_audio
from hf_musiccodec.codecs import MusicCodecModel
from hf_musiccodec.metrics import mel_distance

ROOT = Path(__file__).resolve().parents[2]
TUNED, BASE = ROOT / "pipelines" / "musiccodec-24khz-music21", ROOT / "pipelines" / "musiccodec-24khz"
CLIP = ROOT / "src" / "hf_musiccodec" / "assets" / "bach_chorale_bwv66.6_24khz.flac"


def _round_trip(folder: Path, audio: np.ndarray) -> np.ndarray:
    model = MusicCodecModel.from_pretrained(folder).eval()
    with torch.no_grad():
        codes = model.encode(torch.from_numpy(audio)[None], bandwidth=1.5).audio_codes
        return model.decode(codes)[0][0].numpy()


def test_fine_tuned_codec_reconstructs_a_render_better_than_its_base():
    if not (TUNED / "config.json").is_file():
        pytest.skip("pipelines/musiccodec-24khz-music21 is not in this checkout")
    assert len(list(TUNED.glob("model-*.safetensors"))) == 3  # 15 MB shards
    assert (TUNED / "README.md").resolve().name == "musiccodec-24khz-music21.md"  # the card
    audio, sr = load_audio(CLIP, sampling_rate=24000)
    audio = normalize_audio(audio[:, : 8 * sr], sr, "loudness")
    tuned, base = _round_trip(TUNED, audio), _round_trip(BASE, audio)
    n = min(audio.shape[-1], tuned.shape[-1], base.shape[-1])
    tuned_mel, base_mel = mel_distance(audio[:, :n], tuned[:, :n], sr), mel_distance(audio[:, :n], base[:, :n], sr)
    assert tuned_mel < 0.8 * base_mel, (tuned_mel, base_mel)
    assert abs(measure_loudness(tuned, sr) - measure_loudness(audio, sr)) < 4.0
