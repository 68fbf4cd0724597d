"""Which top-level names other files of the project use, so the rewrite never deletes them.

A pre-commit hook passes only the staged files; the project root is found the way black finds
it (the nearest directory with .git, .hg or pyproject.toml above the common parent), and every
Python file below it is searched as text, so a Function imported by a file that was not passed
is kept.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterable, Optional

from .files import SKIPPED_DIRECTORIES, DecodeError, read_source

_ROOT_MARKERS = (".git", ".hg", "pyproject.toml")


def find_project_root(paths: Iterable[Path]) -> Path:
    resolved = [p.resolve() for p in paths]
    if not resolved:
        return Path.cwd()
    common = Path(os.path.commonpath([str(p if p.is_dir() else p.parent) for p in resolved]))
    for directory in [common, *common.parents]:
        if any((directory / marker).exists() for marker in _ROOT_MARKERS):
            return directory
    return common


class ProjectReferences:
    def __init__(self, root: Path):
        self.root = root
        self._texts: Optional[dict[Path, str]] = None

    @classmethod
    def for_paths(cls, paths: Iterable[Path]) -> "ProjectReferences":
        return cls(find_project_root(list(paths)))

    def _files(self) -> dict[Path, str]:
        if self._texts is None:
            texts: dict[Path, str] = {}
            for directory, subdirectories, files in os.walk(self.root):
                subdirectories[:] = [d for d in subdirectories if d not in SKIPPED_DIRECTORIES]
                for name in files:
                    if name.endswith((".py", ".pyi")):
                        path = Path(directory) / name
                        try:
                            texts[path.resolve()] = read_source(path).text
                        except (OSError, DecodeError):
                            continue
            self._texts = texts
        return self._texts

    def referenced_outside(self, path: Path) -> Callable[[str], bool]:
        own = path.resolve()

        def referenced(name: str) -> bool:
            pattern = re.compile(rf"\b{re.escape(name)}\b")
            return any(pattern.search(text) for other, text in self._files().items() if other != own)

        return referenced
