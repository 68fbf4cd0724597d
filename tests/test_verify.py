"""`fgi verify`: passes on fixtures, catches a wrong FGI form, lists refusals, JSON, exit codes."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import libcst as cst  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from fgi_rewrite import verify  # noqa: E402
from fgi_rewrite.explain import inventory_path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
GAUSSIAN = FIXTURES / "float_gt_gaussian_alias" / "input.py"


def run_fgi(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from fgi_rewrite.cli import fgi_group; fgi_group(prog_name='fgi')", *args],
        cwd=cwd, capture_output=True, text=True,
    )


def test_verify_passes_on_fixture() -> None:
    result = run_fgi("verify", "fixtures/float_gt_gaussian_alias/input.py")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Function", "file:line", "parameters", "max", "forward", "error", "max",
                                "gradient", "error", "verdict"]
    row = next(line for line in lines if line.startswith("SpikeFunction"))
    assert "fixtures/float_gt_gaussian_alias/input.py:8" in row
    assert row.split()[-3:] == ["0", "0", "ok"]
    assert "\x1b[" not in result.stdout  # no colours when stdout is not a terminal
    assert "1 exact, 0 mismatched" in result.stdout


def test_verify_help_says_it_executes_code() -> None:
    result = run_fgi("verify", "--help")
    assert result.returncode == 0
    assert "IMPORTS the modules" in result.stdout and "top-level code" in result.stdout


def test_refused_functions_are_listed_and_do_not_fail() -> None:
    result = run_fgi("verify", "fixtures/refuse_sign/input.py", "fixtures/refuse_random_backward/input.py",
                     "fixtures/skip_pragma/input.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(line.startswith("Sign") and line.rstrip().endswith("refused FGI101") for line in result.stdout.splitlines())
    assert "refused FGI102" in result.stdout
    assert any(line.startswith("Kept") and line.rstrip().endswith("skipped") for line in result.stdout.splitlines())
    assert any(line.startswith("Rewritten") and line.rstrip().endswith("ok") for line in result.stdout.splitlines())


def _broken(mutate):
    real = verify.generated_function

    def generated_function(plan, name, annotations, finite_only=False):
        return real(mutate(plan), name, annotations, finite_only)

    return generated_function


def _with_surrogate(plan, text: str):
    surrogate = dataclasses.replace(plan.surrogate, expression=cst.parse_expression(text))
    return dataclasses.replace(plan, surrogate=surrogate)


def test_verify_catches_a_wrong_surrogate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "generated_function", _broken(lambda p: _with_surrogate(p, "torch.exp(-x * x)")))
    result = CliRunner().invoke(verify.verify_command, [str(GAUSSIAN)])
    assert result.exit_code == 1, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("SpikeFunction"))
    assert row.endswith("MISMATCH")
    forward_error, gradient_error = row.split()[-3:-1]
    assert forward_error == "0" and float(gradient_error) > 0.1
    assert "input gradient: max difference" in result.output


def test_verify_catches_a_wrong_comparison_at_the_threshold_only(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """`>` emitted as `>=` differs only exactly at a threshold read from a call site (0.3)."""
    source = (FIXTURES / "threshold_argument" / "input.py").read_text()
    module = tmp_path / "spikes.py"
    module.write_text(source.replace("ThresholdSpike.apply(x, 0.1)", "ThresholdSpike.apply(x, 0.3)")
                      .replace(" + ThresholdSpike.apply(x * 2, 1.0)", ""))

    def to_ge(plan):
        step = cst.parse_expression(verify.code(plan.step.expression).replace(">", ">="))
        return dataclasses.replace(plan, step=dataclasses.replace(plan.step, expression=step))

    monkeypatch.setattr(verify, "generated_function", _broken(to_ge))
    outcomes = verify.verify_paths([module])
    (outcome,) = outcomes
    assert outcome.status == "mismatch"
    (check,) = outcome.checks
    assert check.configuration.short() == "threshold=0.3"
    assert check.mismatches and all("threshold" in m.case for m in check.mismatches), check.mismatches
    assert check.forward_error == 1.0


def test_verify_catches_a_wrong_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_cast(plan):
        step = cst.parse_expression("x > 0")
        return dataclasses.replace(plan, step=dataclasses.replace(plan.step, expression=step),
                                   surrogate=dataclasses.replace(plan.surrogate, cast=None))

    monkeypatch.setattr(verify, "generated_function", _broken(no_cast))
    (outcome,) = verify.verify_paths([GAUSSIAN])
    assert outcome.status == "mismatch"
    assert any("output 0" in str(m) for c in outcome.checks for m in c.mismatches)


def test_verify_checks_gradients_of_other_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generalised injection: parameters backward gives a gradient are passed as leaf tensors
    that require grad, and their gradients are compared too."""
    learnable = FIXTURES / "learnable_alpha_gradient" / "input.py"
    (outcome,) = verify.verify_paths([learnable])
    assert outcome.status == "ok"
    assert outcome.checks[0].configuration.short() == \
        "alpha=tensor(1.0, requires_grad), threshold=tensor(1.0, requires_grad)"

    def wrong_alpha_gradient(plan):
        extra = tuple((name, cst.parse_expression("2.0 * x") if name == "alpha" else term)
                      for name, term in plan.surrogate.extra_gradients)
        return dataclasses.replace(plan, surrogate=dataclasses.replace(plan.surrogate, extra_gradients=extra))

    monkeypatch.setattr(verify, "generated_function", _broken(wrong_alpha_gradient))
    (outcome,) = verify.verify_paths([learnable])
    assert outcome.status == "mismatch"
    assert any("parameter gradient" in str(m) for c in outcome.checks for m in c.mismatches)
    assert outcome.checks[0].forward_error == 0 and outcome.checks[0].gradient_error > 0.01


