"""Command line: `fgi-rewrite PATH...` (black's conventions) and the `fgi` group.

Exit codes: 0 done or nothing to do; 1 `--check` found files that would change;
2 usage or configuration error; 123 some file could not be processed (the others were still
processed); 130 interrupted.
Diffs, `-` output and `--report json` go to stdout; everything else to stderr.

A run has two stages. First every file is read and rewritten in memory, in parallel (`-j`),
against one snapshot of the project (other files are searched for references to names the
rewrite would remove; schedule.py decides the order and re-checks those answers). Then, in
path order, messages are printed and files are replaced, each atomically: a run interrupted at
any point leaves every file either old or new.
"""

from __future__ import annotations

import dataclasses
import hashlib
import difflib
import gc
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Optional

import click

from . import __version__
from .cache import Cache, content_digest
from .config import Config, ConfigError, Selection, compile_regex, load_config, parse_codes, selection_from
from .discovery import DEFAULT_INCLUDE, Finder
from .files import DecodeError, decode, display_path, may_matter, write_atomically
from .plan import FileResult
from .analysis.project_index import ProjectIndex, build_project, module_name_for
from .project import references_for
from .report import Summary, github_lines, text_lines, write_json
from . import schedule
from .schedule import Progress
from .work import UNCHECKED, Job, Outcome, Task, failure, process_file, rewrite_source
from .workers import Workers

EXIT_OK, EXIT_PENDING, EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 123, 130
PROGRESS_MIN_FILES = 50  # show progress on a terminal from this many files


def unified_diff(old: str, new: str, name: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True),
        fromfile=f"a/{name}", tofile=f"b/{name}",
    )
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _colorize(diff: str) -> str:
    colored = []
    for line in diff.splitlines(keepends=True):
        if line.startswith(("+++", "---")):
            colored.append(click.style(line, bold=True))
        elif line.startswith("@@"):
            colored.append(click.style(line, fg="cyan"))
        elif line.startswith("+"):
            colored.append(click.style(line, fg="green"))
        elif line.startswith("-"):
            colored.append(click.style(line, fg="red"))
        else:
            colored.append(line)
    return "".join(colored)


_CODE_IN_NOTE = re.compile(r":\d+:\d+: (FGI\d{3}) ")


def apply_selection(result: FileResult, selection: Selection) -> FileResult:
    """Drop the refusals (and coded notes) that --select/--ignore leave out."""
    refusals = tuple(r for r in result.refusals if selection.enabled(r.code))
    notes = tuple(n for n in result.notes
                  if (m := _CODE_IN_NOTE.search(n)) is None or selection.enabled(m.group(1)))
    if len(refusals) == len(result.refusals) and len(notes) == len(result.notes):
        return result
    return dataclasses.replace(result, refusals=refusals, notes=notes)




# --- the command ----------------------------------------------------------------------------


def _codes_option(values: tuple[str, ...], name: str) -> Optional[list[str]]:
    if not values:
        return None
    try:
        return parse_codes(list(values), name)
    except ConfigError as error:
        raise click.BadParameter(str(error).split(": ", 1)[-1], param_hint=name) from None


def _regex_option(value: Optional[str], name: str):
    if value is None:
        return None
    try:
        return compile_regex(value)
    except re.error as error:
        raise click.BadParameter(f"invalid regular expression: {error}", param_hint=name) from None


def _pick(cli_value: Any, config: Config, key: str, default: Any) -> Any:
    return cli_value if cli_value is not None else config.get(key, default)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, allow_dash=True))
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any file would change.")
@click.option("--diff", "show_diff", is_flag=True, help="Write nothing; print a unified diff to stdout.")
@click.option("--color/--no-color", default=None,
              help="Colour the diff (default: when stdout is a terminal and NO_COLOR is unset or empty).")
@click.option("--form", type=click.Choice(["inline", "function"]), default=None,
              help="inline (default): FGI expressions at each call; function: one generated function per Function.")
@click.option("--finite-only/--no-finite-only", default=None,
              help="Emit the shorter form without nan_to_num: not exact where the spike input is ±inf or NaN.")
@click.option("--inline-constants/--keep-constant-names", default=None,
              help="Write the values of literal module constants the surrogate reads (SIGMA = 0.5) into the "
                   "FGI code, so that it scripts with TorchScript; off (default) keeps the names, exact even "
                   "if other code reassigns the constant.")
@click.option("--keep-unused/--remove-unused", default=None,
              help="Keep Functions and aliases that the rewrite leaves unused (default: remove them "
                   "unless another file of the project mentions them).")
@click.option("--select", multiple=True, metavar="CODES",
              help="Report only refusals whose code starts with one of these (comma-separated or repeated; "
                   "e.g. FGI1, FGI104, ALL). Replaces the configured list.")
