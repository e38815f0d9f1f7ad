"""Music ControlNet's time-varying controls, extracted from any audio at a pipeline's frame rate.

:func:`extract_controls` returns, one value per output frame:

- ``melody`` ``(frames,)``: the top-1 pitch class (0 = C ... 11 = B) of the chroma after Music
  ControlNet's high-pass at middle C (``metrics.melody_chroma``), -1 where the frame is silent;
- ``dynamics`` ``(frames,)``: the smoothed frame level in dB (``metrics.dynamics_curve``);
- ``rhythm`` ``(2, frames)``: beat and downbeat activations in [0, 1] (a Gaussian bump one frame
  wide on each), beats from librosa's tracker; downbeats are the beats of the metrical phase (in
  3 or 4) with the strongest onsets, a heuristic stand-in for a downbeat tracker (BeatNet's and
  madmom's weights are not usable here);
- ``structure`` ``(frames', frames')``: the chroma self-similarity matrix (DITTO's structure
  target), at a quarter of the frame rate.

:func:`control_condition` turns controls (any subset, each optionally masked in time) into the
``(channels, frames)`` image the ControlNet reads: 12 melody one-hot rows, 1 scaled dynamics row,
2 rhythm rows, and 3 mask rows saying where each control is given (so "no control" differs from a
control whose value is zero: the paper's partial controls).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MusicControls", "extract_controls", "reference_controls", "control_condition", "CONTROL_CHANNELS",
           "CONTROL_NAMES", "downbeats_from_accents"]

CONTROL_NAMES = ("melody", "dynamics", "rhythm")
CONTROL_CHANNELS = 12 + 1 + 2 + 3
SILENT_DB = -50.0        # a frame below this level has no melody
DYNAMICS_CENTRE_DB, DYNAMICS_SCALE_DB = -30.0, 15.0  # dB -> about [-1, 1] for the network
STRUCTURE_POOL = 4


@dataclass
class MusicControls:
    """Controls of one clip, one value per frame at ``frame_rate`` (see the module docstring)."""

    melody: np.ndarray
    dynamics: np.ndarray
    rhythm: np.ndarray
    structure: np.ndarray
    frame_rate: float

    @property
    def num_frames(self) -> int:
        return int(self.melody.shape[-1])


def _at_frames(curve: np.ndarray, hop_seconds: float, frames: int, frame_rate: float) -> np.ndarray:
    """Sample a curve with frames ``hop_seconds`` apart at the centres of ``frames`` output frames."""
    centres = (np.arange(frames) + 0.5) / frame_rate
    index = np.clip(np.rint(centres / hop_seconds).astype(np.int64), 0, curve.shape[-1] - 1)
    return curve[..., index]


def downbeats_from_accents(beats: np.ndarray, accents: np.ndarray) -> np.ndarray:
    """The beats of the metrical phase with the strongest mean accent, in 3 or 4 beats to the bar."""
    if beats.size < 6:
        return beats[:1]
    best, best_score = beats[:1], -np.inf
    for meter in (4, 3):
        for phase in range(meter):
            score = accents[phase::meter].mean() / (accents.mean() + 1e-9)
            if score > best_score + 1e-6:  # ties keep 4/4, the commoner meter
                best, best_score = beats[phase::meter], score
    return best


def _activation(times: np.ndarray, frames: int, frame_rate: float) -> np.ndarray:
    """Gaussian bumps (one frame standard deviation) at ``times`` seconds, max 1."""
    grid = np.arange(frames)[:, None]
    if times.size == 0:
        return np.zeros(frames, np.float32)
    bumps = np.exp(-0.5 * (grid - times[None, :] * frame_rate + 0.5) ** 2)
    return bumps.max(axis=1).astype(np.float32)


def extract_controls(audio, sampling_rate: int, frame_rate: float, frames: int | None = None) -> MusicControls:
    """Melody, dynamics, rhythm and structure of ``audio`` ``(samples,)`` or ``(channels, samples)``
    at ``frame_rate`` frames a second (``frames``: how many; default the audio's length)."""
    import librosa

    from ...metrics.beats import detect_beats
    from ...metrics.melody_dynamics import dynamics_curve, melody_chroma

    y = np.asarray(audio, dtype=np.float32)
    y = y.mean(axis=0) if y.ndim == 2 else y
    frames = int(np.ceil(y.size / sampling_rate * frame_rate)) if frames is None else int(frames)
    hop = 256
    chroma = melody_chroma(y, sampling_rate, hop_length=hop)
    db = dynamics_curve(y, sampling_rate, hop_length=hop)
    loudness = dynamics_curve(y, sampling_rate, hop_length=hop, smooth_seconds=0.0)
    melody = _at_frames(chroma.argmax(axis=0), hop / sampling_rate, frames, frame_rate).astype(np.int64)
    melody[_at_frames(loudness, hop / sampling_rate, frames, frame_rate) < SILENT_DB] = -1
    dynamics = _at_frames(db, hop / sampling_rate, frames, frame_rate).astype(np.float32)
    beats = detect_beats(y, sampling_rate, trim=False) if y.size >= sampling_rate else np.zeros(0)
    onsets = librosa.onset.onset_strength(y=y, sr=sampling_rate, hop_length=hop)
    # a beat's accent: the strongest onset within two envelope frames of it (the tracker's beat may sit a
    # frame off the envelope's peak)
    centre = np.rint(beats * sampling_rate / hop).astype(np.int64)
    near = np.clip(centre[:, None] + np.arange(-2, 3)[None, :], 0, onsets.size - 1)
    accents = onsets[near].max(axis=1) if beats.size else np.zeros(0)
    downbeats = downbeats_from_accents(beats, accents)
    rhythm = np.stack([_activation(beats, frames, frame_rate), _activation(downbeats, frames, frame_rate)])
    coarse = max(frames // STRUCTURE_POOL, 1)  # structure frames, each the mean of STRUCTURE_POOL frames
    pooled = _at_frames(chroma, hop / sampling_rate, coarse * STRUCTURE_POOL, frame_rate)
    pooled = pooled.reshape(12, coarse, STRUCTURE_POOL).mean(axis=2)
    unit = pooled / np.maximum(np.linalg.norm(pooled, axis=0, keepdims=True), 1e-8)
    return MusicControls(melody=melody, dynamics=dynamics, rhythm=rhythm, structure=(unit.T @ unit).astype(np.float32),
                         frame_rate=float(frame_rate))


def reference_controls(pipe, audio, sampling_rate: int, frames: int | None = None) -> MusicControls:
    """The controls of a user's reference for a latent diffusion pipeline ``pipe`` (Music ControlNet's
    inputs, DITTO's targets): the audio checked (NaN, silence, too short: one-line ``GeneratorError``),
    resampled to the pipeline's rate, mono, one frame per U-Net column."""
    from ..latent_diffusion.pipeline_music_diffusion import MIN_INPUT_S
    from ..pipeline_utils import user_waveform

    x = user_waveform(audio, sampling_rate, pipe.sampling_rate, 1, "audio", MIN_INPUT_S)
    return extract_controls(x[0], pipe.sampling_rate, pipe.frame_rate / pipe.layout.patch, frames)


def control_condition(frames: int, melody=None, dynamics=None, rhythm=None, control_mask=None) -> np.ndarray:
    """The ControlNet's input ``(CONTROL_CHANNELS, frames)`` float32 from any subset of controls.

    ``melody`` ``(frames,)`` pitch classes (-1: none), ``dynamics`` ``(frames,)`` dB, ``rhythm``
    ``(2, frames)`` activations; each given control may be masked in time by ``control_mask``: a
    ``(frames,)`` bool array for all of them or a dict name -> ``(frames,)`` bool (True = controlled).
    """
    out = np.zeros((CONTROL_CHANNELS, frames), np.float32)
    given = {"melody": melody, "dynamics": dynamics, "rhythm": rhythm}
    for i, name in enumerate(CONTROL_NAMES):
        value = given[name]
        if value is None:
            continue
        mask = control_mask.get(name) if isinstance(control_mask, dict) else control_mask
        mask = np.ones(frames, bool) if mask is None else np.asarray(mask, bool)
        if mask.shape != (frames,):
            raise ValueError(f"control_mask for {name} must be ({frames},) booleans, got shape {mask.shape}")
        value = np.asarray(value)
        if name == "melody":
            value = value.astype(np.int64)
            if value.shape != (frames,) or (value < -1).any() or (value > 11).any():
                raise ValueError(f"melody must be ({frames},) pitch classes in 0-11 (or -1), got shape {value.shape}")
            pitched = (value >= 0) & mask
            out[value[pitched], np.flatnonzero(pitched)] = 1.0
        elif name == "dynamics":
            if value.shape != (frames,) or not np.isfinite(value).all():
                raise ValueError(f"dynamics must be ({frames},) finite dB values, got shape {value.shape}")
            out[12] = np.where(mask, (value - DYNAMICS_CENTRE_DB) / DYNAMICS_SCALE_DB, 0.0)
        else:
            if value.shape != (2, frames) or not np.isfinite(value).all():
                raise ValueError(f"rhythm must be (2, {frames}) beat/downbeat activations, got shape {value.shape}")
            out[13:15] = np.where(mask[None], np.clip(value, 0.0, 1.0), 0.0)
        out[15 + i] = mask
    return out
