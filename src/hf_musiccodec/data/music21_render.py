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
import multiprocessing
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..audio.io import match_channels, measure_loudness, normalize_audio, save_audio
from ..conditioning.musical_attributes import key_name
from .manifest import append_manifest_records, read_manifest_records
from .splits import assign_split

logger = logging.getLogger(__name__)

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
DEFAULT_TEMPO_BPM = 100.0

# The General MIDI programs used here (0-based program numbers).
GM_PROGRAMS: dict[str, int] = {
    "acoustic grand piano": 0,
    "electric piano": 4,
    "harpsichord": 6,
    "celesta": 8,
    "glockenspiel": 9,
    "music box": 10,
    "vibraphone": 11,
    "marimba": 12,
    "xylophone": 13,
    "church organ": 19,
    "reed organ": 20,
    "accordion": 21,
    "harmonica": 22,
    "acoustic guitar": 24,
    "steel-string guitar": 25,
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
    "tuba": 58,
    "french horn": 60,
    "brass section": 61,
    "soprano sax": 64,
    "alto sax": 65,
    "tenor sax": 66,
    "baritone sax": 67,
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

# Named ensembles for polyphonic scores, top voice first; a part beyond the list reuses the last entry.
ENSEMBLES: dict[str, list[str]] = {
    "string orchestra": ["string ensemble"],
    "piano": ["acoustic grand piano"],
    "organ": ["church organ"],
    "harpsichord": ["harpsichord"],
    "string quartet": ["violin", "violin", "viola", "cello"],
    "woodwind quartet": ["flute", "oboe", "clarinet", "bassoon"],
    "brass quartet": ["trumpet", "trumpet", "french horn", "trombone", "tuba"],
    "saxophone quartet": ["soprano sax", "alto sax", "tenor sax", "baritone sax"],
    "choir": ["choir aahs"],
    "guitar": ["acoustic guitar"],
    "harp": ["orchestral harp"],
    "marimba": ["marimba"],
    "electric piano": ["electric piano"],
    "vibraphone": ["vibraphone"],
    "pizzicato strings": ["pizzicato strings"],
    "reed organ": ["reed organ"],
}
# "mixed ensemble": one instrument per part drawn by register (top, inner, bass voices),
# so that instrument combinations are not limited to the named ensembles.
MIXED_REGISTERS: tuple[list[str], list[str], list[str]] = (
    ["flute", "oboe", "violin", "clarinet", "trumpet", "soprano sax", "recorder", "piccolo"],
    ["viola", "clarinet", "french horn", "alto sax", "english horn", "tenor sax", "acoustic guitar"],
    ["cello", "bassoon", "trombone", "tuba", "contrabass", "acoustic bass", "baritone sax"],
)
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
    "steel-string guitar",
    "acoustic grand piano",
    "electric piano",
    "harmonica",
    "pan flute",
    "marimba",
    "xylophone",
    "vibraphone",
    "glockenspiel",
    "music box",
    "harpsichord",
    "bagpipe",
    "trumpet",
    "celesta",
    "alto sax",
    "tenor sax",
    "piccolo",
    "english horn",
    "cello",
    "orchestral harp",
]

# Dynamic level -> (MIDI velocity, target loudness in LUFS). The soundfont changes timbre with
# velocity, and the clip is normalised to the level's loudness, so "soft" really is quieter.
DYNAMICS: dict[str, tuple[int, float]] = {
    "pp": (36, -30.0),
    "p": (50, -26.0),
    "mp": (64, -23.0),
    "mf": (80, -20.0),
    "f": (96, -17.0),
    "ff": (112, -14.0),
}
# Velocity change over the clip for each dynamic shape (crescendo/diminuendo ramp linearly).
DYNAMIC_SHAPES: dict[str, int] = {"steady": 0, "crescendo": 40, "diminuendo": -40}
TEMPO_RANGE = (50.0, 200.0)

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
DEFAULT_COLLECTIONS = (
    "bach", "essenFolksong", "oneills1850", "ryansMammoth", "airdsAirs", "palestrina", "monteverdi",
)  # fmt: skip


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
    ensemble: str = ""  # "solo", a name from ENSEMBLES or "mixed ensemble"
    dynamics: str = ""  # a DYNAMICS level, "" when the score's own velocities were kept
    dynamic_shape: str = "steady"
    loudness_lufs: float = 0.0  # measured on the written clip
    render_id: str = ""  # "<piece>@<render index>": unique per clip
    caption: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return self.key.split()[-1]

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


