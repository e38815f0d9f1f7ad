"""What the generation benchmarks' tests share: a tiny random CLAP and the one-line error check."""

from pathlib import Path

import torch

from hf_musiccodec.conditioning import MusicClapConfig, MusicClapModel, build_music_clap_processor


def save_tiny_clap(folder: Path, sampling_rate: int) -> Path:
    """A seeded, random-weight MusicClap of a few thousand parameters (and its processor) saved at ``folder``."""
    torch.manual_seed(0)
    config = MusicClapConfig(sampling_rate=sampling_rate, n_fft=512, hop_length=320, n_mels=32, clip_seconds=1.0,
                             audio_channels=(16, 16), audio_hidden_size=16, audio_num_layers=1, audio_num_heads=2,
                             audio_intermediate_size=32, text_head_size=16, text_num_heads=2, text_num_layers=1,
                             text_intermediate_size=32, text_max_length=32, projection_dim=16, dropout=0.0)
    MusicClapModel(config).save_pretrained(folder)
    build_music_clap_processor(config).save_pretrained(folder)
    return folder


def one_line_error(benchmark, name: str, capsys, argv) -> str:
    """The one stderr line ``<name>: error: ...`` of ``benchmark.main(argv)``, which must exit with
    status 2, print nothing on stdout and no traceback."""
    assert benchmark.main(argv) == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith(f"{name}: error: ")]
    assert captured.out == "" and len(errors) == 1 and "Traceback" not in captured.err
    return errors[0]
