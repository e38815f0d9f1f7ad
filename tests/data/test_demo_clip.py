from hf_musiccodec.audio import load_audio
from hf_musiccodec.data import demo_clip_path


def test_bundled_demo_clip():
    path = demo_clip_path()
    assert path.exists() and path.stat().st_size < 400_000
    assert (path.parent / "README.md").read_text().count("public domain") >= 1
    audio, sr = load_audio(path)
    assert sr == 24000 and audio.shape[0] == 1 and abs(audio.shape[1] / sr - 10.0) < 0.01
    assert 0.85 < abs(audio).max() <= 0.9  # peak-normalised to -1 dBFS
