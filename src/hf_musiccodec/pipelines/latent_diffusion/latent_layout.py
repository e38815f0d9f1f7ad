"""How a codec's continuous latents become the "image" a diffusers U-Net denoises, and back.

The latent of this package's latent diffusion is the codec's encoder output before quantization,
``(batch, hidden, frames)`` (:meth:`MusicCodecModel.encode_latents`; decoded by the codec's own
decoder, so no separate VAE or vocoder is trained). diffusers' ``UNet2DConditionModel`` (and so
``ControlNetModel.from_unet``) wants ``(batch, channels, height, width)``: the codec's hidden
dimensions carry no 2-D neighbourhood (unlike mel bins), so they become channels, ``height`` is 1
and time is the width. ``patch`` consecutive frames are stacked into the channels (as a DiT
patchifies): ``patch=2`` halves the U-Net's time resolution, its cost and its memory, losslessly.
Each hidden dimension is normalised with the training set's mean and standard deviation first
(a codec's latent dimensions differ in scale by orders of magnitude; diffusion wants unit variance).
"""

from __future__ import annotations

import torch

__all__ = ["LatentLayout"]


class LatentLayout:
    """Args:
    mean, std: per hidden dimension of the codec's latents (lists of ``hidden`` floats).
    patch: frames stacked into the U-Net's channels (U-Net ``in_channels = hidden * patch``).
    """

    def __init__(self, mean, std, patch: int):
        self.mean = torch.as_tensor(mean, dtype=torch.float32)[None, :, None]
        self.std = torch.as_tensor(std, dtype=torch.float32)[None, :, None]
        if self.mean.shape != self.std.shape or (self.std <= 0).any():
            raise ValueError("latent mean and std must have one entry per hidden dimension, std > 0")
        self.hidden, self.patch = self.mean.shape[1], int(patch)
        if self.patch < 1:
            raise ValueError(f"patch must be >= 1, got {patch}")

    @property
    def channels(self) -> int:
        """The U-Net's in/out channels."""
        return self.hidden * self.patch

    def frames_to_width(self, frames: int) -> int:
        """U-Net width of ``frames`` codec frames (rounded up to whole patches)."""
        return -(-int(frames) // self.patch)

    def to_sample(self, latents: torch.Tensor) -> torch.Tensor:
        """Codec latents ``(B, hidden, frames)`` -> normalised U-Net sample ``(B, hidden * patch, 1, width)``;
        frames are padded at the end (repeating the last) to whole patches."""
        b, d, t = latents.shape
        if d != self.hidden:
            raise ValueError(f"latents have {d} dimensions, the layout {self.hidden}")
        x = (latents.float() - self.mean.to(latents.device)) / self.std.to(latents.device)
        pad = self.frames_to_width(t) * self.patch - t
        if pad:
            x = torch.cat([x, x[..., -1:].expand(-1, -1, pad)], dim=-1)
        # (B, D, W, P) -> (B, P, D, W): channel p * D + d is dimension d of frame p of each patch
        x = x.reshape(b, d, -1, self.patch).permute(0, 3, 1, 2).reshape(b, d * self.patch, 1, -1)
        return x

    def to_frames(self, sample: torch.Tensor, frames: int | None = None) -> torch.Tensor:
        """U-Net sample ``(B, hidden * patch, 1, width)`` -> normalised latents ``(B, hidden, frames)``
        (one column per codec frame; ``frames`` cuts the padding of the last patch)."""
        b, c, h, w = sample.shape
        if c != self.channels or h != 1:
            raise ValueError(f"sample must be (batch, {self.channels}, 1, width), got {tuple(sample.shape)}")
        x = sample.reshape(b, self.patch, self.hidden, w).permute(0, 2, 3, 1).reshape(b, self.hidden, w * self.patch)
        return x if frames is None else x[..., :frames]

    def denormalize(self, frames: torch.Tensor) -> torch.Tensor:
        """Normalised latents ``(B, hidden, frames)`` -> the codec's latents."""
        return frames * self.std.to(frames.device) + self.mean.to(frames.device)

    def to_latents(self, sample: torch.Tensor, frames: int | None = None) -> torch.Tensor:
        """U-Net sample ``(B, hidden * patch, 1, width)`` -> codec latents ``(B, hidden, frames)``
        (differentiable: DITTO optimises through it)."""
        return self.denormalize(self.to_frames(sample, frames))
