"""Tempo and key as condition symbols: key names, tonic triads, beat grids and beat phases, and
the tempo / key a prompt states (formats, not wordings)."""

import numpy as np
import pytest

from hf_musiccodec.conditioning.musical_attributes import (
    NUM_KEYS,
    beat_grid,
    beat_phase_tokens,
    key_index,
    key_name,
    key_triad,
)
from hf_musiccodec.conditioning.prompt_attributes import TEMPO_BANDS, PromptAttributes, parse_prompt_attributes
from hf_musiccodec.data.music21_render import tempo_band
from hf_musiccodec.metrics import detect_beats


@pytest.mark.parametrize("name, index", [
    ("C major", 0), ("F# minor", 18), ("Bb major", 10), ("B- minor", 22), ("F-sharp minor", 18),
    ("E flat major", 3), ("c# minor", 13), ("G♭ major", 6),
])  # fmt: skip
def test_key_names(name, index):
    assert key_index(name) == index


def test_every_key_name_parses_back():  # the names the render metadata (and so the captions) use
    for index in range(NUM_KEYS):
        assert key_index(key_name(index)) == index
    assert [key_name(i) for i in (1, 13, 22)] == ["Db major", "C# minor", "Bb minor"]


def test_bad_key_names():
    for bad in ("H major", "C dorian", "", "major"):
        with pytest.raises(ValueError, match="not a key name"):
            key_index(bad)


def test_triads_make_the_mode():
    assert key_triad(key_index("C major")) == (0, 4, 7)
    assert key_triad(key_index("A minor")) == (9, 0, 4)
    assert key_triad(key_index("B major")) == (11, 3, 6)


def test_beat_phase_of_a_grid():
    grid = beat_grid(120, 75.0, 100)  # 37.5 frames per beat
    assert grid[0] == 0 and np.allclose(np.diff(grid), 37.5) and grid[-1] >= 100
    tokens = beat_phase_tokens(grid, 0, 100, 8)
    assert tokens.shape == (100,) and tokens.min() == 0 and tokens.max() == 7
    wraps = np.flatnonzero(np.diff(tokens) < 0) + 1  # frames where a new beat starts
    assert wraps.tolist() == [37, 75]
    # a later start gives the same phases as slicing; before the first beat the first period goes on
    assert np.array_equal(beat_phase_tokens(grid, 30, 50, 8), tokens[30:80])
    late = beat_phase_tokens(grid + 10, 0, 10, 4)
    assert np.array_equal(late, beat_phase_tokens(grid, 27, 10, 4))  # 10 frames before a beat = 27.5 after one
    with pytest.raises(ValueError, match="two beats"):
        beat_phase_tokens([3.0], 0, 5, 8)


def test_tracker_finds_the_beats_of_clicks_at_a_known_tempo():
    sr, bpm = 22050, 100.0
    y = np.zeros(int(12 * sr), np.float32)
    onsets = np.arange(0.3, 11.5, 60 / bpm)
    for t in onsets:
        a = int(t * sr)
        y[a : a + 400] += np.hanning(800)[400:] * np.sin(2 * np.pi * 1000 * np.arange(400) / sr)
    beats = detect_beats(y, sr, bpm=bpm, trim=False)
    assert np.allclose(np.median(np.diff(beats)), 0.6, atol=0.03)
    hits = [np.min(np.abs(onsets - b)) < 0.05 for b in beats]
    assert np.mean(hits) > 0.9
    assert detect_beats(np.zeros(sr, np.float32), sr).size == 0  # silence: no beats


@pytest.mark.parametrize("prompt, expected", [
    ("fiddle, 112 BPM, Eb major", PromptAttributes(bpm=112.0, key=3, mode="major")),
    ("a pulse of 96 beats a minute, minor tonality", PromptAttributes(bpm=96.0, mode="minor")),
    ("tempo 70, moderately loud", PromptAttributes(bpm=70.0)),
    ("A slow chorale for strings in B minor.", PromptAttributes(tempo_band="slow", key=23, mode="minor")),
    ("very fast tempo; G minor", PromptAttributes(tempo_band="very fast", key=19, mode="minor")),
    ("Allegro in a minor key", PromptAttributes(tempo_band="fast", mode="minor")),  # lowercase "a": no tonic
    ("mid-tempo, F-sharp major", PromptAttributes(tempo_band="moderate", key=6, mode="major")),
    ("brisk in pace, for flute", PromptAttributes()),  # a tempo word outside the lexicon: text encoder only
    ("", PromptAttributes()),
])  # fmt: skip
def test_prompt_attributes(prompt, expected):
    assert parse_prompt_attributes(prompt) == expected


def test_out_of_range_tempo_is_an_error():
    with pytest.raises(ValueError, match="30-300 BPM"):
        parse_prompt_attributes("a march at 500 BPM")


def test_bands_agree_with_the_render_metadata():
    for band, (low, high) in TEMPO_BANDS.items():
        assert tempo_band(low) == band and tempo_band(high - 0.01) == band
