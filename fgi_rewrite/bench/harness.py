"""Timing harness: backward() surrogate vs. rewritten FGI, per execution mode.

The experiment of the FGI paper (Otte 2024, arXiv 2406.00177, Tables 1-3 and
Fig. 2): an ALIF recurrent SNN on sequential MNIST with T time steps, trained
and run for inference in eager mode, under TorchScript and under
``torch.compile``, once with the user's ``torch.autograd.Function`` spike
("backward") and once with the FGI form that ``fgi_rewrite`` produces from the
very same file at run time ("fgi", and "fgi_finite" for the rewriter's
``finite_only=True`` form).  Nothing FGI is written by hand.

Flow of :func:`run_benchmark`:

1. :func:`prepare_variants` loads the model file as is ("backward") and runs
   :func:`fgi_rewrite.api.rewrite_source` on its text for each FGI variant,
   writing the result to ``OUT/variants/model_<variant>.py`` (TorchScript and
   ``inspect`` need real source files).  It stops if the rewriter changed
   nothing, refused one of the file's autograd.Functions, or left an
   ``X.apply(...)`` call of one of them behind.
2. :func:`check_equivalence` compares every variant with "backward" on the same
   weights and inputs in eager mode for every T: the forward values must be
   bit-identical (``torch.equal``) and the gradients close
   (``torch.allclose``); otherwise :class:`EquivalenceError` stops the run.
3. Every configuration (T, mode, variant) runs in its own subprocess
   (:func:`run_config` via :func:`worker_main`) with a timeout, so that a hang,
   a crash or a slow compilation costs one configuration only, and so that the
   warm-up cost of ``torch.compile`` is measured cold (each subprocess also gets
   an empty TorchInductor/Triton cache directory).  A configuration that fails
   is recorded as n.a. with its error message and the run goes on.

The model file contract (``--model``): a module-level
``build_model(n_in, hidden, n_out, seed) -> nn.Module`` whose module maps
``[batch, T, n_in]`` to logits ``[batch, n_out]``.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as _dt
import hashlib
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .data import SMNIST_PIXELS, SMNIST_SEQ_LENS, random_smnist

#: The bundled model (repository checkout layout).
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "examples" / "alif" / "model.py"

VARIANTS = ("backward", "fgi", "fgi_finite")
REFERENCE_VARIANT = "backward"
REFERENCE_MODE = "eager"

#: mode name -> how the model is wrapped.  "compile*" are ``torch.compile`` with
#: the given keyword arguments.
MODES: dict[str, dict[str, Any]] = {
    "eager": {"kind": "eager"},
    "torchscript": {"kind": "torchscript"},
    "compile": {"kind": "compile", "kwargs": {}},
    "compile-fullgraph": {"kind": "compile", "kwargs": {"fullgraph": True}},
    "compile-max-autotune": {"kind": "compile", "kwargs": {"mode": "max-autotune"}},
    # CUDA graphs: only meaningful (and only attempted) on CUDA.
    "compile-reduce-overhead": {"kind": "compile", "kwargs": {"mode": "reduce-overhead"}, "cuda_only": True},
}
#: modes that cost little to set up; they run first so that a time budget is
#: spent on compilation only after they are done.
CHEAP_MODES = ("eager", "torchscript")

N_CLASSES = 10


class BenchError(RuntimeError):
    """The benchmark cannot run (bad settings, rewriter failure, ...)."""


class RewriteError(BenchError):
    """The rewriter did not produce a usable FGI variant."""


class EquivalenceError(BenchError):
    """A variant does not compute the same values/gradients as the reference."""


# --------------------------------------------------------------------------
# settings


@dataclass
class BenchSettings:
    seq_lens: list[int] = field(default_factory=lambda: list(SMNIST_SEQ_LENS))
    modes: list[str] = field(default_factory=lambda: ["eager", "torchscript", "compile"])
    variants: list[str] = field(default_factory=lambda: ["backward", "fgi"])
    iterations: int = 20
    warmup: int = 3
    hidden: int = 128
    batch: int = 128
    device: str = "cpu"
    out_dir: str = "out/bench"
    model_path: str = str(DEFAULT_MODEL)
    seed: int = 0
    #: wall-clock limit of one configuration (its subprocess), seconds
    timeout_s: float = 600.0
    #: wall-clock budget of the whole run (None: unlimited); configurations that
    #: no longer fit are recorded as skipped
    budget_s: float | None = None
    #: cap on the seconds of each timed loop (training, inference) of one
    #: configuration: it stops after ``iterations`` or once the cap is passed
    #: with at least 5 iterations done (None: always ``iterations``)
    max_phase_s: float | None = None
    #: batch size of the equivalence check (kept small: it runs eagerly for every T)
    check_batch: int = 16
    rtol: float = 1e-5
    atol: float = 1e-6
    preset: str | None = None

    def validate(self) -> None:
        if not self.seq_lens:
            raise BenchError("no sequence lengths")
        for t in self.seq_lens:
            if t <= 0 or SMNIST_PIXELS % t:
                raise BenchError(f"T={t} does not divide the {SMNIST_PIXELS} pixels of S-MNIST")
        unknown = [m for m in self.modes if m not in MODES]
        if unknown:
            raise BenchError(f"unknown mode(s) {unknown}; known: {', '.join(MODES)}")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise BenchError(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
        if REFERENCE_VARIANT not in self.variants:
            raise BenchError(f"the variants must include the reference {REFERENCE_VARIANT!r}")
        if self.iterations < 1 or self.warmup < 0:
            raise BenchError("iterations must be >= 1 and warmup >= 0")
        if self.hidden < 1 or self.batch < 1:
            raise BenchError("hidden and batch must be >= 1")
        if self.device not in ("cpu", "cuda"):
            raise BenchError("device must be cpu or cuda")
        if not Path(self.model_path).is_file():
            raise BenchError(f"model file not found: {self.model_path}")


# --------------------------------------------------------------------------
# loading the variants


@dataclass
class Variant:
    name: str
    path: Path
    source: str
    refusals: list[dict[str, Any]] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": hashlib.sha256(self.source.encode()).hexdigest(),
            "refusals": self.refusals,
        }


def autograd_function_classes(source: str) -> dict[str, tuple[int, int]]:
    """Names and line ranges of the ``torch.autograd.Function`` subclasses in ``source``."""
    found: dict[str, tuple[int, int]] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                text = ast.unparse(base)
                if text in ("Function", "autograd.Function", "torch.autograd.Function"):
                    found[node.name] = (node.lineno, node.end_lineno or node.lineno)
    return found


def apply_call_lines(source: str, class_names: Iterable[str]) -> dict[str, list[int]]:
    """Lines of the ``Cls.apply(...)`` calls of the given classes."""
    names = set(class_names)
    lines: dict[str, list[int]] = {}
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "apply"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in names
        ):
            lines.setdefault(node.func.value.id, []).append(node.lineno)
    return lines


def _refusal_dict(r: Any) -> dict[str, Any]:
    line = getattr(r, "line", None)
    if line is None:  # fgi_rewrite.plan.Refusal keeps it in .position
        line = getattr(getattr(r, "position", None), "line", None)
    return {
        "code": str(getattr(r, "code", "")),
        "message": str(getattr(r, "message", r)),
        "line": line,
        "subject": str(getattr(r, "subject", "") or ""),
    }


def rewrite_model_source(
    source: str,
    path: str,
    *,
    finite_only: bool = False,
    rewrite: Callable[..., Any] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Run the rewriter on ``source``; return the new text and the (harmless) refusals.

    Raises :class:`RewriteError` if nothing changed, if a refusal concerns one
    of the file's autograd.Functions or their call sites, or if a call site of
    one of them survives the rewrite.
    """
    if rewrite is None:
        from fgi_rewrite.api import rewrite_source as rewrite
    kwargs = {"finite_only": True} if finite_only else {}
    try:
        result = rewrite(source, path=path, **kwargs)
    except TypeError as exc:
        if finite_only and "finite_only" in str(exc):
            raise RewriteError(f"the rewriter does not accept finite_only=True: {exc}") from exc
        raise
    error = getattr(result, "error", None)
    if error is not None:
        e = _refusal_dict(error)
        raise RewriteError(
            f"the rewriter could not process {path}: line {e['line']}: [{e['code']}] {e['message']}"
        )
    functions = autograd_function_classes(source)
    calls = apply_call_lines(source, functions)
    refusals = [_refusal_dict(r) for r in (result.refusals or [])]
    blocking = []
    for r in refusals:
        line = r["line"] if isinstance(r["line"], int) else -1
        for name, (first, last) in functions.items():
            if (
                name in r["message"]
                or name in r["subject"]
                or first <= line <= last
                or line in calls.get(name, ())
            ):
                blocking.append(f"line {r['line']}: [{r['code']}] {r['message']}")
                break
    if blocking:
        raise RewriteError(
            f"the rewriter refused the spike function(s) of {path}:\n  " + "\n  ".join(blocking)
        )
    if not result.changed:
        raise RewriteError(f"the rewriter did not change {path}: no FGI variant to benchmark")
    left = apply_call_lines(result.new_source, functions)
    if left:
        where = ", ".join(f"{n}.apply (line {', '.join(map(str, ls))})" for n, ls in left.items())
        raise RewriteError(f"the rewritten {path} still calls {where}")
    return result.new_source, refusals


