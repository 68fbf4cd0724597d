"""The README stays true: every refusal code is documented, the before/after is real output."""

from __future__ import annotations

import re
from pathlib import Path

from fgi_rewrite.codes import CODES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_code_is_documented() -> None:
    for code in CODES:
        assert code in README, code


def test_before_and_after_are_the_golden_fixture() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    before, after = blocks[0], blocks[1]
    fixture = ROOT / "fixtures" / "float_gt_gaussian_alias"
    assert after in (fixture / "expected.py").read_text()
    for chunk in before.split("\n\n\n"):
        assert chunk.strip() in (fixture / "input.py").read_text()


def test_the_two_commands_exist() -> None:
    assert "bash scripts/demo.sh" in README and (ROOT / "scripts" / "demo.sh").exists()
    assert "bash scripts/test.sh" in README and "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
