"""`fgi verify PATH...`: check numerically that each planned rewrite is exact. Needs torch.

For every Function the rewriter would rewrite, the module is imported (its top-level code
runs), the FGI form the tool generates (`emit.generated_function`) is executed in the module's
own namespace, and `Fn.apply` is compared with it: forward values bit for bit (dtype included)
and the input gradient to float rounding, under a random upstream gradient, in float32 and
float64, on a grid, random inputs, ±inf/NaN, and exactly at each threshold and one ulp either
side (thresholds read from the plan and located by bisection on the original forward).

Forward parameters after the first are bound, per Function, to: forward's default; else a
literal found at a rewritten call site (or a module-level number named there); else the
fallback 1.0 (a Python float, or a 0-dim tensor of the input's dtype when forward rejects a
float). Every distinct fully-literal call-site binding is verified too (at most
`MAX_CONFIGURATIONS`). The values used are printed.
"""

from __future__ import annotations

import ast
import importlib
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import click
import libcst as cst
import torch

from .analysis.expressions import code
from .analysis.module_index import build_module_index
from .analysis.project_index import module_name_for
from .emit import generated_function
from .equivalence import DEFAULT_THRESHOLDS, Mismatch, compare, load_module, probe_inputs
from .explain import FileReport, FunctionReport, inventory_paths, threshold_expression
from .plan import Plan

EXIT_OK, EXIT_MISMATCH, EXIT_ERROR = 0, 1, 123
FALLBACK_VALUE = 1.0
MAX_CONFIGURATIONS = 4
DTYPES = (torch.float32, torch.float64)


# ----------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Binding:
    """The value one extra forward parameter gets, and where it came from."""

    value: object  # a Python number (or bool/None/str literal)
    source: str  # "default", "call at 24:28", "module constant ALPHA (call at 3:5)", "fallback"
    as_tensor: bool = False  # materialise as a 0-dim tensor of the input's dtype
    omitted: bool = False  # leave the argument out of the call (forward's default applies)
    learnable: bool = False  # a fresh 0-dim tensor that requires grad (backward gives it a gradient)

    def materialise(self, dtype: torch.dtype) -> object:
        if self.learnable:
            return torch.tensor(float(self.value), dtype=dtype, requires_grad=True)  # type: ignore[arg-type]
        if self.as_tensor:
            return torch.tensor(self.value, dtype=dtype)
        return self.value

    def spelled(self) -> str:
        if self.learnable:
            return f"tensor({self.value!r}, requires_grad)"
        return f"tensor({self.value!r})" if self.as_tensor else repr(self.value)

    def describe(self) -> str:
        return f"{self.spelled()} ({self.source})"


@dataclass(frozen=True)
class Configuration:
    bindings: tuple[tuple[str, Binding], ...] = ()

    def arguments(self, dtype: torch.dtype) -> tuple:
        args = []
        for _, binding in self.bindings:
            if binding.omitted:
                break  # the rest use their defaults too (they come after, by construction)
            args.append(binding.materialise(dtype))
        return tuple(args)

    def key(self) -> tuple:
        return tuple((n, b.value, b.as_tensor, b.learnable) for n, b in self.bindings)

    def describe(self) -> str:
        return ", ".join(f"{n}={b.describe()}" for n, b in self.bindings) or "-"

    def short(self) -> str:
        return ", ".join(f"{n}={b.spelled()}" for n, b in self.bindings) or "-"

    def with_learnable(self, names: set[str]) -> "Configuration":
        if not names:
            return self
        return Configuration(tuple(
            (n, Binding(b.value, b.source, as_tensor=b.as_tensor or n in names, learnable=n in names))
            for n, b in self.bindings))


def _literal(text: Optional[str], namespace: dict) -> Optional[tuple[object, str]]:
    """A call-site argument's value when it is a literal or a module-level number."""
    if text is None:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        name = text.strip()
        if name.isidentifier() and isinstance(namespace.get(name), (int, float)) and \
                not isinstance(namespace.get(name), bool):
            return namespace[name], f"module constant {name}"
        return None
    if isinstance(value, (int, float, bool)) or value is None:
        return value, ""
    return None


