# syntax=docker/dockerfile:1
#
# failover-gateway image: a virtualenv built from the hash-pinned lock, copied into a clean
# slim runtime that runs as an unprivileged user.
#
# The base is pinned by tag only. Production builds should pin the digest as well, e.g.
#   --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest>
# so that a rebuild cannot silently pick up a different OS layer.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv

# Dependencies first, so editing the code does not invalidate this layer. Every wheel is
# checked against the sha256 in the lock; anything not in the lock is refused.
COPY requirements-runtime.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements-runtime.lock

COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir --no-deps .


FROM ${PYTHON_IMAGE}

# LITELLM_LOCAL_MODEL_COST_MAP: litellm would otherwise fetch its price map from the
# internet at import time; the copy bundled in the wheel is used instead.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    PATH=/opt/venv/bin:$PATH

# A fixed numeric uid/gid so Kubernetes can check runAsNonRoot without resolving names.
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin gateway

# Only the finished virtualenv crosses over: no pip cache, no sources, no build tools.
COPY --from=build /opt/venv /opt/venv

USER 10001:10001
# A writable scratch directory (an emptyDir under Kubernetes, where the root is read-only).
WORKDIR /tmp

# 8080: OpenAI-compatible API, /healthz, /readyz, /metrics. 8081: admin API (bearer token).
EXPOSE 8080 8081

# slim has no curl; urlopen raises (exit 1) on a refused connection or a non-2xx answer.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]

ENTRYPOINT ["gateway"]
CMD ["serve", "--config", "/etc/gateway/providers.yaml", "--host", "0.0.0.0"]
