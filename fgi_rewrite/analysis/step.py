"""Recognise the forward value as a Heaviside step of the operand, and what dtype it has.

The step expression itself is emitted unchanged (so `>` vs `>=`, the threshold and the value
at the threshold are kept by construction). Recognition decides two things only: whether the
Function is in scope (a 0/1 step, not a quantizer or a sign), and which cast the injected
gradient term needs so the sum keeps the step's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import libcst as cst

from .expressions import code, count_loads, is_number, strip_parens
from .module_index import ModuleIndex
from .symbolic import Unsupported
from .vocabulary import CASTS_TO_DTYPE, COMPARISON_METHODS

LIKE = "like"  # same dtype as the operand tensor
SCALAR = "scalar"  # a Python number or 0-dim constant: does not change a tensor's dtype
BOOL = "bool"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class StepShape:
    comparison: str  # ">", ">=", "<", "<=" or "heaviside"
    description: str
    dtype: str  # LIKE, or "cast" / "default" (see `cast`)
    cast: Optional[tuple[str, tuple[cst.BaseExpression, ...]]]  # method and args giving the dtype
    needs_detach: bool


def recognise_step(node: cst.BaseExpression, operand: str, index: ModuleIndex) -> StepShape:
    node = strip_parens(node)
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        name = node.func.attr.value
        receiver = strip_parens(node.func.value)
        if name in CASTS_TO_DTYPE or name in ("to", "type_as", "type"):
            comparison = _boolean_step(receiver, operand, index)
            if comparison is not None:
                args = tuple(a.value for a in node.args)
                if any(a.keyword is not None and a.keyword.value != "dtype" for a in node.args):
                    raise Unsupported("FGI108", f"cast `{code(node.func)}` with keyword arguments", node)
                if name in ("to", "type", "type_as") and not args:
                    raise Unsupported("FGI108", f"`{code(node)}` does not say which dtype", node)
                if name == "type" and args and _is_tensor_type_name(args[0]):
                    raise Unsupported("FGI108", f"`.type({code(args[0])})` moves the tensor between devices", node)
                dtype = LIKE if _cast_keeps_operand_dtype(name, args, operand, index) else "cast"
                return StepShape(comparison, f"x {comparison} threshold, cast .{name}()", dtype, (name, args), False)
        if name == "masked_fill" and len(node.args) == 2:
            base = strip_parens(receiver)
            comparison = _boolean_step(strip_parens(node.args[0].value), operand, index)
            if (comparison is not None and _is_like_constructor(base, "zeros_like", operand, index)
                    and is_number(node.args[1].value, 1.0)):
                return StepShape(comparison, f"x {comparison} threshold, masked write", LIKE, None, False)
    if isinstance(node, cst.Call):
        qualified = index.qualify(node.func)
        if qualified == "torch.heaviside" and len(node.args) == 2:
            first, values = node.args[0].value, node.args[1].value
            if count_loads(first, operand) and _dtype_class(first, operand, index) == LIKE and \
                    _dtype_class(values, operand, index) in (SCALAR, LIKE) and not count_loads(values, operand):
                return StepShape("heaviside", f"torch.heaviside(x, {code(values)})", LIKE, None, True)
            raise Unsupported("FGI108", f"`{code(node)}`: cannot prove the output dtype", node)
        if qualified == "torch.where" and len(node.args) == 3:
            condition = strip_parens(node.args[0].value)
            comparison = _boolean_step(condition, operand, index)
            one, zero = node.args[1].value, node.args[2].value
            if comparison is not None:
                if is_number(one, 1.0) and is_number(zero, 0.0):
                    if isinstance(strip_parens(one), cst.Integer) and isinstance(strip_parens(zero), cst.Integer):
                        raise Unsupported("FGI101", "forward returns an integer tensor: no gradient can flow", node)
                    return StepShape(comparison, f"torch.where(x {comparison} threshold, 1.0, 0.0)",
                                     "default", None, False)
                if _is_like_constructor(one, "ones_like", operand, index) and \
                        _is_like_constructor(zero, "zeros_like", operand, index):
                    return StepShape(comparison, f"torch.where(x {comparison} threshold, 1, 0)", LIKE, None, False)
    raise Unsupported("FGI101", f"forward returns `{_short(node)}`, which is not a 0/1 step of `{operand}`", node)


def _short(node: cst.CSTNode, limit: int = 60) -> str:
    text = " ".join(code(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_tensor_type_name(node: cst.BaseExpression) -> bool:
    return code(node).endswith("Tensor")


def _boolean_step(node: cst.BaseExpression, operand: str, index: ModuleIndex) -> Optional[str]:
    """The comparison operator when `node` is a single comparison with the operand on one side."""
    node = strip_parens(node)
    if isinstance(node, cst.Comparison) and len(node.comparisons) == 1:
        left, right = node.left, node.comparisons[0].comparator
        symbol = {cst.GreaterThan: ">", cst.GreaterThanEqual: ">=", cst.LessThan: "<",
                  cst.LessThanEqual: "<="}.get(type(node.comparisons[0].operator))
    elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and \
            node.func.attr.value in COMPARISON_METHODS and len(node.args) == 1 and \
            index.qualify(node.func) is None:
        left, right = node.func.value, node.args[0].value
        symbol = COMPARISON_METHODS[node.func.attr.value]
    elif isinstance(node, cst.Call) and len(node.args) == 2 and \
            (index.qualify(node.func) or "").rpartition(".")[0] == "torch" and \
            (index.qualify(node.func) or "").rpartition(".")[2] in COMPARISON_METHODS:
        left, right = node.args[0].value, node.args[1].value
        symbol = COMPARISON_METHODS[(index.qualify(node.func) or "").rpartition(".")[2]]
    else:
        return None
    if symbol is None:
        return None
    in_left, in_right = count_loads(left, operand) > 0, count_loads(right, operand) > 0
    if in_left == in_right:
        return None
    if in_right:  # `0 < x` is `x > 0`
        symbol = {">": "<", ">=": "<=", "<": ">", "<=": ">="}[symbol]
    return symbol


def _is_like_constructor(node: cst.BaseExpression, name: str, operand: str, index: ModuleIndex) -> bool:
    node = strip_parens(node)
    return (
        isinstance(node, cst.Call)
        and index.qualify(node.func) == f"torch.{name}"
        and len(node.args) == 1
        and _dtype_class(node.args[0].value, operand, index) == LIKE
    )


def _cast_keeps_operand_dtype(name: str, args: tuple[cst.BaseExpression, ...], operand: str,
                              index: ModuleIndex) -> bool:
    if name not in ("to", "type_as", "type") or len(args) != 1:
        return False
    target = strip_parens(args[0])
    if isinstance(target, cst.Attribute) and target.attr.value == "dtype":
        return _dtype_class(target.value, operand, index) == LIKE
    if name in ("to", "type_as"):
        return _dtype_class(target, operand, index) == LIKE
    return False


def dtype_class(node: Optional[cst.BaseExpression], operand: str, index: ModuleIndex) -> str:
    """LIKE when the expression provably has the operand's dtype (None stands for 1.0)."""
    if node is None:
        return SCALAR
    return _dtype_class(node, operand, index)


