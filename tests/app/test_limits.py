"""DESTINATION_HOURLY_LIMIT and DAILY_LIMIT: counted in Table storage, refused with 429 before Twilio."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import pytest

from devtools.azurite import ACCOUNT_NAME, Azurite
from devtools.sandbox.answers import twilio_error
from shared.errors import ApiError
from shared.limits import _Counter, _counters, _exceeded, _take, past_windows, take_slot
from shared.settings import Settings
from testing.process_state import clear_caches
from testing.standins import Fault, Received, StandIn, TwilioStandIn
from tests.app.state_support import (
    ANSWER_LOST,
    CALL,
    DROPPED,
    SMS,
    Answer,
    Gate,
    Mishap,
    TableProxy,
    as_storage,
    keyed,
    sent_at_once,
    table,
    table_error,
)
from tests.support import error_of, logged

OTHER_NUMBER = "+15558675311"
NEVER = datetime.max.replace(tzinfo=UTC)
# A test here counts several requests in one window, which the clock hour turning would split.
pytestmark = pytest.mark.usefixtures("clear_of_the_hour_turn")


def _end_of_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def _end_of_utc_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def row_of(number: str) -> str:
    """The RowKey of `number`'s hourly counter: the number (in E.164) hashed, never as written."""
    return "to-" + hashlib.sha256(number.encode()).hexdigest()


def _seconds_to_window_end(before: datetime, after: datetime, window_end: Callable[[datetime], datetime]) -> set[int]:
    """Each Retry-After a refusal made between `before` and `after` may give: whole seconds to its window's end."""
    seconds: set[int] = set()
    for end in {window_end(before), window_end(after)}:  # two only if the window turned meanwhile
        fewest, most = (max(1, math.ceil((end - moment).total_seconds())) for moment in (after, before))
        seconds.update(range(fewest, most + 1))
    return seconds


@pytest.fixture
def two_an_hour(env: pytest.MonkeyPatch) -> None:
    env.setenv("DESTINATION_HOURLY_LIMIT", "2")


# --- the hourly and daily limits -------------------------------------------------------------------------------------


def test_the_hourly_limit_of_a_destination_answers_429_with_retry_after_until_the_clock_hour_ends(
    twilio: TwilioStandIn, storage: Azurite, two_an_hour: None
) -> None:
    answers = [keyed("make_call", CALL, None) for _ in range(2)]
    before = datetime.now(UTC)
    answers.append(keyed("make_call", CALL, None))
    after = datetime.now(UTC)

    assert [a.status_code for a in answers] == [201, 201, 429]
    refused = answers[2]
    assert error_of(refused) == {
        "code": "limit_exceeded",
        "message": "The limit of 2 calls and texts to this number this hour is reached (DESTINATION_HOURLY_LIMIT);"
        " try again later.",
        "target": "to",
    }
    assert int(refused.headers["Retry-After"]) in _seconds_to_window_end(before, after, _end_of_hour)
    assert len(twilio.creations()) == 2


def test_the_hourly_limit_defaults_to_10(twilio: TwilioStandIn, storage: Azurite) -> None:
    answers = [keyed("send_sms", SMS, None).status_code for _ in range(11)]

    assert answers == [201] * 10 + [429]


def test_calls_and_texts_to_one_number_share_its_hourly_limit(
    twilio: TwilioStandIn, storage: Azurite, two_an_hour: None
) -> None:
    keyed("make_call", CALL, None)
    keyed("send_sms", SMS, None)

    assert keyed("send_sms", SMS, None).status_code == 429


def test_each_destination_has_its_own_hourly_count(twilio: TwilioStandIn, storage: Azurite, two_an_hour: None) -> None:
    keyed("make_call", CALL, None)
    keyed("make_call", CALL, None)

    assert keyed("make_call", {**CALL, "to": OTHER_NUMBER}, None).status_code == 201


def test_spellings_of_one_number_share_its_hourly_count(
    twilio: TwilioStandIn, storage: Azurite, env: pytest.MonkeyPatch
) -> None:
    env.setenv("DESTINATION_HOURLY_LIMIT", "1")
    first = keyed("send_sms", {**SMS, "to": "+44 (0) 7911 123456"}, None)
    again = keyed("send_sms", {**SMS, "to": "+447911123456"}, None)

    assert (first.status_code, again.status_code) == (201, 429)


