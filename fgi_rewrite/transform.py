"""Transform stage: rewrite the call sites of planned Functions in one module.

Decisions about equivalence are made by the analysis (the Plan); this module only decides
where the FGI code goes so that every argument is still evaluated exactly once, in the
original order, and only where the original evaluated it:

* arguments that are names or number literals are used in place (reading them is free);
* other arguments are bound to fresh temporaries right before the statement, when nothing
  that the statement evaluates before them could observe the move;
* otherwise the call becomes a call of a generated module-level function.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

import libcst as cst

if TYPE_CHECKING:
    import black
from libcst.metadata import (
    MetadataWrapper,
    Scope,
    ScopeProvider,
)

from .analysis.expressions import code, is_number, strip_parens
from .analysis.functions import analyse_function, find_function_classes, find_nested_function_classes
from .analysis.module_index import ModuleIndex, module_index_for
from .analysis.positions import StatementPositions, memo_for, parent_map, statement_code, statements, walk
from .emit import fgi_expression, generated_function
from .formatting import format_snippet
from .analysis.module_index import absolute_target
from .analysis.project_index import ProjectFunction, ProjectIndex
from .plan import Plan, Position, Refusal, Rewrite

SKIP_PRAGMA = "fgi: skip"


@dataclass(frozen=True)
class RewriteOptions:
    form: str = "inline"  # "inline" or "function"
    finite_only: bool = False
    remove_unused: bool = True
    black_mode: Optional["black.Mode"] = None  # the project's black settings (None: black's defaults)
    inline_constants: bool = False  # substitute literal module constants (TorchScript-friendly)
    formatted: bool = True  # False: no black (the text only tells whether the file changes)


@dataclass
class ModuleRewrite:
    module: cst.Module
    rewrites: list[Rewrite] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _CallSite:
    call: cst.Call
    plan: Plan
    statement: Optional[cst.SimpleStatementLine]  # where temporaries go, if allowed
    key: str = ""  # the Function: its local name, or its qualified name when defined elsewhere
    # Free names of the plan -> how this module spells them (empty: defined in this module).
    names: tuple[tuple[str, cst.BaseExpression], ...] = ()


ReferencedElsewhere = Callable[[str], bool]


def rewrite_module(
    module: cst.Module,
    path: str,
    options: RewriteOptions,
    referenced_elsewhere: Optional[ReferencedElsewhere] = None,
    project: Optional[ProjectIndex] = None,
    module_name: Optional[str] = None,
    is_package: bool = False,
    attribute_assigned_elsewhere: Optional[ReferencedElsewhere] = None,
    source: Optional[str] = None,
) -> ModuleRewrite:
    """`source` is the module's text when the caller has it (libcst's code of the module is
    that text; generating it again costs time)."""
    index = module_index_for(module)
    result = ModuleRewrite(module)
    local_functions = find_function_classes(module, index)
    nested_functions = find_nested_function_classes(module, index)
    if not local_functions and not nested_functions and project is None:
        return result
    layout = StatementPositions(module)

    def position(node: cst.CSTNode, within: Optional[cst.CSTNode] = None) -> Position:
        return Position(path, *layout.position_of(node, within))

    plans: dict[str, Plan] = {}
    for nested in nested_functions:
        result.refusals.append(_nested_refusal(nested, path, layout))
    for function in local_functions:
        if _has_skip_pragma(function.node):
            result.notes.append(f"{position(function.node, function.node)}: skipped {function.name} (# {SKIP_PRAGMA})")
            continue
        qualified = f"{module_name}.{function.name}"
        if project is not None and qualified in project.functions:
            analysis = project.functions[qualified].plan  # analysed with helpers of other modules
            analysis = dataclasses.replace(analysis, position=dataclasses.replace(analysis.position, path=path))
        elif project is not None and qualified in project.refusals:
            analysis = project.refusals[qualified]
            analysis = dataclasses.replace(analysis, position=dataclasses.replace(analysis.position, path=path))
        else:
            analysis = analyse_function(function, index, path, layout.within(function.node))
        if isinstance(analysis, Refusal):
            result.refusals.append(analysis)
            continue
        if not index.is_unique(function.name):
            result.refusals.append(Refusal("FGI205", f"{function.name} is bound more than once",
                                           position(function.node, function.node), function.name))
            continue
        plans[function.name] = analysis
    text = source if source is not None else module.code
    if not plans and not _may_call_project(text, index, project, module_name, is_package):
        return result  # scope and parent metadata are most of the cost: only resolve them for work
    parents = parent_map(module)
    layout.parents = parents
    attribute_bindings = _attribute_bindings(module, parents)
    instance_calls = _instance_apply_calls(module, text)
    # Scope analysis of the statements that can hold a site or a binding the rewrite asks about.
    scoped = _statements_for_scopes(module, _scope_words(module, plans, index, project, module_name, is_package),
                                    [*_possible_attribute_sites(attribute_bindings), *instance_calls], parents)
    whole = len(scoped) == len(module.body) and all(a is b for a, b in zip(scoped, module.body))
    scope_root = module if whole else module.with_changes(body=scoped)
    scopes = MetadataWrapper(scope_root, unsafe_skip_copy=True).resolve(ScopeProvider)
    global_scope = scopes[scope_root]
    assert global_scope is not None

    sites: list[_CallSite] = []
    new_imports: list[cst.SimpleStatementLine] = []
    taken_names = _all_names(text)
    spelling = None
    if project is not None and module_name is not None:
        spelling = _ModuleSpelling(index, module_name, is_package, taken_names, new_imports)

    def local_names(name: str) -> tuple[tuple[str, cst.BaseExpression], ...]:
        """Spellings for a Function of this module: needed when its helpers live elsewhere."""
        function = project.functions.get(f"{module_name}.{name}") if project is not None else None
        if spelling is None or function is None or not function.plan.foreign:
            return ()
        return tuple((spelling.names_for(function) or {}).items())

    kept: dict[str, list[cst.CSTNode]] = {}  # definition name -> references that stay
    aliases: dict[str, str] = {}  # alias name -> Function name
    alias_statements: dict[str, cst.SimpleStatementLine] = {}

    def references(name: str):
        return [access for assignment in global_scope.assignments[name] for access in assignment.references]

    for name, plan in plans.items():
        for access in references(name):
            node = access.node
            parent = parents.get(node)
            if _is_instance_apply_call(node, parents):
                continue  # `Fn().apply(...)`: a call site, found below
            if isinstance(parent, cst.Attribute) and parent.value is node and parent.attr.value == "apply":
                grandparent = parents.get(parent)
                if isinstance(grandparent, cst.Call) and grandparent.func is parent:
                    sites.append(_CallSite(grandparent, plan, _hoist_statement(grandparent, parents), name,
                                           local_names(name)))
                    continue
                alias = _module_alias(parent, parents, module)
                if alias is not None and index.is_unique(alias[0]):
                    aliases[alias[0]] = name
                    alias_statements[alias[0]] = alias[1]
                    continue
            kept.setdefault(name, []).append(node)

    for alias, name in aliases.items():
        for access in references(alias):
            node = access.node
            parent = parents.get(node)
            if isinstance(parent, cst.Call) and parent.func is node:
                sites.append(_CallSite(parent, plans[name], _hoist_statement(parent, parents), name,
                                       local_names(name)))
            else:
                kept.setdefault(alias, []).append(node)

    external_functions: dict[str, Plan] = {}
    if spelling is not None:
        assert project is not None
        external: list[tuple[cst.Call, ProjectFunction]] = []
        imported = [a for a in global_scope.assignments
                    if isinstance(getattr(a, "node", None), (cst.Import, cst.ImportFrom))]
        for assignment in sorted(imported, key=lambda a: a.name):  # libcst keeps them in sets
            target = spelling.qualified_import(assignment.name)
            if target is None:
                continue
            for access in assignment.references:
                found = _external_site(access.node, project.resolve(target), project, parents)
                if found is not None:
                    external.append(found)
        # libcst keeps references in sets: visit the calls in source order, so that names and
        # imports added for them come out the same on every run.
        for call, function in sorted(external, key=lambda found: layout.position_of(found[0])):
            external_functions[function.qualified] = function.plan
            names = spelling.names_for(function)
            if names is None:
                result.refusals.append(Refusal(
                    "FGI206", f"{function.plan.function}: cannot name what its surrogate reads here",
                    position(call), function.plan.function))
                continue
            sites.append(_CallSite(call, function.plan, _hoist_statement(call, parents), function.qualified,
                                   tuple(names.items())))

    # `self.f = Fn.apply` / class attribute `f = Fn.apply`, called as `self.f(...)`; `Fn().apply(...)`.
    def function_of(value: cst.BaseExpression):
        """(key, plan, names) when `value` is the apply of a planned Function, else None."""
        value = strip_parens(value)
        if isinstance(value, cst.Name) and value.value in aliases:
            return aliases[value.value], plans[aliases[value.value]], local_names(aliases[value.value])
        if isinstance(value, cst.Attribute) and value.attr.value == "apply":
            receiver = strip_parens(value.value)
            if isinstance(receiver, cst.Call) and not receiver.args:
                receiver = strip_parens(receiver.func)  # `Fn().apply`
            if isinstance(receiver, cst.Name) and receiver.value in plans and index.is_unique(receiver.value):
                return receiver.value, plans[receiver.value], local_names(receiver.value)
        if spelling is not None and project is not None:
            if isinstance(value, cst.Attribute) and value.attr.value == "apply":
                receiver = strip_parens(value.value)
                if isinstance(receiver, cst.Call) and not receiver.args:
                    value = value.with_changes(value=receiver.func)  # `Fn().apply`: resolve `Fn`
            head = value
            while isinstance(head, cst.Attribute):
                head = head.value
            if isinstance(head, cst.Name):
                target = spelling.qualified_import(head.value)
                if target is not None:
                    qualified = project.resolve(target)
                    for attr in _attribute_path(value)[1:]:
                        qualified = project.resolve(f"{qualified}.{attr}")
                    if qualified.endswith(".apply"):
                        qualified = qualified[: -len(".apply")]
                    qualified = project.aliases.get(qualified, qualified)
                    function = project.functions.get(qualified)
                    if function is not None:
                        names = spelling.names_for(function)
                        if names is not None:
                            external_functions[qualified] = function.plan
                            return qualified, function.plan, tuple(names.items())
        return None

    for call, binding in _attribute_call_sites(attribute_bindings, function_of, attribute_assigned_elsewhere):
        key, plan, names = binding
        sites.append(_CallSite(call, plan, _hoist_statement(call, parents), key, names))
    for call in instance_calls:
        found = function_of(call.func)
        if found is not None:
            sites.append(_CallSite(call, found[1], _hoist_statement(call, parents), found[0], found[2]))
    if scope_root is not module and any(scopes.get(site.call) is None for site in sites):
        # Not expected (the statements were chosen to hold every site), but a site without its
        # scope would pass the shadowing test unexamined: the whole module, then.
        scope_root = module
        scopes = MetadataWrapper(module, unsafe_skip_copy=True).resolve(ScopeProvider)
        global_scope = scopes[module]

    replacements: dict[cst.Call, cst.BaseExpression] = {}
    hoisted: dict[cst.SimpleStatementLine, list[cst.SimpleStatementLine]] = {}
    needed_functions: dict[str, str] = {}  # Function key -> generated function name
    generated_names: dict[str, dict[str, cst.BaseExpression]] = {}
    skipped_sites: set[cst.Call] = set()

    sites.sort(key=lambda s: layout.position_of(s.call))
    planned_calls = {s.call for s in sites}
    inline_calls: set[cst.Call] = set()  # rewritten inline: pure, arguments already hoisted
    for site in sites:
        where = position(site.call)
        if site.statement is not None and _has_skip_pragma(site.statement):
            result.notes.append(f"{where}: skipped call of {site.plan.function} (# {SKIP_PRAGMA})")
            skipped_sites.add(site.call)
            continue
        problem = _check_arguments(site.call, site.plan)
        if problem is not None:
            result.refusals.append(Refusal(problem[0], f"{site.plan.function}: {problem[1]}", where, site.plan.function))
            skipped_sites.add(site.call)
            continue
        scope = scopes.get(site.call)
        names = dict(site.names)
        free_here = {code(names[n]) if n in names else n for n in site.plan.free_names
                     if not (options.inline_constants and n in dict(site.plan.constants))}
        shadowed = _shadowed_names(free_here, scope, global_scope)
        bound = _bind(site.call, site.plan)
        inline_ok = options.form == "inline" and not shadowed
        temporaries: list[tuple[str, cst.BaseExpression]] = []
        if inline_ok and any(_contains(arg.value, planned_calls) for arg in site.call.args):
            inline_ok = False  # a nested call site inside an argument is rewritten in place
        if inline_ok:
            for parameter, argument in bound.items():
                if _duplicable(argument):
                    continue
                if site.statement is None or not _nothing_observable_before(site.call, site.statement, parents, inline_calls):
                    inline_ok = False
                    break
                temp = _fresh_name(f"_fgi_{parameter}", taken_names)
                temporaries.append((temp, argument))
                bound[parameter] = cst.Name(temp)
        if inline_ok:
            inline_calls.add(site.call)
            replacements[site.call] = fgi_expression(site.plan, {**names, **bound}, options.finite_only,
                                                     options.inline_constants)
            if temporaries:
                assert site.statement is not None
                hoisted.setdefault(site.statement, []).extend(
                    cst.SimpleStatementLine(body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(t))], value=strip_parens(v))])
                    for t, v in temporaries
                )
            result.rewrites.append(Rewrite(where, site.plan.function, "inline"))
        else:
            # Names of temporaries picked for this call are released: nothing was emitted.
            function_name = needed_functions.get(site.key)
            if function_name is None:
                function_name = _fresh_name(f"_fgi_{_snake(site.plan.function)}", taken_names)
                needed_functions[site.key] = function_name
                generated_names[site.key] = names
            replacements[site.call] = site.call.with_changes(func=cst.Name(function_name))
            reason = "shadowed " + ", ".join(sorted(shadowed)) if shadowed else (
                "requested" if options.form == "function" else "arguments evaluated conditionally or after other effects")
            result.rewrites.append(Rewrite(where, site.plan.function, f"function ({reason})"))

    for name in plans:
        # References come from libcst in set order: sort them so reports do not vary between runs.
        for node in sorted(kept.get(name, []), key=layout.position_of):
            if not _inside(node, plans, parents, module):
                result.notes.append(
                    f"{position(node)}: FGI204 {name} is referenced as `{_shown(node, parents)}`; "
                    "the Function is kept for it"
                )

    # What the rewrite made unused, if nothing else can see it.
    removable: set[str] = set()
    if options.remove_unused:
        exported = _dunder_all(module)
        for alias, name in aliases.items():
            if not kept.get(alias) and not any(s.call not in replacements for s in sites if _calls(s.call, alias)) \
                    and alias not in exported and not (referenced_elsewhere and referenced_elsewhere(alias)):
                removable.add(alias)
        for name, plan in plans.items():
            outside = [n for n in kept.get(name, []) if not _inside(n, plans, parents, module)]
            unresolved_alias = any(a not in removable for a, n in aliases.items() if n == name)
            if outside or unresolved_alias or any(s.call in skipped_sites for s in sites if s.plan is plan):
                continue
            if any(name in p.free_names for p in plans.values()):
                continue
            if name in exported or (referenced_elsewhere and referenced_elsewhere(name)):
                result.notes.append(f"{plan.position}: kept {name}: it may be used by other modules")
                continue
            removable.add(name)

    all_plans = {**plans, **external_functions}
    generated = {
        key: generated_function(all_plans[key], gen, _annotations(all_plans[key], index), options.finite_only,
                                options.inline_constants, generated_names.get(key, {}))
        for key, gen in needed_functions.items()
    }
    touched_lines = {_enclosing_line(call, parents) for call in replacements} - {None}
    changed_classes = {*removable, *generated}
    targets = [*replacements, *hoisted, *touched_lines, *alias_statements.values(),
               *(node for node, _ in statements(module) if isinstance(node, cst.ClassDef)
                 and node.name.value in changed_classes)]
    transformer = _Applier(replacements, hoisted, removable, alias_statements, generated, touched_lines, module,
                          options.black_mode, new_imports, options.formatted, _with_ancestors(targets, parents, module))
    new_module = module.visit(transformer)
    # In a package's __init__, an import may be a re-export that other files rely on.
    new_module = _prune_imports(module, new_module, global_scope, referenced_elsewhere if is_package else None)
    result.module = new_module
    for name in sorted(removable):
        result.notes.append(f"{path}: removed {name}: no references left")
    return result


# A word, with the dot that makes it an attribute (`torch.sigmoid`, `x . y`, a line continued
# with a backslash), not a dot after a dot (`...`) or before a bare line break (`1.` ends a
# statement). Any character beyond ASCII counts as a letter: in code (not in strings and
# comments) such characters occur only in names, so a name's word is the name, even where its
# letters are marks that `\w` does not match.
_SPELLED_WORD = re.compile(r"((?<!\.)\.(?:[ \t\f]|\\\r?\n)*)?((?:[A-Za-z0-9_]|[^\x00-\x7f])+)")
_IMPORT_WORD = re.compile(r"\bimport\b")


def _scope_words(module: cst.Module, plans: dict[str, Plan], index: ModuleIndex, project: Optional[ProjectIndex],
                 module_name: Optional[str], is_package: bool) -> set[str]:
    """The global names whose bindings and uses the rewrite reads from the scope analysis: the
    planned Functions, every `NAME = X.apply` at module level (a possible alias), and imported
    names that can lead to a Function of the project (through them, other modules' Functions
    are called)."""
    words = set(plans)
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
            small = statement.body[0]
            if isinstance(small, cst.Assign) and len(small.targets) == 1 \
                    and isinstance(small.targets[0].target, cst.Name) \
                    and isinstance(small.value, cst.Attribute) and small.value.attr.value == "apply":
                words.add(small.targets[0].target.value)
    if project is not None and module_name is not None:
        for local, target in index.imports.items():
            if project.leads_to_function(absolute_target(module_name, is_package, target)):
                words.add(local)
    return words


_CLASS_WORTH_SPLITTING = 2_000  # characters: a smaller class is analysed whole


def _statements_for_scopes(module: cst.Module, words: set[str], sites: list[cst.CSTNode],
                           parents) -> list[cst.BaseStatement]:
    """The top-level statements a scope analysis needs, in order: those spelling one of `words`
    (a binding or a use of a name spells it), every statement that imports (for the import
    pruning) and those holding one of `sites`. Of a big class, only the statements of its body
    that qualify the same way (the class's own decorators and bases always), unless one of those
    may call something in the class's own scope.

    Scope facts about a name come only from statements that spell it; the scope of a node lies
    within its top-level statement, and the scope of a call in a method within that method (a
    method does not see its class's names); so for these names and nodes the analysis of this
    part of the module answers what an analysis of all of it does (tests hold the two equal)."""
    holding: set[cst.CSTNode] = set()
    for site in sites:
        node: Optional[cst.CSTNode] = site
        while node is not None and node not in holding:
            holding.add(node)
            node = parents.get(node)
    chosen = []
    for statement in module.body:
        code = statement_code(module, statement)
        if statement in holding or _needed_for_scopes(code, words):
            if isinstance(statement, cst.ClassDef) and isinstance(statement.body, cst.IndentedBlock) \
                    and len(code) > _CLASS_WORTH_SPLITTING:
                kept = [inner for inner in statement.body.body
                        if inner in holding or _needed_for_scopes(module.code_for_node(inner), words)]
                if len(kept) < len(statement.body.body) and not any(map(_may_call_in_class_scope, kept)):
                    statement = statement.with_changes(body=statement.body.with_changes(body=kept))
            chosen.append(statement)
    return chosen


def _may_call_in_class_scope(statement: cst.CSTNode) -> bool:
    """Could this statement of a class body hold a call evaluated in the class's own scope (in
    its body, a decorator, a default value)? Such a call sees names that any statement of the
    class binds: then the class is analysed whole."""
    if isinstance(statement, cst.FunctionDef):
        parts: list[cst.CSTNode] = [*statement.decorators, statement.params]
        if statement.returns is not None:
            parts.append(statement.returns)
    else:
        parts = [statement]
    return any(type(node) is cst.Call for part in parts for node in walk(part))


def _needed_for_scopes(code: str, words: set[str]) -> bool:
    return _IMPORT_WORD.search(code) is not None or not words.isdisjoint(
        name for dot, name in _SPELLED_WORD.findall(code) if not dot)


def _nested_refusal(nested, path: str, layout: StatementPositions) -> Refusal:
    return Refusal("FGI114", f"{nested.name} is defined inside a class or function; its calls are left alone",
                   Position(path, *layout.position_of(nested.node, nested.statement)), nested.name)


_INSTANCE_APPLY = re.compile(r"\)\s*\.\s*apply\b")
_APPLY = re.compile(r"\.\s*apply\b")
_DOTTED_END = re.compile(r"(?:[^\W\d]\w*\s*\.\s*)*[^\W\d]\w*$")


def _apply_receivers(text: str) -> list[Optional[str]]:
    """For each `.apply` in the text: the dotted name it is read from (`Fn.apply`, `Fn().apply`,
    `mod.Fn.apply` give "Fn", "Fn", "mod.Fn"), or None when it is read from anything else
    (`(f).apply`, `x[0].apply`, `f(a).apply`)."""
    receivers: list[Optional[str]] = []
    for match in _APPLY.finditer(text):
        before = text[max(0, match.start() - 300):match.start()].rstrip()
        if before.endswith(")"):  # `Fn()` / `Fn( )`
            opening = before[:-1].rstrip()
            if not opening.endswith("("):
                receivers.append(None)
                continue
            before = opening[:-1].rstrip()
        found = _DOTTED_END.search(before)
        if found is None or before[: found.start()].rstrip().endswith((".", ")", "]")):
            receivers.append(None)
            continue
        receivers.append(re.sub(r"\s+", "", found.group(0)))
    return receivers


def _may_call_project(text: str, index: ModuleIndex, project: Optional[ProjectIndex],
                      module_name: Optional[str], is_package: bool) -> bool:
    """Could a module without planned Functions of its own call one of another module?

    Conservative, on the text: every such call is reached from a name this module imports, so
    it spells an `.apply` read from an imported name (or from something the text does not
    tell), a name imported from where a planned Function or alias lives, or `.alias`."""
    if project is None or module_name is None:
        return False

    def planned(local: str, rest: str = "") -> bool:
        if local not in index.imports:
            return False
        qualified = project.resolve(absolute_target(module_name, is_package, index.imports[local]))
        for attribute in filter(None, rest.split(".")):
            qualified = project.resolve(f"{qualified}.{attribute}")
        return qualified in project.functions or qualified in project.aliases

    for receiver in _apply_receivers(text):
        if receiver is None:
            return True
        head, _, rest = receiver.partition(".")
        if planned(head, rest):
            return True
    if any(planned(local) for local in index.imports):
        return True
    aliases = {alias for summary in project.modules.values() for alias in summary.apply_aliases}
    return any(re.search(rf"\.\s*{re.escape(alias)}\b", text) for alias in aliases)


# ----------------------------------------------------------------------------- call sites
def _shown(reference: cst.CSTNode, parents) -> str:
    """A reference with what holds it (`Fn.apply`, `Fn[0]`); alone where that has no text of its
    own (an annotation `-> "Fn"`)."""
    holder = parents.get(reference)
    if holder is None or isinstance(holder, cst.Annotation):
        return code(reference)
    return code(holder)


def _check_arguments(call: cst.Call, plan: Plan) -> Optional[tuple[str, str]]:
    if any(arg.star or arg.keyword for arg in call.args):
        return "FGI201", "call uses keywords or argument unpacking"
    required = sum(1 for p in plan.parameters if p.default is None)
    if not required <= len(call.args) <= len(plan.parameters):
        return "FGI202", f"call passes {len(call.args)} arguments, forward takes {len(plan.parameters)}"
    if is_number(call.args[0].value):
        return "FGI202", "the spike input is a number, not a tensor"
    return None


def _bind(call: cst.Call, plan: Plan) -> dict[str, cst.BaseExpression]:
    bound: dict[str, cst.BaseExpression] = {}
    for parameter, arg in zip(plan.parameters, call.args):
        bound[parameter.name] = arg.value
    for parameter in plan.parameters[len(call.args):]:
        assert parameter.default is not None
        bound[parameter.name] = parameter.default
    return bound


def _duplicable(node: cst.BaseExpression) -> bool:
    """Reading it again costs nothing and observes nothing."""
    node = strip_parens(node)
    return isinstance(node, cst.Name) or is_number(node) or (
        isinstance(node, cst.SimpleString)
    )


_UNCONDITIONAL_PARENTS = (
    cst.Arg, cst.Call, cst.BinaryOperation, cst.UnaryOperation, cst.Attribute, cst.Subscript,
    cst.SubscriptElement, cst.Index, cst.Tuple, cst.List, cst.Element, cst.Comparison,
    cst.ComparisonTarget,
)


def _hoist_statement(call: cst.Call, parents) -> Optional[cst.SimpleStatementLine]:
    """The statement line before which temporaries for this call may go, if any."""
    child: cst.CSTNode = call
    node = parents.get(call)
    while node is not None and not isinstance(node, cst.BaseSmallStatement):
        if not isinstance(node, _UNCONDITIONAL_PARENTS):
            return None
        if isinstance(node, cst.Comparison) and child is not node.left and \
                (not node.comparisons or child is not node.comparisons[0]):
            return None  # a chained comparison evaluates later operands conditionally
        child, node = node, parents.get(node)
    if node is None:
        return None
    if isinstance(node, cst.Assign):
        if child is not node.value:
            return None
    elif isinstance(node, (cst.AnnAssign, cst.AugAssign)):
        if child is not node.value:
            return None
    elif not isinstance(node, (cst.Return, cst.Expr)):
        return None
    line = parents.get(node)
    if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
        return None
    block = parents.get(line)
    if not isinstance(block, (cst.IndentedBlock, cst.Module)):
        return None
    if isinstance(block, cst.IndentedBlock) and isinstance(parents.get(block), cst.ClassDef):
        return None
    return line


def _evaluated_before(call: cst.Call, statement: cst.SimpleStatementLine, parents) -> list[cst.CSTNode]:
    """Subtrees the statement evaluates before this call's arguments."""
    before: list[cst.CSTNode] = []
    child: cst.CSTNode = call
    node = parents.get(call)
    while node is not None and node is not statement:
        if isinstance(node, cst.AugAssign):
            before.append(node.target)
        elif isinstance(node, (cst.Assign, cst.AnnAssign, cst.Return, cst.Expr)):
            pass  # the value is evaluated first
        else:
            for sibling in node.children:
                if sibling is child:
                    break
                before.append(sibling)
        child, node = node, parents.get(node)
    return before


def _nothing_observable_before(call, statement, parents, inline_calls: set) -> bool:
    return all(_pure_subtree(subtree, inline_calls) for subtree in _evaluated_before(call, statement, parents))


def _pure_subtree(node: cst.CSTNode, inline_calls: set) -> bool:
    """Only reads of names, literals, attributes and operators: nothing that can act or fail late.
    A call already rewritten inline is pure FGI arithmetic whose arguments were hoisted."""
    if isinstance(node, cst.Call):
        return node in inline_calls
    if isinstance(node, (cst.Lambda, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp,
                         cst.Await, cst.Yield, cst.NamedExpr, cst.Subscript, cst.IfExp,
                         cst.BooleanOperation)):
        return False
    return all(_pure_subtree(child, inline_calls) for child in node.children)


def _shadowed_names(free_names: set[str], scope: Optional[Scope], global_scope: Scope) -> set[str]:
    if scope is None or scope is global_scope:
        return set()
    shadowed = set()
    for name in free_names:
        for assignment in scope[name]:
            if assignment.scope is not global_scope and not _is_builtin(assignment):
                shadowed.add(name)
    return shadowed


def _is_builtin(assignment) -> bool:
    return type(assignment).__name__ == "BuiltinAssignment"


def _module_alias(attribute: cst.Attribute, parents, module: cst.Module):
    """`alias = Fn.apply` at module level: (alias, statement line)."""
    assign = parents.get(attribute)
    if not isinstance(assign, cst.Assign) or assign.value is not attribute or len(assign.targets) != 1:
        return None
    target = assign.targets[0].target
    line = parents.get(assign)
    if not isinstance(target, cst.Name) or not isinstance(line, cst.SimpleStatementLine):
        return None
    if parents.get(line) is not module or len(line.body) != 1:
        return None
    return target.value, line


def _contains(node: cst.CSTNode, calls: set) -> bool:
    if node in calls:
        return True
    return any(_contains(child, calls) for child in node.children)


def _enclosing_line(node: cst.CSTNode, parents) -> Optional[cst.SimpleStatementLine]:
    current = parents.get(node)
    while current is not None and not isinstance(current, cst.SimpleStatementLine):
        if isinstance(current, cst.BaseCompoundStatement):
            return None
        current = parents.get(current)
    return current


def _calls(call: cst.Call, name: str) -> bool:
    return isinstance(call.func, cst.Name) and call.func.value == name


def _inside(node: cst.CSTNode, plans: dict[str, Plan], parents, module: cst.Module) -> bool:
    """A reference from inside the Function's own class body does not keep it alive."""
    current = parents.get(node)
    while current is not None and current is not module:
        if isinstance(current, cst.ClassDef) and current.name.value in plans:
            return True
        current = parents.get(current)
    return False


def _has_skip_pragma(node: cst.CSTNode) -> bool:
    comments: list[Optional[cst.Comment]] = []
    if isinstance(node, cst.ClassDef):
        if isinstance(node.body, cst.IndentedBlock):
            comments.append(node.body.header.comment)
    elif isinstance(node, cst.SimpleStatementLine):
        comments.append(node.trailing_whitespace.comment)
    return any(c is not None and SKIP_PRAGMA in c.value for c in comments)


def _dunder_all(module: cst.Module) -> set[str]:
    names: set[str] = set()
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                targets = []
                if isinstance(small, cst.Assign):
                    targets = [t.target for t in small.targets]
                    value = small.value
                elif isinstance(small, (cst.AugAssign, cst.AnnAssign)) and small.value is not None:
                    targets = [small.target]
                    value = small.value
                if any(isinstance(t, cst.Name) and t.value == "__all__" for t in targets):
                    for element in getattr(value, "elements", []):
                        if isinstance(element.value, cst.SimpleString):
                            names.add(element.value.evaluated_value)  # type: ignore[arg-type]
    return names


def _all_names(text: str) -> set[str]:
    """Every identifier-like word of the module: a superset of its names (words in strings and
    comments too), so a fresh name never collides; one regex is far cheaper than a visit."""
    return set(_WORD.findall(text))


_WORD = re.compile(r"[^\W\d]\w*")


def _fresh_name(base: str, taken: set[str]) -> str:
    candidate, counter = base, 1
    while candidate in taken:
        counter += 1
        candidate = f"{base}_{counter}"
    taken.add(candidate)
    return candidate


def _snake(name: str) -> str:
    out = []
    for position, char in enumerate(name):
        if char.isupper() and position and (not name[position - 1].isupper()):
            out.append("_")
        out.append(char.lower())
    return "".join(out)


def _annotations(plan: Plan, index: ModuleIndex) -> dict[str, Optional[cst.BaseExpression]]:
    """Types for TorchScript: the input is a Tensor; other parameters from forward or defaults."""
    annotations: dict[str, Optional[cst.BaseExpression]] = {}
    torch_alias = index.alias_for("torch")
    for position, parameter in enumerate(plan.parameters):
        if parameter.annotation is not None:
            annotations[parameter.name] = parameter.annotation
        elif position == 0 and torch_alias is not None:
            annotations[parameter.name] = cst.parse_expression(f"{torch_alias}.Tensor")
        elif parameter.default is not None and is_number(parameter.default):
            literal = strip_parens(parameter.default)
            if isinstance(literal, cst.UnaryOperation):
                literal = strip_parens(literal.expression)
            annotations[parameter.name] = cst.Name("float" if isinstance(literal, cst.Float) else "int")
        else:
            annotations[parameter.name] = None
    return annotations


# ---------------------------------------------------------------------------- applying
def _with_ancestors(nodes, parents, root: cst.CSTNode) -> set[cst.CSTNode]:
    found: set[cst.CSTNode] = {root}
    for node in nodes:
        while node is not None and node not in found:
            found.add(node)
            node = parents.get(node)
    return found


class _Applier(cst.CSTTransformer):
    """Applies the planned changes. It enters only the nodes on the way to one (`paths`): a
    transformer that visits every node of a big module costs more than the analysis."""

    def __init__(self, replacements, hoisted, removable, alias_statements, generated, touched_lines, module,
                 black_mode, new_imports, formatted, paths: set[cst.CSTNode]):
        self.paths = paths
        self.black_mode = black_mode
        self.formatted = formatted
        self.new_imports = new_imports
        self.touched_lines = touched_lines
        self.module = module
        self.depth = 0
        self.replacements = replacements
        self.hoisted = hoisted
        self.removable = removable
        self.alias_lines = {line: alias for alias, line in alias_statements.items()}
        self.generated = generated  # Function name -> FunctionDef

    def on_visit(self, node: cst.CSTNode) -> bool:
        return node in self.paths and super().on_visit(node)

    def on_leave(self, original, updated):
        return super().on_leave(original, updated) if original in self.paths else updated

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        replacement = self.replacements.get(original)
        if replacement is None:
            return updated
        if isinstance(replacement, cst.Call) and replacement.func is not original.func and \
                isinstance(replacement.func, cst.Name) and replacement.args is original.args:
            # Generated-function form: keep the (possibly rewritten) arguments.
            return updated.with_changes(func=replacement.func)
        return replacement.with_changes(lpar=original.lpar, rpar=original.rpar) if original.lpar else \
            _wrap_if_needed(replacement)

    def visit_IndentedBlock(self, node) -> None:
        self.depth += 1

    def leave_IndentedBlock(self, original, updated):
        self.depth -= 1
        return updated

    def _formatted(self, line: cst.SimpleStatementLine) -> cst.SimpleStatementLine:
        """The new statement as black writes it at this depth; the rest of the file is untouched."""
        if not self.formatted:
            return line
        width = self.depth * len(self.module.default_indent.expandtabs())
        bare = line.with_changes(leading_lines=[])
        text = format_snippet(cst.Module(body=[bare]).code, width, self.black_mode)
        try:
            parsed = cst.parse_statement(text, config=self.module.config_for_parsing)
        except cst.ParserSyntaxError:
            return line
        if not isinstance(parsed, cst.SimpleStatementLine):
            return line
        return parsed.with_changes(leading_lines=line.leading_lines)

    def leave_SimpleStatementLine(self, original, updated):
        if original in self.alias_lines and self.alias_lines[original] in self.removable:
            return cst.RemoveFromParent()
        if original in self.touched_lines:
            updated = self._formatted(updated)
        temporaries = [self._formatted(t) for t in self.hoisted.get(original, [])]
        if temporaries:
            first = temporaries[0].with_changes(leading_lines=updated.leading_lines)
            return cst.FlattenSentinel([first, *temporaries[1:], updated.with_changes(leading_lines=[])])
        return updated

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef):
        generated = self.generated.get(original.name.value)
        if original.name.value in self.removable:
            if generated is not None:
                return generated.with_changes(leading_lines=updated.leading_lines)
            return cst.RemoveFromParent()
        if generated is not None:
            spaced = generated.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
            return cst.FlattenSentinel([updated, spaced])
        return updated


    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        # Generated functions for Functions defined elsewhere, and the imports the new code
        # needs, go after the module's last top-level import.
        external = [fn for key, fn in self.generated.items() if "." in key]
        if not external and not self.new_imports:
            return updated
        body = list(updated.body)
        position = 0
        for number, statement in enumerate(body):
            if isinstance(statement, cst.SimpleStatementLine) and any(
                    isinstance(s, (cst.Import, cst.ImportFrom)) for s in statement.body):
                position = number + 1
            elif number == position and _is_docstring(statement):
                position = number + 1
        insert: list[cst.BaseStatement] = list(self.new_imports)
        for function in external:
            insert.append(function.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()]))
        if external and position < len(body):
            body[position] = body[position].with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
        return updated.with_changes(body=body[:position] + insert + body[position:])


