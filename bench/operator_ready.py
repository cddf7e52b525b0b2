"""Time from `kubectl apply` of an AgentPipeline to `Ready=True` (median of N), on the local
control plane with the operator process and a real RocketMQ.

Each round applies examples/pipeline.yaml under a new name with new topics and group, so every
round creates two topics, a group and a Deployment.

    python -m bench.operator_ready [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from harness.kubernetes import ControlPlane, ensure_binaries

from bench.stack import real_stack

ROOT = Path(__file__).parents[1]


def ready(plane: ControlPlane, name: str) -> bool:
    done = plane.kubectl("get", "agentpipeline", name, "-o", "json", check=False)
    if done.returncode != 0:
        return False
    conditions = json.loads(done.stdout).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    example = yaml.safe_load((ROOT / "examples" / "pipeline.yaml").read_text())
    with real_stack() as stack, tempfile.TemporaryDirectory(prefix="agentprod-cp-") as tmp:
        plane = ControlPlane(home=Path(tmp), bin_dir=ensure_binaries())
        plane.start()
        plane.kubectl(
            "apply", "--server-side", "-f", str(ROOT / "crds" / "agentpipelines.agentprod.io.yaml")
        )
        plane.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/agentpipelines.agentprod.io",
        )
        env = os.environ | {"KUBECONFIG": str(plane.kubeconfig)}
        operator_bin = str(Path(sys.executable).with_name("agentprod-operator"))
        with (Path(tmp) / "operator.log").open("ab") as log:
            operator = subprocess.Popen(
                [operator_bin, "--namespace", "default"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            seconds = []
            for round_ in range(args.rounds):
                suffix = uuid.uuid4().hex[:8]
                body = json.loads(json.dumps(example))
                body["metadata"] = {"name": f"bench-{suffix}"}
                spec = body["spec"]
                spec["rocketmq"] |= {
                    "nameServer": stack.mq.namesrv_addr,
                    "endpoint": stack.mq.endpoint,
                }
                spec["topics"]["request"]["name"] = f"Req_{suffix}"
                spec["topics"]["result"]["name"] = f"Res_{suffix}"
                spec["consumerGroup"]["name"] = f"GID_{suffix}"
                started = time.perf_counter()
                plane.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(body))
                while not ready(plane, body["metadata"]["name"]):
                    if time.perf_counter() - started > 120:
                        raise TimeoutError(f"round {round_}: not Ready after 120 s")
                    time.sleep(0.05)
                seconds.append(time.perf_counter() - started)
                print(f"round {round_ + 1}: {seconds[-1]:.2f} s", flush=True)
            print(
                f"apply -> Ready=True: median {statistics.median(seconds):.2f} s, "
                f"min {min(seconds):.2f} s, max {max(seconds):.2f} s "
                f"over {len(seconds)} rounds"
            )
        finally:
            operator.terminate()
            operator.wait(30)
            plane.stop()


if __name__ == "__main__":
    main()
