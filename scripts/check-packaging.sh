#!/usr/bin/env bash
# The install routes of the README, each in a fresh virtual environment that shares the project
# venv's torch (a .pth file: "another environment with the same torch", without downloading
# several GB of CUDA wheels again):
#   1. pip install .                      (build isolation: builds against the target's torch)
#   2. pip wheel . ; pip install the wheel in another fresh venv (metadata pins torch X.Y)
#   3. an sdist, then a wheel from it
#   4. pip install --no-build-isolation . (reuses the installed torch and build tools)
# Each venv then imports genprm, runs `genprm --version` and checks the pinned requirement.
# Slow (each route compiles the Python module; repeated builds reuse build/<wheel tag>): not part
# of `make test`. Usage: scripts/check-packaging.sh [ROUTES] (default 1,2,3,4); logs in
# build/packaging/.
set -uo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
ROUTES=",${1:-1,2,3,4},"
want() { [[ "$ROUTES" == *",$1,"* ]]; }
W="$BUILD_DIR/packaging"
rm -rf "$W"; mkdir -p "$W/dist"
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
PIN="$("$PY" -c 'import torch; v = torch.__version__.split("+")[0].split("."); print(f"torch<{v[0]}.{int(v[1]) + 1},>={v[0]}.{v[1]}")')"
export CCACHE_BASEDIR=/ CCACHE_DIR="${CCACHE_DIR:-$ROOT/.venv/ccache}"
fails=0

fresh_venv() {  # fresh_venv DIR: a new venv whose only extra path is the project venv's site-packages
  python3 -m venv "$1" && "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
    | xargs -I{} sh -c "echo '$SITE' > {}/shared-torch.pth"
}
check_venv() {  # check_venv DIR WHAT
  local out
  if out="$(cd /tmp && "$1/bin/python" -c "
import importlib.metadata as m, genprm
req = [r for r in m.requires('genprm') if r.replace(' ', '').startswith('torch')]
assert req and req[0].replace(' ', '') == '$PIN', req
print(genprm.__version__, req[0])" 2>&1)" && "$1/bin/genprm" --version >>"$W/log" 2>&1; then
    echo "ok   $2: genprm $out; $("$1/bin/genprm" --version)"
  else
    echo "FAIL $2: $out"; fails=$((fails + 1))
  fi
}
step() {  # step NAME COMMAND...: runs it, logging; on failure shows the log's tail
  echo "== $1" >>"$W/log"; local t0=$SECONDS
  if "${@:2}" >>"$W/log" 2>&1; then echo "     $1 ($((SECONDS - t0)) s)"; return 0; fi
  echo "FAIL $1 ($((SECONDS - t0)) s):"; tail -25 "$W/log"; fails=$((fails + 1)); return 1
}

if want 1; then
  fresh_venv "$W/v1" && step "pip install . (isolated)" "$W/v1/bin/pip" install --no-deps . && check_venv "$W/v1" "pip install ."
fi
if want 2; then
  fresh_venv "$W/v2" && step "pip wheel ." "$W/v2/bin/pip" wheel --no-deps -w "$W/dist" . &&
    fresh_venv "$W/v2b" && step "install the wheel elsewhere" "$W/v2b/bin/pip" install "$W"/dist/genprm-*.whl &&
    check_venv "$W/v2b" "pip wheel . + install"
fi
if want 3; then
  fresh_venv "$W/v3" &&
    step "sdist" "$PY" -c "import sys; sys.path.insert(0, 'pep517'); import genprm_build_backend as b; print(b.build_sdist('$W/sdist'))" &&
    step "wheel from the sdist" "$W/v3/bin/pip" wheel --no-deps -w "$W/sdist-wheel" "$W"/sdist/genprm-*.tar.gz &&
    step "install it" "$W/v3/bin/pip" install --no-deps "$W"/sdist-wheel/genprm-*.whl && check_venv "$W/v3" "sdist -> wheel"
fi
if want 4; then
  fresh_venv "$W/v4" && step "pip install --no-build-isolation ." "$W/v4/bin/pip" install --no-deps --no-build-isolation . &&
    check_venv "$W/v4" "pip install --no-build-isolation ."
fi
echo "packaging routes failed: $fails (log: $W/log)"
[ "$fails" -eq 0 ]
