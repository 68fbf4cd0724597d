"""Report stage: render rewrites and refusals for people (stderr) and machines (JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, TextIO

from .plan import FileResult


@dataclass
class Summary:
    files_changed: int = 0
    files_unchanged: int = 0
    files_failed: int = 0
    calls_rewritten: int = 0
    functions_refused: int = 0
    results: list[FileResult] = field(default_factory=list)

    def add(self, result: FileResult) -> None:
        self.results.append(result)
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


def github_lines(result: FileResult) -> Iterable[str]:
    def escape(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    if result.error is not None:
        e = result.error
        yield f"::error file={e.position.path},line={e.position.line},col={e.position.column},title={e.code}::{escape(e.message)}"
        return
    for refusal in result.refusals:
        p = refusal.position
        yield (f"::warning file={p.path},line={p.line},col={p.column},title={refusal.code}::"
               f"{escape(refusal.message + ' (hint: ' + refusal.hint + ')')}")
    for rewrite in result.rewrites:
        p = rewrite.position
        yield (f"::notice file={p.path},line={p.line},col={p.column},title=FGI rewrite::"
               f"{escape(f'{rewrite.function} call rewritten to FGI ({rewrite.form} form)')}")


def json_report(summary: Summary) -> dict:
    files = []
    for result in summary.results:
        entry = {
            "path": result.path,
            "changed": result.changed,
            "error": None if result.error is None else _refusal(result.error),
            "rewrites": [
                {"line": r.position.line, "column": r.position.column, "function": r.function, "form": r.form}
                for r in result.rewrites
            ],
            "refusals": [_refusal(r) for r in result.refusals],
            "notes": list(result.notes),
        }
        files.append(entry)
    return {
        "version": 1,
        "summary": {
            "files_changed": summary.files_changed,
            "files_unchanged": summary.files_unchanged,
            "files_failed": summary.files_failed,
            "calls_rewritten": summary.calls_rewritten,
            "functions_refused": summary.functions_refused,
        },
        "files": files,
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


def write_json(summary: Summary, stream: TextIO) -> None:
    json.dump(json_report(summary), stream, indent=2)
    stream.write("\n")
