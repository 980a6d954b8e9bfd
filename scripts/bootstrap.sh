#!/usr/bin/env bash
# Set-up from nothing but Python 3.11, then run the demo or the tests.
#   bash scripts/bootstrap.sh demo   # venv + install + offline demo
#   bash scripts/bootstrap.sh test   # venv + install (with test extras) + pytest
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-}"
case "$target" in demo|test) ;; *) echo "usage: bash scripts/bootstrap.sh demo|test" >&2; exit 2 ;; esac

python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
  done
fi
[ -n "$python" ] || { echo "error: Python 3.11 not found; install it and run again" >&2; exit 2; }

venv="${GEOLOCATE_VENV:-.venv}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
extras="."
[ "$target" = test ] && extras=".[test]"
# Say what the long quiet step is: the first install downloads torch, which on Linux defaults to
# the CUDA build (several GB of NVIDIA libraries, minutes on a fast line).
if "$venv/bin/python" -c "import geolocate, torch" >/dev/null 2>&1; then
  echo "checking $venv is up to date (a few seconds)..." >&2
else
  echo "installing geolocate, torch, timm and friends into $venv with pip (first time: ~5 min and ~6 GB" >&2
  echo "  with the CUDA build of torch; a CPU-only machine can pre-install the ~5x smaller CPU build," >&2
  echo "  see README.md 'CPU-only machines'); pip is quiet unless something fails..." >&2
fi
# Quiet, but keep pip's errors. torch/torchvision ranges admit the wheels on local disk.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$extras" 2> >(grep -v "is ignored: it is neither" >&2)

# A torch/torchvision pair that does not match imports fine, then crashes at `train`: run one op now.
"$venv/bin/python" -m geolocate.models.compat "$venv/bin/pip" || exit 1
# The browser test of `geolocate serve` drives Debian's chromium (Playwright's own browser download
# needs the internet): install it for the tests when it is missing and this shell can.
if [ "$target" = test ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium with apt-get for the browser test of geolocate serve..." >&2
    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } ||
      echo "note: apt-get could not install chromium; the browser test of geolocate serve will be skipped" >&2
  else
    echo "note: no chromium and no root apt-get to install it; the browser test of geolocate serve will be skipped" >&2
  fi
fi
echo "installed; starting the $target" >&2
if [ "$target" = demo ]; then
  exec "$venv/bin/geolocate" demo --workdir demo-run
else
  exec "$venv/bin/python" -m pytest -n 2 --durations=15 "${@:2}"
fi
