"""Generator networks that transformers and diffusers lack, one folder per network."""
