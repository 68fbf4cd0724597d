"""Scope analysis of part of a module (the statements that spell the names the rewrite asks
about) gives the rewrite the answers an analysis of the whole module gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from fgi_rewrite import transform
from fgi_rewrite.api import rewrite_source, rewrite_tree

from .test_prefilters import _tree

ROOT = Path(__file__).resolve().parent.parent

SPIKE = '''import torch


def shape(x):
    return 1.0 / (1.0 + x.abs()) ** 2


class Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * shape(x)


spike = Spike.apply
'''

CASES = {
    "alias used where the Function is not spelled": SPIKE + '''

def unrelated(y):
    return torch.sigmoid(y) + y.shape[0]


def through_alias(x):
    return spike(x * 2)
''',
    "class attribute called from a subclass in another statement": SPIKE + '''

class Base(torch.nn.Module):
    f = Spike.apply


def unrelated(y):
    return torch.sigmoid(y)


class Child(Base):
    def forward(self, x):
        return self.f(x + 1)
''',
    "a free name of the surrogate shadowed at the call": SPIKE.replace("grad_output * shape(x)", "grad_output * torch.sigmoid(x)") + '''

def unrelated(y):
    return y.relu()


def shadowing(x, torch=None):
    return Spike.apply(x)
''',
    "string annotation, __all__ and an ellipsis before a line": SPIKE + '''
__all__ = ["Spike"]


def stub(x) -> "Spike":
    ...
def fire(x):
    return Spike.apply(x)


def unrelated(y):
    return torch.tanh(y)
''',
    "names with combining marks": SPIKE.replace("spike = Spike.apply", "cafe\u0301 = Spike.apply") + '''

def unrelated(y):
    return torch.tanh(y)


def use(x):
    return cafe\u0301(x)
''',
    "the alias rebound in a function": SPIKE + '''

def unrelated(y):
    return torch.tanh(y)


def rebind():
    global spike
    spike = None


def use(x):
    return spike(x)
''',
    "Fn().apply in a statement of its own": SPIKE + '''

def unrelated(y):
    return torch.tanh(y)


def use(x):
    return Spike().apply(x)
''',
    "an import used only where nothing changes": SPIKE.replace("import torch\n", "import torch\nimport math\n") + '''

def unrelated(y):
    return torch.tanh(y) * math.pi


def use(x):
    return Spike.apply(x)
''',
    "a big class: only some of its methods are analysed": SPIKE.replace(
        "grad_output * shape(x)", "grad_output * torch.sigmoid(x)") + '''

class Big(torch.nn.Module):
    f = Spike.apply
    torch = None  # a class attribute: methods do not see it
''' + "".join(f'''
    def unrelated_{i}(self, y):
        """{'padding ' * 20}"""
        return y * {i}
''' for i in range(12)) + '''
    def through_attribute(self, x):
        return self.f(x)

    def direct(self, x):
        return Spike.apply(x + 1)

    def shadowing(self, x):
        torch = None
        return Spike.apply(x)

    def local_import(self, x):
        import math
        return Spike.apply(x * math.pi)
''',
    "a big class with a call in its own body, where the class binds a free name": SPIKE.replace(
        "grad_output * shape(x)", "grad_output * torch.sigmoid(x)") + '''

class Table:
    torch = None  # the call below, in the class body, reads this `torch`
''' + "".join(f'''
    def unrelated_{i}(self, y):
        """{'padding ' * 20}"""
        return y * {i}
''' for i in range(12)) + '''
    ones = Spike.apply(ONES)
''',
}


def _whole_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transform, "_statements_for_scopes", lambda module, words, sites, parents: list(module.body))


def _outcome(result):
    return result.new_source, result.rewrites, result.refusals, result.notes, result.error


@pytest.mark.parametrize("name", list(CASES))
def test_part_of_the_module_answers_as_the_whole(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    source = CASES[name]
    chosen: list[int] = []
    choose = transform._statements_for_scopes
    monkeypatch.setattr(transform, "_statements_for_scopes",
                        lambda *args: chosen.append(len(found := choose(*args))) or found)
    analyses: list[object] = []
    wrapper = transform.MetadataWrapper
    monkeypatch.setattr(transform, "MetadataWrapper", lambda module, **kw: analyses.append(module) or wrapper(module, **kw))
    part = rewrite_source(source, "case.py")
    assert chosen and chosen[0] < source.count("\ndef ") + source.count("\nclass ") + 2  # it left some out
    assert len(analyses) == 1  # the part held every site: no second analysis of the whole
    _whole_module(monkeypatch)
    whole = rewrite_source(source, "case.py")
    assert _outcome(part) == _outcome(whole)
    assert part.error is None and (part.rewrites or part.notes)


def test_fixtures_rewrite_the_same_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = sorted(ROOT.glob("fixtures/*/input.py"))
    assert len(inputs) > 20
    part = {path: _outcome(rewrite_source(path.read_text(encoding="latin-1"), str(path))) for path in inputs}
    project = {p: p.read_text() for p in sorted((ROOT / "fixtures" / "project_package" / "input").rglob("*.py"))}
    part_tree = {p: _outcome(r) for p, r in rewrite_tree(project).items()}
    _whole_module(monkeypatch)
    for path in inputs:
        assert part[path] == _outcome(rewrite_source(path.read_text(encoding="latin-1"), str(path))), path
    assert part_tree == {p: _outcome(r) for p, r in rewrite_tree(project).items()}


def test_spelled_words_leave_out_attributes_only() -> None:
    words = lambda text: [name for dot, name in transform._SPELLED_WORD.findall(text) if not dot]  # noqa: E731
    assert words("torch.sigmoid(x) + a . b") == ["torch", "x", "a"]
    assert words("x = 1.\nsigmoid = ...\nrelu") == ["x", "1", "sigmoid", "relu"]
    assert words("y = x.\\\n    attr") == ["y", "x"]
    assert words("from . import a\nimport b.c as d") == ["from", "a", "import", "b", "as", "d"]
    assert words("cafe\u0301.x; \u00e9") == ["cafe\u0301", "\u00e9"]
    assert words('t: "Spike" = ...Spike') == ["t", "Spike", "Spike"]


def test_which_imported_names_can_lead_to_a_function(tmp_path: Path) -> None:
    from fgi_rewrite.api import build_project

    files = {
        "pkg/__init__.py": "from .core import Spike\n",
        "pkg/core.py": SPIKE,
        "pkg/api.py": "from .core import spike as fire\n",
        "pkg/stars.py": "from .api import *\n",
        "pkg/plain.py": "import torch\n\n\ndef helper(x):\n    return x\n",
        "pkg/deep/__init__.py": "",
        "pkg/deep/inner.py": "from ..core import Spike as Inner\n",
        "other/__init__.py": "",
        "other/tools.py": "import pkg.plain\n\n\nVALUE = 1\n",  # binds `pkg`: other.tools.pkg.core.Spike
        "lone/__init__.py": "",
        "lone/values.py": "import math\n\nVALUE = 1\n",
    }
    project = build_project(_tree(tmp_path, files))
    leads = {name: project.leads_to_function(name) for name in [
        "pkg", "pkg.core", "pkg.core.Spike", "pkg.core.spike", "pkg.api", "pkg.api.fire", "pkg.stars",
        "pkg.deep", "pkg.deep.inner", "pkg.plain", "pkg.plain.helper", "other", "other.tools", "lone", "lone.values", "torch",
        "torch.nn", "pkg.core.torch"]}
    assert leads == {
        "pkg": True, "pkg.core": True, "pkg.core.Spike": True, "pkg.core.spike": True, "pkg.api": True,
        "pkg.api.fire": True, "pkg.stars": True, "pkg.deep": True, "pkg.deep.inner": True,
        "pkg.plain": False, "pkg.plain.helper": False, "other": True, "other.tools": True, "lone": False,
        "lone.values": False, "torch": False,
        "torch.nn": False, "pkg.core.torch": False}
