"""What an operator gets in Azure: the queries under infra/queries, the workbook that runs them, and the alert.

No KQL engine runs here and no Azure. Each query is parsed and analyzed by Kusto.Language, the parser behind
Microsoft's own query editors, against Application Insights' tables as the docs list them; the fields it reads
from the app's key=value lines are checked against lines the app's own code logs; the Bicep is read with pycep.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devtools.npm import npm_ci
from shared.outbound import log_keyed_answer
from tests.deploy.test_infra import (
    INFRA,
    ROOT,
    bicep,
    body,
    condition,
    decorator,
    dotted,
    module_params,
    only,
    parameters_file,
    resources,
    when_given,
)
from tests.support import ACCOUNT_SID, FUNCTIONS, signed_post

QUERIES = INFRA / "queries"
QUERY_FILES = sorted(path.name for path in QUERIES.glob("*.kql"))
MONITORING_PAGE = ROOT / "docs" / "monitoring.md"
ANALYZER = Path(__file__).parent / "kql"
OPERATIONS = "core/operations.bicep"
ALERT_QUERY = "call-failure-share.kql"

# Application Insights' tables as its queries, workbooks and log alerts name them (the classic schema), from
# https://learn.microsoft.com/azure/azure-monitor/app/convert-classic-resource#table-schemas
_COMMON = (
    "appId:string, application_Version:string, appName:string, client_Browser:string, client_City:string,"
    " client_CountryOrRegion:string, client_IP:string, client_Model:string, client_OS:string,"
    " client_StateOrProvince:string, client_Type:string, cloud_RoleInstance:string, cloud_RoleName:string,"
    " customDimensions:dynamic, customMeasurements:dynamic, iKey:string, itemCount:int, itemId:string,"
    " itemType:string, operation_Id:string, operation_Name:string, operation_ParentId:string,"
    " operation_SyntheticSource:string, sdkVersion:string, session_Id:string, timestamp:datetime,"
    " user_AccountId:string, user_AuthenticatedId:string, user_Id:string"
)
APP_INSIGHTS_TABLES = {
    "traces": f"(message:string, severityLevel:int, {_COMMON})",
    "requests": (
        "(duration:real, id:string, name:string, performanceBucket:string, resultCode:string, source:string,"
        f" success:string, url:string, {_COMMON})"
    ),
}

# What the lines the queries read are logged with, by field: Twilio's callback fields, and a keyed answer's.
KEY = "order-1234"
LOGGED = {
    "CallSid": "CA5f6f2c1b0e4d3a2b1c0d9e8f7a6b5c4d",
    "CallStatus": "failed",
    "CallDuration": "0",
    "SipResponseCode": "404",
    "MessageSid": "SM5f6f2c1b0e4d3a2b1c0d9e8f7a6b5c4d",
    "MessageStatus": "undelivered",
    "ErrorCode": "30003",
    "Function": "make_call",
    "KeyHash": hashlib.sha256(KEY.encode()).hexdigest(),
    "Replay": "true",
    "Status": "201",
    "Sid": "CA0123456789abcdef0123456789abcdef",
}
TWILIO_FIELDS = ("CallSid", "CallStatus", "CallDuration", "SipResponseCode", "MessageSid", "MessageStatus", "ErrorCode")
LINE_START = re.compile(r'message startswith "(\w+) "')
EXTRACT = re.compile(r'extract\(@"(?P<pattern>\\b(?P<field>\w+)=\(\\S\*\))", 1, message\)')


def query(name: str) -> str:
    return (QUERIES / name).read_text(encoding="utf-8")


def extracted_fields(text: str) -> dict[str, str]:
    """The key=value fields a query extracts from a log line, with the pattern it extracts each with."""
    return {match["field"]: match["pattern"] for match in EXTRACT.finditer(text)}


def fields_by_query() -> list[tuple[str, str]]:
    return [(name, field) for name in QUERY_FILES for field in extracted_fields(query(name))]


# --- the queries, as Kusto.Language reads them ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def analyzed() -> dict[str, Any]:
    """Each query file analyzed by Kusto.Language: its diagnostics and its result's columns."""
    if not (ANALYZER / "node_modules" / ".installed").is_file():
        npm_ci(ANALYZER, "the KQL checks")
        (ANALYZER / "node_modules" / ".installed").touch()
    node = shutil.which("node")
    assert node is not None, "the KQL checks need Node.js"
    queries = {name: query(name) for name in QUERY_FILES}
    run = subprocess.run(
        [node, "analyze.js"],
        input=json.dumps({"tables": APP_INSIGHTS_TABLES, "queries": queries}),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=ANALYZER,
    )
    report: dict[str, Any] = json.loads(run.stdout)
    return report


