"""The text tests that decide how much work a file gets: they may say "maybe" too often (a
slower run), never "no" where a call site exists (a missed rewrite)."""

from __future__ import annotations

from pathlib import Path

from fgi_rewrite.api import build_project, rewrite_tree
from fgi_rewrite.transform import _apply_receivers

CORE = (Path(__file__).resolve().parent / "test_cli_project.py").read_text().split("CORE = '''", 1)[1].split("'''", 1)[0]


def test_apply_receivers_name_what_apply_is_read_from() -> None:
    text = ("Fn.apply(x); Fn().apply(x); Fn ( ) . apply(x); mod.Fn.apply(x); mod . Fn .apply(x); "
            "(f).apply(x); x[0].apply(x); f(a).apply(x); a.b().apply(x)")
    assert _apply_receivers(text) == ["Fn", "Fn", "Fn", "mod.Fn", "mod.Fn", None, None, None, "a.b"]


def _tree(tmp_path: Path, files: dict[str, str]) -> dict[Path, str]:
    sources = {}
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        sources[path] = text
    return sources


CALLS = {
    "by_module.py": "import torch\nfrom pkg import core\n\n\ndef run(x):\n    return core.Spike.apply(x)\n",
    "by_alias.py": "import torch\nfrom pkg.core import spike\n\n\ndef run(x):\n    return spike(x)\n",
    "by_rename.py": "import torch\nfrom pkg.core import Spike as S\n\n\ndef run(x):\n    return S.apply(x)\n",
    "by_instance.py": "import torch\nfrom pkg.core import Spike\n\n\ndef run(x):\n    return Spike().apply(x)\n",
    "by_attribute.py": ("import torch\nfrom pkg.core import spike\n\n\nclass M(torch.nn.Module):\n"
                        "    def __init__(self):\n        super().__init__()\n        self.f = spike\n\n"
                        "    def forward(self, x):\n        return self.f(x)\n"),
}


def test_every_spelling_of_a_call_reaches_the_rewrite(tmp_path: Path) -> None:
    """A module with no Function of its own is analysed whenever some spelling could call one."""
    sources = _tree(tmp_path, {"pkg/__init__.py": "", "pkg/core.py": CORE, **CALLS})
    results = rewrite_tree(sources)
    for name in CALLS:
        result = results[tmp_path / name]
        assert result.changed and len(result.rewrites) == 1, (name, result.refusals, result.notes)


def test_refused_functions_and_unrelated_apply_do_not_need_the_project(tmp_path: Path) -> None:
    refused = CORE.replace("return grad_output / (1.0 + x.abs()) ** 2", "return grad_output * torch.rand_like(x)")
    sources = _tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/core.py": refused,
        "user.py": "import pandas\nfrom pkg.core import Spike\n\n\ndef run(df, x):\n"
                   "    return df.apply(len), Spike.apply(x)\n",
    })
    project = build_project(sources)
    assert "pkg.core.Spike" in project.refusals and "pkg.core.Spike" not in project.functions
    result = rewrite_tree(sources)[tmp_path / "user.py"]
    assert not result.changed and not result.rewrites


def _load(root: Path, name: str):
    import importlib.util
    import sys

    sys.path.insert(0, str(root))
    try:
        for cached in [m for m in sys.modules if m == "pkg" or m.startswith("pkg.")]:
            del sys.modules[cached]
        spec = importlib.util.spec_from_file_location(f"{name}_{abs(hash(str(root)))}", root / name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module
    finally:
        sys.path.remove(str(root))


def test_calls_through_each_spelling_compute_what_they_did(tmp_path: Path) -> None:
    torch = __import__("torch")
    calls = ["by_module.py", "by_alias.py", "by_rename.py", "by_instance.py"]
    original = tmp_path / "original"
    sources = _tree(original, {"pkg/__init__.py": "", "pkg/core.py": CORE, **CALLS})
    rewritten = tmp_path / "rewritten"
    for path, result in rewrite_tree(sources).items():
        target = rewritten / path.relative_to(original)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(result.new_source)
    x = torch.tensor([-2.0, -0.5, 0.0, 1e-30, 0.5, 3.0], dtype=torch.float64)
    for name in calls:
        values = []
        for root in (original, rewritten):
            leaf = x.clone().requires_grad_(True)
            out = _load(root, name).run(leaf)
            out.backward(torch.linspace(0.5, 2.0, len(x), dtype=torch.float64))
            values.append((out.detach(), leaf.grad))
        (a, ga), (b, gb) = values
        assert torch.equal(a, b), name
        assert torch.allclose(ga, gb, rtol=1e-12, atol=0), name


# --- the project's mention test: a fast scan that must answer what its regular expression does

from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fgi_rewrite.analysis.project_index import Mentions  # noqa: E402

_PIECES = ["Fn", "Spike", "spike", "xFn", "Fn2", "_Fn", "é", "Fnē", " ", "  ", "\t", "\n", "\u00a0", "\u2003",
           "(", ")", "( )", ".", " . ", "apply", "applyx", "apply(", "Fn.apply", "Fn().apply", "Fn ( ) .apply",
           "a", "_", "#", "0", "Fǅ", "\u0301"]


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14),
       st.sampled_from([(frozenset({"Fn"}), ()), (frozenset({"Fn", "Spike"}), ("spike",)),
                        (frozenset(), ("spike", "Fn2")), (frozenset({"_Fn", "Fnē"}), ())]))
@example(["_", "Fn.apply"], (frozenset({"Fn"}), ()))  # `\b` does not hold inside a word
@example(["x", "Fn", "(", ")", ".apply"], (frozenset({"Fn"}), ()))
@example(["Fn", "\u00a0", "(", "\t", ")", "\n", ".", "\u2003", "apply"], (frozenset({"Fn"}), ()))
@example(["Fn", ")", ".apply"], (frozenset({"Fn"}), ()))
@example(["(", ")", ".apply"], (frozenset({"Fn"}), ()))
@example(["spike", "_"], (frozenset({"Fn"}), ("spike",)))
def test_mentions_answer_what_their_regular_expression_finds(pieces: list[str], names) -> None:
    mentions = Mentions(*names)
    text = "".join(pieces)
    expected = mentions.spelling() is not None and mentions.spelling().search(text) is not None
    assert mentions.in_text(text) == expected, text


def test_mentions_agree_with_their_regular_expression_on_this_project() -> None:
    mentions = Mentions(frozenset({"Function", "Fn", "Spike", "TorchScript", "Path", "Mentions", "cls"}),
                        ("apply_aliases", "spelling"))
    pattern = mentions.spelling()
    root = Path(__file__).resolve().parent.parent
    texts = [p.read_text(encoding="latin-1") for p in sorted(root.glob("*/*.py")) + sorted(root.glob("fixtures/**/*.py"))]
    assert len(texts) > 50
    answers = [mentions.in_text(text) for text in texts]
    assert answers == [pattern.search(text) is not None for text in texts]
    assert any(answers) and not all(answers)
