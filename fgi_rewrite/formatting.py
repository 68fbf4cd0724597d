"""Format emitted code with black, without reformatting anything the tool did not write.

black is imported on first use: a run that formats nothing (`--check`, or no file to rewrite)
does not pay for importing it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    import black


def is_black_clean(source: str, mode: Optional["black.Mode"] = None) -> bool:
    import black

    try:
        return black.format_str(source, mode=mode or black.Mode()) == source
    except Exception:  # black cannot parse everything libcst can (and vice versa)
        return False


def format_snippet(code: str, indent_width: int, mode: Optional["black.Mode"] = None) -> str:
    """Format a statement as black would at the given indentation depth."""
    import black

    mode = mode or black.Mode()
    narrower = black.Mode(
        line_length=max(40, mode.line_length - indent_width),
        string_normalization=mode.string_normalization,
        magic_trailing_comma=mode.magic_trailing_comma,
        target_versions=mode.target_versions,
    )
    try:
        return black.format_str(code, mode=narrower)
    except Exception:
        return code


def format_file(source: str, mode: Optional["black.Mode"] = None) -> str:
    import black

    try:
        return black.format_str(source, mode=mode or black.Mode())
    except black.NothingChanged:  # only raised by format_file_contents, but be safe
        return source
    except Exception:
        return source
