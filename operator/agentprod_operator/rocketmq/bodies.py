"""Pure translation between admin requests/replies and :mod:`agentprod_operator.rocketmq_models`.

Builders for request extFields and bodies, and ``parse_*`` functions that read reply bodies
with :mod:`agentprod_operator.fastjson` (fastjson may write non-string map keys) and check
their shape, raising :class:`UnexpectedBody`. Used by :mod:`agentprod_operator.rocketmq_admin`.
"""

from __future__ import annotations

import json

from agentprod_operator.rocketmq import fastjson, models
from agentprod_operator.rocketmq.fastjson import JsonValue

MESSAGE_TYPES = frozenset({"UNSPECIFIED", "NORMAL", "FIFO", "DELAY", "TRANSACTION", "MIXED"})


class UnexpectedBody(ValueError):
    """A reply body does not have the shape the protocol documents."""


def pop_retry_topics(*, group: str, topic: str) -> tuple[str, str]:
    """The pop retry topic names (V1 ``_``, the default, and V2 ``+``; ``KeyBuilder``)."""
    return f"%RETRY%{group}_{topic}", f"%RETRY%{group}+{topic}"


def create_topic_fields(*, topic: str, queues: int, message_type: str, perm: int) -> dict[str, str]:
    """extFields of UPDATE_AND_CREATE_TOPIC (CreateTopicRequestHeader)."""
    if message_type not in MESSAGE_TYPES:
        raise ValueError(f"message type {message_type!r} is not one of {sorted(MESSAGE_TYPES)}")
    if queues < 1:
        raise ValueError(f"a topic needs at least one queue, not {queues}")
    return {
        "topic": topic,
        "defaultTopic": "TBW102",
        "readQueueNums": str(queues),
        "writeQueueNums": str(queues),
        "perm": str(perm),
        "topicFilterType": "SINGLE_TAG",
        "topicSysFlag": "0",
        "order": "false",
        "attributes": f"+message.type={message_type}",
    }


