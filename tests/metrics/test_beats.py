import numpy as np
import pytest

from hf_musiccodec.metrics import beat_f1, detect_beats

SR = 22_050


def test_beats_of_a_click_track():
    import librosa

    times = np.arange(0.5, 10.0, 0.5)  # 120 BPM
    audio = librosa.clicks(times=times, sr=SR, length=10 * SR)
    beats = detect_beats(np.stack([audio, audio]), SR)
    assert beats.ndim == 1 and (np.diff(beats) > 0).all()
    assert beat_f1(times, beats) > 0.9


def test_beat_f1_known_cases():
    ref = np.arange(1.0, 9.0, 0.5)
    assert beat_f1(ref, ref) == 1.0
    assert beat_f1(ref, ref + 0.05) == 1.0  # inside the 70 ms window
    assert beat_f1(ref, ref + 0.1) == 0.0
    assert beat_f1(ref, ref + 0.1, window=0.15) == 1.0
    assert beat_f1(ref, ref[::2]) == pytest.approx(2 / 3)  # half tempo: precision 1, recall 1/2
    assert beat_f1(ref, []) == 0.0  # a generation with no beats


@pytest.mark.parametrize(
    "ref, est, match",
    [
        ([], [1.0], "empty"),
        ([1.0, 0.5], [1.0], "increasing"),
        ([-1.0, 0.5], [1.0], "non-negative"),
        ([1.0, np.nan], [1.0], "NaN"),
        ([[1.0]], [1.0], "1-D"),
    ],
)
def test_beat_f1_bad_input(ref, est, match):
    with pytest.raises(ValueError, match=match):
        beat_f1(ref, est)


def test_detect_beats_bad_input():
    with pytest.raises(ValueError, match="too short"):
        detect_beats(np.zeros(SR // 2, dtype=np.float32), SR)
