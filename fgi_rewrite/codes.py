"""Stable refusal codes: one table, so the CLI, the README and the tests agree.

FGI1xx: the Function itself cannot be rewritten (forward, backward, context use).
FGI2xx: a call site or reference cannot be rewritten (the Function itself is fine).
FGI9xx: the tool could not process the file at all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    code: str
    title: str
    hint: str


CODES: dict[str, Code] = {
    c.code: c
    for c in [
        Code("FGI101", "forward is not a Heaviside step of its first input",
             "fgi-rewrite only rewrites spike functions whose forward returns a 0/1 step "
             "(e.g. `(x > 0).float()`); quantizers, sign, multi-level spikes are out of scope"),
        Code("FGI102", "backward draws random numbers",
             "the surrogate must be a deterministic function of the saved values"),
        Code("FGI103", "backward is not linear in grad_output",
             "return `grad_output * h(x)` (masks, clones, divisions are fine); "
             "adding constants, squaring or reducing grad_output is not"),
        Code("FGI104", "backward calls code the tool cannot see through",
             "move the surrogate into a module-level helper of plain torch/math ops "
             "in the same module, or add `# fgi: skip`"),
        Code("FGI105", "backward returns a gradient for another input that cannot be injected",
             "return `grad_output * h_a(x, a)` for that input (autograd sums it to the input's "
             "shape), or a full `.sum()` of it for a 0-dim input; partial reductions are refused"),
        Code("FGI106", "unsupported statement in forward or backward",
             "data-dependent control flow, loops, try/except and side effects "
             "cannot be proven equivalent"),
        Code("FGI107", "unsupported use of ctx",
             "only save_for_backward, saved_tensors, needs_input_grad and plain "
             "`ctx.name = value` attributes are understood"),
        Code("FGI108", "forward output dtype cannot be determined",
             "cast the step explicitly, e.g. `.float()` or `.to(x)`"),
        Code("FGI109", "forward signature not supported",
             "forward must take positional tensor/scalar arguments (no *args/**kwargs)"),
        Code("FGI110", "backward does not return a gradient for the first input",
             "the spike input must receive `grad_output * h(x)`"),
        Code("FGI111", "Function defines methods the rewrite would lose",
             "jvp/vmap or extra autograd hooks cannot be expressed inline"),
        Code("FGI112", "surrogate does not depend on the input and reads other arguments",
             "the rewrite could give those arguments a zero gradient instead of None"),
        Code("FGI113", "forward default argument is not a constant",
             "use a literal default or pass the value at the call site"),
        Code("FGI114", "Function is defined inside a class or function",
             "only module-level Functions are rewritten: move it to the top level of its module"),
        Code("FGI201", "call uses keywords or unpacking",
             "`Fn.apply` takes positional arguments only; pass them positionally"),
        Code("FGI202", "call has the wrong number of arguments",
             "the original call raises TypeError; nothing to preserve"),
        Code("FGI204", "reference to the Function is not a call",
             "the Function is kept for this reference; call sites are still rewritten"),
        Code("FGI205", "the Function's name is bound more than once in the module",
             "the tool cannot tell which definition a call refers to"),
        Code("FGI206", "the call's module cannot name what the surrogate reads",
             "the module rebinds a builtin or name the surrogate needs; rename it"),
        Code("FGI901", "file could not be decoded", "save it as UTF-8 or declare its encoding"),
        Code("FGI902", "file could not be parsed", "fix the syntax error"),
        Code("FGI903", "file could not be read or written", "check permissions"),
        Code("FGI904", "fgi-rewrite failed on this file (internal error)",
             "the file was left unchanged; please report it with the file attached"),
    ]
}


def describe(code: str) -> Code:
    return CODES[code]
