"""Agents: the pluggable work a task runs (`base` is the interface, `registry` finds them).

Built-ins: `tagger` (the seed's labels/score/reason tagging), `echo` and `sleep` (tests and
benchmarks). User agents register under the `agentprod.agents` entry-point group.
"""
