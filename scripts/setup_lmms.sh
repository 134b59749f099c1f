#!/usr/bin/env bash
# A separate environment for the lmms-eval bridge (`lmms-eval --model mio_eval`, mio_eval/lmms_model.py).
#
# Why separate: lmms-eval 0.7.3 requires latex2sympy2, which pins antlr4-python3-runtime==4.7.2,
# while Hydra/OmegaConf need antlr4 4.9.*; it also pins av<16. No single resolve holds both, so
# `pip install mio-eval lmms-eval` in one environment reports a conflict. This venv sees the base
# install (torch, transformers, mio-eval's dependencies: run scripts/setup.sh first) through
# --system-site-packages, adds lmms-eval 0.7.3 (torch / torchvision held to constraints.txt), then
# puts antlr4 4.9.3 back for Hydra (latex2sympy2, used only by lmms-eval's math scorers, parses
# under 4.9.3 too) and installs this checkout without dependencies, which registers the
# `lmms_eval.models` entry point `mio_eval`.
#
# pip prints the latex2sympy2 / antlr4 conflict it leaves on purpose ("ERROR: pip's dependency
# resolver ..."); the script fails only if a step fails or the entry point is missing.
#
# usage: bash scripts/setup_lmms.sh [VENV]   (default .venv-lmms; then VENV/bin/lmms-eval --model mio_eval ...)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv-lmms}
[ -x "$venv/bin/python" ] || python3 -m venv --system-site-packages "$venv"
pip_install() { "$venv/bin/python" -m pip install -q --root-user-action=ignore --disable-pip-version-check "$@"; }
# lmms-eval 0.7.3's evaluator imports filelock._api, which filelock 4 removed.
pip_install -c constraints.txt "lmms-eval==0.7.3" "filelock>=3.16,<4"
pip_install "antlr4-python3-runtime==4.9.3"
pip_install --no-deps --no-build-isolation -e .
"$venv/bin/python" -c "import hydra, lmms_eval, mio_eval.lmms_model; from importlib.metadata import entry_points; \
assert any(e.name == 'mio_eval' for e in entry_points(group='lmms_eval.models')), 'entry point missing'"
echo "lmms-eval bridge environment: $venv (run: $venv/bin/python -m pytest -q tests/test_lmms_bridge.py)"
