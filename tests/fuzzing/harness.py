"""Run one generated module through the rewriter and check it (shared by the fuzz tests)."""

from __future__ import annotations

import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import libcst as cst

from fgi_rewrite.api import rewrite_source
from fgi_rewrite.plan import FileResult

from .grammar import CALL_SITE_REFUSAL_ACCEPTED, EXPECTED_CODES, Spec, render


@dataclass
class Checked:
    source: str
    result: FileResult


def rewrite(spec: Spec) -> Checked:
    source = render(spec)
    result = rewrite_source(source, "fuzzed.py", form=spec.normalised().rewrite_form,
                            finite_only=spec.normalised().finite_only)
    return Checked(source, result)


def check_valid(spec: Spec) -> None:
    """In scope: rewritten, re-parses, idempotent, numerically equivalent in float32 and float64."""
    import torch

    from fgi_rewrite.equivalence import DEFAULT_THRESHOLDS, compare, load_module, probe_inputs
    from fgi_rewrite.verify import transitions

    checked = rewrite(spec)
    source, result = checked.source, checked.result
    context = f"\n--- source ---\n{source}\n--- rewritten ---\n{result.new_source}"
    assert result.error is None, f"error {result.error}{context}"
    assert not result.refusals, f"refused: {[r.render() for r in result.refusals]}{context}"
    assert result.rewrites, f"no call site rewritten{context}"
    assert result.changed, f"nothing changed{context}"
    cst.parse_module(result.new_source)  # re-parses
    compile(result.new_source, "rewritten.py", "exec")
    again = rewrite_source(result.new_source, "fuzzed.py", form=spec.normalised().rewrite_form,
                           finite_only=spec.normalised().finite_only)
    assert again.new_source == result.new_source, f"second run changed the file{context}"
    # Aliases may stay (a class attribute can be read from outside); calls may not.
    assert not re.search(r"(Spike(\(\))?\.apply|(?<![\w.])spike|self\.spike)\(", result.new_source), \
        f"a call of the Function is left{context}"

    with tempfile.TemporaryDirectory(prefix="fgi-fuzz-") as folder:
        original_path = Path(folder) / "original.py"
        rewritten_path = Path(folder) / "rewritten.py"
        original_path.write_text(source, encoding="utf-8")
        rewritten_path.write_text(result.new_source, encoding="utf-8")
        original = load_module(original_path)
        rewritten = load_module(rewritten_path)
        try:
            for dtype in (torch.float32, torch.float64):
                thresholds = set(DEFAULT_THRESHOLDS) | set(spec.thresholds())
                thresholds |= set(transitions(original.run, dtype, sorted(thresholds)))
                inputs = probe_inputs(dtype, sorted(thresholds), non_finite=not spec.normalised().finite_only)
                mismatches = compare(original.run, rewritten.run, inputs)
                assert not mismatches, "\n".join(map(str, mismatches)) + context
        finally:
            sys.modules.pop(original.__name__, None)
            sys.modules.pop(rewritten.__name__, None)


def check_near_miss(spec: Spec) -> None:
    """Out of scope: the file is left alone and the Function refused with the expected code."""
    assert spec.mutation is not None
    checked = rewrite(spec)
    source, result = checked.source, checked.result
    context = f"\n--- source ---\n{source}\n--- rewritten ---\n{result.new_source}"
    assert result.error is None, f"error {result.error}{context}"
    assert result.new_source == source, f"a near miss ({spec.mutation}) was rewritten{context}"
    assert not result.rewrites, context
    codes = {r.code for r in result.refusals}
    assert codes, f"no refusal{context}"
    expected = EXPECTED_CODES[spec.mutation]
    call_site_ok = spec.mutation in CALL_SITE_REFUSAL_ACCEPTED and any(c.startswith("FGI2") for c in codes)
    assert call_site_ok or all(c.startswith("FGI1") for c in codes), f"{codes}{context}"
    assert call_site_ok or codes & expected, f"expected {expected}, got {codes}{context}"