def test_infra_ships_the_four_operator_queries_and_the_alerts_query() -> None:
    assert QUERY_FILES == [
        ALERT_QUERY,
        "failures.kql",
        "outcomes-per-hour.kql",
        "replay-chain.kql",
        "webhook-latency.kql",
    ]


@pytest.mark.processes
@pytest.mark.parametrize("name", QUERY_FILES)
def test_query_parses_and_names_only_what_application_insights_has(analyzed: dict[str, Any], name: str) -> None:
    assert analyzed[name]["diagnostics"] == []
    assert analyzed[name]["columns"]


@pytest.mark.processes
def test_the_alert_query_returns_the_failed_percent_the_alert_measures(analyzed: dict[str, Any]) -> None:
    (criterion,) = only(OPERATIONS, "Microsoft.Insights/scheduledQueryRules")["properties"]["criteria"]["allOf"]

    assert criterion["metricMeasureColumn"] == "FailedPercent"
    assert analyzed[ALERT_QUERY]["columns"]["FailedPercent"] == "real"


@pytest.mark.processes
def test_the_replay_chain_lists_each_request_with_its_sid(analyzed: dict[str, Any]) -> None:
    assert set(analyzed["replay-chain.kql"]["columns"]) >= {"timestamp", "Function", "Replay", "Status", "Sid"}


@pytest.mark.processes
def test_the_failures_query_gives_each_error_code_its_meaning(analyzed: dict[str, Any]) -> None:
    assert set(analyzed["failures.kql"]["columns"]) >= {"Sid", "Status", "ErrorCode", "Meaning", "Reference"}


@pytest.mark.processes
def test_the_latency_query_gives_each_functions_p95(analyzed: dict[str, Any]) -> None:
    assert analyzed["webhook-latency.kql"]["columns"]["p95"] == "real"
    assert "by Function = operation_Name" in query("webhook-latency.kql")


# --- the fields the queries read, against the lines the app logs --------------------------------------------------


def logged_line(kind: str, caplog: pytest.LogCaptureFixture) -> str | None:
    """A line of this kind as the app's code logs it, or None when nothing in this app logs such lines.

    Twilio's callbacks are posted, signed, to the function of the same name; a keyed answer is logged directly.
    """
    caplog.clear()
    if kind == "idempotency_key":
        log_keyed_answer(LOGGED["Function"], KEY, int(LOGGED["Status"]), {"sid": LOGGED["Sid"]}, replay=True)
    elif kind in FUNCTIONS:
        form = {"AccountSid": ACCOUNT_SID, **{name: LOGGED[name] for name in TWILIO_FIELDS}}
        assert signed_post(kind, form).status_code < 300
    else:
        return None
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{kind} ")]
    return line


@pytest.mark.parametrize(("name", "field"), fields_by_query())
@pytest.mark.usefixtures("credentials_in_env")
def test_each_field_a_query_reads_is_logged_under_that_name(
    caplog: pytest.LogCaptureFixture, name: str, field: str
) -> None:
    caplog.set_level("INFO")
    text = query(name)
    lines = {kind: logged_line(kind, caplog) for kind in LINE_START.findall(text)}
    pattern = extracted_fields(text)[field]
    captured = [m[1] for line in lines.values() if line is not None and (m := re.search(pattern, line))]
    # Twilio names a callback's own fields for its resource (MessageSid, CallStatus): such a field is looked for
    # only in its own line, which the app may not log yet.
    owners = [kind for kind in lines if field.startswith(kind.split("_")[0].capitalize())]
    if owners and all(lines[kind] is None for kind in owners):
        pytest.skip(f"nothing in this app logs {owners[0]} lines, which would carry {field}")

    assert lines
    assert captured
    assert set(captured) == {LOGGED[field]}


def test_the_alert_counts_a_call_once_by_its_final_status() -> None:
    text = query(ALERT_QUERY)

    assert '"call_status "' in text
    assert "summarize arg_max(timestamp, severityLevel, itemCount) by CallSid" in text


# --- the workbook and the alert in infra/ --------------------------------------------------------------------------


def loaded_queries(value: Any) -> list[str]:
    """Every file a template value loads with loadTextContent, relative to infra/core."""
    if isinstance(value, dict):
        if value.get("function", {}).get("type") == "load_text_content":
            return [value["function"]["parameters"]["file_path"]]
        return [path for item in value.values() for path in loaded_queries(item)]
    if isinstance(value, list):
        return [path for item in value for path in loaded_queries(item)]
    return []


def test_the_alert_runs_the_alert_query_file() -> None:
    rule = only(OPERATIONS, "Microsoft.Insights/scheduledQueryRules")

    assert loaded_queries(rule) == [f"../queries/{ALERT_QUERY}"]


