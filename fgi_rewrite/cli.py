"""Command line: `fgi-rewrite PATH...` (black's conventions) and the `fgi` group.

Exit codes: 0 done or nothing to do; 1 `--check` found files that would change;
123 some file could not be processed (the others were still processed).
Diffs and `-` output go to stdout; everything else to stderr.
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path
from typing import Optional

import click

from . import __version__
from .api import rewrite_source
from .files import DecodeError, decode, discover, read_source, write_atomically
from .plan import FileResult, Position, Refusal
from .project import ProjectReferences
from .report import Summary, github_lines, text_lines, write_json

EXIT_OK, EXIT_PENDING, EXIT_ERROR = 0, 1, 123


def _relative(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


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


def _failure(path: str, code: str, message: str, line: int = 1) -> FileResult:
    return FileResult(path, "", "", error=Refusal(code, message, Position(path, line, 1)))


def process_path(path: Path, project: Optional[ProjectReferences], **options) -> tuple[FileResult, Optional[object]]:
    name = _relative(path)
    try:
        source = read_source(path)
    except DecodeError as error:
        return _failure(name, "FGI901", str(error), error.line), None
    except OSError as error:
        return _failure(name, "FGI903", f"cannot read: {error.strerror or error}"), None
    elsewhere = project.referenced_outside(path) if project is not None else None
    result = rewrite_source(source.text, name, referenced_elsewhere=elsewhere, **options)
    return result, source


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, allow_dash=True))
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any file would change.")
@click.option("--diff", "show_diff", is_flag=True, help="Write nothing; print a unified diff to stdout.")
@click.option("--color/--no-color", default=None, help="Colour the diff (default: when stdout is a terminal and NO_COLOR is unset).")
@click.option("--form", type=click.Choice(["inline", "function"]), default="inline", show_default=True,
              help="inline: FGI expressions at each call; function: one generated function per Function.")
@click.option("--finite-only", is_flag=True,
              help="Emit the shorter form without nan_to_num: not exact where the spike input is ±inf or NaN.")
@click.option("--keep-unused", is_flag=True, help="Keep Functions and aliases that the rewrite leaves unused.")
@click.option("--output-format", type=click.Choice(["text", "github"]), default="text", show_default=True,
              help="github: ::warning/::notice annotations for refusals and rewrites.")
@click.option("--report", "report_format", type=click.Choice(["json"]), default=None,
              help="Print a machine-readable report to stdout (with --check or in-place runs).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.option("-v", "--verbose", is_flag=True, help="Also report skipped items and removals.")
@click.version_option(__version__, prog_name="fgi-rewrite")
def rewrite_command(paths, check, show_diff, color, form, finite_only, keep_unused, output_format,
                    report_format, quiet, verbose):
    """Rewrite surrogate-gradient autograd Functions in PATHS into forward gradient injection."""
    options = dict(form=form, finite_only=finite_only, remove_unused=not keep_unused)
    if color is None:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    summary = Summary()
    if not paths:
        if not quiet:
            click.echo("No paths given. Nothing to do.", err=True)
        sys.exit(EXIT_OK)

    def emit(result: FileResult) -> None:
        if quiet and result.error is None:
            return
        lines = github_lines(result) if output_format == "github" else text_lines(result, verbose)
        for line in lines:
            click.echo(line, err=True)

    if any(str(p) == "-" for p in paths):
        if len(paths) != 1:
            raise click.UsageError("`-` (stdin) cannot be combined with other paths")
        data = sys.stdin.buffer.read()
        try:
            source = decode(data)
        except DecodeError as error:
            result = _failure("-", "FGI901", str(error), error.line)
            summary.add(result)
            emit(result)
            sys.exit(EXIT_ERROR)
        result = rewrite_source(source.text, "-", **options)
        summary.add(result)
        emit(result)
        if result.error is not None:
            sys.stdout.buffer.write(data)
            sys.exit(EXIT_ERROR)
        if show_diff:
            click.echo(unified_diff(source.text, result.new_source, "-"), nl=False, color=color)
        elif not check:
            sys.stdout.buffer.write(source.encode(result.new_source))
        sys.exit(EXIT_PENDING if check and result.changed else EXIT_OK)

    missing = [p for p in paths if not p.exists()]
    for path in missing:
        result = _failure(_relative(path), "FGI903", "no such file or directory")
        summary.add(result)
        emit(result)
    files = list(discover(p for p in paths if p.exists()))
    project = ProjectReferences.for_paths(files) if not keep_unused else None
    for path in files:
        result, source = process_path(path, project, **options)
        summary.add(result)
        emit(result)
        if result.error is not None or not result.changed:
            continue
        if show_diff:
            text = unified_diff(result.source, result.new_source, result.path)
            click.echo(_colorize(text) if color else text, nl=False, color=color)
        elif not check:
            try:
                write_atomically(path, source.encode(result.new_source))  # type: ignore[union-attr]
            except OSError as error:
                failed = _failure(result.path, "FGI903", f"cannot write: {error.strerror or error}")
                summary.files_changed -= 1
                summary.add(failed)
                emit(failed)
    if report_format == "json":
        write_json(summary, sys.stdout)
    if not quiet:
        click.echo(summary.line(check or show_diff), err=True)
    if summary.files_failed:
        sys.exit(EXIT_ERROR)
    if check and summary.files_changed:
        sys.exit(EXIT_PENDING)
    sys.exit(EXIT_OK)


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
