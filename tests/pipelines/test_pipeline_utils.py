"""The generator convention: load_generator, the output contract check, and ToneGenerator, a real
(if trivial) generator that follows it (the benchmark tests reuse it)."""

import json
import re
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import hf_musiccodec
from hf_musiccodec.metrics import estimate_key
from hf_musiccodec.pipelines import GeneratorError, check_generator_output, check_sampling_rate, load_generator

PITCH_CLASSES = {"C": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "F": 5, "F#": 6, "Gb": 6,
                 "G": 7, "G#": 8, "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11}
KEY_RE = re.compile(r"\b([A-G][#b]?) (major|minor)\b")
TEMPO_RE = re.compile(r"(\d+(?:\.\d+)?) BPM")


def arpeggio(tempo: float, key: str, seconds: float, sr: int, noise: np.ndarray | None = None) -> np.ndarray:
    """The tonic triad of ``key`` arpeggiated, one plucked note per beat at ``tempo``: ``(samples,)``."""
    tonic, mode = key.split()
    chord = (0, 3 if mode == "minor" else 4, 7, 12)
    base = 220.0 * 2 ** ((PITCH_CLASSES[tonic] - 9) / 12)  # tonic in the octave below A4
    t = np.arange(int(seconds * sr)) / sr
    beat = 60.0 / tempo
    k = np.floor(t / beat).astype(int)
    freq = base * 2.0 ** (np.take(chord, k % len(chord)) / 12)
    env = np.exp(-6.0 * (t - k * beat))
    y = 0.4 * env * (np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(4 * np.pi * freq * t))
    return (y if noise is None else y + noise).astype(np.float32)


@dataclass
class ToneOutput:
    audios: np.ndarray


class ToneGenerator:
    """Follows the package's generator convention: plays the tonic triad of the key the prompt names
    ("E minor") at the tempo it names ("96 BPM"), else C major at 120 BPM, with seeded noise."""

    def __init__(self, sampling_rate: int = 16_000):
        self.sampling_rate = sampling_rate

    @classmethod
    def from_pretrained(cls, folder):
        return cls(json.loads((folder / "model_index.json").read_text())["sampling_rate"])

    def save_pretrained(self, folder):
        folder.mkdir(parents=True, exist_ok=True)
        index = {"_class_name": type(self).__name__, "sampling_rate": self.sampling_rate}
        (folder / "model_index.json").write_text(json.dumps(index))

    def __call__(self, prompt, audio_length_in_s: float = 10.0, generator: torch.Generator | None = None):
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        samples = int(audio_length_in_s * self.sampling_rate)
        audios = []
        for p in prompts:
            key, tempo = KEY_RE.search(p), TEMPO_RE.search(p)
            noise = 0.005 * torch.randn(samples, generator=generator).numpy()
            audios.append(arpeggio(float(tempo.group(1)) if tempo else 120.0,
                                   " ".join(key.groups()) if key else "C major",
                                   audio_length_in_s, self.sampling_rate, noise))
        return ToneOutput(np.stack(audios)[:, None])


def saved(folder, cls, monkeypatch, sampling_rate=16_000):
    """Save a ``cls`` generator to ``folder`` and export ``cls`` from hf_musiccodec, as a real pipeline is."""
    monkeypatch.setattr(hf_musiccodec, cls.__name__, cls, raising=False)
    cls(sampling_rate).save_pretrained(folder)
    return folder


def test_load_generator_round_trip_and_generator_follows_the_prompt(tmp_path, monkeypatch):
    pipe = load_generator(saved(tmp_path / "tones", ToneGenerator, monkeypatch))
    assert isinstance(pipe, ToneGenerator) and check_sampling_rate(pipe) == 16_000
    out = pipe("a slow piece in E minor, 90 BPM", audio_length_in_s=3.0, generator=torch.Generator().manual_seed(0))
    audios = check_generator_output(out, 1, pipe.sampling_rate, 3.0)
    assert audios.shape == (1, 1, 48_000) and audios.dtype == np.float32
    assert estimate_key(audios[0], pipe.sampling_rate) == "E minor"
    again = pipe("a slow piece in E minor, 90 BPM", audio_length_in_s=3.0, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(again.audios, out.audios)  # seeded


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: None, "does not exist"),
        (lambda d: d.mkdir(), "neither model_index.json"),
        (lambda d: (d.mkdir(), (d / "model_index.json").write_text("{")), "cannot read"),
        (lambda d: (d.mkdir(), (d / "model_index.json").write_text('{"_class_name": "NoSuchPipeline"}')),
         "not a pipeline class of hf_musiccodec"),
        (lambda d: (d.mkdir(), (d / "config.json").write_text('{"model_type": "bert"}')), "not a text-to-audio"),
    ],
)
def test_load_generator_errors_are_one_line(tmp_path, setup, message):
    folder = tmp_path / "gen"
    setup(folder)
    with pytest.raises(GeneratorError, match=message) as e:
        load_generator(folder)
    assert "\n" not in str(e.value)


