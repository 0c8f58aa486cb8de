"""Pure tensor maths used by the built-ins and available to plug-ins."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "linear": lambda a: a,
}


def activate(name: str, a: torch.Tensor) -> torch.Tensor:
    return ACTIVATIONS[name](a)


def cross_entropy_from_logits(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Bernoulli cross-entropy summed over units, averaged over the batch (nats/example)."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / logits.shape[0]


def squared_error(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error summed over units, averaged over the batch."""
    return (output - target).pow(2).sum() / output.shape[0]


def unit_derivative(name: str, h: torch.Tensor) -> torch.Tensor:
    """f'(a) expressed through the unit's output h = f(a)."""
    if name == "sigmoid":
        return h * (1 - h)
    if name == "tanh":
        return 1 - h * h
    if name == "relu":
        return (h > 0).to(h.dtype)
    return torch.ones_like(h)


def contractive_penalty(h: torch.Tensor, W: torch.Tensor, activation: str = "sigmoid") -> torch.Tensor:
    """Batch mean of ||∂h/∂x||_F² for a layer h = f(W x + b), W of shape (hidden, input).

    ∂h_j/∂x_i = f'(a_j) W_ji, so ||J||_F² = Σ_j f'(a_j)² Σ_i W_ji²: one (batch × hidden)
    product instead of a Jacobian. For sigmoid units f'(a) = h (1 - h).
    """
    g = unit_derivative(activation, h).pow(2)
    return (g @ W.pow(2).sum(dim=1)).mean()


def kl_sparsity(h: torch.Tensor, rho: float, eps: float = 1e-7) -> torch.Tensor:
    """Σ_j KL(ρ || ρ̂_j) with ρ̂_j the batch-mean activation of unit j (units in (0, 1))."""
    rho_hat = h.mean(dim=0).clamp(eps, 1 - eps)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


def parzen_log_likelihood(samples: torch.Tensor, x: torch.Tensor, sigma: float, batch_size: int = 1000) -> torch.Tensor:
    """Per-row log-density of ``x`` under an isotropic Gaussian Parzen window on ``samples``.

    log p(x) = logsumexp_k(-||x - s_k||² / 2σ²) - log K - d/2 log(2πσ²). Rows of ``x``
    and ``samples`` are processed in blocks of ``batch_size`` so that memory stays
    O(batch_size²) for any number of samples and test rows.
    """
    samples, x = _flat(samples, x)
    return _parzen_from(_sq_distances(samples, x, batch_size), samples, x.shape[0], sigma)


def parzen_window(
    samples: torch.Tensor, x: torch.Tensor, batch_size: int = 1000, max_bytes: int = 256 * 2**20
) -> Callable[[float], torch.Tensor]:
    """``sigma -> parzen_log_likelihood(samples, x, sigma, batch_size)`` for a search over σ: the
    squared distances, most of the cost, are computed once and kept when they fit in
    ``max_bytes`` (the same operations on the same blocks: bit for bit the same result),
    else for each σ again."""
    samples, x = _flat(samples, x)
    if x.shape[0] * samples.shape[0] * samples.element_size() > max_bytes:
        return lambda sigma: parzen_log_likelihood(samples, x, sigma, batch_size)
    blocks = list(_sq_distances(samples, x, batch_size))
    return lambda sigma: _parzen_from(iter(blocks), samples, x.shape[0], sigma)