def group_config_body(
    *, group: str, max_retries: int, retry_policy: models.RetryPolicy | None, orderly: bool
) -> bytes:
    """Body of UPDATE_AND_CREATE_SUBSCRIPTIONGROUP: SubscriptionGroupConfig as JSON."""
    config: dict[str, object] = {
        "groupName": group,
        "consumeEnable": True,
        "consumeFromMinEnable": True,
        "consumeBroadcastEnable": True,
        "consumeMessageOrderly": orderly,
        "retryQueueNums": 1,
        "retryMaxTimes": max_retries,
        "brokerId": models.MASTER_ID,
        "whichBrokerWhenConsumeSlowly": 1,
        "notifyConsumerIdsChangedEnable": True,
        "groupSysFlag": 0,
        "consumeTimeoutMinute": 15,
        "attributes": {},  # 5.3.3 defines no group attributes; any key is rejected
    }
    if isinstance(retry_policy, models.ExponentialRetry):
        config["groupRetryPolicy"] = {
            "type": "EXPONENTIAL",
            "exponentialRetryPolicy": {
                "initial": retry_policy.initial_ms,
                "max": retry_policy.max_ms,
                "multiplier": retry_policy.multiplier,
            },
        }
    elif isinstance(retry_policy, models.CustomizedRetry):
        config["groupRetryPolicy"] = {
            "type": "CUSTOMIZED",
            "customizedRetryPolicy": {"next": list(retry_policy.next_ms)},
        }
    return json.dumps(config, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- replies


def _obj(value: JsonValue, what: str) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        raise UnexpectedBody(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _list(value: JsonValue, what: str) -> list[JsonValue]:
    if not isinstance(value, list) or isinstance(value, fastjson.Pairs):
        raise UnexpectedBody(f"{what}: expected an array, got {type(value).__name__}")
    return value


def _int(value: JsonValue, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UnexpectedBody(f"{what}: expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise UnexpectedBody(f"{what}: expected an integer, got {value!r}") from None


def _str(value: JsonValue, what: str) -> str:
    if not isinstance(value, str):
        raise UnexpectedBody(f"{what}: expected a string, got {value!r}")
    return value


def _entries(value: JsonValue, what: str) -> list[tuple[JsonValue, JsonValue]]:
    """The entries of a map that may have object keys (a dict or :class:`fastjson.Pairs`)."""
    if isinstance(value, fastjson.Pairs):
        return list(value)
    return list(_obj(value, what).items())


def _broker_data(value: JsonValue) -> models.BrokerData:
    data = _obj(value, "brokerData")
    addrs = _obj(data.get("brokerAddrs", {}), "brokerAddrs")
    return models.BrokerData(
        cluster=_str(data.get("cluster", ""), "cluster"),
        name=_str(data.get("brokerName"), "brokerName"),
        addrs={_int(k, "broker id"): _str(v, "broker address") for k, v in addrs.items()},
    )


def parse_cluster_info(body: bytes) -> models.ClusterInfo:
    doc = _obj(fastjson.loads(body), "cluster info")
    brokers = _obj(doc.get("brokerAddrTable", {}), "brokerAddrTable")
    clusters = _obj(doc.get("clusterAddrTable", {}), "clusterAddrTable")
    return models.ClusterInfo(
        clusters={
            name: tuple(sorted(_str(b, "broker name") for b in _list(names, name)))
            for name, names in clusters.items()
        },
        brokers={name: _broker_data(data) for name, data in brokers.items()},
    )


def parse_topic_route(*, topic: str, body: bytes) -> models.TopicRoute:
    doc = _obj(fastjson.loads(body), "topic route")
    queues = []
    for item in _list(doc.get("queueDatas", []), "queueDatas"):
        queue = _obj(item, "queueData")
        queues.append(
            models.QueueData(
                broker_name=_str(queue.get("brokerName"), "brokerName"),
                read_queues=_int(queue.get("readQueueNums", 0), "readQueueNums"),
                write_queues=_int(queue.get("writeQueueNums", 0), "writeQueueNums"),
                perm=_int(queue.get("perm", 0), "perm"),
                topic_sys_flag=_int(queue.get("topicSysFlag", 0), "topicSysFlag"),
            )
        )
    brokers = [_broker_data(b) for b in _list(doc.get("brokerDatas", []), "brokerDatas")]
    return models.TopicRoute(
        topic=topic,
        queues=tuple(sorted(queues, key=lambda q: q.broker_name)),
        brokers=tuple(sorted(brokers, key=lambda b: b.name)),
    )


def parse_topic_config(*, topic: str, body: bytes) -> models.TopicConfig | None:
    """``topic``'s entry in a GET_ALL_TOPIC_CONFIG body, None if it has none."""
    doc = _obj(fastjson.loads(body), "topic config table")
    entry = _obj(doc.get("topicConfigTable", {}), "topicConfigTable").get(topic)
    if entry is None:
        return None
    config = _obj(entry, topic)
    attributes = {k: str(v) for k, v in _obj(config.get("attributes") or {}, "attributes").items()}
    return models.TopicConfig(
        topic=topic,
        read_queues=_int(config.get("readQueueNums", 0), "readQueueNums"),
        write_queues=_int(config.get("writeQueueNums", 0), "writeQueueNums"),
        perm=_int(config.get("perm", 0), "perm"),
        message_type=attributes.get("message.type", "NORMAL"),
        order=config.get("order") is True,
        attributes=attributes,
    )


def _retry_policy(value: JsonValue) -> models.RetryPolicy | None:
    if value is None:
        return None
    policy = _obj(value, "groupRetryPolicy")
    kind = policy.get("type", "CUSTOMIZED")
    if kind == "EXPONENTIAL" and policy.get("exponentialRetryPolicy") is not None:
        exp = _obj(policy["exponentialRetryPolicy"], "exponentialRetryPolicy")
        return models.ExponentialRetry(
            initial_ms=_int(exp.get("initial", 5_000), "initial"),
            max_ms=_int(exp.get("max", 7_200_000), "max"),
            multiplier=_int(exp.get("multiplier", 2), "multiplier"),
        )
    if kind == "CUSTOMIZED" and policy.get("customizedRetryPolicy") is not None:
        custom = _obj(policy["customizedRetryPolicy"], "customizedRetryPolicy")
        return models.CustomizedRetry(
            next_ms=tuple(_int(n, "next") for n in _list(custom.get("next", []), "next"))
        )
    return None  # the type alone, without its parameters: the broker uses its default


def parse_group_config(*, group: str, body: bytes) -> models.GroupConfig | None:
    """``group``'s entry in a GET_ALL_SUBSCRIPTIONGROUP_CONFIG body, None if it has none."""
    doc = _obj(fastjson.loads(body), "subscription group table")
    entry = _obj(doc.get("subscriptionGroupTable", {}), "subscriptionGroupTable").get(group)
    if entry is None:
        return None
    config = _obj(entry, group)
    return models.GroupConfig(
        group=group,
        retry_max_times=_int(config.get("retryMaxTimes", 16), "retryMaxTimes"),
        orderly=config.get("consumeMessageOrderly") is True,
        consume_enable=config.get("consumeEnable", True) is not False,
        retry_policy=_retry_policy(config.get("groupRetryPolicy")),
        raw=config,
    )


def _message_queue(value: JsonValue) -> models.MessageQueue:
    key = _obj(value, "models.MessageQueue")
    return models.MessageQueue(
        topic=_str(key.get("topic"), "topic"),
        broker_name=_str(key.get("brokerName"), "brokerName"),
        queue_id=_int(key.get("queueId"), "queueId"),
    )


def parse_consume_stats(body: bytes) -> tuple[tuple[models.QueueOffsets, ...], float]:
    """GET_CONSUME_STATS: per-queue offsets (sorted) and the group's consume TPS."""
    doc = _obj(fastjson.loads(body), "consume stats")
    rows = []
    for key, value in _entries(doc.get("offsetTable", {}), "offsetTable"):
        offsets = _obj(value, "OffsetWrapper")
        consumer = max(0, _int(offsets.get("consumerOffset", 0), "consumerOffset"))
        rows.append(
            models.QueueOffsets(
                queue=_message_queue(key),
                broker_offset=_int(offsets.get("brokerOffset", 0), "brokerOffset"),
                consumer_offset=consumer,
                pull_offset=_int(offsets.get("pullOffset", 0), "pullOffset"),
                last_timestamp=_int(offsets.get("lastTimestamp", 0), "lastTimestamp"),
            )
        )
    tps = doc.get("consumeTps", 0.0)
    consume_tps = float(tps) if isinstance(tps, int | float) else 0.0
    return tuple(sorted(rows, key=lambda r: r.queue)), consume_tps


def parse_topic_stats(body: bytes) -> tuple[models.QueueRange, ...]:
    """GET_TOPIC_STATS_INFO: min/max offsets per queue (sorted)."""
    doc = _obj(fastjson.loads(body), "topic stats")
    rows = []
    for key, value in _entries(doc.get("offsetTable", {}), "offsetTable"):
        offsets = _obj(value, "TopicOffset")
        rows.append(
            models.QueueRange(
                queue=_message_queue(key),
                min_offset=_int(offsets.get("minOffset", 0), "minOffset"),
                max_offset=_int(offsets.get("maxOffset", 0), "maxOffset"),
                last_update_timestamp=_int(offsets.get("lastUpdateTimestamp", 0), "lastUpdate"),
            )
        )
    return tuple(sorted(rows, key=lambda r: r.queue))
