"""Configuration: [tool.fgi-rewrite] and [tool.black] of the nearest pyproject.toml, flags override."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import black
import pytest

from fgi_rewrite.config import ConfigError, Selection, load_config, parse_codes

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SPIKE = (FIXTURES / "float_gt_gaussian_alias" / "input.py").read_text()
SPIKE_EXPECTED = (FIXTURES / "float_gt_gaussian_alias" / "expected.py").read_text()
RANDOM = (FIXTURES / "refuse_random_backward" / "input.py").read_text()  # FGI102
UNKNOWN = (FIXTURES / "refuse_unknown_call" / "input.py").read_text()  # FGI104
KEYWORD = (FIXTURES / "refuse_keyword_call" / "input.py").read_text()  # FGI201


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FGI_REWRITE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fgi_rewrite", *args], cwd=cwd, capture_output=True, text=True)


def report(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, dict]:
    result = run_cli("--check", "--report", "json", *args, cwd=cwd)
    return result, json.loads(result.stdout)


def codes(document: dict) -> list[str]:
    return sorted(r["code"] for f in document["files"] for r in f["refusals"])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "spike.py").write_text(SPIKE)
    (tmp_path / "pkg" / "refused_random.py").write_text(RANDOM)
    (tmp_path / "pkg" / "refused_unknown.py").write_text(UNKNOWN)
    (tmp_path / "pkg" / "refused_keyword.py").write_text(KEYWORD)
    return tmp_path


def test_form_and_finite_only_from_pyproject_and_flags_override(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.fgi-rewrite]\nform = "function"\nfinite-only = true\n')
    result = run_cli("--diff", "pkg/spike.py", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "def _fgi_spike_function(" in result.stdout  # function form from the config
    assert "nan_to_num" not in result.stdout  # finite-only from the config
    result = run_cli("--diff", "--form", "inline", "--no-finite-only", "pkg/spike.py", cwd=project)
    assert "def _fgi_" not in result.stdout and "nan_to_num" in result.stdout


def test_config_found_from_the_common_parent_of_the_paths(project: Path) -> None:
    """Like black: the nearest directory with .git/.hg/pyproject.toml above the common parent."""
    (project / "pyproject.toml").write_text('[tool.fgi-rewrite]\nform = "function"\n')
    sub = project / "pkg"
    result = run_cli("-v", "--diff", "spike.py", cwd=sub)
    assert "def _fgi_spike_function(" in result.stdout
    assert f"Using configuration from {project / 'pyproject.toml'}" in result.stderr
    # a nearer pyproject.toml wins
    (sub / "pyproject.toml").write_text("[tool.fgi-rewrite]\n")
    assert "def _fgi_" not in run_cli("--diff", "spike.py", cwd=sub).stdout
    # --config names a file explicitly
    other = project / "other.toml"
    other.write_text('[tool.fgi-rewrite]\nform = "function"\n')
    assert "def _fgi_" in run_cli("--diff", "--config", str(other), "spike.py", cwd=sub).stdout


def test_select_and_ignore_from_config_and_flags(project: Path) -> None:
    _, document = report("pkg", cwd=project)
    assert codes(document) == ["FGI102", "FGI104", "FGI201"]
    (project / "pyproject.toml").write_text('[tool.fgi-rewrite]\nignore = ["FGI104"]\n')
    _, document = report("pkg", cwd=project)
    assert codes(document) == ["FGI102", "FGI201"]
    assert document["summary"]["functions_refused"] == 1  # only FGI1xx count as refused Functions
    # --ignore replaces the configured list
    _, document = report("--ignore", "FGI2", "pkg", cwd=project)
    assert codes(document) == ["FGI102", "FGI104"]
    # --extend-ignore adds to it; prefix match
    _, document = report("--extend-ignore", "FGI10", "pkg", cwd=project)
    assert codes(document) == ["FGI201"]
    # --select: prefixes, comma-separated or repeated
    _, document = report("--select", "FGI2", "--ignore", "", "pkg", cwd=project)
    assert codes(document) == ["FGI201"]
    _, document = report("--select", "FGI102,FGI201", "--ignore", "", "pkg", cwd=project)
    assert codes(document) == ["FGI102", "FGI201"]
    # the more specific prefix wins
    _, document = report("--select", "FGI104", "--ignore", "FGI1", "pkg", cwd=project)
    assert codes(document) == ["FGI104"]


def test_selection_filters_text_output_too(project: Path) -> None:
    result = run_cli("--check", "--ignore", "FGI104", "pkg", cwd=project)
    assert "FGI102" in result.stderr and "FGI104" not in result.stderr


def test_unknown_code_is_a_usage_error(project: Path) -> None:
    result = run_cli("--select", "XYZ1", "pkg", cwd=project)
    assert result.returncode == 2 and "XYZ1" in result.stderr
    (project / "pyproject.toml").write_text('[tool.fgi-rewrite]\nignore = ["FGI77"]\n')
    result = run_cli("pkg", cwd=project)
    assert result.returncode == 2 and "FGI77" in result.stderr and "pyproject.toml" in result.stderr
    assert (project / "pkg" / "spike.py").read_text() == SPIKE  # nothing was done


@pytest.mark.parametrize(
    "table, message",
    [
        ('form = "loop"', "form"),
        ("finite-only = 1", "finite-only"),
        ('exclude = "("', "exclude"),
        ("jobs = 0", "jobs"),
        ("[[broken", "invalid TOML"),
    ],
)
def test_bad_configuration_exits_2_and_names_the_key(project: Path, table: str, message: str) -> None:
    (project / "pyproject.toml").write_text(f"[tool.fgi-rewrite]\n{table}\n")
    result = run_cli("pkg", cwd=project)
    assert result.returncode == 2
    assert message in result.stderr
    assert (project / "pkg" / "spike.py").read_text() == SPIKE


def test_unknown_key_warns_and_continues(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.fgi-rewrite]\nmystery-option = true\n")
    result = run_cli("--check", "pkg/spike.py", cwd=project)
    assert result.returncode == 1
    assert "unknown key 'mystery-option'" in result.stderr


def test_black_line_length_from_pyproject(tmp_path: Path) -> None:
    """The fixture is black-clean at line-length 120 but not at 88: with [tool.black]
    line-length = 120 the whole file stays black-clean (at 120); without it only the new
    statements are formatted and the 91-character line is kept as it was."""
    (tmp_path / ".git").mkdir()
    target = tmp_path / "spike.py"
    target.write_text(SPIKE)
    assert run_cli("spike.py", cwd=tmp_path).returncode == 0
    assert target.read_text() == SPIKE_EXPECTED
    long_line = next(line for line in SPIKE.splitlines() if len(line) > 88)
    target.write_text(SPIKE + "\n\nKEEP = " + long_line.split("=", 1)[1].strip() + "\n")
    (tmp_path / "pyproject.toml").write_text("[tool.black]\nline-length = 120\n")
    mode = black.Mode(line_length=120)
    assert black.format_str(target.read_text(), mode=mode) == target.read_text()  # clean at 120
    assert run_cli("spike.py", cwd=tmp_path).returncode == 0
    out = target.read_text()
    assert out != SPIKE and black.format_str(out, mode=mode) == out


# --- unit level --------------------------------------------------------------------------------


def test_selection_rules() -> None:
    everything = Selection()
    assert everything.enabled("FGI104") and everything.enabled("FGI201")
    assert not Selection(["FGI1"]).enabled("FGI201")
    assert not Selection(ignore=["FGI10"]).enabled("FGI104")
    assert Selection(["FGI104"], ["FGI1"]).enabled("FGI104")  # more specific select wins
    assert not Selection(["FGI1"], ["FGI104"]).enabled("FGI104")
    assert not Selection(["FGI104"], ["FGI104"]).enabled("FGI104")  # a tie: ignored
    assert Selection(["FGI1"], ["ALL"]).enabled("FGI902")  # errors are always reported


def test_parse_codes() -> None:
    assert parse_codes("fgi1, FGI201", "x") == ["FGI1", "FGI201"]
    assert parse_codes(["ALL"], "x") == ["ALL"]
    with pytest.raises(ConfigError):
        parse_codes(["E501"], "x")
    with pytest.raises(ConfigError):
        parse_codes(3, "x")


def test_load_config_reads_black_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.black]\nline-length = 100\nskip-string-normalization = true\ntarget-version = ['py310']\n"
        "[tool.fgi-rewrite]\nextend_exclude = 'gen/'\nforce-exclude = true\n"
    )
    (tmp_path / "a").mkdir()
    config = load_config([tmp_path / "a"])
    assert config.root == tmp_path.resolve()
    assert config.black_mode is not None
    assert config.black_mode.line_length == 100 and not config.black_mode.string_normalization
    assert config.black_mode.target_versions == {black.TargetVersion.PY310}
    assert config.values == {"extend_exclude": "gen/", "force_exclude": True}
    assert load_config([tmp_path / "nowhere"]).root == tmp_path.resolve()
