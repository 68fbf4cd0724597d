"""Data passed between the pipeline stages. Analysis produces these; transforms consume them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Union

if TYPE_CHECKING:  # annotations only: the CLI needs no libcst for files that cannot matter
    import libcst as cst

from .codes import CODES


@dataclass(frozen=True)
class Position:
    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Refusal:
    """Why something was left alone. `message` is specific; the code's hint says what to do."""

    code: str
    message: str
    position: Position
    subject: str = ""  # the Function (or call) the refusal is about

    @property
    def hint(self) -> str:
        return CODES[self.code].hint

    def render(self) -> str:
        return f"{self.position}: {self.code} {self.message} (hint: {self.hint})"


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Optional[cst.BaseExpression] = None
    annotation: Optional[cst.BaseExpression] = None


@dataclass(frozen=True)
class StepSpec:
    """The forward value as an expression over the forward parameters."""

    expression: cst.BaseExpression
    description: str  # e.g. "x > 0, cast .float()"
    needs_detach: bool  # the expression could carry autograd history


@dataclass(frozen=True)
class SurrogateSpec:
    """The local derivative h: backward returns grad_output * h (None means h == 1)."""

    expression: Optional[cst.BaseExpression]
    # A cast to apply to the injection term so its dtype equals the step's (None: provably equal).
    cast: Optional[tuple[str, tuple[cst.BaseExpression, ...]]]
    reads_other_parameters: bool
    # Generalised injection: other inputs that backward gives `grad_output * h_i` (summed to
    # their shape by autograd's broadcasting) -> one more term `(p - p.detach()) * h_i`.
    extra_gradients: tuple[tuple[str, cst.BaseExpression], ...] = ()


@dataclass(frozen=True)
class Plan:
    """How one Function is rewritten: FGI value = step, gradient = h."""

    function: str
    position: Position
    parameters: tuple[Parameter, ...]
    step: StepSpec
    surrogate: SurrogateSpec
    free_names: frozenset[str]  # module-level names the expressions read
    # Free names bound once, at the top level, to a literal: TorchScript cannot read module
    # globals, so `inline_constants` may substitute these values.
    constants: tuple[tuple[str, cst.BaseExpression], ...] = ()
    # Stand-in names for what helpers of other modules read: placeholder -> qualified target.
    foreign: tuple[tuple[str, str], ...] = ()

    @property
    def operand(self) -> str:
        return self.parameters[0].name


Analysis = Union[Plan, Refusal]


@dataclass(frozen=True)
class Rewrite:
    """One call site that was rewritten."""

    position: Position
    function: str
    form: str  # "inline" or "function"

    def render(self) -> str:
        return f"{self.position}: FGI000 rewrote {self.function} call ({self.form} form)"


@dataclass(frozen=True)
class FileResult:
    path: str
    source: str
    new_source: str
    rewrites: tuple[Rewrite, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    error: Optional[Refusal] = None  # set when the file could not be processed at all
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> bool:
        return self.error is None and self.new_source != self.source
