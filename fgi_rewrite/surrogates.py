"""Surrogate derivatives for the Heaviside spike function.

Each surrogate is a plain function ``h(x, *params) -> Tensor`` that returns the
*derivative value* the spike nonlinearity should pretend to have at ``x`` (the
membrane potential minus the threshold).  The functions:

* are elementwise, keep ``x``'s dtype and device, and do not modify ``x``;
* take only ``float`` parameters with defaults, so every one of them can be
  compiled with ``torch.jit.script`` and traced by
  ``torch.compile(fullgraph=True)`` without graph breaks;
* do not validate their parameters (a check would be Python control flow that
  TorchScript and Dynamo would have to carry); widths, scales and slopes are
  expected to be positive.

The gradient-scale factor that many training scripts multiply in (``gamma`` in
Yin et al. 2021, for instance) is not part of ``h``; multiply it in yourself.

``SURROGATES`` maps each canonical name to its function, ``SURROGATE_NAMES``
lists the canonical names, ``ALIASES`` maps common alternative names onto
them, and ``get_surrogate`` resolves either.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Tuple

import torch
from torch import Tensor

__all__ = [
    "gaussian",
    "double_gaussian",
    "fast_sigmoid",
    "arctan",
    "sigmoid",
    "triangle",
    "exponential",
    "rectangular",
    "SURROGATES",
    "SURROGATE_NAMES",
    "ALIASES",
    "get_surrogate",
]


def _normal_pdf(x: Tensor, mean: float, std: float) -> Tensor:
    """Normal density N(x; mean, std) = exp(-(x-mean)^2 / (2 std^2)) / (std sqrt(2 pi))."""
    # The constant is spelled out: TorchScript cannot read module-level floats.
    z = (x - mean) / std
    return torch.exp(-0.5 * (z * z)) * (1.0 / (std * math.sqrt(2.0 * math.pi)))


def gaussian(x: Tensor, sigma: float = 0.5) -> Tensor:
    r"""Gaussian surrogate: the normal density with standard deviation ``sigma``.

    h(x) = \frac{1}{\sigma\sqrt{2\pi}} \exp\left(-\frac{x^2}{2\sigma^2}\right)

    Unit area; peak 1/(sigma sqrt(2 pi)) ~= 0.798 at the default sigma = 0.5.
    """
    return _normal_pdf(x, 0.0, sigma)


def double_gaussian(x: Tensor, sigma: float = 0.5, p: float = 0.15, s: float = 6.0) -> Tensor:
    r"""Multi-Gaussian surrogate with negative side lobes (Yin, Corradi & Bohte 2021).

    h(x) = (1+p)\,N(x; 0, \sigma) - p\,N(x; \sigma, s\sigma) - p\,N(x; -\sigma, s\sigma)

    where N(x; mu, std) is the normal density.  This is the form in the
    authors' reference code ("MG", lens = sigma = 0.5, hight = p = 0.15,
    scale = s = 6): the two wide negative Gaussians sit at +-sigma, not at 0
    (centring both at 0 gives the simplified (1+p) N(x;0,sigma) - 2p N(x;0,s sigma)
    seen in some write-ups; it differs slightly away from x = 0).
    Total area (1+p) - 2p = 1 - p; peak ~= 0.878 at the defaults.
    """
    wide = s * sigma
    return (1.0 + p) * _normal_pdf(x, 0.0, sigma) - p * (_normal_pdf(x, sigma, wide) + _normal_pdf(x, -sigma, wide))


def fast_sigmoid(x: Tensor, beta: float = 10.0) -> Tensor:
    r"""Fast-sigmoid / SuperSpike surrogate (Zenke & Ganguli 2018).

    h(x) = \frac{1}{(1 + \beta |x|)^2}

    The derivative of the fast sigmoid x / (1 + beta |x|), up to the factor
    beta; peak 1 at x = 0, area 2/beta (not normalised, following SuperSpike).  (spytorch uses beta = 100, snnTorch's
    ``fast_sigmoid`` uses slope = 25; the default here is 10.)
    """
    denominator = 1.0 + beta * x.abs()
    return torch.reciprocal(denominator * denominator)


def arctan(x: Tensor, alpha: float = 2.0) -> Tensor:
    r"""Arctangent surrogate (Fang et al. 2021, SpikingJelly's ``ATan``).

    h(x) = \frac{\alpha / 2}{1 + \left(\frac{\pi}{2}\alpha x\right)^2}

    The derivative of (1/pi) arctan(pi/2 alpha x) + 1/2; unit area, peak
    alpha/2 at x = 0.
    """
    z = (0.5 * math.pi * alpha) * x
    return torch.reciprocal(1.0 + z * z) * (0.5 * alpha)


def sigmoid(x: Tensor, alpha: float = 4.0) -> Tensor:
    r"""Sigmoid-derivative surrogate (SpikingJelly's ``Sigmoid``).

    h(x) = \alpha\,\sigma(\alpha x)\,(1 - \sigma(\alpha x)),\quad \sigma(z) = 1/(1+e^{-z})

    The derivative of sigma(alpha x); unit area, peak alpha/4 at x = 0.
    """
    s = torch.sigmoid(alpha * x)
    return alpha * s * (1.0 - s)


def triangle(x: Tensor, width: float = 1.0) -> Tensor:
    r"""Triangular (piecewise-linear) surrogate, normalised to unit area.

    h(x) = \frac{1}{w}\max\left(0,\ 1 - \frac{|x|}{w}\right)

    Support (-w, w), peak 1/w at x = 0.  The common "gamma * max(0, 1 - |x|)"
    form (Bellec et al. 2018; Yin et al.'s "linear") is gamma * triangle(x, 1.0).
    """
    return torch.clamp(1.0 - x.abs() / width, min=0.0) / width


def exponential(x: Tensor, alpha: float = 2.0) -> Tensor:
    r"""Exponential (Laplace-density) surrogate, normalised to unit area.

    h(x) = \frac{\alpha}{2} \exp(-\alpha |x|)

    Peak alpha/2 at x = 0.  The SLAYER-style "exp(-a |x|)" form is
    (2/a) * exponential(x, a).
    """
    return torch.exp(-alpha * x.abs()) * (0.5 * alpha)


def rectangular(x: Tensor, width: float = 1.0) -> Tensor:
    r"""Rectangular (boxcar / straight-through window) surrogate, unit area.

    h(x) = \frac{1}{w}\,[\,|x| < w/2\,]

    Open interval: exactly at |x| = w/2 the value is 0.  The common
    "|x| < 0.5" form is rectangular(x, 1.0).
    """
    inside = (x.abs() < 0.5 * width).to(x.dtype)
    return inside / width


SurrogateFn = Callable[..., Tensor]

SURROGATES: Dict[str, SurrogateFn] = {
    "gaussian": gaussian,
    "double_gaussian": double_gaussian,
    "fast_sigmoid": fast_sigmoid,
    "arctan": arctan,
    "sigmoid": sigmoid,
    "triangle": triangle,
    "exponential": exponential,
    "rectangular": rectangular,
}

SURROGATE_NAMES: Tuple[str, ...] = tuple(SURROGATES)

# Alternative spellings seen in SNN code bases, mapped onto canonical names.
ALIASES: Dict[str, str] = {
    "multi_gaussian": "double_gaussian",
    "mg": "double_gaussian",
    "superspike": "fast_sigmoid",
    "atan": "arctan",
    "linear": "triangle",
    "piecewise_linear": "triangle",
    "boxcar": "rectangular",
    "rect": "rectangular",
}


def get_surrogate(name: str) -> SurrogateFn:
    """Return the surrogate called ``name`` (canonical or alias, case-insensitive).

    Raises ``KeyError`` naming the known surrogates when ``name`` is unknown.
    """
    key = name.lower()
    key = ALIASES.get(key, key)
    try:
        return SURROGATES[key]
    except KeyError:
        known = ", ".join(SURROGATE_NAMES)
        raise KeyError(f"unknown surrogate {name!r}; known: {known}") from None
