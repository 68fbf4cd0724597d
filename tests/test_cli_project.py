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
