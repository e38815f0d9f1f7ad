import logging

from hf_musiccodec.data import audio_folder_dataset, read_manifest, read_manifest_records, write_manifest


def test_audio_folder_dataset_columns_and_skips(tmp_path, make_audio, caplog):
    make_audio(tmp_path / "a.wav", seconds=1.0, sr=16000)
    make_audio(tmp_path / "sub" / "b.flac", seconds=0.5, sr=22050, channels=2)
    make_audio(tmp_path / "sub" / "c.ogg", seconds=0.5, sr=24000)
    (tmp_path / "broken.wav").write_bytes(b"not audio at all" * 10)
    (tmp_path / "notes.txt").write_text("ignored")
    with caplog.at_level(logging.WARNING):
        ds = audio_folder_dataset(tmp_path)
    assert ds.column_names == ["path", "duration", "sampling_rate", "channels", "track_id"]
    assert ds["track_id"] == ["a", "sub/b", "sub/c"]
    assert ds["sampling_rate"] == [16000, 22050, 24000]
    assert ds["channels"] == [1, 2, 1]
    assert abs(ds["duration"][1] - 0.5) < 1e-6
    assert "broken.wav" in caplog.text


def test_extension_filter_min_duration_and_empty(tmp_path, make_audio):
    make_audio(tmp_path / "a.wav", seconds=0.2)
    make_audio(tmp_path / "b.flac", seconds=1.0)
    assert audio_folder_dataset(tmp_path, extensions=["flac"])["track_id"] == ["b"]
    assert audio_folder_dataset(tmp_path, min_duration=0.5)["track_id"] == ["b"]
    (tmp_path / "none").mkdir()
    empty = audio_folder_dataset(tmp_path / "none")
    assert len(empty) == 0 and "path" in empty.column_names


def test_manifest_roundtrip_uses_relative_paths(tmp_path, make_audio):
    audio = make_audio(tmp_path / "data" / "x" / "a.wav")
    manifest = tmp_path / "data" / "manifest.jsonl"
    write_manifest([{"path": str(audio), "instruments": ["violin"], "split": "train"}], manifest)
    assert '"path": "x/a.wav"' in manifest.read_text()
    assert read_manifest_records(manifest)[0]["path"] == str(audio.resolve())
    ds = read_manifest(manifest)
    assert ds[0]["instruments"] == ["violin"]
    moved = tmp_path / "moved"
    (tmp_path / "data").rename(moved)
    assert read_manifest_records(moved / "manifest.jsonl")[0]["path"] == str((moved / "x" / "a.wav").resolve())