def prepare_variants(
    model_path: str | Path,
    names: Iterable[str],
    workdir: str | Path,
    *,
    rewrite: Callable[..., Any] | None = None,
) -> dict[str, Variant]:
    """The original model file and its rewritten forms, as importable files."""
    model_path = Path(model_path).resolve()
    source = model_path.read_text()
    workdir = Path(workdir)
    out: dict[str, Variant] = {}
    for name in names:
        if name == "backward":
            out[name] = Variant(name, model_path, source)
            continue
        if name not in VARIANTS:
            raise BenchError(f"unknown variant {name!r}")
        new_source, refusals = rewrite_model_source(
            source, str(model_path), finite_only=(name == "fgi_finite"), rewrite=rewrite
        )
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / f"model_{name}.py"
        path.write_text(new_source)
        out[name] = Variant(name, path.resolve(), new_source, refusals)
    return out


_module_counter = 0


def load_module(path: str | Path, name: str | None = None):
    """Import a file as a fresh module (registered in ``sys.modules``: TorchScript
    looks classes' source up through their module)."""
    global _module_counter
    _module_counter += 1
    name = name or f"_fgi_bench_{Path(path).stem}_{os.getpid()}_{_module_counter}"
    spec = importlib.util.spec_from_file_location(name, str(path))
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    if not callable(getattr(module, "build_model", None)):
        raise BenchError(f"{path} has no build_model(n_in, hidden, n_out, seed)")
    return module


