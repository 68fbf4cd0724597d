"""Output: the JSON report's schema, GitHub annotations, colour, -q/-v, pragmas, progress."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fgi_rewrite.report import REPORT_SCHEMA

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SPIKE = (FIXTURES / "float_gt_gaussian_alias" / "input.py").read_text()
RANDOM = (FIXTURES / "refuse_random_backward" / "input.py").read_text()
PRAGMA = (FIXTURES / "skip_pragma" / "input.py").read_text()


# Walked files are parsed only if they may hold a Function: this one may, and does not parse.
BROKEN = "def f(:\n    pass\n\n\nclass Spike(torch.autograd.Function):\n    pass\n"


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FGI_REWRITE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("NO_COLOR", raising=False)


def run_cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fgi_rewrite", *args], cwd=cwd, capture_output=True, text=True,
                          env=None if env is None else {**os.environ, **env})


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "spike.py").write_text(SPIKE)
    (tmp_path / "pkg" / "plain.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "refused.py").write_text(RANDOM)
    (tmp_path / "pkg" / "broken.py").write_text(BROKEN)
    (tmp_path / "pkg" / "pragma.py").write_text(PRAGMA)
    return tmp_path


def validate(instance: Any, schema: dict, where: str = "$") -> None:
    """Just enough JSON Schema (type, const, enum, required, properties, items, oneOf, pattern,
    minimum) to hold the report to REPORT_SCHEMA without a dependency."""
    if "oneOf" in schema:
        passing = 0
        for option in schema["oneOf"]:
            try:
                validate(instance, option, where)
                passing += 1
            except AssertionError:
                pass
        assert passing == 1, f"{where}: matches {passing} of oneOf"
        return
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    kind = schema.get("type")
    if kind == "integer":
        assert isinstance(instance, int) and not isinstance(instance, bool), f"{where}: not an integer"
    elif kind is not None:
        assert isinstance(instance, kinds[kind]), f"{where}: not {kind}"
    if "const" in schema:
        assert instance == schema["const"], f"{where}: {instance!r} != {schema['const']!r}"
    if "enum" in schema:
        assert instance in schema["enum"], f"{where}: {instance!r} not in {schema['enum']}"
    if "minimum" in schema:
        assert instance >= schema["minimum"], f"{where}: below minimum"
    if "pattern" in schema:
        assert re.search(schema["pattern"], instance), f"{where}: {instance!r} does not match"
    for key in schema.get("required", []):
        assert key in instance, f"{where}: missing {key}"
    for key, sub in schema.get("properties", {}).items():
        if isinstance(instance, dict) and key in instance:
            validate(instance[key], sub, f"{where}.{key}")
    if "items" in schema:
        for i, item in enumerate(instance):
            validate(item, schema["items"], f"{where}[{i}]")


def test_json_report_schema_and_content(tree: Path) -> None:
    result = run_cli("--check", "--report", "json", "pkg", cwd=tree)
    assert result.returncode == 123  # broken.py
    document = json.loads(result.stdout)
    validate(document, REPORT_SCHEMA)
    assert document["mode"] == "check"
    files = {f["path"]: f for f in document["files"]}
    assert list(files) == sorted(files)
    assert files["pkg/spike.py"]["changed"] is True
    assert files["pkg/spike.py"]["rewrites"] == [{
        "code": "FGI000", "line": 29, "column": 12, "function": "SpikeFunction", "form": "inline",
        "message": "rewrote SpikeFunction call (inline form)",
    }]
    refusal = files["pkg/refused.py"]["refusals"][0]
    assert refusal["code"] == "FGI102" and refusal["line"] == 13 and "random" in refusal["message"]
    assert refusal["hint"] and refusal["subject"]
    assert files["pkg/broken.py"]["error"]["code"] == "FGI902" and files["pkg/broken.py"]["error"]["line"] == 1
    assert files["pkg/plain.py"] == {"path": "pkg/plain.py", "changed": False, "cached": False, "error": None,
                                     "rewrites": [], "refusals": [], "notes": []}
    assert any("skipped Kept (# fgi: skip)" in n for n in files["pkg/pragma.py"]["notes"])
    assert document["summary"] == {
        "files_changed": 2, "files_unchanged": 2, "files_failed": 1, "files_skipped": 0,
        "calls_rewritten": 2, "functions_refused": 1, "cache_hits": 0,
    }


def test_json_report_with_in_place_run_and_usage_errors(tree: Path) -> None:
    (tree / "pkg" / "broken.py").unlink()
    result = run_cli("--report", "json", "pkg", cwd=tree)
    assert result.returncode == 0
    assert json.loads(result.stdout)["mode"] == "write"
    assert run_cli("--report", "json", "--diff", "pkg", cwd=tree).returncode == 2


def test_github_annotations(tree: Path) -> None:
    result = run_cli("--check", "--output-format", "github", "pkg", cwd=tree)
    assert result.returncode == 123
    lines = result.stderr.splitlines()
    assert "::error file=pkg/broken.py,line=1,col=7,title=FGI902::cannot parse: invalid syntax" in lines \
        or any(line.startswith("::error file=pkg/broken.py,line=1,") and "title=FGI902::" in line for line in lines)
    assert any(line.startswith("::error file=pkg/spike.py,line=29,title=fgi-rewrite::1 call site would be rewritten")
               for line in lines)
    assert "::notice file=pkg/spike.py,line=29,col=12,title=FGI000::SpikeFunction call can be rewritten to FGI " \
           "(inline form)" in lines
    warning = next(line for line in lines if line.startswith("::warning file=pkg/refused.py,"))
    assert warning.startswith("::warning file=pkg/refused.py,line=13,col=") and ",title=FGI102::" in warning
    assert "(hint: " in warning
    assert result.stdout == ""


def test_github_escapes_properties_and_data(tmp_path: Path) -> None:
    from fgi_rewrite.plan import FileResult, Position, Refusal
    from fgi_rewrite.report import github_lines

    result = FileResult("a,b:c.py", "", "", error=Refusal("FGI901", "100% bad\nline", Position("a,b:c.py", 2, 3)))
    assert list(github_lines(result)) == ["::error file=a%2Cb%3Ac.py,line=2,col=3,title=FGI901::100%25 bad%0Aline"]


def test_color_off_when_piped_on_with_flag_and_no_color_respected(tree: Path) -> None:
    (tree / "pkg" / "broken.py").unlink()
    assert "\x1b[" not in run_cli("--diff", "pkg/spike.py", cwd=tree).stdout
    colored = run_cli("--diff", "--color", "pkg/spike.py", cwd=tree).stdout
    assert "\x1b[31m-spike = SpikeFunction.apply" in colored and "\x1b[32m+" in colored
    assert "\x1b[" in run_cli("--diff", "--color", "pkg/spike.py", cwd=tree, env={"NO_COLOR": "1"}).stdout
    assert "\x1b[" not in run_cli("--diff", "--no-color", "pkg/spike.py", cwd=tree).stdout


def _on_a_terminal(args: list[str], cwd: Path, env: dict) -> tuple[str, str]:
    """Run with stdout and stderr on pseudo-terminals; return what each received."""
    pty = pytest.importorskip("pty")
    import select

    out_master, out_slave = pty.openpty()
    err_master, err_slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "fgi_rewrite", *args], cwd=cwd, stdout=out_slave,
                               stderr=err_slave, stdin=subprocess.DEVNULL, env={**os.environ, **env})
    os.close(out_slave)
    os.close(err_slave)
    chunks: dict[int, bytes] = {out_master: b"", err_master: b""}
    open_fds = [out_master, err_master]
    while open_fds:
        ready, _, _ = select.select(open_fds, [], [], 60)
        if not ready:
            break
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                open_fds.remove(fd)
            else:
                chunks[fd] += data
    process.wait(timeout=60)
    os.close(out_master)
    os.close(err_master)
    return chunks[out_master].decode(), chunks[err_master].decode()


def test_color_auto_on_a_terminal_unless_no_color(tree: Path) -> None:
    (tree / "pkg" / "broken.py").unlink()
    out, _ = _on_a_terminal(["--diff", "pkg/spike.py"], tree, {})
    assert "\x1b[31m" in out
    out, _ = _on_a_terminal(["--diff", "pkg/spike.py"], tree, {"NO_COLOR": "1"})
    assert "\x1b[" not in out and "-spike = SpikeFunction.apply" in out


def test_progress_on_a_terminal_only(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    for i in range(60):
        (tmp_path / f"m{i:02d}.py").write_text(f"x = {i}\n")
    _, err = _on_a_terminal(["--check", "."], tmp_path, {})
    assert "fgi-rewrite: 60/60 files" in err and "\x1b[K" in err
    piped = run_cli("--check", ".", cwd=tmp_path)
    assert "files\r" not in piped.stderr and "/60" not in piped.stderr


def test_quiet_and_verbose(tree: Path) -> None:
    quiet = run_cli("-q", "--check", "pkg", cwd=tree)
    assert quiet.returncode == 123
    assert quiet.stderr.splitlines() == [line for line in quiet.stderr.splitlines() if line.startswith("error:")]
    assert "FGI902" in quiet.stderr
    normal = run_cli("--check", "pkg", cwd=tree)
    assert "FGI102" in normal.stderr and "# fgi: skip" not in normal.stderr
    assert "would be changed" in normal.stderr
    verbose = run_cli("-v", "--check", "pkg", cwd=tree)
    assert "pkg/pragma.py:4:1: skipped Kept (# fgi: skip)" in verbose.stderr
    assert "pkg/pragma.py:31:9: skipped call of Rewritten (# fgi: skip)" in verbose.stderr
    assert "Identified `" in verbose.stderr


def test_exit_codes(tree: Path) -> None:
    assert run_cli("--check", "pkg", cwd=tree).returncode == 123  # broken.py wins over pending
    (tree / "pkg" / "broken.py").unlink()
    assert run_cli("--check", "pkg", cwd=tree).returncode == 1
    assert run_cli("--diff", "pkg", cwd=tree).returncode == 0
    assert run_cli("--check", "--diff", "pkg", cwd=tree).returncode == 1
    assert run_cli("--form", "nope", "pkg", cwd=tree).returncode == 2
    assert run_cli("missing.py", cwd=tree).returncode == 123
    assert run_cli("pkg", cwd=tree).returncode == 0
    assert run_cli("--check", "pkg", cwd=tree).returncode == 0  # now clean


def test_keep_unused_syntax_check_and_version_flags(tree: Path) -> None:
    (tree / "pkg" / "broken.py").unlink()
    kept = run_cli("--diff", "--keep-unused", "pkg/spike.py", cwd=tree)
    assert "-class SpikeFunction" not in kept.stdout and "-spike = SpikeFunction.apply" not in kept.stdout
    removed = run_cli("--diff", "--remove-unused", "pkg/spike.py", cwd=tree)
    assert "-class SpikeFunction" in removed.stdout
    # files that cannot contain a Function are syntax-checked unless --no-syntax-check
    (tree / "pkg" / "broken.py").write_text("def f(:\n    pass\n")
    assert run_cli("--check", "pkg/broken.py", cwd=tree).returncode == 123
    assert run_cli("--check", "--no-syntax-check", "pkg/broken.py", cwd=tree).returncode == 0
    version = run_cli("--version", cwd=tree)
    assert version.returncode == 0 and version.stdout.startswith("fgi-rewrite, version ")


def test_stdin_with_json_report_and_github_format(tree: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "fgi_rewrite", "--check", "--report", "json", "-"], cwd=tree,
                            input=SPIKE, capture_output=True, text=True)
    assert result.returncode == 1
    document = json.loads(result.stdout)
    validate(document, REPORT_SCHEMA)
    assert document["files"][0]["path"] == "-" and document["files"][0]["changed"] is True
    result = subprocess.run([sys.executable, "-m", "fgi_rewrite", "--check", "--output-format", "github", "-"],
                            cwd=tree, input=RANDOM, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr.startswith("::warning file=-,line=13,")
    assert run_cli("--report", "json", "-", cwd=tree).returncode == 2  # stdout is the source there


def test_syntax_check_policy(tree: Path) -> None:
    """Files found by walking that cannot hold a Function (or a call of one) are read, not
    parsed; files named on the command line are always syntax-checked; --syntax-check checks all."""
    (tree / "pkg" / "broken.py").write_text("def f(:\n    pass\n")
    walked = run_cli("--check", "--report", "json", "pkg", cwd=tree)
    assert walked.returncode == 1  # spike.py is pending; broken.py was not parsed
    assert {f["path"]: f for f in json.loads(walked.stdout)["files"]}["pkg/broken.py"]["error"] is None
    every = run_cli("--check", "--syntax-check", "pkg", cwd=tree)
    assert every.returncode == 123 and "pkg/broken.py:1:" in every.stderr and "FGI902" in every.stderr
    named = run_cli("--check", "pkg/broken.py", "pkg/plain.py", cwd=tree)
    assert named.returncode == 123 and "FGI902" in named.stderr
    assert run_cli("--check", "--no-syntax-check", "pkg/broken.py", cwd=tree).returncode == 0
    (tree / "pyproject.toml").write_text("[tool.fgi-rewrite]\nsyntax_check = true\n")
    assert run_cli("--check", "pkg", cwd=tree).returncode == 123
