"""Wiring a Twilio number to the app: the CLI and the azd postdeploy hook.

Prism checks every request against Twilio's own OpenAPI description; it answers from static
examples, so what depends on the account (which numbers it has, what they are set to) is
checked against the stateful Twilio stand-in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from werkzeug.wrappers import Response

from devtools.ports import free_port
from devtools.sandbox.answers import twilio_error
from devtools.sandbox.prism import SPEC, PassThrough, Prism
from testing.process_state import app_environ
from testing.standins import Fault, KeyVaultStandIn, TwilioStandIn
from tests.servers import serving
from tests.support import ACCOUNT_SID, AUTH_TOKEN
from tools.wire_twilio import main

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "infra/hooks/postdeploy.sh"
DEPLOYING = ROOT / "docs/deploying.md"
APP = "https://myapp.azurewebsites.net"
NUMBER = "+15017122661"
CREDENTIALS = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
WIRED = {
    "VoiceUrl": [f"{APP}/api/voice_url"],
    "VoiceMethod": ["POST"],
    "SmsUrl": [f"{APP}/api/sms_url"],
    "SmsMethod": ["POST"],
}


@dataclass(frozen=True)
class Outcome:
    code: int | str | None
    out: str
    err: str


def wire(capsys: pytest.CaptureFixture[str], *args: str) -> Outcome:
    """The CLI in-process; argparse's exits count as exit codes."""
    try:
        code: int | str | None = main(list(args))
    except SystemExit as exited:
        code = exited.code
    out, err = capsys.readouterr()
    return Outcome(code, out, err)


def example_number() -> str:
    """The number in the spec's example answer to the list, which is all Prism knows."""
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    listing = spec["paths"]["/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json"]["get"]
    example = listing["responses"]["200"]["content"]["application/json"]["examples"]["readFull"]["value"]
    number: str = example["incoming_phone_numbers"][0]["phone_number"]
    return number


@pytest.fixture
def sandbox(prism: Prism, env: pytest.MonkeyPatch) -> Iterator[PassThrough]:
    """Prism behind the pass-through, which counts the requests it forwards."""
    pass_through = PassThrough(prism.url)
    with serving(pass_through) as url:
        env.setenv("TWILIO_API_BASE_URL", f"{url}/twilio")
        env.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        env.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        yield pass_through


@pytest.fixture
def number(twilio: TwilioStandIn) -> dict[str, Any]:
    return twilio.add_number(NUMBER)


# --- Twilio's contract, checked by Prism -----------------------------------------------------------------------------


