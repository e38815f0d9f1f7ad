"""The CLAP model a generator's export bundles (text embedding at inference), read once per process."""

from __future__ import annotations

import functools

__all__ = ["clap_for_export"]


@functools.lru_cache(maxsize=4)
def clap_for_export(folder: str | None):
    """``(MusicClapModel, MusicClapProcessor)`` of ``folder`` in eval mode, or ``(None, None)``."""
    if not folder:
        return None, None
    from hf_musiccodec.conditioning import MusicClapModel, MusicClapProcessor

    return MusicClapModel.from_pretrained(folder).eval(), MusicClapProcessor.from_pretrained(folder)
