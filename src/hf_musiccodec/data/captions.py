"""Captions written from metadata, in varied phrasings, with phrasings held out for testing.

A text-conditioned model trained on one template learns the template, not the attributes. Each
caption here is drawn (seeded per item) from: a random subset of the item's attributes, in a
random order, each worded by one of several synonyms, joined by one of several frames. Two
disjoint phrase banks exist: ``"train"`` (training and validation) and ``"test"`` (synonyms and
frames never used in training), so text-audio retrieval can be measured on unseen wording.

Only true attributes are ever mentioned: every phrase is a function of one metadata value,
and measured (estimated) values are marked as approximate ("about 92 BPM").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

STYLES = ("train", "test")

# Tempo bands (quarter notes per minute), as in music21_render.tempo_band.
TEMPO_WORDS = {
    "train": {
        "slow": ["slow", "leisurely", "relaxed"],
        "moderate": ["moderate", "moderato", "mid-tempo"],
        "fast": ["fast", "quick", "swift"],
        "very fast": ["very fast", "rapid", "very quick"],
    },
    "test": {
        "slow": ["unhurried", "languid"],
        "moderate": ["walking", "mid-range"],
        "fast": ["brisk", "lively"],
        "very fast": ["breakneck", "racing"],
    },
}
DYNAMICS_WORDS = {
    "train": {
        "pp": ["very soft", "pianissimo", "very quiet"],
        "p": ["soft", "quiet", "softly played"],
        "mp": ["moderately soft", "mezzo-piano"],
        "mf": ["moderately loud", "mezzo-forte"],
        "f": ["loud", "forte"],
        "ff": ["very loud", "fortissimo"],
    },
    "test": {
        "pp": ["hushed", "whisper-quiet"],
        "p": ["subdued", "low-volume"],
        "mp": ["fairly gentle", "somewhat quiet"],
        "mf": ["medium-loud", "at medium volume"],
        "f": ["powerful", "strong in volume"],
        "ff": ["thunderous", "extremely loud"],
    },
}
SHAPE_WORDS = {
    "train": {
        "crescendo": ["getting louder", "with a crescendo", "growing louder"],
        "diminuendo": ["getting softer", "with a diminuendo", "fading"],
        "steady": ["at a steady volume", "with even dynamics"],
    },
    "test": {
        "crescendo": ["swelling in volume", "building up in loudness"],
        "diminuendo": ["dying away", "receding in loudness"],
        "steady": ["level in volume throughout"],
    },
}
# Per attribute: word frames with the value in braces. "{approx}" is "about " for estimates.
FRAMES = {
    "train": {
        "solo": ["solo {i}", "{a_i} solo", "played on {a_i}", "{i}"],
        "ensemble": ["{a_e}", "played by {a_e}", "{e}"],
        "instruments": ["{list}", "played on {list}", "arranged for {list}", "{list} ensemble"],
        "bpm": ["{approx}{bpm} BPM", "tempo {approx}{bpm}", "at {approx}{bpm} BPM"],
        "tempo_word": ["{w} tempo", "{w}", "{a_w} pace"],
        "key": ["in {key}", "{key}", "key of {key}"],
        # Never "in a minor key": the text encoder is uncased, and that reads as "in A minor".
        "mode": ["{mode} key", "{mode} mode", "{mode}-key"],
        "meter": ["{m} time", "in {m}", "{m} meter"],
        "composer": ["by {c}", "written by {c}"],
        "collection": ["from the {coll}", "from {coll}"],
        "kind": ["{a_k}", "{k}"],
        "dynamics": ["{w}", "{w} dynamics"],
        "shape": ["{w}"],
        "genre": ["{g} music", "{g}", "{g} piece"],
        "source": ["from the {s}", "{s}"],
        "title": ['"{t}"', "titled {t}"],
    },
    "test": {
        "solo": ["a lone {i}", "just {a_i}, unaccompanied"],
        "ensemble": ["performed by {a_e}", "{e} performance"],
        "instruments": ["{list} in combination", "scored for {list}"],
        "bpm": ["{approx}{bpm} beats per minute", "a pulse of {approx}{bpm} beats a minute"],
        "tempo_word": ["{w} in pace", "moving at {a_w} speed"],
        "key": ["set in {key}", "tonality {key}", "with {key} as its key"],
        "mode": ["{mode} tonality", "{mode} in tonality"],
        "meter": ["{m} time signature", "with {m} bars"],
        "composer": ["composed by {c}", "a work of {c}"],
        "collection": ["taken from the {coll}", "out of the {coll}"],
        "kind": ["in the style of {a_k}", "a rendition of {a_k}"],
        "dynamics": ["dynamics: {w}", "volume {w}"],
        "shape": ["{w}"],
        "genre": ["{g} in character", "{g} style"],
        "source": ["heard in the {s}", "off the {s}"],
        "title": ["named {t}", "called {t}"],
    },
}
# How the attribute phrases become one caption: (opening, separator, last separator, ending).
SENTENCES = {
    "train": [
        ("", ", ", ", ", "."),
        ("", ", ", " and ", "."),
        ("", "; ", "; ", ""),
        ("A recording of ", ", ", " and ", "."),
        ("Music: ", ", ", ", ", ""),
        ("", ". ", ". ", "."),
    ],
    "test": [
        ("This clip features ", ", ", ", plus ", "."),
        ("Here we hear ", " / ", " / ", "."),
        ("An excerpt, ", " -- ", " -- ", "."),
        ("Listen: ", " + ", " + ", "!"),
    ],
}
# Chance that each optional attribute is mentioned (instruments almost always: it is what a
# listener hears first; the rest vary so that models cannot rely on any one being present).
INCLUDE_PROBABILITY = {
    "instruments": 0.95, "tempo": 0.7, "key": 0.7, "meter": 0.4, "composer": 0.4, "collection": 0.25,
    "kind": 0.4, "dynamics": 0.5, "shape": 0.35, "genre": 0.9, "source": 0.5, "title": 0.2,
}  # fmt: skip
UNNAMED_COMPOSERS = ("Traditional", "Anonymous", "Unknown", "")


def _article(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def _join(items: Sequence[str]) -> str:
    items = list(dict.fromkeys(items))
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def caption_rng(item_id: str, seed: int = 0, style: str = "train") -> np.random.Generator:
    """One generator per (item, seed, style): the same captions on any machine and in any order."""
    digest = hashlib.sha256(f"{seed}:{style}:{item_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _attribute_values(record: dict) -> dict[str, dict]:
    """The attributes a record supports, each as the fields its phrases need."""
    out: dict[str, dict] = {}
    instruments = list(dict.fromkeys(record.get("instruments") or []))
    ensemble = record.get("ensemble") or ""
    if instruments:
        if ensemble == "solo" and len(instruments) == 1:
            out["instruments"] = {"kind": "solo", "i": instruments[0], "a_i": _article(instruments[0])}
        elif ensemble and ensemble not in ("mixed ensemble", "custom") and len(instruments) > 1 and (
            # A "quartet" played by 3 or 5 parts is not one: then name the instruments.
            not ensemble.endswith("quartet") or record.get("num_parts") == 4
        ):
            out["instruments"] = {"kind": "ensemble", "e": ensemble, "a_e": _article(ensemble)}
        else:
            out["instruments"] = {"kind": "instruments", "list": _join(instruments)}
    approx = "about " if record.get("tempo_estimated") else ""
    if record.get("tempo_bpm"):
        out["tempo"] = {"bpm": round(float(record["tempo_bpm"])), "band": record.get("tempo_band"), "approx": approx}
    if record.get("key"):
        out["key"] = {"key": record["key"], "mode": record["key"].split()[-1], "approx": record.get("key_estimated")}
    if record.get("meter") and record["meter"] != "unknown":
        out["meter"] = {"m": record["meter"]}
    if record.get("composer") not in UNNAMED_COMPOSERS and record.get("composer"):
        out["composer"] = {"c": record["composer"]}
    if record.get("collection"):
        out["collection"] = {"coll": record["collection"]}
    kind = record.get("kind")
    if kind and kind != "piece":
        traditional = "traditional " if record.get("composer") == "Traditional" and "tune" not in kind else ""
        out["kind"] = {"k": traditional + kind, "a_k": _article(traditional + kind)}
    if record.get("dynamics"):
        out["dynamics"] = {"level": record["dynamics"]}
        if record.get("dynamic_shape") and record["dynamic_shape"] != "steady":
            out["shape"] = {"shape": record["dynamic_shape"]}
    for name, key in (("genre", "g"), ("source", "s"), ("title", "t")):
        if record.get(name):
            out[name] = {key: record[name]}
    return out


def _phrase(name: str, values: dict, style: str, rng: np.random.Generator) -> str:
    frames = FRAMES[style]

    def pick(options):
        return options[int(rng.integers(len(options)))]

    if name == "instruments":
        return pick(frames[values["kind"]]).format(**values)
    if name == "tempo":
        # A band word when the band is known and the tempo exact (an estimate's band may be wrong).
        if values["band"] and not values["approx"] and rng.random() < 0.5:
            word = pick(TEMPO_WORDS[style][values["band"]])
            return pick(frames["tempo_word"]).format(w=word, a_w=_article(word))
        return pick(frames["bpm"]).format(**values)
    if name == "key":
        hedge = "probably " if values["approx"] else ""
        if not values["approx"] and rng.random() < 0.3:
            return pick(frames["mode"]).format(**values)
        return hedge + pick(frames["key"]).format(**values)
    if name == "dynamics":
        return pick(frames["dynamics"]).format(w=pick(DYNAMICS_WORDS[style][values["level"]]))
    if name == "shape":
        return pick(frames["shape"]).format(w=pick(SHAPE_WORDS[style][values["shape"]]))
    return pick(frames[name]).format(**values)


def make_captions(
    record: dict, num: int = 3, seed: int = 0, style: str = "train", item_id: str | None = None,
    always: Sequence[str] = (),
) -> list[str]:
    """``num`` distinct-as-possible captions of ``record`` (a manifest row) in ``style``'s phrasings.
    ``always``: attributes every caption mentions (where the record has them), e.g. ("tempo", "key").

    Record fields used: instruments, ensemble, tempo_bpm, tempo_band, key, meter, composer,
    collection, kind, dynamics, dynamic_shape, title; for recordings genre and source, and
    ``tempo_estimated``/``key_estimated`` (true for measured values: worded as approximate).
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    rng = caption_rng(item_id or record.get("render_id") or record.get("track_id") or record["path"], seed, style)
    attributes = _attribute_values(record)
    if not attributes:
        raise ValueError(f"no caption attributes in record {item_id or record.get('path')}")
    captions: list[str] = []
    for _ in range(num * 4):  # a few extra draws to avoid repeats; duplicates are kept if unavoidable
        chosen = [n for n in attributes if rng.random() < INCLUDE_PROBABILITY.get(n, 0.5) or n in always]
        if "shape" in chosen and "dynamics" not in chosen:
            chosen.remove("shape")  # "getting louder" alone reads oddly; it follows the level
        if len(chosen) < min(2, len(attributes)):
            chosen = list(rng.permutation(list(attributes))[: min(2, len(attributes))])
        order = [str(n) for n in rng.permutation(chosen)]
        phrases = [_phrase(n, attributes[n], style, rng) for n in order]
        opening, sep, last, end = SENTENCES[style][int(rng.integers(len(SENTENCES[style])))]
        text = phrases[0] if len(phrases) == 1 else sep.join(phrases[:-1]) + last + phrases[-1]
        text = opening + text + end
        caption = text[0].upper() + text[1:]
        if caption not in captions:
            captions.append(caption)
        if len(captions) == num:
            break
    while len(captions) < num:
        captions.append(captions[len(captions) % max(1, len(captions))])
    return captions
