"""The whole-tree view: module names, what each module imports and re-exports, and every
planned Function with the module-level names its FGI code needs.

Built in a first pass over all given files. Most files are indexed with CPython's `ast`
(cheap); only modules that define autograd Functions get the libcst analysis.
"""

from __future__ import annotations

import ast
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Mapping, Optional

if TYPE_CHECKING:  # annotations only: indexing a tree needs no libcst
    import libcst as cst

from ..plan import Plan, Refusal
from .module_names import absolute_target, resolve_relative

_MAX_RESOLUTION_STEPS = 32


def module_name_for(path: Path) -> tuple[str, bool]:
    """Qualified module name from the package layout (directories with __init__.py)."""
    path = resolved_path(path)
    is_package = path.name == "__init__.py"
    parts = [*_package_of(path.parent)] + ([] if is_package else [path.stem])
    return ".".join(parts) or path.stem, is_package


def resolved_path(path: Path) -> Path:
    """`path.resolve()`, with each directory resolved once per process (a run asks for every
    file of the tree; resolving walks every component of the path)."""
    if os.path.islink(path):
        return path.resolve()
    return _resolved_directory(os.getcwd(), str(path.parent)) / path.name


@functools.lru_cache(maxsize=4096)
def _resolved_directory(cwd: str, directory: str) -> Path:
    return Path(cwd, directory).resolve()


@functools.lru_cache(maxsize=4096)
def _package_of(directory: Path) -> tuple[str, ...]:
    """The package a directory is, as name parts ((): not a package). Asked once per
    directory and process: a run asks for every file of the tree."""
    if not (directory / "__init__.py").exists():
        return ()
    return (*_package_of(directory.parent), directory.name)


def worth_parsing(text: str, project: Optional["ProjectIndex"]) -> bool:
    """The text prefilter: could this file define a Function, or call one of the project's?
    False only where parsing it cannot change or report anything."""
    from ..files import may_matter

    return may_matter(text) or (project is not None and project.mentioned_in(text))


_APPLY_READ = re.compile(r"\.\s*apply\b")


@dataclass(frozen=True)
class Mentions:
    """Whether a text spells `F.apply` or `F().apply` for one of `functions`, or one of
    `aliases` as a word: the regular expression `spelling()` returns, found faster (that
    expression, with a few dozen names, scans every position of every file of a tree)."""

    functions: frozenset[str]
    aliases: tuple[str, ...]

    def spelling(self) -> Optional[re.Pattern]:
        """The definition: what `in_text` answers, as one expression (None: nothing to find)."""
        parts = []
        if self.functions:
            parts.append(r"\b(?:" + "|".join(map(re.escape, sorted(self.functions)))
                         + r")\s*(?:\(\s*\))?\s*\.\s*apply\b")
        if self.aliases:
            parts.append(r"\b(?:" + "|".join(map(re.escape, self.aliases)) + r")\b")
        return re.compile("|".join(parts)) if parts else None

    def in_text(self, text: str) -> bool:
        if self.aliases and any(alias in text for alias in self.aliases) and _any_word(text, self.aliases):
            return True
        if not self.functions or "apply" not in text:
            return False
        return any(_word_before_apply(text, match.start()) in self.functions for match in _APPLY_READ.finditer(text))


def _any_word(text: str, words: tuple[str, ...]) -> bool:
    return _words_pattern(words).search(text) is not None


@functools.lru_cache(maxsize=8)
def _words_pattern(words: tuple[str, ...]) -> re.Pattern:
    return re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b")


def _word_before_apply(text: str, dot: int) -> str:
    r"""The word that `WORD \s* (\( \s* \))? \s*` reads right before `text[dot]` (a word as
    the re module sees one: a maximal run of alphanumerics and underscores), or ""."""
    end = _skip_space_back(text, dot)
    if end and text[end - 1] == ")":
        opening = _skip_space_back(text, end - 1)
        if not opening or text[opening - 1] != "(":
            return ""
        end = _skip_space_back(text, opening - 1)
    start = end
    while start and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    return text[start:end]


def _skip_space_back(text: str, end: int) -> int:
    while end and text[end - 1].isspace():
        end -= 1
    return end


