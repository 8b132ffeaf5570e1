# The servers the integration tests and the demo run in containers, from Debian's packages on a
# Debian base made locally (tests/support/images.py): nothing is pulled from an image registry.
# Each target accepts the same command as the official image it stands in for, so the fixtures
# run either: registry:2 (`serve CONFIG`), notary:server/notary:signer (`notary-server -config
# FILE`), redis:7 (`redis-server ARGS`).
ARG BASE_IMAGE
FROM ${BASE_IMAGE} AS apt
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq

FROM apt AS registry
RUN apt-get install -y -qq --no-install-recommends docker-registry \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/docker-registry /usr/local/bin/registry
ENTRYPOINT ["registry"]
CMD ["serve", "/etc/docker/registry/config.yml"]

FROM apt AS notary
RUN apt-get install -y -qq --no-install-recommends notary \
 && rm -rf /var/lib/apt/lists/*
CMD ["notary-server", "--help"]

FROM apt AS redis
RUN apt-get install -y -qq --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/*
CMD ["redis-server"]
