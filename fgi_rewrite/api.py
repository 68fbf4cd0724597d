"""The rewriter as a library: source text in, FileResult out. Needs no torch."""

from __future__ import annotations

import ast
from typing import Callable, Optional

import black
import libcst as cst

from .files import may_matter
from .formatting import format_file, is_black_clean
from libcst.metadata import MetadataWrapper, PositionProvider

from .analysis.functions import analyse_function, find_function_classes
from .analysis.module_index import build_module_index
from .plan import FileResult, Plan, Position, Refusal
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
    inline_constants: bool = False,
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
    options = RewriteOptions(form=form, finite_only=finite_only, remove_unused=remove_unused, black_mode=black_mode,
                             inline_constants=inline_constants)
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


def analyse_source(source: str, path: str = "<string>") -> tuple[list[Plan], list[Refusal]]:
    """Plans and refusals for every autograd Function defined at the top level of a module.

    Raises libcst.ParserSyntaxError for a module that does not parse."""
    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    index = build_module_index(module)

    def position_of(node: cst.CSTNode) -> tuple[int, int]:
        start = positions[node].start
        return start.line, start.column + 1

    plans: list[Plan] = []
    refusals: list[Refusal] = []
    for function in find_function_classes(module, index):
        analysis = analyse_function(function, index, path, position_of)
        (plans if isinstance(analysis, Plan) else refusals).append(analysis)  # type: ignore[arg-type]
    return plans, refusals
