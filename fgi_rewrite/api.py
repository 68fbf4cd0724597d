"""The rewriter as a library: source text in, FileResult out. Needs no torch."""

from __future__ import annotations

import ast
from typing import Callable, Optional

import black
import libcst as cst

from .files import may_matter
from .formatting import format_file, is_black_clean
from .plan import FileResult, Position, Refusal
from .transform import RewriteOptions, rewrite_module


def rewrite_source(
    source: str,
    path: str = "<string>",
    *,
    form: str = "inline",
    finite_only: bool = False,
    remove_unused: bool = True,
    referenced_elsewhere: Optional[Callable[[str], bool]] = None,
    black_mode: Optional[black.Mode] = None,
) -> FileResult:
    """Rewrite one module's text. `referenced_elsewhere(name)` says whether other files use a
    top-level name (then it is never removed); without it only this module is considered."""
    if not may_matter(source):
        # Cannot contain a Function or a call of one; CPython's parser still vets the syntax,
        # ~50x faster than a libcst parse.
        try:
            compile(source, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        except SyntaxError as error:
            refusal = Refusal("FGI902", f"cannot parse: {error.msg}", Position(path, error.lineno or 1, error.offset or 1))
            return FileResult(path, source, source, error=refusal)
        except ValueError as error:  # e.g. NUL bytes
            return FileResult(path, source, source, error=Refusal("FGI902", f"cannot parse: {error}", Position(path, 1, 1)))
        return FileResult(path, source, source)
    newline = "\r\n" if "\r\n" in source else "\n"
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        refusal = Refusal("FGI902", f"cannot parse: {error.message}",
                          Position(path, error.raw_line, error.raw_column + 1))
        return FileResult(path, source, source, error=refusal)
    options = RewriteOptions(form=form, finite_only=finite_only, remove_unused=remove_unused, black_mode=black_mode)
    mode = black_mode or black.Mode()
    outcome = rewrite_module(module, path, options, referenced_elsewhere)
    new_source = outcome.module.code
    if new_source != source and is_black_clean(_lf(source), mode):
        # A black-clean file stays black-clean (generated functions need blank lines around them).
        new_source = format_file(_lf(new_source), mode)
        if newline == "\r\n":
            new_source = new_source.replace("\n", "\r\n")
    return FileResult(
        path,
        source,
        new_source,
        rewrites=tuple(outcome.rewrites),
        refusals=tuple(outcome.refusals),
        notes=tuple(outcome.notes),
    )


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n")
