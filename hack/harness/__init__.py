"""Local-services harness: real RocketMQ 5, Redis, the Kubernetes control plane and node, and
the model server, for development, tests and benchmarks.

``python -m harness --help`` (``PYTHONPATH=hack``; the Makefile sets it) lists the commands
(services, cluster, deps, llm). Tests import :class:`harness.rocketmq.RocketMQ`,
:class:`harness.redis.RedisServer` and friends to run private instances on other ports. It uses
the project's own RocketMQ admin library (``agentprod_operator.rocketmq``) and ``cryptography``
for the control plane's certificates.
"""
