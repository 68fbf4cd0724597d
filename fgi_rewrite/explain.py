"""`fgi explain PATH...`: what the rewriter sees in each autograd Function. Needs no torch.

For every `torch.autograd.Function` in the given files (directories: every `*.py` below them) it
lists whether the Function is rewritable or refused (code, reason, hint), the recognised step
(comparison, threshold, dtype handling), the surrogate h as a formula over `x`, and the call
sites with the form the rewriter would use for each.

The inventory built here (`inventory_source`) is also what `fgi verify` and `fgi plot` read.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import click
import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from .analysis.expressions import code, count_loads, is_number, loaded_names, minimize_parens, strip_parens, substitute
from .analysis.functions import find_function_classes
from .analysis.module_index import ModuleIndex, build_module_index
from .analysis.vocabulary import CASTS_TO_DTYPE, COMPARISON_METHODS
from .api import analyse_source, rewrite_source
from .codes import CODES
from .files import DecodeError, discover, display_path, read_source
from .plan import Plan, Position, Refusal

EXIT_OK, EXIT_ERROR = 0, 123

_SKIPPED_FUNCTION = re.compile(r"^(?P<where>.*):\d+:\d+: skipped (?P<name>\w+) \(# ")
_SKIPPED_CALL = re.compile(r"^(?P<path>.*):(?P<line>\d+):(?P<column>\d+): skipped call of (?P<name>\w+) \(# ")
_REFERENCE = re.compile(r"^(?P<path>.*):(?P<line>\d+):(?P<column>\d+): FGI204 (?P<name>\w+) is referenced as `(?P<what>.*)`;")


# ----------------------------------------------------------------------------- data
@dataclass(frozen=True)
class CallSite:
    """One use of a Function: a call the rewriter rewrites, refuses or skips, or a non-call reference."""

    position: Position
    form: str  # "inline", "function (...)", "refused FGI201", "skipped (# fgi: skip)", "reference"
    arguments: tuple[Optional[str], ...] = ()  # source of each positional argument; None: keyword/starred
    message: str = ""

    def as_json(self) -> dict:
        return {"path": self.position.path, "line": self.position.line, "column": self.position.column,
                "form": self.form, "arguments": list(self.arguments), "message": self.message}


@dataclass(frozen=True)
class StepInfo:
    code: str  # the step expression, operand spelled `x`
    description: str  # the analysis' own words, e.g. "x > threshold, cast .float()"
    comparison: str  # e.g. "x > 0.5", or "torch.heaviside(x, 0.5)"
    threshold: Optional[str]  # source of the threshold, None when it is not a plain offset
    dtype: str  # how the output dtype is decided


@dataclass(frozen=True)
class SurrogateInfo:
    formula: str  # readable: torch./math. prefixes dropped, operand `x`; "1" for straight-through
    code: str  # the exact expression (operand `x`), as emitted; "1" when h == 1
    cast: Optional[str]  # the cast applied to the injected term, e.g. ".float()"
    reads_other_parameters: bool
    # Generalised injection: (parameter, readable formula) for each other input backward gives
    # the gradient grad_output * h_p (autograd sums it to the parameter's shape).
    extra_gradients: tuple[tuple[str, str], ...] = ()


@dataclass
class FunctionReport:
    name: str
    position: Position  # the class statement
    status: str  # "rewritable", "refused" or "skipped"
    plan: Optional[Plan] = None
    refusal: Optional[Refusal] = None
    calls: list[CallSite] = field(default_factory=list)
    operand: str = "x"  # forward's first parameter as written
    step: Optional[StepInfo] = None
    surrogate: Optional[SurrogateInfo] = None

    @property
    def parameters(self) -> list[tuple[str, Optional[str]]]:
        if self.plan is None:
            return []
        return [(p.name, None if p.default is None else code(p.default)) for p in self.plan.parameters]

    def as_json(self) -> dict:
        data: dict = {
            "function": self.name,
            "path": self.position.path,
            "line": self.position.line,
            "column": self.position.column,
            "status": self.status,
        }
        if self.refusal is not None:
            data["refusal"] = {
                "code": self.refusal.code,
                "title": CODES[self.refusal.code].title,
                "message": self.refusal.message,
                "hint": self.refusal.hint,
                "line": self.refusal.position.line,
                "column": self.refusal.position.column,
            }
        if self.plan is not None:
            data["operand"] = self.operand
            data["parameters"] = [{"name": n, "default": d} for n, d in self.parameters]
        if self.step is not None:
            data["step"] = {"code": self.step.code, "description": self.step.description,
                            "comparison": self.step.comparison, "threshold": self.step.threshold,
                            "dtype": self.step.dtype}
        if self.surrogate is not None:
            data["surrogate"] = {"formula": self.surrogate.formula, "code": self.surrogate.code,
                                 "unit": self.surrogate.code == "1", "cast": self.surrogate.cast,
                                 "reads_other_parameters": self.surrogate.reads_other_parameters,
                                 "extra_gradients": [{"parameter": p, "formula": f}
                                                     for p, f in self.surrogate.extra_gradients]}
        data["calls"] = [c.as_json() for c in self.calls]
        return data


@dataclass
class FileReport:
    path: str
    functions: list[FunctionReport] = field(default_factory=list)
    error: Optional[Refusal] = None
    source: str = ""

    def as_json(self) -> dict:
        data: dict = {"path": self.path, "functions": [f.as_json() for f in self.functions]}
        if self.error is not None:
            data["error"] = {"code": self.error.code, "message": self.error.message,
                             "line": self.error.position.line, "hint": self.error.hint}
        return data


# ----------------------------------------------------------------------------- inventory
def inventory_source(source: str, path: str = "<string>") -> FileReport:
    """Every Function defined at the top level of one module, as the rewriter sees it."""
    report = FileReport(path, source=source)
    result = rewrite_source(source, path)
    if result.error is not None:
        report.error = result.error
        return report
    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    index = build_module_index(module)
    plans, refusals = analyse_source(source, path)
    refusals = list(refusals) + [r for r in result.refusals if r.code < "FGI2" or r.code == "FGI205"]
    skipped = {m.group("name") for m in map(_SKIPPED_FUNCTION.match, result.notes) if m}

    calls_by_start: dict[tuple[int, int], cst.Call] = {}

    class _Calls(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            start = positions[node].start
            calls_by_start[(start.line, start.column + 1)] = node

    wrapper.module.visit(_Calls())

    def arguments_at(position: Position) -> tuple[Optional[str], ...]:
        call = calls_by_start.get((position.line, position.column))
        if call is None:
            return ()
        return tuple(None if (a.keyword is not None or a.star) else code(a.value) for a in call.args)

    for function in find_function_classes(module, index):
        span = positions[function.node]
        where = Position(path, span.start.line, span.start.column + 1)
        inside = range(span.start.line, span.end.line + 1)
        plan = next((p for p in plans if p.function == function.name and p.position.line == where.line), None)
        refusal = next((r for r in refusals if r.subject == function.name and
                        (r.position.line in inside or r.code == "FGI205")), None)
        if refusal is not None and refusal.code == "FGI205":
            plan = None
        if function.name in skipped and plan is not None:
            status = "skipped"
        elif plan is not None and refusal is None:
            status = "rewritable"
        else:
            status = "refused"
            if refusal is None:  # should not happen; keep the listing honest
                refusal = Refusal("FGI106", f"{function.name}: not analysed", where, function.name)
        entry = FunctionReport(function.name, where, status, plan, refusal if status == "refused" else None)
        if plan is not None:
            entry.operand = plan.operand
            entry.step = describe_step(plan, index)
            entry.surrogate = describe_surrogate(plan, index)
        report.functions.append(entry)

    # Functions defined inside a class or function: the rewriter reports them, leaves them alone.
    listed = {(f.name, f.position.line) for f in report.functions}
    for refusal in result.refusals:
        if refusal.code == "FGI114" and (refusal.subject, refusal.position.line) not in listed:
            report.functions.append(FunctionReport(refusal.subject, refusal.position, "refused", None, refusal))
    report.functions.sort(key=lambda f: (f.position.line, f.position.column))

    by_name: dict[str, list[FunctionReport]] = {}
    for entry in report.functions:
        by_name.setdefault(entry.name, []).append(entry)

    def attach(name: str, site: CallSite) -> None:
        for entry in by_name.get(name, [])[:1]:
            entry.calls.append(site)

    for rewrite in result.rewrites:
        attach(rewrite.function, CallSite(rewrite.position, rewrite.form, arguments_at(rewrite.position)))
    for refusal in result.refusals:
        if refusal.code >= "FGI2" and refusal.code != "FGI205":
            attach(refusal.subject, CallSite(refusal.position, f"refused {refusal.code}",
                                             arguments_at(refusal.position), refusal.message))
    for note in result.notes:
        match = _SKIPPED_CALL.match(note)
        if match:
            where = Position(match.group("path"), int(match.group("line")), int(match.group("column")))
            attach(match.group("name"), CallSite(where, "skipped (# fgi: skip)", arguments_at(where)))
            continue
        match = _REFERENCE.match(note)
        if match:
            where = Position(match.group("path"), int(match.group("line")), int(match.group("column")))
            attach(match.group("name"), CallSite(where, "reference (not a call: the Function is kept)",
                                                 message=f"referenced as `{match.group('what')}`"))
    for entry in report.functions:
        entry.calls.sort(key=lambda c: (c.position.line, c.position.column))
    return report


def inventory_path(path: Path, name: Optional[str] = None) -> FileReport:
    name = name or display_path(path)
    try:
        source = read_source(path)
    except DecodeError as error:
        return FileReport(name, error=Refusal("FGI901", str(error), Position(name, error.line, 1)))
    except OSError as error:
        return FileReport(name, error=Refusal("FGI903", f"cannot read: {error.strerror or error}", Position(name, 1, 1)))
    return inventory_source(source.text, name)


def inventory_paths(paths: Iterable[Path]) -> list[FileReport]:
    reports = []
    paths = list(paths)
    for path in paths:
        if not path.exists():
            name = display_path(path)
            reports.append(FileReport(name, error=Refusal("FGI903", "no such file or directory", Position(name, 1, 1))))
    for path in discover(p for p in paths if p.exists()):
        reports.append(inventory_path(path))
    return reports


# ----------------------------------------------------------------------------- describing a plan
def _with_x(node: cst.BaseExpression, plan: Plan) -> cst.BaseExpression:
    """Spell the operand `x` (unless `x` already means something else there)."""
    operand = plan.operand
    others = {p.name for p in plan.parameters[1:]} | set(plan.free_names)
    if operand == "x" or "x" in others or "x" in loaded_names(node) - {operand}:
        return node
    return substitute(node, {operand: cst.Name("x")})


class _DropModulePrefixes(cst.CSTTransformer):
    """`torch.exp(u)` -> `exp(u)`, `math.pi` -> `pi`: for reading, not for running."""

    def __init__(self, index: ModuleIndex):
        self._index = index

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        qualified = self._index.qualify(original)
        if qualified is None:
            return updated
        head = qualified.rpartition(".")[0]
        if head in ("torch", "math", "numpy", "torch.special", "torch.nn.functional"):
            return cst.Name(updated.attr.value)
        return updated


def readable(node: cst.BaseExpression, index: ModuleIndex) -> str:
    return code(minimize_parens(node.visit(_DropModulePrefixes(index))))


def describe_surrogate(plan: Plan, index: ModuleIndex) -> SurrogateInfo:
    cast = None
    if plan.surrogate.cast is not None:
        name, args = plan.surrogate.cast
        cast = f".{name}({', '.join(code(_with_x(a, plan)) for a in args)})"
    extra = tuple((name, readable(_with_x(term, plan), index))
                  for name, term in getattr(plan.surrogate, "extra_gradients", ()))
    if plan.surrogate.expression is None:
        return SurrogateInfo("1", "1", cast, False, extra)
    node = _with_x(plan.surrogate.expression, plan)
    return SurrogateInfo(readable(node, index), code(minimize_parens(node)), cast,
                         plan.surrogate.reads_other_parameters, extra)


def _comparison(node: cst.BaseExpression, operand: str, index: ModuleIndex):
    """(left, symbol, right) of the first comparison in the step, operand side first."""
    found: list = []

    class _Find(cst.CSTVisitor):
        def on_visit(self, n: cst.CSTNode) -> bool:
            if found:
                return False
            sides = None
            if isinstance(n, cst.Comparison) and len(n.comparisons) == 1:
                symbol = {cst.GreaterThan: ">", cst.GreaterThanEqual: ">=", cst.LessThan: "<",
                          cst.LessThanEqual: "<="}.get(type(n.comparisons[0].operator))
                if symbol:
                    sides = (n.left, symbol, n.comparisons[0].comparator)
            elif isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute) and \
                    n.func.attr.value in COMPARISON_METHODS:
                qualified = index.qualify(n.func)
                if qualified is None and len(n.args) == 1:
                    sides = (n.func.value, COMPARISON_METHODS[n.func.attr.value], n.args[0].value)
                elif qualified is not None and qualified.rpartition(".")[0] == "torch" and len(n.args) == 2:
                    sides = (n.args[0].value, COMPARISON_METHODS[n.func.attr.value], n.args[1].value)
            if sides is not None:
                left, symbol, right = sides
                if count_loads(right, operand) and not count_loads(left, operand):
                    left, right = right, left
                    symbol = {">": "<", ">=": "<=", "<": ">", "<=": ">="}[symbol]
                found.append((left, symbol, right))
                return False
            return True

    node.visit(_Find())
    return found[0] if found else None


def _threshold(side: cst.BaseExpression, other: cst.BaseExpression, operand: str) -> Optional[cst.BaseExpression]:
    """The value t with `side OP other` <=> `operand OP t`, for `x`, `x - t` and `x + t`."""
    side = strip_parens(side)
    if isinstance(side, cst.Name) and side.value == operand:
        return other
    if isinstance(side, cst.BinaryOperation) and isinstance(strip_parens(side.left), cst.Name) and \
            strip_parens(side.left).value == operand and not count_loads(side.right, operand):
        if isinstance(side.operator, cst.Subtract):
            if is_number(other, 0.0):
                return side.right
            return cst.BinaryOperation(left=other, operator=cst.Add(), right=side.right)
        if isinstance(side.operator, cst.Add):
            if is_number(other, 0.0):
                return cst.UnaryOperation(operator=cst.Minus(), expression=side.right)
            return cst.BinaryOperation(left=other, operator=cst.Subtract(), right=side.right)
    return None


def threshold_expression(plan: Plan, index: ModuleIndex) -> Optional[cst.BaseExpression]:
    """The step's threshold over forward's parameters and module names (None: not a plain offset)."""
    step = strip_parens(plan.step.expression)
    if isinstance(step, cst.Call) and index.qualify(step.func) == "torch.heaviside":
        return cst.Float("0.0")
    found = _comparison(plan.step.expression, plan.operand, index)
    if found is None:
        return None
    left, _, right = found
    return _threshold(left, right, plan.operand)


def _dtype_handling(plan: Plan, index: ModuleIndex) -> str:
    step = strip_parens(plan.step.expression)
    if isinstance(step, cst.Call):
        qualified = index.qualify(step.func)
        if qualified == "torch.heaviside":
            return "same dtype as x (torch.heaviside)"
        if qualified == "torch.where":
            ones = strip_parens(step.args[1].value) if len(step.args) > 1 else None
            if ones is not None and is_number(ones):
                return "torch.get_default_dtype() (Python scalars in torch.where)"
            return "same dtype as x (ones_like/zeros_like in torch.where)"
        if isinstance(step.func, cst.Attribute):
            name = step.func.attr.value
            args = ", ".join(code(_with_x(a.value, plan)) for a in step.args)
            if name in CASTS_TO_DTYPE:
                return f"cast .{name}() -> {CASTS_TO_DTYPE[name]}"
            if name in ("to", "type", "type_as"):
                return f"cast .{name}({args})"
            if name == "masked_fill":
                return "same dtype as x (zeros_like, masked write of 1.0)"
    return plan.step.description.partition(", ")[2] or "as the analysis found it"


def describe_step(plan: Plan, index: ModuleIndex) -> StepInfo:
    step = _with_x(plan.step.expression, plan)
    found = _comparison(plan.step.expression, plan.operand, index)
    threshold = threshold_expression(plan, index)
    threshold_text = None if threshold is None else code(minimize_parens(_with_x(threshold, plan)))
    stripped = strip_parens(plan.step.expression)
    if isinstance(stripped, cst.Call) and index.qualify(stripped.func) == "torch.heaviside":
        comparison = readable(step, index)
    elif found is not None and threshold_text is not None:
        comparison = f"x {found[1]} {threshold_text}" if "x" not in threshold_text or plan.operand == "x" \
            else f"{plan.operand} {found[1]} {threshold_text}"
    elif found is not None:
        left, symbol, right = found
        comparison = f"{code(minimize_parens(_with_x(left, plan)))} {symbol} {code(minimize_parens(_with_x(right, plan)))}"
    else:
        comparison = plan.step.description
    return StepInfo(code(minimize_parens(step)), plan.step.description, comparison, threshold_text,
                    _dtype_handling(plan, index))


# ----------------------------------------------------------------------------- output
def text_report(reports: list[FileReport]) -> list[str]:
    lines: list[str] = []
    for report in reports:
        if report.error is not None:
            lines.append(f"error: {report.error.render()}")
            continue
        for entry in report.functions:
            lines.extend(_function_lines(entry))
    functions = [f for r in reports for f in r.functions]
    counts = {s: sum(1 for f in functions if f.status == s) for s in ("rewritable", "refused", "skipped")}
    failed = sum(1 for r in reports if r.error is not None)
    summary = (f"{len(functions)} Function{'s' if len(functions) != 1 else ''} in {len(reports)} "
               f"file{'s' if len(reports) != 1 else ''}: {counts['rewritable']} rewritable, "
               f"{counts['refused']} refused, {counts['skipped']} skipped")
    if failed:
        summary += f", {failed} file{'s' if failed != 1 else ''} failed"
    lines.append(summary + ".")
    return lines


def _function_lines(entry: FunctionReport) -> list[str]:
    lines = []
    where = f"{entry.position.path}:{entry.position.line}"
    if entry.refusal is not None:
        code_ = entry.refusal.code
        lines.append(f"{where}: {entry.name}: refused {code_} ({CODES[code_].title})")
        reason = entry.refusal.message
        prefix = f"{entry.name}: "
        reason = reason[len(prefix):] if reason.startswith(prefix) else reason
        lines.append(f"    reason:     line {entry.refusal.position.line}: {reason}")
        lines.append(f"    hint:       {entry.refusal.hint}")
    elif entry.status == "skipped":
        lines.append(f"{where}: {entry.name}: skipped (marked `# fgi: skip`; the rewriter leaves it alone)")
    else:
        lines.append(f"{where}: {entry.name}: rewritable")
    if entry.plan is not None:
        params = ", ".join(n if d is None else f"{n}={d}" for n, d in entry.parameters)
        operand = "" if entry.operand == "x" else f"  (operand `{entry.operand}` is written x below)"
        lines.append(f"    forward:    ({params}){operand}")
    if entry.step is not None:
        lines.append(f"    step:       {entry.step.code}")
        lines.append(f"                fires when {entry.step.comparison}; output dtype: {entry.step.dtype}")
    if entry.surrogate is not None:
        suffix = "  (straight-through: h == 1)" if entry.surrogate.code == "1" else ""
        lines.append(f"    surrogate:  h(x) = {entry.surrogate.formula}{suffix}")
        for parameter, formula in entry.surrogate.extra_gradients:
            lines.append(f"                and d out/d {parameter} = {formula}  (generalised injection; "
                         f"{parameter} must be a tensor)")
        if entry.surrogate.cast is not None:
            terms = "terms" if entry.surrogate.extra_gradients else "term"
            lines.append(f"                injected {terms} cast with {entry.surrogate.cast} to match the step")
    calls = [c for c in entry.calls if not c.form.startswith("reference")]
    references = [c for c in entry.calls if c.form.startswith("reference")]
    if calls:
        lines.append(f"    calls:      {len(calls)}")
    elif entry.status != "refused":
        lines.append("    calls:      none in this file")
    for site in calls + references:
        args = ", ".join("<keyword/starred>" if a is None else a for a in site.arguments)
        call = f"  ({args})" if site.arguments else ""
        message = f"  {site.message}" if site.message else ""
        lines.append(f"      {site.position.path}:{site.position.line}:{site.position.column}  "
                     f"{site.form}{call}{message}")
    return lines


def json_report(reports: list[FileReport]) -> dict:
    functions = [f for r in reports for f in r.functions]
    return {
        "files": [r.as_json() for r in reports],
        "summary": {
            "files": len(reports),
            "files_failed": sum(1 for r in reports if r.error is not None),
            "functions": len(functions),
            "rewritable": sum(1 for f in functions if f.status == "rewritable"),
            "refused": sum(1 for f in functions if f.status == "refused"),
            "skipped": sum(1 for f in functions if f.status == "skipped"),
        },
    }


@click.command("explain", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of text.")
def explain_command(paths: tuple[Path, ...], as_json: bool) -> None:
    """List every autograd Function in PATHS (files, or directories searched for *.py).

    For each: rewritable or refused (code, reason, hint), the recognised step (comparison,
    threshold, dtype handling), the surrogate h(x) the backward implements, and the call sites
    with the form the rewriter would use. Reads the source only: imports nothing, needs no torch.

    Exit status: 0, or 123 when a file could not be read or parsed.
    """
    reports = inventory_paths(paths)
    if as_json:
        json.dump(json_report(reports), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for line in text_report(reports):
            click.echo(line)
    sys.exit(EXIT_ERROR if any(r.error is not None for r in reports) else EXIT_OK)
