# syntax=docker/dockerfile:1
# Connaisseur for Python: the webhook image the Helm chart (helm/) deploys.
#   docker build -t <registry>/connaisseur-py:0.1.0 .
# Stage 1 builds a virtual environment with pip; stage 2 copies only that environment onto a
# fresh slim Python, without pip, compilers or package caches, and runs as a non-root user.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/connaisseur
COPY pyproject.toml README.md ./
COPY domain/ domain/
COPY application/ application/
COPY adapters/ adapters/
COPY config/ config/
COPY entrypoints/ entrypoints/
# src/connaisseur links the layer folders into the one installed package, connaisseur.<layer>.
COPY src/ src/
RUN /opt/connaisseur/bin/pip install . \
 && /opt/connaisseur/bin/pip uninstall --yes pip setuptools wheel \
 && find /opt/connaisseur -name '__pycache__' -type d -prune -exec rm -rf {} +

FROM python:3.11-slim
# No installer in the runtime image: drop the base image's pip and setuptools too.
RUN python -m pip uninstall --yes pip setuptools wheel >/dev/null 2>&1 || true \
 && groupadd --gid 20001 connaisseur \
 && useradd --uid 10001 --gid 20001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin connaisseur
COPY --from=build /opt/connaisseur /opt/connaisseur
# Read-only root filesystem: no bytecode files; caches (e.g. Sigstore's trust root) go to /tmp,
# which the chart mounts as an emptyDir.
ENV PATH=/opt/connaisseur/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_DATA_HOME=/tmp/.local/share
USER 10001:20001
EXPOSE 5000
ENTRYPOINT ["connaisseur"]
CMD ["serve", "--config", "/app/config/config.yaml", "--secrets-dir", "/app/secrets", \
     "--tls-cert", "/app/certs/tls.crt", "--tls-key", "/app/certs/tls.key"]
