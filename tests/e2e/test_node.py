"""The product as deployed, on the session's real node (`node_cluster`): images built from
app/Dockerfile and operator/Dockerfile, the chart's dev Redis and RocketMQ as pods.

In order, on one release (the tests share it, as a user's cluster would):
1. `helm install` with the dev services: operator, API, Redis and RocketMQ pods Running and
   Ready (the API's readiness probe is its real /readyz: Redis and RocketMQ reachable);
2. examples/pipeline.yaml applied (kubectl): worker pods consume, tasks posted through the API
   Service (port-forward) reach `done` and the result topic; a pipeline naming an agent the
   image does not register shows Ready=False (WorkerConfigInvalid) and recovers once fixed;
3. scaling with real pods: from 0 workers a backlog starts ceil(lag/lagPerReplica) pods (at
   least) that drain it, busy pods carry their in-flight tasks as pod-deletion-cost (0 once
   idle), and the operator takes them back to 0; prints first message → first done and
   backlog → desired replicas Ready;
4. scale-in of one replica while one pod runs a task: the idle pod goes, the busy one stays
   and finishes its task on its first attempt;
5. a worker pod deleted mid-task, gracefully and with `--force --grace-period=0`, and a
   rolling update of the worker image under load: every task ends `done`, once;
6. chat workers against a model provider that serves 4 calls at once (the tests' model server
   on the node's bridge address, answering 429 beyond that): without the provider cap the lag
   scales into the limit; with it the replicas stay at what the provider serves, with far fewer
   429s; every task ends `done`, once;
7. `helm upgrade` with running pods, then the pipelines deleted and `helm uninstall`: no
   wedged finalizer, no pod left.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.cluster import (
    APP_IMAGE,
    OPERATOR_IMAGE,
    REDIS_IMAGE,
    ROCKETMQ_IMAGE,
    LocalCluster,
)
from harness.node import NODE_IP

from tests.integration.llm_fakes import FaultyModelServer

ROOT = Path(__file__).parents[2]
CHART = ROOT / "charts" / "agentprod"
EXAMPLE = ROOT / "examples" / "pipeline.yaml"
NS = "agentprod"
RELEASE = "agentprod"
PIPELINE = "price-alerts"
WORKERS = f"{PIPELINE}-worker"
WORKER_SELECTOR = f"app.kubernetes.io/name=agentprod-worker,app.kubernetes.io/instance={PIPELINE}"
ROLLED_IMAGE = "localhost/agentprod:dev-rolled"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
# Real pods, real scaling windows: minutes per test, not the suite's default 300 s.
pytestmark = pytest.mark.timeout(900)


def _repo_tag(image: str) -> tuple[str, str]:
    repository, _, tag = image.rpartition(":")
    return repository, tag


def helm_values() -> list[str]:
    plain = {
        "operator.reconcileIntervalSeconds": "5",
        "api.replicaCount": "1",
        "redis.dev.enabled": "true",
        "rocketmq.dev.enabled": "true",
        # The API accepts tasks for the sleep agent (the workers enable it through worker.env).
        "api.env[0].name": "AGENTPROD_TEST_AGENTS",
    }
    # An env value is a string: `--set ...value=true` would hand the API server a bool.
    sets = {"fullnameOverride": RELEASE, "api.env[0].value": "true"}
    for key, image in (
        ("image", APP_IMAGE),
        ("operator.image", OPERATOR_IMAGE),
        ("redis.dev.image", REDIS_IMAGE),
        ("rocketmq.dev.image", ROCKETMQ_IMAGE),
    ):
        repository, tag = _repo_tag(image)
        sets |= {
            f"{key}.repository": repository,
            f"{key}.tag": tag,
            f"{key}.pullPolicy": "Never",
        }
    return [arg for key, value in plain.items() for arg in ("--set", f"{key}={value}")] + [
        arg for key, value in sets.items() for arg in ("--set-string", f"{key}={value}")
    ]


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f}s for {what}")
        time.sleep(every)


@dataclass
class Deployed:
    """kubectl, helm and the API (through a port-forward) of the release in namespace NS."""

    cluster: LocalCluster
    api_port: int = 0
    api_key: str = ""  # made in the API pod with `agentprod keys create` (auth is on)
    figures: dict[str, float] = field(default_factory=dict)
    _forward: subprocess.Popen[str] | None = None
    _drain: threading.Thread | None = None

    def kubectl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.cluster.plane.kubectl(*args, **kw)

    def helm(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [str(self.cluster.plane.bin_dir / "helm"), *args],
            env={
                "KUBECONFIG": str(self.cluster.kubeconfig),
                "PATH": "/usr/bin:/bin",
                "HOME": str(self.cluster.plane.home),  # helm's caches: never the checkout
            },
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"helm {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    def json(self, *args: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(
            self.kubectl("get", *args, "-n", NS, "-o", "json").stdout
        )
        return found

    def pods(self, selector: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.json("pods", "-l", selector)["items"]
        return items

    def ready_pods(self, selector: str) -> list[str]:
        ready = []
        for pod in self.pods(selector):
            if pod["metadata"].get("deletionTimestamp"):
                continue
            conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
            if pod["status"].get("phase") == "Running" and conditions.get("Ready") == "True":
                ready.append(pod["metadata"]["name"])
        return ready

    def wait_available(self, deployment: str, *, timeout: float = 300) -> float:
        t0 = time.monotonic()
        self.kubectl(
            "rollout", "status", f"deployment/{deployment}", "-n", NS, f"--timeout={timeout:.0f}s",
            timeout=timeout + 10,
        )  # fmt: skip
        return time.monotonic() - t0

    # ---- the API through `kubectl port-forward svc/agentprod-api`

    def forward_api(self) -> None:
        if self._forward is not None and self._forward.poll() is None:
            return
        self.close()
        argv = [
            str(self.cluster.plane.bin_dir / "kubectl"),
            f"--kubeconfig={self.cluster.kubeconfig}",
        ]
        argv += ["port-forward", "-n", NS, f"svc/{RELEASE}-api", "--address=127.0.0.1", ":80"]
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, line
        self.api_port = int(match.group(1))
        self._forward = process
        # kubectl prints a line per connection: drained, or a full pipe (~2,400 connections)
        # blocks kubectl and with it every request through the forward
        self._drain = threading.Thread(target=process.stdout.read, daemon=True)
        self._drain.start()

    def close(self) -> None:
        if self._forward is not None:
            self._forward.terminate()
            self._forward.wait(10)
            if self._drain is not None:
                self._drain.join(10)  # kubectl is gone: its stdout ends
            if self._forward.stdout is not None:
                self._forward.stdout.close()
            self._forward = None

    def request(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        self.forward_api()
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}),
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")
        except TimeoutError:  # say what the API pod was doing
            logs = self.kubectl("logs", f"deploy/{RELEASE}-api", "-n", NS, "--tail=40", check=False)
            raise TimeoutError(
                f"{method} {path}: no answer in 30 s; API log:\n{logs.stdout}"
            ) from None

    def submit(self, count: int, *, agent: str | None = None, sleep: float = 0.0) -> list[str]:
        extra: dict[str, Any] = {"agent": agent, "metadata": {"sleep_seconds": sleep}}
        return self.submit_texts(
            [f"price drop {n}" for n in range(count)], **extra if agent else {}
        )

    def submit_texts(self, texts: list[str], **extra: Any) -> list[str]:
        ids = []
        for text in texts:
            status, answer = self.request(
                "POST", "/tasks", {"user_id": "e2e", "content": text} | extra
            )
            assert status == 202, (status, answer)
            ids.append(answer["task_id"])
        return ids

    def statuses(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        found = {}
        for task_id in ids:
            status, answer = self.request("GET", f"/tasks/{task_id}")
            assert status == 200, (status, answer)
            found[task_id] = answer
        return found

    def wait_done(self, ids: list[str], *, timeout: float) -> dict[str, dict[str, Any]]:
        pending = set(ids)
        seen: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while pending:
            for task_id, task in self.statuses(sorted(pending)).items():
                if task["status"] in ("done", "failed", "cancelled"):
                    seen[task_id] = task
                    pending.discard(task_id)
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} of {len(ids)} tasks not finished: {pending}")
            if pending:
                time.sleep(0.5)
        return seen

    def result_messages(self) -> int:
        """Messages ever written to the result topic, asked of the dev name server pod."""
        from harness.rocketmq import run_admin

        pod = self.pods("app.kubernetes.io/component=rocketmq")[0]
        offsets = run_admin(
            namesrv_addr=f"{pod['status']['podIP']}:9876",
            what="result topic offsets",
            call=lambda admin: admin.max_offsets("TopicResult"),
        )
        return offsets.total if offsets is not None else 0

    def pipeline(self) -> dict[str, Any]:
        return self.json("agentpipeline", PIPELINE)

    def worker_replicas(self) -> tuple[int, int]:
        deployment = self.json("deployment", WORKERS)
        return deployment["spec"].get("replicas", 0), deployment["status"].get("readyReplicas", 0)


@pytest.fixture(scope="module")
def deployed(node_cluster: LocalCluster) -> Iterator[Deployed]:
    deployed = Deployed(node_cluster)
    yield deployed
    deployed.close()


def example_pipeline(**scaling: int) -> dict[str, Any]:
    """examples/pipeline.yaml with the locally built worker image and a quick scaling loop."""
    body: dict[str, Any] = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
    body["metadata"]["namespace"] = NS
    body["spec"]["worker"] |= {"image": APP_IMAGE, "imagePullPolicy": "Never"}
    worker_env = body["spec"]["worker"].setdefault("env", [])
    worker_env.append({"name": "AGENTPROD_TEST_AGENTS", "value": "true"})  # the sleep tasks
    body["spec"]["scaling"] |= {
        "pollSeconds": 2,
        "cooldownSeconds": 20,
        "scaleDownStabilizationSeconds": 10,
    } | scaling
    return body


def apply_pipeline(deployed: Deployed, body: dict[str, Any]) -> None:
    """kubectl apply, then check the operator gave the worker pods their writable /tmp (the
    root filesystem is read-only and the RocketMQ client creates ~/logs at import)."""
    deployed.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(body))
    deployment = wait_for(
        lambda: (
            deployed.kubectl(
                "get", "deployment", WORKERS, "-n", NS, "-o", "json", check=False
            ).stdout
        ),
        timeout=60,
        what="the worker Deployment",
    )
    pod = json.loads(deployment)["spec"]["template"]["spec"]
    mounts = {m["mountPath"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
    assert "/tmp" in mounts, pod


def test_helm_install_runs_ready_pods(deployed: Deployed) -> None:
    t0 = time.monotonic()
    deployed.helm("install", RELEASE, str(CHART), "-n", NS, "--create-namespace", *helm_values())
    for name in ("operator", "redis", "rocketmq", "api"):
        deployed.figures[f"{name} Ready"] = deployed.wait_available(f"{RELEASE}-{name}")
    deployed.figures["install → operator, Redis, RocketMQ, API Ready"] = time.monotonic() - t0
    status, ready = deployed.request("GET", "/readyz")
    assert status == 200, ready
    assert ready["status"] == "ready", ready
    # The chart requires API keys: a key made the way an operator would, in the API pod.
    assert deployed.request("GET", f"/tasks/{uuid.uuid4()}")[0] == 401
    made = deployed.kubectl(
        "exec", "-n", NS, f"deploy/{RELEASE}-api", "--", "agentprod", "keys", "create",
        "--tenant", "e2e", "--json", "--rate", "100000/minute",
    )  # fmt: skip  # the tests poll hundreds of tasks: far above the default 600/minute
    assert made.returncode == 0, made.stderr
    deployed.api_key = json.loads(made.stdout)["key"]
    assert deployed.request("GET", f"/tasks/{uuid.uuid4()}")[0] == 404
    print(f"\nhelm install: {deployed.figures}", file=sys.stderr)


def test_example_pipeline_workers_consume(deployed: Deployed) -> None:
    # The example names its services redis, rocketmq-namesrv and rocketmq-proxy: point those
    # names at the chart's dev services, as a user with their own would have them.
    aliases = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": alias, "namespace": NS},
            "spec": {
                "type": "ExternalName",
                "externalName": f"{RELEASE}-{target}.{NS}.svc.cluster.local",
            },
        }
        for alias, target in (
            ("redis", "redis"),
            ("rocketmq-namesrv", "rocketmq"),
            ("rocketmq-proxy", "rocketmq"),
        )
    ]
    deployed.kubectl("apply", "-f", "-", input_text=yaml.safe_dump_all(aliases))
    t0 = time.monotonic()
    apply_pipeline(deployed, example_pipeline())
    wait_for(lambda: deployed.ready_pods(WORKER_SELECTOR), timeout=180, what="a worker pod Ready")
    deployed.figures["pipeline → worker Ready"] = time.monotonic() - t0
    results_before = deployed.result_messages()
    ids = deployed.submit(20)
    done = deployed.wait_done(ids, timeout=120)
    assert {task["status"] for task in done.values()} == {"done"}
    assert all(task["result"]["labels"] is not None for task in done.values())
    assert deployed.result_messages() - results_before >= len(ids)
    print(f"\npipeline: {deployed.figures}", file=sys.stderr)


def test_unregistered_agent_makes_the_pipeline_not_ready(deployed: Deployed) -> None:
    """`agent.name` not in the worker image: the worker exits 2 with its line, and the operator
    turns the crash loop into Ready=False (WorkerConfigInvalid, that line); fixed, Ready again."""
    name = "bad-agent"
    body = example_pipeline(minReplicas=1, maxReplicas=1)
    body["metadata"]["name"] = name
    body["spec"] |= {
        "topics": {"request": {"name": "TopicBadAgent"}, "result": {"name": "TopicBadAgentR"}},
        "consumerGroup": {"name": "GID_BAD_AGENT"},
        "agent": {"name": "nope"},
        "deletionPolicy": "Delete",
    }

    def ready() -> dict[str, Any]:
        found = deployed.json("agentpipeline", name).get("status") or {}
        by_type = {c["type"]: c for c in found.get("conditions") or []}
        return by_type.get("Ready") or {}

    t0 = time.monotonic()
    deployed.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(body))
    condition = wait_for(
        lambda: ready() if ready().get("reason") == "WorkerConfigInvalid" else None,
        timeout=180,
        what="Ready=False WorkerConfigInvalid",
    )
    not_ready = time.monotonic() - t0
    assert condition["status"] == "False", condition
    assert "invalid configuration: AGENT: unknown agent 'nope'" in condition["message"], condition
    assert "tagger" in condition["message"], condition  # the registered agents are listed
    selector = f"app.kubernetes.io/name=agentprod-worker,app.kubernetes.io/instance={name}"
    (status,) = [s for p in deployed.pods(selector) for s in p["status"]["containerStatuses"]]
    terminated = status["state"].get("terminated") or status["lastState"]["terminated"]
    assert terminated["exitCode"] == 2, status
    events = deployed.json("events", "--field-selector", f"involvedObject.name={name}")["items"]
    assert any(e["reason"] == "NotReady" and e["type"] == "Warning" for e in events), events
    t1 = time.monotonic()
    deployed.kubectl(
        "patch", "agentpipeline", name, "-n", NS, "--type=merge",
        "-p", json.dumps({"spec": {"agent": {"name": "tagger"}}}),
    )  # fmt: skip
    wait_for(lambda: ready().get("status") == "True", timeout=240, what="Ready=True once fixed")
    fixed = time.monotonic() - t1
    assert deployed.ready_pods(selector)
    deployed.kubectl("delete", "agentpipeline", name, "-n", NS, "--timeout=90s")
    print(
        f"\nunregistered agent: apply → Ready=False {not_ready:.1f}s; "
        f"fixed → Ready=True {fixed:.1f}s",
        file=sys.stderr,
    )


def deletion_costs(deployed: Deployed) -> dict[str, int]:
    """Each live worker pod's pod-deletion-cost (-1 when the operator set none)."""
    return {
        pod["metadata"]["name"]: int(
            (pod["metadata"].get("annotations") or {}).get(DELETION_COST, "-1")
        )
        for pod in deployed.pods(WORKER_SELECTOR)
        if not pod["metadata"].get("deletionTimestamp")
    }


