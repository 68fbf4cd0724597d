"""The CLI rewrites a tree as one project (the same result as `api.rewrite_tree`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "fixtures" / "project_package"


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.py"))}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fgi_rewrite", "--no-cache", *args], cwd=cwd,
                          capture_output=True, text=True)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_cli_matches_the_expected_tree_and_is_idempotent(tmp_path: Path, jobs: str) -> None:
    work = tmp_path / "project"
    shutil.copytree(PROJECT / "input", work)
    (work / "pyproject.toml").write_text("")
    first = _cli("-j", jobs, ".", cwd=work)
    assert first.returncode == 0, first.stderr
    assert _tree(work) == _tree(PROJECT / "expected")
    again = _cli("-j", jobs, "--check", ".", cwd=work)
    assert again.returncode == 0, again.stderr


def test_a_subset_of_files_uses_the_whole_project(tmp_path: Path) -> None:
    """pre-commit passes only staged files: the Functions they call live in files not passed."""
    work = tmp_path / "project"
    shutil.copytree(PROJECT / "input", work)
    (work / "pyproject.toml").write_text("")
    result = _cli("snn/models.py", cwd=work)
    assert result.returncode == 0, result.stderr
    assert (work / "snn" / "models.py").read_text() == (PROJECT / "expected" / "snn" / "models.py").read_text()
    assert (work / "snn" / "surrogate.py").read_text() == (PROJECT / "input" / "snn" / "surrogate.py").read_text()


CORE = '''import torch


class Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / (1.0 + x.abs()) ** 2


spike = Spike.apply
'''


def test_names_reached_through_modules_the_first_pass_does_not_read(tmp_path: Path) -> None:
    """A re-export through a plain module (no Function in it, not a package __init__) is
    followed on demand, and a Function imported under another name is still found."""
    work = tmp_path / "project"
    (work / "pkg").mkdir(parents=True)
    (work / "pyproject.toml").write_text("")
    (work / "pkg" / "__init__.py").write_text("from .api import fire\n")
    (work / "pkg" / "api.py").write_text("from .core import spike as fire\n")
    (work / "pkg" / "core.py").write_text(CORE)
    (work / "main.py").write_text("import torch\nfrom pkg import fire\n\n\ndef run(x):\n    return fire(x)\n")
    (work / "other.py").write_text(
        "import torch\nfrom pkg.core import Spike as Renamed\n\n\ndef run(x):\n    return Renamed.apply(x)\n")
    result = _cli("--diff", "-j", "1", ".", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "-    return fire(x)" in result.stdout and "-    return Renamed.apply(x)" in result.stdout
    assert "+    return (x > 0).float() + (" in result.stdout
    written = _cli("-j", "2", ".", cwd=work)
    assert written.returncode == 0, written.stderr
    assert "class Spike" in (work / "pkg" / "core.py").read_text()  # still imported by name elsewhere
    assert _cli("--check", "-j", "2", ".", cwd=work).returncode == 0


def test_a_tree_without_functions_never_imports_libcst_or_black(tmp_path: Path) -> None:
    """Start-up is most of such a run: the parser and the formatter are imported on first use."""
    (tmp_path / "plain.py").write_text("x = 1\n")
    (tmp_path / "pyproject.toml").write_text("")
    probe = ("import sys\nfrom fgi_rewrite.cli import main\nsys.argv = ['fgi-rewrite', '--check', '.']\n"
             "try:\n    main()\nexcept SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
             "assert 'libcst' not in sys.modules and 'black' not in sys.modules, "
             "[m for m in ('libcst', 'black') if m in sys.modules]\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
