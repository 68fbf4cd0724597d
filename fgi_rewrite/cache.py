"""A cache of files known to need nothing, like black's.

One cache file per combination of tool version, tool code, Python version and rewrite options
(the key); in it, for each file (by real path), the SHA-256 of the content that was found to be
unchanged with no refusals and no notes. A file whose content hash matches is not decoded nor
parsed again. Only such clean results are cached: anything with something to say is redone.

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
from typing import Any, Iterable, Optional

from . import __version__

ENV_VAR = "FGI_REWRITE_CACHE_DIR"
_FORMAT = 1


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
    def __init__(self, path: Optional[Path], entries: Optional[dict[str, str]] = None):
        self.path = path  # None: a disabled cache
        self.entries: dict[str, str] = dict(entries or {})
        self.hits = 0
        self._dirty = False

    @classmethod
    def disabled(cls) -> "Cache":
        return cls(None)

    @classmethod
    def load(cls, options: dict[str, Any], directory: Optional[Path] = None) -> "Cache":
        path = (directory or cache_directory()) / f"cache.{cache_key(options)}.json"
        entries: dict[str, str] = {}
        try:
            with open(path, encoding="utf-8") as handle:
                document = json.load(handle)
            if isinstance(document, dict) and document.get("format") == _FORMAT:
                files = document.get("files", {})
                if isinstance(files, dict):
                    entries = {str(k): str(v) for k, v in files.items()}
        except (OSError, ValueError):
            pass
        return cls(path, entries)

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def expected(self, target: Path) -> Optional[str]:
        """The digest of the last clean content of this file, if any."""
        return self.entries.get(str(target)) if self.enabled else None

    def mark_clean(self, targets_and_digests: Iterable[tuple[Path, str]]) -> None:
        for target, digest in targets_and_digests:
            if self.entries.get(str(target)) != digest:
                self.entries[str(target)] = digest
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
