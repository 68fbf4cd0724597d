"""Rewritten code scripts with TorchScript and compiles with torch.compile(fullgraph=True)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from fgi_rewrite.api import rewrite_source  # noqa: E402
from fgi_rewrite.equivalence import compare, load_module, probe_inputs  # noqa: E402

from .conftest import FIXTURES  # noqa: E402

# Fixtures whose `run` is plain tensor code once rewritten. Excluded on purpose:
# function_form_contexts (lambdas), reference_not_a_call (a dict of callables), skip_pragma and
# where_scalars (keep or need Python-only calls: Fn.apply left alone, torch.get_default_dtype),
# black_clean_untouched_elsewhere (an unannotated helper taking an int), class_attribute_in_backward
# (reads `WidthSpike.width`, a Python class attribute), learnable_alpha_gradient (a module-level
# tensor), self_attribute_alias (`run` builds nn.Modules; their forwards are scripted in the bench).
NOT_SCRIPTABLE = {
    "function_form_contexts", "reference_not_a_call", "skip_pragma", "where_scalars",
    "black_clean_untouched_elsewhere", "class_attribute_in_backward", "learnable_alpha_gradient",
    "self_attribute_alias",
}
SCRIPTABLE = [
    f for f in sorted(FIXTURES.iterdir())
    # real_*: library patterns (closures, Module wrappers, **kwargs) whose `run` is not TorchScript.
    if (f / "input.py").exists() and not f.name.startswith(("refuse_", "real_")) and f.name not in NOT_SCRIPTABLE
]


@pytest.mark.parametrize("fixture", SCRIPTABLE, ids=lambda p: p.name)
def test_rewritten_fixture_scripts(fixture: Path, tmp_path: Path) -> None:
    source = (fixture / "input.py").read_bytes().decode("latin-1" if "latin1" in fixture.name else "utf-8")
    rewritten = tmp_path / "rewritten.py"
    rewritten.write_text(rewrite_source(source, "input.py", inline_constants=True).new_source, encoding="utf-8")
    module = load_module(rewritten)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated in current torch but works
        scripted = torch.jit.script(module.run)
    original = load_module(fixture / "input.py")
    for dtype in (torch.float32, torch.float64):
        mismatches = compare(original.run, scripted, probe_inputs(dtype))
        assert not mismatches, "\n".join(map(str, mismatches))


def test_inline_constants_is_needed_for_module_globals(tmp_path: Path) -> None:
    source = (FIXTURES / "float_gt_gaussian_alias" / "input.py").read_text()
    default = rewrite_source(source).new_source
    inlined = rewrite_source(source, inline_constants=True).new_source
    assert "SIGMA" in default.split("def run")[1]
    assert "SIGMA" not in inlined.split("def run")[1] and "0.5" in inlined.split("def run")[1]


def test_torch_compile_fullgraph(tmp_path: Path) -> None:
    source = (FIXTURES / "ctx_alpha_default_and_argument" / "input.py").read_text()
    rewritten = tmp_path / "rewritten.py"
    rewritten.write_text(rewrite_source(source).new_source)
    module = load_module(rewritten)
    torch._dynamo.reset()
    try:
        compiled = torch.compile(module.run, fullgraph=True)
        x = torch.randn(64, requires_grad=True)
        compiled(x).sum().backward()
    except Exception as error:  # no C++ toolchain: fall back to the graph-capturing backend
        if "compiler" not in str(error).lower() and "cpp" not in str(error).lower():
            raise
        torch._dynamo.reset()
        compiled = torch.compile(module.run, fullgraph=True, backend="aot_eager")
    original = load_module(FIXTURES / "ctx_alpha_default_and_argument" / "input.py")
    mismatches = compare(original.run, compiled, probe_inputs(torch.float32, non_finite=False))
    assert not mismatches, "\n".join(map(str, mismatches))
