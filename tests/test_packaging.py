"""The built wheel carries the templates and the rewriter runs from it without torch."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        capture_output=True, text=True,
    )
    if built.returncode != 0:
        pytest.fail(built.stderr)
    (path,) = out.glob("fgi_rewrite-*.whl")
    return path


def test_wheel_contains_templates(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for template in ("fgi.tmpl", "injection_exact.tmpl", "function.tmpl"):
        assert f"fgi_rewrite/templates/{template}" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def test_rewriter_runs_from_installed_wheel_without_torch(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "pyproject.toml").write_text("")
    target = tmp_path / "project" / "model.py"
    target.write_text((ROOT / "fixtures" / "float_gt_gaussian_alias" / "input.py").read_text())
    # Block torch: the rewriter must not import it.
    blocker = tmp_path / "blocker"
    (blocker / "torch").mkdir(parents=True)
    (blocker / "torch" / "__init__.py").write_text("raise ImportError('torch must not be imported')\n")
    env = {"PYTHONPATH": f"{blocker}:{site}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-I", "-c",
         "import sys; sys.path[:0] = sys.argv[1].split(':'); from fgi_rewrite.cli import main; "
         "sys.argv = ['fgi-rewrite', sys.argv[2]]; main()", env["PYTHONPATH"], str(target)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert target.read_text() == (ROOT / "fixtures" / "float_gt_gaussian_alias" / "expected.py").read_text()
    import fgi_rewrite

    assert str(site) not in fgi_rewrite.__file__  # the test ran the wheel, not this checkout
