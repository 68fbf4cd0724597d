"""Build the FGI code for one call from a Plan and the call's argument expressions."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Optional

import libcst as cst
from libcst.helpers import parse_template_statement

from .analysis.expressions import is_number, method, minimize_parens, parenthesize, substitute
from .plan import Plan


@lru_cache(maxsize=None)
def template(name: str) -> str:
    return resources.files("fgi_rewrite.templates").joinpath(name).read_text(encoding="utf-8").strip()


_PLACEHOLDER = "__fgi_template_{}__"


@lru_cache(maxsize=None)
def _parsed_template(name: str, placeholders: tuple[str, ...]) -> cst.BaseExpression:
    text = template(name)
    for placeholder in placeholders:
        text = text.replace("{" + placeholder + "}", _PLACEHOLDER.format(placeholder))
    return cst.parse_expression(text)


class _Filler(cst.CSTTransformer):
    def __init__(self, values: dict[str, cst.BaseExpression]):
        self.values = {_PLACEHOLDER.format(name): value for name, value in values.items()}

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        value = self.values.get(updated.value)
        return updated if value is None else value


def expression_from(name: str, **values: cst.BaseExpression) -> cst.BaseExpression:
    """What `libcst.helpers.parse_template_expression(template(name), **values)` gives, with
    the template parsed once per process (a call site needs several; parsing is the cost). As
    there, every node of the result is new: none is shared with the arguments or another result."""
    filled = _parsed_template(name, tuple(sorted(values))).visit(_Filler(values))
    return filled.deep_clone()  # type: ignore[return-value]


def fgi_expression(
    plan: Plan,
    arguments: dict[str, cst.BaseExpression],
    finite_only: bool = False,
    inline_constants: bool = False,
) -> cst.BaseExpression:
    """The FGI value for a call whose parameters are bound to side-effect-free expressions."""
    if inline_constants:
        # Parameters never share a name with a free name, so constants override only spellings.
        arguments = {**arguments, **dict(plan.constants)}
    operand = parenthesize(arguments[plan.operand])
    detached = method(operand, "detach")
    step = substitute(plan.step.expression, arguments)
    if plan.step.needs_detach:
        step = method(step, "detach")
    surrogate: Optional[cst.BaseExpression] = None
    if plan.surrogate.expression is not None:
        detached_arguments = dict(arguments)
        detached_arguments[plan.operand] = detached
        surrogate = substitute(plan.surrogate.expression, detached_arguments)
        if plan.surrogate.reads_other_parameters:
            # Other arguments may be tensors that require grad: the original gave them none.
            surrogate = method(surrogate, "detach")
    kind = "finite" if finite_only else "exact"
    if surrogate is None:
        injection = expression_from(f"injection_{kind}_unit.tmpl", operand=operand, detached=detached)
    else:
        injection = expression_from(
            f"injection_{kind}.tmpl",
            operand=operand,
            detached=detached,
            surrogate=parenthesize(surrogate),
        )
    injections = [injection]
    tensor_inputs = [p for p, _ in plan.surrogate.extra_gradients if not is_number(arguments[p])]
    for parameter, term in plan.surrogate.extra_gradients:
        # Generalised injection: every input backward gives a gradient gets its own zero term.
        # A number passed there never requires grad (the original would fail in backward), so
        # it gets no term; a tensor can be detached inside h.
        if parameter not in tensor_inputs:
            continue
        target = parenthesize(arguments[parameter])
        detached_all = dict(arguments)
        for name in [plan.operand] + tensor_inputs:
            detached_all[name] = method(parenthesize(arguments[name]), "detach")
        injections.append(expression_from(
            f"injection_{kind}.tmpl", operand=target, detached=method(target, "detach"),
            surrogate=parenthesize(method(substitute(term, detached_all), "detach")),
        ))
    if plan.surrogate.cast is not None:
        name, args = plan.surrogate.cast
        cast_args = [substitute(a, arguments) for a in args]
        injections = [method(i, name, *cast_args) for i in injections]
    expression = parenthesize(step)
    for term in injections:
        expression = expression_from("fgi.tmpl", step=expression, injection=parenthesize(term))
    return minimize_parens(expression)


def generated_function(
    plan: Plan,
    name: str,
    annotations: dict[str, Optional[cst.BaseExpression]],
    finite_only: bool = False,
    inline_constants: bool = False,
    names: Optional[dict[str, cst.BaseExpression]] = None,
) -> cst.FunctionDef:
    """A module-level function with forward's signature that returns the FGI value."""
    params = []
    for parameter in plan.parameters:
        annotation = annotations.get(parameter.name)
        params.append(
            cst.Param(
                name=cst.Name(parameter.name),
                annotation=cst.Annotation(annotation) if annotation is not None else None,
                default=parameter.default,
                equal=cst.AssignEqual() if parameter.default is not None else cst.MaybeSentinel.DEFAULT,
            )
        )
    arguments = {**(names or {}), **{p.name: cst.Name(p.name) for p in plan.parameters}}
    body = fgi_expression(plan, arguments, finite_only, inline_constants)
    docstring = cst.SimpleString(f'"""FGI form of {plan.function} (generated by fgi-rewrite)."""')
    statement = parse_template_statement(
        template("function.tmpl"),
        name=cst.Name(name),
        params=cst.Parameters(params=params),
        docstring=docstring,
        expression=body,
    )
    assert isinstance(statement, cst.FunctionDef)
    return statement
