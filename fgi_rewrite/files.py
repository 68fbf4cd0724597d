"""Discover source files, decode them faithfully, and write them back atomically."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import signal
import stat
import symtable
import tempfile
import tokenize
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

from .plan import Position, Refusal

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


TEMP_SUFFIX = ".fgi-tmp"


def check_writable(path: Path) -> os.stat_result:
    """Refuse what an editor would refuse: a read-only file (even for root, who could replace
    it), a file we may not write, or something that is not a regular file."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise OSError(errno.EINVAL, "not a regular file")
    if not info.st_mode & 0o222 or not os.access(path, os.W_OK):
        raise PermissionError(errno.EACCES, "file is read-only")
    return info


def write_atomically(path: Path, data: bytes) -> None:
    """Write next to the file, then rename over it: readers see the old or the new file, never
    half, and a run killed at any point leaves the old or the new file (at worst a stray
    `.NAME.*.fgi-tmp` beside it). Mode and, where we may, owner are kept."""
    info = check_writable(path)
    # Ctrl-C is held back while one file is replaced (it arrives right after), so an interrupt
    # can never strike between creating the temporary file and cleaning it up.
    with _sigint_deferred():
        _replace(path, data, info)


@contextlib.contextmanager
def _sigint_deferred():
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _replace(path: Path, data: bytes, info: os.stat_result) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, stat.S_IMODE(info.st_mode))
        if hasattr(os, "chown") and (info.st_uid, info.st_gid) != (os.getuid(), os.getgid()):
            try:
                os.chown(temp, info.st_uid, info.st_gid)
            except OSError:
                pass  # not root: the file becomes ours, as with any editor's safe save
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


_CLASS_HEAD = re.compile(r"class\s+\w+\s*\(")
_FUNCTION_ALIAS = re.compile(r"Function\s+as\s+(\w+)")  # no word boundary: a literal prefix searches fast
_OPEN, _CLOSE = "([{", ")]}"


def _bases(text: str, start: int) -> "str | None":
    """The text of a class's bases, from just after its "(" to the matching ")"; None where a
    string or a comment inside makes a plain scan unsure."""
    depth = 1
    for index in range(start, min(len(text), start + 4000)):
        char = text[index]
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
            if depth == 0:
                return text[start:index]
        elif char in "\"'#\\":
            return None
    return None


def may_matter(text: str) -> bool:
    """Cheap, conservative text prefilter: False only where the rewriter cannot change or report
    anything.

    The rewriter looks at classes whose base resolves, through the module's imports, to
    torch.autograd.Function (or torch.autograd.function.Function): top-level ones are rewritten
    with their calls in the same module, nested ones are reported (FGI114). Such an import
    spells "autograd", and such a base spells "Function" (`torch.autograd.Function`,
    `autograd.Function`, `Function` after a (star) import) or a name bound by
    `... Function as NAME`. So a file matters only if some `class NAME(...)` statement has one
    of those words among its bases (or bases this scan cannot read)."""
    if "Function" not in text or "autograd" not in text:
        return False
    names = {"Function", *_FUNCTION_ALIAS.findall(text)}
    index = text.find("class")
    while index != -1:
        line_start = max(text.rfind("\n", 0, index), text.rfind("\r", 0, index)) + 1  # \r: old Mac files
        if text[line_start:index].strip(" \t\f") == "":  # a class statement, at any depth
            match = _CLASS_HEAD.match(text, index)
            if match is not None:
                bases = _bases(text, match.end())
                if bases is None or any(name in bases for name in names):
                    return True
        index = text.find("class", index + 5)
    return False


def syntax_error(source: str, path: str) -> Optional[Refusal]:
    """CPython's verdict on the syntax, several times faster than a libcst parse (symtable parses
    and builds scopes without the AST objects of ast.parse or the code generation of compile)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            symtable.symtable(source, path, "exec")
    except SyntaxError as error:
        return Refusal("FGI902", f"cannot parse: {error.msg}", Position(path, error.lineno or 1, error.offset or 1))
    except (ValueError, RecursionError, MemoryError) as error:  # e.g. NUL bytes
        return Refusal("FGI902", f"cannot parse: {error}", Position(path, 1, 1))
    return None


def display_path(path: Path) -> str:
    """A path as messages show it: relative to the working directory when it can be."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
