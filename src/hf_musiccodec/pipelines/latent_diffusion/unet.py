"""The denoiser: diffusers' ``UNet2DConditionModel``, configured for a codec's latents.

Nothing here is a new network: :func:`build_music_unet` only picks the configuration. The sample
is ``(batch, hidden * patch, 1, frames / patch)`` (:mod:`.latent_layout`), so the U-Net downsamples
time only (height stays 1: diffusers passes the skip connections' sizes to its upsamplers).
The condition, a CLAP embedding, enters as the one cross-attention token and as the class
embedding (``class_embed_type="projection"``): both are implemented by ``ControlNetModel`` too, so
``ControlNetModel.from_unet(unet)`` gives the control branch of Music ControlNet (unlike diffusers'
MusicLDM U-Net, whose ``simple_projection`` + ``class_embeddings_concat`` it lacks).
"""

from __future__ import annotations

__all__ = ["build_music_unet"]


def build_music_unet(channels: int, condition_dim: int, block_out_channels=(128, 192, 256), layers_per_block: int = 1,
                     attention_head_dim: int = 32, norm_num_groups: int = 32):
    """A ``UNet2DConditionModel`` for ``channels``-channel samples and a ``condition_dim`` condition.

    Args:
        channels: in/out channels (codec hidden size x patch).
        condition_dim: the CLAP embedding's size (cross-attention dimension and class-embedding input).
        block_out_channels: channels per level; every level but the last halves the time axis, and
            every level but the first has cross-attention (self-attention over 375+ frames at the
            first level costs more than it gives a small model on a CPU).
        layers_per_block: residual blocks per level.
        attention_head_dim: channels per attention head.
        norm_num_groups: GroupNorm groups (must divide every level's channels).
    """
    from diffusers import UNet2DConditionModel

    levels = len(block_out_channels)
    if levels < 2:
        raise ValueError("block_out_channels needs at least two levels")
    down = ("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1)
    up = ("CrossAttnUpBlock2D",) * (levels - 1) + ("UpBlock2D",)
    return UNet2DConditionModel(
        sample_size=None, in_channels=channels, out_channels=channels, down_block_types=down, up_block_types=up,
        block_out_channels=tuple(block_out_channels), layers_per_block=layers_per_block,
        cross_attention_dim=condition_dim, attention_head_dim=attention_head_dim, norm_num_groups=norm_num_groups,
        class_embed_type="projection", projection_class_embeddings_input_dim=condition_dim,
    )
