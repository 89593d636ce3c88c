#!/usr/bin/env bash
# LiteLLM's proxy in a venv of its own, for bench/metering_proxy.py: bench/.venv-litellm
# (gitignored by `.venv-*/`). The bench runs this when that venv has no `litellm` yet.
# Does nothing when the venv already has LiteLLM; to change versions, remove the venv.
#   bench/litellm/setup.sh
#   LITELLM_SPEC='litellm[proxy]==1.x.y' bench/litellm/setup.sh   # another version
set -euo pipefail
venv="$(cd "$(dirname "$0")/.." && pwd)/.venv-litellm"
spec="${LITELLM_SPEC:-litellm[proxy]==1.106.2}"
python="${PYTHON:-python3}"

version() { "$venv/bin/python" -m pip show litellm 2>/dev/null | sed -n 's/^Version: //p'; }

if [ -x "$venv/bin/litellm" ] && "$venv/bin/python" -c "import litellm.proxy.proxy_server" 2>/dev/null; then
    echo "LiteLLM $(version) already in $venv"
    exit 0
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "$spec"
echo "LiteLLM $(version) installed in $venv"
