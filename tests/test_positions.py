"""The cheap position and parent maps agree with libcst's providers on every node."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

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
