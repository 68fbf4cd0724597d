"""Which files a run processes: black's rules for include/exclude, .gitignore, force-exclude.

Paths are matched as black matches them: the path relative to the project root, with a
leading "/" and, for directories, a trailing "/" (e.g. "/pkg/build/" or "/pkg/mod.py").

- Directories are walked in sorted order; `include` selects files, `exclude` (default: VCS,
  virtual environment, cache and build directories) and `extend_exclude` prune files and
  directories. Unless `exclude` was set, `.gitignore` files (the root's, every walked
  directory's, and `.git/info/exclude`) prune too. A path is ignored if any of them ignores it
  (negations do not cross files).
- Files named explicitly are always processed, unless `force_exclude` is on: then the same
  exclusions (and black's `--force-exclude` regex, if one is given) apply to them too.
- Symbolic links are never followed out of the project root: such a link is reported and
  skipped. A link to a file inside the root is processed once, under the target's identity (the
  write goes to the target; the link stays a link). Links to directories are not followed.
- Things that are not regular files (FIFOs, devices) are reported and skipped.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from .project import canonical

DEFAULT_INCLUDE = r"\.py$"
DEFAULT_EXCLUDE = (
    r"/(\.direnv|\.eggs|\.git|\.hg|\.ipynb_checkpoints|\.mypy_cache|\.nox|\.pytest_cache|\.ruff_cache"
    r"|\.tox|\.svn|\.venv|\.vscode|__pypackages__|__pycache__|_build|buck-out|build|dist|venv"
    r"|node_modules|[^/]+\.egg-info)/"
)


@dataclass(frozen=True)
class Candidate:
    path: Path  # as reached from the argument given (for messages)
    target: Path  # the file to read and to write (a symlink's target)
    explicit: bool = False  # named on the command line (not found by walking a directory)


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str
    warn: bool  # shown without --verbose (something the user probably wants to know)


@dataclass
class Discovery:
    files: list[Candidate] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)


def matches(pattern: Optional["re.Pattern[str]"], text: str) -> bool:
    """Like black: an empty match is no match, so `--exclude ''` excludes nothing."""
    if pattern is None:
        return False
    match = pattern.search(text)
    return bool(match and match.group(0))


def _gitignore_spec(lines: list[str]):
    import pathspec

    factory = getattr(pathspec, "GitIgnoreSpec", None)
    if factory is not None:
        return factory.from_lines(lines)
    return pathspec.PathSpec.from_lines("gitwildmatch", lines)  # pragma: no cover - pathspec < 0.10


class Finder:
    def __init__(
        self,
        root: Path,
        *,
        include: "re.Pattern[str]",
        exclude: Optional["re.Pattern[str]"],  # None: the default, plus .gitignore
        extend_exclude: Optional["re.Pattern[str]"] = None,
        force_exclude: bool = False,
        force_exclude_regex: Optional["re.Pattern[str]"] = None,
    ):
        self.root = Path(os.path.realpath(root))
        self.include = include
        self.use_gitignore = exclude is None
        self.exclude = exclude if exclude is not None else re.compile(DEFAULT_EXCLUDE)
        self.extend_exclude = extend_exclude
        self.force_exclude = force_exclude or force_exclude_regex is not None
        self.force_exclude_regex = force_exclude_regex
        self._gitignores: dict[Path, object] = {}

    # -- matching ---------------------------------------------------------------------------

    def _relative(self, real: Path, is_dir: bool) -> str:
        try:
            relative = "/" + real.relative_to(self.root).as_posix()
        except ValueError:
            relative = real.as_posix()
        if relative == "/.":
            relative = "/"
        return relative + "/" if is_dir and not relative.endswith("/") else relative

    def _gitignore(self, directory: Path):
        if directory not in self._gitignores:
            lines: list[str] = []
            for source in [directory / ".gitignore"] + ([directory / ".git" / "info" / "exclude"]
                                                         if directory == self.root else []):
                try:
                    lines += source.read_text(encoding="utf-8", errors="replace").splitlines()
                except OSError:
                    pass
            self._gitignores[directory] = _gitignore_spec(lines) if lines else None
        return self._gitignores[directory]

    def _gitignored(self, real: Path, is_dir: bool) -> bool:
        try:
            relative = real.relative_to(self.root)
        except ValueError:
            return False
        parents = [self.root] + [self.root.joinpath(*relative.parts[:i]) for i in range(1, len(relative.parts))]
        for directory in parents:
            spec = self._gitignore(directory)
            if spec is None:
                continue
            below = real.relative_to(directory).as_posix() + ("/" if is_dir else "")
            if spec.match_file(below):
                return True
        return False

    def excluded(self, real: Path, is_dir: bool, explicit: bool = False) -> Optional[str]:
        """Why `real` is excluded, or None. Explicit paths only answer under force_exclude."""
        if explicit and not self.force_exclude:
            return None
        relative = self._relative(real, is_dir)
        if matches(self.force_exclude_regex, relative):
            return "matches --force-exclude"
        if matches(self.exclude, relative):
            return "matches --exclude" if not self.use_gitignore else "matches the default exclusions"
        if matches(self.extend_exclude, relative):
            return "matches --extend-exclude"
        if self.use_gitignore and self._gitignored(real, is_dir):
            return "matches a .gitignore"
        return None

    def _inside_root(self, real_target: Path) -> bool:
        return real_target == self.root or self.root in real_target.parents

    # -- walking ----------------------------------------------------------------------------

    def find(self, paths: Iterable[Path]) -> Discovery:
        found = Discovery()
        seen: set[Path] = set()

        def add(path: Path, real: Path, resolved: bool = False, explicit: bool = False) -> None:
            target = real if resolved else Path(os.path.realpath(real))
            if target not in seen:
                seen.add(target)
                found.files.append(Candidate(path, target, explicit))

        for path in paths:
            real = canonical(path)
            if not os.path.lexists(real):
                found.missing.append(path)
                continue
            if real.is_symlink():
                target = Path(os.path.realpath(real))
                if not self._inside_root(target):
                    found.skipped.append(Skipped(path, f"symbolic link to {target}, outside the project root "
                                                       f"{self.root}; not followed", True))
                    continue
                if not target.exists():
                    found.skipped.append(Skipped(path, "broken symbolic link", True))
                    continue
            is_dir = real.is_dir()
            reason = self.excluded(real, is_dir, explicit=True)
            if reason is not None:
                found.skipped.append(Skipped(path, f"ignored: {reason}", False))
                continue
            if is_dir:
                self._walk(path, Path(os.path.realpath(real)), found, add)
            elif real.is_file():
                add(path, real, explicit=True)
            else:
                found.skipped.append(Skipped(path, "not a regular file", True))
        found.files.sort(key=lambda c: _sort_key(c.path))
        return found

    def _walk(self, path: Path, real: Path, found: Discovery, add) -> None:
        try:
            entries = sorted(os.scandir(real), key=lambda e: e.name)
        except OSError as error:
            found.skipped.append(Skipped(path, f"cannot list directory: {error.strerror or error}", True))
            return
        for entry in entries:
            child, child_real = path / entry.name, real / entry.name
            try:
                if entry.is_symlink():
                    self._symlink(child, child_real, found, add)
                    continue
                is_dir = entry.is_dir(follow_symlinks=False)
                if not is_dir and not matches(self.include, self._relative(child_real, False)):
                    continue
                reason = self.excluded(child_real, is_dir)
                if reason is not None:
                    found.skipped.append(Skipped(child, f"ignored: {reason}", False))
                    continue
                if is_dir:
                    self._walk(child, child_real, found, add)
                elif entry.is_file(follow_symlinks=False):
                    add(child, child_real, True)
                else:
                    found.skipped.append(Skipped(child, "not a regular file", True))
            except OSError as error:
                found.skipped.append(Skipped(child, f"cannot inspect: {error.strerror or error}", True))

    def _symlink(self, child: Path, child_real: Path, found: Discovery, add) -> None:
        target = Path(os.path.realpath(child_real))
        looks_like_source = matches(self.include, self._relative(child_real, False))
        if not self._inside_root(target):
            if looks_like_source or target.is_dir():
                found.skipped.append(Skipped(child, f"symbolic link to {target}, outside the project root "
                                                    f"{self.root}; not followed", True))
            return
        if target.is_dir():
            found.skipped.append(Skipped(child, "symbolic link to a directory; not followed", False))
            return
        if not looks_like_source:
            return
        if not target.exists():
            found.skipped.append(Skipped(child, "broken symbolic link", True))
            return
        reason = self.excluded(child_real, False) or self.excluded(target, False)
        if reason is not None:
            found.skipped.append(Skipped(child, f"ignored: {reason}", False))
            return
        if target.is_file():
            add(child, target)
        else:
            found.skipped.append(Skipped(child, "not a regular file", True))


def _sort_key(path: Path) -> str:
    return os.path.normpath(os.path.relpath(os.path.abspath(path))).replace(os.sep, "/")
