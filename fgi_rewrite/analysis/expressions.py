"""Small helpers for building and inspecting libcst expressions without changing their meaning."""

from __future__ import annotations

from typing import Callable, Optional

import libcst as cst

_EMPTY = cst.Module(body=[])

# Nodes that bind tighter than any operator: safe to splice anywhere without parentheses.
_ATOMS = (
    cst.Name,
    cst.Attribute,
    cst.Call,
    cst.Subscript,
    cst.Integer,
    cst.Float,
    cst.Imaginary,
    cst.SimpleString,
    cst.ConcatenatedString,
    cst.FormattedString,
    cst.Tuple,
    cst.List,
    cst.Dict,
    cst.Set,
    cst.Ellipsis,
)


def code(node: cst.CSTNode) -> str:
    return _EMPTY.code_for_node(node)


def parenthesize(node: cst.BaseExpression) -> cst.BaseExpression:
    """Wrap in parentheses unless the node is atomic or already wrapped."""
    if isinstance(node, _ATOMS) or node.lpar:
        return node
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def strip_parens(node: cst.BaseExpression) -> cst.BaseExpression:
    # A tuple's or generator's parentheses are part of its syntax.
    if isinstance(node, (cst.Tuple, cst.GeneratorExp, cst.Yield)):
        return node
    if getattr(node, "lpar", None):
        return node.with_changes(lpar=[], rpar=[])
    return node


