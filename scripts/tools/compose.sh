#!/usr/bin/env bash
# Installs a real compose implementation, pinned, under .cache/tools/ (idempotent): the Python
# docker-compose, which validates a file against the Compose JSON schema without a Docker engine
# (podman-compose needs podman even for `config`). tests/ops/test_compose.py runs its `config -q`.
set -euo pipefail
cd "$(dirname "$0")/../.."
uv=${UV:-uv}
tools=.cache/tools

install() {  # install NAME REQUIREMENT [uv pip options...]
  local name=$1 requirement=$2
  shift 2
  local venv=$tools/$name stamp=$tools/$name/.installed
  if [[ -f $stamp && $(cat "$stamp") == "$requirement" ]]; then
    return
  fi
  rm -rf "$venv"
  "$uv" venv --quiet --python python3 "$venv"
  "$uv" pip install --quiet --python "$venv/bin/python" "$@" "$requirement"
  echo "$requirement" >"$stamp"
}

# docker-compose 1.29.2 pins PyYAML<6, whose sdist only builds with Cython 2.
install docker-compose "docker-compose==1.29.2" --build-constraints scripts/tools/compose-build-constraints.txt
