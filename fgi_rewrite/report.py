"""Report stage: render rewrites and refusals for people (stderr) and machines (JSON).

The JSON report (`--report json`) is described field by field in docs/ci.md; REPORT_SCHEMA
below is the same description as a JSON Schema (draft 2020-12) and the tests hold the output
to it. Additions keep `"version": 1`; a field that is removed or changes meaning bumps it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, Optional, TextIO

from . import __version__
from .plan import FileResult


@dataclass
class Summary:
    files_changed: int = 0
    files_unchanged: int = 0
    files_failed: int = 0
    calls_rewritten: int = 0
    functions_refused: int = 0
    cache_hits: int = 0
    results: list[FileResult] = field(default_factory=list)
    cached: set[str] = field(default_factory=set)  # paths answered from the cache
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def add(self, result: FileResult, cached: bool = False) -> None:
        self.results.append(result)
        if cached:
            self.cache_hits += 1
            self.cached.add(result.path)
        if result.error is not None:
            self.files_failed += 1
            return
        if result.changed:
            self.files_changed += 1
        else:
            self.files_unchanged += 1
        self.calls_rewritten += len(result.rewrites)
        self.functions_refused += sum(1 for r in result.refusals if r.code < "FGI2")

    def line(self, check: bool) -> str:
        verb = "would be changed" if check else "changed"
        parts = [
            f"{self.files_changed} file{'s' if self.files_changed != 1 else ''} {verb}",
            f"{self.files_unchanged} unchanged",
            f"{self.calls_rewritten} call site{'s' if self.calls_rewritten != 1 else ''} rewritten",
            f"{self.functions_refused} Function{'s' if self.functions_refused != 1 else ''} refused",
        ]
        if self.files_failed:
            parts.append(f"{self.files_failed} file{'s' if self.files_failed != 1 else ''} failed")
        return ", ".join(parts) + "."


def text_lines(result: FileResult, verbose: bool) -> Iterable[str]:
    if result.error is not None:
        yield f"error: {result.error.render()}"
        return
    for rewrite in result.rewrites:
        yield rewrite.render()
    for refusal in result.refusals:
        yield refusal.render()
    if verbose:
        for note in result.notes:
            yield note


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(kind: str, path: str, line: int, column: Optional[int], title: str, message: str) -> str:
    where = f"file={_escape_property(path)},line={line}" + (f",col={column}" if column is not None else "")
    return f"::{kind} {where},title={_escape_property(title)}::{_escape_data(message)}"


def github_lines(result: FileResult, check: bool = False) -> Iterable[str]:
    """GitHub Actions workflow commands: an error per file that could not be processed and,
    with --check/--diff, per file that would change (so the annotations say why the job
    failed); a warning per refusal; a notice per (pending) rewrite."""
    if result.error is not None:
        e = result.error
        yield _command("error", e.position.path, e.position.line, e.position.column, e.code, e.message)
        return
    if check and result.changed:
        count = len(result.rewrites)
        first = result.rewrites[0].position.line if result.rewrites else 1
        yield _command("error", result.path, first, None, "fgi-rewrite",
                       f"{count} call site{'s' if count != 1 else ''} would be rewritten to forward gradient "
                       f"injection; run `fgi-rewrite {result.path}`")
    for refusal in result.refusals:
        p = refusal.position
        yield _command("warning", p.path, p.line, p.column, refusal.code,
                       f"{refusal.message} (hint: {refusal.hint})")
    for rewrite in result.rewrites:
        p = rewrite.position
        verb = "can be rewritten" if check else "rewritten"
        yield _command("notice", p.path, p.line, p.column, "FGI000",
                       f"{rewrite.function} call {verb} to FGI ({rewrite.form} form)")


def json_report(summary: Summary, mode: str = "write") -> dict:
    files = []
    for result in summary.results:
        entry = {
            "path": result.path,
            "changed": result.changed,
            "cached": result.path in summary.cached,
            "error": None if result.error is None else _refusal(result.error),
            "rewrites": [
                {
                    "code": "FGI000",
                    "line": r.position.line,
                    "column": r.position.column,
                    "function": r.function,
                    "form": r.form,
                    "message": f"rewrote {r.function} call ({r.form} form)",
                }
                for r in result.rewrites
            ],
            "refusals": [_refusal(r) for r in result.refusals],
            "notes": list(result.notes),
        }
        files.append(entry)
    return {
        "version": 1,
        "tool": {"name": "fgi-rewrite", "version": __version__},
        "mode": mode,
        "summary": {
            "files_changed": summary.files_changed,
            "files_unchanged": summary.files_unchanged,
            "files_failed": summary.files_failed,
            "files_skipped": len(summary.skipped),
            "calls_rewritten": summary.calls_rewritten,
            "functions_refused": summary.functions_refused,
            "cache_hits": summary.cache_hits,
        },
        "files": files,
        "skipped": [{"path": path, "reason": reason} for path, reason in summary.skipped],
    }


def _refusal(refusal) -> dict:
    return {
        "code": refusal.code,
        "message": refusal.message,
        "hint": refusal.hint,
        "line": refusal.position.line,
        "column": refusal.position.column,
        "subject": refusal.subject,
    }


def write_json(summary: Summary, stream: TextIO, mode: str = "write") -> None:
    json.dump(json_report(summary, mode), stream, indent=2)
    stream.write("\n")


_POSITIVE = {"type": "integer", "minimum": 1}
_COUNT = {"type": "integer", "minimum": 0}
_REFUSAL = {
    "type": "object",
    "required": ["code", "message", "hint", "line", "column", "subject"],
    "properties": {
        "code": {"type": "string", "pattern": "^FGI[0-9]{3}$"},
        "message": {"type": "string"},
        "hint": {"type": "string"},
        "line": _POSITIVE,
        "column": _POSITIVE,
        "subject": {"type": "string"},
    },
}
REPORT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "fgi-rewrite report",
    "type": "object",
    "required": ["version", "tool", "mode", "summary", "files", "skipped"],
    "properties": {
        "version": {"const": 1},
        "tool": {
            "type": "object",
            "required": ["name", "version"],
            "properties": {"name": {"const": "fgi-rewrite"}, "version": {"type": "string"}},
        },
        "mode": {"enum": ["write", "check", "diff"]},
        "summary": {
            "type": "object",
            "required": ["files_changed", "files_unchanged", "files_failed", "files_skipped",
                         "calls_rewritten", "functions_refused", "cache_hits"],
            "properties": {key: _COUNT for key in [
                "files_changed", "files_unchanged", "files_failed", "files_skipped",
                "calls_rewritten", "functions_refused", "cache_hits"]},
        },
        "files": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "changed", "cached", "error", "rewrites", "refusals", "notes"],
                "properties": {
                    "path": {"type": "string"},
                    "changed": {"type": "boolean"},
                    "cached": {"type": "boolean"},
                    "error": {"oneOf": [{"type": "null"}, _REFUSAL]},
                    "rewrites": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["code", "line", "column", "function", "form", "message"],
                            "properties": {
                                "code": {"const": "FGI000"},
                                "line": _POSITIVE,
                                "column": _POSITIVE,
                                "function": {"type": "string"},
                                "form": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        },
                    },
                    "refusals": {"type": "array", "items": _REFUSAL},
                    "notes": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "skipped": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "reason"],
                "properties": {"path": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}