def _is_docstring(statement: cst.CSTNode) -> bool:
    return (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1
            and isinstance(statement.body[0], cst.Expr)
            and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString)))


def _wrap_if_needed(node: cst.BaseExpression) -> cst.BaseExpression:
    # The FGI value is a sum; it replaces a call, which binds tighter than any operator.
    if isinstance(node, cst.BinaryOperation) and not node.lpar:
        return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return node


def _prune_imports(old: cst.Module, new: cst.Module, old_global: Scope,
                   referenced_elsewhere: Optional[ReferencedElsewhere]) -> cst.Module:
    """Drop top-level import names that were used before the rewrite and are not after it.

    "Not used after" is decided on the text: the name no longer occurs as a word anywhere in the
    new module outside import statements (a second scope analysis of the whole module costs
    more than the rewrite). A word in a string or comment keeps the import: the safe side.
    In a package __init__, a name another file mentions may be a re-export and is kept.
    A name that is not ASCII is always kept (the word test below reads ASCII words).

    `old_global` may come from an analysis of part of the old module, if that part holds every
    top-level import: a name it misses was used only in statements the rewrite left as they
    were, so it still occurs after the rewrite and is kept either way."""
    candidates = set()
    for assignment in old_global.assignments:
        if isinstance(getattr(assignment, "node", None), (cst.Import, cst.ImportFrom)) and assignment.references:
            candidates.add(assignment.name)
    if not candidates:
        return new
    old_codes = memo_for(old).codes  # statements the rewrite left alone: their text is known
    body_text = "".join(
        old_codes.get(statement) or new.code_for_node(statement) for statement in new.body
        if not (isinstance(statement, cst.SimpleStatementLine)
                and all(isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body))
    )
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", body_text))
    orphaned = {name for name in candidates if name.isascii() and name.split(".")[0] not in words
                and not (referenced_elsewhere is not None and referenced_elsewhere(name))}
    if not orphaned:
        return new
    return new.visit(_ImportPruner(orphaned, new))