def test_scale_from_zero_with_real_pods(deployed: Deployed) -> None:
    wait_for(
        lambda: deployed.worker_replicas() == (0, 0) and not deployed.pods(WORKER_SELECTOR),
        timeout=180,
        what="workers scaled to 0 (cooldown 20 s)",
    )
    t0 = time.monotonic()
    first = deployed.submit(1)
    wait_for(lambda: deployed.statuses(first)[first[0]]["status"] == "done", timeout=180,
             what="first task done from zero")  # fmt: skip
    first_done = time.monotonic() - t0
    print(f"\nscale from 0: first message → first done {first_done:.1f}s", file=sys.stderr)
    # A backlog of 250 sleep tasks at 100 per replica: 3 replicas wanted.
    t1 = time.monotonic()
    backlog = deployed.submit(250, agent="sleep", sleep=2.0)
    submitted = time.monotonic() - t1

    def desired_ready() -> int | None:
        status = deployed.pipeline().get("status") or {}
        desired = int(status.get("desiredReplicas") or 0)
        return (
            desired
            if desired >= 3 and len(deployed.ready_pods(WORKER_SELECTOR)) >= desired
            else None
        )

    # ceil(250 / lagPerReplica 100) = 3 at least (busy workers may add to it)
    desired = wait_for(desired_ready, timeout=240, what="ceil(lag/lagPerReplica) pods Ready")
    backlog_ready = time.monotonic() - t1
    print(
        f"backlog of 250 → {desired} desired replicas Ready {backlog_ready:.1f}s", file=sys.stderr
    )

    # the operator marks busy pods with their in-flight tasks (scale-in takes idle ones first)
    busy = wait_for(
        lambda: {name: cost for name, cost in deletion_costs(deployed).items() if cost > 0},
        timeout=60,
        what="a busy worker pod with a pod-deletion-cost",
    )
    assert all(cost <= 8 for cost in busy.values()), busy  # at most concurrency tasks each
    done = deployed.wait_done(backlog, timeout=300)
    drained = time.monotonic() - t1
    assert {task["status"] for task in done.values()} == {"done"}
    wait_for(
        lambda: not any(deletion_costs(deployed).values()),
        timeout=60,
        what="pod-deletion-cost 0 once idle",
    )
    wait_for(lambda: deployed.worker_replicas() == (0, 0), timeout=240, what="back to 0 workers")
    back_to_zero = time.monotonic() - t1
    print(
        f"\nscale from 0: first message → first done {first_done:.1f}s; backlog of 250 "
        f"(posted in {submitted:.1f}s) → {desired} desired replicas Ready {backlog_ready:.1f}s; "
        f"drained {drained:.1f}s; back to 0 {back_to_zero:.1f}s",
        file=sys.stderr,
    )


