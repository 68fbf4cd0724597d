from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def single_file_fixtures() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir() if (p / "input.py").exists())


@pytest.fixture
def fixtures_root() -> Path:
    return FIXTURES