def test_the_workbook_runs_every_operator_query_file() -> None:
    workbook = only(OPERATIONS, "Microsoft.Insights/workbooks")
    loaded = sorted(loaded_queries(workbook))

    assert loaded == [f"../queries/{name}" for name in QUERY_FILES if name != ALERT_QUERY]
    assert all((INFRA / "core" / path).resolve().is_file() for path in loaded)


def test_the_workbook_asks_for_the_idempotency_key_the_replay_query_reads() -> None:
    data = only(OPERATIONS, "Microsoft.Insights/workbooks")["properties"]["serializedData"]
    (parameter,) = [
        item["content"]["parameters"][0]
        for item in data["function"]["parameters"]["value_to_convert"]["items"]
        if item["type"] == 9
    ]

    assert f"{{{parameter['name']}}}" in query("replay-chain.kql")


def test_the_workbook_and_the_alert_read_the_apps_application_insights() -> None:
    workbook = only(OPERATIONS, "Microsoft.Insights/workbooks")["properties"]
    rule = only(OPERATIONS, "Microsoft.Insights/scheduledQueryRules")["properties"]
    (output,) = [o for n, o in bicep("core/monitoring.bicep")["outputs"].items() if n == "id"]

    assert workbook["sourceId"] == "applicationInsightsId"
    assert rule["scopes"] == ["applicationInsightsId"]
    assert dotted(module_params("operations")["applicationInsightsId"]) == "monitoring.outputs.id"
    assert dotted(output["value"]) == "applicationInsights.id"


def test_the_alert_fires_when_more_than_the_parameters_share_of_an_hours_calls_failed() -> None:
    rule = only(OPERATIONS, "Microsoft.Insights/scheduledQueryRules")["properties"]
    (criterion,) = rule["criteria"]["allOf"]

    assert rule["windowSize"] == "PT1H"
    assert (criterion["timeAggregation"], criterion["operator"]) == ("Maximum", "GreaterThan")
    assert criterion["threshold"] == "callFailureAlertPercent"
    assert module_params("operations")["callFailureAlertPercent"] == "callFailureAlertPercent"


def test_the_failure_share_defaults_to_20_percent_and_azd_can_set_it() -> None:
    assert bicep("main.bicep")["parameters"]["callFailureAlertPercent"]["default"] == 20
    assert (decorator("callFailureAlertPercent", "min_value"), decorator("callFailureAlertPercent", "max_value")) == (
        0,
        99,
    )
    assert parameters_file()["callFailureAlertPercent"] == {"value": "${CALL_FAILURE_ALERT_PERCENT=20}"}


def test_the_alert_is_deployed_with_or_without_an_email() -> None:
    (rule,) = resources(OPERATIONS, "Microsoft.Insights/scheduledQueryRules").values()

    assert condition(rule) is None
    assert condition(bicep("main.bicep")["modules"]["operations"]) is None


def test_the_action_group_is_created_only_when_an_alert_email_is_given() -> None:
    (group,) = resources(OPERATIONS, "Microsoft.Insights/actionGroups").values()

    assert condition(group) == when_given("alertEmail")
    assert module_params("operations")["alertEmail"] == "alertEmail"
    assert bicep("main.bicep")["parameters"]["alertEmail"]["default"] == ""
    assert parameters_file()["alertEmail"] == {"value": "${ALERT_EMAIL}"}


def test_the_action_group_mails_the_alert_email() -> None:
    (group,) = resources(OPERATIONS, "Microsoft.Insights/actionGroups").values()
    (receiver,) = body(group)["properties"]["emailReceivers"]

    assert receiver["emailAddress"] == "alertEmail"
    assert body(group)["properties"]["enabled"] is True


def test_the_alert_notifies_the_action_group_only_when_there_is_one() -> None:
    (name,) = resources(OPERATIONS, "Microsoft.Insights/actionGroups")
    actions = only(OPERATIONS, "Microsoft.Insights/scheduledQueryRules")["properties"]["actions"]["actionGroups"]
    choice = actions["operator"]

    assert choice["type"] == "conditional"
    assert choice["operands"]["condition"] == {
        "function": {"type": "empty", "parameters": {"item_to_test": "alertEmail"}}
    }
    assert choice["operands"]["true_value"] == []
    assert [dotted(value) for value in choice["operands"]["false_value"]] == [f"{name}.id"]


# --- the docs ------------------------------------------------------------------------------------------------------


def test_the_monitoring_page_links_every_query_file() -> None:
    page = MONITORING_PAGE.read_text(encoding="utf-8")
    linked = {(MONITORING_PAGE.parent / target).resolve() for target in re.findall(r"\]\(([^)#]+\.kql)\)", page)}

    assert linked == {(QUERIES / name).resolve() for name in QUERY_FILES}