def _exactly_once(deployed: Deployed, done: dict[str, dict[str, Any]]) -> None:
    assert {task["status"] for task in done.values()} == {"done"}, {
        task_id: task["status"] for task_id, task in done.items() if task["status"] != "done"
    }


def test_scale_in_removes_the_idle_pod_and_keeps_the_busy_one(deployed: Deployed) -> None:
    apply_pipeline(deployed, example_pipeline(minReplicas=2, maxReplicas=2))
    wait_for(lambda: len(deployed.ready_pods(WORKER_SELECTOR)) == 2, timeout=180,
             what="2 workers Ready")  # fmt: skip
    (task_id,) = deployed.submit(1, agent="sleep", sleep=45.0)
    busy = wait_for(
        lambda: [name for name, cost in deletion_costs(deployed).items() if cost > 0],
        timeout=60,
        what="the busy pod's pod-deletion-cost",
    )
    assert len(busy) == 1, deletion_costs(deployed)
    # One replica fewer while the task runs: the ReplicaSet must take the idle pod.
    apply_pipeline(deployed, example_pipeline(minReplicas=1, maxReplicas=1))
    wait_for(lambda: len(deletion_costs(deployed)) == 1, timeout=120, what="scaled in to 1 pod")
    assert list(deletion_costs(deployed)) == busy, "scale-in removed the busy pod"
    (task,) = deployed.wait_done([task_id], timeout=120).values()
    assert (task["status"], task["attempts"]) == ("done", 1), task  # never handed back
    print(f"\nscale-in 2 → 1: kept the busy pod {busy[0]}; its task done on attempt 1",
          file=sys.stderr)  # fmt: skip


