"""Tests for the FGI runtime (fgi_rewrite.runtime) and surrogates (fgi_rewrite.surrogates).

Reference derivatives are written out again here, per element in float64 with
``math``, in forms that differ from the library's where a different form exists
(sigmoid via cosh, for instance), so a typo in either place shows up.
"""

from __future__ import annotations

import math
import shutil
import struct
from typing import Callable, Dict, List, Tuple

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fgi_rewrite import runtime  # noqa: E402
from fgi_rewrite import surrogates  # noqa: E402

Tensor = torch.Tensor

# Scripting is what these tests check; torch 2.13 warns that it is deprecated.
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.script.*is deprecated:DeprecationWarning")

# --- Independent float64 references ------------------------------------------


def _normal(u: float, mean: float, std: float) -> float:
    return math.exp(-((u - mean) ** 2) / (2.0 * std * std)) / (std * math.sqrt(2.0 * math.pi))


def _sigmoid_derivative(u: float, alpha: float) -> float:
    # alpha * s(z) (1 - s(z)) == alpha / (4 cosh(z/2)^2), z = alpha u.
    half = 0.5 * alpha * u
    if abs(half) > 700.0:  # cosh overflows; the true value is below 1e-300.
        return 0.0
    return alpha / (4.0 * math.cosh(half) ** 2)


# name -> (reference h(u, **params), non-default params used in the tests)
REFERENCES: Dict[str, Tuple[Callable[..., float], Dict[str, float]]] = {
    "gaussian": (lambda u, sigma=0.5: _normal(u, 0.0, sigma), {"sigma": 0.3}),
    "double_gaussian": (
        lambda u, sigma=0.5, p=0.15, s=6.0: (1.0 + p) * _normal(u, 0.0, sigma)
        - p * _normal(u, sigma, s * sigma)
        - p * _normal(u, -sigma, s * sigma),
        {"sigma": 0.4, "p": 0.2, "s": 4.0},
    ),
    "fast_sigmoid": (lambda u, beta=10.0: (1.0 + beta * abs(u)) ** -2, {"beta": 25.0}),
    "arctan": (
        lambda u, alpha=2.0: (alpha / 2.0) / (1.0 + (math.pi / 2.0 * alpha * u) ** 2),
        {"alpha": 3.0},
    ),
    "sigmoid": (lambda u, alpha=4.0: _sigmoid_derivative(u, alpha), {"alpha": 5.0}),
    "triangle": (lambda u, width=1.0: max(0.0, 1.0 - abs(u) / width) / width, {"width": 0.7}),
    "exponential": (lambda u, alpha=2.0: alpha / 2.0 * math.exp(-alpha * abs(u)), {"alpha": 3.5}),
    "rectangular": (lambda u, width=1.0: (1.0 / width) if abs(u) < width / 2.0 else 0.0, {"width": 0.8}),
}

NAMES = list(surrogates.SURROGATE_NAMES)
FLOAT_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
INT_VIEW = {
    torch.float64: torch.int64,
    torch.float32: torch.int32,
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
}
INF, NAN = float("inf"), float("nan")


def reference_grad(name: str, u: Tensor, params: Dict[str, float]) -> Tensor:
    """h(u) in float64, element by element with math, from the reference formulas."""
    h = REFERENCES[name][0]
    values = [h(v, **params) if math.isfinite(v) else 0.0 for v in u.double().flatten().tolist()]
    return torch.tensor(values, dtype=torch.float64).reshape(u.shape)


def assert_bitwise_equal(actual: Tensor, expected: Tensor) -> None:
    """Same dtype, shape and bits (so -0.0 != +0.0 and NaN payloads count)."""
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    view = INT_VIEW[actual.dtype]
    mismatch = actual.detach().view(view) != expected.detach().view(view)
    assert not mismatch.any(), (actual[mismatch], expected[mismatch])


