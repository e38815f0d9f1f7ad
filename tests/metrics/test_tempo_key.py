import numpy as np
import pytest

from hf_musiccodec.metrics import estimate_key, estimate_tempo, key_accuracy, tempo_accuracy
from hf_musiccodec.metrics.tempo_key import KEY_PROFILES

SR = 22_050


def _clicks(bpm, seconds=8.0):
    import librosa

    return librosa.clicks(times=np.arange(0.1, seconds, 60.0 / bpm), sr=SR, length=int(seconds * SR))


@pytest.mark.parametrize("bpm", [90, 120, 150])
def test_tempo_of_a_click_track(bpm):
    assert estimate_tempo(_clicks(bpm), SR) == pytest.approx(bpm, rel=0.04)


def test_tempo_accuracy_counts_octave_errors_apart():
    reference = [100, 100, 100, 100, 100, 100, 100, 100, 120, 90]
    estimated = [102, 106, 200, 50, 301, 33.4, 150, 100, 119, 60]
    acc = tempo_accuracy(estimated, reference)
    assert acc["acc_4pct"] == pytest.approx(0.3)  # 102, 100, 119
    assert acc["acc_8pct"] == pytest.approx(0.4)  # + 106
    assert acc["octave_x2"] == acc["octave_x1/2"] == acc["octave_x3"] == acc["octave_x1/3"] == pytest.approx(0.1)
    assert acc["octave_any"] == pytest.approx(0.4)  # 150 (x1.5) and 60 (x2/3) are plain errors


def test_tempo_bad_input():
    with pytest.raises(ValueError, match="positive"):
        tempo_accuracy([120], [0])
    with pytest.raises(ValueError, match="1 estimated and 2 reference"):
        tempo_accuracy([120], [120, 100])
    with pytest.raises(ValueError, match="NaN"):
        tempo_accuracy([np.nan], [120])
    with pytest.raises(ValueError, match="too short"):
        estimate_tempo(_clicks(120)[: SR // 2], SR)
    with pytest.raises(ValueError, match="NaN"):
        estimate_tempo(np.full(SR * 2, np.nan, dtype=np.float32), SR)
    with pytest.raises(ValueError, match="rate"):
        estimate_tempo(_clicks(120), 22_050.5)


def _note(midi, seconds):
    t = np.arange(int(seconds * SR)) / SR
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    envelope = np.minimum(1.0, np.minimum(t, seconds - t) * 50)  # 20 ms fades, no clicks
    return envelope * sum(0.5**k * np.sin(2 * np.pi * f0 * (k + 1) * t) for k in range(3))


def _progression(chords, transpose=0, seconds=0.75):
    return 0.1 * np.concatenate([sum(_note(m + transpose, seconds) for m in c) for c in chords]).astype(np.float32)


C_MAJOR = [(60, 64, 67), (65, 69, 72), (67, 71, 74), (60, 64, 67)]  # I IV V I
A_MINOR = [(57, 60, 64), (62, 65, 69), (64, 68, 71), (57, 60, 64)]  # i iv V i (harmonic minor)


@pytest.mark.parametrize(
    "chords, transpose, key",
    [(C_MAJOR, 0, "C major"), (C_MAJOR, 3, "Eb major"), (C_MAJOR, 6, "F# major"),
     (A_MINOR, 0, "A minor"), (A_MINOR, 3, "C minor"), (A_MINOR, -4, "F minor")],
)
def test_key_of_a_cadence(chords, transpose, key):
    audio = _progression(chords, transpose)
    assert estimate_key(audio, SR) == key
    for profiles in KEY_PROFILES:  # every profile set finds a plain cadence's key, stereo too
        assert estimate_key(np.stack([audio, audio]), SR, profiles=profiles) == key


def test_key_accuracy_exact_and_weighted():
    reference = ["C major", "C major", "A minor", "C major", "C major", "C# major"]
    estimated = ["C major", "G major", "C major", "C minor", "D major", "Db major"]
    acc = key_accuracy(estimated, reference)
    assert acc["exact"] == pytest.approx(2 / 6)  # enharmonic spelling counts as exact
    assert acc["weighted"] == pytest.approx((1 + 0.5 + 0.3 + 0.2 + 0 + 1) / 6)


def test_key_bad_input():
    with pytest.raises(ValueError, match="bad key"):
        key_accuracy(["H major"], ["C major"])
    with pytest.raises(ValueError, match="need >= 1"):
        key_accuracy([], [])
    with pytest.raises(ValueError, match="profiles"):
        estimate_key(_progression(C_MAJOR), SR, profiles="shaath")
    with pytest.raises(ValueError, match="silent"):
        estimate_key(np.zeros(SR, dtype=np.float32), SR)
    with pytest.raises(ValueError, match="too low"):
        estimate_key(_progression(C_MAJOR), 4000)
