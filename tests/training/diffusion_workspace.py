"""What the latent diffusion tests share: a tiny codec, CLAP and latent cache with conditions, built
from real (synthetic) beat-driven clips at a stated tempo, so that beats and tempo partners exist."""

import numpy as np
import soundfile as sf

from tests.training.token_workspace import SR, build_token_workspace


def write_beat_clips(folder, tempos: list[float], seconds: float = 3.0) -> list[dict]:
    """One clip per tempo: a decaying tone (a semitone higher each clip) struck on every beat, as
    manifest rows stating ``tempo_bpm`` (the condition cache tracks beats at that tempo)."""
    rows = []
    t = np.arange(int(seconds * SR)) / SR
    for i, bpm in enumerate(tempos):
        phase = (t * bpm / 60.0) % 1.0
        x = 0.4 * np.sin(2 * np.pi * 220 * 2 ** (i / 12) * t) * np.exp(-8.0 * phase)
        path = folder / f"beats{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), x.astype(np.float32), SR)
        rows.append({"path": str(path), "duration": seconds, "caption": f"a pulse at {bpm:g} BPM", "tempo_bpm": bpm})
    return rows


def build_diffusion_workspace(root, tempos=(120.0, 120.0, 121.0, 90.0, 120.0, 90.0)):
    """``root/codec``, ``root/clap`` and ``root/cache`` (latents, CLAP, beats) of beat clips at ``tempos``."""
    return build_token_workspace(root, write_beat_clips(root / "audio", list(tempos)))
