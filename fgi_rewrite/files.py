"""Discover source files, decode them faithfully, and write them back atomically."""

from __future__ import annotations

import io
import os
import tempfile
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

SKIPPED_DIRECTORIES = frozenset(
    {".git", ".hg", ".svn", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache",
     ".tox", ".nox", "build", "dist", "node_modules", ".eggs"}
)


class DecodeError(Exception):
    def __init__(self, message: str, line: int = 1):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class SourceText:
    text: str  # line endings as in the file
    encoding: str  # as tokenize names it; "utf-8-sig" keeps a BOM

    def encode(self, text: str) -> bytes:
        return text.encode(self.encoding)


def decode(data: bytes) -> SourceText:
    """Decode like Python does (BOM, coding cookie), without touching line endings."""
    if b"\x00" in data[:8192]:
        raise DecodeError("binary file (contains NUL bytes)")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as error:
        raise DecodeError(f"bad encoding declaration: {error.msg}", error.lineno or 1) from None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DecodeError(f"cannot decode as {encoding}: {error.reason} at byte {error.start}", line) from None
    except LookupError:
        raise DecodeError(f"unknown encoding {encoding!r}") from None
    if encoding == "utf-8-sig" and text.startswith("\ufeff"):
        text = text[1:]
    return SourceText(text, encoding)


def read_source(path: Path) -> SourceText:
    return decode(path.read_bytes())


def write_atomically(path: Path, data: bytes) -> None:
    """Write next to the file, then rename over it: readers see the old or the new file, never half."""
    mode = path.stat().st_mode & 0o7777
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".fgi-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise


def discover(paths: Iterable[Path]) -> Iterator[Path]:
    """Files given directly, and `*.py` files below directories, in a stable order."""
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            for root, directories, files in os.walk(path):
                directories[:] = sorted(
                    d for d in directories if d not in SKIPPED_DIRECTORIES and not d.endswith(".egg-info")
                )
                for name in sorted(files):
                    if name.endswith(".py"):
                        candidate = Path(root) / name
                        if candidate not in seen:
                            seen.add(candidate)
                            yield candidate
        elif path not in seen:
            seen.add(path)
            yield path


def may_matter(text: str) -> bool:
    """Cheap text prefilter: a file that mentions neither autograd Functions nor `.apply` is skipped."""
    return "Function" in text or ".apply" in text