@pytest.mark.processes
def test_prism_accepts_the_lookup_and_the_update(sandbox: PassThrough, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = wire(capsys, "--number", example_number(), "--base-url", APP)

    assert (outcome.code, outcome.err) == (0, "")
    assert outcome.out.endswith("Updated.\n")
    assert sandbox.forwarded == 2


@pytest.mark.processes
def test_prism_refuses_an_account_sid_twilio_would_refuse(
    sandbox: PassThrough, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("TWILIO_ACCOUNT_SID", "AC-not-an-account-sid")
    outcome = wire(capsys, "--number", example_number(), "--base-url", APP)

    assert outcome.code == 1
    assert outcome.err.startswith("wire_twilio: Twilio refused the request")
    assert outcome.err.count("\n") == 1


@pytest.mark.processes
def test_the_cli_wires_a_number_as_a_subprocess(sandbox: PassThrough) -> None:
    environ = app_environ({"TWILIO_API_BASE_URL": os.environ["TWILIO_API_BASE_URL"], **CREDENTIALS})
    done = subprocess.run(
        [sys.executable, "-m", "tools.wire_twilio", "--number", example_number(), "--base-url", APP],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (done.returncode, done.stderr) == (0, "")
    assert f"voice_url     (none) → {APP}/api/voice_url" in done.stdout
    assert sandbox.forwarded == 2


# --- what the tool asks of the account, checked against the stateful stand-in ----------------------------------------


def test_wire_twilio_looks_the_number_up_by_phone_number(
    twilio: TwilioStandIn, number: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    wire(capsys, "--number", NUMBER, "--base-url", APP)

    lookup = twilio.received[0]
    assert (lookup.method, lookup.path) == ("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers.json")
    assert lookup.query["PhoneNumber"] == [NUMBER]


def test_wire_twilio_points_voice_and_sms_at_the_app_with_post(
    twilio: TwilioStandIn, number: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 0
    (update,) = twilio.number_updates()
    assert update.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers/{number['sid']}.json"
    assert update.form == WIRED


def test_wire_twilio_leaves_the_status_callback_alone(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    number = twilio.add_number(NUMBER, status_callback="https://example.com/status", status_callback_method="GET")
    wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert (number["status_callback"], number["status_callback_method"]) == ("https://example.com/status", "GET")


def test_wire_twilio_prints_each_field_old_and_new(twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str]) -> None:
    twilio.add_number(NUMBER, voice_url="https://old.example.com/voice", voice_method="GET")
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.out.splitlines()[2:] == [
        f"  voice_url     https://old.example.com/voice → {APP}/api/voice_url",
        "  voice_method  GET → POST",
        f"  sms_url       (none) → {APP}/api/sms_url",
        "  sms_method    unchanged (POST)",
        "Updated.",
    ]


def test_wire_twilio_dry_run_sends_no_update(
    twilio: TwilioStandIn, number: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP, "--dry-run")

    assert outcome.code == 0
    assert f"voice_url     (none) → {APP}/api/voice_url" in outcome.out
    assert outcome.out.endswith("Dry run; no update sent.\n")
    assert twilio.number_updates() == []
    assert number["voice_url"] is None


def test_wire_twilio_sends_no_update_when_already_wired(
    twilio: TwilioStandIn, number: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    wire(capsys, "--number", NUMBER, "--base-url", APP)
    again = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert again.code == 0
    assert again.out.endswith("Already wired; no update sent.\n")
    assert len(twilio.number_updates()) == 1


def test_wire_twilio_refuses_number_not_on_account(twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str]) -> None:
    twilio.add_number("+14155550100")
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 1
    assert outcome.err == (
        f"wire_twilio: {NUMBER} is not a phone number of this Twilio account: buy or port it first,"
        " or use the credentials of the (sub)account that owns it.\n"
    )
    assert twilio.number_updates() == []


def test_wire_twilio_refuses_a_number_twilio_only_partly_matches(
    twilio: TwilioStandIn, number: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = wire(capsys, "--number", NUMBER[:-1], "--base-url", APP)

    assert outcome.code == 1
    assert "is not a phone number of this Twilio account" in outcome.err
    assert twilio.number_updates() == []


@pytest.mark.parametrize(
    ("given", "base"),
    [
        (f"{APP}/", APP),
        (f" {APP}//", APP),
        ("https://example.com/prefix/", "https://example.com/prefix"),
        ("http://127.0.0.1:7071", "http://127.0.0.1:7071"),
        ("http://localhost:7071/", "http://localhost:7071"),
        ("http://[::1]:7071", "http://[::1]:7071"),
        ("http://127.0.0.2:7071", "http://127.0.0.2:7071"),
        ("https://xn--pple-43d.com", "https://xn--pple-43d.com"),
        ("https://1.2.3.4:8443/x.y~z", "https://1.2.3.4:8443/x.y~z"),
    ],
)
def test_wire_twilio_builds_the_webhooks_on_the_base_url(
    twilio: TwilioStandIn, number: dict[str, Any], capsys: pytest.CaptureFixture[str], given: str, base: str
) -> None:
    wire(capsys, "--number", NUMBER, "--base-url", given)

    (update,) = twilio.number_updates()
    assert (update.field("VoiceUrl"), update.field("SmsUrl")) == (f"{base}/api/voice_url", f"{base}/api/sms_url")


@pytest.mark.parametrize("given", ["15017122661", "+1 (501) CALL-NOW", "+0123456", ""])
def test_wire_twilio_rejects_a_number_that_is_not_e164(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    outcome = wire(capsys, "--number", given, "--base-url", APP)

    assert outcome.code == 2
    assert outcome.err == (
        "wire_twilio: argument --number: must be an E.164 number such as +14155550100 (see --help)\n"
    )
    assert twilio.received == []


def refusal(twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str], given: str) -> str:
    """Why --base-url `given` was refused: it exits 2, as any bad argument, on one line, before asking Twilio."""
    outcome = wire(capsys, "--number", NUMBER, "--base-url", given)

    assert outcome.code == 2
    assert twilio.received == []
    line = re.fullmatch(r"wire_twilio: argument --base-url: (.*) \(see --help\)\n", outcome.err)
    assert line is not None, outcome.err
    return line.group(1)


@pytest.mark.parametrize(
    ("given", "wired"),
    [
        (f"{APP}/api/voice_url", f"{APP}/api/voice_url/api/voice_url"),
        (f"{APP}/api/", f"{APP}/api/api/voice_url"),
        (f"{APP}/API/sms_url", f"{APP}/API/sms_url/api/voice_url"),
        ("https://example.com/prefix/api/voice_url", "https://example.com/prefix/api/voice_url/api/voice_url"),
    ],
)
def test_wire_twilio_refuses_a_base_url_that_is_a_route_of_the_app(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str], given: str, wired: str
) -> None:
    assert refusal(twilio, capsys, given) == (
        "must be the app's address, not one of its routes: the webhooks add /api/voice_url and /api/sms_url to it;"
        f" it would have wired {wired}"
    )


@pytest.mark.parametrize(
    "given",
    [
        "https://-_-",
        "https://host\\evil.com",
        "https://my app.azurewebsites.net",
        "https://myapp.azurewebsites.net.",
        "https://myapp.azurewebsites.net:0",
        "https://myapp.azurewebsites.net:65536",
        "https://myapp.azurewebsites.net:https",
        "https://[::1%25eth0]",
    ],
)
def test_wire_twilio_refuses_a_base_url_without_a_valid_host_and_port(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    assert refusal(twilio, capsys, given) == (
        "must have a valid host name, IPv4 or [IPv6] address, and port from 1 to 65535 if any;"
        f" it would have wired {given.replace(' ', '%20')}/api/voice_url"
    )


@pytest.mark.parametrize("given", ["https://0x7f.1", "https://2130706433", "https://999.1.1.1", "https://10.0.0.01"])
def test_wire_twilio_refuses_a_host_ending_in_a_number_that_is_not_an_ipv4_address(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    """A browser reads 0x7f.1 and 2130706433 as 127.0.0.1; what Twilio would make of them is anyone's guess."""
    assert refusal(twilio, capsys, given).startswith("must have a valid host name, IPv4 or [IPv6] address")


@pytest.mark.parametrize(
    ("given", "idna"),
    [
        ("https://\N{CYRILLIC SMALL LETTER A}pple.com", "xn--pple-43d.com"),
        ("https://\N{FULLWIDTH LATIN SMALL LETTER M}yapp.azurewebsites.net", "myapp.azurewebsites.net"),
    ],
)
def test_wire_twilio_refuses_a_host_beyond_ascii_and_names_its_idna_form(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str], given: str, idna: str
) -> None:
    """Each looks like a host it is not; its IDNA form shows which host it is, and is taken when given."""
    refused = refusal(twilio, capsys, given)

    assert refused.startswith(f"must give a host beyond ASCII in its IDNA form, {idna}, which shows the host it")
    assert refused.isascii()


@pytest.mark.parametrize(
    "given", ["https://xn--a.com", "https://xn--abc-.com", "https://bad_host.\N{LATIN SMALL LETTER A WITH DIAERESIS}"]
)
def test_wire_twilio_refuses_a_host_that_is_not_valid_idna(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    assert refusal(twilio, capsys, given).startswith("must have a valid host name")


@pytest.mark.parametrize(
    "given", ["http://myapp.azurewebsites.net", "http://0.0.0.0:7071", "http://localhost.example.com", "http://[::2]"]
)
def test_wire_twilio_refuses_a_plain_http_base_url_off_loopback(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    assert refusal(twilio, capsys, given) == (
        "must be https (http only for a loopback address, such as localhost or 127.0.0.1);"
        f" it would have wired {given}/api/voice_url"
    )


@pytest.mark.parametrize(
    "given",
    [
        f"{APP}/a//b",
        f"{APP}/../b",
        f"{APP}/./b",
        f"{APP}/%61pi",
        f"{APP}/a;b",
        f"{APP}/caf\N{LATIN SMALL LETTER E WITH ACUTE}",
    ],
)
def test_wire_twilio_refuses_a_base_url_whose_path_is_not_plain_segments(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    """The app checks signatures against the URL it builds; a path a client may rewrite would fail every one."""
    assert refusal(twilio, capsys, given).startswith("must have a path of plain segments")


@pytest.mark.parametrize(
    "given", ["myapp.azurewebsites.net", "ftp://myapp.azurewebsites.net", "https:myapp", "https://", ""]
)
def test_wire_twilio_refuses_a_base_url_that_is_not_absolute_http(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    assert refusal(twilio, capsys, given).startswith(
        "must be an absolute https URL such as https://myapp.azurewebsites.net; it would have wired"
    )


@pytest.mark.parametrize(
    ("given", "wired"),
    [
        (f"{APP}/?code=s3cret", f"{APP}/?code=***"),
        (f"{APP}/api/voice_url?code=s3cret", f"{APP}/api/voice_url?code=***"),
        (f"{APP}#s3cret", f"{APP}#***"),
    ],
)
def test_wire_twilio_refuses_a_base_url_with_a_query_or_fragment_and_masks_it(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str], given: str, wired: str
) -> None:
    """A function URL copied from the portal carries its key as ?code=."""
    refused = refusal(twilio, capsys, given)

    assert refused.endswith(f"; it would have wired {wired}")
    assert "s3cret" not in refused


def test_wire_twilio_refuses_a_base_url_with_credentials_and_masks_them(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert refusal(twilio, capsys, "https://user:hunter2@myapp.azurewebsites.net") == (
        "must not carry credentials; it would have wired https://***@myapp.azurewebsites.net/api/voice_url"
    )


def test_wire_twilio_masks_the_query_token_of_an_old_webhook_url(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    twilio.add_number(
        NUMBER, voice_url="https://old.example.com/voice?token=s3cret", sms_url="https://old.example.com/sms?s3cret"
    )
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 0
    assert f"voice_url     https://old.example.com/voice?token=*** → {APP}/api/voice_url" in outcome.out
    assert f"sms_url       https://old.example.com/sms?*** → {APP}/api/sms_url" in outcome.out
    assert "s3cret" not in outcome.out + outcome.err


def test_wire_twilio_masks_the_user_info_of_an_old_webhook_url(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    twilio.add_number(NUMBER, voice_url="https://twilio:hunter2@old.example.com/voice")
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert f"voice_url     https://***@old.example.com/voice → {APP}/api/voice_url" in outcome.out
    assert "hunter2" not in outcome.out + outcome.err


def test_wire_twilio_percent_encodes_control_characters_in_an_old_webhook_url(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    """A value stored on the account must not retitle or recolour the terminal it is printed on."""
    twilio.add_number(NUMBER, voice_url="https://old.example.com/\x1b]0;owned\x07")
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert f"voice_url     https://old.example.com/%1B]0;owned%07 → {APP}/api/voice_url" in outcome.out


@pytest.mark.parametrize(
    ("override", "ignored"),
    [("voice_application_sid", "voice_url"), ("trunk_sid", "voice_url"), ("sms_application_sid", "sms_url")],
)
def test_wire_twilio_warns_when_something_else_takes_the_number_calls_or_texts(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str], override: str, ignored: str
) -> None:
    twilio.add_number(NUMBER, **{override: "AP" + "1" * 32})
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 0
    assert outcome.err == (
        f"wire_twilio: warning: Twilio ignores {ignored} while the number's {override} is AP{'1' * 32}; clear it.\n"
    )


# --- failures: one line on stderr, exit 1, no traceback --------------------------------------------------------------


def test_wire_twilio_explains_a_rejected_token(
    twilio: TwilioStandIn, number: dict[str, Any], env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("TWILIO_AUTH_TOKEN", "a-rotated-token")
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 1
    assert outcome.err == (
        "wire_twilio: Twilio rejected the account credentials."
        " Check the account SID and auth token (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN).\n"
    )


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault(404, twilio_error(20404, "The requested resource was not found", 404)), "Twilio refused the request"),
        (Fault(500), "Twilio answered 500"),
        (Fault(503), "Twilio answered 503"),
        (Fault(drop=True), "The connection to Twilio failed"),
    ],
)
def test_wire_twilio_explains_a_failed_lookup(
    twilio: TwilioStandIn, number: dict[str, Any], capsys: pytest.CaptureFixture[str], fault: Fault, message: str
) -> None:
    twilio.fail_next(fault)
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 1
    assert outcome.err.startswith(f"wire_twilio: {message}")
    assert outcome.err.count("\n") == 1
    assert twilio.number_updates() == []


def test_wire_twilio_says_a_failed_update_may_have_happened(
    twilio: TwilioStandIn, number: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    twilio.fail_next(Fault(), Fault(502))
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 1
    assert outcome.err == (
        f"wire_twilio: Twilio answered 502; whether the webhooks of {NUMBER} changed is unknown,"
        " check before retrying.\n"
    )


def test_wire_twilio_explains_an_unreachable_twilio(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("TWILIO_API_BASE_URL", f"http://127.0.0.1:{free_port()}")
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 1
    assert outcome.err == "wire_twilio: Twilio could not be reached; nothing was sent.\n"


def test_wire_twilio_explains_an_answer_that_is_not_twilio(
    credentials_in_env: None, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with serving(Response("<html>Welcome</html>", mimetype="text/html")) as url:
        env.setenv("TWILIO_API_BASE_URL", url)
        outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 1
    assert outcome.err == f"wire_twilio: unexpected JSONDecodeError while talking to the Twilio API at {url}.\n"


def test_wire_twilio_says_which_credentials_are_missing(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 3
    assert outcome.err == (
        "wire_twilio: Twilio credentials are not configured:"
        " set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or KEY_VAULT_URL.\n"
    )


@pytest.mark.parametrize(
    "scenario",
    ["wired", "dry run", "not on the account", "token rejected", "twilio failing", "twilio unreachable"],
)
def test_wire_twilio_never_prints_the_credentials(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], scenario: str
) -> None:
    twilio.add_number(NUMBER)
    args = ["--number", NUMBER if scenario != "not on the account" else "+14155550100", "--base-url", APP]
    if scenario == "dry run":
        args.append("--dry-run")
    if scenario == "token rejected":
        twilio.auth_token = "the-token-twilio-has-now"
    if scenario == "twilio failing":
        twilio.fail_next(Fault(), Fault(500, twilio_error(20500, f"Internal error for {ACCOUNT_SID}", 500)))
    if scenario == "twilio unreachable":
        env.setenv("TWILIO_API_BASE_URL", f"http://127.0.0.1:{free_port()}")
    outcome = wire(capsys, *args)

    assert AUTH_TOKEN not in outcome.out + outcome.err
    assert ACCOUNT_SID not in outcome.out + outcome.err


def test_wire_twilio_refuses_to_send_the_twilio_credentials_over_plain_http_off_loopback(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """0.0.0.0 is no loopback address, yet reaches the stand-in: sent, the credentials would arrive there."""
    off_loopback = twilio.url.replace("127.0.0.1", "0.0.0.0")  # noqa: S104 - a URL to connect to, not a bind
    env.setenv("TWILIO_API_BASE_URL", off_loopback)
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 1
    assert outcome.err == (
        f"wire_twilio: Setting TWILIO_API_BASE_URL is {off_loopback}: it must be https, as the Twilio account SID"
        " and auth token would cross the network in the clear (http only for a loopback address, such as"
        " localhost or 127.0.0.1).\n"
    )
    assert twilio.received == []


def test_wire_twilio_sends_credentials_over_plain_http_to_localhost(
    twilio: TwilioStandIn, number: dict[str, Any], env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("TWILIO_API_BASE_URL", twilio.url.replace("127.0.0.1", "localhost"))
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert (outcome.code, outcome.err) == (0, "")
    assert len(twilio.number_updates()) == 1


# --- credentials from Key Vault, read as the app reads them ----------------------------------------------------------


def test_wire_twilio_refuses_to_send_an_azure_token_over_plain_http_to_a_vault_off_loopback(
    twilio: TwilioStandIn, vault: KeyVaultStandIn, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    off_loopback = vault.url.replace("https://127.0.0.1", "http://0.0.0.0")
    env.setenv("KEY_VAULT_URL", off_loopback)
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 1
    assert outcome.err.startswith(
        f"wire_twilio: Setting KEY_VAULT_URL is {off_loopback}: it must be https, as your Azure access token"
    )
    assert vault.fetches == {}
    assert twilio.received == []


def test_wire_twilio_reads_the_credentials_from_key_vault(
    twilio: TwilioStandIn,
    number: dict[str, Any],
    vault: KeyVaultStandIn,
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in CREDENTIALS:
        env.delenv(name)
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 0
    assert vault.fetches == {"twilio-account-sid": 1, "twilio-auth-token": 1}
    assert len(twilio.number_updates()) == 1


def test_wire_twilio_reads_the_secrets_the_app_is_told_to_read(
    twilio: TwilioStandIn,
    number: dict[str, Any],
    vault: KeyVaultStandIn,
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    vault.secrets = {"prod-sid": ACCOUNT_SID, "prod-token": AUTH_TOKEN}
    env.setenv("TWILIO_ACCOUNT_SID_SECRET", "prod-sid")
    env.setenv("TWILIO_AUTH_TOKEN_SECRET", "prod-token")
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 0
    assert vault.fetches == {"prod-sid": 1, "prod-token": 1}


def test_wire_twilio_says_which_vault_secret_it_could_not_read(
    twilio: TwilioStandIn, vault: KeyVaultStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    del vault.secrets["twilio-auth-token"]
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 3
    assert outcome.err == (
        f"wire_twilio: Key Vault {vault.url} has no secret named 'twilio-auth-token'."
        " Run from your machine, the vault is read with your Azure sign-in (az login or azd auth login).\n"
    )
    assert twilio.received == []


def test_wire_twilio_names_the_vault_secrets_when_twilio_rejects_them(
    twilio: TwilioStandIn, number: dict[str, Any], vault: KeyVaultStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    vault.secrets["twilio-auth-token"] = "a-rotated-token"
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 1
    assert outcome.err == (
        "wire_twilio: Twilio rejected the account credentials. Check the account SID and auth token"
        f" (secrets twilio-account-sid and twilio-auth-token in {vault.url}).\n"
    )


FORBIDDEN = Fault(status=403, body={"error": {"code": "Forbidden", "message": "Caller is not authorized"}})
# Each read of the credentials asks for both secrets; the vault refuses both, twice, then answers.
FORBIDDEN_TWICE = [FORBIDDEN] * 4


def test_wire_twilio_waits_for_key_vault_access_granted_moments_ago(
    twilio: TwilioStandIn, number: dict[str, Any], vault: KeyVaultStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    vault.fail_next(*FORBIDDEN_TWICE)
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert (outcome.code, outcome.err) == (0, "")
    waits = [line for line in outcome.out.splitlines() if line.startswith("Key Vault")]
    assert waits == [
        "Key Vault refuses to let you read twilio-account-sid yet (a role assigned minutes ago may not have"
        f" applied); trying again in {pause} s."
        for pause in (1, 2)
    ]
    # Two refused reads of each secret, then one whose answer the Twilio calls use: none read it again.
    assert vault.fetches == {"twilio-account-sid": 3, "twilio-auth-token": 3}
    assert len(twilio.number_updates()) == 1


def test_wire_twilio_gives_up_on_key_vault_access_naming_the_role_and_the_vault(
    twilio: TwilioStandIn, number: dict[str, Any], vault: KeyVaultStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    vault.fail_next(FORBIDDEN, FORBIDDEN)
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP, "--wait-for-access", "0")

    assert outcome.code == 1
    assert outcome.err == (
        f"wire_twilio: Key Vault {vault.url} still refuses to let you read twilio-account-sid after 0 s."
        " Your sign-in needs the Key Vault Secrets Officer role on the vault 127 (azd up grants it to"
        " AZURE_PRINCIPAL_ID), or Key Vault Secrets User to read only; check with"
        " az role assignment list --assignee <your object ID> --all.\n"
    )
    assert twilio.received == []


@pytest.mark.parametrize("fault", [Fault(status=500), Fault(drop=True)], ids=["500", "dropped"])
def test_wire_twilio_fails_at_once_when_the_vault_fails_otherwise(
    twilio: TwilioStandIn, vault: KeyVaultStandIn, capsys: pytest.CaptureFixture[str], fault: Fault
) -> None:
    vault.fail_next(*[fault] * 10)  # the SDK's own retries of a vault that stays down
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.code == 1
    assert "trying again" not in outcome.out
    assert outcome.err.startswith(f"wire_twilio: Key Vault {vault.url} could not be")


def test_wire_twilio_refuses_a_wait_that_is_not_a_number_of_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP, "--wait-for-access", "soon")

    assert outcome.code == 2
    assert outcome.err == (
        "wire_twilio: argument --wait-for-access: must be a number of seconds from 0 to 3600 (see --help)\n"
    )


# --- the azd postdeploy hook -----------------------------------------------------------------------------------------


def run_hook(environ: Mapping[str, str], hook: Path = HOOK) -> subprocess.CompletedProcess[str]:
    """The hook as azd runs it: sh, the azd environment's values as variables, from anywhere."""
    sh = shutil.which("sh")
    assert sh is not None
    return subprocess.run(
        [sh, str(hook)],
        cwd=hook.parent,
        env=app_environ(environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


BICEP_OUTPUTS = {
    "FUNCTION_APP_URL": APP,
    "VOICE_URL": f"{APP}/api/voice_url",
    "SMS_URL": f"{APP}/api/sms_url",
    "CALL_STATUS_URL": f"{APP}/api/call_status",
    "KEY_VAULT_URL": "https://myvault.vault.azure.net/",
}


@pytest.mark.processes
def test_postdeploy_without_a_number_prints_the_webhook_urls_and_the_command() -> None:
    done = run_hook(BICEP_OUTPUTS)

    assert (done.returncode, done.stderr) == (0, "")
    for name in ("VOICE_URL", "SMS_URL", "CALL_STATUS_URL"):
        assert BICEP_OUTPUTS[name] in done.stdout
    assert (
        "KEY_VAULT_URL=https://myvault.vault.azure.net/ .venv/bin/python -m tools.wire_twilio"
        f" --number +1XXXXXXXXXX --base-url {APP}"
    ) in done.stdout


def hook_environ(twilio: TwilioStandIn, **values: str) -> dict[str, str]:
    """The azd environment of a deployment that wires NUMBER, with the stand-in as Twilio."""
    return {**BICEP_OUTPUTS, "TWILIO_PHONE_NUMBER": NUMBER, "TWILIO_API_BASE_URL": twilio.url, **values}


@pytest.mark.processes
def test_postdeploy_with_a_number_wires_it_with_the_vault_credentials(
    twilio: TwilioStandIn, number: dict[str, Any], vault: KeyVaultStandIn
) -> None:
    done = run_hook(hook_environ(twilio, **vault.environ()))

    assert done.returncode == 0, done.stderr
    assert vault.fetches == {"twilio-account-sid": 1, "twilio-auth-token": 1}
    (update,) = twilio.number_updates()
    assert update.form == WIRED


@pytest.mark.processes
def test_postdeploy_wires_the_public_base_url_the_webhook_urls_are_built_on(
    twilio: TwilioStandIn, number: dict[str, Any]
) -> None:
    public = "https://voice.example.com"
    done = run_hook(hook_environ(twilio, VOICE_URL=f"{public}/api/voice_url", KEY_VAULT_URL="", **CREDENTIALS))

    assert done.returncode == 0, done.stderr
    (update,) = twilio.number_updates()
    assert (update.field("VoiceUrl"), update.field("SmsUrl")) == (f"{public}/api/voice_url", f"{public}/api/sms_url")


@pytest.mark.processes
def test_postdeploy_fails_when_the_number_cannot_be_wired(twilio: TwilioStandIn) -> None:
    done = run_hook(hook_environ(twilio, KEY_VAULT_URL="", **CREDENTIALS))

    assert done.returncode == 1
    assert done.stderr == (
        f"wire_twilio: {NUMBER} is not a phone number of this Twilio account: buy or port it first,"
        " or use the credentials of the (sub)account that owns it.\n"
    )


@pytest.mark.processes
def test_postdeploy_before_the_secrets_are_set_succeeds_and_says_what_to_do(
    twilio: TwilioStandIn, number: dict[str, Any], vault: KeyVaultStandIn
) -> None:
    vault.secrets.clear()
    done = run_hook(hook_environ(twilio, **vault.environ()))

    assert done.returncode == 0, done.stderr
    assert "Set the Twilio secrets, then run: azd hooks run postdeploy" in done.stdout
    assert twilio.received == []


@pytest.mark.processes
def test_postdeploy_waits_for_key_vault_access_then_wires_the_number(
    twilio: TwilioStandIn, number: dict[str, Any], vault: KeyVaultStandIn
) -> None:
    vault.fail_next(*FORBIDDEN_TWICE)
    done = run_hook(hook_environ(twilio, **vault.environ()))

    assert done.returncode == 0, done.stderr
    assert done.stdout.count("trying again") == 2
    assert done.stdout.endswith("Updated.\n")
    (update,) = twilio.number_updates()
    assert update.form == WIRED


@pytest.mark.processes
def test_postdeploy_without_the_python_packages_succeeds_and_prints_the_command_that_wires_later(
    tmp_path: Path,
) -> None:
    hook = tmp_path / "infra/hooks/postdeploy.sh"  # a checkout without .venv
    hook.parent.mkdir(parents=True)
    shutil.copy(HOOK, hook)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python3 = bin_dir / "python3"  # a python3 that imports nothing
    python3.write_text("#!/bin/sh\nexit 1\n")
    python3.chmod(0o755)
    done = run_hook({**BICEP_OUTPUTS, "TWILIO_PHONE_NUMBER": NUMBER, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, hook)

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[-1] == (
        "  python3 -m venv .venv && .venv/bin/python -m pip install -r requirements.txt && azd hooks run postdeploy"
    )
    assert f"{NUMBER} is not wired yet" in done.stdout


@pytest.mark.processes
def test_postdeploy_needs_the_function_app_url() -> None:
    done = run_hook({"TWILIO_PHONE_NUMBER": NUMBER})

    assert done.returncode == 1
    assert "FUNCTION_APP_URL is not set" in done.stderr


# --- what docs/deploying.md says of it -------------------------------------------------------------------------------


def documented(text: str) -> bool:
    """Whether the page says `text`, however its lines are wrapped."""
    return " ".join(text.split()) in " ".join(DEPLOYING.read_text(encoding="utf-8").split())


def test_deploying_page_shows_a_refused_route_as_the_tool_refuses_it(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = wire(capsys, "--number", NUMBER, "--base-url", f"{APP}/api/voice_url")

    assert documented(
        f"Anything else exits {outcome.code}, naming the URL it would have wired: ```text {outcome.err} ```"
    )


def test_deploying_page_names_the_idna_form_the_tool_names(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    host = "\N{CYRILLIC SMALL LETTER A}pple.com"
    outcome = wire(capsys, "--number", NUMBER, "--base-url", f"https://{host}")
    named = re.search(r"in its IDNA form, ([^,]+),", outcome.err)

    assert named is not None, outcome.err
    assert documented(f"(`{host}`, whose first letter is Cyrillic, is `{named.group(1)}`)")


def test_deploying_page_shows_an_old_webhook_url_masked_as_the_tool_prints_it(
    twilio: TwilioStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    twilio.add_number(NUMBER, voice_url="https://twilio:hunter2@old.example.com/voice?token=s3cret")
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)
    shown = re.search(r"voice_url +(\S+) →", outcome.out)

    assert shown is not None, outcome.out
    assert documented(
        "has its user info and query values masked, so an old webhook's token stays out of the terminal and the"
        f" deployment log: `{shown.group(1)}`"
    )


@pytest.mark.parametrize("setting", ["TWILIO_API_BASE_URL", "KEY_VAULT_URL"])
def test_deploying_page_gives_the_exit_status_of_credentials_refused_over_plain_http(
    twilio: TwilioStandIn, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], setting: str
) -> None:
    env.setenv(setting, "http://twilio.example.com")
    outcome = wire(capsys, "--number", NUMBER, "--base-url", APP)

    assert outcome.err.startswith(f"wire_twilio: Setting {setting} is http://twilio.example.com: it must be https")
    assert documented(f"that is http to any other host exits {outcome.code} before either is sent.")
