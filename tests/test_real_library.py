"""A run on a real library: snntorch 1.0.0 from PyPI, rewritten as a whole tree.

Skipped (with the reason) only when the release cannot be downloaded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_snntorch_rewrite_parses_and_is_stable(tmp_path: Path) -> None:
    cache = Path("/tmp/fgi-real-libraries")
    cache.mkdir(exist_ok=True)
    if not list(cache.glob("snntorch-1.0.0*")):
        download = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), "snntorch==1.0.0"],
            capture_output=True, text=True,
        )
        if download.returncode != 0:
            pytest.skip(f"snntorch 1.0.0 could not be downloaded: {download.stderr.strip()[-200:]}")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import real_libraries
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    package = real_libraries.fetch("snntorch==1.0.0", cache)
    summary = real_libraries.rewrite_library(package)
    assert summary["failed"] == []
    # The eight closure-factory surrogates of snntorch.surrogate are rewritten inline ...
    assert sum(summary["forms"].values()) >= 8
    assert set(summary["functions"]) >= {"ATan", "FastSigmoid", "Sigmoid", "Triangular"}
    # ... the stochastic one and the user-supplied custom surrogate are refused.
    assert summary["refusals"]["FGI102"] == 1


def test_snntorch_scope_analysis_of_part_of_each_module_answers_as_the_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On snntorch, the rewrite with scope analysis of the statements that matter (what runs)
    and with the whole of every module give the same results, rewrites, refusals and notes."""
    cache = Path("/tmp/fgi-real-libraries")
    if not list(cache.glob("snntorch-1.0.0*")):
        pytest.skip("snntorch 1.0.0 is fetched by test_snntorch_rewrite_parses_and_is_stable")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import real_libraries
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    from fgi_rewrite import transform
    from fgi_rewrite.api import rewrite_tree

    package = real_libraries.fetch("snntorch==1.0.0", cache)
    sources = {path: path.read_text(encoding="utf-8") for path in sorted(package.rglob("*.py"))}

    def outcomes() -> dict:
        return {path: (r.new_source, r.rewrites, r.refusals, r.notes, r.error) for path, r in rewrite_tree(sources).items()}

    part = outcomes()
    monkeypatch.setattr(transform, "_statements_for_scopes", lambda module, words, sites, parents: list(module.body))
    assert outcomes() == part
    assert sum(len(r[1]) for r in part.values()) >= 8