@dataclass(frozen=True)
class ModuleSummary:
    name: str
    path: str
    is_package: bool
    imports: dict[str, str]  # local name -> absolute qualified target
    star_imports: tuple[str, ...]
    definitions: frozenset[str]
    exported: Optional[tuple[str, ...]]  # __all__, when it is a literal list
    # Top-level classes that may be autograd Functions (a base spelled ...Function, or a name
    # imported as one) and `NAME = Class.apply` aliases of them: a superset, read by `ast`;
    # the libcst analysis decides, when some file needs the answer.
    function_classes: tuple[str, ...] = ()
    apply_aliases: tuple[str, ...] = ()


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
    classes = [statement.name for statement in tree.body if isinstance(statement, ast.ClassDef)
               and any(_may_be_function_base(base, imports) for base in statement.bases)]
    aliases = [
        statement.targets[0].id for statement in tree.body
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1
        and isinstance(statement.targets[0], ast.Name) and isinstance(statement.value, ast.Attribute)
        and statement.value.attr == "apply" and isinstance(statement.value.value, ast.Name)
        and statement.value.value.id in classes
    ]
    return ModuleSummary(name, str(path), is_package, imports, tuple(stars), frozenset(definitions), exported,
                         tuple(classes), tuple(dict.fromkeys(aliases)))


def _may_be_function_base(base: ast.expr, imports: dict[str, str]) -> bool:
    """`torch.autograd.Function`, `autograd.Function`, `Function`, or a name imported as
    `...Function` (`from torch.autograd import Function as F`)."""
    parts: list[str] = []
    while isinstance(base, ast.Attribute):
        parts.insert(0, base.attr)
        base = base.value
    if not isinstance(base, ast.Name):
        return False
    parts.insert(0, base.id)
    return parts[-1] == "Function" or (len(parts) == 1 and imports.get(parts[0], "").endswith(".Function"))


