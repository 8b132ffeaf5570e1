# Connaisseur for Python: the webhook image the Helm chart (helm/) deploys.
#   docker build -t connaisseur-py:0.1.0 .
#   docker build --build-arg BASE_IMAGE=<a Debian image> --network host -t connaisseur-py:0.1.0 .
# BASE_IMAGE is any Debian-based image: the official Python slim image (the default) or a bare
# Debian, whose own Python 3.11 is then installed. The build stage installs the package into a
# virtual environment; scripts/image_rootfs.py gathers the interpreter, that environment and the
# libraries they load, and the final stage holds only that tree: no shell, no package manager, no
# pip, no compiler (docs/decisions/0030-product-image-without-a-shell.md).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
# binutils: `strip` for the wheels' extension modules; Debian's Python when the base has none
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends binutils \
      $(command -v python3 >/dev/null || echo python3 python3-venv ca-certificates) \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
RUN python3 -m venv /opt/connaisseur
# .pip-ca.pem: the CA bundle pip needs when the package index is reached through a TLS proxy
# (scripts build it into the context; it matches nothing in a plain checkout). Used in this
# stage only, never in the final image.
COPY pyproject.toml .pip-ca.pe[m] ./
# The dependencies first, in a layer of their own: a change to the sources does not refetch them.
RUN if [ -f .pip-ca.pem ]; then export PIP_CERT="$PWD/.pip-ca.pem"; fi \
 && /opt/connaisseur/bin/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' >/tmp/requirements.txt \
 && /opt/connaisseur/bin/pip install -q -r /tmp/requirements.txt
COPY README.md ./
COPY domain/ domain/
COPY application/ application/
COPY adapters/ adapters/
COPY config/ config/
COPY entrypoints/ entrypoints/
# src/connaisseur links the layer folders into the one installed package, connaisseur.<layer>.
COPY src/ src/
RUN if [ -f .pip-ca.pem ]; then export PIP_CERT="$PWD/.pip-ca.pem"; fi \
 && /opt/connaisseur/bin/pip install -q --no-deps . \
 && /opt/connaisseur/bin/pip uninstall -q --yes pip setuptools wheel \
 && find /opt/connaisseur -name '__pycache__' -type d -prune -exec rm -rf {} +
COPY scripts/image_rootfs.py /tmp/
RUN python3 /tmp/image_rootfs.py /rootfs /opt/connaisseur 10001 20001

FROM scratch
COPY --from=build /rootfs /
# Read-only root filesystem: no bytecode files; caches (e.g. Sigstore's trust root) go to /tmp,
# which the chart mounts as an emptyDir.
ENV PATH=/opt/connaisseur/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_DATA_HOME=/tmp/.local/share \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 10001:20001
EXPOSE 5000
ENTRYPOINT ["/opt/connaisseur/bin/connaisseur"]
CMD ["serve", "--config", "/app/config/config.yaml", "--secrets-dir", "/app/secrets", \
     "--tls-cert", "/app/certs/tls.crt", "--tls-key", "/app/certs/tls.key"]
