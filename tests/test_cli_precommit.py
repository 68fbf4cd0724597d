"""The pre-commit hooks, end to end, with `pre-commit try-repo`.

try-repo installs the hook repository at a git commit (the HEAD of the repository given,
plus its tracked modifications). To test what is in this checkout now, including files not
committed yet, the test copies the checkout's files (tracked and untracked, minus what
.gitignore excludes) into a temporary repository and commits them there; so it tests the
working tree, which is the committed state once it is committed.

pre-commit builds the hook environment by pip-installing the project from that commit: this
needs libcst, click and black from the package index (never torch, which is only an optional
extra: see test_hook_environment_needs_no_torch). try-repo builds a fresh environment in a
temporary store on every call, so the round trip takes three builds (about 15 s each with a
warm pip cache). Where the environment cannot be built (no network, no index), the test is
skipped and says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SPIKE = (FIXTURES / "float_gt_gaussian_alias" / "input.py").read_text()
SPIKE_EXPECTED = (FIXTURES / "float_gt_gaussian_alias" / "expected.py").read_text()

PRE_COMMIT = shutil.which("pre-commit", path=str(Path(sys.executable).parent)) or shutil.which("pre-commit")
GIT = shutil.which("git")

pytestmark = pytest.mark.skipif(not (PRE_COMMIT and GIT), reason="needs git and pre-commit")

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def git(*args: str, cwd: Path) -> str:
    return subprocess.run([GIT, *args], cwd=cwd, check=True, capture_output=True, text=True,  # type: ignore[list-item]
                          env={**os.environ, **GIT_IDENTITY}).stdout


def snapshot_of_checkout(destination: Path) -> Path:
    """The checkout's files as one commit of a new repository (read-only on the checkout)."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT).split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the working tree
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    git("init", "-q", cwd=destination)
    git("add", "-A", cwd=destination)
    git("commit", "-q", "-m", "snapshot", cwd=destination)
    return destination


def try_repo(hook_repo: Path, hook: str, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_IDENTITY, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    env.pop("FGI_REWRITE_CACHE_DIR", None)
    env["FGI_REWRITE_CACHE_DIR"] = str(home / "fgi-cache")
    return subprocess.run([PRE_COMMIT, "try-repo", str(hook_repo), hook, "--all-files"],  # type: ignore[list-item]
                          cwd=cwd, capture_output=True, text=True, env=env, timeout=900)


def test_pre_commit_round_trip(tmp_path: Path) -> None:
    hook_repo = snapshot_of_checkout(tmp_path / "hook-repo")
    assert (hook_repo / ".pre-commit-hooks.yaml").is_file()
    home = tmp_path / "pre-commit-home"

    user = tmp_path / "user-repo"
    user.mkdir()
    git("init", "-q", cwd=user)
    (user / "model.py").write_text(SPIKE)
    (user / "build").mkdir()
    (user / "build" / "generated.py").write_text(SPIKE)  # excluded by default: --force-exclude keeps it so
    (user / "notes.txt").write_text("not python\n")
    git("add", "-A", cwd=user)

    # 1. the check-only hook fails, shows the diff, and changes nothing
    check = try_repo(hook_repo, "fgi-rewrite-check", user, home)
    output = check.stdout + check.stderr
    if check.returncode != 1 and ("An unexpected error has occurred" in output or "pip" in output.lower()):
        pytest.skip(f"pre-commit could not build the hook environment (no package index?):\n{output[-2000:]}")
    assert check.returncode == 1, output
    assert "-spike = SpikeFunction.apply" in output
    assert (user / "model.py").read_text() == SPIKE

    # 2. the rewriting hook fails because it modified the file...
    first = try_repo(hook_repo, "fgi-rewrite", user, home)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "files were modified by this hook" in first.stdout
    assert (user / "model.py").read_text() == SPIKE_EXPECTED
    assert (user / "build" / "generated.py").read_text() == SPIKE  # force-excluded

    # 3. ...and passes on the next run, as does the check-only hook
    second = try_repo(hook_repo, "fgi-rewrite", user, home)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Passed" in second.stdout


def test_hook_environment_needs_no_torch() -> None:
    """What pre-commit pip-installs: the project's required dependencies, none of them torch;
    and the command imports no torch (its torch-only subcommands load lazily)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover
        import tomli as tomllib  # type: ignore[no-redef]

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.lower().startswith("torch")]
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys; from fgi_rewrite.cli import main; sys.argv = ['fgi-rewrite', '--check', '-'];\n"
         "try:\n    main()\nexcept SystemExit:\n    pass\n"
         "assert 'torch' not in sys.modules, 'torch was imported'"],
        input="x = 1\n", capture_output=True, text=True,
    )
    assert probe.returncode == 0, probe.stderr
