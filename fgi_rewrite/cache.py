"""A cache of files known to need no rewrite, like black's.

One cache file per combination of tool version, tool code, Python version and rewrite options
(the key); in it, for each file (by real path), the SHA-256 of the content that was found to
need no rewrite, and what was reported for it (refusals and notes; usually nothing). A file
whose content hash matches is not decoded nor parsed again: its report is replayed. Only
results that depend on nothing but the file's content are cached: not files that would change,
could not be processed, or whose result depended on other files of the project.

The directory is `$FGI_REWRITE_CACHE_DIR` if set, else the user cache directory
(e.g. ~/.cache/fgi-rewrite/<version>). `--no-cache` disables reading and writing it. A cache
that cannot be read or written is silently ignored (it is only an optimisation).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

from . import __version__
from .plan import FileResult, Position, Refusal

ENV_VAR = "FGI_REWRITE_CACHE_DIR"
_FORMAT = 2


def cache_directory() -> Path:
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("fgi-rewrite", appauthor=False)) / __version__
    except ImportError:  # pragma: no cover - black depends on platformdirs
        return Path.home() / ".cache" / "fgi-rewrite" / __version__


def _code_fingerprint() -> str:
    """The tool's own code and templates: an edited (editable-installed) tool invalidates."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    roots = [package]
    try:
        from . import templates  # type: ignore[attr-defined]

        roots.append(Path(templates.__file__).resolve().parent)
    except Exception:  # pragma: no cover
        pass
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".tmpl") and "__pycache__" not in path.parts:
                try:
                    digest.update(str(path.relative_to(root)).encode())
                    digest.update(path.read_bytes())
                except OSError:
                    continue
    return digest.hexdigest()


def cache_key(options: dict[str, Any]) -> str:
    material = json.dumps(
        {
            "format": _FORMAT,
            "version": __version__,
            "code": _code_fingerprint(),
            "python": list(sys.version_info[:2]),
            "options": {k: repr(v) for k, v in sorted(options.items())},
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:24]


def content_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Cache:
    def __init__(self, path: Optional[Path], entries: Optional[dict[str, list]] = None):
        self.path = path  # None: a disabled cache
        # real path -> [digest] for a clean file, or [digest, name, refusals, notes] where
        # something was reported (refusals as [code, message, line, column, subject])
        self.entries: dict[str, list] = dict(entries or {})
        self._dirty = False

    @classmethod
    def disabled(cls) -> "Cache":
        return cls(None)

    @classmethod
    def load(cls, options: dict[str, Any], directory: Optional[Path] = None) -> "Cache":
        path = (directory or cache_directory()) / f"cache.{cache_key(options)}.json"
        entries: dict[str, list] = {}
        try:
            with open(path, encoding="utf-8") as handle:
                document = json.load(handle)
            if isinstance(document, dict) and document.get("format") == _FORMAT:
                files = document.get("files", {})
                if isinstance(files, dict):
                    entries = {str(k): v for k, v in files.items() if isinstance(v, list) and v}
        except (OSError, ValueError):
            pass
        return cls(path, entries)

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def expected(self, target: Path) -> Optional[str]:
        """The digest of the content last found to need no rewrite, if any."""
        entry = self.entries.get(str(target)) if self.enabled else None
        return str(entry[0]) if entry else None

    def result(self, target: Path, name: str) -> FileResult:
        """The cached report for `target`, under the name it has in this run."""
        entry = self.entries[str(target)]
        if len(entry) < 4:
            return FileResult(name, "", "")
        _, old_name, refusals, notes = entry[:4]
        return FileResult(
            name, "", "",
            refusals=tuple(Refusal(code, message, Position(name, line, column), subject)
                           for code, message, line, column, subject in refusals),
            notes=tuple(name + note[len(old_name):] if note.startswith(old_name) else note for note in notes),
        )

    def record(self, target: Path, digest: str, result: FileResult) -> None:
        if not self.enabled:
            return
        if result.refusals or result.notes:
            entry: list = [digest, result.path,
                           [[r.code, r.message, r.position.line, r.position.column, r.subject] for r in result.refusals],
                           list(result.notes)]
        else:
            entry = [digest]
        if self.entries.get(str(target)) != entry:
            self.entries[str(target)] = entry
            self._dirty = True

    def forget(self, target: Path) -> None:
        if self.entries.pop(str(target), None) is not None:
            self._dirty = True

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".cache.", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump({"format": _FORMAT, "files": self.entries}, handle, separators=(",", ":"))
                os.replace(temp, self.path)
            except BaseException:
                try:
                    os.unlink(temp)
                except OSError:
                    pass
                raise
        except OSError:
            pass  # a cache is an optimisation; never fail a run for it
