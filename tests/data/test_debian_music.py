import json
import shutil
import subprocess
import zipfile

import pytest

from hf_musiccodec.data import debian_music as dm


def test_title_and_version_from_names(tmp_path):
    assert dm.title_from_filename("a/the_king_is_dead.ogg") == "The King Is Dead"
    assert dm.title_from_filename("frantic-old.ogg") == "Frantic Old"
    assert dm.deb_version(tmp_path / "wesnoth-1.16-music_1%3a1.16.9-1_all.deb") == "1:1.16.9-1"


def test_zip_extraction_keeps_audio_and_refuses_zip_slip(tmp_path, make_audio):
    src = make_audio(tmp_path / "src.ogg", seconds=0.2)
    archive = tmp_path / "0music.pk3"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(src, "music/a.ogg")
        z.writestr("maps/readme.txt", "not audio")
        z.write(src, "../escape.ogg")
    out = dm.extract_audio_from_zip(archive, tmp_path / "x")
    assert [p.relative_to(tmp_path / "x").as_posix() for p in out] == ["music/a.ogg"]
    assert not (tmp_path / "escape.ogg").exists()


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg")
def test_fetch_from_a_real_local_deb(tmp_path, make_audio, monkeypatch):
    """Builds a small ufoai-music-like .deb (music in a .pk3 zip, plus effects and a silent file),
    places it in the download cache so no network is used, and runs the whole pipeline."""
    pkg = tmp_path / "build"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: ufoai-music\nVersion: 2.5-2\nArchitecture: all\nMaintainer: t <t@t>\nDescription: test\n"
    )
    base = pkg / "usr/share/games/ufoai/base"
    base.mkdir(parents=True)
    staging = tmp_path / "staging"
    for i, name in enumerate(["battle.ogg", "battle_enhanced.ogg", "calm.ogg", "dark.ogg", "march.ogg"]):
        make_audio(staging / name, seconds=1.0, freq=200 + 100 * i)
    make_audio(staging / "silence.ogg", seconds=1.0, kind="silence")
    with zipfile.ZipFile(base / "0music.pk3", "w") as z:
        for f in sorted(staging.iterdir()):
            z.write(f, f"music/{f.name}")
    make_audio(base / "sound" / "click.wav", seconds=1.0)  # a sound effect: not under a music folder
    debs = tmp_path / "data" / "_debs"
    debs.mkdir(parents=True)
    subprocess.run(
        ["dpkg-deb", "-Zgzip", "--build", str(pkg), str(debs / "ufoai-music_2.5-2_all.deb")],
        check=True,
        capture_output=True,
    )
    monkeypatch.setattr(dm, "_run", _no_apt(dm._run))

    ds = dm.fetch_debian_music(["ufoai-music"], tmp_path / "data", validation_fraction=0.3, min_duration=0.5)
    titles = sorted(ds["title"])
    assert titles == ["Battle", "Battle Enhanced", "Calm", "Dark", "March"]  # no silence, no click
    assert set(ds["license"]) == {dm.PACKAGES["ufoai-music"].license}
    assert set(ds["version"]) == {"2.5-2"}
    split = dict(zip(ds["title"], ds["split"]))
    assert split["Battle"] == split["Battle Enhanced"]
    assert set(split.values()) == {"train", "validation"}
    lines = (tmp_path / "data" / "manifest.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 5 and first["path"].startswith("ufoai-music/") and first["package"] == "ufoai-music"
    # Re-running reuses the download and the unpacked tree.
    assert dm.fetch_debian_music(["ufoai-music"], tmp_path / "data", min_duration=0.5)["path"] == ds["path"]


def _no_apt(run):
    def guarded(cmd, cwd=None):
        assert cmd[0] != "apt-get", "the test must not use the network"
        return run(cmd, cwd=cwd)

    return guarded


def test_unknown_package(tmp_path):
    with pytest.raises(KeyError, match="unknown package"):
        dm.fetch_debian_music(["not-a-music-package"], tmp_path)
