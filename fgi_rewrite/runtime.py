"""Forward Gradient Injection (FGI) runtime (Otte 2024, arXiv:2406.00177).

FGI replaces a custom ``torch.autograd.Function`` with plain tensor algebra
whose *value* is one expression and whose *gradient* is another:

    y = step(x).detach() + (x - x.detach()) * h(x).detach()

In the forward pass ``x - x.detach()`` is 0, so y == step(x); in the backward
pass ``x.detach()``, ``step(x).detach()`` and ``h(x).detach()`` are constants,
so dy/dx = h(x).  There is no custom backward, so TorchScript and
``torch.compile`` can see through and fuse it.

Non-finite inputs.  Where x is +-inf or NaN, ``x - x.detach()`` is NaN and the
textbook form above returns NaN where the step is 0 or 1.  The functions here
are exact by default: they compute

    y = step + ((x - x.detach()) * h).nan_to_num(0.0)

The product is +0, -0 or NaN (never +-inf, since x - x.detach() is 0 or NaN
and 0 * inf is NaN), so ``nan_to_num`` makes it a signed zero and y has the
bits of the step for every input.  In the backward pass ``nan_to_num`` passes
the gradient where the product is finite and zeroes it elsewhere, and the
product's backward then multiplies by h: dy/dx = h(x) for finite x and
0 * h(x) for non-finite x, i.e. 0 at +-inf (every surrogate here vanishes
there) and NaN at NaN (h(NaN) is NaN for all but the rectangular window,
whose comparison makes it 0).  That is exactly what the custom backward
``grad_output * h(x)`` of the autograd.Function being replaced gives, so a
NaN input still shows up as a NaN gradient rather than being hidden.  The
rewriter's generated code uses the same form.

``finite_only=True`` drops the ``nan_to_num`` (the paper's form, one op
less): exact only where x is finite, NaN elsewhere.

All gradients injected here are first-order: the injected factor is detached,
so second derivatives through these functions are 0.

``spike`` looks surrogates up by name at call time; ``spike_<name>`` are the
same spike with one fixed surrogate and typed positional arguments only, so
``torch.jit.script`` can compile them.  ``SPIKE_FUNCTIONS`` maps surrogate
names to them.
"""

from __future__ import annotations

from typing import Callable, Dict, Union

import torch
from torch import Tensor

from . import surrogates
from .surrogates import SurrogateFn, get_surrogate

__all__ = [
    "fgi",
    "bypass",
    "heaviside",
    "spike",
    "spike_gaussian",
    "spike_double_gaussian",
    "spike_fast_sigmoid",
    "spike_arctan",
    "spike_sigmoid",
    "spike_triangle",
    "spike_exponential",
    "spike_rectangular",
    "SPIKE_FUNCTIONS",
]


def fgi(x: Tensor, value: Tensor, grad: Tensor, finite_only: bool = False) -> Tensor:
    r"""Forward gradient injection: the value of ``value``, the local derivative ``grad``.

    y = value.detach() + ((x - x.detach()) * grad.detach()).nan_to_num(0.0)

    Forward: y == value (broadcast with x and grad; dtype by torch promotion).
    The added term is a signed zero for every x and grad, so y has the bits of
    ``value`` except that a ``-0.0`` in ``value`` may come out as ``+0.0``
    (they compare equal; ``heaviside`` never produces -0.0, so spikes are
    bit-exact).
    Backward: dy/dx = grad elementwise where x and grad are finite, and
    0 * grad where x is +-inf or NaN (0, or NaN where grad is NaN there), as
    a custom backward ``grad_output * grad`` gives.  (Where grad is +-inf at a
    finite x the masked product gives NaN instead of +-inf.)  ``value`` and
    ``grad`` receive no gradient.

    With ``finite_only=True`` the ``nan_to_num`` is skipped (the paper's form,
    ``value.detach() + (x - x.detach()) * grad.detach()``): y is NaN wherever
    x (or grad) is non-finite, and dy/dx = grad everywhere.
    """
    injected = (x - x.detach()) * grad.detach()
    if not finite_only:
        # injected is +-0 or NaN (never inf): this maps NaN to +0 and only that.
        injected = injected.nan_to_num(0.0)
    return value.detach() + injected


