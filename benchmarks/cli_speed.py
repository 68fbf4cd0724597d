#!/usr/bin/env python
"""How fast `fgi-rewrite --check` goes through a big tree, against parsing every file with libcst.

    python benchmarks/cli_speed.py                      # the installed torch package
    python benchmarks/cli_speed.py --limit 600          # a sample of 600 of its files
    python benchmarks/cli_speed.py --extra ~/snn-libs   # and a directory of SNN libraries
    python benchmarks/cli_speed.py --generic --limit 600  # and the rest of site-packages

For each tree, in one run: the (sampled) files are copied to a temporary directory (so no
.gitignore or exclusion of the real location interferes, and both sides see the same files);
then it times
  - parse-all: libcst.parse_module on every file, in this process, one core;
  - `fgi-rewrite --check --no-cache -j 1` and `-j 2` (and `-j N` for --jobs N), as subprocesses,
    start-up included, each the median of three runs; start-up alone is measured on an empty
    directory and shown apart;
  - `--syntax-check -j 1`: also the files that cannot contain a Function (or a call of one)
    are syntax-checked (by default, found by walking a directory, they are only read);
  - `--diff -j N`: as --check, but the new text is formatted with black and shown (--check
    skips black: nobody sees the text);
  - a second run with the cache (after one that fills it): only files that would change, or
    whose result depended on other files, are parsed again.
It prints files/s and the ratio to parse-all for each. The rewriter needs no torch; torch is
only located (not imported) to find the default tree.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Optional

EXCLUDED_DIRS = {"__pycache__", ".git", "tests", "test"}


def python_files(root: Path, skip_top: frozenset[str] = frozenset()) -> list[Path]:
    files = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if d not in EXCLUDED_DIRS
                                   and not (Path(directory) == root and d in skip_top)
                                   and not d.endswith((".dist-info", ".egg-info")))
        files += [Path(directory) / n for n in sorted(names) if n.endswith(".py")]
    return files


def sample(files: list[Path], limit: int | None, seed: int) -> list[Path]:
    if limit is None or limit >= len(files):
        return files
    return sorted(random.Random(seed).sample(files, limit))


def copy_tree(files: list[Path], base: Path, destination: Path) -> Path:
    for path in files:
        try:
            relative = path.relative_to(base)
        except ValueError:
            relative = Path(path.name)
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return destination


def parse_all(files: list[Path]) -> tuple[float, int]:
    import libcst

    texts = []
    for path in files:
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            pass
    failures = 0
    start = time.perf_counter()
    for text in texts:
        try:
            libcst.parse_module(text)
        except Exception:
            failures += 1
    return time.perf_counter() - start, failures


def _command() -> list[str]:
    """The installed console script, as a user runs it (`python -m` would put the measured
    tree's own top-level modules, e.g. a copied `typing_extensions.py`, before the stdlib)."""
    script = Path(sys.executable).parent / "fgi-rewrite"
    return [str(script)] if script.exists() else [sys.executable, "-P", "-m", "fgi_rewrite"]


REPEAT = 3  # each fgi-rewrite figure is the median of this many runs (one run of a second is noisy)


def cli(args: list[str], cwd: Path, cache_dir: Path, repeat: Optional[int] = None) -> float:
    env = {**os.environ, "FGI_REWRITE_CACHE_DIR": str(cache_dir)}
    times = []
    for _ in range(REPEAT if repeat is None else repeat):
        start = time.perf_counter()
        result = subprocess.run([*_command(), "-q", *args], cwd=cwd, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - start)
        if result.returncode not in (0, 1, 123) or "Traceback (most recent call last)" in result.stderr:
            raise SystemExit(f"fgi-rewrite {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return statistics.median(times)


def measure(name: str, files: list[Path], base: Path, jobs: list[int], work: Path) -> None:
    tree = copy_tree(files, base, work / name / "tree")
    copied = sorted(tree.rglob("*.py"))
    (tree / ".git").mkdir()  # the project root: nothing above it is searched
    cache_dir = work / name / "cache"
    empty = work / name / "empty"
    empty.mkdir()
    size = sum(p.stat().st_size for p in copied) / 1e6
    for path in copied:  # warm the page cache for both sides
        path.read_bytes()

    from fgi_rewrite.files import may_matter

    candidates = sum(1 for p in copied if may_matter(p.read_text(encoding="utf-8", errors="replace")))
    print(f"\n== {name}: {len(copied)} files, {size:.1f} MB, {candidates} may contain a Function "
          f"({100 * candidates / max(1, len(copied)):.0f}%)")
    parse_seconds, failures = parse_all(copied)
    print(f"  {'parse-all (libcst, 1 core)':44s} {parse_seconds:8.2f} s {len(copied) / parse_seconds:9.0f} files/s"
          f"{f'   ({failures} files libcst cannot parse)' if failures else ''}")
    startup = cli(["--check", "."], empty, cache_dir)
    print(f"  {'fgi-rewrite start-up (empty directory)':44s} {startup:8.2f} s")

    def row(label: str, seconds: float) -> None:
        net = max(seconds - startup, 1e-9)
        print(f"  {label:44s} {seconds:8.2f} s {len(copied) / seconds:9.0f} files/s"
              f"   x{parse_seconds / seconds:6.1f} vs parse-all   (x{parse_seconds / net:6.1f} without start-up)")

    timings = {}
    for j in jobs:
        timings[j] = cli(["--check", "--no-cache", "-j", str(j), "."], tree, cache_dir)
        row(f"--check --no-cache -j {j}", timings[j])
    if 1 in timings:
        for j in jobs:
            if j != 1:
                print(f"  {'':44s} speed-up -j {j} over -j 1: x{timings[1] / timings[j]:.2f} "
                      f"(net of start-up: x{(timings[1] - startup) / max(timings[j] - startup, 1e-9):.2f})")
    row("--check --no-cache --syntax-check -j 1", cli(["--check", "--no-cache", "--syntax-check", "-j", "1", "."],
                                                      tree, cache_dir))
    row(f"--diff --no-cache -j {max(jobs)}", cli(["--diff", "--no-cache", "-j", str(max(jobs)), "."], tree, cache_dir))
    cli(["--check", "-j", str(max(jobs)), "."], tree, cache_dir, repeat=1)  # fills the cache
    row(f"--check, warm cache, -j {max(jobs)}", cli(["--check", "-j", str(max(jobs)), "."], tree, cache_dir))


def _burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def calibrate(jobs: int, n: int = 8_000_000) -> float:
    """How much faster `jobs` CPU-bound processes finish `jobs` units of pure-Python work than
    one process does: the ceiling for -j on this machine right now (other load lowers it)."""
    from concurrent.futures import ProcessPoolExecutor

    start = time.perf_counter()
    for _ in range(jobs):
        _burn(n)
    serial = time.perf_counter() - start
    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(_burn, [1] * jobs))  # start the workers first
        start = time.perf_counter()
        list(pool.map(_burn, [n] * jobs))
        parallel = time.perf_counter() - start
    return serial / parallel


def main() -> None:
    global REPEAT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extra", type=Path, action="append", default=[],
                        help="a directory of (SNN) libraries to measure as well; repeatable")
    parser.add_argument("--generic", action="store_true",
                        help="also measure the rest of site-packages (everything but torch): a generic tree")
    parser.add_argument("--no-torch", action="store_true", help="skip the torch tree")
    parser.add_argument("--limit", type=int, default=None, help="sample this many files per tree (same for both sides)")
    parser.add_argument("--jobs", type=int, action="append", default=None,
                        help="job counts to time (default: 1 and 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=REPEAT, help="runs per fgi-rewrite figure (the median is shown)")
    args = parser.parse_args()
    REPEAT = max(1, args.repeat)
    jobs = sorted(set(args.jobs or [1, 2]))

    site_packages = Path(sysconfig.get_paths()["purelib"])
    trees: list[tuple[str, list[Path], Path]] = []
    spec = importlib.util.find_spec("torch")  # locates, does not import
    torch_dir = Path(spec.origin).parent if spec is not None and spec.origin else None
    if not args.no_torch:
        if torch_dir is None:
            print("torch is not installed: no default tree (use --extra or --generic)")
        else:
            trees.append(("torch", sample(python_files(torch_dir), args.limit, args.seed), torch_dir))
    if args.generic:
        skip = frozenset({"torch", "torchgen", "functorch", "pip", "setuptools", "_distutils_hack"})
        trees.append(("generic (site-packages without torch)",
                      sample(python_files(site_packages, skip), args.limit, args.seed), site_packages))
    for extra in args.extra:
        trees.append((f"extra: {extra.name}", sample(python_files(extra), args.limit, args.seed), extra))
    if not trees:
        raise SystemExit("nothing to measure")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, jobs {jobs}, limit {args.limit}")
    for j in jobs:
        if j > 1:
            print(f"machine now: {j} CPU-bound processes finish {j} units of work x{calibrate(j):.2f} faster than one "
                  f"(the ceiling for -j {j}; below x{j} means other load)")
    with tempfile.TemporaryDirectory(prefix="fgi-cli-speed-") as temporary:
        for index, (name, files, base) in enumerate(trees):
            measure(name if index == 0 else name, files, base, jobs, Path(temporary) / f"t{index}")


if __name__ == "__main__":
    main()
