# syntax=docker/dockerfile:1.7
# klaviyo-consumer: a slim, non-root image with a read-only root filesystem.
#   docker build -t klaviyo-consumer .
#   docker run --read-only --tmpfs /tmp -p 8080:8080 klaviyo-consumer run
# The build stage runs docker/install.sh, the same script the image test runs without Docker.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PYTHON=/usr/local/bin/python3.11
WORKDIR /src
# Dependencies first (from the lock only), so source edits reuse this layer.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    UV_PROJECT_ENVIRONMENT=/opt/klaviyo-consumer \
    uv sync --frozen --no-default-groups --no-install-project --no-progress
COPY consumer ./consumer
COPY schemas ./schemas
COPY docker/install.sh ./docker/install.sh
RUN --mount=type=cache,target=/root/.cache/uv ./docker/install.sh /opt/klaviyo-consumer

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="klaviyo-consumer" \
      org.opencontainers.image.description="Order and return change streams (Kafka, Avro) into Klaviyo events and subscriptions" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# A fixed uid/gid (10001) so Kubernetes runAsUser and file permissions line up.
RUN groupadd --system --gid 10001 klaviyo \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin klaviyo
COPY --from=build /opt/klaviyo-consumer /opt/klaviyo-consumer
# Nothing writes outside /tmp: no bytecode, HOME and the working directory are /tmp.
ENV PATH=/opt/klaviyo-consumer/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KLAVIYO_CONSUMER_HTTP__HOST=0.0.0.0 \
    KLAVIYO_CONSUMER_HTTP__PORT=8080
WORKDIR /tmp
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["klaviyo-consumer"]
CMD ["run"]