def dotted_name(node: cst.BaseExpression) -> Optional[str]:
    """`torch.nn.functional` -> "torch.nn.functional"; None for anything that is not a dotted name."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted_name(node.value)
        return None if base is None else f"{base}.{node.attr.value}"
    return None


def call(func: cst.BaseExpression, *args: cst.BaseExpression) -> cst.Call:
    return cst.Call(func=func, args=[cst.Arg(value=a) for a in args])


def method(receiver: cst.BaseExpression, name: str, *args: cst.BaseExpression) -> cst.Call:
    return call(cst.Attribute(value=parenthesize(receiver), attr=cst.Name(name)), *args)


def binop(left: cst.BaseExpression, op: cst.BaseBinaryOp, right: cst.BaseExpression) -> cst.BinaryOperation:
    return cst.BinaryOperation(left=parenthesize(left), operator=op, right=parenthesize(right))


def is_number(node: cst.BaseExpression, value: Optional[float] = None) -> bool:
    """A numeric literal (optionally negated), optionally equal to `value`."""
    node = strip_parens(node)
    sign = 1.0
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Minus, cst.Plus)):
        sign = -1.0 if isinstance(node.operator, cst.Minus) else 1.0
        node = strip_parens(node.expression)
    if not isinstance(node, (cst.Integer, cst.Float)):
        return False
    if value is None:
        return True
    try:
        return sign * float(node.evaluated_value) == value
    except (ValueError, OverflowError):
        return False


def is_literal(node: cst.BaseExpression) -> bool:
    node = strip_parens(node)
    if is_number(node):
        return True
    if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
        return True
    return isinstance(node, (cst.SimpleString, cst.ConcatenatedString))


class _NameSubstituter(cst.CSTTransformer):
    """Replace loads of names; attribute names and keyword names are not loads."""

    def __init__(self, replace: Callable[[str], Optional[cst.BaseExpression]]):
        self._replace = replace

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        return False

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        return updated.with_changes(value=updated.value.visit(self))

    def visit_Arg(self, node: cst.Arg) -> bool:
        return False

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(value=updated.value.visit(self))

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        new = self._replace(updated.value)
        if new is None:
            return updated
        new = parenthesize(new)
        if updated.lpar:
            new = new.with_changes(lpar=updated.lpar, rpar=updated.rpar)
        return new


def substitute(node: cst.CSTNodeT, mapping: dict[str, cst.BaseExpression]) -> cst.CSTNodeT:
    """Replace loads of the mapped names (any node: an expression or a function body)."""
    return node.visit(_NameSubstituter(mapping.get))  # type: ignore[return-value]


def loaded_names(node: cst.CSTNode) -> set[str]:
    found: set[str] = set()

    def record(name: str) -> None:
        found.add(name)
        return None

    node.visit(_NameSubstituter(record))
    return found


def count_loads(node: cst.CSTNode, name: str) -> int:
    hits = 0

    def record(candidate: str) -> None:
        nonlocal hits
        if candidate == name:
            hits += 1
        return None

    node.visit(_NameSubstituter(record))
    return hits


# Python operator precedence, low to high (the language reference, section 6.17).
_BINARY_PRECEDENCE = {
    cst.BitOr: 6, cst.BitXor: 7, cst.BitAnd: 8, cst.LeftShift: 9, cst.RightShift: 9,
    cst.Add: 10, cst.Subtract: 10, cst.Multiply: 11, cst.Divide: 11, cst.FloorDivide: 11,
    cst.Modulo: 11, cst.MatrixMultiply: 11, cst.Power: 13,
}
_UNARY = 12
_PRIMARY = 15


def _precedence(node: cst.BaseExpression) -> int:
    if isinstance(node, cst.BinaryOperation):
        return _BINARY_PRECEDENCE[type(node.operator)]
    if isinstance(node, cst.UnaryOperation):
        return 4 if isinstance(node.operator, cst.Not) else _UNARY
    if isinstance(node, cst.Comparison):
        return 5
    if isinstance(node, cst.BooleanOperation):
        return 3 if isinstance(node.operator, cst.And) else 2
    if isinstance(node, (cst.IfExp, cst.Lambda, cst.NamedExpr)):
        return 0
    if isinstance(node, (cst.Integer, cst.Float)) or isinstance(node, cst.Await):
        return 14
    return _PRIMARY if isinstance(node, _ATOMS) else 0


def _needs_parens(child: cst.BaseExpression, parent: cst.CSTNode, role: str) -> bool:
    inner = _precedence(child)
    if isinstance(parent, cst.BinaryOperation):
        outer = _BINARY_PRECEDENCE[type(parent.operator)]
        if isinstance(parent.operator, cst.Power):
            # `-x ** 2` is `-(x ** 2)`: keep unary operands of ** wrapped for readers too.
            return inner <= outer if role == "left" else inner < _UNARY
        if isinstance(child, cst.UnaryOperation) and inner == _UNARY:
            return False
        return inner < outer or (role == "right" and inner == outer)
    if isinstance(parent, cst.UnaryOperation):
        # `-(a ** b)` stays explicit: `-a ** b` reads wrongly.
        return inner <= _BINARY_PRECEDENCE[cst.Power] and not isinstance(child, (cst.Integer, cst.Float)) \
            if not isinstance(parent.operator, cst.Not) else inner < 4
    if isinstance(parent, (cst.Attribute, cst.Subscript)):
        return inner < _PRIMARY or isinstance(child, (cst.Integer, cst.Float))
    if isinstance(parent, cst.Call):
        return inner < _PRIMARY
    if isinstance(parent, cst.Comparison) or isinstance(parent, cst.ComparisonTarget):
        return inner <= 5
    return True


class _ParenMinimizer(cst.CSTTransformer):
    """Remove parentheses that precedence makes redundant, keep every one that matters."""

    def _clean(self, child: cst.BaseExpression, parent: cst.CSTNode, role: str) -> cst.BaseExpression:
        bare = strip_parens(child)
        if _needs_parens(bare, parent, role):
            return parenthesize(bare) if not child.lpar else child
        return bare

    def leave_BinaryOperation(self, original, updated):
        return updated.with_changes(
            left=self._clean(updated.left, updated, "left"),
            right=self._clean(updated.right, updated, "right"),
        )

    def leave_UnaryOperation(self, original, updated):
        return updated.with_changes(expression=self._clean(updated.expression, updated, "operand"))

    def leave_Attribute(self, original, updated):
        return updated.with_changes(value=self._clean(updated.value, updated, "value"))

    def leave_Call(self, original, updated):
        return updated.with_changes(func=self._clean(updated.func, updated, "func"))

    def leave_Arg(self, original, updated):
        return updated.with_changes(value=strip_parens(updated.value)) if _precedence(strip_parens(updated.value)) > 0 else updated

    def leave_Comparison(self, original, updated):
        return updated.with_changes(left=self._clean(updated.left, updated, "left"))

    def leave_ComparisonTarget(self, original, updated):
        return updated.with_changes(comparator=self._clean(updated.comparator, updated, "right"))


def minimize_parens(node: cst.BaseExpression) -> cst.BaseExpression:
    return node.visit(_ParenMinimizer())
