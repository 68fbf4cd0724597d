"""The rewriter as a library: source text in, FileResult out. Needs no torch."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import libcst as cst

if TYPE_CHECKING:
    import black

from .files import syntax_error  # noqa: F401 (part of the API)
from .formatting import format_file, is_black_clean

from .analysis.functions import analyse_function, find_function_classes
from .analysis.module_index import ModuleIndex, build_module_index, module_index_for
from .analysis.positions import remember_source, rewritten_code
from .analysis.positions import StatementPositions
from .analysis.project_index import (  # noqa: F401 (build_project: part of the API)
    ModuleAnalysis,
    ProjectFunction,
    ProjectIndex,
    bindings_for,
    build_project,
    module_name_for,
    worth_parsing,
)
from .plan import FileResult, Plan, Position, Refusal
from .transform import RewriteOptions, rewrite_module


def rewrite_source(
    source: str,
    path: str = "<string>",
    *,
    form: str = "inline",
    finite_only: bool = False,
    remove_unused: bool = True,
    referenced_elsewhere: Optional[Callable[[str], bool]] = None,
    black_mode: Optional["black.Mode"] = None,
    inline_constants: bool = False,
    project: Optional[ProjectIndex] = None,
    module_name: Optional[str] = None,
    is_package: bool = False,
    attribute_assigned_elsewhere: Optional[Callable[[str], bool]] = None,
    parsed: Optional[dict[str, cst.Module]] = None,
    formatted: bool = True,
) -> FileResult:
    """Rewrite one module's text. `referenced_elsewhere(name)` says whether other files use a
    top-level name (then it is never removed); without it only this module is considered.
    `parsed` maps source texts to modules already parsed (ProjectIndex.parsed).
    `formatted=False` skips black: the new text is then only good for telling whether the file
    changes (what `--check` asks), and the run is much faster on big modules."""
    if not worth_parsing(source, project):
        # Cannot contain a Function or a call of one: only vet the syntax.
        return FileResult(path, source, source, error=syntax_error(source, path))
    newline = "\r\n" if "\r\n" in source else "\n"
    try:
        module = (parsed if parsed is not None else {}).get(source)
        if module is None:
            module = cst.parse_module(source)
            remember_source(module, source)
            if parsed is not None:
                parsed[source] = module  # the analysis of this module, if one runs, reuses it
    except cst.ParserSyntaxError as error:
        # CPython's message and position are the precise ones; libcst's only when CPython
        # accepts what libcst cannot parse.
        refusal = syntax_error(source, path) or Refusal(
            "FGI902", f"cannot parse: {error.message}", Position(path, error.raw_line, error.raw_column + 1))
        return FileResult(path, source, source, error=refusal)
    options = RewriteOptions(form=form, finite_only=finite_only, remove_unused=remove_unused, black_mode=black_mode,
                             inline_constants=inline_constants, formatted=formatted)
    outcome = rewrite_module(module, path, options, referenced_elsewhere, project, module_name, is_package,
                             attribute_assigned_elsewhere, source)
    # libcst gives back the exact text it parsed: an untouched module needs no code generation.
    new_source = source if outcome.module is module else rewritten_code(outcome.module, module)
    if formatted and new_source != source and is_black_clean(_lf(source), black_mode):
        # A black-clean file stays black-clean (generated functions need blank lines around them).
        new_source = format_file(_lf(new_source), black_mode)
        if newline == "\r\n":
            new_source = new_source.replace("\n", "\r\n")
    return FileResult(
        path,
        source,
        new_source,
        rewrites=tuple(outcome.rewrites),
        refusals=tuple(outcome.refusals),
        notes=tuple(outcome.notes),
    )


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n")


def analyse_source(source: str, path: str = "<string>", module: Optional[cst.Module] = None,
                   foreign=None, index: Optional[ModuleIndex] = None) -> tuple[list[Plan], list[Refusal]]:
    """Plans and refusals for every autograd Function defined at the top level of a module.

    Raises libcst.ParserSyntaxError for a module that does not parse."""
    module = module or cst.parse_module(source)
    positions = StatementPositions(module)
    index = index or build_module_index(module)
    plans: list[Plan] = []
    refusals: list[Refusal] = []
    for function in find_function_classes(module, index):
        analysis = analyse_function(function, index, path, positions.within(function.statement), foreign)
        (plans if isinstance(analysis, Plan) else refusals).append(analysis)  # type: ignore[arg-type]
    return plans, refusals


def analyse_module(project: ProjectIndex, name: str) -> ModuleAnalysis:
    """Plans and refusals for the Functions of one module of the project, helpers from other
    modules of the project included; and its `alias = Fn.apply` aliases of planned ones."""
    found = _parse_for_analysis(project, name)
    if found is None:
        return ModuleAnalysis({}, {}, {})
    module, index = found
    summary = project.modules[name]

    def helper_lookup(index: ModuleIndex, local: str):
        """A helper function that `local` names in `index`'s module, defined in another module."""
        candidates = []
        head, _, rest = local.partition(".")
        if rest and head in index.imports:
            candidates.append(f"{index.absolute(index.imports[head])}.{rest}")
        elif local in index.imports:
            candidates.append(index.absolute(index.imports[local]))
        elif local not in index.assigned:
            candidates.extend(f"{index.absolute(star)}.{local}" for star in index.star_imports)
        for candidate in candidates:
            qualified = project.resolve(candidate)
            home, _, attribute = qualified.rpartition(".")
            other = _parse_for_analysis(project, home)
            if other is not None and attribute in other[1].helpers and other[1].is_unique(attribute):
                return other[1].helpers[attribute], other[1]
        return None

    plans, refusals = analyse_source(project.source_of(name) or "", summary.path, module=module, foreign=helper_lookup,
                                     index=index)
    functions = {
        f"{name}.{plan.function}": ProjectFunction(
            f"{name}.{plan.function}", name, plan,
            bindings_for(plan, name, index.is_package, index.imports, summary.definitions))
        for plan in plans
    }
    return ModuleAnalysis(
        functions,
        {f"{name}.{refusal.subject}": refusal for refusal in refusals},
        {f"{name}.{alias}": f"{name}.{function}"
         for alias, function in _module_aliases(module, {p.function for p in plans}).items()},
    )


