"""Format emitted code with black, without reformatting anything the tool did not write."""

from __future__ import annotations

import black

_MODE = black.Mode()


def is_black_clean(source: str, mode: black.Mode = _MODE) -> bool:
    try:
        return black.format_str(source, mode=mode) == source
    except Exception:  # black cannot parse everything libcst can (and vice versa)
        return False


def format_snippet(code: str, indent_width: int, mode: black.Mode = _MODE) -> str:
    """Format a statement as black would at the given indentation depth."""
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


def format_file(source: str, mode: black.Mode = _MODE) -> str:
    try:
        return black.format_str(source, mode=mode)
    except black.NothingChanged:  # only raised by format_file_contents, but be safe
        return source
    except Exception:
        return source
