"""ViSQOL v3 (audio mode, 48 kHz) through the pure-Python ``visqol-python`` package."""

from __future__ import annotations

import functools

import numpy as np

from hf_musiccodec.metrics.distances import ArrayLike, _finish, _pair

__all__ = ["visqol", "VISQOL_SAMPLE_RATE"]

VISQOL_SAMPLE_RATE = 48_000  # ViSQOL's audio mode model is trained at 48 kHz

_INSTALL_HINT = (
    "visqol() needs the optional package 'visqol-python' (with numba for speed): "
    "pip install 'hf-musiccodec[metrics]'  (or: pip install 'visqol-python[lattice]' numba)"
)


@functools.lru_cache(maxsize=1)
def _api():
    try:
        from visqol import VisqolApi
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(_INSTALL_HINT) from err
    api = VisqolApi()
    api.create(mode="audio")  # bundled SVR model, runs offline
    return api


def _to_48k(x: np.ndarray, sr: int) -> np.ndarray:
    if sr == VISQOL_SAMPLE_RATE:
        return x
    import soxr

    return soxr.resample(x, sr, VISQOL_SAMPLE_RATE, quality="HQ")


def visqol(ref: ArrayLike, est: ArrayLike, sr: int, reduction: str = "mean"):
    """ViSQOL audio-mode MOS-LQO (about 1 to 4.75; identical signals give ~4.73).

    Multi-channel inputs are downmixed to mono (as the reference ViSQOL tool does),
    then resampled to 48 kHz with soxr. About 0.6 s per 5 s of audio on one core
    after numba's first-use compilation (cached on disk by the package).

    Raises:
        ImportError: if ``visqol-python`` is not installed (``pip install 'hf-musiccodec[metrics]'``).
    """
    api = _api()
    r, e = _pair(ref, est)
    r = r.mean(dim=1).double().numpy()  # (B, T) mono
    e = e.mean(dim=1).double().numpy()
    scores = []
    for i in range(r.shape[0]):
        res = api.measure_from_arrays(_to_48k(r[i], sr), _to_48k(e[i], sr), VISQOL_SAMPLE_RATE)
        scores.append(float(res.moslqo))
    return _finish(scores, reduction)
