"""The tolerant reader of fastjson bodies, and the parsers of broker replies built on it.

Cases: standard JSON (scalars, nesting, escapes, unicode, numbers); fastjson's non-standard
keys (numbers -> dict with string keys, objects -> Pairs); malformed input; bodies as the
5.3.3 broker and name server send them (captured from a live instance) -> models.
"""

from __future__ import annotations

import json

import pytest
from agentprod_operator.rocketmq import bodies, fastjson, models

# --------------------------------------------------------------------------- reader


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("null", None),
        ("true", True),
        ("false", False),
        ("0", 0),
        ("-12", -12),
        ("3.5", 3.5),
        ("-1.25e3", -1250.0),
        ("1E-2", 0.01),
        ('"plain"', "plain"),
        ('"tab\\tquote\\"back\\\\slash\\/"', 'tab\tquote"back\\slash/'),
        ('"\\u00e9\\ud83d\\ude00"', "é😀"),
        ('"日本語"', "日本語"),
        ("[]", []),
        ("{}", {}),
        ('[1, [2, [3, {"a": [true, false, null]}]]]', [1, [2, [3, {"a": [True, False, None]}]]]),
        (' {\n "a" : { "b" : "c" } ,"d":[ ] }\t', {"a": {"b": "c"}, "d": []}),
    ],
)
def test_standard_json(text: str, expected: object) -> None:
    assert fastjson.loads(text) == expected
    assert fastjson.loads(text.encode()) == expected


def test_number_keys_become_their_text() -> None:
    assert fastjson.loads('{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"}}') == {
        "brokerAddrs": {"0": "127.0.0.1:10911", "1": "127.0.0.1:10921"}
    }
    assert fastjson.loads("{-1:true, 2.5:null}") == {"-1": True, "2.5": None}


def test_object_keys_give_pairs() -> None:
    text = (
        '{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"brokerOffset":5},'
        '{"brokerName":"b","queueId":1,"topic":"T"}:{"brokerOffset":7}}}'
    )
    table = fastjson.loads(text)
    assert isinstance(table, dict)
    pairs = table["offsetTable"]
    assert isinstance(pairs, fastjson.Pairs)
    assert pairs == [
        ({"brokerName": "b", "queueId": 0, "topic": "T"}, {"brokerOffset": 5}),
        ({"brokerName": "b", "queueId": 1, "topic": "T"}, {"brokerOffset": 7}),
    ]


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ('{[1,2]:"list", "s":1}', [[1, 2], "s"]),  # mixed keys: all kept, in order
        ("{true:1,null:2}", [True, None]),
        ('{{"a":{0:"x"}}:[{1:{}}]}', [{"a": {"0": "x"}}]),  # nested non-standard shapes
    ],
)
def test_other_keys_give_pairs(text: str, keys: list[object]) -> None:
    value = fastjson.loads(text)
    assert isinstance(value, fastjson.Pairs)
    assert [k for k, _ in value] == keys


def test_nested_value_under_object_key() -> None:
    value = fastjson.loads('{{"k":1}:{"inner":{0:"a"},"list":[{"x":"\\u0041"}]}}')
    assert value == [({"k": 1}, {"inner": {"0": "a"}, "list": [{"x": "A"}]})]


@pytest.mark.parametrize(
    "text",
    ["", "{", '{"a" 1}', '{"a":1,}x', "[1 2]", "tru", '"unterminated', "{0:}", '{"a":1} 2', "@"],
)
def test_malformed_input_is_rejected_with_offset(text: str) -> None:
    with pytest.raises(fastjson.FastjsonError, match="offset"):
        fastjson.loads(text)


def test_pure_path_parses_megabyte_bodies() -> None:
    entry = '{"brokerName":"broker-a","queueId":%d,"topic":"T"}:{"brokerOffset":%d,"pullOffset":1}'
    rows = ",".join(entry % (i, i) for i in range(30_000))
    text = '{"consumeTps":0.0,"offsetTable":{' + rows + "}}"
    assert len(text) > 2_000_000
    value = fastjson.loads(text)
    assert isinstance(value, dict)
    assert len(value["offsetTable"]) == 30_000  # type: ignore[arg-type]


