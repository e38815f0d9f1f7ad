"""Tempo and key as symbols a generator is conditioned on: beat-phase tokens and key indices.

A sentence encoder reads "112 BPM" or "in F# minor" as a few word pieces among many; a small
generator trained for an hour does not learn to tie them to the rhythm and pitch content of its
output (measured: see ``model_cards/text-to-music.md``). audiocraft gives such attributes their
own conditioners; here they become:

* **rhythm**: for each codec frame, where it falls within its beat, quantised to ``vocab``
  phases (0 = on the beat). A grid at the asked tempo at inference; the beats an offline tracker
  (``metrics.detect_beats``) finds at the known tempo in training. Per-frame, so the model only has to learn a local rule
  ("an onset where the phase wraps") instead of a tempo.
* **key**: ``tonic + 12 * minor`` (0-23); conditioners feed its tonic triad as pitch classes
  (the third is what makes the mode).
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["NUM_KEYS", "PITCH_CLASS", "beat_grid", "beat_phase_tokens", "key_index", "key_name", "key_triad"]

NUM_KEYS = 24
PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTAL = {"": 0, "#": 1, "♯": 1, "sharp": 1, "b": -1, "♭": -1, "-": -1, "flat": -1}
# Conventional tonic spelling per pitch class (transposing can give "A# minor" for "Bb minor").
MAJOR_TONICS = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
MINOR_TONICS = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]
_KEY_NAME = re.compile(r"^\s*([A-Ga-g])\s*(\s*sharp|\s*flat|#|♯|b|♭|-)?[\s-]*(major|minor)\s*$", re.IGNORECASE)


def key_index(name: str) -> int:
    """``"F# minor"`` -> 18 (tonic + 12 for minor); accepts #/b/♯/♭/sharp/flat and music21's "-"."""
    m = _KEY_NAME.match((name or "").replace("-sharp", " sharp").replace("-flat", " flat"))
    if not m:
        raise ValueError(f"not a key name: {name!r} (expected e.g. 'F# minor' or 'Bb major')")
    letter, accidental, mode = m.group(1).upper(), (m.group(2) or "").strip().lower(), m.group(3).lower()
    tonic = (PITCH_CLASS[letter] + _ACCIDENTAL[accidental]) % 12
    return tonic + 12 * (mode == "minor")


def key_name(index: int) -> str:
    """18 -> ``"F# minor"``: the inverse of :func:`key_index`, tonics spelled conventionally."""
    tonic, minor = int(index) % 12, int(index) >= 12
    return f"{(MINOR_TONICS if minor else MAJOR_TONICS)[tonic]} {'minor' if minor else 'major'}"


def key_triad(index: int) -> tuple[int, int, int]:
    """Pitch classes of the key's tonic triad: tonic, third (minor 3 or major 4 semitones), fifth."""
    tonic, minor = int(index) % 12, int(index) >= 12
    return tonic, (tonic + (3 if minor else 4)) % 12, (tonic + 7) % 12


def beat_grid(bpm: float, frame_rate: float, num_frames: int, first_beat_frame: float = 0.0) -> np.ndarray:
    """Beat positions (in codec frames, float) of a steady tempo covering ``num_frames``."""
    if not bpm > 0:
        raise ValueError(f"bpm must be positive, got {bpm}")
    period = 60.0 * frame_rate / bpm
    count = int(np.ceil((num_frames - first_beat_frame) / period)) + 2
    return first_beat_frame + period * np.arange(max(count, 2))


def beat_phase_tokens(beat_frames, start_frame: int, num_frames: int, vocab: int) -> np.ndarray:
    """int64 ``(num_frames,)``: the beat phase of frames ``start_frame...`` in ``vocab`` steps.

    A frame's time is its centre; between two beats the phase rises linearly from 0 to 1; before
    the first and after the last beat the first / last beat period continues. Needs two beats.
    """
    beats = np.asarray(beat_frames, dtype=np.float64)
    if beats.ndim != 1 or beats.size < 2 or (np.diff(beats) <= 0).any():
        raise ValueError("beat_phase_tokens needs at least two beats in increasing order")
    t = start_frame + np.arange(num_frames) + 0.5
    i = np.clip(np.searchsorted(beats, t, side="right") - 1, 0, beats.size - 2)
    phase = (t - beats[i]) / (beats[i + 1] - beats[i])  # < 0 before the first beat, > 1 after the last
    return np.floor(np.mod(phase, 1.0) * vocab).astype(np.int64) % vocab

