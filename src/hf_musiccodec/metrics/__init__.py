"""Audio metrics: codec quality and generation evaluation.

Codec metrics take ``(ref, est)`` as numpy arrays or torch tensors shaped ``(T,)``,
``(C, T)`` or ``(B, C, T)`` and return a float (mean over the batch), or a per-item
numpy array of shape ``(B,)`` with ``reduction="none"``.

* :func:`mel_distance` - DAC's multi-scale log-mel L1 (lower is better, 0 when equal).
* :func:`stft_distance` - multi-resolution STFT loss (lower is better, 0 when equal).
* :func:`si_sdr` - scale-invariant SDR in dB (higher is better).
* :func:`visqol` - ViSQOL v3 audio mode MOS-LQO (1-5, higher is better); needs the
  ``metrics`` extra (``pip install 'hf-musiccodec[metrics]'``).

Generation metrics take mono or multichannel clips (averaged to mono) at a given rate, or
embeddings, and raise a one-line ``ValueError`` on bad input:

* :func:`frechet_audio_distance` / :func:`frechet_distance` - FAD over an audio embedding
  (:class:`MelStatsEmbedding` "mel-stats" by default, :class:`ClapAudioEmbedding` for CLAP);
  >= 0, lower is better; always say which embedding.
* :func:`clap_score` - text/audio cosine in [-1, 1]; :func:`novelty` - MusicLDM's share of
  generations too similar to their nearest training clip.
* :func:`estimate_tempo` / :func:`tempo_accuracy`, :func:`estimate_key` / :func:`key_accuracy`.
* :func:`melody_accuracy` (0-1), :func:`dynamics_correlation` (-1 to 1), :func:`beat_f1` (0-1):
  Music ControlNet's control-adherence measures, with their extractors :func:`melody_chroma`,
  :func:`melody_pitch_classes`, :func:`dynamics_curve`, :func:`detect_beats`.
"""

from hf_musiccodec.metrics.beats import beat_f1, detect_beats
from hf_musiccodec.metrics.clap_score import NoveltyResult, clap_score, novelty
from hf_musiccodec.metrics.distances import mel_distance, si_sdr, stft_distance
from hf_musiccodec.metrics.embeddings import AudioEmbedding, ClapAudioEmbedding, MelStatsEmbedding, embed_audio
from hf_musiccodec.metrics.fad import (
    embedding_statistics,
    frechet_audio_distance,
    frechet_distance,
    gaussian_frechet_distance,
)
from hf_musiccodec.metrics.melody_dynamics import (
    dynamics_correlation,
    dynamics_curve,
    melody_accuracy,
    melody_chroma,
    melody_pitch_classes,
)
from hf_musiccodec.metrics.tempo_key import estimate_key, estimate_tempo, key_accuracy, tempo_accuracy
from hf_musiccodec.metrics.visqol_metric import visqol

__all__ = [
    "mel_distance",
    "stft_distance",
    "si_sdr",
    "visqol",
    "AudioEmbedding",
    "MelStatsEmbedding",
    "ClapAudioEmbedding",
    "embed_audio",
    "embedding_statistics",
    "gaussian_frechet_distance",
    "frechet_distance",
    "frechet_audio_distance",
    "clap_score",
    "NoveltyResult",
    "novelty",
    "estimate_tempo",
    "tempo_accuracy",
    "estimate_key",
    "key_accuracy",
    "melody_chroma",
    "melody_pitch_classes",
    "melody_accuracy",
    "dynamics_curve",
    "dynamics_correlation",
    "detect_beats",
    "beat_f1",
]