# --------------------------------------------------------------------------
# equivalence


def check_equivalence(
    reference,
    candidate,
    seq_lens: Iterable[int],
    *,
    hidden: int = 128,
    batch: int = 16,
    device: str = "cpu",
    seed: int = 0,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    name: str = "candidate",
) -> list[dict[str, Any]]:
    """Compare two model modules on the same weights and inputs (eager mode).

    Forward values must be identical (``torch.equal``), gradients of every
    parameter close (``torch.allclose(rtol, atol)``).  Returns one record per T;
    raises :class:`EquivalenceError` on the first mismatch.
    """
    import torch
    import torch.nn.functional as F

    records = []
    for T in seq_lens:
        n_in = SMNIST_PIXELS // T
        ref = reference.build_model(n_in=n_in, hidden=hidden, n_out=N_CLASSES, seed=seed).to(device)
        cand = candidate.build_model(n_in=n_in, hidden=hidden, n_out=N_CLASSES, seed=seed).to(device)
        cand.load_state_dict(ref.state_dict())  # same weights whatever build_model does
        x, y = random_smnist(batch, T, seed=seed + 1, device=device)
        outs, grads = [], []
        for model in (ref, cand):
            model.zero_grad(set_to_none=True)
            out = model(x)
            F.cross_entropy(out, y).backward()
            outs.append(out.detach())
            grads.append(
                {k: (p.grad.detach() if p.grad is not None else None) for k, p in model.named_parameters()}
            )
        forward_equal = bool(torch.equal(outs[0], outs[1]))
        worst, worst_name, grads_close = 0.0, None, True
        for k, g_ref in grads[0].items():
            g_c = grads[1][k]
            if g_ref is None or g_c is None:
                if (g_ref is None) != (g_c is None):
                    grads_close, worst_name = False, k
                continue
            diff = float((g_ref - g_c).abs().max()) if g_ref.numel() else 0.0
            if not math.isfinite(diff):
                diff = math.inf
            if diff > worst or (worst_name is None and not math.isfinite(diff)):
                worst, worst_name = diff, k
            if not torch.allclose(g_ref, g_c, rtol=rtol, atol=atol):
                grads_close = False
        rec = {
            "T": T,
            "variant": name,
            "forward_equal": forward_equal,
            "forward_max_abs_diff": float((outs[0] - outs[1]).abs().max()),
            "grads_allclose": grads_close,
            "grad_max_abs_diff": worst,
            "grad_worst_param": worst_name,
            "rtol": rtol,
            "atol": atol,
        }
        records.append(rec)
        if not (forward_equal and grads_close):
            what = []
            if not forward_equal:
                what.append(f"forward values differ (max abs diff {rec['forward_max_abs_diff']:.3g})")
            if not grads_close:
                what.append(f"gradients differ (max abs diff {worst:.3g} in {worst_name})")
            raise EquivalenceError(f"variant {name!r} at T={T}: " + "; ".join(what))
    return records


