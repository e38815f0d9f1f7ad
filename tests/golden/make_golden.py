"""How the golden ``.hfmc`` files in this folder were made (once; never re-run to "fix" a test).

Every later release must decode these files to the stored audio (``tests/codecs/test_file_format.py``):
they pin the file format and the decoded output of the bundled codec and of two tiny codecs
whose weights are committed here. Regenerating them would hide exactly the breakage they exist
to catch; a deliberate change of decoded audio needs new files beside these, not replacements.

    PYTHONPATH=src python tests/golden/make_golden.py            # the version-2 files + expected audio

``bundled_v1.hfmc`` was written by format version 1 (commit 775bd67) from the same input:
``hf-musiccodec compress clip.wav bundled_v1.hfmc --bandwidth 6`` where ``clip.wav`` is
:func:`golden_input` at 24 kHz.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
SECONDS = 1.5
STEP = 4  # the expected audio keeps every STEP-th sample (and statistics of all of them)
TINY = {  # folder -> (preset, overrides): a streaming codec and a chunked stereo codec with scales
    "tiny-encodec-24khz": ("encodec_24khz", {"num_filters": 2}),
    "tiny-encodec-48khz": ("encodec_48khz", {"num_filters": 2}),
}


def golden_input(sampling_rate: int, channels: int) -> np.ndarray:
    """The first SECONDS of the bundled clip at ``sampling_rate``, on ``channels`` channels."""
    from hf_musiccodec.audio.io import load_audio
    from hf_musiccodec.data import demo_clip_path

    audio, _ = load_audio(demo_clip_path(), sampling_rate=sampling_rate, channels=1)
    audio = audio[:, : int(SECONDS * sampling_rate)]
    return np.concatenate([audio, 0.5 * audio[:, ::-1]])[:channels] if channels == 2 else audio


def expected(audio: np.ndarray) -> dict:
    audio = audio.astype(np.float64)
    return {"strided": audio[..., ::STEP].astype(np.float32), "sum": audio.sum(), "sum_sq": np.square(audio).sum()}


def main() -> None:
    from hf_musiccodec import MusicCodecModel
    from hf_musiccodec.codecs import default_model_path
    from hf_musiccodec.codecs.file_format import decode_waveform, encode_waveform, write_compressed
    from hf_musiccodec.testing.tiny import tiny_codec_config

    models = {"bundled": (MusicCodecModel.from_pretrained(default_model_path()).eval(), 6.0)}
    for folder, (preset, overrides) in TINY.items():
        torch.manual_seed(0)
        model = MusicCodecModel(tiny_codec_config(preset, kmeans_init=False, **overrides)).eval()
        model.save_pretrained(HERE / folder)
        models[folder] = (MusicCodecModel.from_pretrained(HERE / folder).eval(), None)
    for name, (model, bandwidth) in models.items():
        cfg = model.config
        compressed = encode_waveform(model, golden_input(cfg.sampling_rate, cfg.audio_channels), bandwidth)
        write_compressed(HERE / f"{name}_v2.hfmc", compressed)
        np.savez(HERE / f"{name}_expected.npz", **expected(decode_waveform(model, compressed)[0]))


if __name__ == "__main__":
    main()
