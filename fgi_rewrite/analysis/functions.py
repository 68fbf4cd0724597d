"""Find `torch.autograd.Function` subclasses and turn each into a Plan or a Refusal."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Callable, Optional

import libcst as cst

from ..plan import Analysis, Parameter, Plan, Position, Refusal, StepSpec, SurrogateSpec
from .expressions import code, count_loads, is_literal, loaded_names
from .module_index import ModuleIndex
from .positions import statements, module_text, statement_code
from .step import LIKE, SCALAR, dtype_class, recognise_step
from .symbolic import (
    CTX,
    EXPR,
    FOREIGN,
    GRAD,
    NONE,
    ONE,
    POISON,
    REDUCED,
    TUPLE,
    ContextState,
    Reader,
    Unsupported,
    ForeignLookup,
    Value,
    expr,
    grad,
    parameters_of,
)

FUNCTION_BASES = frozenset({"torch.autograd.Function", "torch.autograd.function.Function"})
_IGNORED_METHODS = frozenset({"vmap"})
_LOST_METHODS = frozenset({"jvp", "vjp"})

# (node, the top-level statement it lies in when known) -> (line, column); KeyError if unknown.
PositionOf = Callable[[cst.CSTNode, Optional[cst.CSTNode]], tuple[int, int]]


@dataclass(frozen=True)
class FunctionClass:
    name: str
    node: cst.ClassDef
    top: Optional[cst.CSTNode] = None  # the top-level statement holding a nested class

    @property
    def statement(self) -> cst.CSTNode:
        """The top-level statement this class is (in): positions are computed per statement."""
        return self.top if self.top is not None else self.node


def is_function_base(base: cst.BaseExpression, index: ModuleIndex) -> bool:
    qualified = index.qualify(base)
    if qualified in FUNCTION_BASES:
        return True
    # `from torch.autograd import *` binds Function without saying so.
    return (
        isinstance(base, cst.Name)
        and base.value == "Function"
        and base.value not in index.assigned
        and any(m in ("torch.autograd", "torch.autograd.function") for m in index.star_imports)
    )


def find_function_classes(module: cst.Module, index: ModuleIndex) -> list[FunctionClass]:
    found = []
    for statement in module.body:
        if isinstance(statement, cst.ClassDef) and any(is_function_base(b.value, index) for b in statement.bases):
            found.append(FunctionClass(statement.name.value, statement))
    return found


def find_nested_function_classes(module: cst.Module, index: ModuleIndex) -> list[FunctionClass]:
    """Functions defined inside a class or function body: reported, not rewritten."""
    found: list[FunctionClass] = []
    if not _INDENTED_CLASS.search(module_text(module)):
        return found
    for statement in module.body:
        # Only statements whose text has an indented `class` can nest one.
        if isinstance(statement, cst.BaseCompoundStatement) and \
                _INDENTED_CLASS.search(statement_code(module, statement)):
            for node, depth in statements(statement):
                if isinstance(node, cst.ClassDef) and depth and \
                        any(is_function_base(b.value, index) for b in node.bases):
                    found.append(FunctionClass(node.name.value, node, statement))
    return found


_INDENTED_CLASS = re.compile(r"^[ \t]+class\b", re.M)


def analyse_function(
    function: FunctionClass, index: ModuleIndex, path: str, position_of: PositionOf,
    foreign: Optional[ForeignLookup] = None,
) -> Analysis:
    line, column = position_of(function.node, None)
    where = Position(path, line, column)
    try:
        return _analyse(function, index, where, foreign)
    except Unsupported as problem:
        at = where
        if problem.node is not None and problem.within is not FOREIGN:
            try:
                at = Position(path, *position_of(problem.node, problem.within))
            except KeyError:
                pass  # a node the reader built itself has no source position
        return Refusal(problem.code, f"{function.name}: {problem.message}", at, function.name)


def _methods(node: cst.ClassDef) -> dict[str, cst.FunctionDef]:
    methods: dict[str, cst.FunctionDef] = {}
    body = node.body.body if isinstance(node.body, cst.IndentedBlock) else []
    for statement in body:
        if isinstance(statement, cst.FunctionDef):
            methods[statement.name.value] = statement
    return methods


def _body(function: cst.FunctionDef) -> list[cst.BaseStatement]:
    if isinstance(function.body, cst.IndentedBlock):
        return list(function.body.body)
    return [cst.SimpleStatementLine(body=list(function.body.body))]


def _analyse(function: FunctionClass, index: ModuleIndex, where: Position,
             foreign: Optional[ForeignLookup] = None) -> Plan:
    placeholders: dict[str, str] = {}
    readers = dict(reserved=frozenset(), inline_helpers=True, foreign=foreign, placeholders=placeholders)
    methods = _methods(function.node)
    if "forward" not in methods or "backward" not in methods:
        raise Unsupported("FGI109", "does not define both forward and backward", function.node)
    lost = sorted(_LOST_METHODS & methods.keys())
    if lost:
        raise Unsupported("FGI111", f"defines {', '.join(lost)}", methods[lost[0]])
    if len(function.node.bases) != 1 or function.node.keywords:
        raise Unsupported("FGI111", "has more than one base class or class keywords", function.node)
    forward, backward = methods["forward"], methods["backward"]
    setup = methods.get("setup_context")

    forward_params = parameters_of(forward)
    ctx_name: Optional[str] = None
    if setup is None:
        if not forward_params:
            raise Unsupported("FGI109", "forward takes no ctx argument", forward)
        ctx_name = forward_params[0].name.value
        forward_params = forward_params[1:]
    if not forward_params:
        raise Unsupported("FGI109", "forward takes no input", forward)
    if forward.params.kwonly_params:
        raise Unsupported("FGI109", "forward has keyword-only parameters", forward)

    parameters = []
    for param in forward_params:
        default = param.default
        if default is not None and not is_literal(default):
            if not (isinstance(default, cst.Name) and default.value in index.constants):
                raise Unsupported("FGI113", f"default `{param.name.value}={code(default)}`", param)
        if isinstance(default, cst.Name) and default.value in index.constants:
            default = index.constants[default.value]  # evaluated once, at class definition
        parameters.append(Parameter(param.name.value, default, param.annotation.annotation if param.annotation else None))
    names = [p.name for p in parameters]
    operand = names[0]
    reserved = frozenset(names)

    def fresh_env() -> dict[str, Value]:
        env = {n: expr(cst.Name(n)) for n in names}
        env["__operand__"] = expr(cst.Name(operand))
        return env

    context = ContextState()

    # Helpers are inlined: the emitted code must script, and TorchScript would otherwise compile
    # the helpers too (unannotated float parameters would then be typed as Tensor).
    env = fresh_env()
    if ctx_name is not None:
        env[ctx_name] = Value(CTX)
    readers["reserved"] = reserved
    step_value = Reader(index, env, context, phase="forward", **readers).run(_body(forward))
    if step_value.kind != EXPR:
        raise Unsupported("FGI101", "forward does not return a single tensor", forward)

    if setup is not None:
        setup_params = parameters_of(setup)
        if len(setup_params) != 3:
            raise Unsupported("FGI109", "setup_context must take (ctx, inputs, output)", setup)
        env = fresh_env()
        env[setup_params[0].name.value] = Value(CTX)
        env[setup_params[1].name.value] = Value(TUPLE, items=tuple(expr(cst.Name(n)) for n in names))
        env[setup_params[2].name.value] = step_value
        reader = Reader(index, env, context, phase="setup_context", **readers)
        reader._block(_body(setup))

    backward_params = parameters_of(backward)
    if len(backward_params) != 2:
        raise Unsupported("FGI109", "backward must take (ctx, grad_output): one output only", backward)
    env = fresh_env()
    for n in names:
        env.pop(n)  # forward's parameters are not visible in backward
    env[backward_params[0].name.value] = Value(CTX)
    env[backward_params[1].name.value] = grad(None, fresh=False)
    reader = Reader(index, env, context, phase="backward", **readers)
    result = reader.run(_body(backward))

    gradients = result.items if result.kind == TUPLE else (result,)
    if gradients and gradients[0].kind == POISON:
        raise reader.poisoned[id(gradients[0])]
    if gradients and gradients[0].kind == REDUCED:
        raise Unsupported("FGI103", "backward reduces grad_output for the input", backward)
    if not gradients or gradients[0].kind != GRAD:
        raise Unsupported("FGI110", "backward's first result is not grad_output * h(x)", backward)
    extra: list[tuple[str, cst.BaseExpression]] = []
    for position, other in enumerate(gradients[1:], start=1):
        if other.kind == NONE:
            continue
        target = names[position] if position < len(names) else f"input {position}"
        if other.kind in (GRAD, REDUCED) and position < len(names):
            # Returning a gradient for an input means that input is a tensor; autograd sums a
            # full-shape gradient to its shape, which is what broadcasting in the FGI term does.
            # A full `.sum()` is accepted by autograd only for a 0-dim input (any other shape
            # raises "invalid gradient"), and for a 0-dim input it is that same broadcast sum.
            extra.append((target, other.node if other.node is not None else ONE))
            continue
        if other.kind == POISON:
            problem = reader.poisoned[id(other)]
            raise Unsupported("FGI105", f"backward returns a gradient for `{target}` that the tool cannot "
                                        f"express ({problem.message})", backward)
        raise Unsupported("FGI105", f"backward returns a gradient for `{target}`", backward)
    surrogate = gradients[0].node
    if surrogate is not None and count_loads(surrogate, operand) == 0 and \
            any(count_loads(surrogate, n) for n in names[1:]):
        raise Unsupported("FGI112", "surrogate reads other arguments but not the input", backward)

    if placeholders:
        # Names read by helpers of other modules are imports of this view of the module.
        index = copy.copy(index)
        index.imports = {**index.imports, **placeholders}
        index.assigned = {**index.assigned, **{p: 1 for p in placeholders}}
    shape = recognise_step(step_value.node, operand, index)  # type: ignore[arg-type]
    reads_others = surrogate is not None and any(count_loads(surrogate, n) for n in names[1:])
    cast = _injection_cast(shape, surrogate, operand, index)
    free = set(loaded_names(step_value.node))  # type: ignore[arg-type]
    if surrogate is not None:
        free |= loaded_names(surrogate)
    for _, term in extra:
        free |= loaded_names(term)
    if cast is not None:
        for arg in cast[1]:
            free |= loaded_names(arg)
    free -= set(names)
    return Plan(
        function=function.name,
        position=where,
        parameters=tuple(parameters),
        step=StepSpec(step_value.node, shape.description, shape.needs_detach),  # type: ignore[arg-type]
        surrogate=SurrogateSpec(surrogate, cast, reads_others or bool(extra), tuple(extra)),
        free_names=frozenset(free),
        constants=tuple(sorted((n, index.constants[n]) for n in free if n in index.constants)),
        foreign=tuple(sorted((p, t) for p, t in placeholders.items() if p in free)),
    )


def _injection_cast(shape, surrogate, operand: str, index: ModuleIndex):
    """The cast that gives the injected term the step's dtype; None when provably the same."""
    surrogate_class = dtype_class(surrogate, operand, index)
    surrogate_like = surrogate_class in (LIKE, SCALAR)
    if shape.dtype == LIKE:
        if surrogate_like:
            return None
        return ("to", (cst.Attribute(value=cst.Name(operand), attr=cst.Name("dtype")),))
    if shape.dtype == "default":
        torch_alias = index.alias_for("torch")
        if torch_alias is None:
            raise Unsupported("FGI108", "the module does not import torch")
        return ("to", (cst.parse_expression(f"{torch_alias}.get_default_dtype()"),))
    return shape.cast
