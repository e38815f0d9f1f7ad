import torch

# Tiny test models run faster on one thread, and CI machines have only two cores to share.
torch.set_num_threads(1)
