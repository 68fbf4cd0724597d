"""Cheap stand-ins for libcst's metadata providers and visitors, for big trees.

* Positions, one top-level statement at a time. libcst's PositionProvider generates the code of
  the whole module with bookkeeping for every token; a report needs the positions of a handful
  of nodes (Function classes, call sites, the node a refusal points at). A top-level statement
  starts at column 0, so a node's position inside it is its position in a module holding that
  statement alone, shifted by the line the statement starts on.
* A parent map, a walk and a statement-only walk that read the nodes' dataclass fields directly.
* A per-module memo of the statements' text, the source text and the module index.

tests/test_positions.py holds each to libcst's own answer on every fixture.
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Optional

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

try:  # the base of libcst's own position-tracking states; private, so a fallback exists
    from libcst._nodes.internal import CodegenState
except ImportError:  # pragma: no cover - a libcst that moved it: map whole statements instead
    CodegenState = None  # type: ignore[assignment,misc]

_BIG_STATEMENT = 50_000  # characters
_SINGLE_LOOKUPS = 2  # nodes of one statement looked up one by one before mapping all of them


class _Memo:
    """What several stages compute from one parsed module: the text of its statements, the
    source it was parsed from, its index."""

    def __init__(self) -> None:
        self.codes: dict[cst.CSTNode, str] = {}
        self.source: Optional[str] = None
        self.index: object = None


# The most recently used modules (libcst nodes take no weak references; keyed by identity).
_MEMOS: "OrderedDict[cst.Module, _Memo]" = OrderedDict()
_MEMOS_KEPT = 64


def memo_for(module: cst.Module) -> _Memo:
    memo = _MEMOS.get(module)
    if memo is None:
        memo = _MEMOS[module] = _Memo()
        if len(_MEMOS) > _MEMOS_KEPT:
            _MEMOS.popitem(last=False)
    else:
        _MEMOS.move_to_end(module)
    return memo


def remember_source(module: cst.Module, source: str) -> None:
    """`source` is the text `module` was parsed from (libcst round-trips it exactly)."""
    memo_for(module).source = source


def module_text(module: cst.Module) -> str:
    memo = memo_for(module)
    if memo.source is None:
        memo.source = module.code
    return memo.source


def statement_code(module: cst.Module, statement: cst.CSTNode) -> str:
    """The text of a top-level statement, generated once per process (several stages search
    it: a statement's text costs a quarter of its parse to generate)."""
    codes = memo_for(module).codes
    text = codes.get(statement)
    if text is None:
        text = codes[statement] = module.code_for_node(statement)
    return text


def rewritten_code(new: cst.Module, old: cst.Module) -> str:
    """`new.code`, where `new` came from a rewrite of `old`: the text of a top-level statement
    the two share is taken from `old`'s memo rather than generated again. (Top-level statements
    start at no indentation, so the module's text is theirs, joined.)"""
    if not new.has_trailing_newline or (new.default_newline, new.default_indent) != (old.default_newline,
                                                                                     old.default_indent):
        return new.code  # libcst drops the last newline token then: leave that to it
    codes = memo_for(old).codes
    parts = [new.code_for_node(line) for line in new.header]
    parts.extend(codes.get(statement) or new.code_for_node(statement) for statement in new.body)
    parts.extend(new.code_for_node(line) for line in new.footer)
    return "".join(parts) or new.default_newline


_NEWLINE = re.compile(r"\r\n?|\n")


@dataclass(frozen=False)
class _TargetedCodegenState(CodegenState or object):  # type: ignore[misc]
    """Code generation that notes where some nodes start, as PositionProvider would (their
    syntactic start, else the start of their whitespace), without bookkeeping for the others."""

    targets: set = field(default_factory=set)
    found: dict = field(default_factory=dict)
    counted: int = 0  # tokens already reflected in line/column
    line: int = 1
    column: int = 0

    def _here(self) -> tuple[int, int]:
        tokens = self.tokens
        for position in range(self.counted, len(tokens)):
            token = tokens[position]
            if "\n" in token or "\r" in token:
                segments = _NEWLINE.split(token)
                self.line += len(segments) - 1
                self.column = len(segments[-1])
            else:
                self.column += len(token)
        self.counted = len(tokens)
        return self.line, self.column

    def before_codegen(self, node: cst.CSTNode) -> None:
        if node in self.targets and node not in self.found:
            self.found[node] = self._here()

    @contextmanager
    def record_syntactic_position(self, node, *, start_node=None, end_node=None) -> Iterator[None]:
        if node not in self.targets:
            yield
            return
        if start_node is not None:
            self.targets.add(start_node)
            yield
            self.found[node] = self.found[start_node]
        else:
            start = self._here()
            yield
            self.found[node] = start


def _targeted_start(module: cst.Module, statement: cst.CSTNode, node: cst.CSTNode) -> tuple[int, int]:
    """(line, column 0-based) of `node` in a module holding `statement` alone."""
    alone = module.with_changes(body=[statement], header=[], footer=[])
    if CodegenState is None:
        start = MetadataWrapper(alone, unsafe_skip_copy=True).resolve(PositionProvider)[node].start
        return start.line, start.column
    state = _TargetedCodegenState(default_indent=module.default_indent, default_newline=module.default_newline,
                                  targets={node})
    alone._codegen(state)
    return state.found[node]


class StatementPositions:
    """`position_of(node)` -> (line, column), 1-based, for nodes of `module`.

    The top-level statement holding a node is found through `parents` (a parent map, e.g.
    ParentNodeProvider's) or given explicitly with `within`."""

    def __init__(self, module: cst.Module, parents: Optional[Mapping[cst.CSTNode, cst.CSTNode]] = None):
        self.module = module
        self.parents = parents
        self._first_lines: Optional[dict[cst.CSTNode, int]] = None
        self._ranges: dict[cst.CSTNode, Mapping[cst.CSTNode, CodeRange]] = {}
        self._asked: dict[cst.CSTNode, int] = {}  # statement -> lookups without a map

    def _first_line(self, statement: cst.CSTNode) -> int:
        """The line on which `statement`'s code (its leading blank lines and comments included)
        starts."""
        if self._first_lines is None:
            line = 1 + len(self.module.header)  # EmptyLines: one line each
            first_lines: dict[cst.CSTNode, int] = {}
            for node in self.module.body:
                first_lines[node] = line
                line += statement_code(self.module, node).count("\n")
            self._first_lines = first_lines
        return self._first_lines[statement]

    def _ranges_in(self, statement: cst.CSTNode) -> Mapping[cst.CSTNode, CodeRange]:
        if statement not in self._ranges:
            alone = self.module.with_changes(body=[statement], header=[], footer=[])
            self._ranges[statement] = MetadataWrapper(alone, unsafe_skip_copy=True).resolve(PositionProvider)
        return self._ranges[statement]

    def statement_of(self, node: cst.CSTNode) -> cst.CSTNode:
        if self.parents is None:
            raise KeyError(node)
        current = node
        while True:
            parent = self.parents.get(current)
            if parent is None:
                raise KeyError(node)
            if parent is self.module or isinstance(parent, cst.Module):
                return current
            current = parent

    def position_of(self, node: cst.CSTNode, within: Optional[cst.CSTNode] = None) -> tuple[int, int]:
        """Raises KeyError for a node that is not in the module (one the analysis built)."""
        statement = within if within is not None else self.statement_of(node)
        if node is statement and isinstance(node, (cst.ClassDef, cst.FunctionDef)):
            # The `class`/`def` line, after leading lines and decorators: no position pass.
            line = self._first_line(node) + len(node.leading_lines) + len(node.lines_after_decorators)
            line += sum(self.module.code_for_node(d).count("\n") for d in node.decorators)
            return line, 1
        if statement not in self._ranges:
            asked = self._asked[statement] = self._asked.get(statement, 0) + 1
            if asked <= _SINGLE_LOOKUPS or len(statement_code(self.module, statement)) > _BIG_STATEMENT:
                # A few nodes, or one of a big statement (a class of thousands of lines): their
                # starts alone cost about one code generation each; a map of all nodes, four.
                line, column = _targeted_start(self.module, statement, node)
                return line - 1 + self._first_line(statement), column + 1
        start = self._ranges_in(statement)[node].start
        return start.line - 1 + self._first_line(statement), start.column + 1

    def within(self, statement: cst.CSTNode) -> Callable[[cst.CSTNode, Optional[cst.CSTNode]], tuple[int, int]]:
        """Positions for nodes of `statement`, or of another top-level statement named in the
        call (a helper the analysis inlined)."""

        def position_of(node: cst.CSTNode, elsewhere: Optional[cst.CSTNode] = None) -> tuple[int, int]:
            try:
                return self.position_of(node, elsewhere or statement)
            except KeyError:
                # A node in no statement given: look in every top-level definition (rare).
                for other in self.module.body:
                    if isinstance(other, (cst.FunctionDef, cst.ClassDef)) and other is not statement:
                        try:
                            line, column = _targeted_start(self.module, other, node)
                        except KeyError:
                            continue
                        return line - 1 + self._first_line(other), column + 1
                raise

        return position_of


_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def parent_map(root: cst.CSTNode) -> dict[cst.CSTNode, cst.CSTNode]:
    """Every node below `root` -> its parent: what ParentNodeProvider gives, several times
    faster (the fields of libcst's frozen dataclasses are read directly; no visitor dispatch)."""
    parents: dict[cst.CSTNode, cst.CSTNode] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        for child in _children(node):
            parents[child] = node
            stack.append(child)
    return parents


def walk(root: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node below `root` and `root` itself, once each: the nodes a libcst visitor visits,
    without its dispatch. A node comes before its children, but children come in the order of
    their fields, not always in source order: sort by position where order matters."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(_children(node)))


def _children(node: cst.CSTNode) -> list[cst.CSTNode]:
    kind = type(node)
    names = _CHILD_FIELDS.get(kind)
    if names is None:
        names = _CHILD_FIELDS[kind] = tuple(f.name for f in dataclasses.fields(node))
    children: list[cst.CSTNode] = []
    for name in names:
        value = getattr(node, name)
        value_kind = type(value)
        if value_kind is list or value_kind is tuple:
            children.extend(child for child in value if _is_node_type(type(child)))
        elif _is_node_type(value_kind):
            children.append(value)
        elif isinstance(value, (list, tuple)):
            children.extend(child for child in value if _is_node_type(type(child)))
    return children


_NODE_TYPES: dict[type, bool] = {}


def _is_node_type(kind: type) -> bool:
    """issubclass(kind, CSTNode), remembered: libcst's nodes are ABCs, and an isinstance check
    against an ABC costs several times one against a plain class (millions are made)."""
    known = _NODE_TYPES.get(kind)
    if known is None:
        known = _NODE_TYPES[kind] = issubclass(kind, cst.CSTNode)
    return known


_BLOCK_PARTS = (cst.BaseStatement, cst.BaseSmallStatement, cst.BaseSuite, cst.Else, cst.ExceptHandler,
                cst.ExceptStarHandler, cst.Finally, cst.MatchCase)


def statements(root: cst.CSTNode) -> Iterator[tuple[cst.CSTNode, int]]:
    """Every statement below `root` (and the blocks holding them), with the number of class and
    function definitions around it (below `root`), depth first, statements of a block in source
    order. Expressions are not entered (no statement lies in one): many times faster than a
    visitor."""
    stack: list[tuple[cst.CSTNode, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        yield node, depth
        inner = depth + 1 if isinstance(node, (cst.ClassDef, cst.FunctionDef)) else depth
        stack.extend((child, inner) for child in reversed(_children(node)) if isinstance(child, _BLOCK_PARTS))