def _flat(samples: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    samples = samples.reshape(samples.shape[0], -1)
    return samples, x.reshape(x.shape[0], -1).to(samples.dtype)


def _sq_distances(samples: torch.Tensor, x: torch.Tensor, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(first row of x, its squared distances to one block of samples), row block by sample block."""
    s_sq = samples.pow(2).sum(1)
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size]
        xb_sq = xb.pow(2).sum(1, keepdim=True)
        for s0 in range(0, samples.shape[0], batch_size):
            yield start, (xb_sq - 2 * xb @ samples[s0 : s0 + batch_size].T + s_sq[s0 : s0 + batch_size]).clamp_min_(0)


def _parzen_from(
    blocks: Iterator[tuple[int, torch.Tensor]], samples: torch.Tensor, rows: int, sigma: float
) -> torch.Tensor:
    """The log-densities from the squared-distance blocks (in :func:`_sq_distances`' order)."""
    k, d = samples.shape
    const = math.log(k) + 0.5 * d * math.log(2 * math.pi * sigma**2)
    out = torch.empty(rows, dtype=samples.dtype, device=samples.device)
    acc: dict[int, torch.Tensor] = {}
    for start, d2 in blocks:
        block = torch.logsumexp(-d2 / (2 * sigma**2), dim=1)
        acc[start] = block if start not in acc else torch.logaddexp(acc[start], block)
    for start, a in acc.items():
        out[start : start + len(a)] = a - const
    return out


def tied_decode(h: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``h @ W + b``: a tied decoder's pre-activation, W the encoder's (out, in) weight.

    The same product as ``F.linear(h, W.t(), b)``, but there autograd passes W's decoder
    gradient through two transposes and then adds W's two gradients out of place (an extra
    pass over W every step: about 5 % of a 784-1000-1000 DAE's step on CPU); here it comes
    out in W's own layout and is accumulated in place, as the batched form's decoder does
    (:func:`batched_linear`).

    Under autocast (``precision``) it stays ``F.linear(h, W.t(), b)``: autocast casts a leaf
    weight once per region, so h W would share the encoder's low-precision copy of W and
    add its two gradients in bfloat16; the batched form, like F.linear, adds them in float32.
    """
    if h.dim() != 2 or torch.is_autocast_enabled(h.device.type):
        return F.linear(h, W.t(), b)
    return torch.addmm(b, h, W)


def batched_linear(device_type: str) -> type[torch.autograd.Function]:
    """``h @ W^T + b`` per member (an encoder) or, with ``decoder``, ``h @ W + b`` (its tied
    decoder), for h (S, B, ·), W (S, out, in), b (S, ·): ``.apply(h, W, b, decoder)``.

    Autograd's own ``bmm`` backward returns the encoder's weight gradient transposed, so a
    tied weight would sum a (S, out, in) and a strided (S, in, out) gradient every step;
    here both come out in the weight's own layout (adding them for 8 members of 256×784:
    1.5 ms strided, 0.16 ms contiguous, on 2 CPU cores). One class per device type, so
    that the backward runs under the forward's autocast state (``precision``). (A plain dict
    caches the classes: torch.compile traces through it, where it warns of ``lru_cache``.)
    """
    if device_type not in _BATCHED_LINEAR:
        _BATCHED_LINEAR[device_type] = _make_batched_linear(device_type)
    return _BATCHED_LINEAR[device_type]


_BATCHED_LINEAR: dict[str, type[torch.autograd.Function]] = {}


def _make_batched_linear(device_type: str) -> type[torch.autograd.Function]:
    class BatchedLinear(torch.autograd.Function):
        @staticmethod
        @torch.amp.custom_fwd(device_type=device_type)
        def forward(ctx, h: torch.Tensor, W: torch.Tensor, b: torch.Tensor, decoder: bool) -> torch.Tensor:
            ctx.save_for_backward(h, W)
            ctx.decoder = decoder
            return torch.baddbmm(b.unsqueeze(1), h, W if decoder else W.transpose(1, 2))

        @staticmethod
        @torch.amp.custom_bwd(device_type=device_type)
        def backward(ctx, g: torch.Tensor):
            h, W = ctx.saved_tensors
            need_h, need_W, need_b, _ = ctx.needs_input_grad
            gh = torch.bmm(g, W.transpose(1, 2) if ctx.decoder else W) if need_h else None
            gW = None
            if need_W:
                gW = torch.bmm(h.transpose(1, 2), g) if ctx.decoder else torch.bmm(g.transpose(1, 2), h)
            return gh, gW, g.sum(1) if need_b else None, None

    return BatchedLinear


def member_cross_entropy_from_logits(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """:func:`cross_entropy_from_logits` of each member: (S, B, n) -> (S,)."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum((1, 2)) / logits.shape[1]


def member_squared_error(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """:func:`squared_error` of each member: (S, B, n) -> (S,)."""
    return (output - target).pow(2).sum((1, 2)) / output.shape[1]
