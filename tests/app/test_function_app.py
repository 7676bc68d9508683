"""The app as the Python worker indexes it: names, routes, methods, auth levels, the timer's schedule, and a
light import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import azure.functions as func
import pytest
from azure.functions.decorators.http import HttpTrigger
from azure.functions.decorators.timer import TimerTrigger

import function_app
from devtools.functions import indexed, route_prefix
from devtools.timers import next_occurrence
from shared.settings import ROUTE_PREFIX

ROOT = Path(__file__).resolve().parents[2]


def _indexed() -> dict[str, tuple[str, list[str], str]]:
    found = {}
    for function in indexed(function_app.app):
        trigger = function.get_trigger()
        if not isinstance(trigger, HttpTrigger):
            continue
        bindings = json.loads(function.get_function_json())["bindings"]
        assert {b["type"] for b in bindings} == {"httpTrigger", "http"}
        assert trigger.name == "req"
        methods = sorted(str(m.value) for m in trigger.methods or ())
        level = trigger.auth_level
        assert level is not None
        found[str(function.get_function_name())] = (str(trigger.route), methods, str(level.value))
    return found


def test_functions_are_indexed_with_their_routes_methods_and_auth_levels() -> None:
    assert _indexed() == {
        "make_call": ("make_call", ["GET", "POST"], func.AuthLevel.FUNCTION.value),
        "voice_url": ("voice_url", ["GET", "POST"], func.AuthLevel.ANONYMOUS.value),
        "sms_url": ("sms_url", ["GET", "POST"], func.AuthLevel.ANONYMOUS.value),
        "send_sms": ("send_sms", ["POST"], func.AuthLevel.FUNCTION.value),
        "call_status": ("call_status", ["POST"], func.AuthLevel.ANONYMOUS.value),
        "message_status": ("message_status", ["POST"], func.AuthLevel.ANONYMOUS.value),
        "call_outcome": ("calls/{sid}", ["GET"], func.AuthLevel.FUNCTION.value),
        "message_outcome": ("messages/{sid}", ["GET"], func.AuthLevel.FUNCTION.value),
    }


def test_sweep_state_is_indexed_as_a_timer_trigger_on_its_daily_schedule() -> None:
    (function,) = [f for f in indexed(function_app.app) if not isinstance(f.get_trigger(), HttpTrigger)]
    (binding,) = json.loads(function.get_function_json())["bindings"]
    first = next_occurrence(binding["schedule"], datetime(2031, 5, 17, tzinfo=UTC))

    assert (function.get_function_name(), type(function.get_trigger())) == ("sweep_state", TimerTrigger)
    assert binding == {
        "direction": "IN",
        "type": "timerTrigger",
        "name": "timer",
        "schedule": "0 30 3 * * *",
        "runOnStartup": False,
        "useMonitor": True,
    }
    assert next_occurrence(binding["schedule"], first) - first == timedelta(days=1)


def test_route_prefix_in_host_json_matches_the_links_the_app_builds() -> None:
    assert route_prefix() == ROUTE_PREFIX == "api"


def test_host_json_uses_the_v4_extension_bundle() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}


def _import_in_fresh_interpreter(environ: dict[str, str]) -> list[str]:
    code = (
        "import sys, function_app\n"
        "heavy = ('twilio.rest', 'azure.identity', 'azure.keyvault', 'azure.data.tables', 'requests', 'phonenumbers')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(result.stdout.strip().replace("'", '"'))
    return loaded


@pytest.mark.processes
def test_import_needs_no_setting_and_loads_no_heavy_sdk() -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "KEY_VAULT"))}
    assert _import_in_fresh_interpreter(environ) == []


@pytest.mark.processes
def test_import_loads_no_phone_metadata_for_a_list_of_prefixes() -> None:
    assert _import_in_fresh_interpreter({**os.environ, "ALLOWED_DESTINATIONS": "+1,+44"}) == []


@pytest.mark.processes
def test_import_survives_a_broken_setting() -> None:
    environ = {**os.environ, "TWILIO_HTTP_TIMEOUT": "soon", "PUBLIC_BASE_URL": "not a url"}
    assert _import_in_fresh_interpreter(environ) == []
