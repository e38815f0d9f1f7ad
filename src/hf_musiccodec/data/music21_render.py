"""Render music21 corpus scores to audio with FluidSynth, keeping exact metadata.

Scores give what recordings cannot: the instruments, tempo, key, meter and composer are
known exactly, so captions and control targets are ground truth. Pipeline per piece:
parse -> transpose -> set tempo -> assign General MIDI programs -> MIDI -> fluidsynth ->
resample/downmix/normalise -> FLAC, plus one manifest record.

Needs the optional ``music21`` package (extra ``data``) and Debian's ``fluidsynth`` with
``fluid-soundfont-gm``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..audio.io import load_audio, normalize_audio, save_audio
from .manifest import write_manifest
from .splits import split_groups

logger = logging.getLogger(__name__)

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
DEFAULT_TEMPO_BPM = 100.0

# The General MIDI programs used here (0-based program numbers).
GM_PROGRAMS: dict[str, int] = {
    "acoustic grand piano": 0,
    "electric piano": 4,
    "harpsichord": 6,
    "celesta": 8,
    "vibraphone": 11,
    "marimba": 12,
    "church organ": 19,
    "reed organ": 20,
    "accordion": 21,
    "harmonica": 22,
    "acoustic guitar": 24,
    "acoustic bass": 32,
    "violin": 40,
    "viola": 41,
    "cello": 42,
    "contrabass": 43,
    "pizzicato strings": 45,
    "orchestral harp": 46,
    "string ensemble": 48,
    "choir aahs": 52,
    "trumpet": 56,
    "trombone": 57,
    "french horn": 60,
    "brass section": 61,
    "oboe": 68,
    "english horn": 69,
    "bassoon": 70,
    "clarinet": 71,
    "piccolo": 72,
    "flute": 73,
    "recorder": 74,
    "pan flute": 75,
    "bagpipe": 109,
    "fiddle": 110,
}

# Ensembles to draw from, top voice first; a part beyond the list reuses the last entry.
ENSEMBLES: list[list[str]] = [
    ["string ensemble"],
    ["acoustic grand piano"],
    ["church organ"],
    ["harpsichord"],
    ["violin", "viola", "viola", "cello"],
    ["flute", "oboe", "clarinet", "bassoon"],
    ["trumpet", "french horn", "french horn", "trombone"],
    ["choir aahs"],
    ["acoustic guitar"],
    ["orchestral harp"],
    ["marimba"],
    ["electric piano"],
]
# Single melodies (folk tunes) sound better on solo instruments.
SOLO_INSTRUMENTS = [
    "violin",
    "fiddle",
    "flute",
    "recorder",
    "clarinet",
    "oboe",
    "accordion",
    "acoustic guitar",
    "acoustic grand piano",
    "harmonica",
    "pan flute",
    "marimba",
    "vibraphone",
    "harpsichord",
    "bagpipe",
    "trumpet",
    "celesta",
]

# Corpus folder -> (collection name, composer when the score names none, kind of piece).
COLLECTIONS: dict[str, tuple] = {
    "bach": ("Bach chorales", "Johann Sebastian Bach", "chorale"),
    "essenFolksong": ("Essen folk song collection", "Traditional", "folk song"),
    "oneills1850": ("O'Neill's Music of Ireland, 1850", "Traditional", "Irish tune"),
    "ryansMammoth": ("Ryan's Mammoth Collection, 1883", "Traditional", "fiddle tune"),
    "airdsAirs": ("Aird's Airs", "Traditional", "Scottish air"),
    "palestrina": ("Palestrina corpus", "Giovanni Pierluigi da Palestrina", "mass movement"),
    "monteverdi": ("Monteverdi madrigals", "Claudio Monteverdi", "madrigal"),
    "trecento": ("Trecento corpus", "Anonymous", "piece"),
    "josquin": ("Josquin corpus", "Josquin des Prez", "piece"),
    "beethoven": ("Beethoven corpus", "Ludwig van Beethoven", "piece"),
    "mozart": ("Mozart corpus", "Wolfgang Amadeus Mozart", "piece"),
    "haydn": ("Haydn corpus", "Joseph Haydn", "piece"),
}
DEFAULT_COLLECTIONS = ("bach", "essenFolksong", "oneills1850", "ryansMammoth")


@dataclass
class RenderedPiece:
    """Metadata of one rendered clip: everything needed for a caption or a control target."""

    path: str
    piece: str
    title: str
    composer: str
    collection: str
    instruments: list[str]
    gm_programs: list[int]
    tempo_bpm: float  # quarter notes per minute
    original_tempo_bpm: float
    transpose_semitones: int
    key: str
    meter: str
    duration: float
    sampling_rate: int
    channels: int
    num_parts: int
    kind: str = "piece"
    caption: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def fluidsynth_available(soundfont: str = DEFAULT_SOUNDFONT) -> bool:
    return shutil.which("fluidsynth") is not None and Path(soundfont).is_file()


def _require_music21():
    try:
        import music21
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("rendering scores needs music21: pip install 'hf-musiccodec[data]'") from e
    return music21


# --------------------------------------------------------------------------- piece lists


def parse_piece(piece: str):
    """Parse ``"bach/bwv66.6"`` or ``"essenFolksong/altdeu10#3"`` (ABC tune number after ``#``)."""
    music21 = _require_music21()
    name, _, number = piece.partition("#")
    return music21.corpus.parse(name, number=int(number) if number else None)


def list_corpus_pieces(collections: Sequence[str] = DEFAULT_COLLECTIONS) -> list[str]:
    """All piece ids in the given corpus folders; multi-tune ABC files expand to ``file#X``."""
    music21 = _require_music21()
    root = Path(music21.__file__).parent / "corpus"
    pieces = []
    for collection in collections:
        for path in sorted((root / collection).rglob("*")):
            if path.suffix not in (".mxl", ".xml", ".musicxml", ".krn", ".abc", ".mid"):
                continue
            stem = path.relative_to(root).with_suffix("").as_posix()
            if path.suffix == ".abc":
                numbers = re.findall(r"^X:\s*(\d+)", path.read_text(errors="replace"), flags=re.M)
                pieces.extend(f"{stem}#{n}" for n in dict.fromkeys(numbers))
            else:
                pieces.append(stem)
    return pieces


def sample_pieces(n: int, seed: int = 0, collections: Sequence[str] = DEFAULT_COLLECTIONS) -> list[str]:
    """``n`` pieces spread evenly over the collections (round-robin), seeded."""
    rng = np.random.default_rng(seed)
    pools = [p for p in (list_corpus_pieces([c]) for c in collections) if p]
    for pool in pools:
        rng.shuffle(pool)
    chosen: list[str] = []
    while len(chosen) < n and any(pools):
        for pool in pools:
            if pool and len(chosen) < n:
                chosen.append(pool.pop())
    return chosen


# --------------------------------------------------------------------------- score edits


def _score_tempo(score) -> float | None:
    from music21 import tempo

    for mark in score.recurse().getElementsByClass(tempo.MetronomeMark):
        qpm = mark.getQuarterBPM()
        if qpm:
            return float(qpm)
    return None


def _set_tempo(score, bpm: float) -> None:
    from music21 import tempo

    for mark in list(score.recurse().getElementsByClass(tempo.MetronomeMark)):
        mark.activeSite.remove(mark)
    for part in score.parts:
        part.insert(0, tempo.MetronomeMark(number=bpm))


def _set_instruments(score, names: Sequence[str]) -> list[str]:
    from music21 import instrument

    used = []
    for i, part in enumerate(score.parts):
        name = names[min(i, len(names) - 1)]
        for old in list(part.recurse().getElementsByClass(instrument.Instrument)):
            old.activeSite.remove(old)
        inst = instrument.Instrument()
        inst.instrumentName = name
        inst.midiProgram = GM_PROGRAMS[name]
        part.insert(0, inst)
        used.append(name)
    return used


def _truncate(score, quarter_lengths: float):
    """Keep the measures that start before ``quarter_lengths`` (rendering long pieces wastes time)."""
    if score.highestTime <= quarter_lengths:
        return score
    numbers = [m.number for m in score.parts[0].getElementsByClass("Measure") if m.offset < quarter_lengths]
    if not numbers:
        return score
    return score.measures(numbers[0], numbers[-1])


def _meter(score) -> str:
    from music21 import meter

    ts = score.recurse().getElementsByClass(meter.TimeSignature).first()
    return ts.ratioString if ts is not None else "unknown"


# --------------------------------------------------------------------------- rendering


def render_midi(
    midi_path, wav_path, *, sampling_rate: int = 44100, soundfont: str = DEFAULT_SOUNDFONT, gain: float = 0.5
) -> Path:
    """MIDI -> stereo WAV at ``sampling_rate`` with the fluidsynth command-line synthesiser."""
    if not fluidsynth_available(soundfont):
        raise RuntimeError(
            f"fluidsynth or the soundfont {soundfont} is missing: apt-get install fluidsynth fluid-soundfont-gm"
        )
    cmd = [
        "fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(sampling_rate),
        "-T", "wav", "-O", "float", "-F", str(wav_path), soundfont, str(midi_path),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    return Path(wav_path)


def render_piece(
    piece: str,
    out_path,
    *,
    instruments: Sequence[str] | None = None,
    tempo_bpm: float | None = None,
    transpose: int = 0,
    max_seconds: float | None = None,
    sampling_rate: int = 24000,
    channels: int = 1,
    normalize: str | None = "peak",
    fade_out_seconds: float = 0.5,
    soundfont: str = DEFAULT_SOUNDFONT,
    subtype: str = "PCM_16",
    score=None,
) -> RenderedPiece:
    """Render one corpus piece to ``out_path`` and return its metadata.

    ``instruments``: GM instrument names (keys of :data:`GM_PROGRAMS`), top part first;
    default string ensemble. ``tempo_bpm``: quarter notes per minute (default: the score's
    own, else 100). ``transpose``: semitones. ``max_seconds``: keep only the opening, with a
    short fade-out so the clip does not end with a click. ``score``: an already parsed
    ``piece`` (saves a second parse).
    """
    from music21 import interval

    score = parse_piece(piece) if score is None else score
    # Read metadata before the edits below: score.measures() drops it.
    md = score.metadata
    title = _clean_title(md.title if md is not None and md.title else "") or _title_from_id(piece)
    folder = piece.split("/")[0]
    collection, default_composer, kind = COLLECTIONS.get(folder, (folder, "Unknown", "piece"))
    # One spelling per composer ("J.S. Bach" -> "Johann Sebastian Bach"); folk collections
    # keep a composer the score names (O'Carolan).
    composer = md.composer if md is not None and md.composer else None
    if default_composer not in ("Traditional", "Anonymous", "Unknown") or not composer:
        composer = default_composer
    time_signature = _meter(score)
    original_bpm = _score_tempo(score) or DEFAULT_TEMPO_BPM
    bpm = float(tempo_bpm or original_bpm)
    key = score.analyze("key")
    if transpose:
        score = score.transpose(interval.Interval(transpose))
        key = key.transpose(interval.Interval(transpose))
    if max_seconds is not None:
        # + 4 quarters of margin: the audio is cut exactly later.
        score = _truncate(score, max_seconds * bpm / 60 + 4)
    _set_tempo(score, bpm)
    used = _set_instruments(score, list(instruments or ["string ensemble"]))

    out_path = Path(out_path)
    with tempfile.TemporaryDirectory(prefix="m21render-") as tmp:
        midi = Path(tmp) / "piece.mid"
        score.write("midi", fp=str(midi))
        wav = render_midi(midi, Path(tmp) / "piece.wav", sampling_rate=sampling_rate, soundfont=soundfont)
        audio, sr = load_audio(wav, sampling_rate=sampling_rate, channels=channels)
    audio = _trim_silence(audio)
    if max_seconds is not None and audio.shape[-1] > max_seconds * sr:
        audio = audio[:, : int(max_seconds * sr)]
        n = min(int(fade_out_seconds * sr), audio.shape[-1])
        if n:
            audio[:, -n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    if normalize:
        audio = normalize_audio(audio, sr, normalize, name=piece)
    save_audio(out_path, audio, sr, subtype=subtype)

    record = RenderedPiece(
        path=str(out_path),
        piece=piece,
        title=title,
        composer=composer,
        collection=collection,
        instruments=used,
        gm_programs=[GM_PROGRAMS[n] for n in used],
        tempo_bpm=round(bpm, 2),
        original_tempo_bpm=round(original_bpm, 2),
        transpose_semitones=int(transpose),
        key=_key_name(key),
        meter=time_signature,
        duration=round(audio.shape[-1] / sr, 4),
        sampling_rate=sr,
        channels=audio.shape[0],
        num_parts=len(score.parts),
        kind=kind,
    )
    record.caption = make_caption(record)
    return record


def _trim_silence(audio: np.ndarray, threshold: float = 1e-4) -> np.ndarray:
    # fluidsynth output can start with a few silent milliseconds and end with a long release tail.
    loud = np.flatnonzero(np.abs(audio).max(axis=0) > threshold)
    if loud.size == 0:
        return audio
    return audio[:, loud[0] : loud[-1] + 1]


# Conventional tonic spelling per pitch class (transposing can give "A# minor" for "Bb minor").
_MAJOR_TONICS = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_MINOR_TONICS = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]


def _key_name(key) -> str:
    names = _MINOR_TONICS if key.mode == "minor" else _MAJOR_TONICS
    return f"{names[key.tonic.pitchClass]} {key.mode}"


def _clean_title(title: str) -> str:
    title = " ".join(title.split()).strip("\"' ").rstrip(".")
    return title.title() if title.isupper() else title


def _title_from_id(piece: str) -> str:
    stem = piece.split("/")[-1].split("#")[0]
    m = re.fullmatch(r"bwv(\d+(?:\.\d+)?)", stem)
    return f"BWV {m.group(1)}" if m else stem


def make_caption(r: RenderedPiece) -> str:
    """A plain-English description built only from exact metadata."""
    names = list(dict.fromkeys(r.instruments))
    if len(names) == 1:
        played = f"played on {_article(names[0])} {names[0]}" if r.num_parts == 1 else f"arranged for {names[0]}"
    else:
        played = "arranged for " + ", ".join(names[:-1]) + f" and {names[-1]}"
    by = "" if r.composer in ("Traditional", "Anonymous", "Unknown") else f" by {r.composer}"
    traditional = "traditional " if r.composer == "Traditional" and "tune" not in r.kind else ""
    meter = f"{r.meter} time, " if r.meter != "unknown" else ""
    return (
        f"{r.title.strip()}, {_article(traditional or r.kind)} {traditional}{r.kind}{by} ({r.collection}), "
        f"{played}, in {r.key}, {meter}{round(r.tempo_bpm)} BPM."
    )


def _article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


# --------------------------------------------------------------------------- batches


def plan_render(piece: str, seed: int = 0, transpose_range: int = 5, tempo_jitter: float = 0.15) -> dict:
    """Seeded, per-piece choice of instruments, transposition and tempo factor."""
    digest = hashlib.sha1(f"{seed}:{piece}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return {
        "ensemble_index": int(rng.integers(len(ENSEMBLES))),
        "solo_instrument": SOLO_INSTRUMENTS[int(rng.integers(len(SOLO_INSTRUMENTS)))],
        "transpose": int(rng.integers(-transpose_range, transpose_range + 1)),
        "tempo_factor": float(math.exp(rng.uniform(math.log(1 - tempo_jitter), math.log(1 + tempo_jitter)))),
    }


def render_many(
    pieces: Iterable[str],
    out_dir,
    *,
    seed: int = 0,
    max_seconds: float | None = 30.0,
    sampling_rate: int = 24000,
    channels: int = 1,
    soundfont: str = DEFAULT_SOUNDFONT,
    manifest_name: str = "manifest.jsonl",
    validation_fraction: float = 0.1,
) -> list[dict]:
    """Render pieces with seeded instruments/tempo/key variations; write ``manifest.jsonl``
    (paths relative to ``out_dir``, with a train/validation ``split`` per piece).

    Pieces that fail to parse or render are logged and skipped.
    """
    out_dir = Path(out_dir)
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    records = []
    for piece in pieces:
        plan = plan_render(piece, seed)
        try:
            score = parse_piece(piece)
            n_parts = len(score.parts)
            instruments = [plan["solo_instrument"]] if n_parts == 1 else ENSEMBLES[plan["ensemble_index"]]
            bpm = (_score_tempo(score) or DEFAULT_TEMPO_BPM) * plan["tempo_factor"]
            name = re.sub(r"[^A-Za-z0-9._-]+", "_", piece.replace("/", "__")) + ".flac"
            record = render_piece(
                piece,
                out_dir / "audio" / name,
                score=score,
                instruments=instruments,
                tempo_bpm=bpm,
                transpose=plan["transpose"],
                max_seconds=max_seconds,
                sampling_rate=sampling_rate,
                channels=channels,
                soundfont=soundfont,
            )
        except Exception as e:
            logger.warning("skipping %s: %s", piece, e)
            continue
        d = record.to_dict()
        d["path"] = str(Path(record.path).relative_to(out_dir))
        records.append(d)
    # Every render of one score (any instrument/key/tempo) shares the score's split.
    groups = [d["piece"] for d in records]
    for d, split in zip(records, split_groups(groups, validation_fraction, seed, [d["duration"] for d in records])):
        d["split"] = split
    write_manifest(records, out_dir / manifest_name)
    return records