def _set_velocities(score, velocity: int, ramp: int, clip_quarters: float) -> None:
    """Every note at ``velocity`` (+ ``ramp`` spread linearly over the clip), replacing score dynamics."""
    from music21 import dynamics

    for mark in list(score.recurse().getElementsByClass(dynamics.Dynamic)):
        mark.activeSite.remove(mark)
    for part in score.parts:
        flat = part.flatten()
        for n in flat.notes:
            position = min(flat.elementOffset(n) / max(clip_quarters, 1e-6), 1.0)
            n.volume.velocity = int(np.clip(round(velocity + ramp * (position - 0.5)), 16, 127))
            n.volume.velocityIsRelative = False  # absolute: no scaling by remaining dynamics context


def _meter(score) -> str:
    from music21 import meter

    ts = score.recurse().getElementsByClass(meter.TimeSignature).first()
    return ts.ratioString if ts is not None else "unknown"


# --------------------------------------------------------------------------- rendering


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the parent dies (Linux), so a killed render job never
    leaves a fluidsynth behind (one that may never finish, see :func:`render_midi`)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux/glibc: nothing to do
        pass


def render_midi(
    midi_path,
    *,
    sampling_rate: int = 44100,
    soundfont: str = DEFAULT_SOUNDFONT,
    gain: float = 0.5,
    stop_after_seconds: float | None = None,
) -> np.ndarray:
    """MIDI -> stereo float32 audio (2, samples) at ``sampling_rate`` with the fluidsynth command line.

    ``stop_after_seconds``: stop fluidsynth once it has rendered this much. fluidsynth 2.3 never
    finishes some ordinary MIDI files (endless silence after the music, gigabytes of it): the
    output is headerless raw samples, so a stopped render is still valid audio.
    """
    if not fluidsynth_available(soundfont):
        raise RuntimeError(
            f"fluidsynth or the soundfont {soundfont} is missing: apt-get install fluidsynth fluid-soundfont-gm"
        )
    with tempfile.TemporaryDirectory(prefix="fluidsynth-") as tmp:
        raw = Path(tmp) / "out.raw"
        cmd = [
            "fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(sampling_rate),
            "-T", "raw", "-O", "float", "-E", "little", "-F", str(raw), soundfont, str(midi_path),
        ]  # fmt: skip
        enough = None if stop_after_seconds is None else int(stop_after_seconds * sampling_rate) * 2 * 4
        with subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent
        ) as proc:
            deadline = time.monotonic() + 600
            while proc.poll() is None:
                if enough is not None and raw.exists() and raw.stat().st_size >= enough:
                    proc.kill()
                    proc.wait()
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError(f"fluidsynth did not finish {midi_path} in 600 s")
                time.sleep(0.02)
            else:
                if proc.returncode:
                    raise RuntimeError(f"fluidsynth failed ({proc.returncode}): {proc.stderr.read().decode()[-300:]}")
        data = np.fromfile(raw, dtype="<f4")
    frames = data.size // 2
    if enough is not None:
        frames = min(frames, enough // 8)
    return np.ascontiguousarray(data[: frames * 2].reshape(frames, 2).T)


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
    key=None,
    dynamics: str | None = None,
    dynamic_shape: str = "steady",
    ensemble: str = "",
    render_id: str = "",
) -> RenderedPiece:
    """Render one corpus piece to ``out_path`` and return its metadata.

    ``instruments``: GM instrument names (keys of :data:`GM_PROGRAMS`), top part first;
    default string ensemble. ``tempo_bpm``: quarter notes per minute (default: the score's
    own, else 100). ``transpose``: semitones. ``max_seconds``: keep only the opening, with a
    short fade-out so the clip does not end with a click. ``score``: an already parsed
    ``piece`` (saves a second parse; it is not modified), ``key`` its analysed key (the same).
    ``dynamics``: a :data:`DYNAMICS` level; every note gets its velocity (ramped by
    ``dynamic_shape``) and the clip is normalised to the level's loudness instead of ``normalize``.
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
    key = score.analyze("key") if key is None else key
    if max_seconds is not None:
        # + 4 quarters of margin: the audio is cut exactly later. Cutting first makes the copy below cheap.
        score = _truncate(score, max_seconds * bpm / 60 + 4)
    # transpose() returns a copy (also by 0 semitones): the edits below never touch the caller's score.
    score = score.transpose(interval.Interval(transpose))
    if transpose:
        key = key.transpose(interval.Interval(transpose))
    _set_tempo(score, bpm)
    used = _set_instruments(score, list(instruments or ["string ensemble"]))
    if dynamics is not None:
        clip_quarters = score.highestTime if max_seconds is None else min(score.highestTime, max_seconds * bpm / 60)
        _set_velocities(score, DYNAMICS[dynamics][0], DYNAMIC_SHAPES[dynamic_shape], clip_quarters)

    out_path = Path(out_path)
    with tempfile.TemporaryDirectory(prefix="m21render-") as tmp:
        midi = Path(tmp) / "piece.mid"
        score.write("midi", fp=str(midi))
        # Enough for the clip (+ 1 s for the silence trimmed at the start), or three times the
        # score's length (the MIDI writer expands repeats) plus a release tail for a whole piece.
        if max_seconds is not None:
            stop_after = max_seconds + 1.0
        else:
            stop_after = 3 * score.highestTime * 60 / bpm + 20
        stereo = render_midi(midi, sampling_rate=sampling_rate, soundfont=soundfont, stop_after_seconds=stop_after)
    audio, sr = match_channels(stereo, channels), sampling_rate
    audio = _trim_silence(audio)
    if max_seconds is not None and audio.shape[-1] > max_seconds * sr:
        audio = audio[:, : int(max_seconds * sr)]
        n = min(int(fade_out_seconds * sr), audio.shape[-1])
        if n:
            audio[:, -n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    if dynamics is not None:
        audio = normalize_audio(audio, sr, "loudness", target_lufs=DYNAMICS[dynamics][1], name=piece)
    elif normalize:
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
        ensemble=ensemble or ("solo" if len(score.parts) == 1 else "custom"),
        dynamics=dynamics or "",
        dynamic_shape=dynamic_shape if dynamics is not None else "steady",
        loudness_lufs=round(measure_loudness(audio, sr), 2),
        render_id=render_id or piece,
    )
    record.caption = make_caption(record)
    return record


def _trim_silence(audio: np.ndarray, threshold: float = 1e-4) -> np.ndarray:
    # fluidsynth output can start with a few silent milliseconds and end with a long release tail.
    loud = np.flatnonzero(np.abs(audio).max(axis=0) > threshold)
    if loud.size == 0:
        return audio
    return audio[:, loud[0] : loud[-1] + 1]


def _key_name(key) -> str:
    """A music21 key's name, its tonic spelled conventionally (transposing can give "A# minor")."""
    return key_name(key.tonic.pitchClass + 12 * (key.mode == "minor"))


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


