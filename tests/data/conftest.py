import numpy as np
import pytest
import soundfile as sf


@pytest.fixture
def make_audio():
    """Write a real audio file: a sine (or silence / noise) of the given length, rate and channels."""

    def make(path, seconds=1.0, sr=16000, channels=1, freq=440.0, amp=0.3, kind="sine", subtype=None):
        n = int(seconds * sr)
        if kind == "sine":
            x = amp * np.sin(2 * np.pi * freq * np.arange(n) / sr)
        elif kind == "noise":
            x = amp * np.random.default_rng(0).standard_normal(n)
        else:
            x = np.zeros(n)
        x = np.repeat(x[:, None], channels, axis=1).astype(np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), x, sr, subtype=subtype)
        return path

    return make