def test_json_output() -> None:
    result = run_fgi("verify", "--json", "fixtures/ctx_alpha_default_and_argument/input.py",
                     "fixtures/refuse_affine_backward/input.py")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["exit_code"] == 0
    assert document["summary"] == {"ok": 1, "mismatch": 0, "error": 0, "refused": 1, "skipped": 0}
    atan = next(f for f in document["functions"] if f["function"] == "ATan")
    (check,) = atan["checks"]
    assert check["parameters"] == {"alpha": {"value": 2.0, "tensor": False, "requires_grad": False, "source": "default"}}
    assert check["verdict"] == "ok" and check["max_forward_error"] == 0.0
    assert 0.0 in check["thresholds"]
    affine = next(f for f in document["functions"] if f["function"] == "Affine")
    assert affine["status"] == "refused" and affine["code"] == "FGI103"


def test_parameter_values_from_call_sites_and_fallback(tmp_path: Path) -> None:
    # No default: the literal from the call site.
    report = inventory_path(FIXTURES / "inplace_temporaries" / "input.py")
    (entry,) = report.functions
    (configuration,) = verify.configurations(entry, {})
    assert configuration.describe() == "alpha=4.0 (call at 21:12)"
    # One configuration per distinct literal binding.
    report = inventory_path(FIXTURES / "where_scalars" / "input.py")
    (entry,) = report.functions
    assert [c.describe() for c in verify.configurations(entry, {})] == [
        "threshold=0.5 (default)", "threshold=-0.5 (call at 19:34)"]
    # No default and no literal anywhere: the fallback 1.0, said so in the output.
    module = tmp_path / "nocall.py"
    module.write_text((FIXTURES / "inplace_temporaries" / "input.py").read_text()
                      .replace("return SigmoidSpike.apply(x, 4.0)", "return x"))
    result = CliRunner().invoke(verify.verify_command, [str(module)])
    assert result.exit_code == 0, result.output
    assert "alpha=1.0 (fallback)" in result.output
    # A fallback that forward cannot take as a float (save_for_backward) becomes a tensor.
    result = CliRunner().invoke(verify.verify_command, [str(FIXTURES / "saved_hyperparameter_tensor" / "input.py")])
    assert result.exit_code == 0, result.output
    assert "scale=tensor(1.0) (fallback)" in result.output


def test_module_constant_at_call_site(tmp_path: Path) -> None:
    module = tmp_path / "const.py"
    module.write_text((FIXTURES / "inplace_temporaries" / "input.py").read_text()
                      .replace("import torch\n", "import torch\n\nALPHA = 3.0\n", 1)
                      .replace("SigmoidSpike.apply(x, 4.0)", "SigmoidSpike.apply(x, ALPHA)"))
    (outcome,) = verify.verify_paths([module])
    assert outcome.status == "ok"
    assert outcome.checks[0].configuration.describe() == "alpha=3.0 (module constant ALPHA, call at 23:12)"


def test_import_failure_is_an_error_not_a_pass(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text(GAUSSIAN.read_text() + "\nraise RuntimeError('boom')\n")
    result = run_fgi("verify", str(module))
    assert result.returncode == 123
    assert "RuntimeError: boom" in result.stdout


def test_whole_fixture_tree_verifies() -> None:
    """Every fixture file (inputs, expected outputs, and two copies of one package) is exact."""
    outcomes = verify.verify_paths([FIXTURES])
    bad = [(o.function, o.path, o.status, [str(m) for c in o.checks for m in c.mismatches], o.message)
           for o in outcomes if o.status not in ("ok", "refused", "skipped")]
    assert not bad
    assert verify.exit_code(outcomes) == 0