# --------------------------------------------------------------------------
# one configuration (runs inside the worker subprocess)


def _stats(samples: list[float]) -> dict[str, Any]:
    s = sorted(samples)
    n = len(s)
    if n == 0:
        return {"n": 0}

    def q(p: float) -> float:  # linear interpolation, like numpy's default
        pos = p * (n - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, n - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)

    return {
        "n": n,
        "median": statistics.median(s),
        "q1": q(0.25),
        "q3": q(0.75),
        "min": s[0],
        "max": s[-1],
        "mean": statistics.fmean(s),
        "samples": samples,
    }


def wrap_model(model, mode: str, device: str):
    """The model as run in ``mode`` (may raise: recorded as n.a.)."""
    import torch

    spec = MODES[mode]
    if spec.get("cuda_only") and device != "cuda":
        raise BenchError(f"mode {mode} needs CUDA (CUDA graphs)")
    if spec["kind"] == "eager":
        return model
    if spec["kind"] == "torchscript":
        # torch.jit.script is deprecated in current PyTorch (a DeprecationWarning
        # pointing to torch.compile/torch.export); it still works and is one of
        # the modes the FGI paper measures, so the warning is silenced here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.script(model)
    return torch.compile(model, **spec["kwargs"])


class _Timer:
    """Forward/backward split timing: CUDA events on the GPU, perf_counter with
    synchronisation on the CPU."""

    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.cuda = device == "cuda"

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def marks(self, n: int):
        if self.cuda:
            evs = [self.torch.cuda.Event(enable_timing=True) for _ in range(n)]
            return evs
        return [None] * n

    def mark(self, marks, i: int):
        if self.cuda:
            marks[i].record()  # asynchronous; read after synchronize()
        else:
            # CPU kernels run synchronously: the clock is the synchronisation.
            marks[i] = time.perf_counter()

    def seconds(self, marks, i: int, j: int) -> float:
        if self.cuda:
            return marks[i].elapsed_time(marks[j]) / 1000.0
        return marks[j] - marks[i]


