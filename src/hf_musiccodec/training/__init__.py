"""Training: discriminators and losses (GAN codec training), configs and Accelerate solvers."""
