#!/usr/bin/env bash
# Set up mio-eval on a fresh Debian machine (Python 3.11, CPU): system packages, then the
# package with its dependencies. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
command -v flite >/dev/null || need_apt+=(flite)
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
command -v sox >/dev/null || need_apt+=(sox)
command -v java >/dev/null || need_apt+=(default-jre-headless)   # pycocoevalcap's PTB tokenizer
# Headless Chromium + its WebDriver: the browser test of `mio-eval view` (tests/test_view.py).
{ command -v chromium >/dev/null || command -v chromium-browser >/dev/null; } || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
ldconfig -p | grep -q 'libGL.so.1' || need_apt+=(libgl1)   # opencv-python (scenedetect's detectors)
ldconfig -p | grep -q 'libglib-2.0.so.0' || need_apt+=(libglib2.0-0)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

pip_install() { python3 -m pip install -q --root-user-action=ignore --disable-pip-version-check "$@"; }
pip_install --upgrade pip "setuptools>=77" wheel
pip_install -c constraints.txt torch
pip_install -c constraints.txt -e ".[dev]"
# MIO's speech codec: its PyPI metadata asks for torchaudio, which does not import beside these
# torch builds and is not used by the model code, hence --no-deps (its einops comes with [mio]).
pip_install --no-deps "speechtokenizer==0.1.2"
command -v pyenv >/dev/null && pyenv rehash || true   # expose the new console scripts
mio-eval --help >/dev/null
echo "mio-eval is installed: $(command -v mio-eval)"
