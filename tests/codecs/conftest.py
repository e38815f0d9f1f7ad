import pytest
import torch


@pytest.fixture
def noise():
    def make(batch=2, channels=1, samples=4000, seed=0):
        return 0.3 * torch.randn(batch, channels, samples, generator=torch.Generator().manual_seed(seed))

    return make
