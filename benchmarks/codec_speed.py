"""Encode / decode speed of MusicCodecModel against transformers' EncodecModel / DacModel, on CPU or CUDA.

Both models hold the same random weights (the transformers model is saved in its hub layout and
loaded with ``MusicCodecModel.from_pretrained``) and get the same input, on the same device and
at the same precision (``--dtype bf16``/``fp16``: both run under ``torch.autocast``). Runs
alternate between the two in one process (so both see the same machine load), with the same
thread count; the table shows medians and the speed-up, and checks that the outputs agree (on
CPU in float32: codes identical and audio within 1e-4, else the run fails; on CUDA or at reduced
precision the share of equal codes and the audio difference are only reported, since TF32 and
bf16 move values). A second table times streaming (EnCodec 24 kHz, CPU): the median wall time of
one ``encode`` + ``decode`` per chunk, and the algorithmic latency.

    .venv/bin/python benchmarks/codec_speed.py [--seconds 5] [--repeats 5] [--threads 2] [--profile]
    .venv/bin/python benchmarks/codec_speed.py --device cuda --dtype bf16 --seconds 10
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from hf_musiccodec.testing.parity import OFFICIAL_CONFIGS, build_reference, convert_through_hub_layout

CODECS = ["encodec_24khz", "dac_44khz"]
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def reference_calls(reference, bandwidth):
    if reference.config.model_type == "encodec":
        def encode(x):
            return reference.encode(x, bandwidth=bandwidth)

        def decode(out):
            return reference.decode(out.audio_codes, out.audio_scales).audio_values
        return encode, decode, (lambda out: out.audio_codes)

    def encode(x):
        return reference.encode(x)

    def decode(out):
        return reference.decode(audio_codes=out.audio_codes).audio_values[:, None]
    return encode, decode, (lambda out: out.audio_codes[None])


def speed(name: str, seconds: float, repeats: int, profile: bool, device: str = "cpu", dtype: str = "fp32") -> dict:
    kind, kwargs = OFFICIAL_CONFIGS[name]
    reference = build_reference(kind, **kwargs)
    model = convert_through_hub_layout(reference).eval().to(device)
    reference = reference.to(device)
    cfg = model.config
    length = int(seconds * cfg.sampling_rate)
    length -= length % cfg.hop_length  # transformers' DacModel drops a partial last frame
    x = 0.3 * torch.randn(1, cfg.audio_channels, length, generator=torch.Generator().manual_seed(0))
    x = x.to(device)
    bandwidth = max(cfg.target_bandwidths)
    ref_encode, ref_decode, ref_codes = reference_calls(reference, bandwidth)

    def our_encode(x):
        return model.encode(x, bandwidth=bandwidth)

    def our_decode(out):
        return model.decode(out.audio_codes, out.audio_scales).audio_values

    def precision():
        if DTYPES[dtype] is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(device).type, dtype=DTYPES[dtype])

    def sync():
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()

    times = {key: [] for key in ("ref_encode", "our_encode", "ref_decode", "our_decode")}
    with torch.no_grad(), precision():
        for _ in range(2):  # warm-up (weight caches, cuDNN algorithm choice)
            ref_out, our_out = ref_encode(x), our_encode(x)
            ref_audio, our_audio = ref_decode(ref_out), our_decode(our_out)
        codes_a, codes_b = ref_codes(ref_out), our_out.audio_codes
        codes_equal = torch.equal(codes_a, codes_b)
        codes_share = (codes_a == codes_b).float().mean().item() if codes_a.shape == codes_b.shape else 0.0
        diff = (ref_audio[..., : our_audio.shape[-1]].float() - our_audio[..., : ref_audio.shape[-1]].float()).abs()
        diff = diff.max().item()
        for _ in range(repeats):
            for key, fn, arg in (("ref_encode", ref_encode, x), ("our_encode", our_encode, x),
                                 ("ref_decode", ref_decode, ref_out), ("our_decode", our_decode, our_out)):
                sync()
                start = time.perf_counter()
                fn(arg)
                sync()
                times[key].append(time.perf_counter() - start)
        if profile:
            from torch.profiler import profile as torch_profile

            for label, enc, dec in (("transformers", ref_encode, ref_decode), ("ours", our_encode, our_decode)):
                with torch_profile() as prof:
                    dec(enc(x))
                    sync()
                sort = "self_cuda_time_total" if torch.device(device).type == "cuda" else "self_cpu_time_total"
                print(f"\n--- {name}: {label}, encode + decode of {seconds:g} s, ops by {sort}")
                print(prof.key_averages().table(sort_by=sort, row_limit=12))
    medians = {key: statistics.median(value) for key, value in times.items()}
    return {"name": name, "seconds": length / cfg.sampling_rate, "codes_equal": codes_equal,
            "codes_share": codes_share, "diff": diff, **medians}


def streaming_latency(chunk_ms: float, seconds: float) -> dict:
    from hf_musiccodec import MusicCodecModel
    from hf_musiccodec.codecs import MusicCodecConfig

    torch.manual_seed(0)
    model = MusicCodecModel(MusicCodecConfig.from_preset("encodec_24khz")).eval()
    for layer in model.quantizer.layers:
        layer.codebook.embed.normal_()
    sr, hop = model.config.sampling_rate, model.config.hop_length
    chunk = int(sr * chunk_ms / 1000)
    x = 0.3 * torch.randn(1, 1, int(seconds * sr), generator=torch.Generator().manual_seed(0))
    times, cpu, first = [], [], None
    with model.streaming():
        for i, start in enumerate(range(0, x.shape[-1], chunk)):
            t, c = time.perf_counter(), time.process_time()
            codes = model.encode(x[..., start: start + chunk]).audio_codes
            model.decode(codes)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)  # all threads of the process
            if first is None and codes.shape[-1]:
                first = (i + 1) * chunk
    steady, steady_cpu = times[len(times) // 5:], cpu[len(cpu) // 5:]  # past start-up
    return {"chunk_ms": chunk_ms, "median_ms": 1000 * statistics.median(steady),
            "p90_ms": 1000 * sorted(steady)[int(0.9 * len(steady))], "cpu_ms": 1000 * statistics.median(steady_cpu),
            "algorithmic_ms": 1000 * hop / sr, "first_codes_ms": 1000 * first / sr if first else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="input duration")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (CPU runs)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu or cuda (default: cuda when one is present)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32",
                        help="fp32, or bf16 / fp16 autocast for both models")
    parser.add_argument("--only", nargs="*", choices=CODECS)
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler breakdown of both")
    parser.add_argument("--skip-streaming", action="store_true")
    args = parser.parse_args()
    on_cpu = torch.device(args.device).type == "cpu"
    if on_cpu:
        torch.set_num_threads(args.threads)
        where = f"CPU, {args.threads} threads"
    else:
        where = f"{torch.cuda.get_device_name(torch.device(args.device))}"
    print(f"{where}, {args.dtype}, input {args.seconds:g} s, medians of {args.repeats} alternating runs")
    rows = [speed(name, args.seconds, args.repeats, args.profile, args.device, args.dtype)
            for name in (args.only or CODECS)]
    strict = on_cpu and args.dtype == "fp32"  # elsewhere TF32 / bf16 rounding may flip close codes
    print(f"\n{'codec':<14} {'step':<7} {'transformers s':>14} {'ours s':>8} {'speed-up':>8} {'x real time':>11}  outputs")
    failures = 0
    for r in rows:
        ok = r["codes_equal"] and r["diff"] <= 1e-4
        failures += strict and not ok
        check = (f"codes equal {r['codes_equal']} ({100 * r['codes_share']:.1f} %), max |audio diff| {r['diff']:.1e}"
                 + ("  FAIL" if strict and not ok else ""))
        for step in ("encode", "decode"):
            ref, ours = r[f"ref_{step}"], r[f"our_{step}"]
            print(f"{r['name']:<14} {step:<7} {ref:>14.3f} {ours:>8.3f} {ref / ours:>7.2f}x {ours / r['seconds']:>11.2f}  "
                  + (check if step == "encode" else ""))
        ref, ours = r["ref_encode"] + r["ref_decode"], r["our_encode"] + r["our_decode"]
        print(f"{r['name']:<14} {'both':<7} {ref:>14.3f} {ours:>8.3f} {ref / ours:>7.2f}x {ours / r['seconds']:>11.2f}")
    if not args.skip_streaming and on_cpu:
        print("\nstreaming, encodec_24khz (random weights): one encode + decode per chunk")
        print(f"{'chunk ms':>8} {'median ms':>10} {'p90 ms':>8} {'median CPU ms':>14} {'algorithmic latency ms':>23} "
              f"{'first codes after ms':>21}")
        for chunk_ms in (20, 100):
            r = streaming_latency(chunk_ms, seconds=max(3.0, args.seconds))
            print(f"{r['chunk_ms']:>8g} {r['median_ms']:>10.1f} {r['p90_ms']:>8.1f} {r['cpu_ms']:>14.1f} "
                  f"{r['algorithmic_ms']:>23.1f} {r['first_codes_ms']:>21.0f}")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
