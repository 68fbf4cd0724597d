"""Numerical equivalence of an original and a rewritten callable (needs torch).

Forward values are compared bit for bit (dtype, NaN positions and the sign of zero included);
gradients of every input and parameter to float rounding, under a random upstream gradient so
that linearity in grad_output is exercised, not just `grad_output == 1`.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterable, Optional, Sequence

import torch

_counter = itertools.count()

DEFAULT_THRESHOLDS = (0.0, 0.1, 0.5, 1.0, -0.5, -1.0)


def load_module(path: Path, name: Optional[str] = None) -> ModuleType:
    """Import a file as a fresh module (a real file, so TorchScript can read its source)."""
    name = name or f"_fgi_loaded_{next(_counter)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Mismatch:
    case: str
    what: str
    detail: str

    def __str__(self) -> str:
        return f"{self.case}: {self.what}: {self.detail}"


def probe_inputs(dtype: torch.dtype, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                 shape=(4, 6), seed: int = 0, non_finite: bool = True) -> list[tuple[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    cases = [
        ("random", torch.randn(shape, generator=generator, dtype=dtype) * 2),
        ("grid", torch.linspace(-3, 3, shape[0] * shape[1], dtype=dtype).reshape(shape)),
    ]
    # Exactly at the thresholds (and one ulp either side), where > and >= differ.
    at = torch.tensor(thresholds, dtype=dtype)
    above = torch.nextafter(at, torch.full_like(at, float("inf")))
    below = torch.nextafter(at, torch.full_like(at, float("-inf")))
    edge = torch.cat([at, above, below, torch.tensor([-0.0], dtype=dtype)])
    cases.append(("threshold", edge.repeat((shape[0] * shape[1]) // edge.numel() + 1)[: shape[0] * shape[1]].reshape(shape)))
    if non_finite:
        special = torch.tensor([float("inf"), float("-inf"), float("nan"), 0.0, 1.0, -1.0], dtype=dtype)
        cases.append(("non-finite", special.repeat((shape[0] * shape[1]) // 6 + 1)[: shape[0] * shape[1]].reshape(shape)))
    return cases


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.dtype in (torch.float32,):
        return tensor.contiguous().view(torch.int32)
    if tensor.dtype in (torch.float64,):
        return tensor.contiguous().view(torch.int64)
    if tensor.dtype in (torch.float16, torch.bfloat16):
        return tensor.contiguous().view(torch.int16)
    return tensor


def _flatten(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _flatten(v)]
    if isinstance(value, dict):
        return [t for k in sorted(value) for t in _flatten(value[k])]
    return []


def compare(
    original: Callable[..., object],
    rewritten: Callable[..., object],
    inputs: Iterable[tuple[str, torch.Tensor]],
    seed: int = 0,
) -> list[Mismatch]:
    """Run both on each input; return every difference found (empty list: equivalent)."""
    mismatches: list[Mismatch] = []
    for case, x in inputs:
        label = f"{case}/{str(x.dtype).replace('torch.', '')}"
        results = []
        for function in (original, rewritten):
            torch.manual_seed(seed)
            leaf = x.detach().clone().requires_grad_(True)
            try:
                out = _flatten(function(leaf))
            except Exception as error:  # a crash in one but not the other is a mismatch
                results.append(error)
                continue
            torch.manual_seed(seed + 1)
            upstream = [torch.randn(o.shape, dtype=o.dtype) if o.is_floating_point() else None for o in out]
            differentiable = [(o, u) for o, u in zip(out, upstream) if u is not None and o.requires_grad]
            grads = None
            if differentiable:
                total = sum((o * u).sum() for o, u in differentiable)
                total.backward()  # type: ignore[union-attr]
                grads = leaf.grad
            # Leaf tensors a callable returns (its parameters) have their gradients compared too.
            parameter_grads = [o.grad for o in out if o.is_leaf and o.requires_grad]
            results.append((out, grads, parameter_grads))
        first, second = results
        if isinstance(first, Exception) or isinstance(second, Exception):
            if type(first) is not type(second):
                mismatches.append(Mismatch(label, "exception", f"{first!r} vs {second!r}"))
            continue
        (out_a, grad_a, params_a), (out_b, grad_b, params_b) = first, second
        # Parameter gradients sum over every element: with ±inf/NaN inputs the original's sum
        # is NaN where the rewrite's masked terms are 0 (documented), so only finite cases count.
        compare_parameters = bool(torch.isfinite(x).all())
        for position, (a, b) in enumerate(zip(params_a, params_b) if compare_parameters else []):
            if (a is None) != (b is None) or (a is not None and not torch.allclose(a, b, rtol=1e-5, atol=1e-6)):
                detail = "None vs tensor" if (a is None) != (b is None) else f"max difference {(a - b).abs().max().item():.3g}"
                mismatches.append(Mismatch(label, f"parameter gradient {position}", detail))
        if len(out_a) != len(out_b):
            mismatches.append(Mismatch(label, "outputs", f"{len(out_a)} vs {len(out_b)} tensors"))
            continue
        finite = torch.isfinite(x)
        for position, (a, b) in enumerate(zip(out_a, out_b)):
            if a.dtype != b.dtype or a.shape != b.shape:
                mismatches.append(Mismatch(label, f"output {position}", f"{a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}"))
            elif not torch.equal(_bits(a.detach()), _bits(b.detach())):
                differing = (_bits(a.detach()) != _bits(b.detach())).sum().item()
                mismatches.append(Mismatch(label, f"output {position}", f"{differing} values differ in their bits"))
            elif a.requires_grad != b.requires_grad:
                mismatches.append(Mismatch(label, f"output {position}", "requires_grad differs"))
        if (grad_a is None) != (grad_b is None):
            mismatches.append(Mismatch(label, "input gradient", f"{'None' if grad_a is None else 'tensor'} vs "
                                                               f"{'None' if grad_b is None else 'tensor'}"))
        elif grad_a is not None and grad_b is not None:
            # At ±inf/NaN inputs the original returns h(x)·g and the rewrite 0: compare finite ones.
            mask = finite if finite.shape == grad_a.shape else torch.ones_like(grad_a, dtype=torch.bool)
            # The original may round intermediate products in its output dtype (float32 for
            # `.float()`), so the tolerance follows the least precise dtype involved.
            precisions = {grad_a.dtype, x.dtype, *(o.dtype for o in out_a if o.is_floating_point())}
            tolerance = 1e-10 if precisions == {torch.float64} else 1e-5
            if grad_a.dtype != grad_b.dtype or not torch.allclose(grad_a[mask], grad_b[mask], rtol=tolerance,
                                                                   atol=tolerance, equal_nan=True):
                worst = (grad_a[mask] - grad_b[mask]).abs().nan_to_num(float("inf")).max().item()
                mismatches.append(Mismatch(label, "input gradient", f"max difference {worst:.3g}"))
    return mismatches