def configurations(entry: FunctionReport, namespace: dict) -> list[Configuration]:
    """The parameter bindings to verify a Function under (the first is the default one)."""
    plan = entry.plan
    assert plan is not None
    extra = plan.parameters[1:]
    seen: dict[str, tuple[object, str]] = {}
    per_call: list[list[Optional[Binding]]] = []
    for site in entry.calls:
        if site.form.startswith("reference") or not site.arguments:
            continue
        where = f"call at {site.position.line}:{site.position.column}"
        bindings: list[Optional[Binding]] = []
        for position, parameter in enumerate(extra, start=1):
            if position >= len(site.arguments):
                default = _default(parameter, namespace)
                bindings.append(None if default is None else Binding(default, "default", omitted=True))
                continue
            found = _literal(site.arguments[position], namespace)
            if found is None:
                bindings.append(None)
                continue
            value, how = found
            source = f"{how}, {where}" if how else where
            seen.setdefault(parameter.name, (value, source))
            bindings.append(Binding(value, source))
        per_call.append(bindings)

    default_bindings = []
    omit = True
    for parameter in reversed(extra):  # trailing defaults can be left out of the call
        default = _default(parameter, namespace)
        if default is not None:
            default_bindings.append((parameter.name, Binding(default, "default", omitted=omit)))
            continue
        omit = False
        if parameter.name in seen:
            value, source = seen[parameter.name]
            default_bindings.append((parameter.name, Binding(value, source)))
        else:
            default_bindings.append((parameter.name, Binding(FALLBACK_VALUE, "fallback")))
    result = [Configuration(tuple(reversed(default_bindings)))]
    keys = {result[0].key()}
    for bindings in per_call:
        if any(b is None for b in bindings):
            continue
        named = []
        omitted = True
        for parameter, binding in reversed(list(zip(extra, bindings))):
            assert binding is not None
            if not (binding.omitted and omitted):
                omitted = False
                binding = Binding(binding.value, binding.source)
            named.append((parameter.name, binding))
        configuration = Configuration(tuple(reversed(named)))
        if configuration.key() not in keys and len(result) < MAX_CONFIGURATIONS:
            keys.add(configuration.key())
            result.append(configuration)
    return result


def _default(parameter, namespace: dict) -> Optional[object]:
    if parameter.default is None:
        return None
    text = code(parameter.default)
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = namespace.get(text)
        return value if value is not None else text


# ----------------------------------------------------------------------------- running both
def build_generated(plan: Plan, namespace: dict) -> Callable:
    """The generated FGI function, executed in the user's module namespace."""
    name = f"_fgi_verify_{plan.function}"
    function = generated_function(plan, name, {})
    source = cst.Module(body=[function]).code
    exec(compile(source, f"<fgi verify: generated FGI form of {plan.function}>", "exec"), namespace)
    return namespace[name]


def _call(function: Callable, configuration: Configuration, dtype: torch.dtype, parameters: bool = True) -> Callable:
    """`x -> function(x, *parameters)`. Parameters that get gradients are fresh leaf tensors on
    every call and, with `parameters`, returned after the output so their gradients are compared."""

    def bound(x):
        args = configuration.arguments(dtype)
        out = function(x, *args)
        learnable = [a for a, (_, b) in zip(args, configuration.bindings) if b.learnable]
        return (out, *learnable) if learnable and parameters else out

    return bound


def plan_thresholds(plan: Plan, source: str, namespace: dict, configuration: Configuration,
                    dtype: torch.dtype) -> list[float]:
    """The threshold the plan's step compares against, evaluated (empty when it cannot be)."""
    try:
        node = threshold_expression(plan, build_module_index(cst.parse_module(source)))
    except Exception:
        return []
    if node is None:
        return []
    scope = dict(namespace)
    for name, binding in configuration.bindings:
        scope[name] = binding.materialise(dtype)
    try:
        value = eval(compile(code(node), "<threshold>", "eval"), scope)  # noqa: S307 - user asked to run code
        value = float(value.item() if isinstance(value, torch.Tensor) else value)
    except Exception:
        return []
    return [value] if math.isfinite(value) else []


