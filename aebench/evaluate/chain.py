"""The generative Markov chain of a denoising autoencoder (Zhou et al. eq. 14–15; Bengio et al.'s GSN chain).

Not "walkback", which is a training procedure: this chain only samples from a trained model.
"""

from __future__ import annotations

import contextlib

import torch

from aebench.context import RunContext


def input_corruption(ctx: RunContext):
    """The corruption the model was trained with on x (layer input 0), or None."""
    for c in ctx.corruptions:
        if c.site == "input" and c.applies_to(0, ctx.model.n_layers):
            return c
    return None


@torch.no_grad()
def markov_chain(
    ctx: RunContext,
    n_chains: int,
    length: int,
    burn_in: int = 0,
    thin: int = 1,
    bernoulli: bool = False,
    corruption=None,
    start: torch.Tensor | str | None = None,
) -> torch.Tensor:
    """Run ``n_chains`` chains X̃_{t+1} ~ C(X̃ | X_t), X_{t+1} ~ P(X | X̃_{t+1}).

    Returns the kept states, shape (n_chains, length, features): ``burn_in`` steps are
    dropped, then every ``thin``-th state is kept. P(X | X̃) is the model's reconstruction:
    its mean, or a Bernoulli draw from it (``bernoulli``). ``start`` is a tensor of
    starting states, ``"train"`` (random training rows) or ``"noise"`` (the default: random
    training rows with their pixels shuffled, so each start has the data's intensities but
    no digit). A chain that starts on a training row and stalls there keeps producing that
    row, and a Parzen window on such samples scores like one on the training set: started
    from noise, only a chain that moves to the data scores well. Every random number comes
    from the run's generator.
    """
    corruption = corruption or input_corruption(ctx)
    if corruption is None:
        raise ValueError("the Markov chain needs a corruption: the model was trained without one on x")
    g, model = ctx.generator, ctx.model
    x = start if isinstance(start, torch.Tensor) else chain_start(ctx, n_chains, start or "noise")
    kept = []
    with _few_threads(ctx.device, n_chains):
        for step in range(burn_in + length * thin):
            mean = model.decode(model.encode(corruption(x, g)))
            x = torch.bernoulli(mean, generator=g) if bernoulli else mean
            if step >= burn_in and (step - burn_in) % thin == 0:
                kept.append(mean)
    return torch.stack(kept, dim=1)


def chain_start(ctx: RunContext, n_chains: int, how: str = "noise") -> torch.Tensor:
    """Starting states: random training rows (``train``), or the same with pixels shuffled (``noise``)."""
    if how not in ("train", "noise"):
        raise ValueError(f"chain start must be 'train' or 'noise', got {how!r}")
    g, train = ctx.generator, ctx.splits["train"]
    idx = torch.randint(len(train), (n_chains,), generator=g, device=ctx.device)
    rows = train.rows(idx)
    if how == "train":
        return rows
    order = torch.argsort(torch.rand(rows.shape, generator=g, device=ctx.device), dim=1)
    return torch.gather(rows, 1, order)


def mean_nearest_distance(rows: torch.Tensor, pool: torch.Tensor, batch: int = 1000) -> float:
    """Mean Euclidean distance from each of ``rows`` to its nearest row of ``pool``."""
    p_sq = pool.pow(2).sum(1)
    total = 0.0
    for s in rows.split(batch):
        d2 = (p_sq - 2 * s @ pool.T).min(1).values + s.pow(2).sum(1)
        total += float(d2.clamp_min(0).sqrt().sum())
    return total / max(len(rows), 1)


@contextlib.contextmanager
def _few_threads(device: torch.device, rows: int):
    """One intra-op thread for a CPU chain of a few rows: its matrix-vector products are far
    too small to share, and on a busy machine two OpenMP threads made 2,000 steps of one
    chain take 100 s instead of 0.2 s (measured, 784-256-256 DAE, 2 cores)."""
    if device.type != "cpu" or rows >= 64:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def nearest_rows(samples: torch.Tensor, pool: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """Index into ``pool`` of the nearest row (Euclidean) to each sample."""
    best = []
    p_sq = pool.pow(2).sum(1)
    for s in samples.split(batch):
        d = p_sq - 2 * s @ pool.T
        best.append(d.argmin(1))
    return torch.cat(best)


#: the name of earlier releases (the chain is not walkback training; kept so old notebooks run)
walkback_chain = markov_chain
