"""Configuration: `[tool.fgi-rewrite]` and `[tool.black]` of the nearest pyproject.toml.

The file is found as black finds it: from the common parent of the paths given on the command
line, upwards to the first directory holding `.git`, `.hg` or `pyproject.toml` (the project
root); its `pyproject.toml`, if there is one, is read. `--config FILE` names one explicitly.
Keys may be spelled with dashes or underscores. Command-line flags override the file.

    [tool.fgi-rewrite]
    include = '\\.py$'              # regex, matched against "/path/relative/to/root"
    exclude = '/(build|dist)/'      # regex; replaces the defaults *and* .gitignore (like black)
    extend-exclude = '/generated/'  # regex; added to the defaults
    force-exclude = true            # exclusions also apply to files named on the command line
                                    # (a regex string here works like black's --force-exclude)
    form = "inline"                 # or "function"
    finite-only = false
    keep-unused = false
    select = ["FGI"]                # which refusal codes are reported (prefixes, like ruff)
    ignore = ["FGI104"]
    extend-select = []
    extend-ignore = []
    jobs = 4
    syntax-check = true             # also syntax-check files that cannot contain a Function

`[tool.black]` line-length, target-version, skip-string-normalization,
skip-magic-trailing-comma, preview and unstable shape the black.Mode of the emitted code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence

if TYPE_CHECKING:
    import black

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10: black depends on tomli there
    import tomli as tomllib  # type: ignore[no-redef]

from .codes import CODES
from .project import find_project_root

SECTION = "fgi-rewrite"


class ConfigError(Exception):
    """A configuration file or value that cannot be used (exit 2, like a usage error)."""


_BOOL, _STR, _INT, _REGEX, _CODES = "a boolean", "a string", "an integer", "a regular expression", "a list of codes"

# key (underscored) -> kind
KEYS: dict[str, str] = {
    "include": _REGEX,
    "exclude": _REGEX,
    "extend_exclude": _REGEX,
    "force_exclude": "true, false or a regular expression",
    "form": _STR,
    "finite_only": _BOOL,
    "inline_constants": _BOOL,
    "keep_unused": _BOOL,
    "select": _CODES,
    "ignore": _CODES,
    "extend_select": _CODES,
    "extend_ignore": _CODES,
    "jobs": _INT,
    "syntax_check": _BOOL,
}
FORMS = ("inline", "function")


@dataclass(frozen=True)
class Config:
    root: Path
    path: Optional[Path] = None  # the file read, if any
    values: dict[str, Any] = field(default_factory=dict)  # validated, underscored keys
    black_mode: Optional["black.Mode"] = None  # None: no [tool.black], black's defaults
    warnings: tuple[str, ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def _normalise(table: dict) -> dict:
    return {str(k).replace("-", "_"): v for k, v in table.items()}


def read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None


def parse_codes(value: Any, where: str) -> list[str]:
    """A list of code prefixes, or one comma-separated string; validated against the code table."""
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        raise ConfigError(f"{where}: expected {_CODES}, got {value!r}")
    codes = []
    for item in items:
        for part in item.split(","):
            part = part.strip().upper()
            if not part:
                continue
            if part != "ALL" and not any(code.startswith(part) for code in CODES):
                raise ConfigError(f"{where}: unknown code or prefix {part!r} (known: FGI1xx, FGI2xx, FGI9xx; or ALL)")
            codes.append(part)
    return codes


def _validate(key: str, value: Any, where: str) -> Any:
    kind = KEYS[key]
    label = f"{where} {key.replace('_', '-')}"
    if kind == _BOOL:
        if not isinstance(value, bool):
            raise ConfigError(f"{label}: expected {kind}, got {value!r}")
    elif kind == _INT:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{label}: expected a positive integer, got {value!r}")
    elif kind == _REGEX:
        _compile(value, label)
    elif kind == _CODES:
        value = parse_codes(value, label)
    elif key == "force_exclude":
        if isinstance(value, str):
            _compile(value, label)
        elif not isinstance(value, bool):
            raise ConfigError(f"{label}: expected {kind}, got {value!r}")
    elif key == "form":
        if value not in FORMS:
            raise ConfigError(f"{label}: expected one of {', '.join(FORMS)}, got {value!r}")
    return value


def _compile(value: Any, label: str) -> "re.Pattern[str]":
    if not isinstance(value, str):
        raise ConfigError(f"{label}: expected {_REGEX}, got {value!r}")
    try:
        return compile_regex(value)
    except re.error as error:
        raise ConfigError(f"{label}: invalid regular expression: {error}") from None


def compile_regex(value: str) -> "re.Pattern[str]":
    """Like black: a multi-line pattern is read in verbose mode."""
    return re.compile(f"(?x){value}" if "\n" in value else value)


def black_mode_from(table: dict, where: str = "[tool.black]") -> "black.Mode":
    import black  # only a project with [tool.black] pays for importing it here

    values = _normalise(table)
    kwargs: dict[str, Any] = {}
    if "line_length" in values:
        line_length = values["line_length"]
        if isinstance(line_length, bool) or not isinstance(line_length, int) or line_length < 1:
            raise ConfigError(f"{where} line-length: expected a positive integer, got {line_length!r}")
        kwargs["line_length"] = line_length
    if "target_version" in values:
        targets = values["target_version"]
        if isinstance(targets, str):
            targets = [targets]
        try:
            kwargs["target_versions"] = {black.TargetVersion[str(t).upper()] for t in targets}
        except KeyError as error:
            raise ConfigError(f"{where} target-version: unknown version {error.args[0]!r}") from None
    for key, attribute in [("skip_string_normalization", "string_normalization"),
                           ("skip_magic_trailing_comma", "magic_trailing_comma")]:
        if key in values:
            kwargs[attribute] = not bool(values[key])
    for key in ("preview", "unstable"):
        if key in values and hasattr(black.Mode(), key):
            kwargs[key] = bool(values[key])
    return black.Mode(**kwargs)


def load_config(paths: Sequence[Path], explicit: Optional[Path] = None) -> Config:
    """The configuration for a run over `paths` (an empty sequence means the current directory)."""
    root = find_project_root(paths) if paths else find_project_root([Path.cwd()])
    path = explicit
    if path is None:
        candidate = root / "pyproject.toml"
        path = candidate if candidate.is_file() else None
    if path is None:
        return Config(root)
    document = read_toml(path)
    tool = document.get("tool", {}) if isinstance(document.get("tool", {}), dict) else {}
    table = tool.get(SECTION, {})
    where = f"{path}: [tool.{SECTION}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    values: dict[str, Any] = {}
    warnings = []
    for key, value in _normalise(table).items():
        if key not in KEYS:
            warnings.append(f"{where}: unknown key {key.replace('_', '-')!r} ignored")
            continue
        values[key] = _validate(key, value, where)
    black_table = tool.get("black")
    mode = black_mode_from(black_table, f"{path}: [tool.black]") if isinstance(black_table, dict) else None
    return Config(root, path, values, mode, tuple(warnings))


class Selection:
    """Which refusal codes are reported: prefixes, the more specific one wins (ruff's rule).

    `select` defaults to ALL. A code is reported when a select prefix matches it and no ignore
    prefix at least as specific does. Errors (FGI9xx: the file could not be processed) are
    always reported.
    """

    def __init__(self, select: Iterable[str] = ("ALL",), ignore: Iterable[str] = ()):
        self.select = tuple(select) or ("ALL",)
        self.ignore = tuple(ignore)

    @staticmethod
    def _specificity(code: str, prefixes: Sequence[str]) -> Optional[int]:
        best = None
        for prefix in prefixes:
            length = 0 if prefix == "ALL" else len(prefix)
            if (prefix == "ALL" or code.startswith(prefix)) and (best is None or length > best):
                best = length
        return best

    def enabled(self, code: str) -> bool:
        if code.startswith("FGI9"):
            return True
        selected = self._specificity(code, self.select)
        if selected is None:
            return False
        ignored = self._specificity(code, self.ignore)
        return ignored is None or selected > ignored

    def __repr__(self) -> str:
        return f"Selection(select={list(self.select)}, ignore={list(self.ignore)})"


def selection_from(config: Config, select: Optional[list[str]], ignore: Optional[list[str]],
                   extend_select: list[str], extend_ignore: list[str]) -> Selection:
    """Command-line --select/--ignore replace the configured lists; --extend-* add to them."""
    chosen = select if select is not None else config.get("select", ["ALL"])
    ignored = ignore if ignore is not None else config.get("ignore", [])
    chosen = [*chosen, *config.get("extend_select", []), *extend_select]
    ignored = [*ignored, *config.get("extend_ignore", []), *extend_ignore]
    return Selection(chosen, ignored)
