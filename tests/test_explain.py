"""`fgi explain`: listing, step/surrogate description, call sites, JSON; and it needs no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def run_fgi(*args: str, cwd: Path = ROOT, python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`fgi ARGS` in a fresh interpreter; the last stderr line says whether torch got imported."""
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('\\nTORCH_IMPORTED=%s\\n' % ('torch' in sys.modules)))\n"
        "from fgi_rewrite.cli import fgi_group\n"
        "fgi_group(prog_name='fgi')\n"
    )
    return subprocess.run([sys.executable, *python_flags, "-c", script, *args], cwd=cwd, capture_output=True,
                          text=True)


def torch_imported(result: subprocess.CompletedProcess) -> bool:
    marker = [line for line in result.stderr.splitlines() if line.startswith("TORCH_IMPORTED=")]
    assert marker, result.stderr
    return marker[-1] == "TORCH_IMPORTED=True"


def test_explain_fixtures_text_without_torch() -> None:
    result = run_fgi("explain", "fixtures/")
    assert result.returncode == 0, result.stderr
    assert not torch_imported(result)
    out = result.stdout
    # A rewritable Function: step, threshold, dtype, surrogate formula over x, call site and form.
    assert "fixtures/float_gt_gaussian_alias/input.py:8: SpikeFunction: rewritable" in out
    assert "    step:       (x > 0).float()" in out
    assert "fires when x > 0; output dtype: cast .float() -> torch.float32" in out
    assert "h(x) = exp(-(x**2) / (2 * SIGMA**2)) / (sqrt(2 * pi) * SIGMA)" in out
    assert "fixtures/float_gt_gaussian_alias/input.py:29:12  inline  (mem - 0.1)" in out
    # A refused one: code, reason and hint.
    assert "fixtures/refuse_random_backward/input.py:4: Stochastic: refused FGI102" in out
    assert "`torch.rand_like` draws random numbers" in out
    assert "hint:       the surrogate must be a deterministic function of the saved values" in out
    assert out.rstrip().splitlines()[-1].endswith("skipped.")


def test_explain_does_not_import_torch_even_for_torch_heavy_files(tmp_path: Path) -> None:
    """The inventory reads source only; a module that would fail on import is fine."""
    (tmp_path / "m.py").write_text(
        "import torch\nraise SystemExit('imported!')\n\n"
        + (FIXTURES / "type_as_fast_sigmoid" / "input.py").read_text()
    )
    result = run_fgi("explain", str(tmp_path / "m.py"))
    assert result.returncode == 0, result.stderr
    assert "FastSigmoid: rewritable" in result.stdout
    assert not torch_imported(result)


@pytest.mark.parametrize(
    "fixture, expected",
    [
        ("ge_to_x_global_threshold", ["(operand `v` is written x below)", "step:       (x >= THRESHOLD).to(x)",
                                      "fires when x >= THRESHOLD", "h(x) = 1.0 / (1 + 10 * (x - THRESHOLD).abs()) ** 2"]),
        ("threshold_argument", ["forward:    (mem, threshold)", "fires when x > threshold",
                                "18:12  inline  (x, 0.1)", "18:43  inline  (x * 2, 1.0)"]),
        ("straight_through", ["h(x) = 1  (straight-through: h == 1)"]),
        ("where_scalars", ["forward:    (x, threshold=0.5)", "torch.get_default_dtype()",
                           "injected term cast with .to(torch.get_default_dtype())"]),
        ("heaviside_values", ["step:       torch.heaviside(x, torch.tensor(0.5))"]),
        ("function_form_contexts", ["calls:      5", "function (arguments evaluated conditionally or after other effects)"]),
        ("shadowed_name_at_call_site", ["function (shadowed scale)"]),
        ("refuse_keyword_call", ["refused FGI201", "<keyword/starred>"]),
        ("skip_pragma", ["Kept: skipped", "skipped (# fgi: skip)"]),
        ("reference_not_a_call", ["reference (not a call: the Function is kept)", "referenced as `Spike.apply`"]),
        ("setup_context_new_style", ["h(x) = (1.0 - sigmoid(alpha * x)) * sigmoid(alpha * x) * alpha"]),
        ("learnable_alpha_gradient", ["and d out/d alpha = (x - threshold) * sigmoid(alpha * (x - threshold)) * (1 - sigmoid(alpha * (x - threshold)))",
                          "and d out/d threshold = -(alpha * sigmoid(alpha * (x - threshold))"]),
        ("refuse_reduction", ["Reducing: refused FGI103 (backward is not linear in grad_output)"]),
        ("real_snn_leaky_nested_staticmethod_class", ["ATan: refused FGI114"]),
    ],
)
def test_explain_details(fixture: str, expected: list[str]) -> None:
    from fgi_rewrite.explain import inventory_paths, text_report

    text = "\n".join(text_report(inventory_paths([FIXTURES / fixture / "input.py"])))
    for snippet in expected:
        assert snippet in text, f"{snippet!r} not in:\n{text}"


def test_explain_json() -> None:
    result = run_fgi("explain", "--json", "fixtures/ctx_alpha_default_and_argument/input.py",
                     "fixtures/refuse_sign/input.py", "fixtures/straight_through")
    assert result.returncode == 0, result.stderr
    assert not torch_imported(result)
    document = json.loads(result.stdout)
    functions = {f["function"]: f for file in document["files"] for f in file["functions"]}
    atan = functions["ATan"]
    assert atan["status"] == "rewritable"
    assert atan["operand"] == "input_"
    assert atan["parameters"] == [{"name": "input_", "default": None}, {"name": "alpha", "default": "2.0"}]
    assert atan["step"]["code"] == "(x > 0).float()"
    assert atan["step"]["threshold"] == "0"
    assert atan["surrogate"]["formula"] == "alpha / 2 / (1 + (pi / 2 * alpha * x).pow(2))"
    assert atan["surrogate"]["cast"] == ".float()"
    assert [(c["line"], c["column"], c["form"], c["arguments"]) for c in atan["calls"]] == [
        (24, 12, "inline", ["x"]), (24, 28, "inline", ["x", "alpha"])]
    sign = functions["Sign"]
    assert sign["status"] == "refused" and sign["refusal"]["code"] == "FGI101"
    assert "hint" in sign["refusal"] and "calls" in sign
    assert functions["STE"]["surrogate"]["unit"] is True
    # straight_through/expected.py has no Function left: ATan and STE are rewritable, Sign refused.
    assert document["summary"] == {"files": 4, "files_failed": 0, "functions": 3, "rewritable": 2,
                                   "refused": 1, "skipped": 0}


def test_explain_reports_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("class A(torch.autograd.Function:\n")
    (tmp_path / "ok.py").write_text((FIXTURES / "straight_through" / "input.py").read_text())
    result = run_fgi("explain", str(tmp_path), str(tmp_path / "missing.py"))
    assert result.returncode == 123
    assert "FGI902" in result.stdout and "FGI903" in result.stdout
    assert "STE: rewritable" in result.stdout  # the other files are still listed
