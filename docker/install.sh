#!/usr/bin/env bash
# Installs klaviyo-consumer and its locked runtime dependencies into a self-contained virtual
# environment at $1. The Dockerfile's build stage runs exactly this, and so does the image test
# (tests/integration/ops/test_image.py), which is how the recipe is exercised without a Docker engine.
#
#   docker/install.sh /opt/klaviyo-consumer        (from the repository root)
set -euo pipefail
prefix=${1:?usage: docker/install.sh PREFIX}
uv=${UV:-uv}

# Runtime dependencies only, exactly as locked; the project itself as a regular (non-editable)
# install, so the environment does not refer back to the source tree. Bytecode is compiled now:
# the image never writes it (read-only root filesystem).
UV_PROJECT_ENVIRONMENT="$prefix" "$uv" sync \
  --frozen --no-default-groups --no-editable --compile-bytecode --no-progress --quiet
# The entry point must work from anywhere, without the source tree.
(cd / && "$prefix/bin/klaviyo-consumer" --help >/dev/null)