@pytest.mark.parametrize("force", [False, True], ids=["graceful", "force"])
def test_worker_pod_deleted_mid_task(deployed: Deployed, force: bool) -> None:
    apply_pipeline(deployed, example_pipeline(minReplicas=2))
    wait_for(lambda: len(deployed.ready_pods(WORKER_SELECTOR)) >= 2, timeout=180,
             what="2 workers Ready")  # fmt: skip
    ids = deployed.submit(40, agent="sleep", sleep=2.0)

    def running() -> bool:
        statuses = deployed.statuses(ids)
        return any(task["status"] == "running" for task in statuses.values())

    wait_for(running, timeout=60, what="tasks running")
    victim = deployed.ready_pods(WORKER_SELECTOR)[0]
    flags = ["--force", "--grace-period=0"] if force else ["--wait=false"]
    deployed.kubectl("delete", "pod", victim, "-n", NS, *flags)
    done = deployed.wait_done(ids, timeout=240)
    _exactly_once(deployed, done)
    redelivered = sum(1 for task in done.values() if task["attempts"] > 1)
    print(f"\npod {victim} deleted ({'force' if force else 'graceful'}): 40 done, "
          f"{redelivered} retried", file=sys.stderr)  # fmt: skip


def test_rolling_update_of_the_worker_image_under_load(deployed: Deployed) -> None:
    # The same image under a new name: a new pod template, as a release of the image would be.
    deployed.cluster.node.ctr("images", "tag", "--force", APP_IMAGE, ROLLED_IMAGE)
    ids = deployed.submit(60, agent="sleep", sleep=1.0)
    body = example_pipeline(minReplicas=2)
    body["spec"]["worker"]["image"] = ROLLED_IMAGE
    apply_pipeline(deployed, body)

    def rolled() -> bool:
        pods = [
            p for p in deployed.pods(WORKER_SELECTOR) if not p["metadata"].get("deletionTimestamp")
        ]
        images = {c["image"] for p in pods for c in p["spec"]["containers"]}
        return images == {ROLLED_IMAGE} and len(deployed.ready_pods(WORKER_SELECTOR)) >= 2

    wait_for(rolled, timeout=240, what="workers rolled to the new image")
    done = deployed.wait_done(ids, timeout=240)
    _exactly_once(deployed, done)