def assert_same_numbers(actual: Tensor, expected: Tensor) -> None:
    """Bitwise equal except that any NaN matches any NaN (payload and sign bits of NaN may differ)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    nan = torch.isnan(actual)
    assert torch.equal(nan, torch.isnan(expected))
    assert_bitwise_equal(actual[~nan], expected[~nan])


def step_reference(x: Tensor, threshold: float, inclusive: bool) -> Tensor:
    """The step the spike must reproduce: torch's own comparison, cast to x's dtype."""
    fired = (x >= threshold) if inclusive else (x > threshold)
    return torch.where(fired, torch.ones_like(x), torch.zeros_like(x))


def special_inputs(threshold: float, dtype: torch.dtype) -> Tensor:
    """The threshold, its neighbours, signed zeros, extremes, infinities and NaN."""
    info = torch.finfo(dtype)
    t = torch.tensor(threshold, dtype=dtype)
    values = torch.stack(
        [
            t,
            torch.nextafter(t, torch.tensor(INF, dtype=dtype)),
            torch.nextafter(t, torch.tensor(-INF, dtype=dtype)),
            torch.tensor(0.0, dtype=dtype),
            torch.tensor(-0.0, dtype=dtype),
            torch.tensor(info.tiny * 0.5, dtype=dtype),  # subnormal
            torch.tensor(info.max, dtype=dtype),
            torch.tensor(-info.max, dtype=dtype),
            torch.tensor(INF, dtype=dtype),
            torch.tensor(-INF, dtype=dtype),
            torch.tensor(NAN, dtype=dtype),
        ]
    )
    return values


def random_inputs(threshold: float, dtype: torch.dtype, n: int = 2000, seed: int = 0) -> Tensor:
    """Wide spread plus a dense cluster around the threshold."""
    gen = torch.Generator().manual_seed(seed)
    wide = torch.randn(n, generator=gen, dtype=torch.float64) * 3.0
    near = threshold + torch.randn(n // 4, generator=gen, dtype=torch.float64) * 1e-3
    return torch.cat([wide, near]).to(dtype)


def spike_by_name(
    name: str, x: Tensor, threshold: float, inclusive: bool, finite_only: bool, params: Dict[str, float]
) -> Tensor:
    return runtime.spike(x, threshold, name, inclusive, finite_only, **params)


# --- Registry -----------------------------------------------------------------


def test_registry_lists_every_surrogate_once():
    assert set(NAMES) == set(REFERENCES)
    assert len(NAMES) == len(set(NAMES)) == 8
    assert list(surrogates.SURROGATES) == NAMES
    assert list(runtime.SPIKE_FUNCTIONS) == NAMES
    for name in NAMES:
        assert surrogates.get_surrogate(name) is surrogates.SURROGATES[name]
        assert surrogates.SURROGATES[name] is getattr(surrogates, name)
        assert runtime.SPIKE_FUNCTIONS[name] is getattr(runtime, f"spike_{name}")


def test_aliases_resolve_and_unknown_names_raise():
    assert surrogates.get_surrogate("SuperSpike") is surrogates.fast_sigmoid
    assert surrogates.get_surrogate("boxcar") is surrogates.rectangular
    assert surrogates.get_surrogate("atan") is surrogates.arctan
    for alias, target in surrogates.ALIASES.items():
        assert target in surrogates.SURROGATES, alias
    with pytest.raises(KeyError, match="gaussian"):
        surrogates.get_surrogate("no_such_surrogate")
    with pytest.raises(KeyError):
        runtime.spike(torch.zeros(3), surrogate="no_such_surrogate")


# --- Surrogate shapes: the docstring claims ---------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_surrogate_area_and_peak(name):
    """The documented area over [-L, L] (unit area for most) and peak at 0, at the defaults."""
    h = surrogates.SURROGATES[name]
    half_width = 60.0
    grid = torch.linspace(-half_width, half_width, 1_200_001, dtype=torch.float64)
    area = torch.trapezoid(h(grid), grid).item()
    expected_area = {
        "double_gaussian": 1.0 - 0.15,
        # Heavy tails: the closed-form integral over [-L, L].
        "fast_sigmoid": 2.0 / 10.0 * (1.0 - 1.0 / (1.0 + 10.0 * half_width)),
        "arctan": 2.0 / math.pi * math.atan(math.pi * 2.0 * half_width / 2.0),
    }.get(name, 1.0)
    # 1e-4 covers the trapezoid error at the rectangle's jumps; smooth ones are far closer.
    assert area == pytest.approx(expected_area, abs=1e-4)
    expected_peak = {
        "gaussian": 1.0 / (0.5 * math.sqrt(2.0 * math.pi)),
        "double_gaussian": 0.8782,
        "fast_sigmoid": 1.0,
        "arctan": 1.0,
        "sigmoid": 1.0,
        "triangle": 1.0,
        "exponential": 1.0,
        "rectangular": 1.0,
    }[name]
    peak = h(torch.zeros(1, dtype=torch.float64)).item()
    assert peak == pytest.approx(expected_peak, abs=1e-4)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_surrogate_keeps_dtype_and_does_not_touch_input(name, dtype):
    x = random_inputs(0.0, dtype, n=64)
    before = x.clone()
    h = surrogates.SURROGATES[name](x)
    assert h.dtype == dtype and h.shape == x.shape
    assert_bitwise_equal(x, before)
    assert torch.isfinite(h).all()


def test_double_gaussian_has_negative_side_lobes():
    h = surrogates.double_gaussian(torch.tensor([0.0, 1.5, -1.5, 3.0], dtype=torch.float64))
    assert h[0] > 0.0
    assert (h[1:] < 0.0).all()
    assert h[1] == h[2]  # symmetric


def test_window_surrogates_are_zero_at_and_outside_the_edge():
    w = 0.8
    edge = torch.tensor([w / 2, -w / 2, w, -w, 5.0], dtype=torch.float64)
    assert (surrogates.rectangular(edge, w) == 0.0).all()  # open interval |x| < w/2
    assert surrogates.rectangular(torch.tensor([w / 2 - 1e-9], dtype=torch.float64), w).item() == pytest.approx(1.0 / w)
    assert (surrogates.triangle(edge[2:], w) == 0.0).all()


# --- Spike forward: exactly the step ------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("threshold", [0.0, 0.3, -1.0])
@pytest.mark.parametrize("inclusive", [False, True])
def test_spike_forward_is_the_step_bitwise(name, dtype, threshold, inclusive):
    params = REFERENCES[name][1]
    x = torch.cat([random_inputs(threshold, dtype), special_inputs(threshold, dtype)])
    expected = step_reference(x, threshold, inclusive)
    assert_bitwise_equal(spike_by_name(name, x, threshold, inclusive, False, params), expected)
    # With a gradient attached as well (the FGI term is then live in the graph).
    x_grad = x.clone().requires_grad_(True)
    assert_bitwise_equal(spike_by_name(name, x_grad, threshold, inclusive, False, params), expected)
    assert_bitwise_equal(runtime.SPIKE_FUNCTIONS[name](x_grad, threshold=threshold, inclusive=inclusive), expected)


@pytest.mark.parametrize("name", NAMES)
def test_spike_at_threshold_and_non_finite_values(name):
    """Concrete values, not derived from torch's comparison: H(0) = 0, or 1 if inclusive."""
    x = torch.tensor([0.5, 0.5 + 2**-24, 0.5 - 2**-25, INF, -INF, NAN, -0.0], requires_grad=True)
    assert runtime.spike(x, 0.5, name).tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    assert runtime.spike(x, 0.5, name, inclusive=True).tolist() == [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    y = runtime.spike(x, 0.0, name)
    assert y.tolist() == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert not torch.signbit(y).any()  # no -0.0 leaks out of the injected term


@pytest.mark.parametrize("name", NAMES)
def test_finite_only_is_exact_for_finite_and_nan_otherwise(name):
    x = torch.cat([random_inputs(0.3, torch.float32, n=200), special_inputs(0.3, torch.float32)]).requires_grad_(True)
    finite = torch.isfinite(x)
    y = runtime.spike(x, 0.3, name, finite_only=True)
    assert_bitwise_equal(y[finite], step_reference(x, 0.3, False)[finite])
    assert torch.isnan(y[~finite]).all()  # the documented caveat of the fast path


# --- Spike backward: the surrogate --------------------------------------------


def _tolerances(dtype: torch.dtype) -> Tuple[float, float]:
    return {torch.float32: (1e-5, 1e-6), torch.float64: (1e-12, 1e-14)}[dtype]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("threshold", [0.0, 0.3])
@pytest.mark.parametrize("use_defaults", [True, False])
def test_spike_gradient_is_the_closed_form(name, dtype, threshold, use_defaults):
    params = {} if use_defaults else REFERENCES[name][1]
    x = random_inputs(threshold, dtype, n=1000, seed=1).requires_grad_(True)
    y = runtime.spike(x, threshold, name, **params)
    upstream = torch.rand(x.shape, generator=torch.Generator().manual_seed(2), dtype=dtype) + 0.5
    (grad,) = torch.autograd.grad(y, x, upstream)
    # The surrogate is evaluated at u = x - threshold as the input dtype rounds it.
    u = (x.detach() - threshold).double()
    expected = reference_grad(name, u, params) * upstream.double()
    rtol, atol = _tolerances(dtype)
    assert grad.dtype == dtype
    torch.testing.assert_close(grad.double(), expected, rtol=rtol, atol=atol * expected.abs().max().item())
    # Sanity: the gradient is not trivially zero (the inputs hit the support).
    assert (grad != 0).sum() > 100


class SurrogateSpike(torch.autograd.Function):
    """What FGI replaces: the step forward, ``grad_output * h(x - threshold)`` backward."""

    @staticmethod
    def forward(ctx, x, threshold, h, inclusive):
        ctx.save_for_backward(x)
        ctx.threshold, ctx.h = threshold, h
        return torch.where((x >= threshold) if inclusive else (x > threshold), 1.0, 0.0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.h(x - ctx.threshold), None, None, None


def autograd_function_grad(name: str, x: Tensor, threshold: float, inclusive: bool, params: Dict[str, float]) -> Tensor:
    h = surrogates.SURROGATES[name]
    leaf = x.detach().clone().requires_grad_(True)
    y = SurrogateSpike.apply(leaf, threshold, lambda u: h(u, **params), inclusive)
    (grad,) = torch.autograd.grad(y.sum(), leaf)
    return grad


@pytest.mark.parametrize("name", NAMES)
def test_spike_gradient_at_special_values(name):
    """h(u) at finite inputs (subnormal, extremes...), 0 at +-inf, NaN at NaN: as the autograd.Function."""
    params = REFERENCES[name][1]
    x = special_inputs(0.3, torch.float32).requires_grad_(True)
    (grad,) = torch.autograd.grad(runtime.spike(x, 0.3, name, **params).sum(), x)
    finite = torch.isfinite(x.detach())
    expected = reference_grad(name, (x.detach() - 0.3).double(), params)
    torch.testing.assert_close(grad.double()[finite], expected[finite], rtol=1e-5, atol=1e-6)
    assert grad[-3:-1].tolist() == [0.0, 0.0]  # +-inf
    # A NaN input is not hidden: 0 * h(NaN), NaN except for the window's comparison.
    assert math.isnan(grad[-1].item()) == (name != "rectangular")
    torch.testing.assert_close(
        grad, autograd_function_grad(name, x, 0.3, False, params), rtol=0, atol=0, equal_nan=True
    )
    # At the threshold itself the gradient is the peak of h.
    peak = REFERENCES[name][0](0.0, **params)
    assert grad[0].item() == pytest.approx(peak, rel=1e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_spike_gradient_equals_the_autograd_function_it_replaces(name, dtype):
    params = REFERENCES[name][1]
    x = torch.cat([random_inputs(-0.5, dtype, n=500, seed=4), special_inputs(-0.5, dtype)]).requires_grad_(True)
    upstream = torch.rand(x.shape, generator=torch.Generator().manual_seed(5)).to(dtype)
    (grad,) = torch.autograd.grad(runtime.spike(x, -0.5, name, True, **params), x, upstream)
    h = surrogates.SURROGATES[name]
    leaf = x.detach().clone().requires_grad_(True)
    y = SurrogateSpike.apply(leaf, -0.5, lambda u: h(u, **params), True)
    (expected,) = torch.autograd.grad(y, leaf, upstream)
    torch.testing.assert_close(grad, expected, rtol=0, atol=0, equal_nan=True)


def test_spike_with_tensor_threshold_gives_threshold_the_negated_surrogate():
    x = random_inputs(0.2, torch.float64, n=300, seed=3).requires_grad_(True)
    threshold = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    y = runtime.spike(x, threshold, "arctan", alpha=3.0)
    assert_bitwise_equal(y, step_reference(x.detach(), 0.2, False))
    grad_x, grad_t = torch.autograd.grad(y.sum(), (x, threshold))
    h = reference_grad("arctan", x.detach() - 0.2, {"alpha": 3.0})
    torch.testing.assert_close(grad_x, h, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad_t, -h.sum(), rtol=1e-12, atol=1e-14)


def test_spike_accepts_a_custom_surrogate_callable():
    x = torch.linspace(-2.0, 2.0, 41, dtype=torch.float64, requires_grad=True)
    y = runtime.spike(x, 0.5, lambda u, k: k * torch.ones_like(u), k=0.25)
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert_bitwise_equal(y, step_reference(x.detach(), 0.5, False))
    assert (grad == 0.25).all()


@pytest.mark.parametrize("name", NAMES)
def test_named_and_generic_spike_agree_bitwise(name):
    params = REFERENCES[name][1]
    x = torch.cat([random_inputs(0.3, torch.float32, n=300), special_inputs(0.3, torch.float32)]).requires_grad_(True)
    generic = runtime.spike(x, 0.3, name, True, **params)
    named = runtime.SPIKE_FUNCTIONS[name](x, *params.values(), 0.3, True)
    assert_bitwise_equal(named, generic)
    (g_generic,) = torch.autograd.grad(generic.sum(), x)
    (g_named,) = torch.autograd.grad(named.sum(), x)
    assert_same_numbers(g_named, g_generic)


# --- TorchScript -----------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_surrogates_script_and_match_eager(name):
    h = surrogates.SURROGATES[name]
    scripted = torch.jit.script(h)
    params = list(REFERENCES[name][1].values())
    for seed in range(3):  # several calls: the profiling executor re-optimises after the first ones
        x = random_inputs(0.0, torch.float32, n=500, seed=seed)
        assert_bitwise_equal(scripted(x), h(x))
        assert_bitwise_equal(scripted(x, *params), h(x, *params))


@pytest.mark.parametrize("name", NAMES)
def test_spike_functions_script_and_match_eager(name):
    eager = runtime.SPIKE_FUNCTIONS[name]
    scripted = torch.jit.script(eager)
    params = list(REFERENCES[name][1].values())
    for seed, (inclusive, finite_only) in enumerate([(False, False), (True, False), (False, True), (False, False)]):
        base = random_inputs(0.3, torch.float32, n=500, seed=seed)
        if not finite_only:
            base = torch.cat([base, special_inputs(0.3, torch.float32)])
        results = []
        for fn in (eager, scripted):
            x = base.clone().requires_grad_(True)
            y = fn(x, *params, 0.3, inclusive, finite_only)
            (grad,) = torch.autograd.grad(y, x, torch.ones_like(y))
            results.append((y, grad))
        (y_eager, g_eager), (y_script, g_script) = results
        assert_bitwise_equal(y_script, y_eager)
        assert_bitwise_equal(y_script, step_reference(base, 0.3, inclusive))
        assert_same_numbers(g_script, g_eager)


def test_fgi_and_bypass_script():
    fgi = torch.jit.script(runtime.fgi)
    bypass = torch.jit.script(runtime.bypass)
    x = torch.tensor([1.0, -2.0, INF, NAN], requires_grad=True)
    value = torch.tensor([7.0, 8.0, 9.0, 10.0])
    grad = torch.tensor([0.5, 0.25, 3.0, 4.0])
    assert_bitwise_equal(fgi(x, value, grad, False), runtime.fgi(x, value, grad))
    assert_bitwise_equal(bypass(value, x, False), runtime.bypass(value, x))


# --- torch.compile -----------------------------------------------------------------


def _compile_backend() -> str:
    """inductor where a C++ compiler exists; otherwise aot_eager still checks fullgraph + autograd."""
    if not torch._dynamo.is_dynamo_supported():
        pytest.skip("torch.compile (dynamo) is not supported on this Python/platform")
    return "inductor" if any(shutil.which(cxx) for cxx in ("c++", "g++", "clang++")) else "aot_eager"


def test_torch_compile_fullgraph_matches_eager():
    backend = _compile_backend()
    torch._dynamo.reset()

    def model(x: Tensor) -> Tensor:
        # Two surrogates: the scripted-style function and the generic name lookup with **params.
        a = runtime.spike_double_gaussian(x, 0.4, 0.2, 4.0, 0.3)
        b = runtime.spike(x * 2.0, 0.1, "arctan", alpha=3.0)
        return a + 2.0 * b

    compiled = torch.compile(model, backend=backend, fullgraph=True)
    base = torch.cat([random_inputs(0.3, torch.float32, n=500, seed=5), special_inputs(0.3, torch.float32)])
    results = []
    for fn in (model, compiled):
        x = base.clone().requires_grad_(True)
        y = fn(x)
        (grad,) = torch.autograd.grad(y.sum(), x)
        results.append((y, grad))
    (y_eager, g_eager), (y_comp, g_comp) = results
    expected = step_reference(base, 0.3, False) + 2.0 * step_reference(base * 2.0, 0.1, False)
    assert_bitwise_equal(y_comp, expected)
    assert_bitwise_equal(y_eager, expected)
    # Fused kernels may round differently from eager; the gradient must agree to float rounding.
    torch.testing.assert_close(g_comp, g_eager, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert torch.isnan(g_comp[-1]) and torch.isfinite(g_comp[:-1]).all()  # NaN only at the NaN input
    assert (g_comp != 0).sum() > 100


# --- fgi and bypass ----------------------------------------------------------------


def test_fgi_value_and_gradient():
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(200, generator=gen, dtype=torch.float64, requires_grad=True)
    value = torch.randn(200, generator=gen, dtype=torch.float64, requires_grad=True)
    local = torch.randn(200, generator=gen, dtype=torch.float64, requires_grad=True)
    y = runtime.fgi(x, value, local)
    assert_bitwise_equal(y, value.detach())
    upstream = torch.randn(200, generator=gen, dtype=torch.float64)
    grad_x, grad_value, grad_local = torch.autograd.grad(y, (x, value, local), upstream, allow_unused=True)
    assert_bitwise_equal(grad_x, upstream * local.detach())
    assert grad_value is None and grad_local is None  # only x receives a gradient


def test_fgi_broadcasts_a_scalar_value():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = runtime.fgi(x, torch.tensor(5.0), x.detach() * 2.0)
    assert y.tolist() == [[5.0, 5.0], [5.0, 5.0]]
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert grad.tolist() == [[2.0, 4.0], [6.0, 8.0]]


def test_fgi_non_finite_x_keeps_value_and_blocks_gradient():
    x = torch.tensor([1.0, INF, -INF, NAN, 2.0], requires_grad=True)
    value = torch.tensor([0.0, 1.0, 0.0, 1.0, -3.5])
    local = torch.tensor([2.0, 2.0, -2.0, 2.0, NAN])
    y = runtime.fgi(x, value, local)
    assert_bitwise_equal(y, value)
    (grad,) = torch.autograd.grad(y.sum(), x)
    # Documented: dy/dx = grad at finite x, 0 * grad at non-finite x; a NaN grad stays NaN.
    assert grad[:4].tolist() == [2.0, 0.0, 0.0, 0.0]
    assert math.isnan(grad[4].item())
    # The paper's form, kept as the fast path, is NaN exactly where x is non-finite.
    fast = runtime.fgi(x, value, local, finite_only=True)
    assert torch.isnan(fast[1:4]).all()
    assert fast[0].item() == 0.0


def test_fgi_negative_zero_value_caveat():
    """Documented: -0.0 in value may become +0.0; the numbers still compare equal."""
    x = torch.tensor([1.0, 1.0], requires_grad=True)
    y = runtime.fgi(x, torch.tensor([-0.0, -0.0]), torch.tensor([1.0, -1.0]))
    assert (y == 0.0).all()


def test_bypass_value_and_gradient():
    gen = torch.Generator().manual_seed(8)
    z = torch.randn(300, generator=gen, dtype=torch.float64, requires_grad=True)
    # Round in the forward pass, straight-through tanh in the backward pass.
    y = runtime.bypass(torch.round(z), torch.tanh(z))
    assert_bitwise_equal(y, torch.round(z.detach()))
    (grad,) = torch.autograd.grad(y.sum(), z)
    expected = 1.0 / torch.cosh(z.detach()) ** 2
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-15)


def test_bypass_matches_the_paper_form_for_finite_input():
    gen = torch.Generator().manual_seed(9)
    z = torch.randn(100, generator=gen, requires_grad=True)
    value = (z > 0).float()
    paper = 3.0 * z - (3.0 * z).detach() + value.detach()
    ours = runtime.bypass(value, 3.0 * z)
    assert_bitwise_equal(ours, paper)
    (g_paper,) = torch.autograd.grad(paper.sum(), z)
    (g_ours,) = torch.autograd.grad(ours.sum(), z)
    assert (g_ours == 3.0).all()
    assert_bitwise_equal(g_ours, g_paper)


def test_bypass_non_finite_gradient_source():
    z = torch.tensor([0.5, INF, NAN, -INF], requires_grad=True)
    value = torch.tensor([1.0, 2.0, 3.0, 4.0])
    y = runtime.bypass(value, z * 2.0)
    assert_bitwise_equal(y, value)
    (grad,) = torch.autograd.grad(y.sum(), z)
    assert grad.tolist() == [2.0, 0.0, 0.0, 0.0]
    fast = runtime.bypass(value, z * 2.0, finite_only=True)
    assert fast[0].item() == 1.0 and torch.isnan(fast[1:]).all()
    assert_bitwise_equal(runtime.bypass(value, z * 2.0, finite_only=True)[:1], runtime.bypass(value, z * 2.0)[:1])


def test_bypass_keeps_negative_zero_and_nan_payload_of_value():
    z = torch.tensor([0.25, -0.25, 1.0], requires_grad=True)
    value = torch.tensor([-0.0, 0.0, NAN])
    y = runtime.bypass(value, z)
    assert_bitwise_equal(y, value)
    assert torch.signbit(y[0]) and not torch.signbit(y[1])


def test_second_derivative_of_injected_gradient_is_zero():
    x = torch.linspace(-1.0, 1.0, 11, dtype=torch.float64, requires_grad=True)
    y = runtime.spike(x, 0.0, "gaussian")
    (grad,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    assert not grad.requires_grad or torch.autograd.grad(grad.sum(), x, allow_unused=True)[0] is None


# --- Property: exact for every float32 bit pattern class --------------------------


def _float32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(
        st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True), min_size=1, max_size=40
    ),
    threshold=st.floats(width=32, allow_nan=False, allow_infinity=False, min_value=-4.0, max_value=4.0),
    inclusive=st.booleans(),
)
def test_property_spike_value_is_the_step_for_any_float32(values: List[float], threshold: float, inclusive: bool):
    threshold = _float32(threshold)
    x = torch.tensor(values + [threshold], dtype=torch.float32, requires_grad=True)
    expected = torch.tensor(
        [1.0 if (v >= threshold if inclusive else v > threshold) else 0.0 for v in values + [threshold]],
        dtype=torch.float32,
    )
    for name in NAMES:
        y = runtime.spike(x, threshold, name, inclusive)
        assert_bitwise_equal(y, expected)
        (grad,) = torch.autograd.grad(y.sum(), x)
        reference = autograd_function_grad(name, x, threshold, inclusive, {})
        torch.testing.assert_close(grad, reference, rtol=0, atol=0, equal_nan=True)
