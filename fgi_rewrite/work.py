"""The work on one file, the same in the main process and in a worker: read it, decide how
much it needs (nothing, a syntax check, the rewrite), do that, and say what came of it.

A result that depends on other files' text records the questions it asked about them and
their answers (`Outcome.asked`), so that the scheduler can tell whether it still holds once
other files are rewritten.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Optional

from .cache import content_digest
from .files import DecodeError, decode, may_matter, syntax_error
from .plan import FileResult, Position, Refusal
from .analysis.project_index import ProjectIndex, module_name_for, worth_parsing
from .project import references_for

# Cache entries of files that were only read (not syntax-checked) carry this before the digest.
UNCHECKED = "unchecked:"


def rewrite_source(*args: Any, **kwargs: Any) -> FileResult:
    """api.rewrite_source, imported on first use: libcst and the analysis take a tenth of a
    second to import, which a run over files that cannot matter never needs."""
    from .api import rewrite_source as rewrite

    return rewrite(*args, **kwargs)


def failure(path: str, code: str, message: str, line: int = 1) -> FileResult:
    return FileResult(path, "", "", error=Refusal(code, message, Position(path, line, 1)))


@dataclasses.dataclass(frozen=True)
class Job:
    """What every file of a run shares; sent once to each worker."""

    options: dict  # rewrite_source keyword arguments: form, finite_only, remove_unused, black_mode
    root: str
    # The whole-project index (Functions, helpers and re-exports of every module below root);
    # None when no module of the project defines a Function.
    project: Optional[ProjectIndex] = None
    # Files as the rewrite left them: removals are re-decided against these (a second run
    # would see them), so a run is idempotent.
    overrides: Optional[dict] = None
    # False for --check without --diff: nobody sees the new text, so black is not run on it.
    formatted: bool = True


@dataclasses.dataclass(frozen=True)
class Task:
    name: str  # shown in messages
    target: str  # read and written
    expected: Optional[str] = None  # content digest the cache says is clean
    # Syntax-check the file even if it cannot contain a Function: files named on the command
    # line (a pre-commit hook names each staged file), or all with --syntax-check.
    syntax_check: bool = True


@dataclasses.dataclass(frozen=True)
class Outcome:
    result: FileResult  # source/new_source are dropped ("") for unchanged files
    data: Optional[bytes] = None  # the new file content, when changed
    digest: Optional[str] = None
    cacheable: bool = False  # no rewrite, and independent of other files
    checked: bool = True  # parsed or syntax-checked (else the cache vouches only for unchecked runs)
    cached: bool = False  # answered from the cache without decoding or parsing
    # What the result took from other files' text: (name, whether another file mentions it),
    # against the texts the job gave (`Job.overrides` over the files on disk).
    asked: tuple[tuple[str, bool], ...] = ()


def syntax_only(text: str, name: str) -> FileResult:
    """For files that cannot contain a Function: only CPython's syntax check."""
    return FileResult(name, "", "", error=syntax_error(text, name))


class RecordedAnswers:
    """`referenced_elsewhere` for one file: asks `question` once per name and keeps the
    answers, for `Outcome.asked`."""

    def __init__(self, question: Callable[[str], bool]):
        self._question = question
        self._answers: dict[str, bool] = {}

    def __call__(self, name: str) -> bool:
        if name not in self._answers:
            self._answers[name] = self._question(name)
        return self._answers[name]

    @property
    def asked(self) -> tuple[tuple[str, bool], ...]:
        return tuple(self._answers.items())


def cached_outcome(task: Task, digest: str) -> Optional[Outcome]:
    """The outcome of a file the cache vouches for (None: it does not)."""
    if task.expected is not None and (task.expected == digest
                                      or (not task.syntax_check and task.expected == UNCHECKED + digest)):
        return Outcome(FileResult(task.name, "", ""), digest=digest, cached=True)
    return None


def outcome_if_only_read(task: Task, text: str, digest: str, project: Optional[ProjectIndex]) -> Optional[Outcome]:
    """What `process_file` gives a file that is not to be syntax-checked and cannot matter,
    from its text and digest as already read (None: the file needs more than reading)."""
    if task.syntax_check or worth_parsing(text, project):
        return None
    return cached_outcome(task, digest) or Outcome(FileResult(task.name, "", ""), None, digest, cacheable=True,
                                                   checked=False)


def process_file(task: Task, job: Job) -> Outcome:
    name = task.name
    target = Path(task.target)
    try:
        data = target.read_bytes()
    except OSError as error:
        return Outcome(failure(name, "FGI903", f"cannot read: {error.strerror or error}"))
    digest = content_digest(data)
    cached = cached_outcome(task, digest)
    if cached is not None:
        return cached
    try:
        source = decode(data)
    except DecodeError as error:
        return Outcome(failure(name, "FGI901", str(error), error.line))
    # Whether the result depends on the text of other files (then it is never cached). What it
    # takes from the project index is covered by the cache key (the index's fingerprint).
    consulted = False
    checked = True  # parsed or syntax-checked: only then may the cache vouch for the file
    answers = RecordedAnswers(lambda symbol: references_for(Path(job.root)).referenced_outside(
        target, job.overrides)(symbol))

    def referenced_elsewhere(symbol: str) -> bool:
        nonlocal consulted
        consulted = True
        return answers(symbol)

    def assigned_elsewhere(attribute: str) -> bool:
        nonlocal consulted
        consulted = True
        return references_for(Path(job.root)).attribute_assigned_outside(target)(attribute)

    elsewhere = referenced_elsewhere if job.options.get("remove_unused", True) else None

    project = job.project
    module_name, is_package = module_name_for(target) if project is not None else ("", False)
    uses_project = project is not None and worth_parsing(source.text, project) and project.reaches(module_name)
    try:
        if not may_matter(source.text) and not uses_project:
            checked = task.syntax_check
            result = syntax_only(source.text, name) if checked else FileResult(name, "", "")
        elif uses_project:
            assert project is not None
            result = rewrite_source(
                source.text, name, referenced_elsewhere=elsewhere, project=project, module_name=module_name,
                is_package=is_package, attribute_assigned_elsewhere=assigned_elsewhere,
                parsed=project.parsed, formatted=job.formatted, **job.options)
        else:
            result = rewrite_source(source.text, name, referenced_elsewhere=elsewhere, formatted=job.formatted,
                                    parsed=project.parsed if project is not None else None, **job.options)
    except Exception as error:  # a bug in the rewriter must not stop the run
        return Outcome(failure(name, "FGI904", f"fgi-rewrite failed on this file "
                                                f"({type(error).__name__}: {error}); please report it"))
    new_data = None
    if result.changed:
        try:
            new_data = source.encode(result.new_source)
        except UnicodeEncodeError as error:
            return Outcome(failure(name, "FGI901", f"cannot encode the result as {source.encoding}: {error.reason}"))
    else:
        result = dataclasses.replace(result, source="", new_source="")
    # Cached: what depends on this content alone (refusals are replayed from the cache).
    cacheable = result.error is None and not result.changed and not consulted
    return Outcome(result, new_data, digest, cacheable, checked, asked=answers.asked)
