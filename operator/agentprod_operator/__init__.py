"""agentprod's control plane: the AgentPipeline operator (kopf) and its RocketMQ admin client.

Never add an `operator/__init__.py`: `operator/` is only a folder, and a top-level package of
that name would shadow the standard library's `operator` module.
"""
