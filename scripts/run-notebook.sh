#!/usr/bin/env bash
# Executes examples/notebooks/quickstart.ipynb headless (nbclient + ipykernel) and writes its
# figures to docs/images/notebook/ (the PNGs the README shows). The notebook file itself is left
# without outputs. Usage: scripts/run-notebook.sh [FIGURE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
out="${1:-docs/images/notebook}"
mkdir -p "$out"
GENPRM_FIGURES="$(cd "$out" && pwd)" PYTHONPATH="$BUILD_DIR/python${PYTHONPATH:+:$PYTHONPATH}" "$PY" - <<'PY'
import time
import nbclient, nbformat
nb = nbformat.read("examples/notebooks/quickstart.ipynb", as_version=4)
start = time.time()
nbclient.NotebookClient(nb, timeout=600, kernel_name="python3").execute()
print(f"quickstart.ipynb: {len(nb.cells)} cells executed in {time.time() - start:.1f} s")
PY
ls -l "$out"