def run_config(spec: dict[str, Any]) -> dict[str, Any]:
    """Time one (T, mode, variant) configuration; ``spec`` as made by :func:`_config_spec`."""
    import torch
    import torch.nn.functional as F

    T, mode, device = spec["T"], spec["mode"], spec["device"]
    rec: dict[str, Any] = {"T": T, "mode": mode, "variant": spec["variant"], "status": "ok", "error": None}
    module = load_module(spec["model_path"])
    torch.manual_seed(spec["seed"])
    n_in = SMNIST_PIXELS // T
    model = module.build_model(n_in=n_in, hidden=spec["hidden"], n_out=N_CLASSES, seed=spec["seed"]).to(
        device
    )
    x, y = random_smnist(spec["batch"], T, seed=spec["seed"] + 1, device=device)
    timer = _Timer(device)
    cudagraphs = MODES[mode].get("kwargs", {}).get("mode") == "reduce-overhead"

    def step_begin() -> None:
        if cudagraphs:  # outputs of the previous CUDA-graph replay may be overwritten
            torch.compiler.cudagraph_mark_step_begin()

    # --- wrapping (TorchScript compiles here; torch.compile compiles lazily) ---
    t0 = time.perf_counter()
    wrapped = wrap_model(model, mode, device)
    timer.sync()
    rec["wrap_s"] = time.perf_counter() - t0

    params = list(wrapped.parameters())

    def train_iter() -> tuple[float, float]:
        for p in params:  # no optimiser step: the weights (and the timings) stay put
            p.grad = None
        step_begin()
        marks = timer.marks(3)
        timer.mark(marks, 0)
        loss = F.cross_entropy(wrapped(x), y)
        timer.mark(marks, 1)
        loss.backward()
        timer.mark(marks, 2)
        timer.sync()
        return timer.seconds(marks, 0, 1), timer.seconds(marks, 1, 2)

    # --- training: warm-up (first iterations, incl. compilation), then timed ---
    warm = []
    for _ in range(spec["warmup"]):
        t0 = time.perf_counter()
        train_iter()
        warm.append(time.perf_counter() - t0)
    rec["warmup_iters_s"] = warm
    rec["warmup_train_s"] = rec["wrap_s"] + sum(warm)
    fwd, bwd = [], []
    t0 = time.perf_counter()
    while len(fwd) < spec["iterations"] and not _capped(spec, t0, len(fwd)):
        f, b = train_iter()
        fwd.append(f)
        bwd.append(b)
    rec["train_forward"] = _stats(fwd)
    rec["train_backward"] = _stats(bwd)
    rec["train_total"] = _stats([f + b for f, b in zip(fwd, bwd)])

    # --- inference (torch.no_grad): its own warm-up (torch.compile recompiles) ---
    try:

        def infer_iter() -> float:
            step_begin()
            marks = timer.marks(2)
            with torch.no_grad():
                timer.mark(marks, 0)
                wrapped(x)
                timer.mark(marks, 1)
            timer.sync()
            return timer.seconds(marks, 0, 1)

        t0 = time.perf_counter()
        for _ in range(max(spec["warmup"], 1)):
            infer_iter()
        rec["warmup_infer_s"] = time.perf_counter() - t0
        inf: list[float] = []
        t0 = time.perf_counter()
        while len(inf) < spec["iterations"] and not _capped(spec, t0, len(inf)):
            inf.append(infer_iter())
        rec["inference"] = _stats(inf)
        rec["inference_error"] = None
    except Exception as exc:  # training numbers stay valid
        rec["inference"] = None
        rec["warmup_infer_s"] = None
        rec["inference_error"] = _short_error(exc)
    return rec


def _capped(spec: dict[str, Any], t0: float, done: int) -> bool:
    cap = spec.get("max_phase_s")
    return cap is not None and done >= min(5, spec["iterations"]) and time.perf_counter() - t0 > cap


def _short_error(exc: BaseException, limit: int = 600) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    # torch.compile errors carry long explanations; keep the head.
    lines = [ln for ln in text.splitlines() if ln.strip()]
    text = " | ".join(lines[:6])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def worker_main(argv: list[str] | None = None) -> int:
    """Subprocess entry point: ``python -c '...worker_main()' SPEC.json RESULT.json``."""
    argv = sys.argv[1:] if argv is None else argv
    spec_path, result_path = argv[0], argv[1]
    spec = json.loads(Path(spec_path).read_text())
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        rec = run_config(spec)
    except Exception as exc:
        rec = {
            "T": spec["T"],
            "mode": spec["mode"],
            "variant": spec["variant"],
            "status": "failed",
            "error": _short_error(exc),
            "traceback": traceback.format_exc(limit=8)[-4000:],
        }
    Path(result_path).write_text(json.dumps(rec))
    return 0


# --------------------------------------------------------------------------
# the whole run