def bypass(value: Tensor, gradient_source: Tensor, finite_only: bool = False) -> Tensor:
    r"""The forward value of ``value`` with the gradient of ``gradient_source``.

    y = value.detach() - (g.detach() - g).nan_to_num(0.0),   g = gradient_source

    Forward: y == value, bit for bit (broadcast; dtype by torch promotion):
    ``g.detach() - g`` is +0 for finite g and NaN otherwise, ``nan_to_num``
    makes it +0, and ``v - (+0)`` is v for every v, -0.0 and NaN included
    (the paper's ``v + (g - g)`` would turn -0.0 into +0.0).
    Backward: the gradient flows into ``gradient_source`` unchanged (dy/dg = 1)
    where g is finite and is blocked (0) where g is +-inf or NaN; ``value`` gets
    no gradient.  (Only dy/dg is masked: g's own backward still multiplies that
    0 by its local derivatives, so a NaN derivative inside g can still give
    0 * NaN = NaN further down.)

    With ``finite_only=True`` this is the paper's ``g - g.detach() + value.detach()``:
    y is NaN wherever g is non-finite, the gradient reaches g everywhere, and a
    -0.0 in ``value`` comes out as +0.0.
    """
    if finite_only:
        return gradient_source - gradient_source.detach() + value.detach()
    # Subtract rather than add a +0: v - (+0) keeps the sign of a zero v.
    zero_with_gradient = (gradient_source.detach() - gradient_source).nan_to_num(0.0)
    return value.detach() - zero_with_gradient


def heaviside(x: Tensor, threshold: float = 0.0, inclusive: bool = False) -> Tensor:
    r"""The spike step H(x - threshold) in x's dtype, without any gradient.

    H = 1 where x > threshold (x >= threshold when ``inclusive``), else 0.
    NaN compares false, so H(NaN) = 0; H(+inf) = 1, H(-inf) = 0.
    """
    fired = torch.ge(x, threshold) if inclusive else torch.gt(x, threshold)
    return fired.to(x.dtype)


def spike(
    x: Tensor,
    threshold: Union[float, Tensor] = 0.0,
    surrogate: Union[str, SurrogateFn] = "gaussian",
    inclusive: bool = False,
    finite_only: bool = False,
    **params: float,
) -> Tensor:
    r"""Heaviside spike with the surrogate derivative ``surrogate`` injected by FGI.

    Forward: H(x - threshold) in x's dtype, bit-exact for every input (also
    +-inf and NaN) unless ``finite_only``; see ``heaviside`` for ``inclusive``.
    Backward: dy/dx = h(x - threshold; **params) for finite x and 0 * h at
    non-finite x (for the library's surrogates: 0 at +-inf, NaN at NaN except
    for the rectangular window; see the module docstring).  h is
    ``surrogate``: a name from ``surrogates.SURROGATE_NAMES``, an alias from
    ``surrogates.ALIASES``, or any function ``h(u, **params) -> Tensor``.

    ``threshold`` may be a tensor (a learnable threshold, broadcast with x); the
    gradient is then injected on u = x - threshold, so the threshold receives
    -h(u).  Not scriptable (it takes ``**params``); use ``spike_<name>`` for
    TorchScript.  ``torch.compile(fullgraph=True)`` handles it.
    """
    h = get_surrogate(surrogate) if isinstance(surrogate, str) else surrogate
    step = heaviside(x, threshold, inclusive)  # type: ignore[arg-type]
    if isinstance(threshold, Tensor):
        # Inject on u so that the gradient reaches the threshold too.
        u = x - threshold
        return fgi(u, step, h(u.detach(), **params), finite_only)
    # A float threshold has no gradient: inject on x itself, so that a finite x
    # whose x - threshold overflows still gets the exact step with finite_only.
    return fgi(x, step, h(x.detach() - threshold, **params), finite_only)


# --- Scriptable spikes with a fixed surrogate ----------------------------------
# Positional parameters only (TorchScript rejects keyword-only arguments with
# defaults and **kwargs): the surrogate's own parameters come first, then
# threshold, inclusive, finite_only.


