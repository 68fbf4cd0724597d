"""The scheduler: modules that define Functions may start before the files that call them are
done; what they decided is checked against the callers' new texts and done again if needed."""

from __future__ import annotations

import importlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from fgi_rewrite import cli, schedule, work

from .test_cli_project import CORE

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "fixtures" / "project_package"


class ThreadWorkers:
    """Workers on threads, as many as there are files: every file is sent out at once, so each
    module defining Functions starts before its callers are done (the case to test)."""

    def __init__(self, jobs: int, run, warm_modules=()):
        self.jobs = 64 if jobs > 1 else 1
        self.pool = ThreadPoolExecutor(1)  # one at a time: the rewriter's caches are per process, not thread-safe
        for module in warm_modules:  # as a worker does when it starts (threads importing at once race)
            importlib.import_module(module)

    def warm(self) -> None:
        pass

    def submit(self, job, task):
        return self.pool.submit(work.process_file, task, job)

    def map(self, job, tasks, chunksize):
        return self.pool.map(lambda task: work.process_file(task, job), list(tasks))

    def close(self) -> None:
        self.pool.shutdown()

    abort = close


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.py"))}


def test_homes_started_early_end_as_if_they_had_waited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work_tree = tmp_path / "project"
    shutil.copytree(PROJECT / "input", work_tree)
    (work_tree / "pyproject.toml").write_text("")
    monkeypatch.chdir(work_tree)
    monkeypatch.setattr(cli, "Workers", ThreadWorkers)
    calls: list[tuple[str, bool]] = []
    process = work.process_file

    def counted(task, job):
        calls.append((Path(task.target).name, job.overrides is not None))
        return process(task, job)

    monkeypatch.setattr(schedule, "process_file", counted)
    monkeypatch.setattr(work, "process_file", counted)
    result = CliRunner().invoke(cli.rewrite_command, ["--no-cache", "-j", "8", "."])
    assert result.exit_code == 0, result.output
    assert _tree(work_tree) == _tree(PROJECT / "expected")
    # Some module was decided against the files on disk, then again against its callers' new texts.
    redone = {name for name, against_new in calls if against_new}
    assert redone and any((name, False) in calls for name in redone)
    again = CliRunner().invoke(cli.rewrite_command, ["--no-cache", "--check", "-j", "8", "."])
    assert again.exit_code == 0, again.output


# A Function class with no alias, to be renamed (`Spike` -> the name wanted).
FUNCTION = CORE.split("\nspike = ")[0].replace("import torch\n", "")


@pytest.mark.parametrize("jobs", ["1", "8"])
def test_a_home_whose_last_caller_is_another_home_is_done_again(tmp_path: Path, jobs: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`a` defines SpikeA and makes the only call of `b`'s SpikeB; `b` was decided against the
    old `a`, so it is done again against the new one: SpikeB goes in the same run."""
    tree = tmp_path / "project"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pyproject.toml").write_text("")
    (tree / "pkg" / "__init__.py").write_text("")
    (tree / "pkg" / "a.py").write_text(
        "import torch\n\nfrom pkg import b\n" + FUNCTION.replace("Spike", "SpikeA")
        + "\n\ndef run(x):\n    return SpikeA.apply(x) + b.SpikeB.apply(x)\n")
    (tree / "pkg" / "b.py").write_text("import torch\n" + FUNCTION.replace("Spike", "SpikeB"))
    monkeypatch.chdir(tree)
    monkeypatch.setattr(cli, "Workers", ThreadWorkers)
    result = CliRunner().invoke(cli.rewrite_command, ["--no-cache", "-j", jobs, "."])
    assert result.exit_code == 0, result.output
    assert "SpikeB" not in (tree / "pkg" / "b.py").read_text()
    assert "SpikeA" not in (tree / "pkg" / "a.py").read_text()
    again = CliRunner().invoke(cli.rewrite_command, ["--no-cache", "--check", "-j", jobs, "."])
    assert again.exit_code == 0, again.output
