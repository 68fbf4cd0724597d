"""`fgi plot`: writes a PNG of the step and the surrogate gradient, original and FGI overlaid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from click.testing import CliRunner  # noqa: E402

from fgi_rewrite.plot import parse_params, parse_range, parse_target, plot_command  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plot_writes_png_in_a_subprocess(tmp_path: Path) -> None:
    output = tmp_path / "gaussian.png"
    result = subprocess.run(
        [sys.executable, "-c", "from fgi_rewrite.cli import fgi_group; fgi_group(prog_name='fgi')",
         "plot", "fixtures/float_gt_gaussian_alias/input.py::SpikeFunction", "-o", str(output),
         "--range", "-3,3"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert result.returncode == 0, result.stderr
    assert output.stat().st_size > 10_000
    width, height = _png_size(output)
    assert width > 600 and height > 600
    assert "max |original - FGI|: value 0, gradient 0" in result.stdout


def test_plot_with_parameter(tmp_path: Path) -> None:
    output = tmp_path / "atan.png"
    result = CliRunner().invoke(plot_command, [
        f"{FIXTURES / 'ctx_alpha_default_and_argument' / 'input.py'}::ATan", "-o", str(output),
        "--range=-2,2", "--param", "alpha=3.0", "--points", "301", "--dtype", "float64"])
    assert result.exit_code == 0, result.output
    assert output.stat().st_size > 0 and _png_size(output)[0] > 0


def test_plot_refused_function_draws_original_only(tmp_path: Path) -> None:
    output = tmp_path / "sign.png"
    result = CliRunner().invoke(plot_command, [f"{FIXTURES / 'refuse_sign' / 'input.py'}::Sign", "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert output.stat().st_size > 0
    assert "max |original - FGI|" not in result.output


def test_plot_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    spike = FIXTURES / "setup_context_new_style" / "input.py"
    result = runner.invoke(plot_command, [f"{spike}::Missing", "-o", str(tmp_path / "x.png")])
    assert result.exit_code != 0 and "no autograd Function named Missing (found: NewStyle)" in result.output
    result = runner.invoke(plot_command, [f"{spike}::NewStyle", "-o", str(tmp_path / "x.png"), "--param", "beta=1"])
    assert result.exit_code != 0 and "has no parameter beta" in result.output
    result = runner.invoke(plot_command, [str(spike), "-o", str(tmp_path / "x.png")])
    assert result.exit_code != 0 and "PATH::FunctionName" in result.output
    assert not (tmp_path / "x.png").exists()


def test_argument_parsing() -> None:
    assert parse_target("a/b.py::Spike") == (Path("a/b.py"), "Spike")
    assert parse_target("C:\\x\\m.py::Spike") == (Path("C:\\x\\m.py"), "Spike")
    assert parse_range("-3,3") == (-3.0, 3.0)
    assert parse_range(" -0.5 , 2 ") == (-0.5, 2.0)
    assert parse_params(["alpha=2.0", "beta = 3"]) == {"alpha": 2.0, "beta": 3}
    import click

    for bad in ("3,-3", "1", "a,b", "0,inf"):
        with pytest.raises(click.BadParameter):
            parse_range(bad)
    with pytest.raises(click.BadParameter):
        parse_params(["alpha"])
    with pytest.raises(click.BadParameter):
        parse_params(["alpha=torch.ones(3)"])
