"""RocketMQ's admin (remoting) protocol in Python: a library of its own.

`remoting` frames and sends commands over TCP to the name server and brokers, `fastjson` reads
the broker's non-standard JSON, `bodies` encodes and decodes command bodies into the data of
`models`, and `admin.RocketMQAdmin` is the client the operator and the test harness use (topics,
groups, offsets, lag). It imports neither kopf nor a Kubernetes client (an import-linter
contract in pyproject.toml holds it to that).
"""