def transitions(function: Callable, dtype: torch.dtype, hints: Sequence[float] = (), limit: int = 6) -> list[float]:
    """Points where the forward value changes, located to adjacent floats by bisection."""

    def value(t: float):
        with torch.no_grad():
            return function(torch.tensor([t], dtype=dtype)).reshape(-1)[0].item()

    try:
        grid = torch.cat([torch.linspace(-8, 8, 1601, dtype=dtype), torch.tensor(list(hints), dtype=dtype)])
        grid = torch.unique(grid)
        with torch.no_grad():
            values = function(grid.clone())
        if not isinstance(values, torch.Tensor) or values.shape != grid.shape:
            return []
        changes = (values[1:] != values[:-1]).nonzero().flatten().tolist()
    except Exception:
        return []
    found: list[float] = []
    for i in changes[:limit]:
        a, b = grid[i].item(), grid[i + 1].item()
        try:
            va = value(a)
            for _ in range(200):
                mid = ((torch.tensor(a, dtype=dtype) + torch.tensor(b, dtype=dtype)) / 2).item()
                if mid in (a, b):
                    break
                if value(mid) == va:
                    a = mid
                else:
                    b = mid
        except Exception:
            continue
        found.append(b)
    return found


def measure(original: Callable, rewritten: Callable, inputs, seed: int = 0) -> tuple[float, float]:
    """Largest forward and input-gradient differences (finite inputs for gradients); inf on a crash."""
    forward_error = gradient_error = 0.0
    for _, x in inputs:
        results = []
        for function in (original, rewritten):
            torch.manual_seed(seed)
            leaf = x.detach().clone().requires_grad_(True)
            try:
                returned = function(leaf)
                out, parameters = (returned[0], returned[1:]) if isinstance(returned, tuple) else (returned, ())
                if not isinstance(out, torch.Tensor):
                    raise TypeError("not a tensor")
                torch.manual_seed(seed + 1)
                upstream = torch.randn(out.shape, dtype=out.dtype) if out.is_floating_point() else None
                if upstream is not None and out.requires_grad:
                    (out * upstream).sum().backward()
                results.append((out.detach(), leaf.grad, [p.grad for p in parameters]))
            except Exception:
                results.append(None)
        if results[0] is None or results[1] is None:
            if (results[0] is None) != (results[1] is None):
                forward_error = gradient_error = math.inf
            continue
        (a, grad_a, params_a), (b, grad_b, params_b) = results
        forward_error = max(forward_error, _difference(a, b))
        if bool(torch.isfinite(x).all()):  # parameter gradients sum over all elements
            for pa, pb in zip(params_a, params_b):
                if (pa is None) != (pb is None):
                    gradient_error = math.inf
                elif pa is not None and pb is not None:
                    gradient_error = max(gradient_error, _difference(pa, pb))
        if (grad_a is None) != (grad_b is None):
            gradient_error = math.inf
        elif grad_a is not None and grad_b is not None:
            finite = torch.isfinite(x)
            if finite.shape == grad_a.shape == grad_b.shape:
                gradient_error = max(gradient_error, _difference(grad_a[finite], grad_b[finite]))
            else:
                gradient_error = math.inf
    return forward_error, gradient_error


