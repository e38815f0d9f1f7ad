"""Building blocks of the codec family: convolutions, encoders/decoders, quantizers."""
