"""Outputs of ``fgi bench``: results.json, results.csv, tables.md, figure.png.

The Markdown tables follow the FGI paper (Otte 2024, arXiv 2406.00177):

* Table 1 - training speedup (median forward+backward time of one iteration)
  relative to eager mode with the ``backward()`` surrogate, per T;
* Table 2 - the same for inference (``torch.no_grad``);
* Table 3 - warm-up cost in seconds (wrapping/compilation plus the first
  training iterations);

followed by the absolute times (median and interquartile range) and the list of
configurations that are n.a. with their error messages.  The figure is like the
paper's Fig. 2: forward and backward time per iteration against T, one panel
per mode, one colour per variant.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

REF = ("eager", "backward")
VARIANT_LABELS = {"backward": "backward()", "fgi": "FGI", "fgi_finite": "FGI (finite_only)"}
NA = "n.a."


def _key(rec: dict[str, Any]) -> tuple[int, str, str]:
    return rec["T"], rec["mode"], rec["variant"]


def _index(doc: dict[str, Any]) -> dict[tuple[int, str, str], dict[str, Any]]:
    return {_key(r): r for r in doc["results"]}


def _median(rec: dict[str, Any] | None, field: str) -> float | None:
    if not rec or rec.get("status") != "ok":
        return None
    block = rec.get(field)
    if not block or "median" not in block:
        return None
    return float(block["median"])


def _speedup(doc: dict[str, Any], rec: dict[str, Any], field: str) -> float | None:
    ref = _index(doc).get((rec["T"], *REF))
    base, this = _median(ref, field), _median(rec, field)
    if base is None or this is None or this <= 0:
        return None
    return base / this


def _seq_lens(doc: dict[str, Any]) -> list[int]:
    return sorted({r["T"] for r in doc["results"]})


def _rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    s = doc["settings"]
    return [(m, v) for m in s["modes"] for v in s["variants"]]


def _label(mode: str, variant: str) -> str:
    return f"{mode} + {VARIANT_LABELS.get(variant, variant)}"


# --------------------------------------------------------------------------
# JSON / CSV


def write_json(doc: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(_finite(doc), indent=2, allow_nan=False, default=_json_default) + "\n")
    return path


def _finite(obj: Any) -> Any:
    """JSON has no inf/NaN: they become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


CSV_BLOCKS = (
    ("train_forward", "fwd"),
    ("train_backward", "bwd"),
    ("train_total", "train"),
    ("inference", "infer"),
)
CSV_STATS = ("median", "q1", "q3", "min", "max", "mean")


def csv_header() -> list[str]:
    cols = ["T", "n_in", "mode", "variant", "status"]
    for _, short in CSV_BLOCKS:
        cols += [f"{short}_{s}_ms" for s in CSV_STATS]
    cols += [
        "train_speedup",
        "infer_speedup",
        "wrap_s",
        "warmup_train_s",
        "warmup_infer_s",
        "wall_s",
        "error",
    ]
    return cols


