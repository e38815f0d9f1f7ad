"""Compare ``MusicCodecModel`` with transformers' ``EncodecModel`` / ``DacModel`` on the same weights.

The reference models are built with random weights (codebooks randomised too, since EnCodec's
start at zero), saved in transformers' hub layout, and loaded back with ``MusicCodecModel``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import torch

# transformers' configurations of the official checkpoints (facebook/encodec_*, descript/dac_*).
OFFICIAL_CONFIGS = {
    "encodec_24khz": ("encodec", {}),
    "encodec_48khz": ("encodec", dict(sampling_rate=48_000, audio_channels=2, normalize=True, chunk_length_s=1.0,
                                       overlap=0.01, use_causal_conv=False, norm_type="time_group_norm",
                                       target_bandwidths=[3.0, 6.0, 12.0, 24.0])),
    # MusicGen's codec (facebook/encodec_32khz): non-causal, reflect padding, LSTM, identity shortcuts.
    "encodec_32khz": ("encodec", dict(sampling_rate=32_000, upsampling_ratios=[8, 5, 4, 4], num_filters=64,
                                       codebook_size=2048, target_bandwidths=[2.2], use_causal_conv=False,
                                       use_conv_shortcut=False, normalize=False)),
    "dac_16khz": ("dac", dict(sampling_rate=16_000, downsampling_ratios=[2, 4, 5, 8], n_codebooks=12)),
    "dac_24khz": ("dac", dict(sampling_rate=24_000, downsampling_ratios=[2, 4, 5, 8], n_codebooks=32)),
    "dac_44khz": ("dac", dict(sampling_rate=44_100, downsampling_ratios=[2, 4, 8, 8], n_codebooks=9)),
}


@dataclass
class ParityResult:
    name: str
    bandwidth: float | None
    codes_equal: bool
    max_audio_diff: float
    num_quantizers: int


def build_reference(kind: str, seed: int = 0, **config_kwargs):
    """A transformers EncodecModel or DacModel with random weights, in eval mode."""
    from transformers import DacConfig, DacModel, EncodecConfig, EncodecModel

    torch.manual_seed(seed)
    if kind == "encodec":
        model = EncodecModel(EncodecConfig(**config_kwargs))
        for name, buffer in model.named_buffers():
            if name.endswith((".embed", ".embed_avg")):
                buffer.normal_()
    else:
        model = DacModel(DacConfig(**config_kwargs))
        # transformers' init gives every Snake alpha 1 and codebooks N(0, 0.02): spread them.
        for name, param in model.named_parameters():
            if name.endswith("alpha"):
                param.data.uniform_(0.5, 2.0)
    return model.eval()


def reference_encode(reference, x: torch.Tensor, bandwidth: float | None):
    if reference.config.model_type == "encodec":
        out = reference.encode(x, bandwidth=bandwidth)
        audio = reference.decode(out.audio_codes, out.audio_scales, last_frame_pad_length=out.last_frame_pad_length)
        return out.audio_codes, audio.audio_values
    n_q = None if bandwidth is None else int(round(bandwidth / (10 * reference.config.sampling_rate
                                                                / reference.config.hop_length / 1000)))
    codes = reference.encode(x, n_quantizers=n_q).audio_codes
    if n_q is not None:
        codes = codes[:, :n_q]
    return codes[None], reference.decode(audio_codes=codes).audio_values.unsqueeze(1)


@torch.no_grad()
def compare(name: str, reference, model, x: torch.Tensor, bandwidth: float | None) -> ParityResult:
    ref_codes, ref_audio = reference_encode(reference, x, bandwidth)
    out = model.encode(x, bandwidth=bandwidth)
    audio = model.decode(out.audio_codes, out.audio_scales, last_frame_pad_length=out.last_frame_pad_length)
    audio = audio.audio_values[..., : ref_audio.shape[-1]]
    equal = ref_codes.shape == out.audio_codes.shape and torch.equal(ref_codes, out.audio_codes)
    diff = (ref_audio - audio).abs().max().item() if ref_audio.shape == audio.shape else float("inf")
    return ParityResult(name, bandwidth, equal, diff, out.audio_codes.shape[2])


def convert_through_hub_layout(reference):
    """Save ``reference`` with ``save_pretrained`` and load it with ``MusicCodecModel``."""
    from ..codecs import MusicCodecModel

    with tempfile.TemporaryDirectory() as folder:
        reference.save_pretrained(folder)
        return MusicCodecModel.from_pretrained(folder)


def musicgen_generate_with_codes(model, **generate_kwargs):
    """``(codes, audio)``: a MusicGen ``generate`` and the codes it handed its audio encoder's ``decode``
    ((1, B, K, T), pads stripped), to compare token streams of two models or sampling loops."""
    seen = []
    decode = model.audio_encoder.decode

    def spy(audio_codes, *args, **kwargs):
        seen.append(audio_codes.clone())
        return decode(audio_codes, *args, **kwargs)

    model.audio_encoder.decode = spy
    try:
        with torch.no_grad():
            audio = model.generate(**generate_kwargs)
    finally:
        del model.audio_encoder.decode
    return seen[0], audio
