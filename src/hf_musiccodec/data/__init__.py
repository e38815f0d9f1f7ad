"""Datasets of audio file paths + metadata, decoded with soundfile (never datasets' ``Audio``).

- :func:`audio_folder_dataset`: a folder of audio files as a ``datasets.Dataset``.
- :func:`track_group_key`, :func:`split_paths`, :func:`train_validation_split`: leak-free splits.
- :func:`fetch_debian_music`: free game soundtracks from Debian packages (``data/debian``).
- :mod:`.music21_render`: scores rendered with FluidSynth, with exact metadata (``data/music21``).
- :class:`AudioCropDataset`, :func:`collate_crops`: random training crops.
- :func:`music21_caption_dataset`, :func:`debian_caption_dataset`: captioned train/validation/test
  ``DatasetDict``s (captions in varied phrasings, :mod:`.captions`; held-out combinations and wording).
- :mod:`.latent_cache`: step 2 of the pipeline, codes and latents of a dataset cached per codec
  (:func:`build_latent_cache`, :class:`LatentCacheDataset`, :func:`collate_latents`).
"""

from importlib import resources
from pathlib import Path

from .captioned import debian_caption_dataset, music21_caption_dataset
from .captions import make_captions
from .crops import AudioCropDataset, collate_crops, crop_dataset_from_manifest
from .debian_music import PACKAGES as DEBIAN_MUSIC_PACKAGES
from .debian_music import fetch_debian_music
from .folder import audio_file_records, audio_folder_dataset, scan_audio_files
from .latent_cache import LatentCacheDataset, build_latent_cache, collate_latents
from .manifest import read_manifest, read_manifest_records, write_manifest
from .splits import (
    assign_split,
    split_groups,
    split_paths,
    three_way_split,
    track_group_key,
    train_validation_split,
)

DEMO_CLIP = "bach_chorale_bwv66.6_24khz.flac"


def demo_clip_path() -> Path:
    """The bundled 10 s Bach chorale (mono, 24 kHz FLAC); see ``assets/README.md`` for credits."""
    return Path(str(resources.files("hf_musiccodec") / "assets" / DEMO_CLIP))


__all__ = [
    "AudioCropDataset",
    "LatentCacheDataset",
    "DEBIAN_MUSIC_PACKAGES",
    "DEMO_CLIP",
    "assign_split",
    "audio_file_records",
    "audio_folder_dataset",
    "build_latent_cache",
    "collate_crops",
    "collate_latents",
    "crop_dataset_from_manifest",
    "debian_caption_dataset",
    "demo_clip_path",
    "fetch_debian_music",
    "make_captions",
    "music21_caption_dataset",
    "read_manifest",
    "read_manifest_records",
    "scan_audio_files",
    "split_groups",
    "split_paths",
    "three_way_split",
    "track_group_key",
    "train_validation_split",
    "write_manifest",
]
