"""Parity of MusicCodecModel with transformers' EncodecModel/DacModel on every official configuration.

Each reference model gets random weights (codebooks randomised), is saved in transformers' hub
layout, loaded with MusicCodecModel.from_pretrained, and both encode and decode the same input
at every bandwidth. Prints whether codes are identical and the max decoded-audio difference.

    .venv/bin/python benchmarks/parity.py [--seconds 2.0]
"""

from __future__ import annotations

import argparse

import torch

from hf_musiccodec.testing.parity import OFFICIAL_CONFIGS, build_reference, compare, convert_through_hub_layout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="input duration")
    parser.add_argument("--only", nargs="*", help="configuration names to run")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    print(f"{'configuration':<15} {'kbps':>6} {'codebooks':>9} {'codes equal':>11} {'max |audio diff|':>17}")
    failures = 0
    for name, (kind, kwargs) in OFFICIAL_CONFIGS.items():
        if args.only and name not in args.only:
            continue
        reference = build_reference(kind, **kwargs)
        model = convert_through_hub_layout(reference)
        channels = reference.config.audio_channels if kind == "encodec" else 1
        generator = torch.Generator().manual_seed(0)
        length = int(args.seconds * reference.config.sampling_rate)
        if kind == "dac":  # transformers' DacModel drops a partial last frame; the original DAC pads it
            length -= length % reference.config.hop_length
        x = 0.3 * torch.randn(1, channels, length, generator=generator)
        for bandwidth in model.config.target_bandwidths:
            result = compare(name, reference, model, x, bandwidth)
            ok = result.codes_equal and result.max_audio_diff <= 1e-4
            failures += not ok
            print(f"{name:<15} {bandwidth:>6g} {result.num_quantizers:>9} {str(result.codes_equal):>11} "
                  f"{result.max_audio_diff:>17.2e}{'' if ok else '  FAIL'}", flush=True)
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