def _difference(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return math.inf
    if a.numel() == 0:
        return 0.0
    a64, b64 = a.detach().to(torch.float64), b.detach().to(torch.float64)
    same = (a64 == b64) | (torch.isnan(a64) & torch.isnan(b64))
    difference = torch.where(same, torch.zeros_like(a64), (a64 - b64).abs().nan_to_num(math.inf, math.inf))
    return float(difference.max().item())


# ----------------------------------------------------------------------------- results
@dataclass
class Check:
    configuration: Configuration
    forward_error: float = 0.0
    gradient_error: float = 0.0
    mismatches: list[Mismatch] = field(default_factory=list)
    error: Optional[str] = None
    thresholds: tuple[float, ...] = ()
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return "error"
        return "mismatch" if self.mismatches else "ok"


@dataclass
class Outcome:
    function: str
    path: str
    line: int
    status: str  # "ok", "mismatch", "error", "refused", "skipped"
    code: Optional[str] = None
    message: str = ""
    checks: list[Check] = field(default_factory=list)

    def as_json(self) -> dict:
        data: dict = {"function": self.function, "path": self.path, "line": self.line, "status": self.status}
        if self.code is not None:
            data["code"] = self.code
        if self.message:
            data["message"] = self.message
        data["checks"] = [
            {
                "parameters": {n: {"value": b.value, "tensor": b.as_tensor, "requires_grad": b.learnable,
                                   "source": b.source}
                               for n, b in c.configuration.bindings},
                "max_forward_error": _json_number(c.forward_error),
                "max_gradient_error": _json_number(c.gradient_error),
                "verdict": c.verdict,
                "mismatches": [str(m) for m in c.mismatches],
                "error": c.error,
                "thresholds": list(c.thresholds),
                "notes": list(c.notes),
            }
            for c in self.checks
        ]
        return data


def _json_number(value: float):
    return value if math.isfinite(value) else str(value)


def _probe_call(original: Callable, args: tuple, dtype: torch.dtype) -> Optional[str]:
    try:
        x = torch.linspace(-1, 1, 5, dtype=dtype).requires_grad_(True)
        out = original(x, *args)
        if isinstance(out, torch.Tensor) and out.requires_grad:
            out.sum().backward()
    except Exception as error:  # noqa: BLE001 - user code
        return f"{type(error).__name__}: {error}"
    return None


def verify_function(entry: FunctionReport, report: FileReport, namespace: dict, seed: int = 0) -> Outcome:
    plan = entry.plan
    assert plan is not None
    outcome = Outcome(entry.name, entry.position.path, entry.position.line, "ok")
    try:
        function_class = namespace[entry.name]
        original_apply = function_class.apply
        generated = build_generated(plan, namespace)
    except Exception as error:  # noqa: BLE001
        outcome.status = "error"
        outcome.message = f"cannot set up: {type(error).__name__}: {error}"
        return outcome
    learnable = {name for name, _ in plan.surrogate.extra_gradients}
    for configuration in configurations(entry, namespace):
        # Inputs that backward gives a gradient are tensors: pass them as leaves that require
        # grad, and compare their gradients too.
        configuration = _explicit(configuration).with_learnable(learnable) if learnable else configuration
        check = Check(configuration)
        # A fallback float that forward rejects (e.g. save_for_backward) becomes a 0-dim tensor.
        if _probe_call(original_apply, configuration.arguments(torch.float32), torch.float32) is not None and \
                any(b.source == "fallback" for _, b in configuration.bindings):
            configuration = Configuration(tuple(
                (n, Binding(b.value, b.source, True, b.omitted, b.learnable) if b.source == "fallback" else b)
                for n, b in configuration.bindings))
            check.configuration = configuration
        problems = [_probe_call(original_apply, configuration.arguments(d), d) for d in DTYPES]
        problem = problems[0] if all(p is not None for p in problems) else None
        if problem is not None:
            check.error = f"Fn.apply fails with parameters {configuration.short()}: {problem}"
            outcome.checks.append(check)
            continue
        thresholds_used: list[float] = []
        for dtype in DTYPES:
            args = configuration.arguments(dtype)
            original = _call(original_apply, configuration, dtype)
            rewritten = _call(generated, configuration, dtype)
            raised = _probe_call(original_apply, args, dtype)
            if raised is not None:
                check.notes.append(f"Fn.apply raises for {str(dtype).replace('torch.', '')} inputs ({raised}); "
                                   "the FGI form must raise the same exception type there")
            thresholds = list(DEFAULT_THRESHOLDS)
            thresholds += plan_thresholds(plan, report.source, namespace, configuration, dtype)
            thresholds += transitions(_call(original_apply, configuration, dtype, parameters=False), dtype,
                                      hints=thresholds)
            thresholds = sorted(set(thresholds))
            thresholds_used.extend(t for t in thresholds if t not in thresholds_used)
            inputs = probe_inputs(dtype, thresholds)
            inputs += _threshold_batch(thresholds, dtype)
            try:
                check.mismatches += compare(original, rewritten, inputs, seed=seed)
                forward_error, gradient_error = measure(original, rewritten, inputs, seed=seed)
            except Exception as error:  # noqa: BLE001
                check.error = f"{type(error).__name__}: {error}"
                break
            check.forward_error = max(check.forward_error, forward_error)
            check.gradient_error = max(check.gradient_error, gradient_error)
        check.thresholds = tuple(sorted(thresholds_used))
        outcome.checks.append(check)
    verdicts = {c.verdict for c in outcome.checks}
    outcome.status = "mismatch" if "mismatch" in verdicts else "error" if "error" in verdicts else "ok"
    return outcome


def _explicit(configuration: Configuration) -> Configuration:
    return Configuration(tuple((n, Binding(b.value, b.source, b.as_tensor, omitted=False, learnable=b.learnable))
                               for n, b in configuration.bindings))


def _threshold_batch(thresholds: Sequence[float], dtype: torch.dtype) -> list[tuple[str, torch.Tensor]]:
    """Every threshold and its two neighbouring floats in one 1-D batch (probe_inputs may cut some)."""
    at = torch.tensor(list(thresholds), dtype=dtype)
    values = torch.cat([at, torch.nextafter(at, torch.full_like(at, math.inf)),
                        torch.nextafter(at, torch.full_like(at, -math.inf))])
    return [("all-thresholds", values)]


def verify_report(report: FileReport, seed: int = 0) -> list[Outcome]:
    outcomes: list[Outcome] = []
    if report.error is not None:
        return [Outcome("-", report.path, report.error.position.line, "error", report.error.code, report.error.message)]
    todo = [f for f in report.functions if f.status == "rewritable"]
    namespace: Optional[dict] = None
    problem = ""
    if todo:
        namespace, problem = _import(Path(report.path))
    for entry in report.functions:
        if entry.status == "refused":
            assert entry.refusal is not None
            outcomes.append(Outcome(entry.name, entry.position.path, entry.position.line, "refused",
                                    entry.refusal.code, entry.refusal.message))
        elif entry.status == "skipped":
            outcomes.append(Outcome(entry.name, entry.position.path, entry.position.line, "skipped",
                                    message="marked `# fgi: skip`"))
        elif namespace is None:
            outcomes.append(Outcome(entry.name, entry.position.path, entry.position.line, "error",
                                    message=f"cannot import {report.path}: {problem}"))
        else:
            outcomes.append(verify_function(entry, report, namespace, seed))
    return outcomes


def _import(path: Path) -> tuple[Optional[dict], str]:
    """Import the user's file (running its top-level code).

    A file inside a package (folders with __init__.py) is imported under its package name with
    the package's root on sys.path, so its relative imports work; any other file is loaded on
    its own with its folder on sys.path."""
    path = path.resolve()
    name, is_package = module_name_for(path)
    depth = name.count(".") + (1 if is_package else 0)
    folder = str(path.parents[depth]) if "." in name or is_package else str(path.parent)
    sys.path.insert(0, folder)
    try:
        if "." in name or is_package:
            _forget_other_package(name.partition(".")[0], Path(folder))
            module = importlib.import_module(name)
            if Path(getattr(module, "__file__", "") or "").resolve() != path:
                raise ImportError(f"`{name}` resolves to {getattr(module, '__file__', None)}, not {path}")
        else:
            module = load_module(path)
    except BaseException as error:  # noqa: BLE001 - SystemExit from user code is a failure too
        if isinstance(error, KeyboardInterrupt):
            raise
        return None, f"{type(error).__name__}: {error}"
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    return module.__dict__, ""


def _forget_other_package(top: str, root: Path) -> None:
    """Two trees may hold packages of the same name (e.g. before/after copies): drop a cached
    one that lives elsewhere so the import below finds the package under `root`."""
    cached = sys.modules.get(top)
    location = getattr(cached, "__file__", None) if cached is not None else None
    if cached is None or (location is not None and Path(location).resolve().is_relative_to(root.resolve())):
        return
    for key in [k for k in sys.modules if k == top or k.startswith(top + ".")]:
        del sys.modules[key]
    importlib.invalidate_caches()


def verify_paths(paths: Sequence[Path], seed: int = 0) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for report in inventory_paths(paths):
        outcomes.extend(verify_report(report, seed))
    return outcomes


def exit_code(outcomes: Sequence[Outcome]) -> int:
    statuses = {o.status for o in outcomes}
    if "mismatch" in statuses:
        return EXIT_MISMATCH
    if "error" in statuses:
        return EXIT_ERROR
    return EXIT_OK


# ----------------------------------------------------------------------------- output
def _error_text(value: float) -> str:
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3g}"


