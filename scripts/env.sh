# Sourced by the other scripts: paths and the interpreter, in one place.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
BUILD_DIR="${GENPRM_BUILD_DIR:-$ROOT/build}"
JOBS="${GENPRM_JOBS:-$(nproc)}"
export CCACHE_DIR="${CCACHE_DIR:-$ROOT/.venv/ccache}"
