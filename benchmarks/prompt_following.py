#!/usr/bin/env python
"""Which prompt attributes a text-to-music generator follows, and which it ignores.

    PYTHONPATH=src python benchmarks/prompt_following.py --generator pipelines/<name> \
        [--clap pipelines/music-clap] [--seconds 8] [--per-value 6] [--seed 0] \
        [--attributes tempo_words tempo_bpm mode key instrument dynamics] [--json out.json]

The generator is any folder :func:`hf_musiccodec.pipelines.load_generator` opens, called as the
package's convention says: ``pipe(prompt, audio_length_in_s=seconds,
generator=torch.Generator().manual_seed(seed))``. The core (:func:`evaluate`) takes any callable
``generate(prompt, seconds, seed) -> (audio, sampling_rate)``.

Controlled prompt sets: in each, one attribute varies over a few values and the rest of the
prompt is fixed (a solo acoustic grand piano, or a fixed tempo word for the instrument set),
worded as the training captions are (``hf_musiccodec.data.captions``, "train" phrase bank):

* **tempo_words**: "Acoustic grand piano solo, {slow|moderate|fast|very fast} tempo." The bands
  are the captions' (``music21_render.tempo_band``: slow < 80 <= moderate < 120 <= fast < 160 <=
  very fast, quarter notes per minute);
* **tempo_bpm**: "Acoustic grand piano solo, at {65|100|140|170} BPM." (inside the bands, away from
  their edges, and where librosa's tempo prior, centred on 120 BPM, rarely halves or doubles);
* **mode**: "Acoustic grand piano solo, {major|minor} key.";
* **key**: "Acoustic grand piano solo, in {C major|A minor|Eb major|F# minor}.";
* **instrument**: "{A violin|...} solo, moderate tempo." over six General MIDI instruments of the training set;
* **dynamics**: "Acoustic grand piano solo, {very quiet|quiet|loud|very loud}." (the renders'
  levels pp, p, f, ff, normalised to -30, -26, -17, -14 LUFS).

Every value gets ``--per-value`` clips, seeds ``seed .. seed + per_value - 1``; the empty prompt
``""`` gets the same seeds once: the **baseline**, what the generator does when it is told nothing.
Clip (value v, seed s) is paired with empty-prompt clip s scored as if v had been asked, so the
baseline of an accuracy is what a generator that ignores the attribute (but plays as it does
unprompted) would score. Measures: tempo from librosa (``estimate_tempo``), key and mode from
key profiles (``estimate_key``), instrument by CLAP zero-shot classification among the set's
instruments (templates of ``benchmarks/clap_eval.py``), loudness as RMS dB.

Verdict per measure: **follows** when the generator's output depends on the value asked (one-sided
p < 0.05) and it scores above the empty-prompt baseline, else **ignores** (**n/a** when nothing
could be measured, e.g. clips under 1 s for tempo). The p values are permutation tests of "the
output does not depend on the value asked" within the prompt set, so the fixed part of the prompt
(which the empty prompt lacks) cannot make an attribute look followed:

* accuracies and the CLAP score: the asked values are shuffled among the clips (every clip is
  scored against every value); the table adds a paired bootstrap 95 % interval of the difference
  generator minus baseline (clip v, s against empty clip s);
* rank correlations (asked BPM / band / loudness vs measured): the measured values are shuffled
  (the baseline's rho is 0 by construction: its clips do not depend on the value asked).

An attribute is "follows" when any of its measures is (each p is uncorrected for the number of
measures). Few clips make the tests weak: with 6 per value an attribute must be followed consistently to be
called "follows"; "ignores" means "no evidence of following", not proof of ignoring. Bad input is
a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml

from hf_musiccodec.metrics import estimate_key, estimate_tempo, key_accuracy
from hf_musiccodec.metrics.benchmark_cli import run_benchmark
from hf_musiccodec.pipelines import GeneratorError, check_generator_output, check_sampling_rate, load_generator

REPO = Path(__file__).resolve().parents[1]
ALPHA = 0.05
N_RESAMPLES = 2000  # bootstrap resamples and permutations
SILENCE_DB = -120.0

# Generator convention for the core: (prompt, seconds, seed) -> (audio (channels, samples) or (samples,), sr).
Generate = Callable[[str, float, int], tuple[np.ndarray, int]]

# As benchmarks/clap_eval.py.
INSTRUMENT_TEMPLATES = ["the sound of {a} {i}", "{a} {i} playing a tune", "a recording featuring {a} {i}"]
BASE = "Acoustic grand piano solo"  # the fixed part: a training instrument name in a training frame


def tempo_band(bpm: float) -> str:
    """As ``hf_musiccodec.data.music21_render.tempo_band`` (the bands the captions name)."""
    return "slow" if bpm < 80 else "moderate" if bpm < 120 else "fast" if bpm < 160 else "very fast"


def _article(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


@dataclass
class Attribute:
    """One controlled prompt set: ``values[i]`` is asked by ``prompts[i]``; ``kind`` says how it is measured."""

    name: str
    kind: str  # tempo_band | tempo_bpm | mode | key | instrument | dynamics
    values: list
    prompts: list[str]
    description: str = ""
    labels: list[str] | None = None  # how the values are shown (default: the values)

    def label(self, v: int) -> str:
        return self.labels[v] if self.labels else str(self.values[v])


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


ATTRIBUTES = {
    "tempo_words": Attribute(
        "tempo_words", "tempo_band", ["slow", "moderate", "fast", "very fast"],
        [f"{BASE}, {w} tempo." for w in ("slow", "moderate", "fast", "very fast")],
        "tempo band word; measured: librosa tempo's band"),
    "tempo_bpm": Attribute(
        "tempo_bpm", "tempo_bpm", [65, 100, 140, 170], [f"{BASE}, at {b} BPM." for b in (65, 100, 140, 170)],
        "explicit BPM, one inside each band; measured: librosa tempo"),
    "mode": Attribute(
        "mode", "mode", ["major", "minor"], [f"{BASE}, {m} key." for m in ("major", "minor")],
        "major/minor; measured: mode of the key estimate"),
    "key": Attribute(
        "key", "key", ["C major", "A minor", "Eb major", "F# minor"],
        [f"{BASE}, in {k}." for k in ("C major", "A minor", "Eb major", "F# minor")],
        "key and mode; measured: key estimate"),
    "instrument": Attribute(
        "instrument", "instrument",
        ["acoustic grand piano", "violin", "flute", "trumpet", "acoustic guitar", "marimba"],
        [_cap(f"{_article(i)} solo, moderate tempo.") for i in
         ("acoustic grand piano", "violin", "flute", "trumpet", "acoustic guitar", "marimba")],
        "solo instrument; measured: CLAP zero-shot class among the set's instruments"),
    "dynamics": Attribute(
        "dynamics", "dynamics", [-30.0, -26.0, -17.0, -14.0],
        [f"{BASE}, {w}." for w in ("very quiet", "quiet", "loud", "very loud")],
        "loudness word, the renders' levels pp, p, f, ff; measured: RMS dB",
        ["very quiet (pp, -30 LUFS)", "quiet (p, -26 LUFS)", "loud (f, -17 LUFS)", "very loud (ff, -14 LUFS)"]),
}

# Measure name -> meaning (printed under the summary, stored in the JSON).
MEASURES = {
    "band accuracy": "share of clips whose estimated tempo is in the asked band",
    "rank correlation": "Spearman rho of the asked value (BPM, band order, target loudness) and the measured one",
    "accuracy 8%": "share of clips whose estimated tempo is within 8 % of the asked BPM",
    "accuracy 8%, octave errors allowed": "same, or within 8 % of twice or half the asked BPM (the tracker's "
                                          "metrical-level errors)",
    "mode accuracy": "share of clips whose estimated mode (major/minor) is the asked one",
    "key accuracy": "share of clips whose estimated key and mode are the asked ones (enharmonics equal)",
    "zero-shot accuracy": "share of clips that CLAP assigns to the asked instrument among the set's instruments",
    "CLAP score": "mean cosine of the CLAP embeddings of the prompt and of the clip",
}


# --------------------------------------------------------------------------- clips and measurements


class BenchmarkError(ValueError):
    """Bad input: reported in one line."""


@dataclass
class Clip:
    """One generated clip, mono, with its measurements computed on first use (``None``: not measurable)."""

    audio: np.ndarray
    sr: int
    cache: dict = field(default_factory=dict)

    def _get(self, name, fn):
        if name not in self.cache:
            try:
                self.cache[name] = fn()
            except ValueError:  # too short, silent, too low a rate: the metric's own checks
                self.cache[name] = None
        return self.cache[name]

    @property
    def tempo(self) -> float | None:
        return self._get("tempo", lambda: estimate_tempo(self.audio, self.sr))

    @property
    def key(self) -> str | None:
        return self._get("key", lambda: estimate_key(self.audio, self.sr))

    @property
    def rms_db(self) -> float:
        rms = float(np.sqrt(np.mean(np.square(self.audio, dtype=np.float64)))) if self.audio.size else 0.0
        return max(SILENCE_DB, 20 * math.log10(rms)) if rms > 0 else SILENCE_DB


def as_clip(audio, sr: int, seconds: float) -> Clip:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(0)
    if audio.ndim != 1:
        raise GeneratorError(f"generated audio must be (samples,) or (channels, samples), got {audio.shape}")
    return Clip(audio[: round(seconds * sr)], int(sr))


class ClapMeasure:
    """CLAP audio embeddings of clips and text embeddings of prompts / instrument classes."""

    def __init__(self, model, processor):
        from hf_musiccodec.metrics import ClapAudioEmbedding

        self.model, self.processor = model, processor
        self.audio_embedding = ClapAudioEmbedding(model, processor)

    @torch.no_grad()
    def texts(self, texts: list[str]) -> np.ndarray:
        out = self.model.get_text_features(**self.processor(text=texts, return_tensors="pt", padding=True))
        return _unit(getattr(out, "pooler_output", out).float().numpy())

    def audio(self, clip: Clip) -> np.ndarray | None:
        if "clap" not in clip.cache:
            emb = self.audio_embedding(clip.audio, clip.sr)
            clip.cache["clap"] = None if not np.linalg.norm(emb) else _unit(emb[None])[0]
        return clip.cache["clap"]

    def classes(self, names: list[str]) -> np.ndarray:
        """One unit vector per class: the mean of its templates' embeddings (as clap_eval.zero_shot)."""
        return _unit(np.stack([self.texts([t.format(a=_article(n).split()[0], i=n) for t in INSTRUMENT_TEMPLATES])
                               .mean(0) for n in names]))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


