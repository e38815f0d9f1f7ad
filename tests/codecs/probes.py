"""Gradient probes: which inputs an output really depends on (to check computed receptive fields)."""

import torch


def decoder_frame_span(model, frames: int = 40, frame: int = 20) -> tuple[int, int]:
    """(left, right): latent frames before / after its own frame that an output sample of frame
    ``frame`` depends on, over the first, middle and last sample of the frame."""
    hop = model.config.hop_length
    latents = torch.randn(1, model.config.hidden_size, frames, requires_grad=True)
    left = right = 0
    for phase in (0, hop // 2, hop - 1):
        latents.grad = None
        model.decoder(latents)[..., frame * hop + phase].sum().backward()
        nonzero = latents.grad[0].abs().sum(0).nonzero().flatten()
        left, right = max(left, frame - int(nonzero.min())), max(right, int(nonzero.max()) - frame)
    return left, right


def encoder_sample_span(model, frames: int = 40, frame: int = 20) -> tuple[int, int]:
    """(left, right): input samples before / after its own hop span that latent frame ``frame``
    depends on."""
    hop = model.config.hop_length
    x = torch.randn(1, model.config.audio_channels, frames * hop, requires_grad=True)
    model.encoder(x)[..., frame].sum().backward()
    nonzero = x.grad[0].abs().sum(0).nonzero().flatten()
    return frame * hop - int(nonzero.min()), int(nonzero.max()) - (frame * hop + hop - 1)