class _ImportPruner(cst.CSTTransformer):
    def __init__(self, names: set[str], module: cst.Module):
        self.names = names
        self.module = module
        self.depth = 0

    def visit_FunctionDef(self, node) -> bool:
        return False

    def visit_ClassDef(self, node) -> bool:
        return False

    def _bound(self, alias: cst.ImportAlias) -> str:
        if alias.asname is not None:
            return alias.asname.name.value  # type: ignore[union-attr]
        full = code(alias.name)
        return full.split(".")[0]

    def leave_Import(self, original, updated):
        keep = [a for a in updated.names if self._bound(a) not in self.names]
        if not keep:
            return cst.RemoveFromParent()
        if len(keep) != len(updated.names):
            keep[-1] = keep[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            return updated.with_changes(names=keep)
        return updated

    def leave_ImportFrom(self, original, updated):
        if isinstance(updated.names, cst.ImportStar):
            return updated
        keep = [a for a in updated.names if (a.asname.name.value if a.asname else code(a.name)) not in self.names]  # type: ignore[union-attr]
        if not keep:
            return cst.RemoveFromParent()
        if len(keep) != len(updated.names):
            keep[-1] = keep[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            return updated.with_changes(names=keep)
        return updated


# ------------------------------------------------------------------- other modules' Functions
def _external_site(name_node: cst.Name, target: str, project: ProjectIndex, parents):
    """A call of a Function (or alias) defined in another module, reached through an imported
    name: `Fn.apply(...)`, `alias(...)`, `mod.Fn.apply(...)`, `pkg.mod.alias(...)`."""
    node: cst.CSTNode = name_node
    qualified = target
    for _ in range(8):
        parent = parents.get(node)
        if qualified in project.aliases:
            if isinstance(parent, cst.Call) and parent.func is node:
                return parent, project.functions[project.aliases[qualified]]
            return None
        if qualified in project.functions:
            if isinstance(parent, cst.Attribute) and parent.value is node and parent.attr.value == "apply":
                grandparent = parents.get(parent)
                if isinstance(grandparent, cst.Call) and grandparent.func is parent:
                    return grandparent, project.functions[qualified]
            return None
        if not isinstance(parent, cst.Attribute) or parent.value is not node:
            return None
        qualified = project.resolve(f"{qualified}.{parent.attr.value}")
        node = parent
    return None


class _ModuleSpelling:
    """How the module being rewritten can name what another module's FGI code reads."""

    def __init__(self, index: ModuleIndex, module_name: str, is_package: bool, taken: set[str],
                 new_imports: list[cst.SimpleStatementLine]):
        self.index = index
        self.module_name = module_name
        self.is_package = is_package
        self.taken = taken
        self.new_imports = new_imports
        self.added: dict[str, str] = {}  # qualified target -> local name added by us

    def qualified_import(self, local: str) -> Optional[str]:
        target = self.index.imports.get(local)
        if target is None or not self.index.is_unique(local):
            return None
        return absolute_target(self.module_name, self.is_package, target)

    def _local_for(self, target: str) -> Optional[str]:
        for local in self.index.imports:
            if self.qualified_import(local) == target:
                return local
        if target.rpartition(".")[0] == self.module_name and self.index.is_unique(target.rpartition(".")[2]):
            return target.rpartition(".")[2]
        return self.added.get(target)

    def names_for(self, function: ProjectFunction) -> Optional[dict[str, cst.BaseExpression]]:
        names: dict[str, cst.BaseExpression] = {}
        for free, binding in function.bindings:
            if binding.kind == "builtin":
                if free in self.index.assigned:
                    return None  # this module rebinds a builtin the surrogate uses
                continue
            local = self._local_for(binding.target)
            if local is None:
                # A placeholder stands for a name of another module: import it under that name.
                preferred = binding.target.rpartition(".")[2] if free.startswith("__fgi__") else free
                local = self._add_import(binding.target, preferred=preferred)
            names[free] = cst.Name(local)
        return names

    def _add_import(self, target: str, preferred: str) -> str:
        local = preferred if preferred not in self.taken else _fresh_name(f"_fgi_{preferred}", self.taken)
        self.taken.add(local)
        parent, _, last = target.rpartition(".")
        if not parent:
            statement = f"import {target}" + (f" as {local}" if local != target else "")
        else:
            source = parent
            top = self.module_name.split(".")[0]
            if parent.split(".")[0] == top and "." in self.module_name:
                # Same package: a relative import works however the package is installed.
                own = self.module_name.split(".") if self.is_package else self.module_name.split(".")[:-1]
                theirs = parent.split(".")
                common = 0
                while common < min(len(own), len(theirs)) and own[common] == theirs[common]:
                    common += 1
                source = "." * (len(own) - common + 1) + ".".join(theirs[common:])
            statement = f"from {source} import {last}" + (f" as {local}" if local != last else "")
        self.new_imports.append(cst.parse_statement(statement + "\n"))  # type: ignore[arg-type]
        self.added[target] = local
        return local


def _attribute_path(node: cst.BaseExpression) -> list[str]:
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.insert(0, node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.insert(0, node.value)
    return parts


AttributeBindings = Optional[tuple[dict[str, list[cst.BaseExpression]], list[cst.Call]]]


def _attribute_bindings(module: cst.Module, parents) -> AttributeBindings:
    """What every attribute name is bound to in this module (`self.f = ...`, `obj.f = ...`, a
    class attribute `f = ...`), and the calls `self.f(...)` / `cls.f(...)`; None when the module
    calls setattr or delattr (then any attribute may be bound to anything)."""
    bindings: dict[str, list[cst.BaseExpression]] = {}

    def record(target: cst.BaseExpression, value: Optional[cst.BaseExpression], statement: cst.CSTNode) -> None:
        if isinstance(target, cst.Attribute):
            bindings.setdefault(target.attr.value, []).append(value if value is not None else cst.Name("None"))
        elif isinstance(target, cst.Name) and _in_class_body(statement, parents):
            bindings.setdefault(target.value, []).append(value if value is not None else cst.Name("None"))
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                record(element.value, None, statement)  # unpacking: value unknown

    calls: list[cst.Call] = []
    for node in walk(module):
        kind = type(node)  # libcst's node classes have no subclasses; `is` beats an ABC isinstance
        if kind is cst.Assign:
            for target in node.targets:
                record(target.target, node.value, node)
        elif kind is cst.AnnAssign:
            record(node.target, node.value, node)
        elif kind is cst.AugAssign:
            record(node.target, None, node)
        elif kind is cst.Call:
            func = node.func
            if isinstance(func, cst.Name) and func.value in ("setattr", "delattr"):
                return None
            if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) \
                    and func.value.value in ("self", "cls"):
                calls.append(node)
    return bindings, calls


def _possible_attribute_sites(found: AttributeBindings) -> list[cst.Call]:
    """The calls `self.f(...)` that may be sites: every binding of `f` is a name or an attribute
    (what an apply, an alias or an imported alias is spelled as)."""
    if found is None:
        return []
    bindings, calls = found
    shaped = {attribute for attribute, values in bindings.items()
              if all(isinstance(strip_parens(v), (cst.Name, cst.Attribute)) for v in values)}
    return [call for call in calls if call.func.attr.value in shaped]  # type: ignore[attr-defined]


def _attribute_call_sites(found: AttributeBindings, function_of, assigned_elsewhere):
    """Calls `self.f(...)` where every binding of the attribute `f` that the tool can see, in
    any class of this module (and, as text, in the other files of the project), is the same
    Function's apply. One other binding (a Module, a lambda) and the attribute is left alone."""
    if found is None:
        return []
    bindings, calls = found
    valid: dict[str, tuple] = {}
    for attribute, values in bindings.items():
        found_values = [function_of(v) for v in values]
        if any(f is None for f in found_values) or len({f[0] for f in found_values}) != 1:  # type: ignore[index]
            continue
        if assigned_elsewhere is not None and assigned_elsewhere(attribute):
            continue
        valid[attribute] = found_values[0]
    return [(call, valid[call.func.attr.value]) for call in calls if call.func.attr.value in valid]  # type: ignore[attr-defined]


def _in_class_body(node: cst.CSTNode, parents) -> bool:
    """Inside a class and inside no function (a class attribute, however deep in its body)."""
    in_class = False
    current = parents.get(node)
    while current is not None:
        if isinstance(current, cst.FunctionDef):
            return False
        in_class = in_class or isinstance(current, cst.ClassDef)
        current = parents.get(current)
    return in_class


def _is_instance_apply_call(name: cst.CSTNode, parents) -> bool:
    instance = parents.get(name)
    attribute = parents.get(instance) if instance is not None else None
    call = parents.get(attribute) if attribute is not None else None
    return (isinstance(instance, cst.Call) and instance.func is name and not instance.args
            and isinstance(attribute, cst.Attribute) and attribute.value is instance
            and attribute.attr.value == "apply" and isinstance(call, cst.Call) and call.func is attribute)


def _instance_apply_calls(module: cst.Module, text: str) -> list[cst.Call]:
    if not _INSTANCE_APPLY.search(text):
        return []
    return [node for node in walk(module)
            if type(node) is cst.Call and isinstance(node.func, cst.Attribute) and node.func.attr.value == "apply"
            and isinstance(node.func.value, cst.Call) and not node.func.value.args]
