"""sweep_state, the daily timer function that deletes the app's stale state, against Azurite: which rows it
deletes and which it keeps, its batches, its log, and a store that fails."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.data.tables import TableClient, TableServiceClient

import function_app
from devtools.azurite import ACCOUNT_NAME, Azurite
from devtools.functions import TimerFunction, timer_functions
from devtools.timers import next_occurrence, timer_request
from shared import idempotency, limits, outcomes
from shared.sweep import BATCH, sweep
from testing.standins import TwilioStandIn
from tests.app.state_support import CALL, Gate, Mishap, TableProxy, keyed
from tests.support import logged

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2031, 5, 17, 10, 20, 30, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def sweep_state() -> TimerFunction:
    """The function as the worker indexes it."""
    (function,) = [f for f in timer_functions(function_app.app) if f.name == "sweep_state"]
    return function


def run_sweep_state() -> None:
    sweep_state().handler(timer_request(past_due=False))


def tables(azurite: Azurite) -> TableServiceClient:
    return TableServiceClient.from_connection_string(azurite.connection_string)


def keys_table(azurite: Azurite) -> TableClient:
    return tables(azurite).create_table_if_not_exists(idempotency.TABLE)


def counters_table(azurite: Azurite) -> TableClient:
    return tables(azurite).create_table_if_not_exists(limits.TABLE)


def add_keys(table: TableClient, partition: str, created: datetime, count: int, prefix: str = "key") -> None:
    """`count` Idempotency-Key rows first used at `created`, written as the app writes a claim."""
    rows = [
        {
            "PartitionKey": partition,
            "RowKey": f"{prefix}-{i:04}",
            "Fingerprint": "f",
            "State": "pending",
            "Created": created,
        }
        for i in range(count)
    ]
    for start in range(0, count, 100):
        table.submit_transaction([("create", row) for row in rows[start : start + 100]])


def row_keys(table: TableClient) -> set[str]:
    return {entity["RowKey"] for entity in table.list_entities()}


def add_counter(table: TableClient, row: str, window: str) -> None:
    table.create_entity({"PartitionKey": limits.PARTITION, "RowKey": row, "Window": window, "Count": 3})


# --- what is deleted and what is kept --------------------------------------------------------------------------------


def test_a_key_first_used_just_over_24_hours_ago_is_deleted(storage: Azurite) -> None:
    table = keys_table(storage)
    add_keys(table, "make_call", NOW - idempotency.KEEP - SECOND, 1, "expired")
    add_keys(table, "make_call", NOW - idempotency.KEEP + SECOND, 1, "live")

    sweep(NOW)

    assert row_keys(table) == {"live-0000"}


def test_a_key_the_app_claimed_within_the_last_24_hours_is_kept(twilio: TwilioStandIn, storage: Azurite) -> None:
    assert keyed("make_call", CALL, "kept-key").status_code == 201
    (claim,) = keys_table(storage).list_entities()

    sweep(claim["Created"] + idempotency.KEEP - SECOND)

    assert row_keys(keys_table(storage)) == {claim["RowKey"]}


def test_counters_of_an_ended_hour_or_utc_day_are_deleted(storage: Azurite) -> None:
    table = counters_table(storage)
    add_counter(table, "to-last-hour", (NOW - timedelta(hours=1)).strftime("%Y%m%d%H"))
    add_counter(table, "to-last-year", (NOW - timedelta(days=365)).strftime("%Y%m%d%H"))
    add_counter(table, limits.APP_ROW, (NOW - timedelta(days=1)).strftime("%Y%m%d"))

    sweep(NOW)

    assert row_keys(table) == set()


def test_the_counters_the_app_writes_are_kept_until_their_window_ends(
    twilio: TwilioStandIn, storage: Azurite, env: pytest.MonkeyPatch
) -> None:
    """The app's own rows, both limits on: a sweep in their hour's last second keeps both, one at the next
    hour deletes the number's, one in the UTC day's last second keeps the app's, and one at the next day
    deletes it. Times come from the hour the app wrote, so the test holds at any time, 23:00 UTC included."""
    env.setenv("DAILY_LIMIT", "100")
    assert keyed("make_call", CALL, None).status_code == 201
    table = counters_table(storage)
    written = list(table.list_entities())
    (number_row,) = [entity for entity in written if entity["RowKey"] != limits.APP_ROW]
    hour = datetime.strptime(number_row["Window"], "%Y%m%d%H").replace(tzinfo=UTC)
    next_day = hour.replace(hour=0) + timedelta(days=1)

    sweep(hour + timedelta(hours=1) - SECOND)
    kept_within_the_hour = row_keys(table)
    sweep(hour + timedelta(hours=1))
    kept_after_the_hour = row_keys(table)
    for entity in written:
        table.upsert_entity(entity)
    sweep(next_day - SECOND)
    kept_to_the_day_end = row_keys(table)
    sweep(next_day)

    assert kept_within_the_hour == {number_row["RowKey"], limits.APP_ROW}
    assert number_row["RowKey"] not in kept_after_the_hour
    assert limits.APP_ROW in kept_to_the_day_end
    assert row_keys(table) == set()


def test_other_tables_and_rows_of_other_partitions_are_left_alone(storage: Azurite) -> None:
    other = tables(storage).create_table_if_not_exists("othertable")
    other.create_entity({"PartitionKey": limits.PARTITION, "RowKey": "to-x", "Window": "2001010100"})
    counters = counters_table(storage)
    counters.create_entity({"PartitionKey": "elsewhere", "RowKey": "to-x", "Window": "2001010100"})

    sweep(NOW)

    assert (row_keys(other), row_keys(counters)) == ({"to-x"}, {"to-x"})


# --- batches ---------------------------------------------------------------------------------------------------------


def test_rows_are_deleted_in_transactions_of_at_most_100_per_partition(
    storage: Azurite, table_round_trips: list[str]
) -> None:
    table = keys_table(storage)
    add_keys(table, "make_call", NOW - 2 * idempotency.KEEP, 201)
    add_keys(table, "send_sms", NOW - 2 * idempotency.KEEP, 30)

    sweep(NOW)

    assert row_keys(table) == set()
    batches = [sent for sent in table_round_trips if sent == f"POST /{ACCOUNT_NAME}/$batch"]
    deletes = [sent for sent in table_round_trips if sent.startswith("DELETE ")]
    assert (len(batches), deletes) == (4, [])  # 100 + 100 + 1 of make_call, 30 of send_sms


@pytest.fixture
def reclaimed_meanwhile(storage: Azurite, table_proxy: TableProxy) -> Iterator[list[str]]:
    """Azurite behind a TableProxy that, before the first transaction reaches it, claims again the keys
    whose row keys the test puts in the list: as a request does between the sweep's query and its deletes."""
    rows: list[str] = []
    gate = Gate()
    table_proxy.upon("POST", "$batch", Mishap(gate=gate))

    def reclaim() -> None:
        if gate.arrived.wait(60):
            table = keys_table(storage)
            for row in rows:
                table.update_entity({**table.get_entity("make_call", row), "Created": datetime.now(UTC)})
        gate.opened.set()

    reclaimer = threading.Thread(target=reclaim, daemon=True)
    reclaimer.start()
    yield rows
    gate.arrived.set()
    reclaimer.join(60)


