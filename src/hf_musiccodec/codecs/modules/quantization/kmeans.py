"""Plain k-means, used to initialise codebooks from the first training batch (SoundStream, EnCodec)."""

from __future__ import annotations

import torch


def sample_vectors(samples: torch.Tensor, num: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``num`` rows of ``samples``, without replacement when there are enough of them."""
    n = samples.shape[0]
    if n >= num:
        idx = torch.randperm(n, device=samples.device, generator=generator)[:num]
    else:
        idx = torch.randint(0, n, (num,), device=samples.device, generator=generator)
    return samples[idx]


@torch.no_grad()
def kmeans_plus_plus(samples: torch.Tensor, num: int) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii, 2007): each new centre is drawn with probability
    proportional to its squared distance from the centres so far, so clusters are rarely merged."""
    centres = [samples[torch.randint(0, samples.shape[0], (1,), device=samples.device)]]
    closest = (samples - centres[0]).pow(2).sum(-1)
    for _ in range(1, num):
        total = closest.sum()
        if total <= 0:  # fewer distinct samples than centres: fill up uniformly
            centres.append(sample_vectors(samples, num - len(centres)))
            break
        pick = torch.multinomial(closest / total, 1)
        centres.append(samples[pick])
        closest = torch.minimum(closest, (samples - samples[pick]).pow(2).sum(-1))
    return torch.cat(centres)[:num].clone()


@torch.no_grad()
def kmeans(samples: torch.Tensor, num_clusters: int, num_iters: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster ``samples`` (N, D). Returns the means (K, D) and the cluster sizes (K,).

    An empty cluster keeps its previous mean rather than collapsing to zero.
    """
    samples = samples.float()
    means = kmeans_plus_plus(samples, num_clusters)
    bins = torch.zeros(num_clusters, device=samples.device)
    for _ in range(num_iters):
        assign = torch.cdist(samples, means).argmin(dim=-1)
        bins = torch.bincount(assign, minlength=num_clusters).float()
        sums = torch.zeros_like(means).index_add_(0, assign, samples)
        nonempty = bins > 0
        means[nonempty] = sums[nonempty] / bins[nonempty, None]
    return means, bins