def table_rows(outcomes: Sequence[Outcome]) -> list[tuple[str, ...]]:
    rows = []
    for outcome in outcomes:
        where = f"{outcome.path}:{outcome.line}"
        if outcome.status == "refused":
            rows.append((outcome.function, where, "", "", "", f"refused {outcome.code}"))
        elif outcome.status == "skipped":
            rows.append((outcome.function, where, "", "", "", "skipped"))
        elif not outcome.checks:
            rows.append((outcome.function, where, "", "", "", outcome.status))
        else:
            for check in outcome.checks:
                failed = check.verdict == "error"
                rows.append((outcome.function, where, check.configuration.short(),
                             "-" if failed else _error_text(check.forward_error),
                             "-" if failed else _error_text(check.gradient_error),
                             {"ok": "ok", "mismatch": "MISMATCH", "error": "error"}[check.verdict]))
    return rows


HEADER = ("Function", "file:line", "parameters", "max forward error", "max gradient error", "verdict")


def text_lines(outcomes: Sequence[Outcome], color: bool) -> list[str]:
    rows = table_rows(outcomes)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(HEADER)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    lines = [line(HEADER), line(["-" * w for w in widths])]
    for row in rows:
        text = line(row)
        if color:
            verdict = row[-1]
            styled = click.style(verdict, fg="green" if verdict == "ok" else "red" if verdict in ("MISMATCH", "error")
                                 else "yellow")
            text = text[: len(text) - len(verdict)] + styled
        lines.append(text)
    details = []
    for outcome in outcomes:
        if outcome.status in ("refused", "skipped"):
            continue
        if outcome.message:
            details.append(f"{outcome.path}:{outcome.line}: {outcome.function}: {outcome.message}")
        for check in outcome.checks:
            label = f"{outcome.path}:{outcome.line}: {outcome.function}"
            uses = [f"{n}={b.describe()}" for n, b in check.configuration.bindings]
            if uses:
                details.append(f"{label}: parameters {', '.join(uses)}")
            if check.error is not None:
                details.append(f"{label}: error: {check.error}")
            for note in check.notes:
                details.append(f"{label}: note: {note}")
            for mismatch in check.mismatches[:8]:
                details.append(f"{label} ({check.configuration.short()}): {mismatch}")
            if len(check.mismatches) > 8:
                details.append(f"{label}: ... {len(check.mismatches) - 8} more mismatches")
    if details:
        lines.append("")
        lines.extend(details)
    verified = [o for o in outcomes if o.status in ("ok", "mismatch", "error")]
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("ok", "mismatch", "error", "refused", "skipped")}
    lines.append("")
    lines.append(f"{len(verified)} Function{'s' if len(verified) != 1 else ''} verified: {counts['ok']} exact, "
                 f"{counts['mismatch']} mismatched, {counts['error']} could not be checked; "
                 f"{counts['refused']} refused, {counts['skipped']} skipped.")
    return lines


