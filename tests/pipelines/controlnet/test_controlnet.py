"""Music ControlNet: controls extracted from audio (melody of a known tune, dynamics of a crescendo,
beats and downbeats of a click track), the control image with partial controls, the pipeline
(controls change the output, a zero-initialised branch changes nothing, save/load offline, one-line
errors), the control cache and a real (tiny) training run that resumes exactly and exports."""

import json

import numpy as np
import pytest
import torch

from hf_musiccodec.pipelines import GeneratorError
from hf_musiccodec.pipelines.controlnet import (
    CONTROL_CHANNELS,
    MusicControlNetPipeline,
    control_condition,
    extract_controls,
)
from hf_musiccodec.pipelines.controlnet.controls import downbeats_from_accents
from hf_musiccodec.testing.tiny import tiny_music_controlnet_pipeline

SR = 24000


def notes(pitches, seconds_each=0.5, sr=SR):
    """A sine melody (MIDI pitches), each note decaying, as float32 samples."""
    t = np.arange(int(seconds_each * sr)) / sr
    return np.concatenate([0.4 * np.sin(2 * np.pi * 440 * 2 ** ((p - 69) / 12) * t) * np.exp(-2 * t)
                           for p in pitches]).astype(np.float32)


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def pipe():
    pipe = tiny_music_controlnet_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_melody_and_dynamics_of_a_known_signal():
    tune = [72, 76, 79, 72, 76, 79, 84, 79]  # C E G C E G C G
    x = notes(tune) * np.linspace(0.1, 1.0, 4 * SR, dtype=np.float32)  # a crescendo
    controls = extract_controls(x, SR, frame_rate=20.0)
    assert controls.num_frames == 80 and controls.rhythm.shape == (2, 80)
    expected = np.repeat([p % 12 for p in tune], 10)
    assert np.mean(controls.melody[2:-2] == expected[2:-2]) > 0.85
    assert controls.dynamics[60] > controls.dynamics[20] + 6  # louder at the end (dB)
    assert controls.structure.shape == (20, 20) and np.allclose(np.diag(controls.structure), 1.0, atol=1e-4)
    silence = extract_controls(np.zeros(SR, np.float32), SR, frame_rate=20.0)
    assert (silence.melody == -1).all()


def test_beats_and_downbeats_of_a_click_track():
    bpm, seconds = 120.0, 6.0
    x = np.zeros(int(seconds * SR), np.float32)
    burst = np.random.default_rng(0).standard_normal(1200).astype(np.float32) * np.exp(-np.arange(1200) / 200)
    for k, start in enumerate(np.arange(0.0, seconds - 0.1, 60 / bpm)):
        i = int(start * SR)
        x[i:i + 1200] += (1.0 if k % 4 == 0 else 0.3) * burst  # accented downbeats in 4/4
    controls = extract_controls(x, SR, frame_rate=50.0)
    def peaks(curve):
        inner = (curve[1:-1] > 0.5) & (curve[1:-1] >= curve[:-2]) & (curve[1:-1] > curve[2:])
        return np.flatnonzero(inner) + 1

    beat_frames, down_frames = peaks(controls.rhythm[0]), peaks(controls.rhythm[1])
    assert len(beat_frames) >= 8 and np.median(np.diff(beat_frames)) == pytest.approx(25, abs=1)
    assert len(down_frames) >= 2 and np.median(np.diff(down_frames)) == pytest.approx(100, abs=2)
    accents = np.array([1.0, 0.2, 0.2, 0.2] * 3)
    np.testing.assert_array_equal(downbeats_from_accents(np.arange(12.0), accents), [0.0, 4.0, 8.0])