def machine_info(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "hostname": platform.node(),
    }
    if hasattr(os, "getloadavg"):  # other work on the machine disturbs the timings
        info["loadavg_1_5_15min"] = list(os.getloadavg())
    if device == "cuda" and torch.cuda.is_available():
        info["cuda"] = torch.version.cuda
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


def plan_configs(settings: BenchSettings) -> list[tuple[int, str, str]]:
    """(T, mode, variant) in run order: the cheap modes for every T first, then
    the compiled modes by increasing T (so a time budget buys compilation of
    small T for every compile mode before large T of any)."""
    cheap = [m for m in settings.modes if m in CHEAP_MODES]
    costly = [m for m in settings.modes if m not in CHEAP_MODES]
    order = []
    for mode in cheap:
        for T in sorted(settings.seq_lens):
            for v in settings.variants:
                order.append((T, mode, v))
    for T in sorted(settings.seq_lens):
        for mode in costly:
            for v in settings.variants:
                order.append((T, mode, v))
    return order


def _config_spec(settings: BenchSettings, variant: Variant, T: int, mode: str) -> dict[str, Any]:
    return {
        "T": T,
        "mode": mode,
        "variant": variant.name,
        "model_path": str(variant.path),
        "device": settings.device,
        "hidden": settings.hidden,
        "batch": settings.batch,
        "iterations": settings.iterations,
        "warmup": settings.warmup,
        "max_phase_s": settings.max_phase_s,
        "seed": settings.seed,
    }


