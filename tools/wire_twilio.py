"""Point a Twilio number's voice and SMS webhooks at the deployed app.

python -m tools.wire_twilio --number +15017122661 --base-url https://myapp.azurewebsites.net [--dry-run]

It reads the Twilio credentials where the app reads them (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN,
or the Key Vault secrets under KEY_VAULT_URL) and honours TWILIO_API_BASE_URL, so the settings that
run the app also wire its number. The number's status callback is left alone: call_status serves
only the calls make_call places, and those name it themselves.

Right after `azd provision` the deployer's new role on the vault can take minutes to apply, so a Key Vault
403 is retried with backoff for up to --wait-for-access seconds (5 minutes by default).

It refuses what it cannot mean: a --base-url that is not the app's https address (exit 2, naming the URL it
would have wired), and credentials bound for plain http off loopback (exit 1). Every URL it prints, such as
a number's old webhook, has its user info and query values masked.

Exit status: 0 wired (or already), 1 the number, Twilio or the vault failed or a setting was refused, 2 bad
arguments, 3 the secrets do not exist yet (the first `azd up` comes before `az keyvault secret set`).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from shared import hosts, phone_numbers
from shared.credentials import credential_store, load_credentials
from shared.errors import ApiError
from shared.settings import ROUTE_PREFIX, ConfigurationError, get_settings
from tools import urls

if TYPE_CHECKING:
    from twilio.rest import Client

NAME = "wire_twilio"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_CREDENTIALS = 3
# The settings whose URLs get credentials from the tool, and what each gets.
CREDENTIALS_SENT = {
    "TWILIO_API_BASE_URL": "the Twilio account SID and auth token",
    "KEY_VAULT_URL": "your Azure access token",
}
# Twilio ignores the number's own webhook while one of these routes its calls or texts elsewhere.
OVERRIDES = {"voice_application_sid": "voice_url", "trunk_sid": "voice_url", "sms_application_sid": "sms_url"}
KEY_VAULT_HINT = "Run from your machine, the vault is read with your Azure sign-in (az login or azd auth login)."
# A role assignment on the vault takes effect within minutes; waits double from FIRST_WAIT up to LONGEST_WAIT.
WAIT_FOR_ACCESS = 300.0
FIRST_WAIT = 1.0
LONGEST_WAIT = 30.0


@dataclass(frozen=True)
class Change:
    """One of the number's webhook fields: what Twilio has, and what the app needs."""

    field: str
    old: str | None
    new: str

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def __str__(self) -> str:
        if not self.changed:
            return f"{self.field:<13} unchanged ({urls.shown(self.new)})"
        return f"{self.field:<13} {urls.shown(self.old)} → {urls.shown(self.new)}"


def webhooks(base_url: str) -> dict[str, str]:
    """The number's fields that send its calls and texts to the app's voice_url and sms_url."""
    return {
        "voice_url": f"{base_url}/{ROUTE_PREFIX}/voice_url",
        "voice_method": "POST",
        "sms_url": f"{base_url}/{ROUTE_PREFIX}/sms_url",
        "sms_method": "POST",
    }


def read_credentials(wait: float) -> None:
    """Read the Twilio credentials once, waiting out a Key Vault 403 for up to `wait` seconds.

    What is read is handed to the app's credential store, which the Twilio calls then use.
    """
    settings = get_settings()
    deadline = time.monotonic() + wait
    pause = FIRST_WAIT
    while True:
        try:
            credential_store().keep(load_credentials(settings))
        except ApiError as error:
            if _vault_status(error) != 403:
                raise
            if time.monotonic() + pause > deadline:
                raise _still_forbidden(error, wait) from None
            print(
                f"Key Vault refuses to let you read {error.target} yet (a role assigned minutes ago may not have"
                f" applied); trying again in {pause:g} s.",
                flush=True,
            )
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_WAIT)
        else:
            return


def _vault_status(error: ApiError) -> object:
    return (error.inner or {}).get("key_vault_status")


def _still_forbidden(error: ApiError, wait: float) -> ApiError:
    vault_url = get_settings().key_vault_url or ""
    vault = (urlsplit(vault_url).hostname or vault_url).split(".")[0]
    return ApiError(
        error.status,
        "key_vault_forbidden",
        f"Key Vault {urls.shown(vault_url)} still refuses to let you read {error.target} after {wait:g} s."
        f" Your sign-in needs the Key Vault Secrets Officer role on the vault {vault} (azd up grants it to"
        " AZURE_PRINCIPAL_ID), or Key Vault Secrets User to read only; check with"
        " az role assignment list --assignee <your object ID> --all.",
        target=error.target,
    )


def wire(number: str, base_url: str, *, dry_run: bool) -> int:
    """Find the number, print each field old → new, and update only when something changes."""
    from shared.twilio_client import call_twilio

    api_base_url = get_settings().twilio_api_base_url
    if api_base_url:
        print(f"Twilio API: {urls.shown(api_base_url)} (TWILIO_API_BASE_URL)")
    found = call_twilio(lambda client: _find(client, number), outcome=f"whether {number} is on the account")
    if found is None:
        _to_stderr(
            f"{number} is not a phone number of this Twilio account: buy or port it first,"
            " or use the credentials of the (sub)account that owns it."
        )
        return EXIT_FAILED
    changes = [Change(name, getattr(found, name), value) for name, value in webhooks(base_url).items()]
    print(f"{number} ({found.sid}):")
    for change in changes:
        print(f"  {change}")
    _warn_of_overrides(found)
    if not any(change.changed for change in changes):
        print("Already wired; no update sent.")
    elif dry_run:
        print("Dry run; no update sent.")
    else:
        wanted = {change.field: change.new for change in changes}
        call_twilio(
            lambda client: client.incoming_phone_numbers(found.sid).update(**wanted),
            outcome=f"whether the webhooks of {number} changed",
        )
        print("Updated.")
    return 0


