"""The unit suite of the data plane runs the test agents (echo, sleep), as an operator would
enable them for tests: AGENTPROD_TEST_AGENTS=true unless a test sets it otherwise."""

import os

os.environ.setdefault("AGENTPROD_TEST_AGENTS", "true")