def _worker_env(cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    pkg_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # cold compilation caches for every configuration: the warm-up column
    # measures a first run, not a cache hit left by the previous configuration.
    env["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir / "inductor")
    env["TRITON_CACHE_DIR"] = str(cache_dir / "triton")
    env.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    return env


def _run_in_subprocess(spec: dict[str, Any], timeout_s: float, tmp: Path) -> dict[str, Any]:
    tag = f"{spec['variant']}_{spec['mode']}_T{spec['T']}"
    spec_path, result_path = tmp / f"{tag}.spec.json", tmp / f"{tag}.result.json"
    spec_path.write_text(json.dumps(spec))
    cache = Path(tempfile.mkdtemp(prefix=f"cache_{tag}_", dir=tmp))
    cmd = [
        sys.executable,
        "-c",
        "import sys; from fgi_rewrite.bench.harness import worker_main; sys.exit(worker_main())",
        str(spec_path),
        str(result_path),
    ]
    t0 = time.perf_counter()
    base = {"T": spec["T"], "mode": spec["mode"], "variant": spec["variant"]}
    # A session of its own: on a timeout the whole process group goes, including
    # TorchInductor's compile workers, which would otherwise keep the CPUs busy.
    proc = subprocess.Popen(
        cmd,
        env=_worker_env(cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(tmp),
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.communicate()
        return {
            **base,
            "status": "timeout",
            "error": f"timed out after {timeout_s:.0f} s",
            "wall_s": time.perf_counter() - t0,
        }
    finally:
        _kill_group(proc.pid)  # leftovers of a finished worker, if any
    wall = time.perf_counter() - t0
    if result_path.is_file():
        rec = json.loads(result_path.read_text())
    else:
        tail = (stderr or stdout or "").strip().splitlines()[-5:]
        rec = {
            **base,
            "status": "failed",
            "error": f"worker exited with code {proc.returncode}: " + " | ".join(tail),
        }
    rec["wall_s"] = wall
    return rec


def _kill_group(pgid: int) -> None:
    """SIGKILL the process group of a worker we started (its pid is the group id)."""
    if os.name != "posix":
        return
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _skip(T: int, mode: str, variant: str, why: str) -> dict[str, Any]:
    return {"T": T, "mode": mode, "variant": variant, "status": "skipped", "error": why}


def run_benchmark(
    settings: BenchSettings,
    *,
    log: Callable[[str], None] = print,
    rewrite: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """Run the whole benchmark; write nothing (see :mod:`fgi_rewrite.bench.report`)."""
    import torch

    settings.validate()
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda, but torch sees no CUDA device")
    started = time.perf_counter()
    load_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    out_dir = Path(settings.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    log(f"model: {settings.model_path}")
    variants = prepare_variants(settings.model_path, settings.variants, out_dir / "variants", rewrite=rewrite)
    for v in variants.values():
        note = f" ({len(v.refusals)} other refusal(s))" if v.refusals else ""
        log(f"variant {v.name}: {v.path}{note}")

    # equivalence before any timing
    modules = {name: load_module(v.path) for name, v in variants.items()}
    equivalence = []
    for name in settings.variants:
        if name == REFERENCE_VARIANT:
            continue
        recs = check_equivalence(
            modules[REFERENCE_VARIANT],
            modules[name],
            sorted(settings.seq_lens),
            hidden=settings.hidden,
            batch=min(settings.batch, settings.check_batch),
            device=settings.device,
            seed=settings.seed,
            rtol=settings.rtol,
            atol=settings.atol,
            name=name,
        )
        equivalence.extend(recs)
        worst = max(r["grad_max_abs_diff"] for r in recs)
        log(
            f"equivalence {name} vs {REFERENCE_VARIANT}: forward identical, gradients allclose "
            f"(max abs diff {worst:.3g}) for T={','.join(map(str, sorted(settings.seq_lens)))}"
        )
    del modules
    if settings.device == "cuda":
        torch.cuda.empty_cache()

    results: list[dict[str, Any]] = []
    plan = plan_configs(settings)
    failed_at: dict[tuple[str, str], tuple[int, str]] = {}  # (mode, variant) -> (T, status)
    last_wall: dict[tuple[str, str], tuple[int, float]] = {}
    with tempfile.TemporaryDirectory(prefix="fgi_bench_") as tmpdir:
        tmp = Path(tmpdir)
        for i, (T, mode, vname) in enumerate(plan, 1):
            label = f"[{i}/{len(plan)}] T={T:<4d} {mode:<24s} {vname:<11s}"
            key = (mode, vname)
            if MODES[mode].get("cuda_only") and settings.device != "cuda":
                rec = _skip(T, mode, vname, "CUDA only (CUDA graphs)")
            elif key in failed_at and failed_at[key][1] == "timeout":
                rec = _skip(T, mode, vname, f"timed out at smaller T={failed_at[key][0]}")
            else:
                remaining = math.inf
                if settings.budget_s is not None:
                    remaining = settings.budget_s - (time.perf_counter() - started)
                timeout = min(settings.timeout_s, remaining)
                predicted = None
                if key in last_wall:  # compile time grows ~linearly with T (unrolled loop)
                    t_prev, wall_prev = last_wall[key]
                    predicted = wall_prev * T / t_prev
                if timeout < 15:
                    rec = _skip(T, mode, vname, "time budget exhausted")
                elif predicted is not None and predicted > timeout:
                    rec = _skip(
                        T,
                        mode,
                        vname,
                        f"predicted {predicted:.0f} s (from T={last_wall[key][0]}) > {timeout:.0f} s left",
                    )
                else:
                    spec = _config_spec(settings, variants[vname], T, mode)
                    rec = _run_in_subprocess(spec, timeout, tmp)
            rec.setdefault("n_in", SMNIST_PIXELS // T)
            results.append(rec)
            if rec["status"] == "ok":
                last_wall[key] = (T, rec.get("wall_s", 0.0))
                tr = rec["train_total"]["median"] * 1e3
                inf = rec["inference"]["median"] * 1e3 if rec.get("inference") else float("nan")
                log(
                    f"{label} train {tr:9.2f} ms  infer {inf:9.2f} ms  warm-up {rec['warmup_train_s']:7.2f} s"
                    f"  ({rec.get('wall_s', 0):.0f} s)"
                )
            else:
                if rec["status"] in ("failed", "timeout"):
                    failed_at.setdefault(key, (T, rec["status"]))
                log(f"{label} {rec['status']}: {rec['error']}")

    doc = {
        "schema": "fgi-bench/1",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine_info(settings.device), "loadavg_at_start": load_start},
        "settings": asdict(settings),
        "reference": {"mode": REFERENCE_MODE, "variant": REFERENCE_VARIANT},
        "variants": {name: v.info() for name, v in variants.items()},
        "equivalence": equivalence,
        "results": results,
        "total_wall_s": time.perf_counter() - started,
    }
    return doc
