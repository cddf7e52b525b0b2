"""The model layer the `chat` and `planner` agents stand on.

`config` (environment: base URL, key, tiers, prices, limits), `routing` (pure: which tier for a
request, and why), `client` (the openai SDK, errors classified for the worker), `caching`
(response cache in Redis: key derivation is pure, storage TTL + LRU-bounded), `costs` (pure
price arithmetic), `limits` (per-model requests/tokens per minute shared in Redis), `ledger`
(calls, tokens, cost per model for `GET /stats`), `signals` (ok / throttled / limited calls per
consumer group, for the operator's scaler), `tools` (calculate, calendar, search,
weather), `plans` (the planner's schema, parsing and repair), `calling` (one call: cache →
limits → model → ledger). Nothing here imports redis: the Redis client is passed in.
"""
