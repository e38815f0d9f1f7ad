import numpy as np
import pytest

from hf_musiccodec.metrics import (
    dynamics_correlation,
    dynamics_curve,
    melody_accuracy,
    melody_chroma,
    melody_pitch_classes,
)

SR = 22_050
HOP = 256
NOTE_SECONDS = 0.25
MELODY = [60, 64, 67, 72, 71, 69, 67, 65, 64, 62, 60, 67]  # MIDI; pitch class = midi % 12


def _sines(midis, amplitude, seconds=NOTE_SECONDS):
    t = np.arange(int(seconds * SR)) / SR
    fade = np.minimum(1.0, np.minimum(t, seconds - t) * 100)
    return np.concatenate([amplitude * fade * np.sin(2 * np.pi * 440 * 2 ** ((m - 69) / 12) * t) for m in midis])


def _melody(transpose=0, bass=True):
    audio = _sines([m + transpose for m in MELODY], 0.2)
    if bass:  # a bass line 14 dB louder, almost two octaves down, on other pitch classes: the high-pass must remove it
        audio = audio + _sines([m - 22 for m in MELODY], 1.0)
    return audio.astype(np.float32)


def _expected_pitch_classes(n_frames, transpose=0):
    note = np.minimum((np.arange(n_frames) * HOP / SR / NOTE_SECONDS).astype(int), len(MELODY) - 1)
    return (np.asarray(MELODY)[note] + transpose) % 12


def _away_from_note_changes(n_frames, margin=0.03):
    pos = (np.arange(n_frames) * HOP / SR) % NOTE_SECONDS
    return (pos > margin) & (pos < NOTE_SECONDS - margin)


def test_pitch_classes_of_a_known_melody_under_a_loud_bass():
    audio = _melody()
    chroma = melody_chroma(audio, SR)
    assert chroma.shape == (12, 1 + audio.size // HOP)
    pcs = melody_pitch_classes(audio, SR)
    steady = _away_from_note_changes(pcs.size)
    assert np.mean(pcs[steady] == _expected_pitch_classes(pcs.size)[steady]) > 0.97
    # without the high-pass the bass wins: the filter is what makes this a melody feature
    low = melody_pitch_classes(audio, SR, cutoff_hz=20.0)
    assert np.mean(low[steady] == _expected_pitch_classes(pcs.size)[steady]) < 0.1


def test_melody_accuracy_known_cases():
    ref = _melody()
    assert melody_accuracy(ref, ref, SR) == 1.0
    assert melody_accuracy(ref, _melody(bass=False), SR) > 0.95  # same melody, other accompaniment
    assert melody_accuracy(ref, _melody(transpose=1), SR) < 0.1  # a semitone off everywhere
    half = np.concatenate([ref[: ref.size // 2], _melody(transpose=1)[ref.size // 2 :]])
    assert melody_accuracy(ref, half, SR) == pytest.approx(0.5, abs=0.05)


def test_melody_bad_input():
    with pytest.raises(ValueError, match="too low"):
        melody_accuracy(_melody(), _melody(), 800)
    with pytest.raises(ValueError, match="NaN"):
        melody_chroma(np.full(SR, np.inf, dtype=np.float32), SR)
    with pytest.raises(ValueError, match="empty"):
        melody_chroma(np.zeros(0, dtype=np.float32), SR)


def _ramp(start_db, end_db, seconds=4.0, f0=440.0, harmonics=1):
    t = np.arange(int(seconds * SR)) / SR
    gain = 10 ** (np.linspace(start_db, end_db, t.size) / 20)
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, harmonics + 1))
    return (gain * tone / np.sqrt(sum(1 / k**2 for k in range(1, harmonics + 1)))).astype(np.float32)


def test_dynamics_curve_follows_a_known_loudness_ramp():
    curve = dynamics_curve(_ramp(-40, -10), SR)
    t = np.arange(curve.size) * HOP / SR
    expected = -40 + 30 * t / 4.0 - 3.01  # a sine's RMS is 3 dB below its peak
    inner = (t > 0.5) & (t < 3.5)  # the smoother's edges and the STFT padding are looser
    np.testing.assert_allclose(curve[inner], expected[inner], atol=0.5)


def test_dynamics_correlation_known_cases():
    ramp = _ramp(-40, -10)
    other_timbre = _ramp(-30, -6, f0=220.0, harmonics=5)
    assert dynamics_correlation(ramp, other_timbre, SR) > 0.99
    assert dynamics_correlation(ramp, _ramp(-10, -40), SR) < -0.99
    swell = _ramp(-40, -10, seconds=2.0)
    hairpin = np.concatenate([swell, swell[::-1]])
    assert abs(dynamics_correlation(ramp, hairpin, SR)) < 0.2


def test_dynamics_bad_input():
    with pytest.raises(ValueError, match="constant"):
        dynamics_correlation(_ramp(-40, -10), np.zeros(4 * SR, dtype=np.float32), SR)
    with pytest.raises(ValueError, match="NaN"):
        dynamics_curve(np.array([0.0, np.nan], dtype=np.float32), SR)
    with pytest.raises(ValueError, match="rate"):
        dynamics_curve(_ramp(-40, -10), -SR)
