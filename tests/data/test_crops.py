import numpy as np
import pytest
import torch

from hf_musiccodec.audio import measure_loudness
from hf_musiccodec.data import AudioCropDataset, collate_crops

SR = 8000


@pytest.fixture
def files(tmp_path, make_audio):
    return [
        make_audio(tmp_path / "a.wav", seconds=2.0, sr=16000, freq=440, kind="noise", amp=0.05),
        make_audio(tmp_path / "b.flac", seconds=2.0, sr=22050, channels=2, freq=300),
    ]


def test_crops_shape_resampling_and_loudness(files):
    ds = AudioCropDataset(files, sampling_rate=SR, channels=1, segment_seconds=0.5, seed=0)
    assert len(ds) == 2
    for item in ds:
        x = item["input_values"]
        assert x.shape == (1, SR // 2) and x.dtype == torch.float32 and item["padding_mask"].all()
        assert abs(measure_loudness(x.numpy(), SR) + 20.0) < 0.5
    # The sine keeps its pitch through resampling 22050 -> 8000 and stereo -> mono.
    x = ds[1]["input_values"][0].numpy()
    assert abs(np.argmax(np.abs(np.fft.rfft(x))) * SR / len(x) - 300) < 4


def test_crops_are_seeded_and_change_per_epoch(files):
    def make(seed):
        return AudioCropDataset(files, SR, 2, 0.25, normalize=None, seed=seed)

    a, b = make(0), make(0)
    assert torch.equal(a[0]["input_values"], b[0]["input_values"])
    assert not torch.equal(a[0]["input_values"], make(1)[0]["input_values"])
    first = a[0]["input_values"].clone()
    a.set_epoch(1)
    assert not torch.equal(first, a[0]["input_values"])
    assert a[0]["input_values"].shape == (2, SR // 4)  # mono noise repeated to 2 channels


def test_short_file_is_padded_with_mask(tmp_path, make_audio):
    short = make_audio(tmp_path / "s.wav", seconds=0.1, sr=SR)
    item = AudioCropDataset([short], SR, 1, 0.5)[0]
    assert item["input_values"].shape == (1, SR // 2)
    assert item["padding_mask"].sum() == int(0.1 * SR)
    assert not item["input_values"][0, int(0.1 * SR) :].any()


def test_silent_crops_are_skipped(tmp_path, make_audio):
    silent = make_audio(tmp_path / "silent.wav", seconds=1.0, sr=SR, kind="silence")
    loud = make_audio(tmp_path / "loud.wav", seconds=1.0, sr=SR)
    ds = AudioCropDataset([silent, loud], SR, 1, 0.25, max_retries=20)
    item = ds[0]  # starts on the silent file, falls back to the other one
    assert item["path"] == str(loud) and item["input_values"].abs().max() > 0.01
    only_silent = AudioCropDataset([silent], SR, 1, 0.25, max_retries=3)
    assert not only_silent[0]["input_values"].any()  # gives up gracefully


def test_unreadable_files_skipped_and_collate(tmp_path, files):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"garbage" * 50)
    ds = AudioCropDataset([bad, *files], SR, 1, 0.25)
    assert len(ds) == 2
    batch = collate_crops([ds[0], ds[1]])
    assert batch["input_values"].shape == (2, 1, SR // 4) and batch["padding_mask"].shape == (2, SR // 4)
    assert batch["paths"] == [str(f) for f in files]
    with pytest.raises(ValueError, match="no readable"):
        AudioCropDataset([bad], SR)
    with pytest.raises(IndexError):
        ds[2]


def test_several_manifests_give_an_equal_share_of_crops(tmp_path, make_audio):
    from hf_musiccodec.data import crop_dataset_from_manifest, write_manifest

    games = [make_audio(tmp_path / "games" / "long.wav", seconds=2.0, sr=SR)]
    renders = [make_audio(tmp_path / "renders" / f"r{i}.wav", seconds=1.0, sr=SR, freq=200 + 50 * i) for i in range(3)]
    write_manifest([{"path": str(p), "split": "train"} for p in games], tmp_path / "games.jsonl")
    write_manifest([{"path": str(p), "split": "train"} for p in renders] + [{"path": str(games[0]), "split": "test"}],
                   tmp_path / "renders.jsonl")  # fmt: skip
    manifests = [str(tmp_path / "games.jsonl"), str(tmp_path / "renders.jsonl")]
    balanced = crop_dataset_from_manifest(manifests, "train", sampling_rate=SR, segment_seconds=0.25, crops_per_file=4)
    paths = [balanced[i]["path"] for i in range(len(balanced))]
    assert len(paths) == 16 and paths.count(str(games[0])) == 8  # one file, half of the crops
    assert all(paths.count(str(p)) in (2, 3) for p in renders)
    assert str(games[0]) in paths[:2] and any(p in map(str, renders) for p in paths[:2])  # interleaved from the start
    plain = crop_dataset_from_manifest(manifests, "train", balance=False, sampling_rate=SR, segment_seconds=0.25,
                                       crops_per_file=4)  # fmt: skip
    assert [plain[i]["path"] for i in range(len(plain))].count(str(games[0])) == 4  # every file alike
    with pytest.raises(ValueError, match="file_weights has 1 entries for 2 paths"):
        AudioCropDataset(renders[:2], SR, file_weights=[1.0])
    with pytest.raises(ValueError, match="non-negative"):
        AudioCropDataset(renders[:2], SR, file_weights=[1.0, -1.0])
