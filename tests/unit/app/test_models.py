"""The result message's de-duplication key: one per outcome, the same in every copy."""

from datetime import UTC, datetime

import orjson
from agentprod.models import ResultMessage, TaskStatus


def test_result_id_is_task_id_and_attempts_and_travels_in_the_body() -> None:
    finished = datetime(2026, 12, 1, tzinfo=UTC)
    first = ResultMessage(
        task_id="t1", user_id="u", status=TaskStatus.DONE, attempts=2, finished_at=finished
    )
    copy = ResultMessage.model_validate_json(first.encode())
    assert first.result_id == copy.result_id == "t1:2"
    assert orjson.loads(first.encode())["result_id"] == "t1:2"
