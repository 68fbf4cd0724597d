"""The worker pool of `-j`: started early, each task run against its own job, nothing left behind."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from fgi_rewrite.workers import Workers

ROOT = Path(__file__).resolve().parent.parent


def _echo(task: int, job: dict) -> tuple[int, str, int]:
    return task, job["name"], os.getpid()


def test_each_map_runs_against_its_own_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    workers = Workers(2, _echo)
    first = {"name": "first", "index": "x" * 1_000_000}  # the size of a real project index
    second = {"name": "second"}
    try:
        assert [r[:2] for r in workers.map(first, range(30), 1)] == [(i, "first") for i in range(30)]
        assert [r[:2] for r in workers.map(second, range(30), 4)] == [(i, "second") for i in range(30)]
        assert [r[:2] for r in workers.map(first, range(5), 1)] == [(i, "first") for i in range(5)]
        assert len({r[2] for r in workers.map(second, range(40), 1)} - {os.getpid()}) >= 1
        (directory,) = tmp_path.iterdir()
        assert len(list(directory.iterdir())) == 2  # one file per job, written once
    finally:
        workers.close()
    assert not any(tmp_path.iterdir())


def test_warm_workers_that_get_no_work_stop_at_once() -> None:
    workers = Workers(2, _echo, ["json"])
    workers.warm()
    assert workers.pool is not None
    processes = list(workers.pool._processes.values())  # type: ignore[union-attr]
    assert len(processes) == 2
    start = time.monotonic()
    workers.close()
    deadline = start + 10
    while time.monotonic() < deadline and not all(_gone(process) for process in processes):
        time.sleep(0.05)
    assert all(_gone(process) for process in processes)
    assert time.monotonic() - start < 10


def _gone(process) -> bool:
    """Exited (a zombie counts: whoever reaps it, `is_alive` may not see it reaped)."""
    status = Path(f"/proc/{process.pid}/status")
    if not Path("/proc/self/status").exists():
        return not process.is_alive()
    try:
        return "\tZ" in next(line for line in status.read_text().splitlines() if line.startswith("State:"))
    except FileNotFoundError:
        return True


def test_a_run_with_workers_leaves_no_job_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from fgi_rewrite import cli

    work = tmp_path / "project"
    shutil.copytree(ROOT / "fixtures" / "project_package" / "input", work)
    (work / "pyproject.toml").write_text("")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    monkeypatch.chdir(work)
    job_files: list[str] = []
    file_for = Workers._file_for
    monkeypatch.setattr(Workers, "_file_for", lambda self, job: job_files.append(file_for(self, job)) or job_files[-1])
    result = CliRunner().invoke(cli.rewrite_command, ["--no-cache", "--check", "-j", "2", "."])
    assert result.exit_code == 1, result.output
    assert job_files  # the workers were used
    assert not any(temporary.iterdir())