class ModuleSummaries(dict):
    """Module name -> ModuleSummary. The first pass summarises the modules that can define or
    re-export a Function; any other module of the project (`paths`) is summarised the first
    time a resolution asks for it, in the process that asks."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: dict[str, str] = {}  # module name -> file, for every module of the project
        self.texts: dict[str, str] = {}  # texts read for summaries made on demand
        self._unreadable: set[str] = set()

    def _load(self, name: str) -> bool:
        path = self.paths.get(name)
        if path is None or name in self._unreadable:
            return False
        from ..files import DecodeError, read_source

        try:
            text = read_source(Path(path)).text
        except (OSError, DecodeError):
            summary = None
        else:
            summary = summarise_module(text, Path(path), name, Path(path).name == "__init__.py")
        if summary is None:
            self._unreadable.add(name)
            return False
        self.texts[name] = text
        dict.__setitem__(self, name, summary)
        return True

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or (isinstance(name, str) and self._load(name))

    def __getitem__(self, name: str) -> ModuleSummary:
        if not dict.__contains__(self, name) and not self._load(name):
            raise KeyError(name)
        return dict.__getitem__(self, name)

    def get(self, name: str, default=None):  # type: ignore[override]
        return self[name] if name in self else default


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


@dataclass(frozen=True)
class ModuleAnalysis:
    """What the libcst analysis of one module gives the rest of the project."""

    functions: dict[str, ProjectFunction]  # qualified name -> planned Function
    refusals: dict[str, Refusal]  # qualified name -> why its calls stay
    aliases: dict[str, str]  # qualified `alias = Fn.apply` -> qualified planned Function


# (project, module name) -> its analysis; a module-level function, so that it pickles.
Analyser = Callable[["ProjectIndex", str], ModuleAnalysis]
_NOTHING = ModuleAnalysis({}, {}, {})


class _Analysed(Mapping):
    """One part (functions, refusals or aliases) of every module's analysis, computed for a
    module the first time a key of it is asked for: a run pays only for what its files use,
    and pays it in the worker processes, in parallel."""

    def __init__(self, project: "ProjectIndex", part: str):
        self.project = project
        self.part = part

    def _of(self, module: str) -> dict:
        return getattr(self.project.analysis(module), self.part)

    def _may_hold(self, key: str) -> Optional[str]:
        """The module of `key`, if `key` may be in its analysis (no analysis needed to say no)."""
        module, _, name = key.rpartition(".")
        summary = self.project.modules.get(module)
        if summary is None:
            return None
        names = summary.apply_aliases if self.part == "aliases" else summary.function_classes
        return module if name in names else None

    def __getitem__(self, key: str):
        module = self._may_hold(key)
        if module is None:
            raise KeyError(key)
        return self._of(module)[key]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        module = self._may_hold(key)
        return module is not None and key in self._of(module)

    def __iter__(self) -> Iterator[str]:
        for module in sorted(self.project.candidates):
            yield from self._of(module)

    def __len__(self) -> int:
        return sum(len(self._of(module)) for module in self.project.candidates)


@dataclass
class ProjectIndex:
    modules: ModuleSummaries = field(default_factory=ModuleSummaries)
    # Module -> texts the analysis may parse: modules with candidate Functions, and the modules
    # their helpers may come from.
    sources: dict[str, str] = field(default_factory=dict, repr=False)
    analyser: Optional[Analyser] = None
    cache_key: Optional[str] = None  # set by the CLI: the fingerprint of what other files depend on
    # Names that some module binds to a Function or alias by `import ... as NAME` (renames of
    # renames too): a file spelling only such a name can still call one.
    renamed: set[str] = field(default_factory=set)
    _mention: Optional[Mentions] = field(default=None, repr=False, compare=False)
    _defined: Optional[dict] = field(default=None, repr=False, compare=False)
    _leads: dict = field(default_factory=dict, repr=False, compare=False)
    # Per process, never pickled: analyses made, and modules parsed by source text (the
    # rewrite of a file reuses the parse its analysis made).
    _analyses: dict[str, ModuleAnalysis] = field(default_factory=dict, repr=False, compare=False)
    parsed: dict[str, cst.Module] = field(default_factory=dict, repr=False, compare=False)
    memo: dict = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "parsed": {}, "_analyses": {}, "memo": {}}

    @property
    def candidates(self) -> list[str]:
        """The modules that may define Functions."""
        return [name for name, summary in self.modules.items() if summary.function_classes]

    def source_of(self, module: str) -> Optional[str]:
        if module in self.sources:
            return self.sources[module]
        return self.modules.texts.get(module) if module in self.modules else None

    def analysis(self, module: str) -> ModuleAnalysis:
        if module not in self._analyses:
            found = self.modules.get(module)
            if found is None or not found.function_classes or self.analyser is None:
                return _NOTHING
            self._analyses[module] = _NOTHING  # a helper lookup that comes back here finds nothing
            self._analyses[module] = self.analyser(self, module)
        return self._analyses[module]

    @property
    def functions(self) -> Mapping[str, ProjectFunction]:
        return _Analysed(self, "functions")

    @property
    def refusals(self) -> Mapping[str, Refusal]:
        return _Analysed(self, "refusals")

    @property
    def aliases(self) -> Mapping[str, str]:
        return _Analysed(self, "aliases")

    def resolve(self, qualified: str, analyse: bool = True) -> str:
        """Follow re-exports (`from .spike import Fn` in a package __init__, star imports) to
        the module where an object is defined. `analyse=False` never runs a module's analysis
        (a planned Function or alias stops the search; the definition is found either way)."""
        for _ in range(_MAX_RESOLUTION_STEPS):
            if qualified in self.modules or (analyse and (qualified in self.functions or qualified in self.aliases)):
                return qualified
            module, _, attribute = qualified.rpartition(".")
            summary = self.modules.get(module)
            if summary is None:
                # An attribute of an attribute: resolve the prefix first.
                if "." not in module:
                    return qualified
                resolved_prefix = self.resolve(module, analyse)
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
        """Module -> the Functions and aliases it may define (candidates: a superset, known
        without analysing anything)."""
        if self._defined is None:
            self._defined = {name: [*summary.function_classes, *summary.apply_aliases]
                             for name, summary in self.modules.items() if summary.function_classes}
        return self._defined

    def is_module(self, qualified: str) -> bool:
        return qualified in self.modules

    def learn_renames(self, texts: Iterable[str]) -> None:
        """Collect `import ... Fn as NAME` renames of the candidate names from these texts."""
        trailing, leading = re.compile(r"(\w+)[ \t]*$"), re.compile(r"[ \t]*(\w+)")
        pairs: set[tuple[str, str]] = set()
        for text in texts:
            pieces = text.split(" as ")  # a plain split: far faster than a regex over the text
            for left, right in zip(pieces, pieces[1:]):
                before, after = trailing.search(left[-100:]), leading.match(right)
                if before is not None and after is not None:
                    pairs.add((before.group(1), after.group(1)))
        known = {name for names in self.defined_by_module().values() for name in names}
        while known:  # renames of renames too
            found = {new for old, new in pairs if old in known} - self.renamed - known
            self.renamed |= found
            known = found
        self._mention = None

    def mentioned_in(self, source: str) -> bool:
        """Text prefilter: could this file hold a call of a Function of the project? Only
        spellings that can be one count: `Name.apply`, `Name().apply`, or an alias `alias`."""
        if self._mention is None:
            summaries = [s for s in self.modules.values() if s.function_classes]
            self._mention = Mentions(
                frozenset(name for s in summaries for name in s.function_classes),
                tuple(sorted({name for s in summaries for name in s.apply_aliases} | self.renamed)))
        return self._mention.in_text(source)

    def leads_to_function(self, qualified: str) -> bool:
        """Could `qualified`, or a chain of attributes read from it (`mod.sub.Fn`), resolve to a
        Function or an alias of the project? Candidates count (no module is analysed): a
        superset of what a resolution of such a chain can reach."""
        known = self._leads.get(qualified)
        if known is not None:
            return known
        candidates, submodules = self._reach_tables()
        seen: set[str] = set()
        stack = [self.resolve(qualified, analyse=False)]
        found = False
        while stack and not found:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            if current in candidates:
                found = True
            elif self.is_module(current):
                summary = self.modules[current]
                stack.extend(summary.star_imports)  # their names are read through this module
                for attribute in {*summary.definitions, *summary.imports, *submodules.get(current, ())}:
                    stack.append(self.resolve(f"{current}.{attribute}", analyse=False))
        self._leads[qualified] = found
        return found

    def _reach_tables(self) -> tuple[set[str], dict[str, set[str]]]:
        """For `leads_to_function`, made once per process: the qualified candidate names, and
        each module's submodules (read as attributes of it)."""
        if "reach" not in self.memo:
            candidates = {f"{home}.{name}" for home, names in self.defined_by_module().items() for name in names}
            submodules: dict[str, set[str]] = {}
            for module in {*dict.keys(self.modules), *self.modules.paths}:
                parent, _, last = module.rpartition(".")
                if parent:
                    submodules.setdefault(parent, set()).add(last)
            self.memo["reach"] = (candidates, submodules)
        return self.memo["reach"]

    def reaches(self, module: str) -> bool:
        """Could this module import a Function, an alias, or a module that defines one?"""
        summary = self.modules.get(module)
        if summary is None:
            return True
        homes = self.defined_by_module()
        if module in homes:
            return True
        for target in [*summary.imports.values(), *summary.star_imports]:
            resolved = self.resolve(target, analyse=False)
            home, _, name = resolved.rpartition(".")
            if name in homes.get(home, ()) or resolved in homes:
                return True
            if any(h.startswith(resolved + ".") for h in homes):
                return True
        return False

    def fingerprint(self) -> str:
        """Changes whenever anything the result for a file may take from the index changes: the
        text of every module that may define Functions and of the modules they import (their
        helpers), and every module's imports and definitions (re-exports)."""
        import hashlib

        texts: set[str] = set()
        for name in self.candidates:
            texts.add(name)
            summary = self.modules[name]
            for target in [*summary.imports.values(), *summary.star_imports]:
                resolved = self.resolve(target, analyse=False)
                texts.update(m for m in (resolved, resolved.rpartition(".")[0]) if m in self.sources)
        digest = hashlib.sha256()
        for name in sorted(texts):
            digest.update(f"{name}:{hashlib.sha256(self.sources[name].encode()).hexdigest()}".encode())
        for name in sorted(self.modules):
            summary = self.modules[name]
            digest.update(f"{name}:{sorted(summary.imports.items())}:{summary.star_imports}:"
                          f"{sorted(summary.definitions)}:{summary.exported}".encode())
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


def build_project(sources: dict[Path, str],
                  summaries: Optional[dict[Path, Optional[ModuleSummary]]] = None) -> ProjectIndex:
    """First pass over all files: module names, imports, re-exports, and the classes that may
    be Functions, all read with `ast`. Each module's libcst analysis (`api.analyse_module`)
    runs when a file first needs it, in the process that needs it. `summaries` may hold module summaries the caller already made."""
    project = ProjectIndex(analyser=_analyse_module)
    for path, source in sources.items():
        name, is_package = module_name_for(path)
        if summaries is not None and path in summaries:
            summary = summaries[path]
        else:
            summary = summarise_module(source, path, name, is_package)
        if summary is not None:
            project.modules[name] = summary
            project.sources[name] = source
    project.learn_renames(sources.values())
    return project


def _analyse_module(project: "ProjectIndex", name: str) -> ModuleAnalysis:
    """api.analyse_module, imported when the first analysis runs: the index itself needs no
    libcst, so the main process of a run does not import it for the first pass."""
    from ..api import analyse_module

    return analyse_module(project, name)
