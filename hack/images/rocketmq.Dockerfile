# Dev RocketMQ 5 for the chart (rocketmq.dev.enabled) on the local node: the Maven jars the
# harness runs (hack/rocketmq/pom.xml) on a Debian JRE, laid out like apache/rocketmq: user
# rocketmq (uid 3000), home /home/rocketmq, `sh mqnamesrv` and `sh mqbroker --enable-proxy …`
# in the working directory. Build context: lib/ (the jars) and rocketmq/ (scripts, proxy conf).
ARG DEBIAN_BASE=debian:12.11-slim
FROM ${DEBIAN_BASE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && groupadd --system --gid 3000 rocketmq \
    && useradd --system --uid 3000 --gid 3000 --home-dir /home/rocketmq --create-home \
       --shell /usr/sbin/nologin rocketmq
ENV ROCKETMQ_HOME=/home/rocketmq/rocketmq-5.3.3
COPY lib ${ROCKETMQ_HOME}/lib
COPY rocketmq/mqnamesrv rocketmq/mqbroker ${ROCKETMQ_HOME}/bin/
COPY rocketmq/rmq-proxy.json ${ROCKETMQ_HOME}/conf/rmq-proxy.json
WORKDIR ${ROCKETMQ_HOME}/bin
USER 3000:3000
EXPOSE 9876 10911 8081
CMD ["sh", "mqnamesrv"]