def _parse_for_analysis(project: ProjectIndex, name: str) -> Optional[tuple[cst.Module, ModuleIndex]]:
    """The module and its index, made once per process."""
    key = ("indexed", name)
    if key not in project.memo:
        source = project.source_of(name)
        found = None
        if source is not None and name in project.modules:
            try:
                module = project.parsed.get(source)
                if module is None:
                    module = project.parsed[source] = cst.parse_module(source)
                    remember_source(module, source)
            except cst.ParserSyntaxError:
                module = None
            if module is not None:
                index = dataclasses.replace(module_index_for(module), name=name,
                                            is_package=project.modules[name].is_package)
                found = (module, index)
        project.memo[key] = found
    return project.memo[key]


def _module_aliases(module: cst.Module, functions: set[str]) -> dict[str, str]:
    aliases: dict[str, str] = {}
    counts: dict[str, int] = {}
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.Assign):
                for target in small.targets:
                    if isinstance(target.target, cst.Name):
                        counts[target.target.value] = counts.get(target.target.value, 0) + 1
                value = small.value
                if (len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name)
                        and isinstance(value, cst.Attribute) and value.attr.value == "apply"
                        and isinstance(value.value, cst.Name) and value.value.value in functions):
                    aliases[small.targets[0].target.value] = value.value.value
    return {alias: function for alias, function in aliases.items() if counts.get(alias) == 1}


def rewrite_tree(
    sources: dict[Path, str],
    context: Optional[dict[Path, str]] = None,
    **options,
) -> dict[Path, FileResult]:
    """Rewrite a set of files as one project.

    The files are indexed first; then each is rewritten knowing every Function in the set: the
    files that call Functions first, then the modules that define them, against the callers'
    new texts; last, any file whose questions about the others (is this name used elsewhere?)
    get other answers against the final texts is done again, so a second run changes nothing
    (the scheduler the CLI uses, one file at a time). `context` holds other files of the
    project: searched for references, not rewritten."""
    from . import schedule
    from .project import ProjectReferences
    from .work import Outcome, RecordedAnswers

    project = build_project(sources)
    paths = list(sources)
    resolved = [path.resolve() for path in paths]
    names = {path: module_name_for(path) for path in paths}
    snapshot = ProjectReferences.of_texts({**{p.resolve(): t for p, t in (context or {}).items()},
                                           **{r: sources[p] for p, r in zip(paths, resolved)}})
    defined = project.defined_by_module()
    homes = {i for i, path in enumerate(paths) if defined.get(names[path][0])} \
        if options.get("remove_unused", True) else set()

    def process(i: int, view: Optional[dict[Path, str]], again: bool) -> Outcome:
        path = paths[i]
        name, is_package = names[path]
        if not project.reaches(name):
            # Cannot involve the project.
            return Outcome(rewrite_source(sources[path], str(path), parsed=project.parsed, **options))
        answers = RecordedAnswers(snapshot.referenced_outside(resolved[i], view))
        result = rewrite_source(sources[path], str(path), referenced_elsewhere=answers,
                                attribute_assigned_elsewhere=snapshot.attribute_assigned_outside(resolved[i]),
                                project=project, parsed=project.parsed, module_name=name, is_package=is_package,
                                **options)
        return Outcome(result, asked=answers.asked)

    outcomes, views = schedule.in_order(resolved, homes, process)
    outcomes = schedule.settled(resolved, outcomes, views, process, snapshot)
    return {path: outcome.result for path, outcome in zip(paths, outcomes)}