@click.option("--ignore", multiple=True, metavar="CODES",
              help="Do not report refusals with these codes or prefixes (the more specific of "
                   "--select/--ignore wins). Replaces the configured list.")
@click.option("--extend-select", multiple=True, metavar="CODES", help="Add to the selected codes.")
@click.option("--extend-ignore", multiple=True, metavar="CODES", help="Add to the ignored codes.")
@click.option("--include", default=None, metavar="REGEX",
              help=f"Files to process below directories [default: {DEFAULT_INCLUDE}].")
@click.option("--exclude", default=None, metavar="REGEX",
              help="Files and directories to leave out below directories; replaces the default exclusions "
                   "and the use of .gitignore (black's rule).")
@click.option("--extend-exclude", default=None, metavar="REGEX", help="Leave out these too, keeping the defaults.")
@click.option("--force-exclude/--no-force-exclude", default=None,
              help="Apply the exclusions to files named on the command line too (for pre-commit).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Read configuration from this TOML file instead of the nearest pyproject.toml.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: number of CPUs].")
@click.option("--cache/--no-cache", "use_cache", default=True,
              help="Skip files that were clean on an earlier run with the same options "
                   "(cache in $FGI_REWRITE_CACHE_DIR or the user cache directory).")
@click.option("--syntax-check/--no-syntax-check", default=None,
              help="Syntax-check every file, also those that cannot contain a Function or a call of one "
                   "(default: only files named on the command line; files found in directories that "
                   "cannot matter are only read, not parsed).")
@click.option("--output-format", type=click.Choice(["text", "github"]), default="text", show_default=True,
              help="github: ::error/::warning/::notice annotations for pending rewrites, refusals, errors.")
@click.option("--report", "report_format", type=click.Choice(["json"]), default=None,
              help="Print a machine-readable report to stdout (schema: docs/ci.md).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.option("-v", "--verbose", is_flag=True,
              help="Also report skipped items (pragmas, exclusions, cache hits) and removals.")