def test_from_pretrained_failure_is_a_generator_error(tmp_path, monkeypatch):
    folder = saved(tmp_path / "tones", ToneGenerator, monkeypatch)
    (folder / "model_index.json").write_text('{"_class_name": "ToneGenerator"}')  # no sampling_rate
    with pytest.raises(GeneratorError, match="ToneGenerator.from_pretrained.*KeyError"):
        load_generator(folder)


@pytest.mark.parametrize("sr", [None, 0, -8000, 16000.0, True, "16000"])
def test_check_sampling_rate_rejects(sr):
    pipe = ToneGenerator()
    pipe.sampling_rate = sr
    with pytest.raises(GeneratorError, match="sampling_rate"):
        check_sampling_rate(pipe)


@pytest.mark.parametrize(
    "audios, message",
    [
        (None, "has no .audios"),
        ([[[0.0] * 100]], "numpy array or torch tensor"),
        (np.zeros((1, 100), np.float32), "must be \\(batch=1"),
        (np.zeros((2, 1, 100), np.float32), "must be \\(batch=1"),
        (np.zeros((1, 3, 100), np.float32), "must be \\(batch=1"),
        (np.zeros((1, 1, 80), np.float32), "80 samples"),
        (np.full((1, 1, 100), np.nan, np.float32), "NaN"),
    ],
)
def test_check_generator_output_rejects(audios, message):
    with pytest.raises(GeneratorError, match=message):
        check_generator_output(ToneOutput(audios) if audios is not None else object(), 1, 100, 1.0)


def test_check_generator_output_accepts_tensors_and_rounding():
    out = check_generator_output(ToneOutput(torch.zeros(2, 2, 95, dtype=torch.float64)), 2, 100, 1.0)
    assert isinstance(out, np.ndarray) and out.shape == (2, 2, 95) and out.dtype == np.float32


def test_transformers_musicgen_folder_is_wrapped_to_the_convention(tmp_path):
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertModel,
        EncodecConfig,
        EncodecFeatureExtractor,
        EncodecModel,
        MusicgenDecoderConfig,
        MusicgenForCausalLM,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
    )

    from hf_musiccodec.conditioning.text_encoder import minilm_path

    torch.manual_seed(0)
    # MusicGen's generate takes no token_type_ids, which BERT tokenizers return by default.
    tokenizer = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True,
                                              model_input_names=["input_ids", "attention_mask"])
    text = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=32))
    codec = EncodecModel(EncodecConfig(num_filters=4, hidden_size=16, num_lstm_layers=1, codebook_size=64,
                                       target_bandwidths=[1.5], sampling_rate=24_000))
    decoder = MusicgenForCausalLM(MusicgenDecoderConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32, num_codebooks=2,
        max_position_embeddings=256, pad_token_id=64, bos_token_id=64, audio_channels=1))
    for layer in codec.quantizer.layers:  # transformers initialises codebooks to zeros: every code decodes alike
        layer.codebook.embed.normal_()
    model = MusicgenForConditionalGeneration(text_encoder=text, audio_encoder=codec, decoder=decoder)
    model.generation_config.update(pad_token_id=64, decoder_start_token_id=64)
    model.save_pretrained(tmp_path)
    MusicgenProcessor(EncodecFeatureExtractor(sampling_rate=24_000), tokenizer).save_pretrained(tmp_path)

    pipe = load_generator(tmp_path)
    assert pipe.sampling_rate == 24_000
    runs = [pipe(p, audio_length_in_s=0.5, generator=torch.Generator().manual_seed(s))
            for p, s in (("a waltz", 3), ("a waltz", 3), ("a waltz", 4), ("", 3))]
    audios = check_generator_output(runs[0], 1, pipe.sampling_rate, 0.5, tolerance=0.0)
    assert audios.shape[:2] == (1, 1)
    np.testing.assert_array_equal(runs[1].audios, runs[0].audios)  # seeded
    assert not np.allclose(runs[2].audios, runs[0].audios)  # sampled
    assert runs[3].audios.shape == runs[0].audios.shape  # empty prompt: unconditional