ENDED = ("done", "failed", "cancelled")
PROVIDER_CAPACITY = 4  # calls the test provider serves at once; 429 beyond


def chat_pipeline(model: FaultyModelServer, *, provider_cap: bool) -> dict[str, Any]:
    """The example pipeline running the chat agent against the test provider, 4 calls per pod
    (one pod keeps the provider busy), and up to 4 pods when the lag alone decides."""
    body = example_pipeline(minReplicas=1, maxReplicas=4, lagPerReplica=10)
    body["spec"]["scaling"]["provider"] = {"enabled": provider_cap}
    body["spec"]["agent"] = {"name": "chat", "models": {"baseURL": model.base_url, "fast": "fake"}}
    body["spec"]["consumerGroup"]["maxRetries"] = 64  # a refused call is put back, not lost
    body["spec"]["worker"]["concurrency"] = PROVIDER_CAPACITY
    body["spec"]["worker"]["env"] += [
        {"name": "OPENAI_API_KEY", "value": "test"},
        {"name": "LLM_CACHE_TTL_SECONDS", "value": "0"},
    ]
    return body


def _provider_cap(deployed: Deployed) -> int | None:
    """The replicas the pipeline's status caps at while the provider is limited, else None."""
    provider = (deployed.pipeline().get("status") or {}).get("provider") or {}
    return int(provider["cap"]) if provider.get("limited") else None


