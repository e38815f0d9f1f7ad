"""Captioned music as ``datasets.DatasetDict`` (train / validation / test) for text-to-music models.

Rows hold an audio path (decode with soundfile, e.g. ``hf_musiccodec.audio.io.load_audio``),
exact or measured metadata columns, one ``caption`` and a list of ``captions`` (several
phrasings of the same metadata, for sampling a new one per epoch; see :mod:`.captions`).

Two sources:

- :func:`music21_caption_dataset`: renders from :mod:`.music21_render` (exact metadata).
- :func:`debian_caption_dataset`: real soundtracks from :mod:`.debian_music`, with package,
  genre, title and a measured tempo and key (worded as approximate).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import datasets

from .captions import make_captions
from .manifest import read_manifest_records
from .music21_render import tempo_band
from .splits import TEST, TRAIN, VALIDATION, split_score, three_way_split

logger = logging.getLogger(__name__)

SPLITS = (TRAIN, VALIDATION, TEST)

MUSIC21_FEATURES = datasets.Features(
    {
        "path": datasets.Value("string"),
        "render_id": datasets.Value("string"),
        "piece": datasets.Value("string"),
        "title": datasets.Value("string"),
        "composer": datasets.Value("string"),
        "collection": datasets.Value("string"),
        "kind": datasets.Value("string"),
        "ensemble": datasets.Value("string"),
        "instruments": datasets.Sequence(datasets.Value("string")),
        "lead_instrument": datasets.Value("string"),
        "gm_programs": datasets.Sequence(datasets.Value("int32")),
        "num_parts": datasets.Value("int32"),
        "tempo_bpm": datasets.Value("float64"),
        "tempo_band": datasets.Value("string"),
        "key": datasets.Value("string"),
        "tonic": datasets.Value("string"),
        "mode": datasets.Value("string"),
        "meter": datasets.Value("string"),
        "transpose_semitones": datasets.Value("int32"),
        "dynamics": datasets.Value("string"),
        "dynamic_shape": datasets.Value("string"),
        "loudness_lufs": datasets.Value("float64"),
        "duration": datasets.Value("float64"),
        "sampling_rate": datasets.Value("int32"),
        "caption": datasets.Value("string"),
        "captions": datasets.Sequence(datasets.Value("string")),
        "novel_combination": datasets.Value("bool"),
        "split": datasets.Value("string"),
    }
)


def held_out_combinations(
    record: dict, fraction: float = 0.02, seed: int = 0, held_out: set[str] | None = None
) -> list[str]:
    """The attribute combinations of ``record`` that training never sees.

    A (lead instrument, mode) or (lead instrument, tempo band) pair, written ``"violin|minor"``
    or ``"flute|very fast"``, is held out when it is in ``held_out`` or, without that set, when
    a stable hash of it is below ``fraction``: the choice never depends on the rest of the
    data, so it stays the same as renders are added.
    """
    lead = record["instruments"][0]
    pairs = [f"{lead}|{record['mode']}", f"{lead}|{record['tempo_band']}"]
    if held_out is not None:
        return [p for p in pairs if p in held_out]
    return [p for p in pairs if split_score(f"combination:{p}", seed) < fraction]


def music21_caption_dataset(
    render_dir,
    *,
    manifest_name: str = "manifest.jsonl",
    combination_fraction: float = 0.02,
    held_out: Iterable[str] | None = None,
    captions_per_item: int = 4,
    seed: int = 0,
) -> datasets.DatasetDict:
    """Train / validation / test ``DatasetDict`` of a :func:`~.music21_render.render_many` folder.

    Splits, leak-free by score (every render of one piece lands in one split):

    - **test**: every piece with at least one render whose (lead instrument, mode) or (lead
      instrument, tempo band) pair is held out (:func:`held_out_combinations`, or the explicit
      ``held_out`` pairs such as ``"violin|minor"``, ``"flute|very fast"``). Those renders are
      flagged ``novel_combination``: their attribute combination never occurs in train or
      validation (a compositional generalisation test); the piece's other renders come along,
      because splitting a score would leak it.
    - **validation**: the manifest's per-piece ``split`` (a stable hash) among the other pieces.
    - **train**: the rest.

    Captions: train and validation use the ``"train"`` phrase bank; test uses the ``"test"``
    bank only (phrasings never used in training), so retrieval can be measured on unseen wording.
    Paths are absolute. The manifest's own ``split`` (train/validation, what codec training
    crops read) knows nothing of the test pieces: to keep them unseen by the codec too, train
    it on this ``train`` split.
    """
    records = read_manifest_records(Path(render_dir) / manifest_name)
    held = None if held_out is None else set(held_out)
    for r in records:
        r["tempo_band"] = tempo_band(r["tempo_bpm"])
        r["mode"] = r["key"].split()[-1]
        r["novel_combination"] = bool(held_out_combinations(r, combination_fraction, seed, held))
    test_pieces = {r["piece"] for r in records if r["novel_combination"]}
    for r in records:
        r["split"] = TEST if r["piece"] in test_pieces else r.get("split", TRAIN)
        style = "test" if r["split"] == TEST else "train"
        r["captions"] = make_captions(r, captions_per_item, seed, style, item_id=r["render_id"])
        r["caption"] = r["captions"][0]
        r["lead_instrument"] = r["instruments"][0]
        r["tonic"] = r["key"].split()[0]
    return _to_dataset_dict(records, MUSIC21_FEATURES)


def _to_dataset_dict(rows: list[dict], features: datasets.Features) -> datasets.DatasetDict:
    columns = list(features)
    out = {}
    for split in SPLITS:
        chosen = [r for r in rows if r["split"] == split]
        out[split] = datasets.Dataset.from_dict({c: [r.get(c) for r in chosen] for c in columns}, features=features)
    return datasets.DatasetDict(out)


# --------------------------------------------------------------------------- Debian soundtracks

# What the package is known to contain (from its description): the "genre" of a caption.
DEBIAN_GENRES = {
    "wesnoth-1.16-music": ("orchestral fantasy", "Battle for Wesnoth soundtrack"),
    "ufoai-music": ("orchestral and electronic", "UFO: Alien Invasion soundtrack"),
    "warzone2100-music": ("electronic", "Warzone 2100 soundtrack"),
    "supertux-data": ("chiptune-style game", "SuperTux soundtrack"),
    "hedgewars-data": ("game", "Hedgewars soundtrack"),
    "widelands-data": ("orchestral", "Widelands soundtrack"),
    "freedroidrpg-data": ("game", "FreedroidRPG soundtrack"),
    "naev-data": ("space game", "Naev soundtrack"),
}

DEBIAN_FEATURES = datasets.Features(
    {
        "path": datasets.Value("string"),
        "track_id": datasets.Value("string"),
        "package": datasets.Value("string"),
        "license": datasets.Value("string"),
        "title": datasets.Value("string"),
        "genre": datasets.Value("string"),
        "source": datasets.Value("string"),
        "group": datasets.Value("string"),
        "duration": datasets.Value("float64"),
        "sampling_rate": datasets.Value("int32"),
        "channels": datasets.Value("int32"),
        "rms_db": datasets.Value("float64"),
        "tempo_bpm": datasets.Value("float64"),  # measured on an excerpt (estimate)
        "key": datasets.Value("string"),  # measured (estimate)
        "mode": datasets.Value("string"),
        "caption": datasets.Value("string"),
        "captions": datasets.Sequence(datasets.Value("string")),
        "split": datasets.Value("string"),
    }
)


def measure_tempo_key(path, *, offset: float = 30.0, seconds: float = 60.0, sampling_rate: int = 22050) -> dict:
    """Estimated tempo (BPM) and key of an excerpt of ``path``, with :mod:`hf_musiccodec.metrics`'
    estimators (imported lazily: metrics are an optional part here). The excerpt skips the intro
    when the track is long enough."""
    from ..audio.io import audio_info, load_audio
    from ..metrics.tempo_key import estimate_key, estimate_tempo

    duration = audio_info(path).duration
    start = offset if duration >= offset + seconds else max(0.0, duration - seconds) / 2
    audio, sr = load_audio(path, sampling_rate=sampling_rate, channels=1, offset=start, duration=seconds)
    return {"tempo_bpm": round(estimate_tempo(audio, sr), 1), "key": estimate_key(audio, sr)}


def debian_caption_dataset(
    data_root="data/debian",
    *,
    measurements_name: str = "measurements.jsonl",
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    captions_per_item: int = 4,
    seed: int = 0,
) -> datasets.DatasetDict:
    """Train / validation / test ``DatasetDict`` of :func:`~.debian_music.fetch_debian_music`'s manifest.

    Tempo and key are measured once per track (:func:`measure_tempo_key`) and kept in
    ``measurements.jsonl`` beside the manifest, so later builds do not decode the audio again.
    Splits are by ``group`` (:func:`~.splits.track_group_key`: near-duplicates such as
    ``x.ogg`` / ``x-old.ogg`` share a split), weighted by duration, and per package.
    Test captions use the held-out phrase bank, as for :func:`music21_caption_dataset`.
    """
    from .manifest import append_manifest_records

    data_root = Path(data_root)
    records = read_manifest_records(data_root / "manifest.jsonl")
    measurements_path = data_root / measurements_name
    known = {m["track_id"]: m for m in read_manifest_records(measurements_path, absolute=False)} if (
        measurements_path.exists()
    ) else {}
    for r in records:
        if r["track_id"] not in known:
            known[r["track_id"]] = {"track_id": r["track_id"], **measure_tempo_key(r["path"])}
            append_manifest_records([known[r["track_id"]]], measurements_path)
        r.update(tempo_bpm=known[r["track_id"]]["tempo_bpm"], key=known[r["track_id"]]["key"])
    by_package: dict[str, list[dict]] = {}
    for r in records:
        by_package.setdefault(r["package"], []).append(r)
    for tracks in by_package.values():
        groups, weights = [t["group"] for t in tracks], [t["duration"] for t in tracks]
        for t, split in zip(tracks, three_way_split(groups, validation_fraction, test_fraction, seed, weights)):
            t["split"] = split
    for r in records:
        r["genre"], r["source"] = DEBIAN_GENRES.get(r["package"], ("game", r["package"]))
        r["mode"] = r["key"].split()[-1]
        r.update(tempo_estimated=True, key_estimated=True)
        style = "test" if r["split"] == TEST else "train"
        r["captions"] = make_captions(r, captions_per_item, seed, style, item_id=r["track_id"])
        r["caption"] = r["captions"][0]
    return _to_dataset_dict(records, DEBIAN_FEATURES)

