"""Regenerate fixtures/<project>/expected/ trees from input/ with the current tool.

For maintainers only: review `git diff fixtures/` afterwards; the golden test then pins it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from fgi_rewrite.api import rewrite_tree

ROOT = Path(__file__).resolve().parent.parent / "fixtures"


def main(names: list[str]) -> None:
    for directory in sorted(p for p in ROOT.iterdir() if (p / "input").is_dir()):
        if names and directory.name not in names:
            continue
        expected = directory / "expected"
        shutil.rmtree(expected, ignore_errors=True)
        shutil.copytree(directory / "input", expected)
        os.chdir(expected)
        files = sorted(Path(".").rglob("*.py"))
        results = rewrite_tree({p: p.read_text() for p in files})
        for path, result in results.items():
            path.write_text(result.new_source)
        codes = sorted(r.code for result in results.values() for r in result.refusals)
        (directory / "codes.txt").write_text("".join(f"{c}\n" for c in codes))
        print(directory.name, sum(len(r.rewrites) for r in results.values()), "rewrites", codes)


if __name__ == "__main__":
    main(sys.argv[1:])
