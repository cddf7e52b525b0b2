"""Local-services harness: runs RocketMQ 5 (namesrv + local-mode proxy) and Redis for dev and tests.

Stdlib only. ``python -m harness up|down|status|jars`` (with ``PYTHONPATH=hack``) drives the
developer services; tests import :class:`harness.rocketmq.RocketMQ` and
:class:`harness.redis.RedisServer` to run private instances on other ports.
"""
