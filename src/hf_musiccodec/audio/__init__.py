"""Audio utilities: file I/O (soundfile), resampling (soxr), channel matching, normalisation."""

from .io import (
    AUDIO_EXTENSIONS,
    AudioError,
    audio_info,
    file_levels,
    is_silent,
    load_audio,
    match_channels,
    measure_loudness,
    normalize_audio,
    peak_db,
    resample,
    rms_db,
    save_audio,
    validate_waveform,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioError",
    "audio_info",
    "file_levels",
    "is_silent",
    "load_audio",
    "match_channels",
    "measure_loudness",
    "normalize_audio",
    "peak_db",
    "resample",
    "rms_db",
    "save_audio",
    "validate_waveform",
]
