"""Fixture projects: whole-tree rewrites (golden trees, idempotence) and their numerics."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from fgi_rewrite.api import rewrite_tree

from .conftest import FIXTURES

PROJECTS = sorted(p for p in FIXTURES.iterdir() if (p / "input").is_dir())


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.py"))}


def _rewrite_copy(source: Path, target: Path):
    shutil.copytree(source, target)
    cwd = os.getcwd()
    os.chdir(target)
    try:
        results = rewrite_tree({p: p.read_text() for p in sorted(Path(".").rglob("*.py"))})
        for path, result in results.items():
            path.write_text(result.new_source)
    finally:
        os.chdir(cwd)
    return results


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_project_matches_expected_tree(project: Path, tmp_path: Path) -> None:
    results = _rewrite_copy(project / "input", tmp_path / "out")
    assert _tree(tmp_path / "out") == _tree(project / "expected")
    codes = sorted(r.code for result in results.values() for r in result.refusals)
    assert codes == (project / "codes.txt").read_text().split()


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_project_second_run_changes_nothing(project: Path, tmp_path: Path) -> None:
    _rewrite_copy(project / "expected", tmp_path / "again")
    assert _tree(tmp_path / "again") == _tree(project / "expected")


def _import_tree(root: Path, packages: list[str]):
    for name in list(sys.modules):
        if name.split(".")[0] in packages or name == "main":
            del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        import main  # type: ignore[import-not-found]

        return main
    finally:
        sys.path.remove(str(root))


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_project_numerics(project: Path, dtype: str) -> None:
    torch = pytest.importorskip("torch")
    from fgi_rewrite.equivalence import probe_inputs

    packages = [p.name for p in (project / "input").iterdir() if p.is_dir()]
    original = _import_tree(project / "input", packages)
    rewritten = _import_tree(project / "expected", packages)
    assert original is not rewritten
    for case, x in probe_inputs(getattr(torch, dtype), shape=(4, 6), non_finite=False):
        outputs, gradients = [], []
        for main in (original, rewritten):
            model = main.build(x.dtype)
            leaf = x.clone().requires_grad_(True)
            out = model(leaf)
            torch.manual_seed(1)
            (out * torch.randn_like(out)).sum().backward()
            outputs.append(out.detach())
            gradients.append([leaf.grad] + [p.grad for p in model.parameters()])
        assert outputs[0].dtype == outputs[1].dtype
        assert torch.equal(outputs[0], outputs[1]), case
        for a, b in zip(*gradients):
            assert (a is None) == (b is None), case
            if a is not None:
                tolerance = 1e-5 if dtype == "float32" else 1e-10
                assert torch.allclose(a, b, rtol=tolerance, atol=tolerance), case
