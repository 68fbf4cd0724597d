"""Adaptive LIF (ALIF) recurrent spiking network for sequential MNIST.

This is the model of the FGI paper's experiment (Otte 2024, arXiv 2406.00177),
written the way users usually write surrogate-gradient SNNs: the spike is a
``torch.autograd.Function`` with a Heaviside step forward and a hand-written
backward that multiplies by a Gaussian surrogate derivative.

``fgi rewrite`` (``fgi_rewrite.api.rewrite_source``) turns the
``SpikeFunction.apply(...)`` call site below into inline forward gradient
injection, value ``step(x)``, derivative ``gaussian(x)``, no custom backward::

    (x > 0).float() + ((x - x.detach()) * gaussian(x.detach())).nan_to_num(0.0)

The benchmark harness (``fgi bench``) loads this file as is for the
"backward()" variant and runs the rewriter on the same text at run time for
the "fgi" variant; nothing in this file is FGI by hand.

TorchScript notes (checked with torch 2.13):

* ``torch.jit.script`` accepts the plain ``SpikeFunction.apply(v)`` call in
  ``forward`` as it is: it becomes an opaque Python operator
  (``^SpikeFunction()`` in ``scripted.graph``).  Every time step then calls
  back into the Python interpreter for the forward and for the custom
  backward, the TorchScript fuser cannot fuse across that call, and the
  scripted module cannot be saved (``torch.jit.save``: "Could not export
  Python function call 'SpikeFunction'").  So no ``@torch.jit.ignore``
  wrapper is needed for the backward() baseline to script.  We deliberately
  do not add one: an ignored wrapper compiles to the same kind of opaque call
  (``^spike()``), and the rewriter replaces the ``apply`` call inside the
  wrapper but keeps the decorator (checked), so the FGI version would run the
  spike in Python too and TorchScript could not optimise through it.
* After the rewrite there is no Python operator left: the whole time loop is
  TorchScript IR, and ``torch.jit.save`` works.
* Every helper that ``forward`` uses (``gaussian`` too, which the rewritten
  forward calls) has type annotations, so it can be scripted.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def gaussian(x: torch.Tensor, sigma: float = 0.5) -> torch.Tensor:
    """Normal density N(0, sigma^2) at ``x``: the surrogate derivative.

    ``sigma`` is in units of the spike function's argument ``u - theta``.  The
    default is a literal on purpose: the rewriter inlines this body into the
    forward with ``sigma`` replaced by its default, and TorchScript cannot read
    a module-level float (``SIGMA = 0.5``) from inside a scripted method.
    """
    return torch.exp(-0.5 * (x / sigma) ** 2) / (sigma * math.sqrt(2.0 * math.pi))


class SpikeFunction(torch.autograd.Function):
    """Heaviside spike with a Gaussian surrogate gradient."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * gaussian(x)


class ALIFSNN(nn.Module):
    """Single recurrent layer of adaptive LIF neurons (Bellec et al. 2018) and a
    leaky readout.

    Per time step ``t`` (all state of shape ``[batch, hidden]``)::

        theta = b0 + beta * a
        u     = alpha * u + (1 - alpha) * (W_in x_t + W_rec z)
        z     = Spike(u - theta)
        u     = u - z * theta                 # soft reset
        a     = rho * a + (1 - rho) * z
        o     = kappa * o + (1 - kappa) * W_out z

    ``alpha = sigmoid(alpha_param)`` and ``rho = sigmoid(rho_param)`` are learned
    per neuron.  The logits are the readout state ``o`` after the last step.

    Input: ``[batch, T, n_in]`` (sequential MNIST: ``T * n_in == 784``).
    Output: ``[batch, n_out]`` logits.
    """

    def __init__(
        self,
        n_in: int = 28,
        hidden: int = 128,
        n_out: int = 10,
        b0: float = 0.1,
        beta: float = 0.8,
        kappa: float = 0.9,
        tau_mem: tuple[float, float] = (5.0, 25.0),
        tau_adapt: tuple[float, float] = (50.0, 200.0),
    ) -> None:
        super().__init__()
        self.n_in = n_in
        self.hidden = hidden
        self.n_out = n_out
        self.b0 = b0
        self.beta = beta
        self.kappa = kappa
        self.fc_in = nn.Linear(n_in, hidden)
        self.fc_rec = nn.Linear(hidden, hidden, bias=False)
        self.fc_out = nn.Linear(hidden, n_out)
        # Membrane and adaptation decay factors, exp(-1/tau) with tau drawn
        # uniformly, stored as logits so that sigmoid() keeps them in (0, 1).
        tm = torch.empty(hidden).uniform_(tau_mem[0], tau_mem[1])
        ta = torch.empty(hidden).uniform_(tau_adapt[0], tau_adapt[1])
        self.alpha_param = nn.Parameter(torch.logit(torch.exp(-1.0 / tm)))
        self.rho_param = nn.Parameter(torch.logit(torch.exp(-1.0 / ta)))
        nn.init.orthogonal_(self.fc_rec.weight, gain=0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.size(0)
        steps = x.size(1)
        alpha = torch.sigmoid(self.alpha_param)
        rho = torch.sigmoid(self.rho_param)
        # Input currents of all time steps at once: [batch, T, hidden].
        i_in = self.fc_in(x)
        u = torch.zeros(batch, self.hidden, dtype=x.dtype, device=x.device)
        a = torch.zeros_like(u)
        z = torch.zeros_like(u)
        o = torch.zeros(batch, self.n_out, dtype=x.dtype, device=x.device)
        for t in range(steps):
            theta = self.b0 + self.beta * a
            current = i_in[:, t] + self.fc_rec(z)
            u = alpha * u + (1.0 - alpha) * current
            z = SpikeFunction.apply(u - theta)
            u = u - z * theta
            a = rho * a + (1.0 - rho) * z
            o = self.kappa * o + (1.0 - self.kappa) * self.fc_out(z)
        return o


def build_model(n_in: int = 28, hidden: int = 128, n_out: int = 10, seed: int = 0) -> ALIFSNN:
    """The ALIF network with weights drawn from ``seed`` (same seed, same weights)."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return ALIFSNN(n_in=n_in, hidden=hidden, n_out=n_out)
    finally:
        torch.random.set_rng_state(gen_state)


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, target)
