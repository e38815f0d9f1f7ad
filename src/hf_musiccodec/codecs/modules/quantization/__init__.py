"""Vector quantizers: one technique per file, composed by ``ResidualVectorQuantizer``."""

from .euclidean import EuclideanVectorQuantizer
from .factorized import FactorizedVectorQuantizer
from .residual import ResidualVectorQuantizer, RVQOutput

__all__ = ["EuclideanVectorQuantizer", "FactorizedVectorQuantizer", "ResidualVectorQuantizer", "RVQOutput"]
