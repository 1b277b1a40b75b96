"""Log labels follow work handed to a thread pool (a new thread starts with none)."""

from __future__ import annotations

import json
from collections.abc import Callable

from shared import log


def test_a_task_in_a_labelled_pool_logs_with_the_submitters_labels(
    logs: Callable[[], str],
) -> None:
    logger = log.get_logger("tests.labels")
    with log.labels(job_id="j-1", tenant_id="t-1"), log.LabelledPool(2) as pool:
        pool.submit(logger.warning, "from the pool").result()
    with log.LabelledPool(1) as pool:  # submitted outside: none
        pool.submit(logger.warning, "unlabelled").result()
    lines = {line["message"]: line for line in map(json.loads, logs().splitlines())}
    labelled = lines["from the pool"]["logging.googleapis.com/labels"]
    assert labelled["job_id"] == "j-1" and labelled["tenant_id"] == "t-1"
    assert "job_id" not in lines["unlabelled"].get("logging.googleapis.com/labels", {})
