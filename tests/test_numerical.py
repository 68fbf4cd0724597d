"""Execute original and rewritten fixtures with torch: values bit for bit, gradients to rounding."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from fgi_rewrite.equivalence import compare, load_module, probe_inputs  # noqa: E402

from .conftest import single_file_fixtures  # noqa: E402

RUNNABLE = [f for f in single_file_fixtures() if "def run(" in (f / "input.py").read_text(encoding="latin-1")]


@pytest.mark.parametrize("fixture", RUNNABLE, ids=lambda p: p.name)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rewritten_fixture_is_equivalent(fixture: Path, dtype: str) -> None:
    original = load_module(fixture / "input.py")
    rewritten = load_module(fixture / "expected.py")
    mismatches = compare(original.run, rewritten.run, probe_inputs(getattr(torch, dtype)))
    assert not mismatches, "\n".join(map(str, mismatches))


def test_comparison_catches_a_wrong_rewrite(tmp_path: Path) -> None:
    """The checker itself must fail on a subtly wrong FGI form (>= instead of >)."""
    good = tmp_path / "good.py"
    good.write_text(
        "import torch\n"
        "def run(x):\n"
        "    return (x > 0).float() + ((x - x.detach()) * torch.exp(-x.detach() ** 2)).float()\n"
    )
    wrong_threshold = tmp_path / "wrong_threshold.py"
    wrong_threshold.write_text(good.read_text().replace("(x > 0)", "(x >= 0)"))
    wrong_gradient = tmp_path / "wrong_gradient.py"
    wrong_gradient.write_text(good.read_text().replace("** 2", "** 4"))
    wrong_dtype = tmp_path / "wrong_dtype.py"
    wrong_dtype.write_text(good.read_text().replace(".float()\n", "\n"))
    reference = load_module(good).run
    inputs = probe_inputs(torch.float64, non_finite=False)
    assert compare(reference, load_module(wrong_threshold).run, inputs)
    assert compare(reference, load_module(wrong_gradient).run, inputs)
    assert compare(reference, load_module(wrong_dtype).run, inputs)
    assert not compare(reference, load_module(good).run, inputs)


def test_non_finite_inputs_keep_step_values(tmp_path: Path) -> None:
    """The default form is exact at ±inf and NaN; --finite-only is documented not to be."""
    from fgi_rewrite.api import rewrite_source

    source = (Path(__file__).parent.parent / "fixtures" / "float_gt_gaussian_alias" / "input.py").read_text()
    exact = tmp_path / "exact.py"
    exact.write_text(rewrite_source(source).new_source)
    finite = tmp_path / "finite.py"
    finite.write_text(rewrite_source(source, finite_only=True).new_source)
    x = torch.tensor([float("inf"), float("-inf"), float("nan"), 0.1, 1.0])
    original = load_module(Path(__file__).parent.parent / "fixtures" / "float_gt_gaussian_alias" / "input.py")
    assert torch.equal(load_module(exact).run(x), original.run(x))
    assert torch.isnan(load_module(finite).run(x)[:3]).all()
