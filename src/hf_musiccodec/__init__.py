"""hf-musiccodec."""