def test_a_number_libphonenumber_cannot_read_is_counted_as_written(
    twilio: TwilioStandIn, storage: Azurite, env: pytest.MonkeyPatch
) -> None:
    """+99 is no country code: nothing rewrites it, and it still has a count of its own."""
    env.setenv("DESTINATION_HOURLY_LIMIT", "1")

    assert [keyed("send_sms", {**SMS, "to": "+99"}, None).status_code for _ in range(2)] == [201, 429]


def test_a_broken_per_instance_concurrency_answers_503_before_the_limits_count_the_call(
    twilio: TwilioStandIn, storage: Azurite, env: pytest.MonkeyPatch
) -> None:
    env.setenv("DAILY_LIMIT", "1")
    env.setenv("PER_INSTANCE_CONCURRENCY", "0")
    refused = keyed("make_call", CALL, None)
    env.setenv("PER_INSTANCE_CONCURRENCY", "4")
    clear_caches()  # settings are read once: as when the app restarts with the setting fixed

    assert (refused.status_code, error_of(refused)["target"]) == (503, "PER_INSTANCE_CONCURRENCY")
    assert keyed("make_call", CALL, None).status_code == 201


def test_the_daily_limit_counts_every_destination_until_the_utc_day_ends(
    twilio: TwilioStandIn, storage: Azurite, env: pytest.MonkeyPatch
) -> None:
    env.setenv("DAILY_LIMIT", "2")
    keyed("make_call", CALL, None)
    keyed("send_sms", {**SMS, "to": OTHER_NUMBER}, None)
    before = datetime.now(UTC)
    refused = keyed("make_call", {**CALL, "to": "+15558675312"}, None)
    after = datetime.now(UTC)

    assert refused.status_code == 429
    assert error_of(refused) == {
        "code": "limit_exceeded",
        "message": "The limit of 2 calls and texts today (UTC) is reached (DAILY_LIMIT); try again later.",
        "target": None,
    }
    assert int(refused.headers["Retry-After"]) in _seconds_to_window_end(before, after, _end_of_utc_day)
    assert len(twilio.creations()) == 2


@pytest.mark.parametrize(
    "limits",
    [{"DESTINATION_HOURLY_LIMIT": "0"}, {"DESTINATION_HOURLY_LIMIT": "0", "DAILY_LIMIT": "0"}],
    ids=["hourly", "daily"],
)
def test_a_limit_of_0_turns_the_limit_off(
    twilio: TwilioStandIn, storage: Azurite, env: pytest.MonkeyPatch, limits: dict[str, str]
) -> None:
    for name, value in limits.items():
        env.setenv(name, value)

    assert [keyed("send_sms", SMS, None).status_code for _ in range(11)] == [201] * 11


# --- Table round trips, the log line, and where a window ends --------------------------------------------------------


@pytest.mark.parametrize(("name", "document"), [("make_call", CALL), ("send_sms", SMS)])
def test_both_limits_cost_a_request_two_table_round_trips(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch, table_round_trips: list[str], name: str, document: dict[str, str]
) -> None:
    env.setenv("DAILY_LIMIT", "100")
    assert keyed(name, document, None).status_code == 201  # creates the table
    table_round_trips.clear()

    assert keyed(name, document, None).status_code == 201
    counters = [trip for trip in table_round_trips if "/outcomes" not in trip]  # the outcome's, in test_outcomes.py
    assert len(counters) == 2, table_round_trips


