"""The cache of clean files: a second run parses nothing that was clean and has not changed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fgi_rewrite import cli, work

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SPIKE = (FIXTURES / "float_gt_gaussian_alias" / "input.py").read_text()
SPIKE_EXPECTED = (FIXTURES / "float_gt_gaussian_alias" / "expected.py").read_text()
RANDOM = (FIXTURES / "refuse_random_backward" / "input.py").read_text()


@pytest.fixture
def cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("FGI_REWRITE_CACHE_DIR", str(directory))
    return directory


def run_json(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, dict]:
    result = subprocess.run([sys.executable, "-m", "fgi_rewrite", "--check", "--report", "json", *args], cwd=cwd,
                            capture_output=True, text=True)
    return result, json.loads(result.stdout)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "clean_plain.py").write_text("x = 1\n")
    (tmp_path / "clean_rewritten.py").write_text(SPIKE_EXPECTED)
    (tmp_path / "pending.py").write_text(SPIKE.replace("SpikeFunction", "Other").replace("spike", "other"))
    (tmp_path / "refused.py").write_text(RANDOM)
    return tmp_path


def cached(document: dict) -> list[str]:
    return [f["path"] for f in document["files"] if f["cached"]]


def test_second_run_answers_clean_files_from_the_cache(tree: Path, cache_dir: Path) -> None:
    first, document = run_json(".", cwd=tree)
    assert first.returncode == 1
    assert document["summary"]["cache_hits"] == 0
    assert list(cache_dir.glob("cache.*.json"))  # written where FGI_REWRITE_CACHE_DIR says
    second, again = run_json("-v", ".", cwd=tree)
    # not pending.py: a file that would change is always redone
    assert cached(again) == ["clean_plain.py", "clean_rewritten.py", "refused.py"]
    assert again["summary"]["cache_hits"] == 3
    assert "clean_plain.py: unchanged since the last run (cache)" in second.stderr
    assert "3 files unchanged since the last run (cache)." in second.stderr
    # apart from the cached flags the report is the same: refusals are replayed exactly
    for a, b in zip(document["files"], again["files"]):
        assert {**a, "cached": None} == {**b, "cached": None}
    assert again["files"][-1]["refusals"] and again["files"][-1]["refusals"][0]["code"] == "FGI102"
    assert second.returncode == first.returncode
    assert "refused.py:13:30: FGI102" in second.stderr


def test_changed_content_and_other_options_miss(tree: Path, cache_dir: Path) -> None:
    run_json(".", cwd=tree)
    (tree / "clean_plain.py").write_text("x = 2\n")
    _, document = run_json(".", cwd=tree)
    assert cached(document) == ["clean_rewritten.py", "refused.py"]
    _, document = run_json("--form", "function", ".", cwd=tree)
    assert cached(document) == []  # options are part of the key
    _, document = run_json("--no-cache", ".", cwd=tree)
    assert cached(document) == []


def test_no_cache_writes_no_cache(tree: Path, cache_dir: Path) -> None:
    run_json("--no-cache", ".", cwd=tree)
    assert not list(cache_dir.iterdir())


def test_a_file_made_clean_by_the_run_is_checked_once_more(tree: Path, cache_dir: Path) -> None:
    (tree / "refused.py").unlink()
    subprocess.run([sys.executable, "-m", "fgi_rewrite", "."], cwd=tree, check=True, capture_output=True)
    assert (tree / "pending.py").read_text() != SPIKE
    _, document = run_json(".", cwd=tree)
    assert "pending.py" not in cached(document)
    _, document = run_json(".", cwd=tree)
    assert "pending.py" in cached(document)


def test_cached_refusals_are_replayed_under_the_current_name_and_selection(tree: Path, cache_dir: Path) -> None:
    run_json(".", cwd=tree)
    (tree / "sub").mkdir()
    result, document = run_json("--ignore", "FGI102", "refused.py", cwd=tree)
    assert cached(document) == ["refused.py"] and document["files"][0]["refusals"] == []
    result = subprocess.run([sys.executable, "-m", "fgi_rewrite", "--check", "../refused.py"], cwd=tree / "sub",
                            capture_output=True, text=True)
    assert "../refused.py:13:30: FGI102" in result.stderr


def test_cache_hits_are_not_parsed(tree: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process (-j 1): after a first run, neither libcst nor compile() sees a clean file."""
    (tree / "pending.py").unlink()
    (tree / "refused.py").unlink()
    runner = CliRunner()
    monkeypatch.chdir(tree)
    first = runner.invoke(cli.rewrite_command, ["-j", "1", "--check", "."])
    assert first.exit_code == 0, first.output
    parsed: list[str] = []

    def forbidden(text: str, name: str, *args, **kwargs):
        parsed.append(name)
        raise AssertionError(f"{name} was parsed again")

    monkeypatch.setattr(work, "rewrite_source", forbidden)
    monkeypatch.setattr(work, "syntax_only", forbidden)
    monkeypatch.setattr(work, "decode", forbidden)
    second = runner.invoke(cli.rewrite_command, ["-j", "1", "--check", "--report", "json", "."])
    assert second.exit_code == 0, second.output
    assert parsed == []
    assert json.loads(second.stdout)["summary"]["cache_hits"] == 2


def test_unwritable_cache_directory_is_ignored(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tree / "not_a_directory"
    blocker.write_text("")
    monkeypatch.setenv("FGI_REWRITE_CACHE_DIR", str(blocker / "cache"))
    result, document = run_json(".", cwd=tree)
    assert result.returncode == 1 and document["summary"]["cache_hits"] == 0


def test_a_file_only_read_is_still_checked_when_named(tree: Path, cache_dir: Path) -> None:
    """A walked file that cannot matter is read, not parsed, and cached as such; named on the
    command line it must be syntax-checked, so that cache entry does not answer for it."""
    (tree / "broken.py").write_text("def f(:\n    pass\n")
    _, document = run_json(".", cwd=tree)
    assert {f["path"]: f for f in document["files"]}["broken.py"]["error"] is None
    _, document = run_json(".", cwd=tree)
    assert "broken.py" in cached(document)
    result, document = run_json("broken.py", cwd=tree)
    assert result.returncode == 123 and document["files"][0]["error"]["code"] == "FGI902"
    assert cached(document) == []
