"""Rewrite a copy of real SNN libraries from PyPI and summarise what happened.

    python benchmarks/real_libraries.py [--cache DIR] [--packages snntorch==1.0.0 ...]

Downloads pinned releases with `pip download --no-deps` (once, into --cache), unpacks them,
runs the whole-project rewrite on each package tree, checks that every output file parses,
and prints per library: files, Functions planned, call sites rewritten (by form), refusals by
code, and files that failed. Exit status 1 if the tool crashed or wrote unparseable code.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import libcst as cst

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fgi_rewrite.api import rewrite_tree  # noqa: E402
from fgi_rewrite.files import DecodeError, read_source  # noqa: E402

DEFAULT_PACKAGES = ["snntorch==1.0.0", "spikingjelly==2.0.0", "norse==1.1.0"]


def fetch(requirement: str, cache: Path) -> Path:
    name, _, version = requirement.partition("==")
    found = sorted(cache.glob(f"{name}-{version}*"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), requirement],
                       check=True)
        found = sorted(cache.glob(f"{name}-{version}*"))
    archive = found[0]
    target = cache / "src" / f"{name}-{version}"
    if not target.exists():
        target.mkdir(parents=True)
        if archive.suffix == ".whl":
            zipfile.ZipFile(archive).extractall(target)
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(target, filter="data")
    packages = [p for p in target.rglob("__init__.py") if p.parent.name == name.replace("-", "_")]
    return min(packages, key=lambda p: len(p.parts)).parent


def rewrite_library(package: Path) -> dict:
    import os
    import shutil

    work = Path(tempfile.mkdtemp(prefix="fgi-real-"))
    shutil.copytree(package, work / package.name)
    os.chdir(work)
    sources, failed = {}, []
    for path in sorted(Path(package.name).rglob("*.py")):
        try:
            sources[path] = read_source(path).text
        except (OSError, DecodeError) as error:
            failed.append(f"{path}: {error}")
    start = time.perf_counter()
    results = rewrite_tree(sources)
    seconds = time.perf_counter() - start
    forms = collections.Counter()
    functions = collections.Counter()
    refusals = collections.Counter()
    refusal_lines = []
    for path, result in results.items():
        if result.error is not None:
            failed.append(result.error.render())
            continue
        try:
            cst.parse_module(result.new_source)
        except cst.ParserSyntaxError as error:
            failed.append(f"{path}: rewritten code does not parse: {error.message}")
        for rewrite in result.rewrites:
            forms[rewrite.form.split(" ")[0]] += 1
            functions[rewrite.function] += 1
        for refusal in result.refusals:
            refusals[refusal.code] += 1
            refusal_lines.append(refusal.render())
    return {
        "files": len(sources), "seconds": seconds, "changed": sum(r.changed for r in results.values()),
        "forms": forms, "functions": functions, "refusals": refusals, "refusal_lines": refusal_lines,
        "failed": failed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "fgi-real-libraries")
    parser.add_argument("--packages", nargs="*", default=DEFAULT_PACKAGES)
    parser.add_argument("--show-refusals", action="store_true")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    status = 0
    for requirement in args.packages:
        package = fetch(requirement, args.cache.resolve())
        summary = rewrite_library(package)
        print(f"== {requirement}: {summary['files']} files in {summary['seconds']:.1f} s, "
              f"{summary['changed']} changed")
        print(f"   call sites rewritten: {sum(summary['forms'].values())} {dict(summary['forms'])}")
        print(f"   by Function: {dict(sorted(summary['functions'].items()))}")
        print(f"   refusals: {dict(sorted(summary['refusals'].items()))}")
        if args.show_refusals:
            for line in summary["refusal_lines"]:
                print(f"     {line}")
        for line in summary["failed"]:
            print(f"   FAILED {line}")
        if any("does not parse" in line for line in summary["failed"]):
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