def _find(client: Client, number: str) -> Any:
    """Twilio matches PhoneNumber partially (and * as any digit), so only an exact match is the number."""
    from twilio.base.exceptions import TwilioException
    from twilio.base.version import Version
    from twilio.http.response import Response

    try:
        candidates = client.incoming_phone_numbers.list(phone_number=number)
    except TwilioException as error:
        # A page Twilio refused comes as a bare TwilioException holding the answer; raised as twilio
        # raises any other refused request, its status and Twilio's error code reach the caller.
        answer = error.args[1] if len(error.args) > 1 else None
        if not isinstance(answer, Response):
            raise
        raise Version.exception("GET", "IncomingPhoneNumbers.json", answer, "Unable to fetch page") from None
    return next((candidate for candidate in candidates if candidate.phone_number == number), None)


def _warn_of_overrides(number: Any) -> None:
    for attribute, ignored in OVERRIDES.items():
        value = getattr(number, attribute)
        if value:
            _to_stderr(f"warning: Twilio ignores {ignored} while the number's {attribute} is {value}; clear it.")


def phone_number(text: str) -> str:
    try:
        return phone_numbers.normalize(text, "--number")
    except ApiError:
        raise argparse.ArgumentTypeError("must be an E.164 number such as +14155550100") from None


def base_url(text: str) -> str:
    """The app's address, which the webhooks are built on; refused with the voice_url it would have made."""
    url = text.strip().rstrip("/")
    refusal = urls.refusal(url)
    if refusal:
        raise argparse.ArgumentTypeError(f"{refusal}; it would have wired {urls.shown(webhooks(url)['voice_url'])}")
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest}"


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line, not the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{NAME}: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m tools.wire_twilio",
        description="Point a Twilio number's voice and SMS webhooks at the app's voice_url and sms_url.",
    )
    parser.add_argument("--number", required=True, type=phone_number, help="the Twilio number, E.164")
    parser.add_argument(
        "--base-url", required=True, type=base_url, help="the app's address, such as https://myapp.azurewebsites.net"
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would change; send no update")
    parser.add_argument(
        "--wait-for-access",
        type=seconds,
        default=WAIT_FOR_ACCESS,
        metavar="SECONDS",
        help=f"how long to wait out a Key Vault 403, as right after provisioning (default {WAIT_FOR_ACCESS:g})",
    )
    return parser


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:  # an hour is far more than a role takes to apply
        raise argparse.ArgumentTypeError("must be a number of seconds from 0 to 3600")
    return value


def _refuse_plain_http() -> None:
    """Before anything is sent: credentials cross the network only over https, or stay on this machine."""
    settings = get_settings()
    sent_to = {"TWILIO_API_BASE_URL": settings.twilio_api_base_url, "KEY_VAULT_URL": settings.key_vault_url}
    for name, url in sent_to.items():
        parts = urlsplit(url or "")
        if parts.scheme == "http" and not hosts.is_loopback(parts.hostname or ""):
            raise ConfigurationError(
                name,
                f"is {urls.shown(url)}: it must be https, as {CREDENTIALS_SENT[name]} would cross the network"
                " in the clear (http only for a loopback address, such as localhost or 127.0.0.1)",
            )


def _explain(error: ApiError) -> str:
    """The app's message, with where to look when the command runs on a developer's machine."""
    if error.code == "credentials_unavailable" and get_settings().key_vault_url:
        return f"{error.message} {KEY_VAULT_HINT}"
    if error.code == "twilio_auth_failed":
        return f"{error.message} Check the account SID and auth token ({_credential_source()})."
    return error.message


def _not_set(error: ApiError) -> bool:
    """The secrets, or the settings naming the credentials, do not exist yet: nothing to wait for or fix."""
    if error.code != "credentials_unavailable":
        return False
    return _vault_status(error) == 404 if get_settings().key_vault_url else True


def _credential_source() -> str:
    settings = get_settings()
    if settings.key_vault_url:
        return f"secrets {settings.account_sid_secret} and {settings.auth_token_secret} in {settings.key_vault_url}"
    return "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"


def _to_stderr(message: str) -> None:
    print(f"{NAME}: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """The command; failures are one line on stderr, never a traceback or a secret."""
    args = _parser().parse_args(argv)
    try:
        _refuse_plain_http()
        read_credentials(args.wait_for_access)
        return wire(args.number, args.base_url, dry_run=args.dry_run)
    except ApiError as error:
        _to_stderr(_explain(error))
        if _not_set(error):
            return EXIT_NO_CREDENTIALS
    except Exception as error:  # such as an answer that is not Twilio's JSON, from a wrong TWILIO_API_BASE_URL
        api = get_settings().twilio_api_base_url or "https://api.twilio.com"
        _to_stderr(f"unexpected {type(error).__name__} while talking to the Twilio API at {urls.shown(api)}.")
    return EXIT_FAILED


if __name__ == "__main__":
    # Each outcome is printed as one line; the libraries' log records would only repeat it at length.
    logging.disable(logging.CRITICAL)
    sys.exit(main())
