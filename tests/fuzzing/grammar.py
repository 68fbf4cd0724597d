"""A grammar of surrogate-gradient autograd Functions, rendered to module source text.

`Spec` picks one alternative per dimension (step spelling, threshold, dtype handling, surrogate
shape, backward structure, call style, argument expression); `render(spec)` writes a module
with the Function and a `run(x)` that calls it. `Spec.mutation` turns the Function into a
near miss that the rewriter must refuse (`EXPECTED_CODES`).

Every rendered valid module runs under PyTorch and is in the rewriter's scope by design:
a refusal or a numerical difference is a finding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

COMPARISONS = (">", ">=", "gt", "ge", "torch.gt", "torch.ge", "flipped<", "flipped<=")
CASTS = (".float()", ".to(x)", ".type_as(x)", ".to(x.dtype)", ".double()")
STEP_FORMS = ("cast", "where", "masked_write", "masked_fill", "helper", "heaviside")
HEAVISIDE_VALUES = (0.0, 0.5, 1.0)
THRESHOLD_KINDS = ("literal", "global", "argument", "argument_default")
THRESHOLDS = (0.0, 0.5, -0.25, 1.0)
SURROGATES = ("gaussian", "fast_sigmoid", "arctan", "helper_gaussian", "triangle_masked", "triangle_local_masked",
              "boxcar_masked_fill", "sigmoid_inplace", "straight_through")
ALPHA_KINDS = ("literal", "global", "ctx_default", "ctx_passed", "tensor")
ALPHAS = (0.5, 2.0, 4.0)
UNPACKS = ("tuple", "comma", "index")
STYLES = ("classic", "setup_context")
CALL_STYLES = ("direct", "alias", "listcomp", "lambda", "conditional", "self_attribute", "class_attribute",
               "instance_apply", "nested", "loop", "augassign", "shadowing", "walrus", "twice")
ARGUMENTS = ("{v}", "{v} - 0.5", "torch.tanh({v})")
OPERANDS = ("x", "mem", "v")
REWRITE_FORMS = ("inline", "function")

# Near misses and the refusal codes each must get.
MUTATIONS = ("rand_like", "sum", "floor", "sign", "round", "affine", "alpha_gradient")
EXPECTED_CODES = {
    "rand_like": {"FGI102"},
    "sum": {"FGI103"},
    "floor": {"FGI101"},
    "sign": {"FGI101"},
    "round": {"FGI101"},
    "affine": {"FGI103"},
    "alpha_gradient": {"FGI105"},
}
# Backward returning a gradient for `alpha` is in scope (generalised injection) when alpha is a
# tensor; the grammar passes a Python number, so the call (or the Function) must be refused.
CALL_SITE_REFUSAL_ACCEPTED = frozenset({"alpha_gradient"})


@dataclass(frozen=True)
class Spec:
    comparison: str = ">"
    cast: str = ".float()"
    step_form: str = "cast"
    threshold_kind: str = "literal"
    threshold: float = 0.0
    surrogate: str = "gaussian"
    centred: bool = False  # the surrogate reads (x - threshold) instead of x
    alpha_kind: str = "literal"
    alpha: float = 2.0
    clone_first: bool = False
    use_local: bool = False
    h_first: bool = False  # `h * grad` instead of `grad * h`
    save_output: bool = False
    unpack: str = "tuple"
    style: str = "classic"
    extra_none: bool = False  # one trailing None more than forward has inputs (PyTorch allows it)
    alpha_grad: bool = False  # with a tensor alpha: backward returns a gradient for it (generalised injection)
    call_style: str = "direct"
    argument: str = "{v}"
    operand: str = "x"
    rewrite_form: str = "inline"
    finite_only: bool = False  # rewrite with --finite-only (then compared on finite inputs only)
    tidy: bool = True  # False: the module is not black-clean (the rewriter then does not format it)
    heaviside_value: float = 0.5
    torch_alias: bool = False  # `import torch as T`
    mutation: Optional[str] = None

    def normalised(self) -> "Spec":
        """Combinations that mean the same or need each other."""
        spec = self
        if spec.mutation in ("floor", "sign", "round"):
            spec = replace(spec, step_form="cast")
        if spec.mutation == "alpha_gradient" and spec.alpha_kind not in ("ctx_default", "ctx_passed"):
            spec = replace(spec, alpha_kind="ctx_default")
        if spec.step_form == "heaviside" and spec.threshold_is_argument:
            # `x - threshold` with a parameter of unknown dtype: FGI108 by design.
            spec = replace(spec, threshold_kind="global")
        if spec.alpha_kind == "tensor" and spec.threshold_kind == "argument_default":
            spec = replace(spec, threshold_kind="argument")  # no default may precede `alpha`
        if spec.alpha_kind != "tensor" and spec.mutation != "alpha_gradient":
            spec = replace(spec, alpha_grad=False)
        if spec.mutation == "alpha_gradient":
            spec = replace(spec, alpha_grad=True)
        if spec.surrogate == "triangle_masked":
            spec = replace(spec, clone_first=True)  # a masked write needs a copy of grad_output
        return spec

    @property
    def threshold_is_argument(self) -> bool:
        return self.threshold_kind in ("argument", "argument_default")

    @property
    def alpha_is_argument(self) -> bool:
        return self.alpha_kind in ("ctx_default", "ctx_passed", "tensor")

    @property
    def passed_alpha(self) -> float:
        return self.alpha * 2 if self.alpha_kind in ("ctx_passed", "tensor") else self.alpha

    def thresholds(self) -> list[float]:
        """Points in x where run(x) may switch (exactly or nearly), for the probe inputs."""
        c = self.threshold
        points = [c, c + 0.5, 2 * c, c / 0.5, c + 0.25]
        if abs(c) < 1:
            points.append(math.atanh(c))
        return sorted({round(p, 12) for p in points})


def _literal(value: float) -> str:
    return repr(float(value))


def _comparison(kind: str, o: str, c: str) -> str:
    """A boolean tensor expression, parenthesised where a cast method follows."""
    return {
        ">": f"({o} > {c})",
        ">=": f"({o} >= {c})",
        "gt": f"{o}.gt({c})",
        "ge": f"{o}.ge({c})",
        "torch.gt": f"torch.gt({o}, {c})",
        "torch.ge": f"torch.ge({o}, {c})",
        "flipped<": f"({c} < {o})",
        "flipped<=": f"({c} <= {o})",
    }[kind]


def _cast(kind: str, o: str) -> str:
    return kind.replace("(x", f"({o}")


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, indent: int, text: str = "") -> None:
        self.lines.append(("    " * indent + text) if text else "")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(spec: Spec) -> str:
    spec = spec.normalised()
    o = spec.operand
    out = _Lines()
    out.add(0, "import math")
    out.add(0)
    out.add(0, "import torch")
    out.add(0)
    if not spec.tidy:
        out.add(0, "_UNTIDY = [1,2 ,3]")
    if spec.threshold_kind == "global":
        out.add(0, f"THRESHOLD = {_literal(spec.threshold)}")
    if spec.alpha_kind == "global":
        out.add(0, f"ALPHA = {_literal(spec.alpha)}")
    out.add(0)

    # Threshold as forward (and the helper) sees it, and as backward sees it.
    forward_c = {"literal": _literal(spec.threshold), "global": "THRESHOLD"}.get(spec.threshold_kind, "threshold")
    backward_c = {"literal": _literal(spec.threshold), "global": "THRESHOLD"}.get(spec.threshold_kind,
                                                                                  "ctx.threshold")
    alpha = {"literal": _literal(spec.alpha), "global": "ALPHA"}.get(spec.alpha_kind, "ctx.alpha")

    if spec.surrogate == "helper_gaussian":
        out.add(0)
        out.add(0, "def gaussian(v, mu=0.0, sigma=0.5):")
        out.add(1, "return torch.exp(-((v - mu) ** 2) / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)")
        out.add(0)
    if spec.step_form == "helper":
        out.add(0)
        out.add(0, "def heaviside(v, t):")
        out.add(1, f"return {_comparison(spec.comparison, 'v', 't')}{_cast(spec.cast, 'v')}")
        out.add(0)

    params = [o]
    if spec.threshold_is_argument:
        params.append("threshold" if spec.threshold_kind == "argument" else f"threshold={_literal(spec.threshold)}")
    if spec.alpha_kind == "tensor":
        params.append("alpha")
    elif spec.alpha_is_argument:
        params.append(f"alpha={_literal(spec.alpha)}")
    names = [p.partition("=")[0] for p in params]

    out.add(0)
    out.add(0, "class Spike(torch.autograd.Function):")
    out.add(1, "@staticmethod")
    classic = spec.style == "classic"
    out.add(1, f"def forward({'ctx, ' if classic else ''}{', '.join(params)}):")
    # The forward value.
    step_lines: list[str] = []
    if spec.mutation in ("floor", "sign", "round"):
        step = {"floor": f"torch.floor({o} - {forward_c})", "sign": f"torch.sign({o} - {forward_c})",
                "round": f"torch.round({o})"}[spec.mutation]
    elif spec.step_form == "cast":
        step = f"{_comparison(spec.comparison, o, forward_c)}{_cast(spec.cast, o)}"
    elif spec.step_form == "where":
        step = f"torch.where({_comparison(spec.comparison, o, forward_c)}, 1.0, 0.0)"
    elif spec.step_form == "heaviside":
        shifted = o if forward_c == "0.0" else f"{o} - {forward_c}"
        step = f"torch.heaviside({shifted}, torch.tensor({_literal(spec.heaviside_value)}))"
    elif spec.step_form == "masked_fill":
        step = f"torch.zeros_like({o}).masked_fill({_comparison(spec.comparison, o, forward_c)}, 1.0)"
    elif spec.step_form == "masked_write":
        step_lines = [f"out = torch.zeros_like({o})", f"out[{_comparison(spec.comparison, o, forward_c)}] = 1.0"]
        step = "out"
    else:
        step = f"heaviside({o}, {forward_c})"
    if classic:
        if not spec.save_output:
            out.add(2, f"ctx.save_for_backward({o})")
        if spec.threshold_is_argument:
            out.add(2, "ctx.threshold = threshold")
        if spec.alpha_is_argument:
            out.add(2, "ctx.alpha = alpha")
        for line in step_lines:
            out.add(2, line)
        if spec.save_output:
            if step != "out":
                out.add(2, f"out = {step}")
            out.add(2, f"ctx.save_for_backward({o}, out)")
            out.add(2, "return out")
        else:
            out.add(2, f"return {step}")
    else:
        for line in step_lines:
            out.add(2, line)
        out.add(2, f"return {step}")
        out.add(0)
        out.add(1, "@staticmethod")
        out.add(1, "def setup_context(ctx, inputs, output):")
        if len(names) == 1:
            out.add(2, f"({o},) = inputs")
        else:
            out.add(2, f"{', '.join(names)} = inputs")
        out.add(2, f"ctx.save_for_backward({o}, output)" if spec.save_output else f"ctx.save_for_backward({o})")
        if spec.threshold_is_argument:
            out.add(2, "ctx.threshold = threshold")
        if spec.alpha_is_argument:
            out.add(2, "ctx.alpha = alpha")

    # backward
    out.add(0)
    out.add(1, "@staticmethod")
    out.add(1, "def backward(ctx, grad_output):")
    saved = [o, "out"] if spec.save_output else [o]
    if spec.unpack == "tuple":
        out.add(2, f"({', '.join(saved)},) = ctx.saved_tensors" if len(saved) == 1
                else f"{', '.join(saved)} = ctx.saved_tensors")
    elif spec.unpack == "comma":
        out.add(2, f"{', '.join(saved)}, = ctx.saved_tensors" if len(saved) == 1
                else f"({', '.join(saved)}) = ctx.saved_tensors")
    else:
        for i, name in enumerate(saved):
            out.add(2, f"{name} = ctx.saved_tensors[{i}]")
    g = "grad_output"
    if spec.clone_first:
        out.add(2, "grad_input = grad_output.clone()")
        g = "grad_input"
    u = f"({o} - {backward_c})" if spec.centred else o
    h: Optional[str]
    grad: str
    if spec.surrogate == "helper_gaussian":
        h = f"gaussian({u}, sigma={alpha})"
    elif spec.surrogate == "gaussian":
        h = f"torch.exp(-({u} ** 2) / (2 * {alpha} ** 2)) / (math.sqrt(2 * math.pi) * {alpha})"
    elif spec.surrogate == "fast_sigmoid":
        h = f"1.0 / ({alpha} * torch.abs({u}) + 1.0) ** 2"
    elif spec.surrogate == "arctan":
        h = f"{alpha} / 2 / (1 + (math.pi / 2 * {alpha} * {u}).pow_(2))"
    elif spec.surrogate == "sigmoid_inplace":
        out.add(2, f"sg = ({alpha} * {u}).sigmoid_()")
        out.add(2, "sg = sg * (1 - sg)")
        out.add(2, f"sg.mul_({alpha})")
        h = "sg"
    elif spec.surrogate == "triangle_masked":
        out.add(2, f"{g}[{alpha} * {u}.abs() > 1.0] = 0")
        h = f"{alpha} * (1.0 - {alpha} * {u}.abs())"
    elif spec.surrogate == "triangle_local_masked":
        out.add(2, f"tri = 1.0 - {alpha} * {u}.abs()")
        out.add(2, "tri[tri < 0] = 0.0")
        h = f"tri * {alpha}"
    elif spec.surrogate == "boxcar_masked_fill":
        h = None
        grad = f"{g}.masked_fill({u}.abs() > 1.0 / {alpha}, 0.0) * ({alpha} / 2)"
    else:  # straight-through
        h = None
        grad = g
    if h is not None:
        if spec.use_local and h != "sg":
            out.add(2, f"surrogate = {h}")
            h = "surrogate"
        simple = h.isidentifier()
        grad = f"{h if simple else '(' + h + ')'} * {g}" if spec.h_first else f"{g} * {h if simple else '(' + h + ')'}"
    if spec.save_output:
        grad = f"{grad} * (1.0 - 0.5 * out)"
    if spec.mutation == "rand_like":
        grad = f"{grad} * torch.rand_like({o})"
    elif spec.mutation == "sum":
        grad = f"({grad}).sum() * torch.ones_like({o})"
    elif spec.mutation == "affine":
        grad = f"{grad} + 1"
    results = [grad]
    if spec.threshold_is_argument:
        results.append("None")
    if spec.alpha_is_argument:
        results.append(f"(grad_output * {u}).sum()" if spec.alpha_grad else "None")
    if spec.extra_none:
        results.append("None")
    out.add(2, f"return {', '.join(results)}")
    out.add(0)

    # call sites
    extra: list[str] = []
    if spec.alpha_kind in ("ctx_passed", "tensor"):
        if spec.threshold_is_argument:
            extra.append(_literal(spec.threshold))
        extra.append("alpha" if spec.alpha_kind == "tensor" else _literal(spec.passed_alpha))
    elif spec.threshold_kind == "argument":
        extra.append(_literal(spec.threshold))
    tail = "".join(f", {e}" for e in extra)

    def argument(name: str) -> str:
        return spec.argument.format(v=name)

    def call(function: str, name: str = "x") -> str:
        return f"{function}({argument(name)}{tail})"

    if spec.call_style == "alias":
        out.add(0)
        out.add(0, "spike = Spike.apply")
        out.add(0)
    if spec.call_style in ("self_attribute", "class_attribute"):
        out.add(0)
        out.add(0, "class Layer(torch.nn.Module):")
        if spec.call_style == "class_attribute":
            out.add(1, "spike = Spike.apply")
            out.add(0)
        out.add(1, "def __init__(self):")
        out.add(2, "super().__init__()")
        if spec.call_style == "self_attribute":
            out.add(2, "self.spike = Spike.apply")
        out.add(0)
        out.add(1, f"def forward(self, x{', alpha' if spec.alpha_kind == 'tensor' else ''}):")
        out.add(2, f"return {call('self.spike')}")
        out.add(0)
    out.add(0)
    out.add(0, "def run(x):")
    if spec.alpha_kind == "tensor":
        # A learnable 0-dim parameter; returned so the equivalence check compares its gradient.
        out.add(1, f"alpha = torch.tensor({_literal(spec.passed_alpha)}, dtype=x.dtype, requires_grad=True)")
    result = "out, alpha" if spec.alpha_kind == "tensor" else "out"
    style = spec.call_style
    if style == "direct":
        out.add(1, f"out = {call('Spike.apply')}")
    elif style == "alias":
        out.add(1, f"out = {call('spike')}")
    elif style == "listcomp":
        out.add(1, f"parts = [Spike.apply(({argument('x')}) * k{tail}) for k in (1.0, 0.5)]")
        out.add(1, "out = parts[0] + 2 * parts[1]")
    elif style == "lambda":
        out.add(1, f"f = lambda u: {call('Spike.apply', 'u')}")
        out.add(1, "out = f(x)")
    elif style == "conditional":
        out.add(1, f"out = {call('Spike.apply')} if x.numel() > 3 else x")
    elif style in ("self_attribute", "class_attribute"):
        out.add(1, f"out = Layer()(x{', alpha' if spec.alpha_kind == 'tensor' else ''})")
    elif style == "instance_apply":
        out.add(1, f"out = {call('Spike().apply')}")
    elif style == "nested":
        out.add(1, f"out = Spike.apply({call('Spike.apply')} - 0.5 * x{tail})")
    elif style == "loop":
        out.add(1, "out = torch.zeros_like(x)")
        out.add(1, "for k in range(1, 3):")
        out.add(2, f"out = out + Spike.apply(({argument('x')}) / k{tail})")
    elif style == "augassign":
        out.add(1, "out = x * 0")
        out.add(1, f"out += {call('Spike.apply')}")
    elif style == "shadowing":
        # Locals named like the module's constants, math and the threshold: the FGI code must
        # still read the module's values.
        out.add(1, "THRESHOLD = 7.0")
        out.add(1, "ALPHA = 9.0")
        out.add(1, "threshold = 3.0")
        out.add(1, f"out = {call('Spike.apply')} + THRESHOLD * ALPHA * threshold * 0")
    elif style == "walrus":
        out.add(1, f"if (s := {call('Spike.apply')}) is not None:")
        out.add(2, "out = s * 2")
    else:  # twice, with different arguments
        out.add(1, f"out = {call('Spike.apply')} - {call('Spike.apply', '(-x)')}")
    out.add(1, f"return {result}")
    text = out.text()
    if spec.torch_alias:
        text = text.replace("import torch\n", "import torch as T\n").replace("torch.", "T.")
    return text
