"""Tempo and key read from a prompt, for the generators' rhythm and key conditions.

Formats, not wordings: a number followed by "BPM" / "beats per minute" / "beats a minute" or
preceded by "tempo"; a key as a capital tonic letter, an optional accidental and major/minor
("F# minor", "Bb major"); "major"/"minor" alone gives the mode only. Tempo words map to a band
through a fixed lexicon (the training captions' words and the common Italian markings); other
tempo words (and everything else in the prompt) reach the model only through the text encoder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..data.captions import TEMPO_WORDS
from .musical_attributes import key_index

__all__ = ["TEMPO_BANDS", "PromptAttributes", "parse_prompt_attributes"]

# Quarter notes per minute of each band: music21_render.tempo_band's thresholds (80, 120, 160)
# inside the renders' 50-200 BPM.
TEMPO_BANDS = {"slow": (50.0, 80.0), "moderate": (80.0, 120.0), "fast": (120.0, 160.0), "very fast": (160.0, 200.0)}
BPM_RANGE = (30.0, 300.0)
_ITALIAN = {
    "slow": ["largo", "lento", "adagio", "grave"],
    "moderate": ["andante", "andantino", "moderato", "allegretto"],
    "fast": ["allegro", "vivace"],
    "very fast": ["presto", "prestissimo", "vivacissimo"],
}
_TEMPO_LEXICON = sorted(((w, band) for source in (TEMPO_WORDS["train"], _ITALIAN) for band, words in source.items()
                         for w in words), key=lambda wb: -len(wb[0]))  # fmt: skip  # longest first: "very fast"
_NUMBER = r"(\d{2,3}(?:\.\d+)?)"
_BPM = [
    re.compile(_NUMBER + r"\s*(?:bpm|beats?\s*(?:per|a|each|/)\s*min(?:ute)?)\b", re.IGNORECASE),
    re.compile(r"\btempo\s*(?:of\s*)?(?:about\s*|around\s*|~\s*)?" + _NUMBER + r"\b", re.IGNORECASE),
]
_KEY = re.compile(r"\b([A-G](?:#|♯|b|♭|-sharp|-flat| sharp| flat)?)[\s-]+((?i:major|minor))\b")
_MODE = re.compile(r"\b(major|minor)\b", re.IGNORECASE)


@dataclass(frozen=True)
class PromptAttributes:
    bpm: float | None = None          # a number the prompt states
    tempo_band: str | None = None     # a key of TEMPO_BANDS, from a tempo word (when no number)
    key: int | None = None            # 0-23 (musical_attributes.key_index)
    mode: str | None = None           # "major" / "minor" (also set with key)


def parse_prompt_attributes(prompt: str) -> PromptAttributes:
    """The tempo and key a prompt states (None where it states none). Raises ``ValueError`` for
    a stated tempo outside :data:`BPM_RANGE`."""
    text = prompt or ""
    bpm = band = None
    for pattern in _BPM:
        m = pattern.search(text)
        if m:
            bpm = float(m.group(1))
            if not BPM_RANGE[0] <= bpm <= BPM_RANGE[1]:
                raise ValueError(f"the prompt asks for {m.group(0)!r}: tempo must be {BPM_RANGE[0]:g}-{BPM_RANGE[1]:g} BPM")
            break
    if bpm is None:
        lowered = text.lower()
        for word, name in _TEMPO_LEXICON:
            if re.search(rf"\b{re.escape(word)}\b", lowered):
                band = name
                break
    key = mode = None
    m = _KEY.search(text)
    if m:
        key = key_index(f"{m.group(1)} {m.group(2)}")
        mode = m.group(2).lower()
    else:
        m = _MODE.search(text)
        mode = m.group(1).lower() if m else None
    return PromptAttributes(bpm=bpm, tempo_band=band, key=key, mode=mode)
