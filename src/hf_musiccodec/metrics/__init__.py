"""Audio quality metrics for codec evaluation.

All metrics take ``(ref, est)`` as numpy arrays or torch tensors shaped ``(T,)``,
``(C, T)`` or ``(B, C, T)`` and return a float (mean over the batch), or a per-item
numpy array of shape ``(B,)`` with ``reduction="none"``.

* :func:`mel_distance` - DAC's multi-scale log-mel L1 (lower is better, 0 when equal).
* :func:`stft_distance` - multi-resolution STFT loss (lower is better, 0 when equal).
* :func:`si_sdr` - scale-invariant SDR in dB (higher is better).
* :func:`visqol` - ViSQOL v3 audio mode MOS-LQO (1-5, higher is better); needs the
  ``metrics`` extra (``pip install 'hf-musiccodec[metrics]'``).
"""

from hf_musiccodec.metrics.distances import mel_distance, si_sdr, stft_distance
from hf_musiccodec.metrics.visqol_metric import visqol

__all__ = ["mel_distance", "stft_distance", "si_sdr", "visqol"]