_LIKE_FUNCTIONS = frozenset(
    """
    abs absolute exp exp2 expm1 sigmoid tanh atan arctan sqrt rsqrt reciprocal neg negative
    square sin cos log log1p relu clamp clip pow mul div add sub multiply divide true_divide
    zeros_like ones_like full_like masked_fill detach clone contiguous softplus erf erfc
    cosh sinh tan hardtanh nan_to_num expit subtract maximum minimum where
    """.split()
)


def _combine(classes: list[str]) -> str:
    tensor_classes = [c for c in classes if c != SCALAR]
    if not tensor_classes:
        return SCALAR
    if all(c == LIKE for c in tensor_classes):
        return LIKE
    return UNKNOWN


def _dtype_class(node: cst.BaseExpression, operand: str, index: ModuleIndex) -> str:
    node = strip_parens(node)
    if isinstance(node, cst.Name):
        if node.value == operand:
            return LIKE
        if node.value in index.constants:
            return SCALAR
        return UNKNOWN
    if is_number(node):
        return SCALAR
    if isinstance(node, cst.Attribute):
        qualified = index.qualify(node)
        if qualified is not None and qualified.partition(".")[0] in ("math", "numpy") or qualified in ("torch.pi", "torch.e"):
            return SCALAR
        return UNKNOWN
    if isinstance(node, cst.BinaryOperation):
        return _combine([_dtype_class(node.left, operand, index), _dtype_class(node.right, operand, index)])
    if isinstance(node, cst.UnaryOperation):
        inner = _dtype_class(node.expression, operand, index)
        return inner if isinstance(node.operator, (cst.Minus, cst.Plus)) else UNKNOWN
    if isinstance(node, (cst.Comparison, cst.BooleanOperation)):
        return BOOL
    if isinstance(node, cst.Call):
        qualified = index.qualify(node.func)
        if qualified is not None:
            module, _, name = qualified.rpartition(".")
            if module == "math":
                return SCALAR
            if qualified in ("torch.tensor", "torch.as_tensor", "torch.scalar_tensor") and len(node.args) == 1 \
                    and all(a.keyword is None for a in node.args) and is_number(node.args[0].value) is not None \
                    and _dtype_class(node.args[0].value, operand, index) == SCALAR:
                return SCALAR  # 0-dim: does not promote a dimensioned tensor of the same kind
            if module in ("torch", "torch.special", "torch.nn.functional") and name in _LIKE_FUNCTIONS:
                if name == "where":
                    return _combine([_dtype_class(a.value, operand, index) for a in node.args[1:]]) \
                        if _combine([_dtype_class(a.value, operand, index) for a in node.args[1:]]) == LIKE else UNKNOWN
                return _combine([_dtype_class(a.value, operand, index) for a in node.args if a.keyword is None])
            return UNKNOWN
        if isinstance(node.func, cst.Attribute):
            name = node.func.attr.value
            receiver = _dtype_class(node.func.value, operand, index)
            if name in _LIKE_FUNCTIONS and receiver == LIKE:
                return _combine([receiver] + [_dtype_class(a.value, operand, index) for a in node.args
                                              if a.keyword is None and name != "masked_fill"]
                                + ([_dtype_class(node.args[1].value, operand, index)] if name == "masked_fill"
                                   and len(node.args) == 2 else []))
            if name in ("to", "type_as", "type") and len(node.args) == 1:
                return LIKE if _cast_keeps_operand_dtype(name, (node.args[0].value,), operand, index) else UNKNOWN
        return UNKNOWN
    return UNKNOWN