def test_a_refusal_is_logged_with_the_number_masked(
    twilio: TwilioStandIn, storage: Azurite, two_an_hour: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            keyed("make_call", CALL, None)

    assert logged(caplog, "shared.limits") == [
        ("WARNING", "Refused a request to +1555867****: DESTINATION_HOURLY_LIMIT reached (2)")
    ]
    assert CALL["to"] not in caplog.text


@pytest.mark.parametrize("left", [timedelta(0), timedelta(milliseconds=500)], ids=["ended", "last half second"])
def test_a_refusal_as_its_window_ends_says_retry_after_1_second(left: timedelta) -> None:
    """A count read just before the hour turns may be refused just after: Retry-After is never below 1."""
    hourly = two_an_hour_counter("2026120121", ends=datetime.now(UTC) + left)

    assert _exceeded(hourly, CALL["to"]).headers == {"Retry-After": "1"}


def test_a_request_still_in_the_ending_hour_counts_in_the_hour_another_request_began(storage: Azurite) -> None:
    """As the hour turns, requests of both hours meet on one row: one still in the old hour must not start the
    new hour's count again."""
    begun, ending = two_an_hour_counter("2026120400"), two_an_hour_counter("2026120323")
    for _ in range(2):
        _take([begun], CALL["to"])

    with pytest.raises(ApiError) as refused:
        _take([ending], CALL["to"])

    assert refused.value.status == 429
    counters = table(storage, "limits").list_entities()
    assert [(row["Window"], row["Count"]) for row in counters] == [("2026120400", 2)]


def two_an_hour_counter(window: str, ends: datetime = NEVER) -> _Counter:
    return _Counter(
        row="to-number",
        window=window,
        limit=2,
        ends=ends,
        setting="DESTINATION_HOURLY_LIMIT",
        target="to",
        what="calls and texts to this number this hour",
    )


def test_a_lone_counter_is_written_without_a_transaction(twilio: TwilioStandIn, table_round_trips: list[str]) -> None:
    assert keyed("send_sms", SMS, None).status_code == 201  # creates the table and the counter
    table_round_trips.clear()

    assert keyed("send_sms", SMS, None).status_code == 201
    assert [trip for trip in table_round_trips if "/outcomes" not in trip] == [
        f"GET /{ACCOUNT_NAME}/limits()",
        f"PUT /{ACCOUNT_NAME}/limits(PartitionKey='counters',RowKey='{row_of(SMS['to'])}')",
    ]


@pytest.mark.parametrize(
    "now",
    [datetime(2026, 12, 1, 21, 0, tzinfo=UTC), datetime(2026, 12, 1, 21, 59, 59, 999999, tzinfo=UTC)],
    ids=["first instant", "last instant"],
)
def test_the_windows_end_exactly_at_the_next_clock_hour_and_utc_midnight(now: datetime) -> None:
    counters = _counters(CALL["to"], Settings(destination_hourly_limit_setting="2", daily_limit_setting="5"), now)

    assert [(counter.window, counter.ends) for counter in counters] == [
        ("2026120121", datetime(2026, 12, 1, 22, 0, tzinfo=UTC)),
        ("20261201", datetime(2026, 12, 2, 0, 0, tzinfo=UTC)),
    ]


@pytest.mark.usefixtures("zone_ahead_of_utc")
def test_the_windows_the_sweep_deletes_are_reckoned_in_utc_whatever_the_machines_zone() -> None:
    _, parameters = past_windows(datetime(2026, 12, 1, 21, 0, tzinfo=UTC))

    assert (parameters["day"], parameters["hour"]) == ("20261201", "2026120121")


class LostWrite(NamedTuple):
    limits: dict[str, str]
    before: int  # requests that take their slots first
    lost: tuple[str, str]  # the request whose answer is lost: method, table
    counts: dict[str, int]  # each counter's count after one more request


@pytest.mark.parametrize(
    "case",
    [
        LostWrite({}, 0, ("POST", "limits"), {row_of(SMS["to"]): 1}),
        LostWrite({}, 1, ("PUT", "limits"), {row_of(SMS["to"]): 2}),
        LostWrite({"DAILY_LIMIT": "5"}, 0, ("POST", "$batch"), {row_of(SMS["to"]): 1, "app": 1}),
    ],
    ids=["counter created", "counter updated", "both counters in a transaction"],
)
@pytest.mark.parametrize("mishap", [ANSWER_LOST, DROPPED], ids=["landed", "never reached the store"])
def test_a_counter_write_whose_answer_never_came_takes_one_slot(
    twilio: TwilioStandIn, table_proxy: TableProxy, env: pytest.MonkeyPatch, case: LostWrite, mishap: Mishap
) -> None:
    """Whether or not Azurite counted the write, the app reads the counters again and tells: its own write is
    recognised, a missing one made again. The SDK tries a lost update again (and meets a landed one, 412); a
    lost create or transaction is not tried again by the SDK."""
    for name, value in case.limits.items():
        env.setenv(name, value)
    for _ in range(case.before):
        assert keyed("send_sms", SMS, None).status_code == 201
    table_proxy.upon(*case.lost, mishap)

    assert keyed("send_sms", SMS, None).status_code == 201
    counters = table(table_proxy.azurite, "limits").list_entities()
    assert {row["RowKey"]: row["Count"] for row in counters} == case.counts


def test_a_lost_counter_write_is_recognised_after_another_request_took_a_slot_on_top(
    twilio: TwilioStandIn, storage: Azurite, table_proxy: TableProxy
) -> None:
    assert keyed("send_sms", SMS, None).status_code == 201  # creates the counter
    held = Gate()
    table_proxy.upon("PUT", "limits", ANSWER_LOST)
    table_proxy.upon("GET", "limits", Mishap(), Mishap(gate=held))  # the first request's reading, then its re-reading
    first: list[int] = []
    lost = threading.Thread(target=lambda: first.append(keyed("send_sms", SMS, None).status_code))
    lost.start()
    try:
        assert held.arrived.wait(30)
        assert keyed("send_sms", SMS, None).status_code == 201
    finally:
        held.opened.set()
        lost.join()

    assert first == [201]
    assert [row["Count"] for row in table(storage, "limits").list_entities()] == [3]


def test_a_counter_names_only_its_last_16_takers(
    twilio: TwilioStandIn, storage: Azurite, env: pytest.MonkeyPatch
) -> None:
    env.setenv("DESTINATION_HOURLY_LIMIT", "20")
    for _ in range(17):
        keyed("send_sms", SMS, None)

    (counter,) = table(storage, "limits").list_entities()
    assert (counter["Count"], len(counter["Takers"].split())) == (17, 16)


@pytest.mark.parametrize(
    ("limits", "written"), [({}, ("PUT", "limits")), ({"DAILY_LIMIT": "5"}, ("POST", "$batch"))], ids=["one", "both"]
)
def test_a_counter_deleted_between_its_reading_and_its_writing_is_counted_again_from_zero(
    twilio: TwilioStandIn,
    table_proxy: TableProxy,
    env: pytest.MonkeyPatch,
    limits: dict[str, str],
    written: tuple[str, str],
) -> None:
    """As the daily sweep deletes a row from a past window while a request is about to write it."""
    for name, value in limits.items():
        env.setenv(name, value)
    assert keyed("send_sms", SMS, None).status_code == 201
    held = Gate()
    table_proxy.upon(*written, Mishap(gate=held))
    answers: list[int] = []
    sending = threading.Thread(target=lambda: answers.append(keyed("send_sms", SMS, None).status_code))
    sending.start()
    counters = table(table_proxy.azurite, "limits")
    try:
        assert held.arrived.wait(30)
        counters.delete_entity("counters", row_of(SMS["to"]))
    finally:
        held.opened.set()
        sending.join()

    assert answers == [201]
    assert {row["RowKey"]: row["Count"] for row in counters.list_entities()}[row_of(SMS["to"])] == 1


# --- what takes a slot, and what keeps or releases it ----------------------------------------------------------------


def test_a_replayed_answer_takes_no_slot(twilio: TwilioStandIn, storage: Azurite, two_an_hour: None) -> None:
    keyed("make_call", CALL, "only-once")
    keyed("make_call", CALL, "only-once")

    assert keyed("make_call", CALL, None).status_code == 201


@pytest.mark.parametrize("key", [None, "refused-by-twilio"], ids=["without a key", "with a key"])
def test_a_request_twilio_refuses_keeps_its_slot(
    twilio: TwilioStandIn, storage: Azurite, env: pytest.MonkeyPatch, key: str | None
) -> None:
    env.setenv("DESTINATION_HOURLY_LIMIT", "1")
    twilio.fail_next(Fault(status=400, body=twilio_error(21211, "Invalid 'To' Phone Number", 400)))

    assert [keyed("make_call", CALL, key).status_code, keyed("make_call", CALL, None).status_code] == [400, 429]
    assert len(twilio.creations()) == 1


def test_a_request_over_the_limit_releases_its_key(
    twilio: TwilioStandIn, storage: Azurite, env: pytest.MonkeyPatch
) -> None:
    env.setenv("DESTINATION_HOURLY_LIMIT", "1")
    keyed("make_call", CALL, None)
    refused = keyed("make_call", CALL, "retry-me")
    corrected = keyed("make_call", {**CALL, "to": OTHER_NUMBER}, "retry-me")

    assert (refused.status_code, corrected.status_code) == (429, 201)


@pytest.mark.parametrize(
    "limits",
    [
        {"DESTINATION_HOURLY_LIMIT": "3"},
        {"DESTINATION_HOURLY_LIMIT": "0", "DAILY_LIMIT": "3"},
        {"DESTINATION_HOURLY_LIMIT": "3", "DAILY_LIMIT": "100"},
    ],
    ids=["hourly", "daily", "both"],
)
def test_concurrent_requests_never_take_more_slots_than_the_limit(
    twilio: TwilioStandIn, storage: Azurite, env: pytest.MonkeyPatch, limits: dict[str, str]
) -> None:
    for name, value in limits.items():
        env.setenv(name, value)
    with sent_at_once(8, lambda: keyed("send_sms", SMS, None).status_code) as answers:
        pass

    assert sorted(answers) == [201] * 3 + [429] * 5
    assert len(twilio.creations()) == 3


# --- what is stored --------------------------------------------------------------------------------------------------


def test_a_count_from_an_earlier_hour_is_not_counted(
    twilio: TwilioStandIn, storage: Azurite, two_an_hour: None
) -> None:
    keyed("make_call", CALL, None)
    keyed("make_call", CALL, None)
    counters = table(storage, "limits")
    for counter in counters.list_entities():
        counters.upsert_entity({**counter, "Window": "2000010100"})

    assert keyed("make_call", CALL, None).status_code == 201


def test_the_counters_are_one_row_per_number_hashed_and_one_for_the_app(
    twilio: TwilioStandIn, storage: Azurite, env: pytest.MonkeyPatch
) -> None:
    env.setenv("DAILY_LIMIT", "5")
    before = datetime.now(UTC)
    keyed("make_call", CALL, None)
    after = datetime.now(UTC)

    rows = list(table(storage, "limits").list_entities())
    assert {row["RowKey"]: (row["Window"], row["Count"]) for row in rows} in [
        {
            row_of(CALL["to"]): (now.strftime("%Y%m%d%H"), 1),
            "app": (now.strftime("%Y%m%d"), 1),
        }
        for now in (before, after)  # the hour may turn during the request
    ]
    assert CALL["to"] not in json.dumps([{name: str(value) for name, value in row.items()} for row in rows])


# --- storage down or missing, and broken limits ----------------------------------------------------------------------


def test_limits_fail_open_lets_requests_through_when_storage_is_down(
    twilio: TwilioStandIn, unreachable_storage: None, env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("LIMITS_FAIL_OPEN", "true")
    with caplog.at_level(logging.WARNING):
        answers = [keyed("make_call", CALL, None).status_code for _ in range(2)]

    assert answers == [201, 201]
    line = ("WARNING", "Limits not applied to a request to +1555867****: storage unavailable (LIMITS_FAIL_OPEN)")
    assert logged(caplog, "shared.limits") == [line, line]


def test_limits_fail_open_sends_no_keyed_request_whose_key_cannot_be_stored(
    twilio: TwilioStandIn, unreachable_storage: None, env: pytest.MonkeyPatch
) -> None:
    env.setenv("LIMITS_FAIL_OPEN", "true")

    assert keyed("make_call", CALL, "a-key").status_code == 503
    assert twilio.received == []


@pytest.mark.parametrize(("fail_open", "status"), [("true", 201), ("false", 503)])
def test_limits_fail_open_decides_for_a_keyed_request_whose_key_is_stored_but_whose_limits_fail(
    twilio: TwilioStandIn, table_proxy: TableProxy, env: pytest.MonkeyPatch, fail_open: str, status: int
) -> None:
    env.setenv("LIMITS_FAIL_OPEN", fail_open)
    table_proxy.upon(None, "limits", then=DROPPED)

    assert keyed("make_call", CALL, "a-key").status_code == status
    assert len(twilio.creations()) == (status == 201)


def test_without_storage_limits_are_off_with_one_warning(
    twilio: TwilioStandIn, two_an_hour: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        answers = [keyed("make_call", CALL, None).status_code for _ in range(3)]

    assert answers == [201, 201, 201]
    assert [r.getMessage() for r in caplog.records if r.name == "shared.limits"] == [
        "No storage is configured (AzureWebJobsStorage): DESTINATION_HOURLY_LIMIT and DAILY_LIMIT are not applied"
    ]


def test_a_slot_is_counted_under_the_limits_of_the_settings_it_is_given(storage: Azurite) -> None:
    one_an_hour = Settings(storage_connection_string=storage.connection_string, destination_hourly_limit_setting="1")
    take_slot(CALL["to"], one_an_hour)

    with pytest.raises(ApiError) as refused:
        take_slot(CALL["to"], one_an_hour)

    assert (refused.value.status, refused.value.code) == (429, "limit_exceeded")


@pytest.mark.parametrize("setting", ["DESTINATION_HOURLY_LIMIT", "DAILY_LIMIT"])
@pytest.mark.parametrize("value", ["ten", "-1", "1.5"])
def test_a_malformed_limit_answers_503_naming_it(
    twilio: TwilioStandIn, storage: Azurite, env: pytest.MonkeyPatch, setting: str, value: str
) -> None:
    env.setenv(setting, value)
    response = keyed("make_call", CALL, None)

    assert response.status_code == 503
    assert (error_of(response)["code"], error_of(response)["target"]) == ("configuration_error", setting)
    assert twilio.received == []


# --- a counter that keeps changing, the query, and a failing store ---------------------------------------------------


class RacedStore(StandIn):
    """A Table endpoint where another request always writes first: each read finds no counter, each create
    finds one. Faults play on the reads only."""

    def applies_faults(self, request: Received) -> bool:
        return request.method == "GET"

    def answer(self, request: Received) -> Answer:
        if request.path.endswith("/Tables"):
            return 409, table_error("TableAlreadyExists"), {}
        if request.method == "GET":
            return 200, {"value": []}, {}
        return 409, table_error("EntityAlreadyExists"), {}

    def reads(self) -> list[Received]:
        return [r for r in self.received if r.method == "GET"]

    def creations(self) -> list[Received]:
        return [r for r in self.received if r.method == "POST" and not r.path.endswith("/Tables")]


@pytest.fixture
def raced_store(env: pytest.MonkeyPatch) -> Iterator[RacedStore]:
    with as_storage(RacedStore(), env) as store:
        yield store


def test_a_counter_that_keeps_changing_is_tried_16_times_then_answers_503_too_busy(
    twilio: TwilioStandIn, raced_store: RacedStore
) -> None:
    response = keyed("make_call", CALL, None)

    assert (len(raced_store.reads()), len(raced_store.creations())) == (16, 16)
    assert (response.status_code, response.headers["Retry-After"]) == (503, "5")
    assert error_of(response) == {
        "code": "state_unavailable",
        "message": "The app's state store (Table storage) is too busy to count this request under the limits;"
        " nothing was sent. Try again shortly.",
        "target": None,
    }
    assert twilio.received == []


def test_the_counters_are_read_in_one_query_spelled_as_azure_requires(
    twilio: TwilioStandIn, raced_store: RacedStore, env: pytest.MonkeyPatch
) -> None:
    """Azure's Table service reads filters case-sensitively (operators in lower case); Azurite forgives."""
    env.setenv("DAILY_LIMIT", "5")
    keyed("make_call", CALL, None)

    assert raced_store.reads()[0].query["$filter"] == [
        f"PartitionKey eq 'counters' and ( RowKey eq '{row_of(CALL['to'])}' or RowKey eq 'app' )"
    ]


def test_a_storage_failure_while_taking_a_slot_is_logged_saying_so(
    twilio: TwilioStandIn, raced_store: RacedStore, caplog: pytest.LogCaptureFixture
) -> None:
    raced_store.fail_next(Fault(status=403, body=table_error("AuthorizationFailure")))
    with caplog.at_level(logging.WARNING):
        assert keyed("make_call", CALL, None).status_code == 503

    assert logged(caplog, "shared.storage") == [
        ("WARNING", "Table storage failed while taking a slot under the limits: HttpResponseError")
    ]
