"""`fgi plot PATH::FunctionName -o FILE.png`: a Function's step and surrogate gradient. Needs torch
and matplotlib.

Two panels over an input range: the forward value and the gradient d out / d x (the surrogate
h). The original (autograd through `Fn.apply`) and the FGI form the tool generates are drawn
on top of each other with different line styles, so a disagreement shows as two curves.
"""

from __future__ import annotations

import ast
import inspect
import math
import textwrap
from pathlib import Path
from typing import Callable, Optional, Sequence

import click
import torch

from .explain import FunctionReport, inventory_path
from .verify import Binding, Configuration, _explicit, _import, _probe_call, build_generated, configurations

ORIGINAL_STYLE = dict(color="#1f77b4", linewidth=4.5, alpha=0.45, solid_capstyle="butt")
FGI_STYLE = dict(color="#d62728", linewidth=1.6, linestyle=(0, (5, 3)))


def parse_target(target: str) -> tuple[Path, str]:
    path, separator, name = target.rpartition("::")
    if not separator or not path or not name.isidentifier():
        raise click.BadParameter("expected PATH::FunctionName, e.g. model.py::SpikeFunction", param_hint="TARGET")
    return Path(path), name


def parse_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected LOW,HIGH (e.g. -3,3), got {text!r}", param_hint="--range") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise click.BadParameter(f"expected finite LOW < HIGH, got {text!r}", param_hint="--range")
    return low, high


