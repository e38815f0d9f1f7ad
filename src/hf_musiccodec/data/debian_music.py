"""Real, human-made music from Debian packages (free licences), as a manifest of tracks.

``apt-get download`` fetches the .deb (no installation, no root needed for the files),
``dpkg -x`` unpacks it under ``data/debian/<package>/``, zip archives inside (ufoai's
``0music.pk3``) are extracted, and every music file becomes one manifest record with its
package, licence, title and train/validation split. The audio is never committed (data/
is git-ignored); the manifest lets anyone rebuild the same set.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets

from ..audio.io import AUDIO_EXTENSIONS, AudioError, file_levels
from .folder import audio_file_records, records_to_dataset, scan_audio_files
from .manifest import write_manifest
from .splits import split_groups, track_group_key

logger = logging.getLogger(__name__)

DEFAULT_DATA_ROOT = Path("data/debian")


@dataclass(frozen=True)
class DebianMusicPackage:
    name: str
    license: str  # SPDX-style summary; the package's debian/copyright is authoritative
    description: str
    archives: tuple[str, ...] = ()  # globs (relative to the unpacked root) of zips holding music
    music_path_regex: str = r"(^|/)[^/]*music[^/]*/"  # keep only files under a *music* folder (no sound effects)


PACKAGES: dict[str, DebianMusicPackage] = {
    p.name: p
    for p in [
        DebianMusicPackage("wesnoth-1.16-music", "GPL-2.0-or-later", "Battle for Wesnoth soundtrack (orchestral)"),
        DebianMusicPackage(
            "ufoai-music",
            "CC-BY-3.0 / CC-BY-SA-3.0 / GPL-2.0-or-later (per file, see debian/copyright)",
            "UFO: Alien Invasion soundtrack (orchestral, electronic)",
            archives=("**/0music.pk3",),
        ),
        DebianMusicPackage(
            "warzone2100-music",
            "CC-BY-SA-3.0 / GPL-2.0-or-later (see debian/copyright)",
            "Warzone 2100 soundtrack (Opus at 48 kbps: audible artefacts)",
        ),
        DebianMusicPackage("supertux-data", "GPL-3.0-or-later / CC-BY-SA (see debian/copyright)", "SuperTux music"),
        DebianMusicPackage("hedgewars-data", "GPL-2.0 / CC (see debian/copyright)", "Hedgewars music"),
        DebianMusicPackage("widelands-data", "GPL-2.0-or-later (see debian/copyright)", "Widelands music"),
        DebianMusicPackage("freedroidrpg-data", "GPL-2.0-or-later (see debian/copyright)", "FreedroidRPG music"),
        DebianMusicPackage("naev-data", "GPL-3.0 / CC-BY-SA (see debian/copyright)", "Naev music"),
    ]
}
DEFAULT_PACKAGES = ("wesnoth-1.16-music",)

MANIFEST_FEATURES = datasets.Features(
    {
        "path": datasets.Value("string"),
        "duration": datasets.Value("float64"),
        "sampling_rate": datasets.Value("int32"),
        "channels": datasets.Value("int32"),
        "track_id": datasets.Value("string"),
        "package": datasets.Value("string"),
        "version": datasets.Value("string"),
        "license": datasets.Value("string"),
        "title": datasets.Value("string"),
        "peak_db": datasets.Value("float64"),
        "rms_db": datasets.Value("float64"),
        "group": datasets.Value("string"),
        "split": datasets.Value("string"),
    }
)


# --------------------------------------------------------------------------- fetching


def download_package(name: str, cache_dir, *, update_on_failure: bool = True) -> Path:
    """``apt-get download`` into ``cache_dir`` (reusing a .deb already there); returns the .deb path."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    existing = _find_deb(name, cache_dir)
    if existing is not None:
        return existing
    if shutil.which("apt-get") is None:
        raise RuntimeError("apt-get not found: Debian packages can only be fetched on Debian/Ubuntu")
    result = _run(["apt-get", "download", name], cwd=cache_dir)
    if result.returncode != 0 and update_on_failure:
        # A stale or empty package list is the usual cause; refresh it once and retry.
        logger.info("apt-get download %s failed, running apt-get update", name)
        _run(["apt-get", "update"], cwd=cache_dir)
        result = _run(["apt-get", "download", name], cwd=cache_dir)
    deb = _find_deb(name, cache_dir)
    if result.returncode != 0 or deb is None:
        raise RuntimeError(f"apt-get download {name} failed: {result.stderr.strip()[-500:]}")
    return deb


def _find_deb(name: str, cache_dir: Path) -> Path | None:
    debs = sorted(cache_dir.glob(f"{name}_*.deb"))
    return debs[-1] if debs else None


def _run(cmd: list[str], cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=3600)


def deb_version(deb: Path) -> str:
    """Version from the .deb file name (``name_1%3a1.16.9-1_all.deb`` -> ``1:1.16.9-1``)."""
    parts = deb.name.split("_")
    return parts[1].replace("%3a", ":") if len(parts) >= 3 else ""