# --------------------------------------------------------------------------- statistics


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    for v in np.unique(x):  # average ranks for ties
        tie = x == v
        ranks[tie] = ranks[tie].mean()
    return ranks


def spearman(a, b) -> float:
    """Spearman's rho (nan when fewer than 3 pairs or either side is constant)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3:
        return float("nan")
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def permutation_p(a, b, rho: float, rng: np.random.Generator) -> float:
    """One-sided p of a Spearman rho this large under no association (shuffling ``b``)."""
    if not np.isfinite(rho):
        return float("nan")
    b = np.asarray(b, float)
    null = [spearman(a, rng.permutation(b)) for _ in range(N_RESAMPLES)]
    return float((1 + sum(r >= rho - 1e-12 for r in null if np.isfinite(r))) / (1 + N_RESAMPLES))


def paired_bootstrap(generator, baseline, rng: np.random.Generator) -> tuple[float, float]:
    """95 % percentile interval of mean(generator - baseline), resampling pairs."""
    d = np.asarray(generator, float) - np.asarray(baseline, float)
    means = d[rng.integers(0, len(d), (N_RESAMPLES, len(d)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _verdict(generator: float, baseline: float, p: float) -> str:
    if not (np.isfinite(generator) and np.isfinite(p)):
        return "n/a"
    return "follows" if p < ALPHA and generator > (baseline if np.isfinite(baseline) else 0.0) else "ignores"


def label_permutation_p(scores: np.ndarray, asked: np.ndarray, observed: float, rng) -> float:
    """One-sided p of a mean score this large when the asked values are shuffled among the clips.

    ``scores[i, v]``: clip i scored as if value v had been asked. Under "the output does not depend
    on the value asked" every assignment of the asked values to the clips is equally likely.
    """
    rows = np.arange(len(asked))
    null = np.array([scores[rows, rng.permutation(asked)].mean() for _ in range(N_RESAMPLES)])
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + N_RESAMPLES))


def paired_measure(name: str, scores: np.ndarray, asked: np.ndarray, baseline: np.ndarray, seeds: np.ndarray,
                   chance, rng) -> dict:
    """An accuracy or score of clips against the value they were asked for.

    ``scores[i, v]``: generated clip i scored for value v (it was asked ``asked[i]``, with seed index
    ``seeds[i]``); ``baseline[s, v]``: the empty prompt's clip s scored for value v. Clips with a
    missing score (nan) are dropped.
    """
    keep = np.isfinite(scores).all(1) & np.isfinite(baseline[seeds]).all(1)
    if not keep.any():
        return {"measure": name, "generator": float("nan"), "baseline": float("nan"), "chance": chance,
                "ci95": None, "p": float("nan"), "test": "label permutation", "n": 0, "verdict": "n/a"}
    scores, asked, seeds = scores[keep], asked[keep], seeds[keep]
    g = scores[np.arange(len(asked)), asked]
    b = baseline[seeds, asked]
    p = label_permutation_p(scores, asked, float(g.mean()), rng)
    return {"measure": name, "generator": float(g.mean()), "baseline": float(b.mean()), "chance": chance,
            "ci95": list(paired_bootstrap(g, b, rng)), "p": p, "test": "label permutation", "n": int(keep.sum()),
            "verdict": _verdict(float(g.mean()), float(b.mean()), p)}


def correlation_measure(name: str, asked, measured, baseline_measured, rng) -> dict:
    """Spearman of asked vs measured values, with a permutation p (pairs with a missing measurement dropped)."""
    asked, measured, base = (np.asarray(x, float) for x in (asked, measured, baseline_measured))
    keep, keep_b = np.isfinite(measured), np.isfinite(base)
    rho = spearman(asked[keep], measured[keep])
    p = permutation_p(asked[keep], measured[keep], rho, rng)
    baseline = spearman(asked[keep_b], base[keep_b])
    return {"measure": name, "generator": rho, "baseline": baseline, "chance": 0.0, "ci95": None, "p": p,
            "test": "rho permutation", "n": int(keep.sum()), "verdict": _verdict(rho, 0.0, p)}


# --------------------------------------------------------------------------- scoring


def _num(x) -> float:
    return float("nan") if x is None else float(x)


def _key_correct(estimated: str | None, asked: str) -> float:
    return 0.0 if estimated is None else key_accuracy([estimated], [asked])["exact"]


def _mode(key: str | None) -> str | None:
    return None if key is None else key.split()[-1]


def score_attribute(attr: Attribute, clips: list[list[Clip]], empty: list[Clip], rng,
                    clap: ClapMeasure | None = None) -> dict:
    """Per-value rows and measures of one attribute; ``clips[v][s]`` answers ``attr.prompts[v]`` with seed s."""
    values, n_values = attr.values, len(attr.values)
    pairs = [(v, s) for v in range(n_values) for s in range(len(empty))]
    asked = [values[v] for v, _ in pairs]
    rows, measures = [], []

    def rows_numeric(fn, unit):
        for v, value in enumerate(values):
            m = [fn(c) for c in clips[v]]
            rows.append({"value": attr.label(v), "prompt": attr.prompts[v], "n": len(m),
                         f"median {unit}": _median(m), "unmeasured": sum(x is None for x in m)})
        m = [fn(c) for c in empty]
        rows.append({"value": "(empty prompt)", "prompt": "", "n": len(m), f"median {unit}": _median(m),
                     "unmeasured": sum(x is None for x in m)})

    def rows_categorical(fn, correct):
        for v, value in enumerate(values):
            m = [fn(c) for c in clips[v]]
            rows.append({"value": attr.label(v), "prompt": attr.prompts[v], "n": len(m),
                         "most often measured": _most_common(m),
                         "accuracy": float(np.mean([correct(x, value) for x in m]))})
        m = [fn(c) for c in empty]
        rows.append({"value": "(empty prompt)", "prompt": "", "n": len(m), "most often measured": _most_common(m),
                     "accuracy": None})

    asked_index = np.array([v for v, _ in pairs])
    seed_index = np.array([s for _, s in pairs])

    def matrices(score):  # score(clip, value index) -> float: generated and empty clips against every value
        g = np.array([[score(clips[v][s], u) for u in range(n_values)] for v, s in pairs], float)
        b = np.array([[score(c, u) for u in range(n_values)] for c in empty], float)
        return g, b

    def accuracy(name, fn, correct, chance):
        # A clip that cannot be measured (silent, too short) counts as wrong; none measurable: n/a.
        if all(fn(c) is None for c in [c for per_value in clips for c in per_value] + empty):
            g, b = matrices(lambda c, u: float("nan"))
        else:
            g, b = matrices(lambda c, u: correct(fn(c), values[u]))
        measures.append(paired_measure(name, g, asked_index, b, seed_index, chance, rng))

    if attr.kind in ("tempo_band", "tempo_bpm"):
        rows_numeric(lambda c: c.tempo, "BPM")
        measured = [_num(clips[v][s].tempo) for v, s in pairs]
        base = [_num(empty[s].tempo) for _, s in pairs]
        if attr.kind == "tempo_band":
            order = ["slow", "moderate", "fast", "very fast"]
            band_ok = lambda t, band: float(t is not None and tempo_band(t) == band)  # noqa: E731
            accuracy("band accuracy", lambda c: c.tempo, band_ok, 1 / len(order))
            measures.append(correlation_measure("rank correlation", [order.index(a) for a in asked], measured, base,
                                                rng))
        else:
            measures.append(correlation_measure("rank correlation", asked, measured, base, rng))
            within = lambda t, bpm: float(t is not None and abs(t - bpm) <= 0.08 * bpm)  # noqa: E731
            accuracy("accuracy 8%", lambda c: c.tempo, within, None)
            octave = lambda t, bpm: max(within(t, f * bpm) for f in (1.0, 2.0, 0.5))  # noqa: E731
            accuracy("accuracy 8%, octave errors allowed", lambda c: c.tempo, octave, None)
            band_ok = lambda t, bpm: float(t is not None and tempo_band(t) == tempo_band(bpm))  # noqa: E731
            accuracy("band accuracy", lambda c: c.tempo, band_ok, 1 / 4)
    elif attr.kind == "mode":
        rows_categorical(lambda c: _mode(c.key), lambda m, value: float(m == value))
        accuracy("mode accuracy", lambda c: _mode(c.key), lambda m, value: float(m == value), 0.5)
    elif attr.kind == "key":
        rows_categorical(lambda c: c.key, _key_correct)
        accuracy("key accuracy", lambda c: c.key, _key_correct, 1 / 24)
        accuracy("mode accuracy", lambda c: _mode(c.key), lambda m, value: float(m == value.split()[-1]), 0.5)
    elif attr.kind == "instrument":
        if clap is None:
            raise BenchmarkError("the instrument attribute needs a CLAP model (--clap)")
        classes = clap.classes(values)
        prompt_emb = clap.texts(attr.prompts)

        def predicted(c):
            a = clap.audio(c)
            return None if a is None else values[int(np.argmax(classes @ a))]

        rows_categorical(predicted, lambda p, value: float(p == value))
        accuracy("zero-shot accuracy", predicted, lambda p, value: float(p == value), 1 / n_values)

        def cos(c, v):
            a = clap.audio(c)
            return float("nan") if a is None else float(prompt_emb[v] @ a)

        g, b = matrices(cos)
        measures.append(paired_measure("CLAP score", g, asked_index, b, seed_index, None, rng))
    elif attr.kind == "dynamics":
        rows_numeric(lambda c: c.rms_db, "RMS dB")
        measured = [clips[v][s].rms_db for v, s in pairs]
        base = [empty[s].rms_db for _, s in pairs]
        measures.append(correlation_measure("rank correlation", asked, measured, base, rng))
    else:
        raise BenchmarkError(f"unknown attribute kind {attr.kind!r}")
    verdicts = [m["verdict"] for m in measures]
    verdict = "follows" if "follows" in verdicts else "n/a" if set(verdicts) == {"n/a"} else "ignores"
    return {"name": attr.name, "description": attr.description, "rows": rows, "measures": measures,
            "verdict": verdict}


def _median(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return float(np.median(xs)) if xs else None


def _most_common(xs) -> str:
    counts = Counter("—" if x is None else x for x in xs)
    value, n = counts.most_common(1)[0]
    return f"{value} ({n}/{len(xs)})"


# --------------------------------------------------------------------------- core


def evaluate(generate: Generate, attributes: list[Attribute], per_value: int, seconds: float, seed: int = 0,
             clap: ClapMeasure | None = None, log=None) -> dict:
    """Generate every prompt set and the empty-prompt baseline, measure and test them.

    ``generate(prompt, seconds, seed)`` returns ``(audio, sampling_rate)``, audio ``(samples,)`` or
    ``(channels, samples)`` (mixed to mono, cut to ``seconds``).
    """
    if per_value < 1 or seconds <= 0:
        raise BenchmarkError("--per-value must be >= 1 and --seconds > 0")
    started = time.perf_counter()
    seeds = [seed + i for i in range(per_value)]

    def clips_for(prompt):
        return [as_clip(*generate(prompt, seconds, s), seconds) for s in seeds]

    empty = clips_for("")
    results = []
    for attr in attributes:
        if log:
            log(f"{attr.name}: {len(attr.values)} values x {per_value} clips")
        clips = [clips_for(p) for p in attr.prompts]
        rng = np.random.default_rng(seed)  # statistics seeded per attribute: independent of the selection
        results.append(score_attribute(attr, clips, empty, rng, clap))
    return {"seconds": seconds, "per_value": per_value, "seed": seed, "seeds": seeds, "alpha": ALPHA,
            "attributes": results, "measures": MEASURES, "total_seconds": time.perf_counter() - started}


def pipeline_generate(pipe, **call_kwargs) -> Generate:
    """The package's generator convention as a :data:`Generate` callable (``call_kwargs``: extra
    arguments of every call, e.g. ``guidance_scale`` or ``use_clap``)."""
    sr = check_sampling_rate(pipe)

    def generate(prompt: str, seconds: float, seed: int):
        try:
            out = pipe(prompt, audio_length_in_s=seconds, generator=torch.Generator().manual_seed(seed), **call_kwargs)
        except Exception as e:  # whatever the generator raises, the convention was not met
            raise GeneratorError(f"{type(pipe).__name__} failed on prompt {prompt!r}: {type(e).__name__}: {e}"
                                 ) from None
        return check_generator_output(out, 1, sr, seconds)[0], sr

    return generate


# --------------------------------------------------------------------------- output


def _fmt(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _table(head: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]


def attribute_table(a: dict) -> list[str]:
    keys = [k for k in a["rows"][0] if k != "prompt"]
    head = keys[:1] + ["prompt"] + keys[1:]
    rows = [[r[k] if k != "value" else str(r[k]) for k in head] for r in a["rows"]]
    return _table(head, [[c if not isinstance(c, str) or c else "—" for c in r] for r in rows])


def summary_rows(result: dict) -> list[list]:
    rows = []
    for a in result["attributes"]:
        for m in a["measures"]:
            ci = "—" if not m["ci95"] else f"[{m['ci95'][0]:+.2f}, {m['ci95'][1]:+.2f}]"
            rows.append([a["name"], m["measure"], m["generator"], m["baseline"], m["chance"], ci,
                         _fmt(m["p"], 4), m["test"], m["verdict"]])
    return rows


SUMMARY_HEAD = ["attribute", "measure", "generator", "empty-prompt baseline", "chance", "95% CI of difference",
                "p (one-sided)", "test", "verdict"]


def report(result: dict) -> str:
    call = "".join(f", {k}={v}" for k, v in (result.get("call") or {}).items())
    lines = [f"Prompt following of {result.get('generator', 'a generator')}{call}: {result['per_value']} clips per value "
             f"(seeds {result['seeds'][0]}..{result['seeds'][-1]}), {result['seconds']:g} s each; baseline: the "
             "empty prompt with the same seeds", ""]
    for a in result["attributes"]:
        lines += [f"### {a['name']} ({a['description']}): {a['verdict']}", ""] + attribute_table(a) + [""]
    lines += ["### summary", ""] + _table(SUMMARY_HEAD, summary_rows(result)) + [""]
    lines += [f"- {k}: {d}" for k, d in result["measures"].items()]
    lines += ["- empty-prompt baseline: the same measure on the empty prompt's clips, each scored as if the value "
              "of the paired clip (same seed) had been asked; a rank correlation's is 0 by construction "
              "(— when constant)",
              "- chance: a uniformly random answer among the classes (24 keys for key accuracy)",
              "- 95% CI of difference: paired bootstrap of generator minus baseline, pair by pair",
              f"- p (one-sided): permutation test of 'the output does not depend on the value asked' (asked values "
              "shuffled among the clips, or measured values for rho)",
              f"- verdict: 'follows' when p < {ALPHA:g} and the generator is above the baseline; 'ignores' means no "
              "evidence of following at this sample size (p is per measure, not corrected for multiple tests); "
              "'n/a': nothing measurable (e.g. clips under 1 s have no tempo)",
              f"- total time: {result['total_seconds']:.1f} s"]
    return "\n".join(lines)


def _json_safe(x):
    """NaN and infinities as null (strict JSON), numpy scalars as Python numbers."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def load_clap(folder) -> ClapMeasure:
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchmarkError(f"--clap {folder} does not exist")
    import hf_musiccodec.conditioning  # noqa: F401  registers MusicClap with the Auto classes
    from transformers import AutoModel, AutoProcessor

    return ClapMeasure(AutoModel.from_pretrained(folder, local_files_only=True).eval(),
                       AutoProcessor.from_pretrained(folder, local_files_only=True))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", required=True,
                        help="pipeline folder (model_index.json) or transformers MusicGen folder")
    parser.add_argument("--clap", default=str(REPO / "pipelines" / "music-clap"),
                        help="CLAP model folder (only the instrument attribute needs it)")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of every clip (default 8)")
    parser.add_argument("--per-value", type=int, default=6, help="clips per prompt value (default 6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--attributes", nargs="+", choices=list(ATTRIBUTES), default=list(ATTRIBUTES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--call", nargs="*", default=[], metavar="KEY=VALUE",
                        help="extra arguments of every generator call, values as YAML (e.g. guidance_scale=5 "
                             "use_clap=true)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    try:
        args.call_kwargs = {k: yaml.safe_load(v) for k, _, v in (item.partition("=") for item in args.call)}
    except yaml.YAMLError as e:
        parser.error(f"--call: {e}")
    if any("=" not in item for item in args.call):
        parser.error("--call takes KEY=VALUE items")
    if args.per_value < 1 or args.seconds <= 0:
        parser.error("--per-value must be >= 1 and --seconds > 0")
    return args


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    attributes = [ATTRIBUTES[a] for a in dict.fromkeys(args.attributes)]
    pipe = load_generator(args.generator)
    clap = load_clap(args.clap) if any(a.kind == "instrument" for a in attributes) else None
    result = evaluate(pipeline_generate(pipe, **args.call_kwargs), attributes, args.per_value, args.seconds, args.seed, clap,
                      log=lambda m: print(m, file=sys.stderr))
    return {"generator": str(args.generator), "call": args.call_kwargs, "clap": str(args.clap) if clap else None,
            **result}


def main(argv=None) -> int:
    return run_benchmark("prompt_following", parse_args(argv), run, report, to_json=_json_safe)


if __name__ == "__main__":
    sys.exit(main())
