# Dev Redis for the chart (redis.dev.enabled) on the local node: Debian's redis-server on the
# locally bootstrapped Debian base (hack/harness/images.py), run as uid 999 like the official
# image, with /data as its working directory (the chart mounts an emptyDir there).
ARG DEBIAN_BASE=debian:12.11-slim
FROM ${DEBIAN_BASE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server redis-tools \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && mkdir -p /data && chown 999:999 /data
WORKDIR /data
USER 999:999
EXPOSE 6379
ENTRYPOINT ["redis-server"]