# --------------------------------------------------------------------------- reply bodies

CLUSTER_INFO = (
    b'{"brokerAddrTable":{"broker-a":{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},'
    b'"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false},'
    b'"broker-b":{"brokerAddrs":{1:"127.0.0.1:10931"},"brokerName":"broker-b",'
    b'"cluster":"DefaultCluster"}},"clusterAddrTable":{"DefaultCluster":["broker-b","broker-a"]}}'
)


def test_parse_cluster_info() -> None:
    info = bodies.parse_cluster_info(CLUSTER_INFO)
    assert info.clusters == {"DefaultCluster": ("broker-a", "broker-b")}
    assert info.brokers["broker-a"].addrs == {0: "127.0.0.1:10911", 1: "127.0.0.1:10921"}
    assert info.master_addrs("DefaultCluster") == ("127.0.0.1:10911",)  # broker-b has no master
    assert info.master_addrs("Other") == ()
    assert info.all_master_addrs() == ("127.0.0.1:10911",)


def test_parse_topic_route() -> None:
    body = (
        b'{"brokerDatas":[{"brokerAddrs":{"0":"127.0.0.1:10911"},"brokerName":"broker-a",'
        b'"cluster":"DefaultCluster","enableActingMaster":false}],"filterServerTable":{},'
        b'"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":8,"topicSysFlag":0,'
        b'"writeQueueNums":8}]}'
    )
    route = bodies.parse_topic_route(topic="T", body=body)
    assert route.queues == (models.QueueData("broker-a", 8, 8, 6, 0),)
    assert (route.read_queues, route.write_queues) == (8, 8)
    assert route.master_addrs() == ("127.0.0.1:10911",)


def test_parse_topic_config() -> None:
    body = (
        b'{"dataVersion":{"counter":17},"topicConfigTable":{"T":{"attributes":'
        b'{"message.type":"FIFO"},"order":false,"perm":6,"readQueueNums":16,'
        b'"topicFilterType":"SINGLE_TAG","topicName":"T","topicSysFlag":0,"writeQueueNums":16},'
        b'"OLD":{"perm":4,"readQueueNums":1,"writeQueueNums":1}}}'
    )
    config = bodies.parse_topic_config(topic="T", body=body)
    assert config == models.TopicConfig(
        topic="T", read_queues=16, write_queues=16, perm=6, message_type="FIFO",
        attributes={"message.type": "FIFO"},
    )  # fmt: skip
    old = bodies.parse_topic_config(topic="OLD", body=body)
    assert old is not None
    assert old.message_type == "NORMAL"  # no attribute: the broker's default
    assert bodies.parse_topic_config(topic="missing", body=body) is None


def test_parse_group_config_and_retry_policies() -> None:
    table = {
        "subscriptionGroupTable": {
            "G": {"groupName": "G", "retryMaxTimes": 3, "consumeMessageOrderly": True,
                  "groupRetryPolicy": {"type": "CUSTOMIZED"}, "attributes": {}},
            "E": {"groupName": "E", "retryMaxTimes": 16, "groupRetryPolicy": {
                "type": "EXPONENTIAL",
                "exponentialRetryPolicy": {"initial": 1000, "max": 60000, "multiplier": 3}}},
        }
    }  # fmt: skip
    body = json.dumps(table).encode()
    group = bodies.parse_group_config(group="G", body=body)
    assert group is not None
    assert (group.retry_max_times, group.orderly, group.retry_policy) == (3, True, None)
    exponential = bodies.parse_group_config(group="E", body=body)
    assert exponential is not None
    assert exponential.retry_policy == models.ExponentialRetry(1000, 60000, 3)
    assert bodies.parse_group_config(group="missing", body=body) is None


