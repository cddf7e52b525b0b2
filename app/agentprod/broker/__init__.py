"""Message brokers behind one small interface: RocketMQ 5 (gRPC proxy) and an in-memory one.

`base` holds the protocols and the message types; `rocketmq` adapts the official Python client;
`memory` is the embedded broker of `agentprod dev`, with the same at-least-once semantics.
"""

from agentprod.broker import client_logs

# Before any submodule imports the RocketMQ client, which writes under ~/logs at import time.
client_logs.prepare()
