"""Admin operations on a RocketMQ 5 cluster over the remoting protocol.

The operator's only door to RocketMQ administration: topics, consumer groups, routes and
consume lag. Reads go to the first name server that answers; writes go to every master broker
of the named cluster (brokers register their topics with the name servers themselves).
Results are the frozen dataclasses of :mod:`agentprod_operator.rocketmq_models`; failures are
:class:`remoting.RemotingError` / :class:`remoting.RemotingUnavailable`, naming the address
and the request.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Collection, Mapping
from types import TracebackType
from typing import TypeVar

from agentprod_operator.rocketmq import bodies, models, remoting

__all__ = ["RocketMQAdmin"]

_T = TypeVar("_T")
_C = TypeVar("_C", models.TopicConfig, models.GroupConfig)
_Req = remoting.RequestCode
_Code = remoting.ResponseCode

# GET_CONSUME_STATS answers meaning "this group has no offsets here" (from older brokers; 5.3.3
# answers SUCCESS with consumerOffset 0 instead): its queues then count from offset 0.
_NO_OFFSETS = (
    _Code.QUERY_NOT_FOUND,
    _Code.SUBSCRIPTION_NOT_EXIST,
    _Code.SUBSCRIPTION_GROUP_NOT_EXIST,
    _Code.CONSUMER_NOT_ONLINE,
    _Code.TOPIC_NOT_EXIST,
)


async def _each(calls: Collection[Awaitable[_T]]) -> list[_T]:
    """Run ``calls`` concurrently; once all have finished, raise the first failure if any."""
    done: list[_T] = []
    for result in await asyncio.gather(*calls, return_exceptions=True):
        if isinstance(result, BaseException):
            raise result
        done.append(result)
    return done


class RocketMQAdmin:
    """Async admin client; ``name_servers`` is ``"host:port;host:port"`` (spaces allowed).

    With ``access_key`` every request carries an ACL signature. ``timeout`` is per request, in
    seconds. Use as ``async with RocketMQAdmin(...) as admin:`` or call :meth:`close`.
    """

    def __init__(
        self, *, name_servers: str, access_key: str = "", secret_key: str = "", timeout: float = 5.0
    ) -> None:
        self.name_servers = tuple(a.strip() for a in name_servers.split(";") if a.strip())
        if not self.name_servers:
            raise ValueError(f"no name server address in {name_servers!r}")
        self._client = remoting.RemotingClient(
            access_key=access_key, secret_key=secret_key, timeout=timeout
        )
        self._preferred = 0  # index of the name server that answered last

    async def __aenter__(self) -> RocketMQAdmin:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every connection."""
        await self._client.close()

    # ---- plumbing

    async def _call(
        self,
        addr: str,
        code: remoting.RequestCode,
        fields: Mapping[str, str] | None = None,
        *,
        body: bytes = b"",
        accept: Collection[int] = (_Code.SUCCESS,),
    ) -> remoting.Command:
        return await self._client.invoke(
            addr=addr, code=code, ext_fields=fields, body=body, accept=accept
        )

    async def _namesrv(
        self,
        code: remoting.RequestCode,
        fields: Mapping[str, str] | None = None,
        *,
        accept: Collection[int] = (_Code.SUCCESS,),
    ) -> tuple[str, remoting.Command]:
        """Ask the name servers in turn, starting with the last one that answered."""
        failures: list[remoting.RemotingUnavailable] = []
        count = len(self.name_servers)
        for step in range(count):
            index = (self._preferred + step) % count
            try:
                reply = await self._call(self.name_servers[index], code, fields, accept=accept)
            except remoting.RemotingUnavailable as exc:
                failures.append(exc)
                continue
            self._preferred = index
            return self.name_servers[index], reply
        if len(failures) == 1:
            raise failures[0]
        raise remoting.RemotingUnavailable(
            addr=";".join(self.name_servers),
            request=failures[0].request,
            remark="; ".join(f"{f.addr}: {f.remark}" for f in failures),
        )

    @staticmethod
    def _parse(reply: remoting.Command, addr: str, code: _Req, parse: Callable[[], _T]) -> _T:
        """Run ``parse``; a malformed body becomes a RemotingError naming address and request."""
        try:
            return parse()
        except ValueError as exc:
            raise remoting.RemotingError(
                addr=addr, request=code.name, code=reply.code, remark=f"unexpected body: {exc}"
            ) from exc

    async def _first_found(
        self,
        *,
        masters: tuple[str, ...],
        names: Mapping[str | None, str],
        code: _Req,
        parse: Callable[[bytes], _C | None],
    ) -> _C | None:
        """Ask every master; the first (by broker name) that has the config gives it, with
        ``broker_names`` listing every master that has it."""

        async def fetch(addr: str) -> _C | None:
            reply = await self._call(addr, code)
            return self._parse(reply, addr, code, lambda: parse(reply.body))

        configs = await _each([fetch(addr) for addr in masters])
        found = [(names[a], c) for a, c in zip(masters, configs, strict=True) if c is not None]
        if not found:
            return None
        return dataclasses.replace(found[0][1], broker_names=tuple(n for n, _ in found))

    async def _masters(self, cluster: str) -> tuple[str, ...]:
        info = await self.cluster_info()
        masters = info.master_addrs(cluster)
        if not masters:
            known = ", ".join(sorted(info.clusters)) or "none"
            raise remoting.RemotingUnavailable(
                addr=";".join(self.name_servers),
                request=_Req.GET_BROKER_CLUSTER_INFO.name,
                remark=f"cluster {cluster!r} has no master broker (clusters: {known})",
            )
        return masters

    # ---- clusters and routes

    async def cluster_info(self) -> models.ClusterInfo:
        """Clusters, their brokers and the brokers' addresses (GET_BROKER_CLUSTER_INFO)."""
        code = _Req.GET_BROKER_CLUSTER_INFO
        addr, reply = await self._namesrv(code)
        return self._parse(reply, addr, code, lambda: bodies.parse_cluster_info(reply.body))

    async def topic_route(self, topic: str) -> models.TopicRoute | None:
        """The topic's queues and brokers, or None if the name servers do not know it."""
        code = _Req.GET_ROUTEINFO_BY_TOPIC
        fields = {"topic": topic, "acceptStandardJsonOnly": "true"}
        accept = (_Code.SUCCESS, _Code.TOPIC_NOT_EXIST)
        addr, reply = await self._namesrv(code, fields, accept=accept)
        if reply.code == _Code.TOPIC_NOT_EXIST:
            return None
        return self._parse(
            reply, addr, code, lambda: bodies.parse_topic_route(topic=topic, body=reply.body)
        )

    async def _route_or_fail(self, topic: str) -> models.TopicRoute:
        route = await self.topic_route(topic)
        if route is None:
            raise remoting.RemotingError(
                addr=";".join(self.name_servers),
                request=remoting.describe_request(
                    code=_Req.GET_ROUTEINFO_BY_TOPIC, ext_fields={"topic": topic}
                ),
                code=_Code.TOPIC_NOT_EXIST,
                remark=f"no route for topic {topic}",
            )
        return route

    # ---- topics

    async def topic_config(self, topic: str) -> models.TopicConfig | None:
        """Queues, perm and message type as the topic's masters store them; None if missing.

        The brokers come from the route; the first (by name) that has the topic gives the
        config, and ``broker_names`` lists every one that has it.
        """
        route = await self.topic_route(topic)
        if route is None:
            return None
        return await self._first_found(
            masters=route.master_addrs(),
            names={b.master_addr: b.name for b in route.brokers},
            code=_Req.GET_ALL_TOPIC_CONFIG,
            parse=lambda body: bodies.parse_topic_config(topic=topic, body=body),
        )

    async def create_or_update_topic(
        self, *, cluster: str, topic: str, queues: int, message_type: str = "NORMAL", perm: int = 6
    ) -> None:
        """Create or update ``topic`` with ``queues`` read and write queues on every master of
        ``cluster``; ``message_type`` is the ``message.type`` attribute (NORMAL, FIFO, DELAY,
        TRANSACTION). Brokers register the change with the name servers before they answer.
        """
        fields = bodies.create_topic_fields(
            topic=topic, queues=queues, message_type=message_type, perm=perm
        )
        masters = await self._masters(cluster)
        await _each([self._call(a, _Req.UPDATE_AND_CREATE_TOPIC, fields) for a in masters])

    async def delete_topic(self, *, cluster: str, topic: str) -> None:
        """Delete ``topic`` (and its pop retry topics) on every master of ``cluster``, then on
        every name server. Deleting a missing topic succeeds.
        """
        masters = await self._masters(cluster)
        fields = {"topic": topic}
        await _each([self._call(a, _Req.DELETE_TOPIC_IN_BROKER, fields) for a in masters])
        fields = {"topic": topic, "clusterName": cluster}
        code = _Req.DELETE_TOPIC_IN_NAMESRV
        await _each([self._call(a, code, fields) for a in self.name_servers])

    # ---- consumer groups

    async def create_or_update_group(
        self,
        *,
        cluster: str,
        group: str,
        max_retries: int,
        retry_policy: models.RetryPolicy | None = None,
        orderly: bool = False,
    ) -> None:
        """Create or update consumer ``group`` on every master of ``cluster``.

        ``max_retries`` is ``retryMaxTimes`` (a message goes to ``%DLQ%{group}`` after
        ``max_retries + 1`` deliveries); ``orderly=True`` is needed to consume FIFO topics.
        """
        body = bodies.group_config_body(
            group=group, max_retries=max_retries, retry_policy=retry_policy, orderly=orderly
        )
        masters = await self._masters(cluster)
        code = _Req.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP
        await _each([self._call(a, code, body=body) for a in masters])

    async def group_config(self, group: str) -> models.GroupConfig | None:
        """The group's config from the first master (by broker name) that has it, or None;
        ``broker_names`` lists every master that has it.
        """
        info = await self.cluster_info()
        return await self._first_found(
            masters=info.all_master_addrs(),
            names={b.master_addr: b.name for b in info.brokers.values()},
            code=_Req.GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
            parse=lambda body: bodies.parse_group_config(group=group, body=body),
        )

    async def delete_group(self, *, cluster: str, group: str, clean_offsets: bool = True) -> None:
        """Delete ``group`` on every master of ``cluster`` (with its offsets unless
        ``clean_offsets=False``), then its ``%RETRY%`` and ``%DLQ%`` topics, as ``mqadmin
        deleteSubGroup -c`` does. Deleting a missing group succeeds.
        """
        masters = await self._masters(cluster)
        fields = {"groupName": group, "cleanOffset": "true" if clean_offsets else "false"}
        await _each([self._call(a, _Req.DELETE_SUBSCRIPTIONGROUP, fields) for a in masters])
        for topic in (f"%RETRY%{group}", f"%DLQ%{group}"):
            await self.delete_topic(cluster=cluster, topic=topic)

    # ---- offsets and lag

    async def _topic_stats(self, addr: str, topic: str) -> tuple[models.QueueRange, ...]:
        """One broker's GET_TOPIC_STATS_INFO; empty if that broker lacks the topic."""
        code = _Req.GET_TOPIC_STATS_INFO
        accept = (_Code.SUCCESS, _Code.TOPIC_NOT_EXIST)
        reply = await self._call(addr, code, {"topic": topic}, accept=accept)
        if reply.code == _Code.TOPIC_NOT_EXIST:
            return ()
        return self._parse(reply, addr, code, lambda: bodies.parse_topic_stats(reply.body))

    async def max_offsets(self, topic: str) -> models.TopicOffsets | None:
        """Min/max offset of every queue of ``topic`` (``.total`` = Σ max); None if no route."""
        route = await self.topic_route(topic)
        if route is None:
            return None
        per_broker = await _each([self._topic_stats(a, topic) for a in route.master_addrs()])
        return models.TopicOffsets(topic=topic, queues=tuple(q for qs in per_broker for q in qs))

    async def _broker_consume_stats(
        self, addr: str, group: str, topic: str
    ) -> tuple[tuple[models.QueueOffsets, ...], float, bool]:
        """One broker's offsets for ``topic`` and its retry topics, TPS, and whether the group
        had no offsets there (then the topic's queues count from 0).
        """
        code = _Req.GET_CONSUME_STATS
        topics = (topic, *bodies.pop_retry_topics(group=group, topic=topic))
        fields = {"consumerGroup": group, "topic": topic, "topicList": ";".join(topics)}
        reply = await self._call(addr, code, fields, accept=(_Code.SUCCESS, *_NO_OFFSETS))
        rows: tuple[models.QueueOffsets, ...] = ()
        tps = 0.0
        if reply.code == _Code.SUCCESS:
            rows, tps = self._parse(
                reply, addr, code, lambda: bodies.parse_consume_stats(reply.body)
            )
        if any(r.queue.topic == topic for r in rows):
            return rows, tps, False
        fallback = tuple(
            models.QueueOffsets(queue=r.queue, broker_offset=r.max_offset, consumer_offset=0)
            for r in await self._topic_stats(addr, topic)
        )
        return rows + fallback, tps, bool(fallback)

    async def consume_stats(self, *, group: str, topic: str) -> models.ConsumeStats:
        """``group``'s offsets on ``topic`` and its pop retry topic on every broker of the
        topic; ``.lag`` is what is left to deliver. Raises :class:`remoting.RemotingError`
        (TOPIC_NOT_EXIST) if the topic has no route.
        """
        route = await self._route_or_fail(topic)
        masters = route.master_addrs()
        results = await _each([self._broker_consume_stats(a, group, topic) for a in masters])
        names = {b.master_addr: b.name for b in route.brokers}
        queues = sorted((row for rows, _, _ in results for row in rows), key=lambda r: r.queue)
        return models.ConsumeStats(
            group=group,
            topic=topic,
            queues=tuple(queues),
            consume_tps=sum(tps for _, tps, _ in results),
            fallback_brokers=tuple(
                names[a] for a, (_, _, fell) in zip(masters, results, strict=True) if fell
            ),
        )
