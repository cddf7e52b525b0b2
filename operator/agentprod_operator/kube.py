"""The Kubernetes API calls of the operator (kubernetes_asyncio), and nothing else.

Deployments are updated only when their desired template changes: the hash of what the
operator wants is kept in an annotation, so periodic reconciles cause no writes at all.
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
        if annotations.get(HASH_ANNOTATION) == wanted_hash:
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
