"""The whole-tree view: module names, what each module imports and re-exports, and every
planned Function with the module-level names its FGI code needs.

Built in a first pass over all given files. Most files are indexed with CPython's `ast`
(cheap); only modules that define autograd Functions get the libcst analysis.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import libcst as cst

from ..plan import Plan, Refusal
from .module_index import absolute_target, resolve_relative

_MAX_RESOLUTION_STEPS = 32


def module_name_for(path: Path) -> tuple[str, bool]:
    """Qualified module name from the package layout (directories with __init__.py)."""
    path = path.resolve()
    is_package = path.name == "__init__.py"
    parts = [] if is_package else [path.stem]
    directory = path.parent
    while (directory / "__init__.py").exists():
        parts.insert(0, directory.name)
        directory = directory.parent
    return ".".join(parts) or path.stem, is_package


@dataclass(frozen=True)
class ModuleSummary:
    name: str
    path: str
    is_package: bool
    imports: dict[str, str]  # local name -> absolute qualified target
    star_imports: tuple[str, ...]
    definitions: frozenset[str]
    exported: Optional[tuple[str, ...]]  # __all__, when it is a literal list


def summarise_module(source: str, path: Path, name: str, is_package: bool) -> Optional[ModuleSummary]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    imports: dict[str, str] = {}
    stars: list[str] = []
    definitions: set[str] = set()
    exported: Optional[tuple[str, ...]] = None

    def visit(body: list[ast.stmt]) -> None:
        nonlocal exported
        for statement in body:
            if isinstance(statement, ast.Import):
                for alias in statement.names:
                    if alias.asname:
                        imports[alias.asname] = alias.name
                    else:
                        imports.setdefault(alias.name.split(".")[0], alias.name.split(".")[0])
            elif isinstance(statement, ast.ImportFrom):
                base = resolve_relative(name, is_package, statement.level, statement.module)
                if base is None:
                    continue
                for alias in statement.names:
                    if alias.name == "*":
                        stars.append(base)
                    else:
                        imports[alias.asname or alias.name] = f"{base}.{alias.name}"
            elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                definitions.add(statement.name)
            elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
                targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        definitions.add(target.id)
                        if target.id == "__all__" and isinstance(statement.value, (ast.List, ast.Tuple)):
                            exported = tuple(
                                e.value for e in statement.value.elts
                                if isinstance(e, ast.Constant) and isinstance(e.value, str)
                            )
            elif isinstance(statement, ast.Try):
                # try/except imports: the first branch is what a normal install runs.
                visit(statement.body)
            elif isinstance(statement, ast.If):
                visit(statement.body)

    visit(tree.body)
    return ModuleSummary(name, str(path), is_package, imports, tuple(stars), frozenset(definitions), exported)


@dataclass(frozen=True)
class Binding:
    """What a free name of a Function's FGI code refers to in the defining module."""

    kind: str  # "module" (import of a module) or "object" (a module-level object)
    target: str  # qualified name


@dataclass(frozen=True)
class ProjectFunction:
    qualified: str
    module: str
    plan: Plan
    bindings: tuple[tuple[str, Binding], ...]  # free name -> what it is

    def binding(self, name: str) -> Optional[Binding]:
        return dict(self.bindings).get(name)


