"""Which file is worked on when, and against what view of the other files.

A Function (or alias) that another file calls is kept while that call is there, and the rewrite
of that file may remove the last call. So the files that call are rewritten first, and the
modules that define Functions ("homes") are decided against the callers' rewritten texts: a
second run then finds nothing left to do.

With workers, a home need not wait for the last caller: one that starts early is decided
against the files as they are on disk, and its result records every question it asked about
other files (`Outcome.asked`). Once the callers are done, the answers are asked again against
their rewritten texts; a home whose answers changed is done again (the result of a file
depends on other files only through those answers, so equal answers mean an equal result).
At the end the same test runs against every file's final text: a file that a later rewrite
would decide differently is done again.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Callable, Optional, Protocol

from .analysis.project_index import module_name_for, resolved_path, worth_parsing
from .project import mentions, references_for
from .work import Job, Outcome, Task, outcome_if_only_read, process_file
from .workers import Workers

POOL_MIN_CHECKS = 100  # syntax checks of files that cannot matter: fewer are not worth a pool
_READ_BETWEEN_POLLS = 16  # files the main process reads between looks at the workers


class Progress:
    """`[n/N]` on stderr, only on a terminal and for many files; erased when done."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.enabled = total, 0, enabled
        self._last = 0.0

    def step(self) -> None:
        self.done = min(self.done + 1, self.total)  # a file done again is not counted twice
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= 0.1 or self.done == self.total:
            self._last = now
            sys.stderr.write(f"\rfgi-rewrite: {self.done}/{self.total} files")
            sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def run(tasks: list[Task], job: Job, progress: Progress, workers: Workers) -> list[Outcome]:
    """Outcomes in task order, each consistent with the final text of every other file."""
    homes: set[int] = set()
    project = job.project
    if project is not None and job.options.get("remove_unused", True):
        defined = project.defined_by_module()
        homes = {i for i, task in enumerate(tasks) if defined.get(module_name_for(Path(task.target))[0])}
    heavy = [i for i, task in enumerate(tasks) if _may_be_heavy(task, job)] if workers.jobs > 1 else []
    light_checks = sum(1 for task in tasks if task.syntax_check) - len(heavy)
    paths = [resolved_path(Path(task.target)) for task in tasks]

    def process(i: int, view: Optional[dict[Path, str]], again: bool) -> Outcome:
        outcome = None if again else _already_read(tasks[i], job)
        if outcome is None:
            outcome = process_file(dataclasses.replace(tasks[i], expected=None) if again else tasks[i],
                                   dataclasses.replace(job, overrides=view) if view else job)
        progress.step()
        return outcome

    # A pool pays off for files that get analysed, or for many syntax checks; reading files and
    # a text search is faster than sending them to another process.
    if workers.jobs <= 1 or (len(heavy) < 2 and light_checks < POOL_MIN_CHECKS):
        outcomes, views = in_order(paths, homes, process)
    else:
        outcomes, views = _with_workers(tasks, paths, job, progress, workers, homes, heavy, process)
    return settled(paths, outcomes, views, process, references_for(Path(job.root)))


Views = list[dict[Path, str]]  # per file: the texts of other files its result was decided against
# Work on file i against a view of the others (None: as first read; else these texts over them);
# the flag says it is done again (a result remembered from an earlier run no longer holds).
Process = Callable[[int, Optional[dict[Path, str]], bool], Outcome]


class Snapshot(Protocol):
    """The other files as first read: ProjectReferences (from disk, or from texts given)."""

    def text_of(self, path: Path) -> Optional[str]: ...

    def referenced_outside(self, path: Path, overrides: Optional[dict[Path, str]] = None
                           ) -> Callable[[str], bool]: ...


def in_order(paths: list[Path], homes: set[int], process: Process) -> tuple[list[Outcome], Views]:
    """One file at a time: the callers, then the homes against the callers' new texts."""
    outcomes: list[Optional[Outcome]] = [None] * len(paths)
    views: Views = [{} for _ in paths]
    for i in range(len(paths)):
        if i not in homes:
            outcomes[i] = process(i, None, False)
    first = _rewritten_texts(paths, outcomes)
    for i in sorted(homes):
        outcomes[i] = process(i, first, False)
        views[i] = first
    return outcomes, views  # type: ignore[return-value]


def settled(paths: list[Path], outcomes: list[Outcome], views: Views, process: Process,
            snapshot: Snapshot) -> list[Outcome]:
    """Against every file's final text, each file's answers about the others must hold (a
    second run would see those texts); a file whose answers changed is done again."""
    final = _rewritten_texts(paths, outcomes)  # type: ignore[arg-type]
    return [outcome if holds(outcome, paths[i], snapshot, views[i], final) else process(i, final, True)
            for i, outcome in enumerate(outcomes)]


