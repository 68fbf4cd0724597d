"""File discovery: .gitignore, --exclude/--extend-exclude/--include, --force-exclude, symlinks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPIKE = (ROOT / "fixtures" / "float_gt_gaussian_alias" / "input.py").read_text()
SPIKE_EXPECTED = (ROOT / "fixtures" / "float_gt_gaussian_alias" / "expected.py").read_text()


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FGI_REWRITE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fgi_rewrite", *args], cwd=cwd, capture_output=True, text=True)


def processed(*args: str, cwd: Path) -> list[str]:
    """The files a --check run looks at, from its JSON report."""
    result = run_cli("--check", "--report", "json", *args, cwd=cwd)
    assert result.returncode in (0, 1), result.stderr
    return [f["path"] for f in json.loads(result.stdout)["files"]]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    for name in ["src/a.py", "src/b.py", "src/gen/g.py", "src/notes.txt", "build/x.py", ".venv/lib/v.py",
                 "src/sub/ignored_here.py", "src/sub/kept.py", "src/local.py"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SPIKE if path.suffix == ".py" else "text\n")
    (tmp_path / ".gitignore").write_text("src/gen/\n")
    (tmp_path / "src" / "sub" / ".gitignore").write_text("ignored_here.py\n")
    (tmp_path / ".git" / "info").mkdir()
    (tmp_path / ".git" / "info" / "exclude").write_text("local.py\n")
    return tmp_path


def test_walk_honours_gitignore_and_default_excludes(repo: Path) -> None:
    assert processed(".", cwd=repo) == ["src/a.py", "src/b.py", "src/sub/kept.py"]


def test_exclude_replaces_defaults_and_gitignore_like_black(repo: Path) -> None:
    assert processed("--exclude", r"/b\.py", ".", cwd=repo) == [
        ".venv/lib/v.py", "build/x.py", "src/a.py", "src/gen/g.py", "src/local.py",
        "src/sub/ignored_here.py", "src/sub/kept.py",
    ]
    # an empty --exclude excludes nothing
    assert len(processed("--exclude", "", ".", cwd=repo)) == 8


def test_extend_exclude_keeps_defaults(repo: Path) -> None:
    assert processed("--extend-exclude", "/sub/", ".", cwd=repo) == ["src/a.py", "src/b.py"]


def test_include(repo: Path) -> None:
    assert processed("--include", r"/a\.py$", ".", cwd=repo) == ["src/a.py"]


def test_explicit_files_are_processed_unless_force_exclude(repo: Path) -> None:
    """pre-commit names every staged file: --force-exclude makes the exclusions apply to them."""
    names = ["src/a.py", "src/gen/g.py", "build/x.py", "src/sub/ignored_here.py"]
    assert processed(*names, cwd=repo) == sorted(names)
    assert processed("--force-exclude", *names, cwd=repo) == ["src/a.py"]
    assert processed("--force-exclude", "--extend-exclude", "a\\.py", *names, cwd=repo) == []


def test_force_exclude_from_config(repo: Path) -> None:
    (repo / "pyproject.toml").write_text("[tool.fgi-rewrite]\nforce-exclude = true\nextend-exclude = '/b\\.py'\n")
    assert processed("src/a.py", "src/b.py", "build/x.py", cwd=repo) == ["src/a.py"]
    assert processed("--no-force-exclude", "src/b.py", cwd=repo) == ["src/b.py"]
    # a regex, as black's force-exclude
    (repo / "pyproject.toml").write_text("[tool.fgi-rewrite]\nforce-exclude = '/a\\.py'\n")
    assert processed("src/a.py", "src/b.py", cwd=repo) == ["src/b.py"]


def test_everything_excluded_is_not_an_error(repo: Path) -> None:
    result = run_cli("--force-exclude", "build/x.py", cwd=repo)
    assert result.returncode == 0
    assert "Nothing to do" in result.stderr
    assert (repo / "build" / "x.py").read_text() == SPIKE
    result = run_cli("-v", "--force-exclude", "build/x.py", cwd=repo)
    assert "build/x.py: skipped: ignored: matches the default exclusions" in result.stderr


def test_verbose_names_exclusions(repo: Path) -> None:
    result = run_cli("-v", "--check", ".", cwd=repo)
    assert "src/gen: skipped: ignored: matches a .gitignore" in result.stderr
    assert "src/sub/ignored_here.py: skipped: ignored: matches a .gitignore" in result.stderr
    assert "build: skipped" in result.stderr
    quiet = run_cli("--check", ".", cwd=repo)
    assert "skipped" not in quiet.stderr


def test_symlink_outside_the_tree_is_reported_and_not_followed(tmp_path: Path) -> None:
    project, outside = tmp_path / "project", tmp_path / "outside"
    (project / ".git").mkdir(parents=True)
    outside.mkdir()
    (outside / "theirs.py").write_text(SPIKE)
    (outside / "dir").mkdir()
    (outside / "dir" / "deep.py").write_text(SPIKE)
    (project / "mine.py").write_text(SPIKE)
    (project / "link.py").symlink_to(outside / "theirs.py")
    (project / "linkdir").symlink_to(outside / "dir")
    result = run_cli(".", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "link.py: skipped: symbolic link to" in result.stderr and "outside the project root" in result.stderr
    assert "linkdir: skipped: symbolic link to" in result.stderr
    assert (outside / "theirs.py").read_text() == SPIKE  # never written through the link
    assert (outside / "dir" / "deep.py").read_text() == SPIKE
    assert (project / "mine.py").read_text() == SPIKE_EXPECTED
    assert (project / "link.py").is_symlink()
    # named explicitly: the same
    result = run_cli("link.py", cwd=project)
    assert result.returncode == 0 and "outside the project root" in result.stderr
    assert (outside / "theirs.py").read_text() == SPIKE


def test_symlink_inside_the_tree_is_processed_once_and_stays_a_link(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "real.py").write_text(SPIKE)
    (tmp_path / "alias.py").symlink_to("real.py")
    result = run_cli("--check", "--report", "json", ".", cwd=tmp_path)
    assert [f["path"] for f in json.loads(result.stdout)["files"]] == ["alias.py"]  # sorted, once
    assert run_cli(".", cwd=tmp_path).returncode == 0
    assert (tmp_path / "alias.py").is_symlink()
    assert (tmp_path / "real.py").read_text() == SPIKE_EXPECTED


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_skipped_not_read(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    os.mkfifo(tmp_path / "pipe.py")
    (tmp_path / "ok.py").write_text("x = 1\n")
    result = subprocess.run([sys.executable, "-m", "fgi_rewrite", "."], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    assert "pipe.py: skipped: not a regular file" in result.stderr


def test_output_is_sorted_and_the_same_with_any_jobs(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    for i in range(12):
        (tmp_path / f"m{(i * 7) % 12:02d}.py").write_text(SPIKE if i % 3 == 0 else f"x = {i}\n")
    one = run_cli("--no-cache", "--check", "--report", "json", "-j", "1", ".", cwd=tmp_path)
    two = run_cli("--no-cache", "--check", "--report", "json", "-j", "2", ".", cwd=tmp_path)
    assert one.stdout == two.stdout and one.stderr == two.stderr
    paths = [f["path"] for f in json.loads(one.stdout)["files"]]
    assert paths == sorted(paths) and len(paths) == 12