@dataclass
class ProjectIndex:
    modules: dict[str, ModuleSummary] = field(default_factory=dict)
    functions: dict[str, ProjectFunction] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # qualified alias -> qualified Function
    refusals: dict[str, "Refusal"] = field(default_factory=dict)  # qualified Function -> why not
    _mention: Optional[object] = field(default=None, repr=False, compare=False)
    _defined: Optional[dict] = field(default=None, repr=False, compare=False)
    cache_key: Optional[str] = None  # set by the CLI: the fingerprint of what other files depend on
    # Modules the first pass parsed, by source text: the second pass reuses them (worker
    # processes inherit them when forked; they are not pickled).
    parsed: dict[str, cst.Module] = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "parsed": {}}

    def resolve(self, qualified: str) -> str:
        """Follow re-exports (`from .spike import Fn` in a package __init__, star imports) to
        the module where an object is defined."""
        for _ in range(_MAX_RESOLUTION_STEPS):
            if qualified in self.functions or qualified in self.aliases or qualified in self.modules:
                return qualified
            module, _, attribute = qualified.rpartition(".")
            summary = self.modules.get(module)
            if summary is None:
                # An attribute of an attribute: resolve the prefix first.
                if "." not in module:
                    return qualified
                resolved_prefix = self.resolve(module)
                if resolved_prefix == module:
                    return qualified
                qualified = f"{resolved_prefix}.{attribute}"
                continue
            if attribute in summary.imports:
                qualified = summary.imports[attribute]
                continue
            if attribute in summary.definitions:
                return qualified
            for star in summary.star_imports:
                star_summary = self.modules.get(star)
                if star_summary is None:
                    continue
                visible = star_summary.exported if star_summary.exported is not None else [
                    n for n in star_summary.definitions | set(star_summary.imports) if not n.startswith("_")
                ]
                if attribute in visible:
                    qualified = f"{star}.{attribute}"
                    break
            else:
                return qualified
        return qualified

    def defined_by_module(self) -> dict[str, list[str]]:
        """Module -> the planned Functions and aliases it defines (computed once)."""
        if self._defined is None:
            defined: dict[str, list[str]] = {}
            for qualified in [*self.functions, *self.aliases]:
                module, _, name = qualified.rpartition(".")
                defined.setdefault(module, []).append(name)
            self._defined = defined
        return self._defined

    def is_module(self, qualified: str) -> bool:
        return qualified in self.modules

    def mentioned_in(self, source: str) -> bool:
        """Text prefilter: could this file hold a call of a planned Function? Only spellings that
        can be one count: `Name.apply`, `Name().apply`, or a call of an alias `alias(`."""
        if self._mention is None:
            import re

            functions = sorted({q.rpartition(".")[2] for q in self.functions})
            aliases = sorted({q.rpartition(".")[2] for q in self.aliases})
            parts = []
            if functions:
                parts.append(r"\b(?:" + "|".join(map(re.escape, functions)) + r")\s*(?:\(\s*\))?\s*\.\s*apply\b")
            if aliases:
                parts.append(r"\b(?:" + "|".join(map(re.escape, aliases)) + r")\b")
            self._mention = re.compile("|".join(parts)) if parts else None
        return self._mention is not None and self._mention.search(source) is not None  # type: ignore[union-attr]

    def reaches(self, module: str) -> bool:
        """Does this module import a planned Function, an alias, or a module that defines one?"""
        summary = self.modules.get(module)
        if summary is None:
            return True
        homes = self.defined_by_module()
        if module in homes:
            return True
        for target in [*summary.imports.values(), *summary.star_imports]:
            resolved = self.resolve(target)
            if resolved in self.functions or resolved in self.aliases or resolved in homes:
                return True
            if any(home == resolved or home.startswith(resolved + ".") for home in homes):
                return True
        return False

    def fingerprint(self) -> str:
        """Changes whenever anything a rewrite of another file depends on changes."""
        import hashlib

        digest = hashlib.sha256()
        for name in sorted(self.functions):
            function = self.functions[name]
            digest.update(name.encode())
            digest.update(cst.Module(body=[]).code_for_node(function.plan.step.expression).encode())
            if function.plan.surrogate.expression is not None:
                digest.update(cst.Module(body=[]).code_for_node(function.plan.surrogate.expression).encode())
        for alias in sorted(self.aliases):
            digest.update(f"{alias}={self.aliases[alias]}".encode())
        for name in sorted(self.modules):
            summary = self.modules[name]
            digest.update(f"{name}:{sorted(summary.imports.items())}:{summary.star_imports}".encode())
        return digest.hexdigest()


def bindings_for(plan: Plan, module: str, is_package: bool, imports: dict[str, str],
                 definitions: Iterable[str]) -> tuple[tuple[str, Binding], ...]:
    defined = set(definitions)
    foreign = dict(plan.foreign)
    result = []
    for name in sorted(plan.free_names):
        if name in foreign:
            result.append((name, Binding("object", foreign[name])))
        elif name in imports:
            target = absolute_target(module, is_package, imports[name])
            result.append((name, Binding("module" if _looks_like_module(target) else "object", target)))
        elif name in defined:
            result.append((name, Binding("object", f"{module}.{name}")))
        else:
            result.append((name, Binding("builtin", name)))
    return tuple(result)


_KNOWN_MODULES = frozenset({"torch", "math", "numpy", "torch.nn", "torch.nn.functional", "torch.special",
                            "torch.autograd", "np"})


def _looks_like_module(target: str) -> bool:
    return target in _KNOWN_MODULES or target.split(".")[0] in ("math",) and "." not in target
