import logging

import pytest
import redis.exceptions

from flashbid_shared.observability import round_failed

log = logging.getLogger("flashbid.test")


@pytest.mark.parametrize(
    "away",
    [ConnectionRefusedError(111, "Connection refused"), redis.exceptions.ConnectionError("gone")],
)
def test_a_store_away_is_one_line_in_the_log(caplog, away) -> None:
    with caplog.at_level(logging.WARNING):
        round_failed(log, "outbox round", away)
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage().startswith("outbox round failed: ")


def test_a_bug_in_background_work_is_logged_with_its_traceback(caplog) -> None:
    try:
        {}["missing"]
    except KeyError as bug:
        with caplog.at_level(logging.WARNING):
            round_failed(log, "outbox round", bug)
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
