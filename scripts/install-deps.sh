#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: Debian packages, then .venv with PyPI packages.
# Safe to rerun: apt skips installed packages, pip skips satisfied requirements, a stamp file
# skips the whole pip step when requirements did not change.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  pybind11-dev libfmt-dev doctest-dev libeigen3-dev nlohmann-json3-dev libutf8proc-dev
  python3-dev python3-venv
  clang libclang-rt-dev util-linux
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "install-deps: apt installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

PY=/usr/bin/python3
if [ ! -x .venv/bin/python ]; then
  echo "install-deps: creating .venv with $PY"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
stamp=.venv/.genprm-requirements
if ! cat scripts/requirements.txt scripts/requirements-optional.txt | cmp -s - "$stamp"; then
  "$VPY" -m pip install -q --upgrade pip
  "$VPY" -m pip install -q -r scripts/requirements.txt
  # Optional peers and conveniences (a benchmark peer, DataFrame output, genprm.plot's matplotlib,
  # the notebook test's nbclient + ipykernel, Ray for genprm.ray): a failure is not fatal; the
  # benchmarks and tests that need them skip what is missing.
  "$VPY" -m pip install -q -r scripts/requirements-optional.txt \
    || echo "install-deps: warning: optional packages (scripts/requirements-optional.txt) not installed"
  cat scripts/requirements.txt scripts/requirements-optional.txt > "$stamp"
fi
echo "install-deps: ok ($("$VPY" -c 'import torch; print("torch", torch.__version__)'))"
