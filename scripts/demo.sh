#!/usr/bin/env bash
# Set everything up and run the main job on the bundled example (examples/alif/model.py):
# show the rewrite, verify it numerically, train both side by side, and time backward() vs FGI.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[torch,dev]'
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p out

echo "== fgi explain examples/alif/model.py"
fgi explain examples/alif/model.py
echo "== fgi-rewrite --diff examples/alif/model.py   (the file itself is not changed)"
fgi-rewrite --diff examples/alif/model.py
echo "== fgi verify examples/alif/model.py"
fgi verify examples/alif/model.py
echo "== fgi train: original and rewritten model from the same seed (out/train)"
fgi train --iterations 30 --out out/train
echo "== fgi bench --quick: backward() vs FGI, eager / TorchScript / torch.compile (out/bench)"
fgi bench --quick --out out/bench
