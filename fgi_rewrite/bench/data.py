"""Data for the ALIF benchmark and the side-by-side training run.

* :func:`load_idx` / :func:`load_mnist` read MNIST in the IDX format (the
  original ``train-images-idx3-ubyte`` files, gzipped or not) from a directory
  the user already has; nothing is downloaded.
* :func:`load_digits` is the offline fallback: scikit-learn's bundled 8x8
  digits (1797 images, 64 pixels), read pixel by pixel like sequential MNIST.
* :func:`random_smnist` makes random inputs of the exact S-MNIST shape for
  timing, where the values do not matter.

Images come back flattened, ``[N, P]`` float32 in [0, 1], labels ``[N]`` int64;
:func:`to_sequence` cuts the ``P`` pixels into ``T`` time steps of ``P // T``
pixels each (S-MNIST: ``P = 784``, ``T`` in 28, 49, 98, 196, 392, 784).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

#: Pixels of one MNIST image, read as one sequence.
SMNIST_PIXELS = 784
#: The sequence lengths of the FGI paper's experiment (784 / T pixels per step).
SMNIST_SEQ_LENS = (28, 49, 98, 196, 392, 784)

# IDX type codes -> big-endian numpy dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """The file is not a well-formed IDX file."""


class Dataset(NamedTuple):
    images: np.ndarray  # [N, P] float32 in [0, 1]
    labels: np.ndarray  # [N] int64
    name: str


def _read_bytes(path: Path) -> bytes:
    raw = Path(path).read_bytes()
    if raw[:2] == _GZIP_MAGIC:  # by content, not by name
        raw = gzip.decompress(raw)
    return raw


def parse_idx(raw: bytes) -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file into an array."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise IDXError("bad IDX magic number")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise IDXError(f"unknown IDX data type 0x{type_code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError("truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_DTYPES[type_code]
    count = int(np.prod(shape, dtype=np.int64)) if ndim else 1
    need = header + count * dtype.itemsize
    if len(raw) != need:
        raise IDXError(f"IDX payload has {len(raw) - header} bytes, shape {shape} needs {need - header}")
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=header)
    return data.reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def load_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (gzipped or plain)."""
    return parse_idx(_read_bytes(Path(path)))


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as IDX (used by the tests to make tiny MNIST files).

    ``compress`` defaults to whether ``path`` ends in ``.gz``.
    """
    path = Path(path)
    arr = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
    native = arr.dtype.newbyteorder("=")
    if native not in codes:
        raise IDXError(f"dtype {arr.dtype} has no IDX type code")
    code = codes[native]
    raw = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    raw += arr.astype(_IDX_DTYPES[code], copy=False).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


# Names the MNIST files go by (Yann LeCun's originals, and the dotted variant
# some mirrors and archives use).
_MNIST_STEMS = {
    ("train", "images"): ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    ("train", "labels"): ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    ("test", "images"): ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def find_mnist_file(directory: str | Path, split: str, kind: str) -> Path:
    directory = Path(directory)
    for stem in _MNIST_STEMS[(split, kind)]:
        for name in (stem, stem + ".gz"):
            for cand in (directory / name, directory / "raw" / name):
                if cand.is_file():
                    return cand
    raise FileNotFoundError(
        f"no MNIST {split} {kind} IDX file in {directory} "
        f"(looked for {', '.join(_MNIST_STEMS[(split, kind)])}[.gz])"
    )


def load_mnist(directory: str | Path, split: str = "train") -> Dataset:
    """MNIST ``split`` ("train" or "test") from the IDX files in ``directory``."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    images = load_idx(find_mnist_file(directory, split, "images"))
    labels = load_idx(find_mnist_file(directory, split, "labels"))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise IDXError(f"MNIST shapes do not fit: images {images.shape}, labels {labels.shape}")
    flat = images.reshape(images.shape[0], -1).astype(np.float32)
    if images.dtype == np.uint8:
        flat /= 255.0
    return Dataset(flat, labels.astype(np.int64), f"mnist-{split}")


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (offline), 64 pixels per image."""
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "the offline digits data set needs scikit-learn (pip install scikit-learn), "
            "or give an MNIST IDX directory"
        ) from exc
    d = _sk_load_digits()
    images = (d.images.reshape(len(d.images), -1) / 16.0).astype(np.float32)
    return Dataset(images, d.target.astype(np.int64), "sklearn-digits-8x8")


def to_sequence(images: np.ndarray, seq_len: int) -> np.ndarray:
    """``[N, P]`` pixels -> ``[N, T, P // T]`` (row-major pixel order)."""
    n, p = images.shape
    if seq_len <= 0 or p % seq_len:
        raise ValueError(f"sequence length {seq_len} does not divide the {p} pixels of an image")
    return images.reshape(n, seq_len, p // seq_len)


def random_smnist(batch: int, seq_len: int, *, seed: int = 0, device: str = "cpu", n_classes: int = 10):
    """Random inputs ``[batch, T, 784 // T]`` in [0, 1) and labels of the S-MNIST shape."""
    import torch

    if SMNIST_PIXELS % seq_len:
        raise ValueError(f"T={seq_len} does not divide {SMNIST_PIXELS}")
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, seq_len, SMNIST_PIXELS // seq_len, generator=gen)
    y = torch.randint(0, n_classes, (batch,), generator=gen)
    return x.to(device), y.to(device)