def _only_ready_workers_of(deployed: Deployed, agent: str) -> bool:
    """Every worker pod left runs `agent` (the rollout is over) and is Ready, and there is one."""
    pods = [p for p in deployed.pods(WORKER_SELECTOR) if not p["metadata"].get("deletionTimestamp")]
    agents = {
        env.get("value")
        for pod in pods
        for container in pod["spec"]["containers"]
        for env in container.get("env", [])
        if env["name"] == "AGENT"
    }
    return len(pods) == 1 and agents == {agent} and len(deployed.ready_pods(WORKER_SELECTOR)) == 1


def _rolled_to_chat(deployed: Deployed, *, cap_shown_ok: bool) -> bool:
    """One Ready chat worker, and no provider cap in the status unless `cap_shown_ok`."""
    rolled = _only_ready_workers_of(deployed, "chat")
    return rolled and (cap_shown_ok or _provider_cap(deployed) is None)


def _run_chat_backlog(
    deployed: Deployed, model: FaultyModelServer, texts: list[str]
) -> dict[str, Any]:
    """Post `texts` as chat tasks and watch until every one ends: the 429s they drew, the most
    Ready worker pods and their pod-seconds, and the lowest replicas while capped."""
    refused_before, t0 = model.refusals, time.monotonic()
    run: dict[str, Any] = {"pods": 0, "pod_seconds": 0.0, "capped_at": None}
    ids = deployed.submit_texts(texts)
    pending, sampled = set(ids), time.monotonic()
    while pending:
        assert time.monotonic() - t0 < 420, f"{len(pending)} of {len(ids)} tasks not done"
        ready = len(deployed.ready_pods(WORKER_SELECTOR))
        now = time.monotonic()
        run["pods"] = max(run["pods"], ready)
        run["pod_seconds"] += ready * (now - sampled)
        sampled = now
        cap = _provider_cap(deployed)
        if cap is not None and deployed.worker_replicas()[0] <= cap:
            run["capped_at"] = min(cap, run["capped_at"] or cap)
        statuses = deployed.statuses(sorted(pending))
        pending -= {i for i, task in statuses.items() if task["status"] in ENDED}
        time.sleep(1)
    _exactly_once(deployed, deployed.statuses(ids))
    return run | {"429s": model.refusals - refused_before, "seconds": time.monotonic() - t0}


