"""The autoscaler: how many workers a pipeline runs.

`models` holds the data (policy, samples, history, decision, reasons), `rules.decide` is the pure
decision, `sampling` reads lag, in-flight work and dead letters, `daemon` is the per-pipeline
loop that the kopf daemon runs (read → decide → scale → report) and `metrics` its Prometheus
series. Only `sampling` and `daemon` do I/O.
"""