def holds(outcome: Outcome, own: Path, snapshot: Snapshot, before: dict[Path, str], after: dict[Path, str]) -> bool:
    """Would the file's questions about other files, answered against the texts `before`
    (over the files as first read), get the same answers against `after`? Only a file whose
    text differs between the two can change an answer: the others are not searched again."""
    if not outcome.asked:
        return True

    def text(view: dict[Path, str], path: Path) -> str:
        found = view.get(path)
        return found if found is not None else snapshot.text_of(path) or ""

    changed = [path for path in {*before, *after} if path != own and text(before, path) != text(after, path)]
    for name, answer in outcome.asked:
        if any(mentions(text(before, path), name) != mentions(text(after, path), name) for path in changed):
            if snapshot.referenced_outside(own, after or None)(name) != answer:
                return False
    return True


def _with_workers(tasks: list[Task], paths: list[Path], job: Job, progress: Progress, workers: Workers,
                  homes: set[int], heavy: list[int], process: Process) -> tuple[list[Outcome], Views]:
    # The few files that get the full analysis cost a hundred times the others: they go out
    # first, one at a time, callers before homes, biggest first, so that no worker is left with
    # a queue of them. Syntax checks follow in chunks; files that are only read are read here,
    # meanwhile (sending one to a worker costs more than reading it).
    heavy_set = set(heavy)
    by_size = sorted(heavy, key=lambda i: -_size(tasks[i]))
    queue = deque([i for i in by_size if i not in homes] + [i for i in by_size if i in homes])
    callers_left = {i for i in heavy if i not in homes}
    checked = [i for i in range(len(tasks)) if i not in heavy_set and tasks[i].syntax_check]
    read_here = deque(i for i in range(len(tasks)) if i not in heavy_set and not tasks[i].syntax_check)
    outcomes: list[Optional[Outcome]] = [None] * len(tasks)
    views: Views = [{} for _ in tasks]
    later: Optional[Job] = None if callers_left else job
    speculative: list[int] = []
    running: dict[Future, int] = {}
    checked_results = None
    while queue or running:
        while queue and len(running) <= workers.jobs:  # one waits in line: no worker idles
            i = queue.popleft()
            if i in homes and later is None:
                speculative.append(i)
            elif i in homes:
                views[i] = later.overrides or {}
            running[workers.submit(later if i in homes and later is not None else job, tasks[i])] = i
        if not queue and checked_results is None:
            checked_results = workers.map(job, [tasks[i] for i in checked], max(1, min(32, len(checked) // (workers.jobs * 8))))
        if read_here:
            for _ in range(min(_READ_BETWEEN_POLLS, len(read_here))):
                i = read_here.popleft()
                outcomes[i] = process(i, None, False)
            finished = [future for future in running if future.done()]
        else:
            finished = list(wait(running, return_when=FIRST_COMPLETED).done)
        for future in finished:
            i = running.pop(future)
            outcomes[i] = future.result()
            progress.step()
            callers_left.discard(i)
        if later is None and not callers_left:
            # The callers' texts only, as one file at a time sees them (homes done meanwhile
            # are verified below and settled at the end).
            callers = [outcome if i not in homes else None for i, outcome in enumerate(outcomes)]
            later = dataclasses.replace(job, overrides=_rewritten_texts(paths, callers) or None)
    for i in read_here:
        outcomes[i] = process(i, None, False)
    if checked_results is None:
        checked_results = workers.map(job, [tasks[i] for i in checked], 1)
    for i, outcome in zip(checked, checked_results):
        outcomes[i] = outcome
        progress.step()
    assert later is not None
    # Homes that started before the last caller finished: do again those whose answers changed.
    first = later.overrides or {}
    snapshot = references_for(Path(job.root))
    redo = [i for i in speculative if not holds(outcomes[i], paths[i], snapshot, {}, first)]  # type: ignore[arg-type]
    for i, outcome in zip(redo, workers.map(later, [tasks[i] for i in redo], 1)):
        outcomes[i] = outcome
    for i in speculative:
        views[i] = first  # verified, or done again, against the callers' new texts
    return outcomes, views  # type: ignore[return-value]


def _rewritten_texts(paths: list[Path], outcomes: list[Optional[Outcome]]) -> dict[Path, str]:
    return {path: outcome.result.new_source for path, outcome in zip(paths, outcomes)
            if outcome is not None and outcome.result.changed and outcome.result.error is None}


def _already_read(task: Task, job: Job) -> Optional[Outcome]:
    """A file the first pass read, that is not to be syntax-checked and cannot matter, is not
    read again: its outcome follows from that reading."""
    if task.syntax_check:
        return None
    snapshot = references_for(Path(job.root))
    path = resolved_path(Path(task.target))
    text, digest = snapshot.text_of(path), snapshot.digest_of(path)
    if text is None or digest is None:
        return None
    return outcome_if_only_read(task, text, digest, job.project)


def _may_be_heavy(task: Task, job: Job) -> bool:
    """Whether the file may get more than a syntax check (read from the texts the project
    index already holds; a file it lacks counts as heavy)."""
    text = references_for(Path(job.root)).text_of(resolved_path(Path(task.target)))
    if text is None:
        return True
    return worth_parsing(text, job.project)


def _size(task: Task) -> int:
    try:
        return os.stat(task.target).st_size
    except OSError:
        return 0