def write_csv(doc: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(csv_header())
        for rec in doc["results"]:
            row: list[Any] = [rec["T"], rec.get("n_in", ""), rec["mode"], rec["variant"], rec["status"]]
            for block, _ in CSV_BLOCKS:
                data = rec.get(block) if rec["status"] == "ok" else None
                for s in CSV_STATS:
                    row.append(_fmt_num(data[s] * 1e3) if data and s in data else "")
            for field in ("train_total", "inference"):
                sp = _speedup(doc, rec, field)
                row.append(_fmt_num(sp) if sp is not None else "")
            for f in ("wrap_s", "warmup_train_s", "warmup_infer_s", "wall_s"):
                v = rec.get(f)
                row.append(_fmt_num(v) if isinstance(v, (int, float)) else "")
            err = rec.get("error") or rec.get("inference_error") or ""
            row.append(err)
            w.writerow(row)
    return path


def _fmt_num(v: float) -> str:
    return f"{v:.6g}"


# --------------------------------------------------------------------------
# Markdown


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _cell_status(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return "-"
    return NA if rec.get("status") != "ok" else ""


def make_tables(doc: dict[str, Any]) -> str:
    idx = _index(doc)
    Ts = _seq_lens(doc)
    s = doc["settings"]
    m = doc["machine"]
    where = m.get("gpu") or f"CPU ({m.get('cpu_count')} cores, {m.get('torch_threads')} torch threads)"
    head = [
        "# FGI benchmark: ALIF RSNN on sequential MNIST",
        "",
        f"Device: {s['device']} - {where}; torch {m.get('torch')}; hidden {s['hidden']}, batch {s['batch']}, "
        f"{s['iterations']} timed iterations after {s['warmup']} warm-up iterations; "
        f"T = number of time steps ({784}/T pixels per step).",
        "Speedups are median times of eager + backward() divided by the configuration's median time "
        "(> 1: faster). n.a.: failed, timed out or skipped (see the end).",
        "",
    ]
    load = (m.get("loadavg_at_start") or [None])[0]
    if load is not None and m.get("cpu_count") and load > 0.75 * m["cpu_count"]:
        head[-1:-1] = [
            f"Warning: the machine was busy when the run started (1-min load average {load:.1f} "
            f"on {m['cpu_count']} cores): the timings may be disturbed by other work.",
        ]
    out = list(head)

    def speed_table(field: str, title: str) -> None:
        ref_ms = []
        for T in Ts:
            v = _median(idx.get((T, *REF)), field)
            ref_ms.append(f"{v * 1e3:.2f} ms" if v is not None else NA)
        rows = [["eager + backward() [reference time]", *ref_ms]]
        for mode, var in _rows(doc):
            cells = []
            for T in Ts:
                rec = idx.get((T, mode, var))
                sp = _speedup(doc, rec, field) if rec else None
                cells.append(f"{sp:.2f}x" if sp is not None else (_cell_status(rec) or NA))
            rows.append([_label(mode, var), *cells])
        out.extend([title, "", _md_table(["mode + variant", *[f"T={T}" for T in Ts]], rows), ""])

    speed_table(
        "train_total",
        "## Table 1: training speedup (forward + backward per iteration) relative to eager + backward()",
    )
    speed_table("inference", "## Table 2: inference speedup (torch.no_grad) relative to eager + backward()")

    rows = []
    for mode, var in _rows(doc):
        cells = []
        for T in Ts:
            rec = idx.get((T, mode, var))
            if rec is None:
                cells.append("-")
            elif rec.get("status") != "ok":
                cells.append(NA)
            else:
                inf = rec.get("warmup_infer_s")
                cells.append(
                    f"{rec['warmup_train_s']:.2f} / {inf:.2f}"
                    if inf is not None
                    else f"{rec['warmup_train_s']:.2f} / {NA}"
                )
        rows.append([_label(mode, var), *cells])
    out.extend(
        [
            "## Table 3: warm-up seconds, training / inference",
            "",
            f"Training: wrapping (torch.jit.script; torch.compile is lazy) plus the first {s['warmup']} training "
            f"iterations, which include compilation. Inference: the first no_grad calls (torch.compile "
            "compiles a separate graph). Compilation caches start empty for every configuration.",
            "",
            _md_table(["mode + variant", *[f"T={T}" for T in Ts]], rows),
            "",
        ]
    )

    rows = []
    for rec in sorted(
        doc["results"],
        key=lambda r: (
            r["T"],
            s["modes"].index(r["mode"]) if r["mode"] in s["modes"] else 99,
            s["variants"].index(r["variant"]) if r["variant"] in s["variants"] else 99,
        ),
    ):
        if rec.get("status") != "ok":
            rows.append(
                [
                    str(rec["T"]),
                    rec["mode"],
                    VARIANT_LABELS.get(rec["variant"], rec["variant"]),
                    NA,
                    NA,
                    NA,
                    NA,
                ]
            )
            continue
        cells = []
        for block in ("train_forward", "train_backward", "train_total", "inference"):
            d = rec.get(block)
            cells.append(f"{d['median'] * 1e3:.2f} [{d['q1'] * 1e3:.2f}-{d['q3'] * 1e3:.2f}]" if d else NA)
        rows.append([str(rec["T"]), rec["mode"], VARIANT_LABELS.get(rec["variant"], rec["variant"]), *cells])
    out.extend(
        [
            "## Times per iteration: median [interquartile range], ms",
            "",
            _md_table(["T", "mode", "variant", "forward", "backward", "forward+backward", "inference"], rows),
            "",
        ]
    )

    eq = doc.get("equivalence") or []
    if eq:
        rows = [
            [
                r["variant"],
                str(r["T"]),
                "yes" if r["forward_equal"] else "NO",
                "yes" if r["grads_allclose"] else "NO",
                f"{r['grad_max_abs_diff']:.3g}",
            ]
            for r in eq
        ]
        out.extend(
            [
                "## Equivalence check (eager, same weights and inputs, before timing)",
                "",
                _md_table(
                    [
                        "variant vs backward()",
                        "T",
                        "forward identical",
                        "gradients allclose",
                        "max abs grad diff",
                    ],
                    rows,
                ),
                "",
            ]
        )

    bad = [r for r in doc["results"] if r.get("status") != "ok" or r.get("inference_error")]
    if bad:
        out.extend(["## n.a. configurations", ""])
        for r in bad:
            msg = r.get("error") if r.get("status") != "ok" else f"inference: {r.get('inference_error')}"
            out.append(
                f"- T={r['T']} {r['mode']} + {VARIANT_LABELS.get(r['variant'], r['variant'])}: "
                f"{r['status']}: {_md_escape(msg or '')}"
            )
        out.append("")
    return "\n".join(out)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_tables(doc: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(make_tables(doc))
    return path


# --------------------------------------------------------------------------
# figure


def plot_figure(doc: dict[str, Any], path: str | Path) -> Path:
    """Forward and backward time per training iteration against T (paper's Fig. 2)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    path = Path(path)
    s = doc["settings"]
    modes = list(s["modes"])
    idx = _index(doc)
    Ts = _seq_lens(doc)
    ncols = min(3, len(modes))
    nrows = math.ceil(len(modes) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.8 * nrows), squeeze=False, sharey=True)
    colours = {"backward": "tab:red", "fgi": "tab:blue", "fgi_finite": "tab:green"}
    legend: dict[str, Any] = {}
    for ax, mode in zip(axes.flat, modes):
        any_data = False
        for var in s["variants"]:
            for block, style, marker, part in (
                ("train_forward", "-", "o", "forward"),
                ("train_backward", "--", "s", "backward"),
            ):
                xs, ys, lo, hi = [], [], [], []
                for T in Ts:
                    rec = idx.get((T, mode, var))
                    if rec and rec.get("status") == "ok" and rec.get(block):
                        d = rec[block]
                        xs.append(T)
                        ys.append(d["median"] * 1e3)
                        lo.append(max(d["median"] - d["q1"], 0.0) * 1e3)
                        hi.append(max(d["q3"] - d["median"], 0.0) * 1e3)
                if xs:
                    any_data = True
                    ax.errorbar(
                        xs,
                        ys,
                        yerr=[lo, hi],
                        linestyle=style,
                        marker=marker,
                        markersize=4,
                        capsize=2,
                        color=colours.get(var),
                        label=f"{VARIANT_LABELS.get(var, var)} {part}",
                    )
        ax.set_title(mode)
        ax.set_xscale("log", base=2)
        ax.set_xticks(Ts)
        ax.set_xticklabels([str(T) for T in Ts])
        ax.set_xlabel("T (time steps)")
        ax.grid(True, which="both", alpha=0.3)
        if any_data:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            for h, lab in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(lab, h)
        else:
            ax.text(0.5, 0.5, "n.a.", ha="center", va="center", transform=ax.transAxes)
    for ax in axes[:, 0]:
        ax.set_ylabel("time per iteration (ms)")
    for ax in list(axes.flat)[len(modes) :]:
        ax.axis("off")
    m = doc["machine"]
    fig.suptitle(
        f"ALIF RSNN, S-MNIST: forward/backward time per training iteration "
        f"({s['device']}: {m.get('gpu') or m.get('processor') or m.get('machine')}, torch {m.get('torch')}, "
        f"hidden {s['hidden']}, batch {s['batch']})",
        fontsize=9,
    )
    if legend:  # one legend for all panels, below them
        fig.legend(
            list(legend.values()),
            list(legend.keys()),
            loc="lower center",
            ncol=min(len(legend), 6),
            fontsize=8,
            frameon=False,
        )
    fig.tight_layout(rect=(0, 0.08 if legend else 0, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_all(doc: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "json": write_json(doc, out_dir / "results.json"),
        "csv": write_csv(doc, out_dir / "results.csv"),
        "md": write_tables(doc, out_dir / "tables.md"),
        "png": plot_figure(doc, out_dir / "figure.png"),
    }
