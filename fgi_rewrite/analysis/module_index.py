"""What a module binds at top level: imports (as qualified names), helpers, constants, classes.

The analysis asks this index what a name in forward/backward refers to. Only top-level
bindings are recorded; a name bound more than once is recorded as ambiguous.
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field
from typing import Optional

import libcst as cst

from .expressions import dotted_name, is_literal
from .module_names import absolute_target
from .positions import statements, memo_for, module_text, statement_code


@dataclass
class ModuleIndex:
    imports: dict[str, str] = field(default_factory=dict)  # local name -> qualified name
    star_imports: list[str] = field(default_factory=list)  # modules imported with *
    helpers: dict[str, cst.FunctionDef] = field(default_factory=dict)
    classes: dict[str, cst.ClassDef] = field(default_factory=dict)
    constants: dict[str, cst.BaseExpression] = field(default_factory=dict)  # literal values
    assigned: dict[str, int] = field(default_factory=dict)  # name -> number of top-level bindings
    values: dict[str, cst.BaseExpression] = field(default_factory=dict)  # single-assignment values
    name: str = ""  # qualified module name, when known (whole-project runs)
    is_package: bool = False

    def qualify(self, node: cst.BaseExpression) -> Optional[str]:
        """`T.exp` -> "torch.exp" when `import torch as T`; None when the head is not an import."""
        dotted = dotted_name(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        target = self.imports.get(head)
        if target is None:
            return None
        return f"{target}.{rest}" if rest else target

    def alias_for(self, qualified: str) -> Optional[str]:
        """A local spelling of a module, e.g. "torch" -> "T" after `import torch as T`."""
        for local, target in self.imports.items():
            if target == qualified and self.assigned.get(local, 0) == 1:
                return local
        for local, target in self.imports.items():
            if qualified.startswith(target + ".") and self.assigned.get(local, 0) == 1:
                return local + qualified[len(target):]
        return None

    def is_unique(self, name: str) -> bool:
        return self.assigned.get(name, 0) == 1

    def absolute(self, target: str) -> str:
        """An import target of this module with its leading dots resolved."""
        return absolute_target(self.name, self.is_package, target)


def _record_import(index: ModuleIndex, node: cst.CSTNode) -> None:
    if isinstance(node, cst.Import):
        for alias in node.names:
            full = dotted_name(alias.name)
            if full is None:
                continue
            if alias.asname is not None:
                local = alias.asname.name.value  # type: ignore[union-attr]
                index.imports[local] = full
            else:
                local = full.split(".")[0]
                index.imports.setdefault(local, local)
            index.assigned[local] = index.assigned.get(local, 0) + 1
    elif isinstance(node, cst.ImportFrom):
        module = "." * len(node.relative) + ((dotted_name(node.module) or "") if node.module else "")
        if isinstance(node.names, cst.ImportStar):
            index.star_imports.append(module)
            return
        for alias in node.names:
            name = dotted_name(alias.name) or ""
            local = alias.asname.name.value if alias.asname else name  # type: ignore[union-attr]
            if not module:
                index.imports[local] = name
            elif set(module) == {"."}:
                index.imports[local] = f"{module}{name}"
            else:
                index.imports[local] = f"{module}.{name}"
            index.assigned[local] = index.assigned.get(local, 0) + 1


def _target_names(target: cst.BaseExpression) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        names: list[str] = []
        for element in target.elements:
            names.extend(_target_names(element.value))
        return names
    return []


def module_index_for(module: cst.Module) -> ModuleIndex:
    """build_module_index, once per module and process. The index is shared: callers that set
    its name take a copy (dataclasses.replace)."""
    memo = memo_for(module)
    if memo.index is None:
        memo.index = build_module_index(module)
    return memo.index  # type: ignore[return-value]


def build_module_index(module: cst.Module) -> ModuleIndex:
    index = ModuleIndex()

    def bind(name: str) -> None:
        index.assigned[name] = index.assigned.get(name, 0) + 1

    def scan(body) -> None:
        for statement in body:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, (cst.Import, cst.ImportFrom)):
                        _record_import(index, small)
                    elif isinstance(small, cst.Assign):
                        for target in small.targets:
                            for name in _target_names(target.target):
                                bind(name)
                                if isinstance(target.target, cst.Name) and len(small.targets) == 1:
                                    index.values[name] = small.value
                                    if is_literal(small.value):
                                        index.constants[name] = small.value
                    elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                        bind(small.target.value)
                        if small.value is not None:
                            index.values[small.target.value] = small.value
                            if is_literal(small.value):
                                index.constants[small.target.value] = small.value
                    elif isinstance(small, cst.AugAssign) and isinstance(small.target, cst.Name):
                        bind(small.target.value)
            elif isinstance(statement, cst.FunctionDef):
                bind(statement.name.value)
                index.helpers[statement.name.value] = statement
            elif isinstance(statement, cst.ClassDef):
                bind(statement.name.value)
                index.classes[statement.name.value] = statement
            elif isinstance(statement, cst.Try):
                # try/except imports: the first branch is what a normal install runs.
                scan(statement.body.body)
                for handler in statement.handlers:
                    for inner in handler.body.body:
                        if isinstance(inner, cst.SimpleStatementLine):
                            for small in inner.body:
                                for name in _bound_by(small):
                                    bind(name)
            elif isinstance(statement, (cst.If, cst.For, cst.While, cst.With)):
                # Conditional bindings make a name ambiguous for the analysis.
                for name in _names_bound_in(statement):
                    bind(name)
                    bind(name)

    scan(module.body)

    # `global NAME` in any function rebinds the module's NAME at run time.
    if _GLOBAL_STATEMENT.search(module_text(module)):  # walking costs far more than the search
        for statement in module.body:
            if isinstance(statement, cst.BaseCompoundStatement) and \
                    _GLOBAL_STATEMENT.search(statement_code(module, statement)):
                for node, _ in statements(statement):
                    if isinstance(node, cst.Global):
                        for item in node.names:
                            bind(item.name.value)
                            bind(item.name.value)
    # Constants that are reassigned are not constants.
    for name in list(index.constants):
        if index.assigned.get(name, 0) != 1:
            del index.constants[name]
    for name in list(index.values):
        if index.assigned.get(name, 0) != 1:
            del index.values[name]
    return index


_GLOBAL_STATEMENT = re.compile(r"\bglobal\b")


def _bound_by(small: cst.CSTNode) -> list[str]:
    if isinstance(small, cst.Import):
        return [
            a.asname.name.value if a.asname else (dotted_name(a.name) or "").split(".")[0]  # type: ignore[union-attr]
            for a in small.names
        ]
    if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
        return [a.asname.name.value if a.asname else dotted_name(a.name) or "" for a in small.names]  # type: ignore[union-attr]
    if isinstance(small, cst.Assign):
        return [n for t in small.targets for n in _target_names(t.target)]
    if isinstance(small, (cst.AnnAssign, cst.AugAssign)) and isinstance(small.target, cst.Name):
        return [small.target.value]
    return []


def _names_bound_in(statement: cst.CSTNode) -> set[str]:
    names: set[str] = set()

    class _Binder(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            names.add(node.name.value)
            return False

        def visit_ClassDef(self, node: cst.ClassDef) -> bool:
            names.add(node.name.value)
            return False

        def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
            for small in node.body:
                names.update(_bound_by(small))
            return False

    statement.visit(_Binder())
    return names
