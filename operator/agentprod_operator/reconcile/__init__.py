"""Reconciling an AgentPipeline: RocketMQ topics and group, the worker Deployment, status.

`plans` (what to do with topics and groups) and `workloads` (the Deployment built from the
spec) are pure; `executor.reconcile` is the one place that performs their actions.
"""