def unpack_package(deb: Path, dest: Path) -> Path:
    """``dpkg -x`` into ``dest`` once; a stamp file makes re-runs free."""
    stamp = dest / ".unpacked"
    if stamp.exists() and stamp.read_text() == deb.name:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    result = _run(["dpkg", "-x", str(deb), str(dest)])
    if result.returncode != 0:
        raise RuntimeError(f"dpkg -x {deb} failed: {result.stderr.strip()[-500:]}")
    stamp.write_text(deb.name)
    return dest


def extract_audio_from_zip(archive: Path, dest: Path, extensions: Sequence[str] = AUDIO_EXTENSIONS) -> list[Path]:
    """Extract the audio members of a zip (e.g. a Quake-style .pk3) under ``dest``."""
    out = []
    dest_root = dest.resolve()
    with zipfile.ZipFile(archive) as z:
        for member in z.infolist():
            if member.is_dir() or Path(member.filename).suffix.lower() not in extensions:
                continue
            target = (dest / member.filename).resolve()
            if dest_root not in target.parents:  # "zip slip": never write outside dest
                logger.warning("skipping unsafe zip member %s in %s", member.filename, archive)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            out.append(target)
    return out


# --------------------------------------------------------------------------- collecting


def title_from_filename(path) -> str:
    """``the_king_is_dead.ogg`` -> ``The King Is Dead``; ``frantic-old.ogg`` -> ``Frantic Old``."""
    stem = Path(path).stem
    words = re.sub(r"[_\-.]+", " ", stem).split()
    return " ".join(w if w.isupper() else w.capitalize() for w in words) or stem


def collect_package_tracks(
    package: DebianMusicPackage,
    root: Path,
    *,
    version: str = "",
    min_duration: float = 10.0,
    silence_db: float = -60.0,
) -> list[dict]:
    """Records for the music files under an unpacked package ``root`` (archives extracted first)."""
    for pattern in package.archives:
        for archive in sorted(root.glob(pattern)):
            extracted = root / "_extracted" / archive.stem
            if not extracted.exists():
                extract_audio_from_zip(archive, extracted)
    music = re.compile(package.music_path_regex, re.IGNORECASE)
    paths = [p for p in scan_audio_files(root) if music.search(p.relative_to(root).as_posix())]
    records = []
    for r in audio_file_records(paths, root=root, min_duration=min_duration):
        # Decode once now: corrupt files and silent placeholders (wesnoth's silence.ogg)
        # are dropped here instead of failing or wasting steps during training.
        try:
            levels = file_levels(r["path"])
        except AudioError as e:
            logger.warning("skipping %s", e)
            continue
        if levels["rms_db"] < silence_db:
            logger.warning("skipping %s: silent (%.1f dB RMS)", r["path"], levels["rms_db"])
            continue
        records.append(r)
        r.update(
            peak_db=round(levels["peak_db"], 2),
            rms_db=round(levels["rms_db"], 2),
            track_id=f"{package.name}/{r['track_id']}",
            package=package.name,
            version=version,
            license=package.license,
            title=title_from_filename(r["path"]),
            group=f"{package.name}/{track_group_key(r['path'])}",
        )
    return records


def fetch_debian_music(
    packages: Iterable[str] = DEFAULT_PACKAGES,
    data_root=DEFAULT_DATA_ROOT,
    *,
    validation_fraction: float = 0.1,
    seed: int = 0,
    min_duration: float = 10.0,
    keep_debs: bool = True,
) -> datasets.Dataset:
    """Download, unpack and index ``packages``; write ``<data_root>/manifest.jsonl``.

    Returns the manifest as a ``datasets.Dataset`` with :data:`MANIFEST_FEATURES` columns
    (``path`` absolute here; relative to ``data_root`` in the file).
    """
    data_root = Path(data_root)
    cache = data_root / "_debs"
    records: list[dict] = []
    for name in packages:
        if name not in PACKAGES:
            raise KeyError(f"unknown package {name!r}; known: {', '.join(PACKAGES)}")
        package = PACKAGES[name]
        deb = download_package(name, cache)
        root = unpack_package(deb, data_root / name)
        tracks = collect_package_tracks(package, root, version=deb_version(deb), min_duration=min_duration)
        # Split per package (each gets its share of validation), weighted by duration.
        groups = [t["group"] for t in tracks]
        for t, split in zip(tracks, split_groups(groups, validation_fraction, seed, [t["duration"] for t in tracks])):
            t["split"] = split
        logger.info("%s: %d tracks, %.2f h", name, len(tracks), sum(t["duration"] for t in tracks) / 3600)
        records.extend(tracks)
        if not keep_debs:
            deb.unlink()
    write_manifest(records, data_root / "manifest.jsonl")
    return records_to_dataset(records, MANIFEST_FEATURES)


def summarize(records: Iterable[dict]) -> dict[str, dict]:
    """Per package, and per split inside it: number of tracks and hours."""
    seconds: dict[tuple, list] = {}
    for r in records:
        for key in ((r["package"],), (r["package"], r.get("split", "all"))):
            entry = seconds.setdefault(key, [0, 0.0])
            entry[0] += 1
            entry[1] += r["duration"]
    out: dict[str, dict] = {}
    for key, (tracks, secs) in sorted(seconds.items()):
        stats = {"tracks": tracks, "hours": round(secs / 3600, 3)}
        if len(key) == 1:
            out[key[0]] = stats
        else:
            out[key[0]][key[1]] = stats
    return out