def tempo_band(bpm: float) -> str:
    """``slow`` (< 80), ``moderate`` (< 120), ``fast`` (< 160) or ``very fast`` quarter notes per minute."""
    return "slow" if bpm < 80 else "moderate" if bpm < 120 else "fast" if bpm < 160 else "very fast"


def plan_renders(piece: str, num_renders: int = 3, seed: int = 0, num_parts: int = 1) -> list[dict]:
    """Seeded render settings for the ``num_renders`` clips of one piece.

    Stratified so that each piece spreads over the ranges instead of clustering: tempos come
    from ``num_renders`` equal sub-ranges of :data:`TEMPO_RANGE` (quarter notes per minute, not
    ±x % of the score's tempo), tonics are distinct (transposition to any of the 12, the mode
    stays the score's: minor and major scores give all 24 keys), instrumentations distinct.
    """
    digest = hashlib.sha1(f"{seed}:{piece}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    low, high = TEMPO_RANGE
    width = (high - low) / num_renders
    bands = rng.permutation(num_renders)
    tonics = rng.choice(12, size=num_renders, replace=num_renders > 12)
    if num_parts == 1:
        choices = [("solo", [name]) for name in rng.choice(SOLO_INSTRUMENTS, num_renders, replace=False)]
    else:
        names = list(ENSEMBLES) + ["mixed ensemble"] * 4  # mixed ensembles: about 1 in 5
        choices = []
        for name in rng.choice(names, num_renders, replace=False):
            if name == "mixed ensemble":
                top, inner, bass = MIXED_REGISTERS
                voices = [str(rng.choice(top))] + [str(rng.choice(inner)) for _ in range(num_parts - 2)]
                choices.append((name, voices + [str(rng.choice(bass))]))
            else:
                choices.append((str(name), ENSEMBLES[name]))
    levels = list(DYNAMICS)
    return [
        {
            "render_id": f"{piece}@{i}",
            "tempo_bpm": round(float(low + width * (bands[i] + rng.uniform())), 1),
            "tonic_pitch_class": int(tonics[i]),
            "ensemble": choices[i][0],
            "instruments": list(choices[i][1]),
            "dynamics": levels[int(rng.integers(len(levels)))],
            "dynamic_shape": str(rng.choice(list(DYNAMIC_SHAPES), p=[0.6, 0.2, 0.2])),
        }
        for i in range(num_renders)
    ]


def _transpose_to(key, tonic_pitch_class: int) -> int:
    """Semitones in [-6, 5] that move ``key``'s tonic to ``tonic_pitch_class`` (small shifts keep ranges playable)."""
    return (tonic_pitch_class - key.tonic.pitchClass + 6) % 12 - 6


def render_file_name(render_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", render_id.replace("/", "__")) + ".flac"


def render_many(
    pieces: Iterable[str],
    out_dir,
    *,
    renders_per_piece: int = 3,
    seed: int = 0,
    max_seconds: float | None = 30.0,
    min_seconds: float = 4.0,
    sampling_rate: int = 24000,
    channels: int = 1,
    soundfont: str = DEFAULT_SOUNDFONT,
    manifest_name: str = "manifest.jsonl",
    validation_fraction: float = 0.1,
    progress: bool = True,
    workers: int = 1,
) -> list[dict]:
    """Render ``renders_per_piece`` clips of each piece (settings from :func:`plan_renders`).

    Resumable: a clip whose ``render_id`` is already in ``manifest.jsonl`` (or in
    ``failed.jsonl``) is skipped, and each finished clip is appended to the manifest at once
    (audio written atomically first), so a killed run loses at most the clip in progress.
    Paths are relative to ``out_dir``. ``split`` is a per-piece hash threshold
    (:func:`assign_split`): it never changes as pieces are added, and every render of one
    score shares it. Returns all manifest records (old and new). ``workers`` > 1 renders pieces
    in that many processes (each piece's clips are appended once the piece is finished).
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    manifest, failed_log = out_dir / manifest_name, out_dir / "failed.jsonl"
    done = {r["render_id"] for r in _read_jsonl(manifest)} | {r["render_id"] for r in _read_jsonl(failed_log)}
    pieces = list(pieces)
    settings = dict(out_dir=out_dir, renders_per_piece=renders_per_piece, seed=seed, max_seconds=max_seconds,
                    min_seconds=min_seconds, sampling_rate=sampling_rate, channels=channels, soundfont=soundfont,
                    validation_fraction=validation_fraction)  # fmt: skip
    jobs = []
    bar = tqdm(total=len(pieces) * renders_per_piece, disable=not progress, unit="clip", smoothing=0.05)
    for piece in pieces:
        todo = [f"{piece}@{i}" for i in range(renders_per_piece) if f"{piece}@{i}" not in done]
        bar.update(renders_per_piece - len(todo))
        if todo:
            jobs.append((piece, todo, settings))
    seconds = 0.0
    # Workers render; this process alone appends to the manifests, in piece order (as a serial run).
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        results = pool.imap(_render_job, jobs) if pool else map(_render_job, jobs)
        for records, failures in results:
            if failures:
                append_manifest_records(failures, failed_log)
            if records:
                append_manifest_records(records, manifest)
            seconds += sum(r["duration"] for r in records)
            bar.update(len(records) + len(failures))
            bar.set_postfix(new_hours=f"{seconds / 3600:.2f}")
    finally:
        if pool:
            pool.terminate()
    bar.close()
    return _read_jsonl(manifest)


def _render_job(job) -> tuple[list[dict], list[dict]]:
    """Render the clips ``todo`` of one piece: ``(manifest records, failure records)``."""
    piece, todo, st = job
    out_dir = st["out_dir"]
    try:
        score = parse_piece(piece)
        key = score.analyze("key")
    except Exception as e:
        logger.warning("skipping %s: %s", piece, e)
        return [], [{"render_id": r, "error": repr(e)[:300]} for r in todo]
    records, failures = [], []
    for plan in plan_renders(piece, st["renders_per_piece"], st["seed"], num_parts=len(score.parts)):
        if plan["render_id"] not in todo:
            continue
        path = out_dir / "audio" / render_file_name(plan["render_id"])
        try:
            record = render_piece(piece, path, score=score, key=key, instruments=plan["instruments"],
                                  ensemble=plan["ensemble"], tempo_bpm=plan["tempo_bpm"],
                                  transpose=_transpose_to(key, plan["tonic_pitch_class"]), dynamics=plan["dynamics"],
                                  dynamic_shape=plan["dynamic_shape"], render_id=plan["render_id"],
                                  max_seconds=st["max_seconds"], sampling_rate=st["sampling_rate"],
                                  channels=st["channels"], soundfont=st["soundfont"])  # fmt: skip
            if record.duration < st["min_seconds"]:
                raise ValueError(f"only {record.duration:.1f} s of audio")
        except Exception as e:
            logger.warning("skipping %s: %s", plan["render_id"], e)
            failures.append({"render_id": plan["render_id"], "error": repr(e)[:300]})
            path.unlink(missing_ok=True)
        else:
            d = record.to_dict()
            d["path"] = str(Path(record.path).resolve())  # stored relative to the manifest
            d["mode"] = record.mode
            d["split"] = assign_split(piece, st["validation_fraction"], st["seed"])
            records.append(d)
    return records, failures


def summarize_renders(records: Iterable[dict]) -> dict:
    """Coverage of a render set: hours, clips, pieces, and counts per instrument, key, tempo
    band, meter, dynamic level, ensemble and collection."""
    records = list(records)
    counts: dict[str, Counter] = {name: Counter() for name in (
        "collection", "ensemble", "instrument", "key", "tempo_band", "meter", "dynamics", "dynamic_shape")}  # fmt: skip
    for r in records:
        for name in ("collection", "ensemble", "key", "meter", "dynamics", "dynamic_shape"):
            counts[name][r[name]] += 1
        counts["tempo_band"][tempo_band(r["tempo_bpm"])] += 1
        counts["instrument"].update(set(r["instruments"]))
    return {
        "hours": round(sum(r["duration"] for r in records) / 3600, 3),
        "clips": len(records),
        "pieces": len({r["piece"] for r in records}),
        **{name: dict(c.most_common()) for name, c in counts.items()},
    }


def _read_jsonl(path: Path) -> list[dict]:
    return read_manifest_records(path, absolute=False) if path.exists() else []