def json_document(outcomes: Sequence[Outcome]) -> dict:
    return {
        "functions": [o.as_json() for o in outcomes],
        "summary": {s: sum(1 for o in outcomes if o.status == s)
                    for s in ("ok", "mismatch", "error", "refused", "skipped")},
        "exit_code": exit_code(outcomes),
        "dtypes": [str(d).replace("torch.", "") for d in DTYPES],
    }


@click.command("verify", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of the table.")
@click.option("--color/--no-color", default=None,
              help="Colour the verdicts (default: when stdout is a terminal and NO_COLOR is unset).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for random inputs and upstream gradients.")
def verify_command(paths: tuple[Path, ...], as_json: bool, color: Optional[bool], seed: int) -> None:
    """Check numerically that each rewrite the tool would make in PATHS is exact.

    WARNING: this IMPORTS the modules in PATHS, i.e. runs their top-level code (and the
    Functions' forward/backward). Run it only on code you trust.

    For every Function the rewriter would rewrite, Fn.apply is compared with the FGI form the
    tool generates, in float32 and float64, on a grid, random inputs, ±inf/NaN and exactly at
    each threshold and one ulp either side: forward values bit for bit (dtype included), the
    input gradient to float rounding. Extra forward parameters get forward's default, else a
    literal from a call site, else 1.0; the values used are printed. Refused Functions are
    listed and do not fail the run.

    Exit status: 0 all exact; 1 some mismatch; 123 something could not be checked
    (import error, file not parsed).
    """
    if color is None:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    outcomes = verify_paths(paths, seed=seed)
    if as_json:
        json.dump(json_document(outcomes), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for line in text_lines(outcomes, color):
            click.echo(line, color=color)
    sys.exit(exit_code(outcomes))