def parse_params(items: Sequence[str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for item in items:
        name, separator, text = item.partition("=")
        name = name.strip()
        if not separator or not name.isidentifier():
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--param")
        try:
            values[name] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            raise click.BadParameter(f"{item!r}: VALUE must be a Python literal such as 2.0", param_hint="--param") from None
    return values


def _signature_parameters(function_class) -> list[tuple[str, object]]:
    """(name, default or inspect.Parameter.empty) of forward's inputs, for refused Functions."""
    parameters = list(inspect.signature(function_class.forward).parameters.values())
    if "setup_context" not in vars(function_class):
        parameters = parameters[1:]  # ctx
    return [(p.name, p.default) for p in parameters[1:]]


def bindings_for(entry: FunctionReport, namespace: dict, overrides: dict[str, object]) -> Configuration:
    if entry.plan is not None:
        configuration = configurations(entry, namespace)[0]
        names = [n for n, _ in configuration.bindings]
        bindings = dict(configuration.bindings)
    else:
        names, bindings = [], {}
        for name, default in _signature_parameters(namespace[entry.name]):
            names.append(name)
            bindings[name] = Binding(1.0, "fallback") if default is inspect.Parameter.empty \
                else Binding(default, "default")
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise click.BadParameter(f"{entry.name}.forward has no parameter {', '.join(unknown)} "
                                 f"(extra parameters: {', '.join(names) or 'none'})", param_hint="--param")
    for name, value in overrides.items():
        bindings[name] = Binding(value, "--param")
    return Configuration(tuple((n, Binding(b.value, b.source, b.as_tensor)) for n, b in
                               ((n, bindings[n]) for n in names)))


def curves(function: Callable, x: torch.Tensor, args: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward value and d value / d x (upstream gradient 1) through autograd."""
    leaf = x.detach().clone().requires_grad_(True)
    out = function(leaf, *args)
    if out.requires_grad:
        out.backward(torch.ones_like(out))
    grad = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
    return out.detach().to(torch.float64), grad.detach().to(torch.float64)


def draw(path: Path, x: torch.Tensor, original: tuple, fgi: Optional[tuple], title: str, subtitle: str,
         threshold: Optional[float] = None, dpi: int = 150) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 6.4), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    value_axes, grad_axes = figure.subplots(2, 1, sharex=True)
    xs = x.detach().to(torch.float64).numpy()
    panels = [(value_axes, 0, "value  (step)"), (grad_axes, 1, "gradient  (surrogate h)")]
    for axes, index, label in panels:
        axes.plot(xs, original[index].numpy(), label="original: autograd of Fn.apply", **ORIGINAL_STYLE)
        if fgi is not None:
            axes.plot(xs, fgi[index].numpy(), label="FGI: step + (x - x.detach()) * h(x.detach())", **FGI_STYLE)
        if threshold is not None and xs[0] <= threshold <= xs[-1]:
            axes.axvline(threshold, color="0.5", linewidth=0.8, linestyle=":", zorder=0)
        axes.set_ylabel(label)
        axes.grid(True, color="0.92", linewidth=0.8)
        axes.axhline(0, color="0.75", linewidth=0.8, zorder=0)
        axes.set_xlim(xs[0], xs[-1])
        low, high = _limits(original[index], None if fgi is None else fgi[index])
        axes.set_ylim(low, high)
    value_axes.legend(loc="upper left", fontsize=8, frameon=True)
    grad_axes.set_xlabel("x (spike input)")
    figure.suptitle(title, fontsize=12, fontweight="bold")
    value_axes.set_title(subtitle, fontsize=8.5, loc="left", color="0.25")
    figure.savefig(path, dpi=dpi)


def _limits(a: torch.Tensor, b: Optional[torch.Tensor]) -> tuple[float, float]:
    values = a if b is None else torch.cat([a, b])
    values = values[torch.isfinite(values)]
    if values.numel() == 0:
        return -1.0, 1.0
    low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    margin = 0.08 * (high - low) if high > low else 0.5
    return low - margin, high + margin


@click.command("plot", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("target", metavar="PATH::FunctionName")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="PNG file to write.")
@click.option("--range", "range_text", default="-3,3", show_default=True, metavar="LOW,HIGH",
              help="Input range (use --range=-3,3 or --range -3,3).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Value for an extra forward parameter, e.g. --param alpha=2.0 (repeatable).")
@click.option("--points", type=click.IntRange(3, 1_000_001), default=1201, show_default=True,
              help="Number of sample points.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
def plot_command(target: str, output: Path, range_text: str, params: tuple[str, ...], points: int, dtype: str) -> None:
    """Plot a Function's step and its surrogate gradient, original and FGI overlaid.

    WARNING: imports the module (runs its top-level code). Extra forward parameters default to
    forward's defaults, else a literal from a call site, else 1.0; override with --param.
    """
    path, name = parse_target(target)
    low, high = parse_range(range_text)
    overrides = parse_params(params)
    if not path.exists():
        raise click.ClickException(f"{path}: no such file")
    report = inventory_path(path)
    if report.error is not None:
        raise click.ClickException(report.error.render())
    entry = next((f for f in report.functions if f.name == name), None)
    if entry is None:
        found = ", ".join(f.name for f in report.functions) or "none"
        raise click.ClickException(f"{path}: no autograd Function named {name} (found: {found})")
    namespace, problem = _import(path)
    if namespace is None:
        raise click.ClickException(f"cannot import {path}: {problem}")
    configuration = bindings_for(entry, namespace, overrides)
    learnable = {n for n, _ in entry.plan.surrogate.extra_gradients} if entry.plan is not None else set()
    if learnable:  # inputs that get a gradient are tensors (generalised injection)
        configuration = _explicit(configuration).with_learnable(learnable)
    torch_dtype = getattr(torch, dtype)
    function_class = namespace[name]
    if _probe_call(function_class.apply, configuration.arguments(torch_dtype), torch_dtype) is not None and \
            any(b.source == "fallback" for _, b in configuration.bindings):
        configuration = Configuration(tuple((n, Binding(b.value, b.source, True, b.omitted, b.learnable)
                                             if b.source == "fallback" else b) for n, b in configuration.bindings))
    args = configuration.arguments(torch_dtype)
    x = torch.linspace(low, high, points, dtype=torch_dtype)
    try:
        original = curves(function_class.apply, x, args)
    except Exception as error:  # noqa: BLE001 - user code
        raise click.ClickException(f"{name}.apply({configuration.short()}) failed: {type(error).__name__}: {error}")
    fgi = None
    if entry.plan is not None:
        generated = build_generated(entry.plan, namespace)
        fgi = curves(generated, x, args)
    if entry.step is not None and entry.surrogate is not None:
        subtitle = f"step: {entry.step.code}\nh(x) = {entry.surrogate.formula}"
    else:
        assert entry.refusal is not None
        subtitle = f"refused {entry.refusal.code}: no FGI form (only the original is drawn)"
    subtitle = "\n".join(textwrap.fill(line, 95, subsequent_indent="    ") for line in subtitle.splitlines())
    if configuration.bindings:
        subtitle += "\nparameters: " + configuration.short()
    threshold = _threshold(entry, report.source, namespace, configuration, torch_dtype)
    draw(output, x, original, fgi, f"{name}  ({path.name}:{entry.position.line})", subtitle, threshold)
    message = f"wrote {output}"
    if fgi is not None:
        forward = float((original[0] - fgi[0]).abs().nan_to_num(math.inf).max())
        gradient = float((original[1] - fgi[1]).abs().nan_to_num(math.inf).max())
        message += f" (max |original - FGI|: value {forward:.3g}, gradient {gradient:.3g})"
    click.echo(message)


def _threshold(entry: FunctionReport, source: str, namespace: dict, configuration: Configuration,
               dtype) -> Optional[float]:
    if entry.plan is None:
        return None
    from .verify import plan_thresholds

    values = plan_thresholds(entry.plan, source, namespace, configuration, dtype)
    return values[0] if values else None
