"""The benchmark harness on a tiny configuration (no timing assertions), the IDX
loader, and the guards that stop a run (rewriter failures, non-equivalent variants)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fgi_rewrite.bench import data  # noqa: E402
from fgi_rewrite.bench.harness import (  # noqa: E402
    DEFAULT_MODEL,
    BenchSettings,
    EquivalenceError,
    RewriteError,
    apply_call_lines,
    check_equivalence,
    load_module,
    rewrite_model_source,
    run_benchmark,
)
from fgi_rewrite.bench.report import csv_header, write_all  # noqa: E402

TINY = dict(hidden=8, batch=4, seq_lens=[28], iterations=2, warmup=1, device="cpu")


# --------------------------------------------------------------------------
# harness end to end (subprocess per configuration, real rewriter)


def test_tiny_run_writes_well_formed_outputs(tmp_path):
    settings = BenchSettings(
        modes=["eager", "torchscript"],
        variants=["backward", "fgi"],
        out_dir=str(tmp_path),
        timeout_s=120,
        **TINY,
    )
    doc = run_benchmark(settings, log=lambda m: None)
    paths = write_all(doc, tmp_path)

    loaded = json.loads(paths["json"].read_text())
    assert loaded["settings"]["hidden"] == 8
    assert loaded["machine"]["torch"] == torch.__version__
    assert {(r["mode"], r["variant"]) for r in loaded["results"]} == {
        ("eager", "backward"),
        ("eager", "fgi"),
        ("torchscript", "backward"),
        ("torchscript", "fgi"),
    }
    for rec in loaded["results"]:
        assert rec["status"] == "ok", rec
        for block in ("train_forward", "train_backward", "train_total", "inference"):
            stats = rec[block]
            assert stats["n"] == 2 and stats["min"] <= stats["median"] <= stats["max"]
        assert rec["warmup_train_s"] >= 0
    assert [e["forward_equal"] and e["grads_allclose"] for e in loaded["equivalence"]] == [True]
    # the FGI variant was produced by the rewriter and kept for inspection
    fgi_path = Path(loaded["variants"]["fgi"]["path"])
    assert fgi_path.is_file() and apply_call_lines(fgi_path.read_text(), ["SpikeFunction"]) == {}

    with paths["csv"].open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == csv_header()
    assert len(rows) == 5 and all(len(r) == len(rows[0]) for r in rows)

    md = paths["md"].read_text()
    for title in ("Table 1", "Table 2", "Table 3", "eager + FGI", "torchscript + backward()"):
        assert title in md
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failing_configuration_is_recorded_not_fatal(tmp_path):
    # A variant that is right in eager mode but does not script (a lambda), and
    # the CUDA-graph mode on the CPU: both must come out as n.a., not stop the run.
    def unscriptable_fgi(text, path="<string>", **kw):
        new = text.replace(
            "z = SpikeFunction.apply(u - theta)",
            "v = u - theta\n"
            "            z = (v > 0).float().detach() + (v - v.detach()) * gaussian(v).detach()\n"
            "            z = (lambda q: q)(z)",
        )
        return SimpleNamespace(new_source=new, changed=True, refusals=[])

    settings = BenchSettings(
        modes=["torchscript", "compile-reduce-overhead"],
        variants=["backward", "fgi"],
        out_dir=str(tmp_path),
        **TINY,
    )
    doc = run_benchmark(settings, log=lambda m: None, rewrite=unscriptable_fgi)
    by = {(r["mode"], r["variant"]): r for r in doc["results"]}
    assert by[("torchscript", "backward")]["status"] == "ok"
    assert by[("torchscript", "fgi")]["status"] == "failed"
    assert "lambda" in by[("torchscript", "fgi")]["error"].lower()
    assert by[("compile-reduce-overhead", "fgi")]["status"] == "skipped"
    md = write_all(doc, tmp_path)["md"].read_text()
    assert "n.a." in md and "torchscript + FGI: failed" in md


# --------------------------------------------------------------------------
# equivalence check


def _variant_file(tmp_path: Path, name: str, old: str, new: str):
    src = DEFAULT_MODEL.read_text()
    assert old in src
    path = tmp_path / f"{name}.py"
    path.write_text(src.replace(old, new))
    return load_module(path)


def test_equivalence_accepts_the_rewritten_model(tmp_path):
    new_source, _ = rewrite_model_source(DEFAULT_MODEL.read_text(), str(DEFAULT_MODEL))
    path = tmp_path / "model_fgi.py"
    path.write_text(new_source)
    recs = check_equivalence(load_module(DEFAULT_MODEL), load_module(path), [28], hidden=8, batch=4)
    assert recs[0]["forward_equal"] and recs[0]["grads_allclose"]


def test_equivalence_catches_wrong_surrogate(tmp_path):
    wrong = _variant_file(tmp_path, "wrong_grad", "sigma: float = 0.5", "sigma: float = 0.45")
    with pytest.raises(EquivalenceError, match="gradients differ"):
        check_equivalence(load_module(DEFAULT_MODEL), wrong, [28], hidden=8, batch=4, name="wrong")


def test_equivalence_catches_wrong_forward(tmp_path):
    wrong = _variant_file(tmp_path, "wrong_fwd", "return (x > 0).float()", "return (x > -0.05).float()")
    with pytest.raises(EquivalenceError, match="forward values differ"):
        check_equivalence(load_module(DEFAULT_MODEL), wrong, [28], hidden=8, batch=4, name="wrong")


def test_run_stops_on_wrong_variant(tmp_path, monkeypatch):
    # A "rewriter" that emits a wrong FGI form: the run must stop before timing.
    def bad_rewrite(text, path="<string>", **kw):
        new = text.replace(
            "z = SpikeFunction.apply(u - theta)",
            "v = u - theta\n            z = (v > 0).float().detach() + (v - v.detach()) * (2.0 * gaussian(v)).detach()",
        )
        return SimpleNamespace(new_source=new, changed=new != text, refusals=[])

    settings = BenchSettings(modes=["eager"], variants=["backward", "fgi"], out_dir=str(tmp_path), **TINY)
    with pytest.raises(EquivalenceError):
        run_benchmark(settings, log=lambda m: None, rewrite=bad_rewrite)
    assert not (tmp_path / "results.json").exists()


# --------------------------------------------------------------------------
# rewriter guards


SRC = DEFAULT_MODEL.read_text()


def _fake(new_source, changed=True, refusals=()):
    return lambda text, path="<string>", **kw: SimpleNamespace(
        new_source=new_source, changed=changed, refusals=list(refusals)
    )


def test_rewrite_guard_unchanged():
    with pytest.raises(RewriteError, match="did not change"):
        rewrite_model_source(SRC, "model.py", rewrite=_fake(SRC, changed=False))


def test_rewrite_guard_refusal_for_spike_function():
    line = SRC.splitlines().index("class SpikeFunction(torch.autograd.Function):") + 1
    refusal = SimpleNamespace(code="FGI999", message="cannot rewrite this backward", line=line + 3)
    with pytest.raises(RewriteError, match="refused"):
        rewrite_model_source(SRC, "model.py", rewrite=_fake(SRC + "\n# changed\n", refusals=[refusal]))


def test_rewrite_guard_leftover_apply_call():
    with pytest.raises(RewriteError, match="still calls SpikeFunction.apply"):
        rewrite_model_source(SRC, "model.py", rewrite=_fake(SRC + "\n# changed\n"))


# --------------------------------------------------------------------------
# IDX loader


@pytest.mark.parametrize("gz", [False, True])
def test_idx_mnist_loader(tmp_path, gz):
    rng = np.random.default_rng(0)
    sfx = ".gz" if gz else ""
    for split, stem, n in (("train", "train", 5), ("test", "t10k", 3)):
        imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        data.write_idx(tmp_path / f"{stem}-images-idx3-ubyte{sfx}", imgs)
        data.write_idx(tmp_path / f"{stem}-labels-idx1-ubyte{sfx}", labels)
        if gz:
            assert (tmp_path / f"{stem}-images-idx3-ubyte.gz").read_bytes()[:2] == b"\x1f\x8b"
        ds = data.load_mnist(tmp_path, split)
        assert ds.images.shape == (n, 784) and ds.images.dtype == np.float32
        np.testing.assert_allclose(ds.images, imgs.reshape(n, 784) / 255.0, rtol=1e-6)
        np.testing.assert_array_equal(ds.labels, labels.astype(np.int64))
        seq = data.to_sequence(ds.images, 49)
        assert seq.shape == (n, 49, 16)
        np.testing.assert_array_equal(seq[:, 0, :], ds.images[:, :16])


def test_idx_other_dtypes_and_errors(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    np.testing.assert_array_equal(data.load_idx(data.write_idx(tmp_path / "f.idx", arr)), arr)
    ints = np.array([-5, 70000, 3], dtype=np.int32)
    np.testing.assert_array_equal(data.load_idx(data.write_idx(tmp_path / "i.idx.gz", ints)), ints)
    # gzip detected by content, whatever the name
    (tmp_path / "nogzname").write_bytes(gzip.compress((tmp_path / "f.idx").read_bytes()))
    np.testing.assert_array_equal(data.load_idx(tmp_path / "nogzname"), arr)

    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(data.IDXError, match="magic"):
        data.load_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes((tmp_path / "f.idx").read_bytes()[:-1])
    with pytest.raises(data.IDXError, match="payload"):
        data.load_idx(tmp_path / "short")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="train images"):
        data.load_mnist(empty)


def test_random_smnist_shape():
    x, y = data.random_smnist(4, 98, seed=1)
    assert x.shape == (4, 98, 8) and y.shape == (4,)
    with pytest.raises(ValueError):
        data.random_smnist(4, 100)


def test_train_side_by_side_on_idx_files(tmp_path):
    from fgi_rewrite.bench.commands import train_side_by_side

    rng = np.random.default_rng(1)
    for stem, n in (("train", 6), ("t10k", 3)):
        data.write_idx(
            tmp_path / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        )
        data.write_idx(tmp_path / f"{stem}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
    res = train_side_by_side(
        model_path=DEFAULT_MODEL,
        iterations=3,
        batch=4,
        hidden=8,
        mnist_dir=tmp_path,
        out_dir=tmp_path / "out",
        log=lambda m: None,
    )
    assert res["seq_len"] == 28 and len(res["loss_backward"]) == len(res["loss_variant"]) == 3
    assert res["max_abs_diff"] <= 1e-6
    assert res["figure"].read_bytes()[:4] == b"\x89PNG"
    assert json.loads(res["json"].read_text())["max_abs_diff"] == res["max_abs_diff"]
