"""The cheap position and parent maps agree with libcst's providers on every node."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

from fgi_rewrite.analysis import positions
from fgi_rewrite.analysis.positions import StatementPositions, parent_map, statement_code

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*ROOT.glob("fixtures/**/*.py"), *ROOT.glob("fgi_rewrite/**/*.py"), *ROOT.glob("examples/**/*.py")])

DECORATED = '''"""Docstring."""
# a comment before the first statement

import torch


# comment before a decorated class
@staticmethod  # trailing
# between decorators
@torch.jit.ignore

class Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return (x > 0).float()
x = 1; y = 2
if x:  # compound on one line
    pass


def f(a,
      b):  \\
    return a
'''


def _cases() -> list[tuple[str, str]]:
    cases = [("decorated", DECORATED)]
    for path in SOURCES:
        try:
            cases.append((str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue  # the latin-1 fixture
    return cases


@pytest.mark.parametrize("name,source", _cases(), ids=[n for n, _ in _cases()])
def test_parent_map_and_statement_positions_match_libcst(name: str, source: str) -> None:
    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    expected_parents = wrapper.resolve(ParentNodeProvider)
    parents = parent_map(module)
    assert parents.keys() == expected_parents.keys()
    assert all(parents[node] is expected_parents[node] for node in parents)
    expected = wrapper.resolve(PositionProvider)
    layout = StatementPositions(module, parents)
    for statement in module.body:
        assert statement_code(module, statement) == module.code_for_node(statement)
    checked = 0
    for node in parents:
        if isinstance(node, (cst.BaseStatement, cst.BaseExpression, cst.Decorator)) and node in expected:
            start = expected[node].start
            assert layout.position_of(node) == (start.line, start.column + 1), (name, type(node).__name__)
            checked += 1
    assert checked


@pytest.mark.parametrize("name,source", _cases()[::6], ids=[n for n, _ in _cases()[::6]])
def test_single_node_positions_in_big_statements_match_libcst(name: str, source: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """For big statements one node's start is found without a map of all nodes: same answer."""
    monkeypatch.setattr(positions, "_BIG_STATEMENT", 0)
    module = cst.parse_module(source)
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    parents = parent_map(module)
    layout = StatementPositions(module, parents)
    for node in list(parents)[::7]:
        if isinstance(node, (cst.BaseStatement, cst.BaseExpression)) and node in expected:
            start = expected[node].start
            assert layout.position_of(node) == (start.line, start.column + 1), (name, type(node).__name__)


def test_statements_walk_meets_classes_and_globals_as_a_visitor_does() -> None:
    """The statement-only walk finds the same nested classes (same order, same depth) and
    `global` statements as a libcst visitor, on every fixture."""
    from fgi_rewrite.analysis.positions import statements

    class Visitor(cst.CSTVisitor):
        def __init__(self) -> None:
            self.classes: list = []
            self.globals: list = []
            self.depth = 0

        def visit_ClassDef(self, node: cst.ClassDef) -> None:
            self.classes.append((node, self.depth))
            self.depth += 1

        def leave_ClassDef(self, node: cst.ClassDef) -> None:
            self.depth -= 1

        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            self.depth += 1

        def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
            self.depth -= 1

        def visit_Global(self, node: cst.Global) -> None:
            self.globals.append(node)

    source = DECORATED + "class Outer:\n    def f(self):\n        global G\n        class Inner:\n            pass\n"
    for _, text in [("extra", source), *_cases()]:
        module = cst.parse_module(text)
        visitor = Visitor()
        module.visit(visitor)
        walked = list(statements(module))
        assert [(n, d) for n, d in walked if isinstance(n, cst.ClassDef)] == visitor.classes
        assert [n for n, _ in walked if isinstance(n, cst.Global)] == visitor.globals


def test_walk_meets_every_node_a_visitor_does() -> None:
    """`walk` yields each node a libcst visitor visits, once, parents first, on every fixture."""
    from fgi_rewrite.analysis.positions import walk

    class Visitor(cst.CSTVisitor):
        def __init__(self) -> None:
            self.order: list = []

        def on_visit(self, node: cst.CSTNode) -> bool:
            self.order.append(node)
            return True

    for _, text in _cases():
        module = cst.parse_module(text)
        visitor = Visitor()
        module.visit(visitor)
        walked = list(walk(module))
        assert len(walked) == len(visitor.order) and {id(n) for n in walked} == {id(n) for n in visitor.order}
        seen: set[int] = set()
        parents = parent_map(module)
        for node in walked:
            assert node is module or id(parents[node]) in seen
            seen.add(id(node))



@pytest.mark.parametrize("variant", ["as is", "crlf", "tabs", "no final newline"])
def test_rewritten_code_is_the_new_modules_code(variant: str) -> None:
    """The text of a rewritten module, put together from the statements it shares with the old
    one, is what libcst generates for it, on every fixture with a rewrite."""
    from fgi_rewrite.analysis.positions import remember_source, rewritten_code
    from fgi_rewrite.transform import RewriteOptions, rewrite_module

    compared = 0
    for path in sorted(ROOT.glob("fixtures/*/input.py")):
        source = path.read_text(encoding="latin-1")
        if variant == "crlf":
            source = source.replace("\n", "\r\n")
        elif variant == "tabs":
            source = source.replace("    ", "\t")
        elif variant == "no final newline":
            source = source.rstrip("\n")
        try:
            module = cst.parse_module(source)
        except cst.ParserSyntaxError:
            continue  # tabs mixed with spaces
        remember_source(module, source)
        new = rewrite_module(module, str(path), RewriteOptions(formatted=False), source=source).module
        if new is module:
            continue
        for statement in module.body:
            statement_code(module, statement)  # as the positions of a report leave the memo
        assert rewritten_code(new, module) == new.code, path
        compared += 1
    assert compared > 10
