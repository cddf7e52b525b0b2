"""The web console: pipelines, tasks, agents and models, read from the real state in Redis.

Served by the API (`/console`, protected by the same API keys); the operator writes each
pipeline's snapshot there on every scaling pass (`state.write_pipeline`), so the console loses
nothing when a process restarts.
"""
