"""Regenerate fixtures/*/expected.py and codes.txt from the current tool.

For maintainers only: review `git diff fixtures/` afterwards; the golden test then pins it.
Usage: python scripts/regen_fixtures.py [NAME...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from fgi_rewrite.api import rewrite_source
from fgi_rewrite.files import read_source

ROOT = Path(__file__).resolve().parent.parent / "fixtures"


def main(names: list[str]) -> None:
    for directory in sorted(p for p in ROOT.iterdir() if p.is_dir()):
        if names and directory.name not in names:
            continue
        if not (directory / "input.py").exists():
            continue  # a project fixture: input/ and expected/ trees
        source = read_source(directory / "input.py")
        result = rewrite_source(source.text, "input.py")
        (directory / "expected.py").write_bytes(source.encode(result.new_source))
        codes = sorted(r.code for r in result.refusals)
        (directory / "codes.txt").write_text("".join(f"{c}\n" for c in codes))
        print(f"{directory.name}: {len(result.rewrites)} rewrites, refusals {codes}")


if __name__ == "__main__":
    main(sys.argv[1:])
