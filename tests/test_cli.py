"""The CLI contract (black's conventions), run in subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPIKE = (ROOT / "fixtures" / "float_gt_gaussian_alias" / "input.py").read_text()
SPIKE_EXPECTED = (ROOT / "fixtures" / "float_gt_gaussian_alias" / "expected.py").read_text()


# Walked files are parsed only if they may hold a Function: this one may, and does not parse.
BROKEN = "def f(:\n    pass\n\n\nclass Spike(torch.autograd.Function):\n    pass\n"


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs keep their cache out of the home directory."""
    monkeypatch.setenv("FGI_REWRITE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def run_cli(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fgi_rewrite", *args], cwd=cwd, input=stdin, capture_output=True,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "spike.py").write_text(SPIKE)
    (tmp_path / "pkg" / "plain.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "broken.py").write_text(BROKEN)
    (tmp_path / "pkg" / "refused.py").write_text(
        (ROOT / "fixtures" / "refuse_random_backward" / "input.py").read_text()
    )
    return tmp_path


def test_rewrites_in_place_and_reports_errors(tree: Path) -> None:
    result = run_cli("pkg", cwd=tree)
    assert result.returncode == 123
    stderr = result.stderr.decode()
    assert "pkg/broken.py:1:" in stderr and "FGI902" in stderr
    assert "pkg/refused.py:" in stderr and "FGI102" in stderr
    assert "FGI000 rewrote SpikeFunction" in stderr
    assert "1 file changed" in stderr and "1 file failed" in stderr
    assert result.stdout == b""
    assert (tree / "pkg" / "spike.py").read_text() == SPIKE_EXPECTED  # still processed


def test_check_writes_nothing_and_exits_1(tree: Path) -> None:
    (tree / "pkg" / "broken.py").unlink()
    result = run_cli("--check", "pkg", cwd=tree)
    assert result.returncode == 1
    assert (tree / "pkg" / "spike.py").read_text() == SPIKE
    assert "1 file would be changed" in result.stderr.decode()


def test_check_clean_tree_exits_0(tree: Path) -> None:
    (tree / "pkg" / "broken.py").unlink()
    (tree / "pkg" / "spike.py").write_text(SPIKE_EXPECTED)
    assert run_cli("--check", "pkg", cwd=tree).returncode == 0


def test_diff_goes_to_stdout_and_writes_nothing(tree: Path) -> None:
    (tree / "pkg" / "broken.py").unlink()
    result = run_cli("--diff", "pkg", cwd=tree)
    assert result.returncode == 0
    diff = result.stdout.decode()
    assert diff.startswith("--- a/pkg/spike.py\n+++ b/pkg/spike.py\n")
    assert "-spike = SpikeFunction.apply" in diff
    assert "\x1b[" not in diff  # no colour when not a terminal
    assert (tree / "pkg" / "spike.py").read_text() == SPIKE


def test_stdin_to_stdout(tree: Path) -> None:
    result = run_cli("-", cwd=tree, stdin=SPIKE.encode())
    assert result.returncode == 0
    assert result.stdout.decode() == SPIKE_EXPECTED


def test_stdin_check(tree: Path) -> None:
    assert run_cli("--check", "-", cwd=tree, stdin=SPIKE.encode()).returncode == 1
    assert run_cli("--check", "-", cwd=tree, stdin=SPIKE_EXPECTED.encode()).returncode == 0


def test_nothing_to_do_is_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert run_cli("empty", cwd=tmp_path).returncode == 0
    assert run_cli(cwd=tmp_path).returncode == 0


def test_undecodable_file_is_named(tree: Path) -> None:
    (tree / "pkg" / "broken.py").unlink()
    (tree / "pkg" / "bad_bytes.py").write_bytes(b"x = '\xff\xfe'\n")
    result = run_cli("pkg", cwd=tree)
    assert result.returncode == 123
    assert "pkg/bad_bytes.py:1:" in result.stderr.decode() and "FGI901" in result.stderr.decode()
    assert (tree / "pkg" / "spike.py").read_text() == SPIKE_EXPECTED


def test_line_endings_and_encoding_survive(tmp_path: Path) -> None:
    fixture = ROOT / "fixtures" / "crlf_and_latin1"
    target = tmp_path / "m.py"
    target.write_bytes((fixture / "input.py").read_bytes())
    assert run_cli("m.py", cwd=tmp_path).returncode == 0
    assert target.read_bytes() == (fixture / "expected.py").read_bytes()
    assert b"\r\n" in target.read_bytes() and b"\n" not in target.read_bytes().replace(b"\r\n", b"")


def test_file_mode_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_text(SPIKE)
    target.chmod(0o640)
    assert run_cli("m.py", cwd=tmp_path).returncode == 0
    assert target.stat().st_mode & 0o777 == 0o640
    assert not list(tmp_path.glob(".m.py.*"))  # no temporary file left behind


def test_public_function_imported_elsewhere_is_kept(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "spike.py").write_text(SPIKE)
    (tmp_path / "user.py").write_text("from spike import SpikeFunction\n")
    assert run_cli("spike.py", cwd=tmp_path).returncode == 0
    text = (tmp_path / "spike.py").read_text()
    assert "class SpikeFunction" in text and "spike(" not in text.split("def run")[1]


def test_fgi_group_rewrite_is_the_same_command(tree: Path) -> None:
    (tree / "pkg" / "broken.py").unlink()
    result = subprocess.run(
        [sys.executable, "-c", "from fgi_rewrite.cli import fgi_group; fgi_group()", "rewrite", "--check", "pkg"],
        cwd=tree, capture_output=True,
    )
    assert result.returncode == 1


def test_inline_constants_flag_and_config(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_text(SPIKE)
    def added(diff: str) -> str:
        return "".join(line for line in diff.splitlines(keepends=True) if line.startswith("+"))

    keep = run_cli("--no-cache", "--diff", "m.py", cwd=tmp_path).stdout.decode()
    assert "SIGMA**2" in added(keep)
    inline = run_cli("--no-cache", "--diff", "--inline-constants", "m.py", cwd=tmp_path).stdout.decode()
    assert "SIGMA**2" not in added(inline) and "0.5**2" in added(inline)
    (tmp_path / "pyproject.toml").write_text("[tool.fgi-rewrite]\ninline-constants = true\n")
    configured = run_cli("--no-cache", "--diff", "m.py", cwd=tmp_path).stdout.decode()
    assert configured == inline