def spike_gaussian(
    x: Tensor,
    sigma: float = 0.5,
    threshold: float = 0.0,
    inclusive: bool = False,
    finite_only: bool = False,
) -> Tensor:
    """``spike`` with ``surrogates.gaussian(x - threshold, sigma)``; scriptable."""
    h = surrogates.gaussian(x.detach() - threshold, sigma)
    return fgi(x, heaviside(x, threshold, inclusive), h, finite_only)


def spike_double_gaussian(
    x: Tensor,
    sigma: float = 0.5,
    p: float = 0.15,
    s: float = 6.0,
    threshold: float = 0.0,
    inclusive: bool = False,
    finite_only: bool = False,
) -> Tensor:
    """``spike`` with ``surrogates.double_gaussian(x - threshold, sigma, p, s)``; scriptable."""
    h = surrogates.double_gaussian(x.detach() - threshold, sigma, p, s)
    return fgi(x, heaviside(x, threshold, inclusive), h, finite_only)


def spike_fast_sigmoid(
    x: Tensor,
    beta: float = 10.0,
    threshold: float = 0.0,
    inclusive: bool = False,
    finite_only: bool = False,
) -> Tensor:
    """``spike`` with ``surrogates.fast_sigmoid(x - threshold, beta)``; scriptable."""
    h = surrogates.fast_sigmoid(x.detach() - threshold, beta)
    return fgi(x, heaviside(x, threshold, inclusive), h, finite_only)


def spike_arctan(
    x: Tensor,
    alpha: float = 2.0,
    threshold: float = 0.0,
    inclusive: bool = False,
    finite_only: bool = False,
) -> Tensor:
    """``spike`` with ``surrogates.arctan(x - threshold, alpha)``; scriptable."""
    h = surrogates.arctan(x.detach() - threshold, alpha)
    return fgi(x, heaviside(x, threshold, inclusive), h, finite_only)


def spike_sigmoid(
    x: Tensor,
    alpha: float = 4.0,
    threshold: float = 0.0,
    inclusive: bool = False,
    finite_only: bool = False,
) -> Tensor:
    """``spike`` with ``surrogates.sigmoid(x - threshold, alpha)``; scriptable."""
    h = surrogates.sigmoid(x.detach() - threshold, alpha)
    return fgi(x, heaviside(x, threshold, inclusive), h, finite_only)


def spike_triangle(
    x: Tensor,
    width: float = 1.0,
    threshold: float = 0.0,
    inclusive: bool = False,
    finite_only: bool = False,
) -> Tensor:
    """``spike`` with ``surrogates.triangle(x - threshold, width)``; scriptable."""
    h = surrogates.triangle(x.detach() - threshold, width)
    return fgi(x, heaviside(x, threshold, inclusive), h, finite_only)


def spike_exponential(
    x: Tensor,
    alpha: float = 2.0,
    threshold: float = 0.0,
    inclusive: bool = False,
    finite_only: bool = False,
) -> Tensor:
    """``spike`` with ``surrogates.exponential(x - threshold, alpha)``; scriptable."""
    h = surrogates.exponential(x.detach() - threshold, alpha)
    return fgi(x, heaviside(x, threshold, inclusive), h, finite_only)


def spike_rectangular(
    x: Tensor,
    width: float = 1.0,
    threshold: float = 0.0,
    inclusive: bool = False,
    finite_only: bool = False,
) -> Tensor:
    """``spike`` with ``surrogates.rectangular(x - threshold, width)``; scriptable."""
    h = surrogates.rectangular(x.detach() - threshold, width)
    return fgi(x, heaviside(x, threshold, inclusive), h, finite_only)


SPIKE_FUNCTIONS: Dict[str, Callable[..., Tensor]] = {
    "gaussian": spike_gaussian,
    "double_gaussian": spike_double_gaussian,
    "fast_sigmoid": spike_fast_sigmoid,
    "arctan": spike_arctan,
    "sigmoid": spike_sigmoid,
    "triangle": spike_triangle,
    "exponential": spike_exponential,
    "rectangular": spike_rectangular,
}