@click.version_option(__version__, prog_name="fgi-rewrite")
def rewrite_command(paths, check, show_diff, color, form, finite_only, inline_constants, keep_unused, select, ignore, extend_select,
                    extend_ignore, include, exclude, extend_exclude, force_exclude, config_path, jobs, use_cache,
                    syntax_check, output_format, report_format, quiet, verbose):
    """Rewrite surrogate-gradient autograd Functions in PATHS into forward gradient injection."""
    stdin = any(str(p) == "-" for p in paths)
    if stdin and len(paths) != 1:
        raise click.UsageError("`-` (stdin) cannot be combined with other paths")
    if report_format == "json" and show_diff:
        raise click.UsageError("--report json and --diff both write to stdout; use one of them")
    if report_format == "json" and stdin and not check:
        raise click.UsageError("with `-`, the rewritten source goes to stdout; --report json needs --check")
    try:
        config = load_config([] if stdin else [p for p in paths], explicit=config_path)
    except ConfigError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(EXIT_USAGE)
    selection = selection_from(
        config,
        _codes_option(select, "--select"), _codes_option(ignore, "--ignore"),
        _codes_option(extend_select, "--extend-select") or [], _codes_option(extend_ignore, "--extend-ignore") or [],
    )
    options = dict(
        form=_pick(form, config, "form", "inline"),
        finite_only=_pick(finite_only, config, "finite_only", False),
        inline_constants=_pick(inline_constants, config, "inline_constants", False),
        remove_unused=not _pick(keep_unused, config, "keep_unused", False),
        black_mode=config.black_mode,
    )
    # None: only files named on the command line are syntax-checked when they cannot matter.
    syntax_check = _pick(syntax_check, config, "syntax_check", None)
    if color is None:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    mode = "diff" if show_diff else "check" if check else "write"
    summary = Summary()

    if not quiet:
        for warning in config.warnings:
            click.echo(f"warning: {warning}", err=True)
    if verbose:
        click.echo(f"Identified `{config.root}` as project root.", err=True)
        if config.path is not None:
            click.echo(f"Using configuration from {config.path}.", err=True)

    def emit(result: FileResult) -> None:
        if quiet and result.error is None:
            return
        lines = github_lines(result, check or show_diff) if output_format == "github" else text_lines(result, verbose)
        for line in lines:
            click.echo(line, err=True)

    def show(diff: str) -> None:
        click.echo(_colorize(diff) if color else diff, nl=False, color=color)

    if not paths:
        if not quiet:
            click.echo("No paths given. Nothing to do.", err=True)
        sys.exit(EXIT_OK)

    if stdin:
        _run_stdin(check, show_diff, show, options, selection, summary, emit, report_format)

    include_re = _regex_option(include, "--include") or compile_regex(config.get("include", DEFAULT_INCLUDE))
    exclude_re = _regex_option(exclude, "--exclude")
    if exclude_re is None and "exclude" in config.values:
        exclude_re = compile_regex(config.get("exclude"))
    extend_re = _regex_option(extend_exclude, "--extend-exclude")
    if extend_re is None and "extend_exclude" in config.values:
        extend_re = compile_regex(config.get("extend_exclude"))
    configured_force = config.get("force_exclude", False)
    force_regex = compile_regex(configured_force) if isinstance(configured_force, str) else None
    finder = Finder(
        config.root, include=include_re, exclude=exclude_re, extend_exclude=extend_re,
        force_exclude=force_exclude if force_exclude is not None else bool(configured_force),
        force_exclude_regex=force_regex,
    )
    found = finder.find(paths)
    for skipped in found.skipped:
        summary.skipped.append((display_path(skipped.path), skipped.reason))
        if (skipped.warn and not quiet) or verbose:
            click.echo(f"{display_path(skipped.path)}: skipped: {skipped.reason}", err=True)
    for path in found.missing:
        result = failure(display_path(path), "FGI903", "no such file or directory")
        summary.add(result)
        emit(result)

    if not found.files:
        if not quiet and not found.missing:
            click.echo("No Python files to process. Nothing to do.", err=True)
        _finish(summary, mode, report_format, quiet, verbose, check)

    jobs = jobs or config.get("jobs") or os.cpu_count() or 1
    _collect_less_often()
    # A worker imports the rewriter when it starts (black too, when the new text is shown or written).
    workers = Workers(jobs, process_file, ["fgi_rewrite.api"] + (["black"] if mode != "check" else []))
    try:
        project = _project_index(config.root, [Path(c.target) for c in found.files], workers, keyed=use_cache)
    except BaseException:
        workers.abort()
        raise
    cache_options = dict(options, syntax_check=syntax_check,
                         project=project.cache_key if project is not None else None)
    cache = Cache.load(cache_options) if use_cache else Cache.disabled()
    tasks = [Task(display_path(c.path), str(c.target), cache.expected(c.target),
                  c.explicit if syntax_check is None else syntax_check) for c in found.files]
    job = Job(options, str(config.root), project, formatted=mode != "check")
    progress = Progress(len(tasks), not quiet and len(tasks) >= PROGRESS_MIN_FILES and sys.stderr.isatty())
    try:
        try:
            outcomes = schedule.run(tasks, job, progress, workers)
        except BaseException:
            workers.abort()
            raise
        finally:
            progress.finish()
            workers.close()
        for task, outcome in zip(tasks, outcomes):
            if outcome.cached:
                result = apply_selection(cache.result(Path(task.target), task.name), selection)
                summary.add(result, cached=True)
                if verbose:
                    click.echo(f"{task.name}: unchanged since the last run (cache)", err=True)
                emit(result)
                continue
            result = apply_selection(outcome.result, selection)
            if result.changed and mode == "write":
                result = _write(task, outcome, result)
            summary.add(result)
            emit(result)
            if result.changed and show_diff:
                show(unified_diff(result.source, result.new_source, result.path))
            if outcome.cacheable and outcome.digest is not None:
                cache.record(Path(task.target), outcome.digest if outcome.checked else UNCHECKED + outcome.digest,
                             outcome.result)
            else:
                cache.forget(Path(task.target))
    except KeyboardInterrupt:
        click.echo("Aborted!", err=True)
        sys.exit(EXIT_INTERRUPTED)
    cache.save()
    _finish(summary, mode, report_format, quiet, verbose, check)


_FUNCTION_WORD = re.compile(r"\bFunction\b")
_STAR_IMPORT = re.compile(r"import\s+\*")


def _may_export(text: str) -> bool:
    """Could the module define or re-export a Function: it spells the word Function or a star
    import (the substring tests first: one expression for both scans every position)."""
    return ("Function" in text and _FUNCTION_WORD.search(text) is not None) or (
        "*" in text and "import" in text and _STAR_IMPORT.search(text) is not None)


def _project_index(root: Path, targets: list[Path], workers: Workers, keyed: bool = True) -> Optional[ProjectIndex]:
    """First pass: the modules below the root that can define or re-export a Function
    (those that spell Function, star imports, package __init__ files), read with `ast`. Any
    other module is read when a resolution of a name needs it (the worker that needs it does).
    When two of the targets may define a Function, the workers start meanwhile. `keyed`: give
    the index its cache key (a run without the cache needs none)."""
    references = references_for(root)
    texts = references.texts()
    if not any(may_matter(text) for text in texts.values()):
        return None  # no Function anywhere: nothing for other files to call
    if workers.jobs > 1 and _at_least(2, (path for path in targets if _may_define(references.text_of(path)))):
        workers.warm()
    relevant = {path: text for path, text in texts.items() if path.name == "__init__.py" or _may_export(text)}
    project = build_project(relevant)
    if not project.candidates:
        return None
    project.learn_renames(texts.values())
    project.modules.paths = {module_name_for(path)[0]: str(path) for path in texts}
    if not keyed:
        return project
    # What the result for a file may take from the index: the fingerprint, and the imports of
    # every file (a re-export through a module read on demand).
    digest = hashlib.sha256(project.fingerprint().encode())
    for path in sorted(texts):
        digest.update("\n".join(_IMPORT_LINES.findall(texts[path])).encode())
    project.cache_key = digest.hexdigest()
    return project


