"""The ``bench`` and ``train`` click commands (registered into the ``fgi`` group
by :mod:`fgi_rewrite.cli`)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from .data import SMNIST_SEQ_LENS

#: --quick: CPU, a few minutes in all (torch.compile alone costs ~30-60 s per
#: configuration on a small CPU).
QUICK = {
    "seq_lens": [28, 49],
    "modes": ["eager", "torchscript", "compile"],
    "variants": ["backward", "fgi"],
    "iterations": 10,
    "warmup": 3,
    "device": "cpu",
    "timeout_s": 240.0,
    "budget_s": 900.0,
}

#: --preset gpu: one H200, one run of at most 9 minutes (540 s).  The cheap
#: modes cover every T; the compiled modes then run by increasing T until the
#: 450 s budget is spent (each configuration compiles cold, torch.compile
#: unrolls the time loop, so compilation grows with T; a configuration whose
#: predicted time no longer fits is skipped), the rest is recorded as skipped.
#: Timed loops stop after 20 iterations or 3 s (at least 5 iterations), so that
#: eager T=784 (~0.5 s per iteration) does not eat the budget.
PRESETS: dict[str, dict[str, Any]] = {
    "gpu": {
        "seq_lens": list(SMNIST_SEQ_LENS),
        "modes": [
            "eager",
            "torchscript",
            "compile",
            "compile-fullgraph",
            "compile-reduce-overhead",
            "compile-max-autotune",
        ],
        "variants": ["backward", "fgi"],
        "iterations": 20,
        "warmup": 3,
        "max_phase_s": 3.0,
        "device": "cuda",
        "timeout_s": 120.0,
        "budget_s": 450.0,
    },
    "cpu": {
        "seq_lens": list(SMNIST_SEQ_LENS),
        "modes": ["eager", "torchscript", "compile"],
        "variants": ["backward", "fgi"],
        "iterations": 10,
        "warmup": 3,
        "device": "cpu",
        "timeout_s": 900.0,
        "budget_s": None,
    },
}


def _int_list(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"not a comma-separated list of integers: {value!r}") from exc


def _str_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# Options that `fgi bench` and `fgi train` share.
MODEL_OPTION = click.option(
    "--model",
    "model_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Model file (default: the bundled examples/alif/model.py).",
)
DEVICE_OPTION = click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None)
SEED_OPTION = click.option("--seed", type=int, default=0, show_default=True)


@click.command("bench")
@click.option("--quick", is_flag=True, help="Small CPU run (T=28,49; few iterations): a few minutes.")
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default=None,
    help="gpu: fits one 9-minute run on one H200; cpu: every T, eager/torchscript/compile.",
)
@click.option(
    "--seq-lens", default=None, help="Comma-separated T values (784/T pixels per step), e.g. 28,49."
)
@click.option(
    "--modes",
    default=None,
    help="Comma-separated: eager, torchscript, compile, compile-fullgraph, compile-max-autotune, "
    "compile-reduce-overhead (CUDA only).",
)
@click.option("--variants", default=None, help="Comma-separated: backward, fgi, fgi_finite.")
@click.option("--iterations", type=int, default=None, help="Timed iterations per configuration.")
@click.option(
    "--warmup", type=int, default=None, help="Warm-up iterations (untimed, reported as warm-up cost)."
)
@click.option("--hidden", type=int, default=None, help="Hidden ALIF neurons (default 128).")
@click.option("--batch", type=int, default=None, help="Batch size (default 128).")
@DEVICE_OPTION
@click.option("--timeout", "timeout_s", type=float, default=None, help="Seconds per configuration.")
@click.option("--budget", "budget_s", type=float, default=None, help="Seconds for the whole run.")
@MODEL_OPTION
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="out/bench", show_default=True)
@SEED_OPTION
def bench(
    quick,
    preset,
    seq_lens,
    modes,
    variants,
    iterations,
    warmup,
    hidden,
    batch,
    device,
    timeout_s,
    budget_s,
    model_path,
    out_dir,
    seed,
):
    """Time backward() surrogate vs. rewritten FGI (Otte 2024, Tables 1-3, Fig. 2).

    The FGI variant is produced at run time by the rewriter from the model file.
    Writes results.json, results.csv, tables.md and figure.png under --out and
    prints the tables.
    """
    from .harness import DEFAULT_MODEL, BenchError, BenchSettings, run_benchmark
    from .report import make_tables, write_all

    if quick and preset:
        raise click.UsageError("--quick and --preset are exclusive")
    base: dict[str, Any] = dict(QUICK if quick else PRESETS.get(preset or "", {}))
    explicit = {
        "seq_lens": _int_list(seq_lens),
        "modes": _str_list(modes),
        "variants": _str_list(variants),
        "iterations": iterations,
        "warmup": warmup,
        "hidden": hidden,
        "batch": batch,
        "device": device,
        "timeout_s": timeout_s,
        "budget_s": budget_s,
    }
    base.update({k: v for k, v in explicit.items() if v is not None})
    base.setdefault("device", _default_device())
    settings = BenchSettings(
        **base,
        out_dir=out_dir,
        model_path=str(model_path or DEFAULT_MODEL),
        seed=seed,
        preset="quick" if quick else preset,
    )
    try:
        doc = run_benchmark(settings, log=lambda m: click.echo(m, err=True))
    except BenchError as exc:
        raise click.ClickException(str(exc)) from exc
    paths = write_all(doc, out_dir)
    click.echo(make_tables(doc))
    click.echo(f"wrote {', '.join(str(p) for p in paths.values())} ({doc['total_wall_s']:.0f} s)", err=True)


@click.command("train")
@click.option("--iterations", type=int, default=300, show_default=True, help="Training iterations (K).")
@click.option("--batch", type=int, default=64, show_default=True)
@click.option("--hidden", type=int, default=128, show_default=True)
@click.option(
    "--seq-len",
    type=int,
    default=None,
    help="Time steps per image (default: 8 for the 8x8 digits, 28 for MNIST).",
)
@click.option("--lr", type=float, default=5e-3, show_default=True, help="Adam learning rate.")
@click.option(
    "--mnist",
    "mnist_dir",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Directory with MNIST IDX files (gzipped or not); default: scikit-learn's offline 8x8 digits.",
)
@click.option("--variant", type=click.Choice(["fgi", "fgi_finite"]), default="fgi", show_default=True)
@MODEL_OPTION
@DEVICE_OPTION
@SEED_OPTION
@click.option(
    "--tol",
    type=float,
    default=1e-5,
    show_default=True,
    help="Largest acceptable |loss difference|; exit status 1 above it.",
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="out/train", show_default=True)
def train(iterations, batch, hidden, seq_len, lr, mnist_dir, variant, model_path, device, seed, tol, out_dir):
    """Train the original and the rewritten model side by side from the same seed.

    Same weights, same batches, same optimiser: the two loss curves must coincide
    to float rounding.  Plots both into loss.png and prints the largest absolute
    difference of the losses.
    """
    from .harness import DEFAULT_MODEL, BenchError

    try:
        res = train_side_by_side(
            model_path=model_path or DEFAULT_MODEL,
            variant=variant,
            iterations=iterations,
            batch=batch,
            hidden=hidden,
            seq_len=seq_len,
            lr=lr,
            mnist_dir=mnist_dir,
            device=device or _default_device(),
            seed=seed,
            out_dir=out_dir,
            log=lambda m: click.echo(m, err=True),
        )
    except BenchError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"data: {res['data']} (T={res['seq_len']}, {res['n_in']} inputs per step), {iterations} iterations"
    )
    click.echo(
        f"final loss: backward() {res['loss_backward'][-1]:.6f}, {variant} {res['loss_variant'][-1]:.6f}"
    )
    click.echo(f"test accuracy: backward() {res['acc_backward']:.4f}, {variant} {res['acc_variant']:.4f}")
    click.echo(f"max |loss difference| over {iterations} iterations: {res['max_abs_diff']:.3g}")
    click.echo(f"wrote {res['figure']} and {res['json']}")
    if not res["max_abs_diff"] <= tol:
        click.echo(f"the loss curves differ by more than --tol {tol:g}", err=True)
        sys.exit(1)


def train_side_by_side(
    *,
    model_path,
    variant: str = "fgi",
    iterations: int = 300,
    batch: int = 64,
    hidden: int = 128,
    seq_len: int | None = None,
    lr: float = 5e-3,
    mnist_dir=None,
    device: str = "cpu",
    seed: int = 0,
    out_dir="out/train",
    log=print,
) -> dict[str, Any]:
    """Train the original model and its rewritten ``variant`` in lock step.

    Both start from the same weights (same seed, and the state dict copied),
    see the same mini-batches in the same order and use identical Adam
    optimisers; returns both loss curves, their largest absolute difference,
    test accuracies and the paths written (loss.png, train.json).
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    from .data import load_digits, load_mnist, to_sequence
    from .harness import N_CLASSES, load_module, prepare_variants

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    variants = prepare_variants(model_path, ["backward", variant], out / "variants")
    modules = {name: load_module(v.path) for name, v in variants.items()}

    if mnist_dir:
        train_set, test_set = load_mnist(mnist_dir, "train"), load_mnist(mnist_dir, "test")
        seq_len = seq_len or 28
        data_name = f"MNIST IDX ({mnist_dir})"
    else:
        digits = load_digits()
        n_train = 1500  # of 1797
        train_set = digits._replace(images=digits.images[:n_train], labels=digits.labels[:n_train])
        test_set = digits._replace(images=digits.images[n_train:], labels=digits.labels[n_train:])
        seq_len = seq_len or 8
        data_name = digits.name
    x_train = torch.from_numpy(to_sequence(train_set.images, seq_len))
    y_train = torch.from_numpy(train_set.labels)
    x_test = torch.from_numpy(to_sequence(test_set.images, seq_len)).to(device)
    y_test = torch.from_numpy(test_set.labels).to(device)
    n_in = x_train.shape[2]

    models = {
        name: mod.build_model(n_in=n_in, hidden=hidden, n_out=N_CLASSES, seed=seed).to(device)
        for name, mod in modules.items()
    }
    models[variant].load_state_dict(models["backward"].state_dict())
    opts = {name: torch.optim.Adam(m.parameters(), lr=lr) for name, m in models.items()}
    rng = np.random.default_rng(seed)
    losses: dict[str, list[float]] = {name: [] for name in models}
    t0 = time.perf_counter()
    perm, pos = rng.permutation(len(x_train)), 0
    for it in range(iterations):
        if pos + batch > len(perm):
            perm, pos = rng.permutation(len(x_train)), 0
        sel = torch.from_numpy(perm[pos : pos + batch])
        pos += batch
        xb, yb = x_train[sel].to(device), y_train[sel].to(device)
        for name, model in models.items():
            opts[name].zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opts[name].step()
            losses[name].append(float(loss.detach()))
        if (it + 1) % max(1, iterations // 10) == 0 or it == iterations - 1:
            log(
                f"iteration {it + 1}/{iterations}: loss backward() {losses['backward'][-1]:.5f}, "
                f"{variant} {losses[variant][-1]:.5f} ({time.perf_counter() - t0:.0f} s)"
            )

    acc = {}
    with torch.no_grad():
        for name, model in models.items():
            acc[name] = float((model(x_test).argmax(1) == y_test).float().mean())
    diffs = [abs(a - b) for a, b in zip(losses["backward"], losses[variant])]
    max_diff = max(diffs) if diffs else 0.0

    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    steps = np.arange(1, iterations + 1)
    ax1.plot(steps, losses["backward"], color="tab:red", lw=2.5, alpha=0.6, label="backward() surrogate")
    ax1.plot(steps, losses[variant], color="tab:blue", lw=1.0, ls="--", label=f"{variant} (rewritten)")
    ax1.set_ylabel("training loss")
    ax1.set_title(f"ALIF RSNN on {data_name}, T={seq_len}: original vs rewritten, same seed", fontsize=9)
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(steps, diffs, color="black", lw=1.0)
    ax2.set_ylabel("|difference|")
    ax2.set_xlabel("iteration")
    ax2.grid(alpha=0.3)
    ax2.set_title(f"max |loss difference| = {max_diff:.3g}", fontsize=8)
    fig.tight_layout()
    fig_path = out / "loss.png"
    fig.savefig(fig_path, dpi=120)
    plt.close(fig)

    res = {
        "data": data_name,
        "seq_len": seq_len,
        "n_in": n_in,
        "variant": variant,
        "iterations": iterations,
        "batch": batch,
        "hidden": hidden,
        "lr": lr,
        "seed": seed,
        "device": device,
        "torch": torch.__version__,
        "loss_backward": losses["backward"],
        "loss_variant": losses[variant],
        "max_abs_diff": max_diff,
        "acc_backward": acc["backward"],
        "acc_variant": acc[variant],
    }
    json_path = out / "train.json"
    json_path.write_text(json.dumps(res, indent=2) + "\n")
    res["figure"], res["json"] = fig_path, json_path
    return res
