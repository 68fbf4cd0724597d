"""Worker processes of a run (`-j`): started early, shared by the run's phases.

A worker costs its start and the import of libcst and the analysis (about a tenth of a second
each). So a run that will need workers starts them as soon as it knows, while the main process
is still reading and indexing the tree; by the time the first file goes out they are ready.
The job (options, project index) is only known later: it reaches each worker through a file
that the worker reads once per job, not with every file sent (the index is most of a megabyte).
"""

from __future__ import annotations

import gc
import importlib
import os
import pickle
import shutil
import signal
import tempfile
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

# In a worker: the job it last loaded, as (file, job).
_loaded: Optional[tuple[str, Any]] = None


def _start_worker(modules: Sequence[str], collector_thresholds: tuple[int, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    gc.set_threshold(*collector_thresholds)  # as the parent's (a spawned worker starts with the defaults)
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            pass  # the file that needs it reports the failure


def _ready() -> None:
    """Nothing: submitted once per worker to make the pool start them now."""


def _job_from(path: str) -> Any:
    global _loaded
    if _loaded is None or _loaded[0] != path:
        with open(path, "rb") as stream:
            _loaded = (path, pickle.load(stream))
    return _loaded[1]


def _run_in_worker(item: tuple[Callable[[Any, Any], Any], str, Any]) -> Any:
    run, job_file, task = item
    return run(task, _job_from(job_file))


class Workers:
    """`jobs` worker processes that call `run(task, job)` (a module-level function) for the
    tasks given to `map`. Nothing starts until `warm` or the first `map`."""

    def __init__(self, jobs: int, run: Callable[[Any, Any], Any], warm_modules: Sequence[str] = ()):
        self.jobs = jobs
        self.run = run
        self.warm_modules = tuple(warm_modules)
        self.pool: Optional[ProcessPoolExecutor] = None
        self._directory: Optional[str] = None
        self._job_files: list[tuple[Any, str]] = []  # (job, its file): jobs are compared by identity
        self._used = False

    def warm(self) -> None:
        """Start the workers now: they import `warm_modules` while the caller goes on."""
        if self.pool is not None:
            return
        self.pool = ProcessPoolExecutor(max_workers=self.jobs, initializer=_start_worker,
                                        initargs=(self.warm_modules, gc.get_threshold()))
        for _ in range(self.jobs):
            self.pool.submit(_ready)

    def map(self, job: Any, tasks: Iterable[Any], chunksize: int) -> Iterator[Any]:
        """Results in task order."""
        self.warm()
        assert self.pool is not None
        self._used = True
        job_file = self._file_for(job)
        return self.pool.map(_run_in_worker, [(self.run, job_file, task) for task in tasks], chunksize=chunksize)

    def submit(self, job: Any, task: Any) -> "Future[Any]":
        self.warm()
        assert self.pool is not None
        self._used = True
        return self.pool.submit(_run_in_worker, (self.run, self._file_for(job), task))

    def _file_for(self, job: Any) -> str:
        for known, path in self._job_files:
            if known is job:
                return path
        if self._directory is None:
            self._directory = tempfile.mkdtemp(prefix="fgi-rewrite-job-")
        path = os.path.join(self._directory, f"job-{len(self._job_files)}.pickle")
        with open(path, "wb") as stream:
            pickle.dump(job, stream, protocol=pickle.HIGHEST_PROTOCOL)
        self._job_files.append((job, path))
        return path

    def close(self) -> None:
        if not self._used:
            self.abort()  # started but not needed: no reason to wait for their imports
        elif self.pool is not None:
            self.pool.shutdown()
            self.pool = None
        self._remove_files()

    def abort(self) -> None:
        """Stop now (Ctrl-C): workers only compute, they never write files."""
        if self.pool is not None:
            processes = list((getattr(self.pool, "_processes", None) or {}).values())
            self.pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:  # rather than after their current file
                process.terminate()
            self.pool = None
        self._remove_files()

    def _remove_files(self) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
            self._job_files.clear()