def test_a_provider_at_its_limit_caps_real_pods(deployed: Deployed) -> None:
    model = FaultyModelServer(host=NODE_IP, capacity=PROVIDER_CAPACITY)  # pods reach the bridge
    model.start()
    marker = uuid.uuid4().hex[:8]
    runs: dict[str, dict[str, Any]] = {}
    try:
        # The cap first, from no signals: the provider starts refusing mid-run, once the lag has
        # scaled past what it serves; then the same backlog with the lag alone deciding.
        for cap in ("on", "off"):
            apply_pipeline(deployed, chat_pipeline(model, provider_cap=cap == "on"))
            # with the cap switched off, the status no longer shows the "on" run's cap
            rolled = functools.partial(_rolled_to_chat, deployed, cap_shown_ok=cap == "on")
            wait_for(rolled, timeout=240, what="the workers rolled to 1 Ready chat pod")
            # 80 tasks of 2 s model time: 40 s of the provider's 4 calls at once, at least
            texts = [f"[slow:2] {marker} {cap} {n:03d}" for n in range(80)]
            runs[cap] = _run_chat_backlog(deployed, model, texts)
            print(f"\nprovider cap {cap}: {runs[cap]}", file=sys.stderr)
    finally:
        model.stop()
    off, on = runs["off"], runs["on"]
    assert off["pods"] == 4, off  # the lag alone scales into the provider's limit
    assert off["capped_at"] is None, off
    assert on["capped_at"] is not None, on  # the replicas went down to the provider's cap
    assert on["capped_at"] < 4, on
    assert on["429s"] < off["429s"], runs
    print(
        f"\n80 chat tasks, provider serving {PROVIDER_CAPACITY} calls at once: without the cap "
        f"{off['pods']} pods, {off['pod_seconds']:.0f} pod-s, {off['429s']} 429s, "
        f"{off['seconds']:.0f}s; with it capped at {on['capped_at']}, {on['pod_seconds']:.0f} "
        f"pod-s, {on['429s']} 429s, {on['seconds']:.0f}s",
        file=sys.stderr,
    )


def test_helm_upgrade_and_uninstall_with_running_pods(deployed: Deployed) -> None:
    # The example's tagger again (the chat workers before it had a model server of their own).
    apply_pipeline(deployed, example_pipeline(minReplicas=1))
    wait_for(lambda: _only_ready_workers_of(deployed, "tagger"), timeout=240,
             what="the workers rolled to 1 Ready tagger pod")  # fmt: skip
    deployed.helm(
        "upgrade", RELEASE, str(CHART), "-n", NS, *helm_values(), "--set",
        "api.replicaCount=2",
    )  # fmt: skip
    deployed.wait_available(f"{RELEASE}-api")
    assert len(deployed.ready_pods("app.kubernetes.io/component=api")) == 2
    ids = deployed.submit(5)
    _exactly_once(deployed, deployed.wait_done(ids, timeout=120))
    deployed.close()
    # Pipelines first, while the operator still runs to finalize them; then the release.
    deployed.kubectl("delete", "agentpipeline", PIPELINE, "-n", NS, "--timeout=90s")
    deployed.helm("uninstall", RELEASE, "-n", NS, "--wait", "--timeout=120s")
    wait_for(lambda: not deployed.pods("app.kubernetes.io/part-of=agentprod"), timeout=120,
             what="no agentprod pod left")  # fmt: skip
    leftover = deployed.json("agentpipelines")["items"]
    assert leftover == []
