"""The residual VQ's training machinery: k-means init, EMA / gradient updates, dead codes, dropout."""

import torch

from hf_musiccodec.codecs.modules.quantization import (
    EuclideanVectorQuantizer,
    FactorizedVectorQuantizer,
    ResidualVectorQuantizer,
)
from hf_musiccodec.codecs.modules.quantization.kmeans import kmeans


def clusters(n_per=64, dim=4, centres=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    means = 5 * torch.randn(centres, dim, generator=g)
    points = means.repeat_interleave(n_per, 0) + 0.01 * torch.randn(centres * n_per, dim, generator=g)
    return points, means


def test_kmeans_finds_well_separated_clusters():
    torch.manual_seed(0)
    points, means = clusters()
    found, sizes = kmeans(points, 8, num_iters=20)
    assert sizes.sum() == len(points)
    nearest = torch.cdist(means, found).min(dim=1).values
    assert (nearest < 0.5).all()


def test_kmeans_init_on_first_training_batch():
    torch.manual_seed(0)
    points, _ = clusters()
    vq = EuclideanVectorQuantizer(4, 8, kmeans_iters=20).train()
    assert vq.codebook.inited.item() == 0
    x = points.t().unsqueeze(0)  # (1, dim, T)
    quantized, codes, commitment, _ = vq(x)
    assert vq.codebook.inited.item() == 1
    assert commitment.item() < 0.5 and codes.unique().numel() >= 7


def test_ema_update_moves_codes_to_the_data():
    vq = EuclideanVectorQuantizer(2, 2, kmeans_init=False, decay=0.5, threshold_ema_dead_code=0).train()
    with torch.no_grad():
        vq.codebook.embed.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
        vq.codebook.embed_avg.copy_(vq.codebook.embed)
        vq.codebook.cluster_size.fill_(1.0)
    target = torch.tensor([[1.0, 1.0]]).t().unsqueeze(0).repeat(1, 1, 16)
    for _ in range(20):
        vq(target)
    assert torch.allclose(vq.codebook.embed[0], torch.tensor([1.0, 1.0]), atol=1e-2)


def test_gradient_codebook_learns_through_the_codebook_loss():
    vq = EuclideanVectorQuantizer(2, 4, use_ema=False, kmeans_init=False, threshold_ema_dead_code=0).train()
    assert isinstance(vq.codebook.embed, torch.nn.Parameter)
    x = torch.randn(2, 2, 8)
    _, _, commitment, codebook = vq(x)
    codebook.sum().backward()
    assert vq.codebook.embed.grad is not None and vq.codebook.embed.grad.abs().sum() > 0


def test_dead_codes_are_restarted_from_the_batch():
    vq = EuclideanVectorQuantizer(2, 4, kmeans_init=False, threshold_ema_dead_code=1.0).train()
    with torch.no_grad():
        vq.codebook.embed.copy_(torch.tensor([[0.0, 0.0], [100.0, 100.0], [200.0, 200.0], [300.0, 300.0]]))
        vq.codebook.cluster_size.fill_(0.0)
    x = 0.1 * torch.randn(1, 2, 64)
    vq(x)
    # the far-away codes were never used: they now sit on data points
    assert vq.codebook.embed.abs().max() < 5


def test_quantizer_dropout_masks_losses_and_codes():
    torch.manual_seed(0)
    layers = [FactorizedVectorQuantizer(8, 16, 4) for _ in range(4)]
    rvq = ResidualVectorQuantizer(layers, quantizer_dropout=1.0).train()
    out = rvq(torch.randn(32, 8, 5))
    assert out.codes.shape[1] == int(out.num_quantizers.max())
    assert out.num_quantizers.min() >= 1 and len(out.num_quantizers.unique()) > 1
    rvq.eval()
    x = torch.randn(3, 8, 5)
    assert torch.equal(rvq(x, 2).codes, rvq.encode(x, 2))
    assert torch.allclose(rvq(x, 2).quantized, rvq.decode(rvq.encode(x, 2)), atol=1e-5)