def test_a_key_claimed_again_after_the_sweep_read_it_is_kept(
    storage: Azurite, reclaimed_meanwhile: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    table = keys_table(storage)
    add_keys(table, "make_call", NOW - 2 * idempotency.KEEP, 5)
    reclaimed_meanwhile.append("key-0002")

    sweep(NOW)

    assert row_keys(table) == {"key-0002"}
    assert ("INFO", "Deleted 4 stale rows from table idempotency") in logged(caplog, "shared.sweep")


@pytest.mark.parametrize(("days", "kept"), [(29, True), (31, False)])
def test_outcomes_are_deleted_once_past_outcome_retention_days(storage: Azurite, days: int, kept: bool) -> None:
    table = tables(storage).create_table_if_not_exists(outcomes.TABLE)
    table.create_entity({"PartitionKey": "CA" + "0" * 32, "RowKey": "created", "Status": "queued"})

    sweep(datetime.now(UTC) + timedelta(days=days))

    assert (row_keys(table) == {"created"}) is kept


# --- the function, its log, and failures -----------------------------------------------------------------------------


def test_sweep_state_logs_one_info_line_per_table_with_the_rows_it_deleted(
    storage: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    add_keys(keys_table(storage), "send_sms", datetime.now(UTC) - 2 * idempotency.KEEP, 3)

    run_sweep_state()

    assert logged(caplog, "shared.sweep") == [
        ("INFO", "Deleted 3 stale rows from table idempotency"),
        ("INFO", "Deleted 0 stale rows from table limits"),
        ("INFO", "Deleted 0 stale rows from table outcomes"),
    ]


def test_a_store_that_is_down_is_logged_at_error_per_table_and_not_raised(
    unreachable_storage: None, caplog: pytest.LogCaptureFixture
) -> None:
    run_sweep_state()

    assert logged(caplog, "shared.sweep") == [
        ("ERROR", f"Could not sweep table {name} (StateUnavailableError); its rows wait for the next run")
        for name in (idempotency.TABLE, limits.TABLE, outcomes.TABLE)
    ]


def test_the_sweep_reads_only_the_keys_of_the_rows_it_deletes(storage: Azurite, table_proxy: TableProxy) -> None:
    add_keys(keys_table(storage), "p", NOW - idempotency.KEEP - SECOND, 3)

    sweep(NOW)

    reads = [sent for sent in table_proxy.targets if sent.startswith(f"GET /{ACCOUNT_NAME}/{idempotency.TABLE}()")]
    assert reads
    assert all("$select=PartitionKey,RowKey" in read for read in reads)


@pytest.fixture
def keys_unreadable(table_proxy: TableProxy) -> None:
    """Azurite behind a TableProxy that answers 500 to every read of the keys table."""
    table_proxy.upon("GET", idempotency.TABLE, then=Mishap(status=500))


def test_a_table_that_fails_leaves_the_other_swept(
    storage: Azurite, keys_unreadable: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    counters = counters_table(storage)
    add_counter(counters, limits.APP_ROW, "20010101")

    run_sweep_state()

    assert [level for level, _ in logged(caplog, "shared.sweep")] == ["ERROR", "INFO", "INFO"]
    assert row_keys(counters) == set()


def test_without_storage_there_is_nothing_to_sweep(caplog: pytest.LogCaptureFixture) -> None:
    run_sweep_state()

    assert logged(caplog, "shared.sweep") == [
        ("WARNING", "No storage is configured (AzureWebJobsStorage): nothing to sweep")
    ]


# --- what the docs say -----------------------------------------------------------------------------------------------


def _section(page: str, heading: str) -> str:
    text = (ROOT / page).read_text(encoding="utf-8")
    return text.split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]


def test_the_readme_lists_sweep_state_with_its_schedule() -> None:
    schedule = sweep_state().schedule
    runs = next_occurrence(schedule, NOW)
    (row,) = [
        line for line in _section("README.md", "## Functions").splitlines() if line.startswith("| `sweep_state` |")
    ]

    assert f"| timer, daily at {runs:%H:%M} UTC (`{schedule}`) |" in row
    assert next_occurrence(schedule, runs) - runs == timedelta(days=1)


def test_what_is_stored_says_how_long_rows_live_until_sweep_state_deletes_them() -> None:
    """A key's row lives until the first run after its 24 hours; a counter's until the first run after its hour."""
    schedule = sweep_state().schedule
    stored = " ".join(_section("docs/reliability.md", "## What is stored, where, and for how long").split())
    first_uses = [NOW + timedelta(minutes=minutes) for minutes in range(0, 24 * 60, 7)]

    longest_key = max(next_occurrence(schedule, used + idempotency.KEEP) - used for used in first_uses)
    longest_counter = max(next_occurrence(schedule, ended) - ended for ended in first_uses)
    assert longest_key <= timedelta(hours=48)
    assert longest_counter <= timedelta(days=1)
    assert "`sweep_state` deletes it at its next run, so a row lives at most 48 hours" in stored
    assert "so a number's row lives at most a day after its hour ends" in stored
    assert f"runs daily at {next_occurrence(schedule, NOW):%H:%M} UTC (`{schedule}`)" in stored
    assert f"in transactions of up to {BATCH}" in stored


def test_the_api_reference_shows_the_line_sweep_state_logs(storage: Azurite, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    add_keys(keys_table(storage), "make_call", NOW - 2 * idempotency.KEEP, 12)

    sweep(NOW)

    shown = re.findall(r"such as `(Deleted [^`]*)`", _section("docs/api.md", "## sweep_state"))
    assert shown == [logged(caplog, "shared.sweep")[0][1]]
