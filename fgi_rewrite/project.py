"""Which top-level names other files of the project use, so the rewrite never deletes them.

A pre-commit hook passes only the staged files; the project root is found the way black finds
it (the nearest directory with .git, .hg or pyproject.toml above the common parent), and every
Python file below it is searched as text, so a Function imported by a file that was not passed
is kept.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Callable, Iterable, Optional

from .cache import content_digest
from .files import SKIPPED_DIRECTORIES, DecodeError, decode

_ROOT_MARKERS = (".git", ".hg", "pyproject.toml")


def canonical(path: Path) -> Path:
    """Absolute, with symbolic links resolved in the directories but not in the last component
    (a symlinked file keeps its own name; where it points is decided by the caller)."""
    absolute = Path(os.path.abspath(path))
    if absolute.name in ("", ".", ".."):
        return Path(os.path.realpath(absolute))
    return Path(os.path.realpath(absolute.parent)) / absolute.name


def find_project_root(paths: Iterable[Path]) -> Path:
    resolved = [canonical(p) for p in paths]
    if not resolved:
        return Path(os.path.realpath(Path.cwd()))
    common = Path(os.path.commonpath(
        [str(p if p.is_dir() and not p.is_symlink() else p.parent) for p in resolved]
    ))
    for directory in [common, *common.parents]:
        if any((directory / marker).exists() for marker in _ROOT_MARKERS):
            return directory
    return common


def mentions(text: str, name: str) -> bool:
    """Does `text` contain the identifier `name`?"""
    # The substring test runs at memory speed; the regex only confirms the few hits.
    return name in text and re.search(rf"\b{re.escape(name)}\b", text) is not None


def attribute_assigned_outside(own: Path, texts: dict[Path, str]) -> Callable[[str], bool]:
    """`assigned(name)`: does a file other than `own` bind an attribute `name` (`x.name = ...`, or
    `name = ...` indented, as in a class body)?"""

    def assigned(name: str) -> bool:
        pattern = re.compile(rf"(\.\s*{re.escape(name)}|^[ \t]+{re.escape(name)})\s*(:[^=\n]*)?=(?!=)", re.M)
        return any(name in text and pattern.search(text) for other, text in texts.items() if other != own)

    return assigned


class ProjectReferences:
    def __init__(self, root: Path):
        self.root = root.resolve()
        self._texts: Optional[dict[Path, str]] = None
        self._mentioned: dict[str, frozenset[Path]] = {}
        self._digests: dict[Path, str] = {}  # content digest of each file read from disk

    @classmethod
    def of_texts(cls, texts: dict[Path, str]) -> "ProjectReferences":
        """A snapshot of the given texts (keyed by resolved path) instead of the files on disk."""
        references = cls(Path("."))
        references._texts = dict(texts)
        return references

    def _files(self) -> dict[Path, str]:
        if self._texts is None:
            texts: dict[Path, str] = {}
            for directory, subdirectories, files in os.walk(self.root):
                subdirectories[:] = [d for d in subdirectories if d not in SKIPPED_DIRECTORIES]
                for name in files:
                    if name.endswith((".py", ".pyi")):
                        path = Path(directory) / name
                        try:
                            if not stat.S_ISREG(os.stat(path).st_mode):
                                continue  # a FIFO or device would block or never end
                            real = path.resolve()
                            if self.root not in real.parents:
                                continue  # a symlink out of the tree: not followed
                            data = path.read_bytes()
                            texts[real] = decode(data).text
                            self._digests[real] = content_digest(data)
                        except (OSError, DecodeError):
                            continue
            self._texts = texts
        return self._texts

    def text_of(self, path: Path) -> Optional[str]:
        """One file's text as first read (None: not below the root, or unreadable)."""
        return _by_path(self._files(), path)

    def digest_of(self, path: Path) -> Optional[str]:
        """The content digest of a file as first read from disk (None: not read from disk)."""
        self._files()
        return _by_path(self._digests, path)

    def texts(self, overrides: Optional[dict[Path, str]] = None) -> dict[Path, str]:
        """Every Python file below the root (resolved path -> text), with `overrides` applied."""
        return {**self._files(), **(overrides or {})}

    def referenced_outside(self, path: Path, overrides: Optional[dict[Path, str]] = None
                           ) -> Callable[[str], bool]:
        """`referenced(name)`: does any other Python file below the root mention `name`?
        The texts are read once, on the first question (a snapshot); `overrides` replaces some
        of them (the files as a rewrite left them)."""
        own = path.resolve()
        replaced = overrides or {}

        def referenced(name: str) -> bool:
            holders = [p for p in self._holders(name) if p not in replaced]
            holders += [p for p, text in replaced.items() if mentions(text, name)]
            return any(p != own for p in holders)

        return referenced

    def _holders(self, name: str) -> frozenset[Path]:
        """The files (as first read) that mention `name`; each name is searched for once."""
        found = self._mentioned.get(name)
        if found is None:
            found = self._mentioned[name] = frozenset(p for p, text in self._files().items() if mentions(text, name))
        return found

    def attribute_assigned_outside(self, path: Path) -> Callable[[str], bool]:
        """`assigned(name)`: does another file bind an attribute `name` (`x.name = ...`, or
        `name = ...` indented, as in a class body)? Then `self.name(...)` is not rewritten."""
        return attribute_assigned_outside(path.resolve(), self._files())


def _by_path(table: dict[Path, str], path: Path) -> Optional[str]:
    found = table.get(path)  # callers mostly pass real paths already: no system call
    return found if found is not None else table.get(path.resolve())


_BY_ROOT: dict[Path, ProjectReferences] = {}


def references_for(root: Path) -> ProjectReferences:
    """One ProjectReferences per root and process (the CLI's worker processes share nothing)."""
    if root not in _BY_ROOT:
        _BY_ROOT[root] = ProjectReferences(root)
    return _BY_ROOT[root]
