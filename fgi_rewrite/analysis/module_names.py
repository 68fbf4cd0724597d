"""Qualified module names from relative import targets (no libcst: the first pass and the CLI
use these before anything is parsed)."""

from __future__ import annotations

from typing import Optional


def resolve_relative(module: str, is_package: bool, level: int, target: Optional[str]) -> Optional[str]:
    """`from ..a import b` in module `p.q.r` -> "p.a"."""
    if level == 0:
        return target
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 > len(base):
        return None
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def absolute_target(module: str, is_package: bool, target: str) -> str:
    """`..a.b` as written in module `module` -> "p.a.b"; unchanged when absolute or unresolvable."""
    if not target.startswith("."):
        return target
    level = len(target) - len(target.lstrip("."))
    return resolve_relative(module, is_package, level, target.lstrip(".") or None) or target