def test_control_condition_with_partial_controls():
    frames = 10
    melody = np.array([0, 4, 7, -1, 11, 0, 0, 0, 0, 0])
    first_half = np.arange(frames) < 5
    image = control_condition(frames, melody=melody, dynamics=np.full(frames, -15.0),
                              control_mask={"melody": first_half})
    assert image.shape == (CONTROL_CHANNELS, frames)
    assert image[0, 0] == 1 and image[4, 1] == 1 and image[:12, 3].sum() == 0 and image[11, 4] == 1
    assert image[:12, 5:].sum() == 0                              # masked out
    np.testing.assert_array_equal(image[15], first_half)          # the melody's mask row
    np.testing.assert_allclose(image[12], 1.0)                    # (-15 - -30) / 15
    assert image[16].all() and not image[17].any() and not image[13:15].any()   # dynamics given, rhythm not
    with pytest.raises(ValueError, match="melody must be"):
        control_condition(frames, melody=np.full(frames, 12))
    with pytest.raises(ValueError, match="control_mask"):
        control_condition(frames, rhythm=np.zeros((2, frames)), control_mask=np.ones(3, bool))


def test_controls_steer_the_output_and_a_fresh_branch_changes_nothing(pipe):
    x = notes([60, 64, 67, 72] * 2, 0.25)
    controls = pipe.extract_controls(x, SR)
    assert pipe.control_frame_rate == pipe.frame_rate / pipe.layout.patch
    assert controls.num_frames == round(2.0 * pipe.control_frame_rate)
    plain = pipe("a tune", audio_length_in_s=2.0, num_inference_steps=3, generator=seeded()).audios
    kwargs = dict(melody=controls.melody, dynamics=controls.dynamics, rhythm=controls.rhythm)
    steered = pipe("a tune", audio_length_in_s=2.0, num_inference_steps=3, generator=seeded(), **kwargs).audios
    assert not np.allclose(plain, steered)
    off = pipe("a tune", audio_length_in_s=2.0, num_inference_steps=3, generator=seeded(),
               controlnet_conditioning_scale=0.0, **kwargs).audios
    np.testing.assert_allclose(off, plain, atol=1e-5)
    fresh = tiny_music_controlnet_pipeline(zero_init=True)
    fresh.set_progress_bar_config(disable=True)
    same = fresh("a tune", audio_length_in_s=2.0, num_inference_steps=3, generator=seeded(), **kwargs).audios
    np.testing.assert_allclose(same, plain, atol=1e-5)  # zero convolutions: the base model, unchanged


def test_partial_control_and_other_lengths(pipe):
    controls = pipe.extract_controls(notes([60, 67] * 4, 0.25), SR)
    half = np.arange(controls.num_frames) < controls.num_frames // 2
    a = pipe("a tune", audio_length_in_s=2.0, num_inference_steps=3, generator=seeded(), melody=controls.melody).audios
    b = pipe("a tune", audio_length_in_s=2.0, num_inference_steps=3, generator=seeded(), melody=controls.melody,
             control_mask=half).audios
    assert not np.allclose(a, b)
    longer = pipe("a tune", audio_length_in_s=3.0, num_inference_steps=3, generator=seeded(), melody=controls.melody)
    assert longer.audios.shape == (1, 1, 3 * SR)  # controls of another length are resampled to the output


def test_save_and_load_offline(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == "MusicControlNetPipeline" and index["controlnet"] == ["diffusers", "ControlNetModel"]
    loaded = MusicControlNetPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    melody = np.full(40, 7)
    a = pipe("a tune", audio_length_in_s=1.0, num_inference_steps=2, generator=seeded(), melody=melody).audios
    b = loaded("a tune", audio_length_in_s=1.0, num_inference_steps=2, generator=seeded(), melody=melody).audios
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs, message", [
    (dict(melody=np.full(40, 12)), "pitch classes"),
    (dict(melody=np.zeros(40), dynamics=np.zeros(30)), "same number of frames"),
    (dict(rhythm=np.zeros(40)), "rhythm must be"),
    (dict(dynamics=np.full(40, np.nan)), "finite"),
    (dict(control_mask=np.ones(40, bool)), "at least one control"),
    (dict(melody=np.zeros(40), controlnet_conditioning_scale=-1), "controlnet_conditioning_scale"),
])  # fmt: skip
def test_bad_controls_are_one_line_errors(pipe, kwargs, message):
    with pytest.raises(GeneratorError, match=message) as info:
        pipe("a tune", audio_length_in_s=1.0, num_inference_steps=2, **kwargs)
    assert "\n" not in str(info.value)
