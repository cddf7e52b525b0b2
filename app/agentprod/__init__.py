"""agentprod: asynchronous AI-agent tasks on RocketMQ 5 and Redis.

The data plane lives here: settings, task models, the Redis store, brokers (RocketMQ and the
embedded in-memory one), the HTTP API, the worker, agents and the command line.
"""

__version__ = "0.1.0"
