"""A symbolic reader for forward, setup_context, backward and their helpers.

Statements are executed over an environment that maps local names to values. A value is
either a plain expression over the forward parameters and module-level names (locals are
substituted away as they are read), or `grad_output * H` for an H free of grad_output: that
is how linearity in grad_output is proven, one operation at a time. Anything the reader does
not understand raises `Unsupported` with a refusal code; it never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import copy
from typing import Callable, Optional, Sequence

import libcst as cst

from .expressions import (
    binop,
    call,
    code,
    dotted_name,
    is_number,
    method,
    parenthesize,
    strip_parens,
    substitute,
)
from .module_index import ModuleIndex
from .vocabulary import (
    MATH_FUNCTIONS,
    PURE_BUILTINS,
    PURE_FUNCTIONAL,
    PURE_TENSOR_METHODS,
    PURE_TORCH_FUNCTIONS,
    RANDOM_NAMES,
)

EXPR = "expr"  # a gradient-free expression
GRAD = "grad"  # grad_output * node (node None: grad_output itself)
TUPLE = "tuple"
NONE = "none"
CTX = "ctx"
SAVED = "saved"  # ctx.saved_tensors
NEEDS_GRAD = "needs_input_grad"
REDUCED = "reduced"  # (grad_output * node).sum(): a gradient summed to a scalar
POISON = "poison"  # a value the reader could not express; an error only if it is used

_MAX_HELPER_DEPTH = 8


class Unsupported(Exception):
    def __init__(self, code: str, message: str, node: Optional[cst.CSTNode] = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.node = node
        # The top-level helper definition `node` lies in, when it is not the Function's class;
        # FOREIGN when it is another module's (no position in this file).
        self.within: Optional[object] = None


FOREIGN = object()


@dataclass(frozen=True)
class Value:
    kind: str
    node: Optional[cst.BaseExpression] = None
    items: tuple["Value", ...] = ()
    # Produced by an operation in this body (not an alias of an input): in-place ops on it are
    # invisible to the caller.
    fresh: bool = False


def expr(node: cst.BaseExpression, fresh: bool = False) -> Value:
    return Value(EXPR, node=node, fresh=fresh)


def grad(h: Optional[cst.BaseExpression], fresh: bool = True) -> Value:
    return Value(GRAD, node=h, fresh=fresh)


ONE = cst.Float("1.0")


def _h(value: Value) -> cst.BaseExpression:
    return value.node if value.node is not None else ONE


@dataclass
class ContextState:
    """What forward/setup_context stored on ctx."""

    saved: Optional[tuple[Value, ...]] = None
    attributes: dict[str, Value] = field(default_factory=dict)


class Reader:
    """Executes one function body symbolically."""

    def __init__(
        self,
        index: ModuleIndex,
        env: dict[str, Value],
        context: Optional[ContextState] = None,
        phase: str = "forward",
        depth: int = 0,
        reserved: frozenset[str] = frozenset(),
        inline_helpers: bool = False,
        foreign: Optional["ForeignLookup"] = None,
        placeholders: Optional[dict[str, str]] = None,
    ):
        self.inline_helpers = inline_helpers
        # Helpers defined in other modules (whole-project runs) and the stand-in names their
        # module-level reads get: placeholder -> qualified target.
        self.foreign = foreign
        self.placeholders = placeholders if placeholders is not None else {}
        self.index = index
        # Parameter names of the Function: a module-level name spelled the same could not be
        # told apart from the parameter once locals are substituted away.
        self.reserved = reserved
        self.env = dict(env)
        self.context = context
        self.phase = phase
        self.depth = depth
        self.ctx_names = {n for n, v in env.items() if v.kind == CTX}
        self.poisoned: dict[int, Unsupported] = {}
        self._tolerate_poison = False

    # ----------------------------------------------------------------- statements
    def run(self, body: Sequence[cst.BaseStatement]) -> Value:
        result = self._block(body)
        if result is None:
            raise Unsupported("FGI106", f"{self.phase} does not end in a return statement")
        return result

    def _block(self, body: Sequence[cst.BaseStatement]) -> Optional[Value]:
        for position, statement in enumerate(body):
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    returned = self._small(small, docstring=(position == 0))
                    if returned is not None:
                        return returned
            elif isinstance(statement, cst.If):
                returned = self._if(statement)
                if returned is not None:
                    return returned
            else:
                raise Unsupported(
                    "FGI106",
                    f"{self.phase} contains a `{_keyword(statement)}` statement",
                    statement,
                )
        return None

    def _if(self, statement: cst.If) -> Optional[Value]:
        # Only guards that are true whenever the gradient matters are understood.
        if not self._is_gradient_guard(statement.test):
            raise Unsupported(
                "FGI106",
                f"{self.phase} branches on `{code(statement.test)}`",
                statement,
            )
        body = statement.body.body if isinstance(statement.body, cst.IndentedBlock) else [
            cst.SimpleStatementLine(body=list(statement.body.body))
        ]
        return self._block(body)

    def _is_gradient_guard(self, test: cst.BaseExpression) -> bool:
        test = strip_parens(test)
        if isinstance(test, cst.Subscript) and self._is_ctx_attr(test.value, "needs_input_grad"):
            return True
        if isinstance(test, cst.Attribute) and test.attr.value == "requires_grad":
            return True
        return False

    def _small(self, small: cst.BaseSmallStatement, docstring: bool) -> Optional[Value]:
        if isinstance(small, cst.Return):
            if small.value is None:
                raise Unsupported("FGI106", f"{self.phase} returns nothing", small)
            self._tolerate_poison = isinstance(strip_parens(small.value), cst.Tuple)
            try:
                return self.eval(small.value)
            finally:
                self._tolerate_poison = False
        if isinstance(small, cst.Pass):
            return None
        if isinstance(small, cst.Expr):
            if isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString)):
                return None
            self._expression_statement(small.value)
            return None
        if isinstance(small, cst.Assign) and self.phase == "backward" and \
                all(isinstance(t.target, cst.Name) for t in small.targets):
            # A gradient for another input may be beyond the reader (a reduction, say): keep
            # the reason and report it only if that value decides the rewrite.
            try:
                value = self.eval(small.value)
            except Unsupported as problem:
                value = Value(POISON, node=small.value, items=(), fresh=False)
                self.poisoned[id(value)] = problem
            for target in small.targets:
                self._assign(target.target, value)
            return None
        if isinstance(small, cst.Assign):
            if len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Subscript) \
                    and isinstance(small.targets[0].target.value, cst.Name):
                self._masked_write(small.targets[0].target, small.value)
                return None
            value = self.eval(small.value)
            for target in small.targets:
                self._assign(target.target, value)
            return None
        if isinstance(small, cst.AnnAssign) and small.value is not None:
            self._assign(small.target, self.eval(small.value))
            return None
        if isinstance(small, cst.AugAssign):
            operator = _AUG_TO_BINARY.get(type(small.operator))
            if operator is None:
                raise Unsupported("FGI106", f"unsupported augmented assignment in {self.phase}", small)
            if isinstance(small.target, cst.Name):
                current = self.eval(small.target)
                self._assign(small.target, self._binary(current, operator(), self.eval(small.value), small))
                return None
            raise Unsupported("FGI106", f"augmented assignment to `{code(small.target)}`", small)
        if isinstance(small, (cst.Import, cst.ImportFrom)):
            raise Unsupported("FGI106", f"{self.phase} imports inside its body", small)
        raise Unsupported("FGI106", f"{self.phase} contains `{code(small).strip()}`", small)

    def _assign(self, target: cst.BaseExpression, value: Value) -> None:
        target = strip_parens(target)
        if isinstance(target, cst.Name):
            self.env[target.value] = value
            return
        if isinstance(target, (cst.Tuple, cst.List)):
            items = self._unpack(value, len(target.elements), target)
            for element, item in zip(target.elements, items):
                if isinstance(element, cst.StarredElement):
                    raise Unsupported("FGI106", "starred unpacking", target)
                self._assign(element.value, item)
            return
        if isinstance(target, cst.Attribute) and self._is_ctx(target.value):
            if self.phase not in ("forward", "setup_context"):
                raise Unsupported("FGI107", f"ctx.{target.attr.value} is assigned in {self.phase}", target)
            if value.kind not in (EXPR, NONE, TUPLE):
                raise Unsupported("FGI107", f"ctx.{target.attr.value} holds an unsupported value", target)
            assert self.context is not None
            self.context.attributes[target.attr.value] = value
            return
        if isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name):
            raise Unsupported("FGI106", f"chained assignment to `{code(target)}`", target)
        raise Unsupported("FGI106", f"assignment to `{code(target)}`", target)

    def _masked_write(self, target: cst.Subscript, value_node: cst.BaseExpression) -> None:
        """`t[mask] = v` on a fresh local: v may read `e[mask]` with the same mask, which is `e`
        restricted to the written positions, so the write is `torch.where(mask, v', t)`."""
        name = target.value.value  # type: ignore[attr-defined]
        current = self.env.get(name)
        if current is None or not current.fresh:
            raise Unsupported(
                "FGI106", f"in-place write into `{name}`, which is not a fresh local tensor", target
            )
        if len(target.slice) != 1 or not isinstance(target.slice[0].slice, cst.Index):
            raise Unsupported("FGI106", f"indexed write `{code(target)}`", target)
        mask_node = target.slice[0].slice.value
        mask = self.eval(mask_node)
        if mask.kind != EXPR:
            raise Unsupported("FGI103", "mask depends on grad_output", target)
        unindexed, indexed = _drop_same_mask_indexing(value_node, code(mask_node))
        value = self.eval(unindexed)
        zero = cst.Float("0.0")
        if current.kind == GRAD:
            if value.kind == GRAD:
                self.env[name] = grad(call(self._torch("where"), mask.node, _h(value), self._tensor_h(current)))  # type: ignore[arg-type]
                return
            if value.kind == EXPR and is_number(value.node, 0.0):  # type: ignore[arg-type]
                self.env[name] = grad(method(self._tensor_h(current), "masked_fill", mask.node, zero))  # type: ignore[arg-type]
                return
            raise Unsupported(
                "FGI103", f"`{code(target)} = {code(value_node)}` is not linear in grad_output", target
            )
        if current.kind != EXPR:
            raise Unsupported("FGI106", f"masked write into `{name}`", target)
        if value.kind == GRAD:
            if not _is_zero(current.node, self.index):
                raise Unsupported("FGI103", f"`{code(target)} = ...` mixes grad_output into a non-zero tensor", target)
            self.env[name] = grad(call(self._torch("where"), mask.node, _h(value), zero))  # type: ignore[arg-type]
            return
        if value.kind != EXPR:
            raise Unsupported("FGI106", f"masked write of a {value.kind} value", target)
        if indexed:
            self.env[name] = expr(call(self._torch("where"), mask.node, value.node, current.node), fresh=True)  # type: ignore[arg-type]
        else:
            self.env[name] = expr(method(current.node, "masked_fill", mask.node, value.node), fresh=True)  # type: ignore[arg-type]

    def _tensor_h(self, value: Value) -> cst.BaseExpression:
        """H as a tensor (masked_fill needs one): grad_output alone becomes ones_like."""
        if value.node is not None:
            return value.node
        operand = self.env.get("__operand__")
        if operand is None or operand.node is None:
            raise Unsupported("FGI103", "cannot express the mask without the input tensor")
        return call(self._torch("ones_like"), operand.node)

    def _torch(self, name: str) -> cst.BaseExpression:
        alias = self.index.alias_for("torch")
        if alias is None:
            raise Unsupported("FGI104", f"the module does not import torch, needed for torch.{name}")
        return cst.parse_expression(f"{alias}.{name}")

    def _expression_statement(self, node: cst.BaseExpression) -> None:
        node = strip_parens(node)
        if not isinstance(node, cst.Call) or not isinstance(node.func, cst.Attribute):
            raise Unsupported("FGI106", f"{self.phase} evaluates `{code(node)}` for its effect", node)
        receiver, name = node.func.value, node.func.attr.value
        if self._is_ctx(receiver):
            self._ctx_call(name, node)
            return
        # In-place tensor operation on a fresh local: `sg.sigmoid_()`, `g.mul_(h)`.
        if isinstance(receiver, cst.Name) and name.endswith("_") and not name.startswith("_"):
            current = self.env.get(receiver.value)
            if current is None or not current.fresh:
                raise Unsupported(
                    "FGI106",
                    f"in-place `{name}` on `{receiver.value}`, which may alias an input",
                    node,
                )
            outplace = node.with_changes(func=node.func.with_changes(attr=cst.Name(name[:-1])))
            self.env[receiver.value] = self.eval(outplace)
            return
        raise Unsupported("FGI106", f"{self.phase} calls `{code(node.func)}` for its effect", node)

    def _ctx_call(self, name: str, node: cst.Call) -> None:
        assert self.context is not None or name != "save_for_backward"
        if name == "save_for_backward":
            if self.phase not in ("forward", "setup_context"):
                raise Unsupported("FGI107", "save_for_backward outside forward", node)
            items = []
            for arg in node.args:
                if arg.star or arg.keyword:
                    raise Unsupported("FGI107", "save_for_backward with unpacking", node)
                items.append(self.eval(arg.value))
            assert self.context is not None
            self.context.saved = tuple(items)
            return
        if name in ("set_materialize_grads",):
            return
        if name == "mark_non_differentiable":
            raise Unsupported("FGI107", "forward marks its output non-differentiable", node)
        raise Unsupported("FGI107", f"ctx.{name}(...) is not understood", node)

    def _unpack(self, value: Value, count: int, node: cst.CSTNode) -> tuple[Value, ...]:
        if value.kind == SAVED:
            if self.context is None or self.context.saved is None:
                raise Unsupported("FGI107", "saved_tensors read but nothing was saved", node)
            items = self.context.saved
        elif value.kind == TUPLE:
            items = value.items
        else:
            raise Unsupported("FGI106", f"cannot unpack `{code(value.node) if value.node else value.kind}`", node)
        if len(items) != count:
            raise Unsupported("FGI106", f"unpacks {len(items)} values into {count} names", node)
        return items

    # ---------------------------------------------------------------- expressions
    def eval(self, node: cst.BaseExpression) -> Value:
        if isinstance(node, cst.Name):
            value = self._name(node)
            if value.kind == POISON and not self._tolerate_poison:
                raise self.poisoned[id(value)]
            return value
        if isinstance(node, (cst.Integer, cst.Float, cst.SimpleString, cst.Imaginary)):
            return expr(node)
        if isinstance(node, cst.Attribute):
            return self._attribute(node)
        if isinstance(node, cst.Subscript):
            return self._subscript(node)
        if isinstance(node, cst.Call):
            return self._call(node)
        if isinstance(node, cst.BinaryOperation):
            return self._binary(self.eval(node.left), node.operator, self.eval(node.right), node)
        if isinstance(node, cst.UnaryOperation):
            operand = self.eval(node.expression)
            if operand.kind == GRAD:
                if isinstance(node.operator, cst.Minus):
                    return grad(cst.UnaryOperation(operator=cst.Minus(), expression=parenthesize(_h(operand))))
                if isinstance(node.operator, cst.Plus):
                    return operand
                raise Unsupported("FGI103", f"`{code(node)}` is not linear in grad_output", node)
            return self._expr_of(node.with_changes(expression=parenthesize(self._node(operand, node))), fresh=True)
        if isinstance(node, cst.Comparison):
            left = self._node(self.eval(node.left), node)
            targets = [
                t.with_changes(comparator=parenthesize(self._node(self.eval(t.comparator), node)))
                for t in node.comparisons
            ]
            return expr(node.with_changes(left=parenthesize(left), comparisons=targets), fresh=True)
        if isinstance(node, cst.BooleanOperation):
            left = self._node(self.eval(node.left), node)
            right = self._node(self.eval(node.right), node)
            return expr(node.with_changes(left=parenthesize(left), right=parenthesize(right)))
        if isinstance(node, cst.Tuple):
            items = []
            for element in node.elements:
                if isinstance(element, cst.StarredElement):
                    raise Unsupported("FGI106", "starred element", node)
                items.append(self.eval(element.value))
            return Value(TUPLE, items=tuple(items))
        if isinstance(node, cst.IfExp):
            test = self.eval(node.test)
            body, orelse = self.eval(node.body), self.eval(node.orelse)
            if EXPR == test.kind == body.kind == orelse.kind:
                return expr(node.with_changes(test=test.node, body=body.node, orelse=orelse.node))
            raise Unsupported("FGI106", f"conditional expression `{code(node)}`", node)
        raise Unsupported("FGI106", f"expression `{code(node)}` is not understood", node)

    def _node(self, value: Value, where: cst.CSTNode) -> cst.BaseExpression:
        if value.kind == REDUCED:
            raise Unsupported("FGI103", f"backward reduces grad_output in `{code(where)}`", where)
        if value.kind == GRAD:
            raise Unsupported("FGI103", f"grad_output is used non-linearly in `{code(where)}`", where)
        if value.kind != EXPR or value.node is None:
            raise Unsupported("FGI106", f"`{code(where)}` uses a {value.kind} value", where)
        return value.node

    def _expr_of(self, node: cst.BaseExpression, fresh: bool = False) -> Value:
        return expr(node, fresh=fresh)

    def _name(self, node: cst.Name) -> Value:
        name = node.value
        if name in self.env:
            return self.env[name]
        if name == "None":
            return Value(NONE)
        if name in ("True", "False"):
            return expr(node)
        if self.index.assigned.get(name, 0) >= 1 or name in _BUILTIN_CONSTANTS:
            if self.index.assigned.get(name, 0) > 1:
                raise Unsupported("FGI104", f"module-level `{name}` is bound more than once", node)
            if name in self.reserved:
                raise Unsupported("FGI104", f"module-level `{name}` has the name of a forward parameter", node)
            return expr(node)
        raise Unsupported("FGI104", f"`{name}` is not defined in this module", node)

    def _is_ctx(self, node: cst.BaseExpression) -> bool:
        return isinstance(node, cst.Name) and node.value in self.ctx_names

    def _is_ctx_attr(self, node: cst.BaseExpression, attr: str) -> bool:
        return isinstance(node, cst.Attribute) and self._is_ctx(node.value) and node.attr.value == attr

    def _attribute(self, node: cst.Attribute) -> Value:
        if self._is_ctx(node.value):
            attr = node.attr.value
            if attr == "saved_tensors" or attr == "saved_variables":
                return Value(SAVED)
            if attr == "needs_input_grad":
                return Value(NEEDS_GRAD)
            if self.context is not None and attr in self.context.attributes:
                return self.context.attributes[attr]
            raise Unsupported("FGI107", f"ctx.{attr} is read but never assigned in forward", node)
        qualified = self.index.qualify(node)
        if qualified is not None:
            return expr(node)
        base = self.eval(node.value)
        if base.kind == GRAD:
            raise Unsupported("FGI103", f"`{code(node)}` reads an attribute of grad_output", node)
        return expr(node.with_changes(value=parenthesize(self._node(base, node))))

    def _subscript(self, node: cst.Subscript) -> Value:
        base = self.eval(node.value)
        if base.kind in (SAVED, TUPLE, NEEDS_GRAD):
            if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
                raise Unsupported("FGI106", f"`{code(node)}`", node)
            index_node = strip_parens(node.slice[0].slice.value)
            if not isinstance(index_node, cst.Integer):
                raise Unsupported("FGI106", f"non-constant index in `{code(node)}`", node)
            position = int(index_node.value)
            if base.kind == NEEDS_GRAD:
                return expr(cst.Name("True"))
            items = self._unpack(base, len(self.context.saved) if base.kind == SAVED and self.context and self.context.saved else len(base.items), node)
            if not -len(items) <= position < len(items):
                raise Unsupported("FGI106", f"index out of range in `{code(node)}`", node)
            return items[position]
        if base.kind == GRAD:
            raise Unsupported("FGI103", f"`{code(node)}` indexes grad_output", node)
        elements = []
        for element in node.slice:
            if isinstance(element.slice, cst.Index):
                elements.append(element.with_changes(slice=element.slice.with_changes(
                    value=self._node(self.eval(element.slice.value), node))))
            else:
                elements.append(element)
        return expr(node.with_changes(value=parenthesize(self._node(base, node)), slice=elements))

    # ---------------------------------------------------------------- operators
    def _binary(self, left: Value, operator: cst.BaseBinaryOp, right: Value, node: cst.CSTNode) -> Value:
        if left.kind == GRAD or right.kind == GRAD:
            return self._linear_binary(left, operator, right, node)
        return expr(binop(self._node(left, node), operator, self._node(right, node)), fresh=True)

    def _linear_binary(self, left: Value, operator: cst.BaseBinaryOp, right: Value, node: cst.CSTNode) -> Value:
        if isinstance(operator, cst.Multiply):
            if left.kind == GRAD and right.kind == EXPR:
                return grad(_times(left.node, right.node))
            if right.kind == GRAD and left.kind == EXPR:
                return grad(_times(right.node, left.node))
        elif isinstance(operator, cst.Divide) and left.kind == GRAD and right.kind == EXPR:
            return grad(binop(_h(left), cst.Divide(), right.node))  # type: ignore[arg-type]
        elif isinstance(operator, (cst.Add, cst.Subtract)) and left.kind == right.kind == GRAD:
            return grad(binop(_h(left), operator, _h(right)))
        raise Unsupported("FGI103", f"`{code(node)}` is not linear in grad_output", node)

    # -------------------------------------------------------------------- calls
    def _call(self, node: cst.Call) -> Value:
        for arg in node.args:
            if arg.star:
                raise Unsupported("FGI106", f"argument unpacking in `{code(node)}`", node)
        func = node.func
        qualified = self.index.qualify(func) if isinstance(func, (cst.Name, cst.Attribute)) else None
        if qualified is not None:
            return self._qualified_call(qualified, node)
        if isinstance(func, cst.Name):
            name = func.value
            if name in self.env:
                raise Unsupported("FGI104", f"calls the local value `{name}`", node)
            if name in self.index.helpers and self.index.is_unique(name):
                return self._helper_call(name, node)
            if name in PURE_BUILTINS and name not in self.index.assigned:
                return self._pure_call(node)
            found = self.foreign(self.index, name) if self.foreign is not None else None
            if found is not None:
                return self._foreign_helper_call(name, node, *found)
            raise Unsupported("FGI104", f"calls `{name}`, which the tool cannot see through", node)
        if isinstance(func, cst.Attribute):
            if self._is_ctx(func.value):
                raise Unsupported("FGI107", f"ctx.{func.attr.value}(...) in an expression", node)
            receiver = self.eval(func.value)
            return self._method_call(receiver, func.attr.value, node)
        raise Unsupported("FGI104", f"calls `{code(func)}`", node)

    def _qualified_call(self, qualified: str, node: cst.Call) -> Value:
        module, _, name = qualified.rpartition(".")
        if name in RANDOM_NAMES:
            raise Unsupported("FGI102", f"`{code(node.func)}` draws random numbers", node)
        pure = (
            (module == "torch" and name in PURE_TORCH_FUNCTIONS)
            or (module == "torch.special" and name in ("expit", "erf", "erfc", "expm1", "exp2"))
            or (module == "torch.nn.functional" and name in PURE_FUNCTIONAL)
            or (module == "math" and name in MATH_FUNCTIONS)
        )
        if not pure:
            dotted = dotted_name(node.func)
            found = self.foreign(self.index, dotted) if self.foreign is not None and dotted else None
            if found is not None:
                return self._foreign_helper_call(dotted.rpartition(".")[2], node, *found)  # type: ignore[union-attr]
            raise Unsupported("FGI104", f"calls `{code(node.func)}` ({qualified}), which is not known to be pure", node)
        if module == "torch":
            special = self._linear_torch_call(name, node)
            if special is not None:
                return special
        return self._pure_call(node)

    def _args(self, node: cst.Call) -> list[Value]:
        return [self.eval(arg.value) for arg in node.args]

    def _pure_call(self, node: cst.Call, func: Optional[cst.BaseExpression] = None) -> Value:
        args = []
        for arg in node.args:
            value = self.eval(arg.value)
            args.append(arg.with_changes(value=self._node(value, node)))
        return expr(node.with_changes(func=func or node.func, args=args), fresh=True)

    def _linear_torch_call(self, name: str, node: cst.Call) -> Optional[Value]:
        values = self._args(node)
        if not any(v.kind == GRAD for v in values):
            return None
        if name == "sum" and len(values) == 1 and values[0].kind == GRAD and len(node.args) == 1:
            return Value(REDUCED, node=values[0].node)
        if name in ("zeros_like", "ones_like", "full_like") and values[0].kind == GRAD and \
                all(v.kind == EXPR for v in values[1:]):
            # Only the shape of grad_output is read; it is the shape of the input.
            operand = self.env.get("__operand__")
            if operand is None or operand.node is None:
                raise Unsupported("FGI103", f"`{code(node)}` without the input tensor", node)
            args = [node.args[0].with_changes(value=operand.node)] + [
                a.with_changes(value=v.node) for a, v in zip(node.args[1:], values[1:])]
            return expr(node.with_changes(args=args), fresh=True)
        if any(arg.keyword for arg in node.args):
            raise Unsupported("FGI103", f"keyword arguments in `{code(node)}`", node)
        if name in ("mul", "multiply") and len(values) == 2:
            return self._linear_binary(values[0], cst.Multiply(), values[1], node)
        if name in ("div", "divide", "true_divide") and len(values) == 2:
            return self._linear_binary(values[0], cst.Divide(), values[1], node)
        if name in ("neg", "negative") and len(values) == 1:
            return grad(cst.UnaryOperation(operator=cst.Minus(), expression=parenthesize(_h(values[0]))))
        if name == "where" and len(values) == 3:
            return self._linear_where(values, node)
        if name == "masked_fill" and len(values) == 3:
            return self._linear_masked_fill(values[0], values[1], values[2], node)
        raise Unsupported("FGI103", f"`{code(node.func)}` applied to grad_output is not linear", node)

    def _linear_where(self, values: list[Value], node: cst.Call) -> Value:
        condition, when_true, when_false = values
        if condition.kind != EXPR:
            raise Unsupported("FGI103", "torch.where condition depends on grad_output", node)
        branches = []
        for branch in (when_true, when_false):
            if branch.kind == GRAD:
                branches.append(_h(branch))
            elif branch.kind == EXPR and _is_zero(branch.node, self.index):
                branches.append(cst.Float("0.0"))
            else:
                raise Unsupported("FGI103", "torch.where mixes grad_output with a non-zero value", node)
        return grad(call(self._torch("where"), condition.node, *branches))  # type: ignore[arg-type]

    def _linear_masked_fill(self, target: Value, mask: Value, fill: Value, node: cst.CSTNode) -> Value:
        if target.kind != GRAD or mask.kind != EXPR or fill.kind != EXPR or not is_number(fill.node, 0.0):  # type: ignore[arg-type]
            raise Unsupported("FGI103", f"`{code(node)}` is not linear in grad_output", node)
        return grad(method(self._tensor_h(target), "masked_fill", mask.node, cst.Float("0.0")))  # type: ignore[arg-type]

    def _method_call(self, receiver: Value, name: str, node: cst.Call) -> Value:
        if name in RANDOM_NAMES:
            raise Unsupported("FGI102", f"`.{name}()` draws random numbers", node)
        if receiver.kind == GRAD:
            return self._grad_method(receiver, name, node)
        if receiver.kind != EXPR:
            raise Unsupported("FGI106", f"`.{name}()` on a {receiver.kind} value", node)
        if name.endswith("_") and not name.startswith("_"):
            if not receiver.fresh:
                raise Unsupported("FGI106", f"in-place `.{name}()` on a value that may alias an input", node)
            name = name[:-1]
        if name not in PURE_TENSOR_METHODS:
            raise Unsupported("FGI104", f"`.{name}()` is not known to be pure and elementwise", node)
        func = node.func.with_changes(value=parenthesize(receiver.node), attr=cst.Name(name))  # type: ignore[union-attr, arg-type]
        return self._pure_call(node, func=func)

    def _grad_method(self, receiver: Value, name: str, node: cst.Call) -> Value:
        base = name[:-1] if name.endswith("_") and not name.startswith("_") else name
        values = self._args(node)
        if base in ("clone", "contiguous", "detach") and not values:
            return grad(receiver.node)
        if base in ("mul", "multiply") and len(values) == 1:
            return self._linear_binary(receiver, cst.Multiply(), values[0], node)
        if base in ("div", "divide", "true_divide") and len(values) == 1:
            return self._linear_binary(receiver, cst.Divide(), values[0], node)
        if base in ("neg", "negative") and not values:
            return grad(cst.UnaryOperation(operator=cst.Minus(), expression=parenthesize(_h(receiver))))
        if base == "masked_fill" and len(values) == 2:
            return self._linear_masked_fill(receiver, values[0], values[1], node)
        if base == "sum" and not values and not node.args:
            # A full sum: what autograd's broadcasting gives a 0-dim input (checked by the caller).
            return Value(REDUCED, node=receiver.node)
        if base in ("sum", "mean", "amax", "amin", "max", "min", "norm", "prod", "cumsum"):
            raise Unsupported("FGI103", f"backward reduces grad_output with `.{name}()`", node)
        raise Unsupported("FGI103", f"`.{name}()` on grad_output is not known to be linear", node)

    def _foreign_helper_call(self, name: str, node: cst.Call, helper: cst.FunctionDef,
                             index: ModuleIndex) -> Value:
        """A helper from another module: its module-level names are renamed to placeholders that
        stand for what they are (a qualified target), so the emitted code can import them."""
        renamed, view = _with_placeholders(helper, index, self.placeholders)
        return self._helper_call(name, node, renamed, view)

    def _helper_call(self, name: str, node: cst.Call, helper: Optional[cst.FunctionDef] = None,
                     index: Optional[ModuleIndex] = None) -> Value:
        if self.depth >= _MAX_HELPER_DEPTH:
            raise Unsupported("FGI104", f"helpers nest deeper than {_MAX_HELPER_DEPTH} calls", node)
        helper = helper or self.index.helpers[name]
        index = index or self.index
        values = self._args(node)  # in the caller's module
        if any(arg.keyword for arg in node.args):
            bound = _bind_keywords(helper, node, values, index)
        else:
            bound = _bind_positional(helper, values, node, index)
        for decorator in helper.decorators:
            qualified = index.qualify(decorator.decorator) or dotted_name(decorator.decorator) or ""
            if qualified not in ("torch.jit.script", "torch.jit.ignore", "torch.jit.unused",
                                 "torch.compile", "staticmethod"):
                raise Unsupported("FGI104", f"helper `{name}` has decorator `{qualified}`", node)
        reader = Reader(index, bound, None, phase=f"helper `{name}`", depth=self.depth + 1,
                        reserved=self.reserved, inline_helpers=self.inline_helpers, foreign=self.foreign,
                        placeholders=self.placeholders)
        reader.env["__operand__"] = self.env.get("__operand__", Value(NONE))
        body = helper.body.body if isinstance(helper.body, cst.IndentedBlock) else [
            cst.SimpleStatementLine(body=list(helper.body.body))
        ]
        try:
            result = reader.run(body)
        except Unsupported as problem:
            if problem.within is None:
                problem.within = helper if index is self.index else FOREIGN
            raise
        if not self.inline_helpers and index is self.index and result.kind == EXPR and \
                all(v.kind == EXPR for v in values):
            # Keep the call for readability: the helper was proven pure above.
            return self._pure_call(node)
        return result


_BUILTIN_CONSTANTS = frozenset({"True", "False", "None"})

_AUG_TO_BINARY = {
    cst.MultiplyAssign: cst.Multiply,
    cst.DivideAssign: cst.Divide,
    cst.AddAssign: cst.Add,
    cst.SubtractAssign: cst.Subtract,
    cst.PowerAssign: cst.Power,
}


def _times(h: Optional[cst.BaseExpression], factor: Optional[cst.BaseExpression]) -> cst.BaseExpression:
    assert factor is not None
    if h is None:
        return factor
    return binop(h, cst.Multiply(), factor)


def _is_zero(node: Optional[cst.BaseExpression], index: ModuleIndex) -> bool:
    if node is None:
        return False
    if is_number(node, 0.0):
        return True
    node = strip_parens(node)
    if isinstance(node, cst.Call) and index.qualify(node.func) == "torch.zeros_like":
        return True
    return False


ForeignLookup = Callable[[ModuleIndex, str], Optional[tuple[cst.FunctionDef, ModuleIndex]]]


def placeholder_for(module: str, name: str) -> str:
    return f"__fgi__{module.replace('.', '_')}__{name}"


def _with_placeholders(helper: cst.FunctionDef, index: ModuleIndex, registry: dict[str, str]):
    """Rename the helper's reads of its module's names; return it and an index that knows them."""
    local = {p.name.value for p in _parameters(helper)}

    class _Assigned(cst.CSTVisitor):
        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            if isinstance(node.target, cst.Name):
                local.add(node.target.value)

    helper.visit(_Assigned())
    view = copy.copy(index)
    view.imports = dict(index.imports)
    view.assigned = dict(index.assigned)
    view.helpers = dict(index.helpers)
    view.constants = dict(index.constants)
    mapping: dict[str, cst.BaseExpression] = {}
    for name in set(index.imports) | {n for n, c in index.assigned.items() if c == 1}:
        if name in local:
            continue
        target = index.imports.get(name)
        target = index.absolute(target) if target is not None else f"{index.name}.{name}"
        stand_in = placeholder_for(index.name, name)
        registry[stand_in] = target
        view.imports[stand_in] = target
        view.assigned[stand_in] = 1
        mapping[name] = cst.Name(stand_in)
    body = substitute(helper.body, mapping)  # locals are not in the mapping
    return helper.with_changes(body=body), view


def _drop_same_mask_indexing(node: cst.BaseExpression, mask_code: str) -> tuple[cst.BaseExpression, bool]:
    """Replace every `e[mask]` (same mask text) in node by `e`; say whether any was found."""
    found = False

    class _Dropper(cst.CSTTransformer):
        def leave_Subscript(self, original: cst.Subscript, updated: cst.Subscript) -> cst.BaseExpression:
            nonlocal found
            if len(original.slice) == 1 and isinstance(original.slice[0].slice, cst.Index) and \
                    code(original.slice[0].slice.value) == mask_code:
                found = True
                return parenthesize(updated.value)
            return updated

    return node.visit(_Dropper()), found


def _keyword(statement: cst.CSTNode) -> str:
    return type(statement).__name__.lower().replace("statement", "")


def _parameters(function: cst.FunctionDef) -> list[cst.Param]:
    params = function.params
    if params.star_arg not in (cst.MaybeSentinel.DEFAULT, None) or params.star_kwarg is not None:
        if not isinstance(params.star_arg, cst.MaybeSentinel):
            raise Unsupported("FGI109", f"`{function.name.value}` takes *args or **kwargs", function)
        if params.star_kwarg is not None:
            raise Unsupported("FGI109", f"`{function.name.value}` takes **kwargs", function)
    return list(params.posonly_params) + list(params.params) + list(params.kwonly_params)


def _default_value(default: cst.BaseExpression, index: ModuleIndex) -> cst.BaseExpression:
    """A default is evaluated once, when the def runs: a module constant bound once (before the
    def, or the def would fail) has its literal value then, so the literal is exact."""
    if isinstance(default, cst.Name) and default.value in index.constants:
        return index.constants[default.value]
    return default


def _bind_positional(helper: cst.FunctionDef, values: list[Value], node: cst.CSTNode,
                     index: ModuleIndex) -> dict[str, Value]:
    params = _parameters(helper)
    if len(values) > len(params):
        raise Unsupported("FGI104", f"too many arguments for helper `{helper.name.value}`", node)
    bound: dict[str, Value] = {}
    for param, value in zip(params, values):
        bound[param.name.value] = value
    for param in params[len(values):]:
        if param.default is None:
            raise Unsupported("FGI104", f"missing argument `{param.name.value}` for `{helper.name.value}`", node)
        bound[param.name.value] = expr(_default_value(param.default, index))
    return bound


def _bind_keywords(helper: cst.FunctionDef, node: cst.Call, values: list[Value],
                   index: ModuleIndex) -> dict[str, Value]:
    params = _parameters(helper)
    names = [p.name.value for p in params]
    bound: dict[str, Value] = {}
    for position, (arg, value) in enumerate(zip(node.args, values)):
        if arg.keyword is None:
            bound[names[position]] = value
        else:
            if arg.keyword.value not in names:
                raise Unsupported("FGI104", f"unknown keyword `{arg.keyword.value}`", node)
            bound[arg.keyword.value] = value
    for param in params:
        if param.name.value not in bound:
            if param.default is None:
                raise Unsupported("FGI104", f"missing argument `{param.name.value}`", node)
            bound[param.name.value] = expr(_default_value(param.default, index))
    return bound


def parameters_of(function: cst.FunctionDef) -> list[cst.Param]:
    return _parameters(function)