def _collect_less_often() -> None:
    """A libcst tree is hundreds of thousands of small objects and holds no reference cycles:
    the cyclic collector's default pace re-traverses every tree parsed so far, again and again
    (a tenth of the run on the SNN libraries, measured). Cycles are still collected, later."""
    gc.set_threshold(50_000, 20, 100)


def _may_define(text: Optional[str]) -> bool:
    return text is None or may_matter(text)  # None: a file the walk of the root did not read


def _at_least(count: int, items: Iterable) -> bool:
    return count <= 0 or any(number >= count for number, _ in enumerate(items, 1))


_IMPORT_LINES = re.compile(r"^[ \t]*(?:from\s+[\w.]+\s+import\s*\([^)]*\)|(?:from|import)\b[^\n]*)", re.M)


def _write(task: Task, outcome: Outcome, result: FileResult) -> FileResult:
    """Replace the file, unless it changed since it was read (an editor saved it meanwhile)."""
    target = Path(task.target)
    try:
        if content_digest(target.read_bytes()) != outcome.digest:
            return failure(result.path, "FGI903", "changed on disk while fgi-rewrite ran; not written (run again)")
        write_atomically(target, outcome.data)  # type: ignore[arg-type]
    except OSError as error:
        return failure(result.path, "FGI903", f"cannot write: {error.strerror or error}")
    return result


def _finish(summary: Summary, mode: str, report_format: Optional[str], quiet: bool, verbose: bool,
            check: bool) -> None:
    if report_format == "json":
        write_json(summary, sys.stdout, mode)
    if not quiet:
        if verbose and summary.cache_hits:
            hits = summary.cache_hits
            click.echo(f"{hits} file{'s' if hits != 1 else ''} unchanged since the last run (cache).", err=True)
        click.echo(summary.line(mode != "write"), err=True)
    if summary.files_failed:
        sys.exit(EXIT_ERROR)
    if check and summary.files_changed:
        sys.exit(EXIT_PENDING)
    sys.exit(EXIT_OK)


def _run_stdin(check, show_diff, show, options, selection, summary, emit, report_format) -> None:
    data = sys.stdin.buffer.read()
    try:
        source = decode(data)
    except DecodeError as error:
        result = failure("-", "FGI901", str(error), error.line)
        summary.add(result)
        emit(result)
        if report_format == "json":
            write_json(summary, sys.stdout, "check")
        elif not check and not show_diff:
            sys.stdout.buffer.write(data)
        sys.exit(EXIT_ERROR)
    try:
        result = rewrite_source(source.text, "-", **options)
    except Exception as error:
        result = failure("-", "FGI902", f"fgi-rewrite failed ({type(error).__name__}: {error}); please report it")
    result = apply_selection(result, selection)
    summary.add(result)
    emit(result)
    if report_format == "json":
        write_json(summary, sys.stdout, "check")
    elif result.error is not None:
        if not check and not show_diff:
            sys.stdout.buffer.write(data)
    elif show_diff:
        if result.changed:
            show(unified_diff(source.text, result.new_source, "-"))
    elif not check:
        sys.stdout.buffer.write(source.encode(result.new_source))
    if result.error is not None:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_PENDING if check and result.changed else EXIT_OK)


def main() -> None:
    rewrite_command(prog_name="fgi-rewrite")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fgi")
def fgi_group() -> None:
    """fgi: rewrite, verify, explain, plot and benchmark forward gradient injection."""


fgi_group.add_command(rewrite_command, name="rewrite")


def _register_optional_commands() -> None:
    """Commands that need torch are imported lazily so the rewriter works without it."""
    from .lazy import LazyCommand

    for name, target, help_text in [
        ("bench", "fgi_rewrite.bench.commands:bench", "Time backward() vs FGI on the bundled ALIF network."),
        ("train", "fgi_rewrite.bench.commands:train", "Train original and rewritten model side by side."),
        ("verify", "fgi_rewrite.verify:verify_command", "Check numerically that each planned rewrite is exact."),
        ("explain", "fgi_rewrite.explain:explain_command", "List Functions, their step, surrogate and call sites."),
        ("plot", "fgi_rewrite.plot:plot_command", "Plot a Function's step and surrogate gradient."),
    ]:
        fgi_group.add_command(LazyCommand(name, target, help_text))


_register_optional_commands()