@pytest.mark.parametrize(
    "policy",
    [None, models.ExponentialRetry(2000, 30000, 2), models.CustomizedRetry((1000, 5000))],
)
def test_group_config_body_round_trips(policy: models.RetryPolicy | None) -> None:
    body = bodies.group_config_body(group="G", max_retries=5, retry_policy=policy, orderly=True)
    sent = json.loads(body)
    assert sent["attributes"] == {}
    assert (sent["groupName"], sent["retryMaxTimes"], sent["consumeMessageOrderly"]) == (
        "G", 5, True,
    )  # fmt: skip
    parsed = bodies.parse_group_config(
        group="G", body=json.dumps({"subscriptionGroupTable": {"G": sent}}).encode()
    )
    assert parsed is not None
    assert parsed.retry_policy == policy


def test_create_topic_fields() -> None:
    fields = bodies.create_topic_fields(topic="T", queues=4, message_type="FIFO", perm=6)
    assert fields["attributes"] == "+message.type=FIFO"
    assert (fields["readQueueNums"], fields["writeQueueNums"], fields["perm"]) == ("4", "4", "6")
    with pytest.raises(ValueError, match="message type"):
        bodies.create_topic_fields(topic="T", queues=4, message_type="fifo", perm=6)
    with pytest.raises(ValueError, match="queue"):
        bodies.create_topic_fields(topic="T", queues=0, message_type="NORMAL", perm=6)


def test_parse_consume_stats_and_lag() -> None:
    body = (
        b'{"consumeTps":1.5,"offsetTable":{'
        b'{"brokerName":"broker-a","queueId":1,"topic":"T"}:'
        b'{"brokerOffset":5,"consumerOffset":2,"lastTimestamp":0,"pullOffset":2},'
        b'{"brokerName":"broker-a","queueId":0,"topic":"T"}:'
        b'{"brokerOffset":3,"consumerOffset":-1,"lastTimestamp":0,"pullOffset":0},'
        b'{"brokerName":"broker-a","queueId":0,"topic":"%RETRY%G_T"}:'
        b'{"brokerOffset":4,"consumerOffset":1,"lastTimestamp":0,"pullOffset":1}}}'
    )
    rows, tps = bodies.parse_consume_stats(body)
    assert tps == 1.5
    assert [(r.queue.topic, r.queue.queue_id) for r in rows] == [
        ("%RETRY%G_T", 0), ("T", 0), ("T", 1),
    ]  # fmt: skip
    assert rows[1].consumer_offset == 0  # -1 (no offset) counts from 0
    stats = models.ConsumeStats(group="G", topic="T", queues=rows)
    assert (stats.lag, stats.topic_lag, stats.retry_lag) == (9, 6, 3)


def test_parse_empty_consume_stats() -> None:
    assert bodies.parse_consume_stats(b'{"consumeTps":0.0,"offsetTable":{}}') == ((), 0.0)


def test_parse_topic_stats() -> None:
    body = (
        b'{"offsetTable":{{"brokerName":"broker-a","queueId":1,"topic":"T"}:'
        b'{"lastUpdateTimestamp":17,"maxOffset":2,"minOffset":0},'
        b'{"brokerName":"broker-a","queueId":0,"topic":"T"}:'
        b'{"lastUpdateTimestamp":0,"maxOffset":3,"minOffset":1}},"topicPutTps":0.0}'
    )
    offsets = models.TopicOffsets(topic="T", queues=bodies.parse_topic_stats(body))
    assert offsets.total == 5
    assert offsets.per_queue == {
        models.MessageQueue("T", "broker-a", 0): 3,
        models.MessageQueue("T", "broker-a", 1): 2,
    }


@pytest.mark.parametrize(
    ("parse", "body"),
    [
        (bodies.parse_cluster_info, b"[1]"),
        (bodies.parse_cluster_info, b'{"brokerAddrTable":{"b":{"brokerAddrs":{0:5}}}}'),
        (bodies.parse_consume_stats, b'{"offsetTable":{{"topic":"T"}:{}}}'),
        (bodies.parse_topic_stats, b'{"offsetTable":[1]}'),
    ],
)
def test_unexpected_shapes_raise(parse: object, body: bytes) -> None:
    assert callable(parse)
    with pytest.raises(bodies.UnexpectedBody):
        parse(body)
