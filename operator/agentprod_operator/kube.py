"""The Kubernetes API calls of the operator (kubernetes_asyncio), and nothing else.

Deployments are updated only when their desired template changes or the live one drifted
from it: the hash of what the operator wants is kept in an annotation, and the live template
must still cover it (`covers`), so periodic reconciles write nothing unless someone edited the
Deployment by hand (e.g. `kubectl set image`), which they revert.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

HASH_ANNOTATION = "agentprod.io/template-hash"


async def connect(*, kubeconfig: str | None = None) -> Any:
    """An API client from `kubeconfig` (tests), $KUBECONFIG / ~/.kube/config, or the in-cluster
    service account."""
    if (
        not kubeconfig
        and os.environ.get("KUBERNETES_SERVICE_HOST")
        and not os.environ.get("KUBECONFIG")
    ):
        config.load_incluster_config()
        return client.ApiClient()
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=kubeconfig or os.environ.get("KUBECONFIG"), client_configuration=configuration
    )
    return client.ApiClient(configuration)


def template_hash(deployment: dict[str, Any]) -> str:
    wanted = {
        "labels": deployment["metadata"].get("labels", {}),
        "template": deployment["spec"]["template"],
    }
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:16]


def covers(live: Any, desired: Any) -> bool:
    """Whether `live` still holds everything `desired` sets (pure).

    The API server adds defaults to what it stores (terminationMessagePath, dnsPolicy, ...), so
    live ⊇ desired is the test, not equality: every key of a desired mapping must be in the
    live one with a covering value, lists must match item by item, scalars be equal. An edit
    such as `kubectl set image` breaks it; defaulting does not.
    """
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            key in live and covers(live[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(covers(have, want) for have, want in zip(live, desired, strict=True))
        )
    return bool(live == desired)


class Kube:
    def __init__(self, api: Any) -> None:
        self._api = api
        self._apps = client.AppsV1Api(api)
        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)

    async def close(self) -> None:
        await self._api.close()

    async def deployment(self, *, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found = await self._apps.read_namespaced_deployment(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        result: dict[str, Any] = self._api.sanitize_for_serialization(found)
        return result

    async def ensure_deployment(self, desired: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Create the Deployment, or update its template when it changed; never its replicas.

        Returns ("created" | "updated" | "unchanged", the live object).
        """
        namespace, name = desired["metadata"]["namespace"], desired["metadata"]["name"]
        wanted_hash = template_hash(desired)
        desired["metadata"].setdefault("annotations", {})[HASH_ANNOTATION] = wanted_hash
        live = await self.deployment(namespace=namespace, name=name)
        if live is None:
            created = await self._apps.create_namespaced_deployment(namespace, desired)
            return "created", self._api.sanitize_for_serialization(created)
        annotations = live["metadata"].get("annotations") or {}
        # The hash says our last write is current; `covers` that nobody edited it since.
        if annotations.get(HASH_ANNOTATION) == wanted_hash and covers(
            live["spec"]["template"], desired["spec"]["template"]
        ):
            return "unchanged", live
        live["metadata"]["labels"] = desired["metadata"]["labels"]
        live["metadata"].setdefault("annotations", {})[HASH_ANNOTATION] = wanted_hash
        live["metadata"]["ownerReferences"] = desired["metadata"].get("ownerReferences", [])
        live["spec"]["template"] = desired["spec"]["template"]
        replaced = await self._apps.replace_namespaced_deployment(name, namespace, live)
        return "updated", self._api.sanitize_for_serialization(replaced)

    async def scale_deployment(self, *, namespace: str, name: str, replicas: int) -> None:
        """Set replicas through the scale subresource (the only replicas writer)."""
        await self._apps.patch_namespaced_deployment_scale(
            name,
            namespace,
            {"spec": {"replicas": replicas}},
            _content_type="application/merge-patch+json",
        )

    async def pod_annotations(
        self, *, namespace: str, selector: dict[str, str], annotation: str
    ) -> dict[str, str | None]:
        """The live (not terminating) pods matching `selector` and their `annotation`."""
        label_selector = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
        listed = await self._core.list_namespaced_pod(namespace, label_selector=label_selector)
        out: dict[str, str | None] = {}
        for pod in listed.items:
            if pod.metadata.deletion_timestamp is not None:
                continue
            out[pod.metadata.name] = (pod.metadata.annotations or {}).get(annotation)
        return out

    async def pods(self, *, namespace: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        """The pods matching `selector`, as the API returns them (camelCase mappings)."""
        label_selector = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
        listed = await self._core.list_namespaced_pod(namespace, label_selector=label_selector)
        return [self._api.sanitize_for_serialization(pod) for pod in listed.items]

    async def annotate_pod(self, *, namespace: str, name: str, annotations: dict[str, str]) -> None:
        await self._core.patch_namespaced_pod(
            name,
            namespace,
            {"metadata": {"annotations": annotations}},
            _content_type="application/merge-patch+json",
        )

    async def patch_pipeline_status(
        self, *, namespace: str, name: str, status: dict[str, Any]
    ) -> None:
        await self._custom.patch_namespaced_custom_object_status(
            "agentprod.io",
            "v1alpha1",
            namespace,
            "agentpipelines",
            name,
            {"status": status},
            _content_type="application/merge-patch+json",
        )

    async def apply_pipeline_conditions(
        self, *, namespace: str, name: str, conditions: list[dict[str, Any]], manager: str
    ) -> None:
        """Server-side apply of the conditions `manager` owns, leaving everyone else's.

        The CRD declares `status.conditions` a map list keyed by `type`, so the reconcile
        handler and the scaling daemon each own their own entries and never overwrite the
        other's with a stale copy (a merge patch would replace the whole list).
        """
        await self._custom.patch_namespaced_custom_object_status(
            "agentprod.io",
            "v1alpha1",
            namespace,
            "agentpipelines",
            name,
            {
                "apiVersion": "agentprod.io/v1alpha1",
                "kind": "AgentPipeline",
                "metadata": {"name": name, "namespace": namespace},
                "status": {"conditions": conditions},
            },
            field_manager=manager,
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    async def secret_value(self, *, namespace: str, name: str, key: str) -> str | None:
        try:
            secret = await self._core.read_namespaced_secret(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        encoded = (secret.data or {}).get(key)
        return base64.b64decode(encoded).decode() if encoded else None
