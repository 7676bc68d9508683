#!/bin/sh
# azd runs this after `azd deploy`, with the azd environment's values (the Bicep outputs among them)
# as environment variables. With TWILIO_PHONE_NUMBER set (azd env set TWILIO_PHONE_NUMBER +1...), it
# points that number's voice and SMS webhooks at the app; without it, it prints how to.
# The Twilio credentials come from KEY_VAULT_URL's vault, read as your az (or azd) sign-in, or from
# TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.
set -eu

cd "$(dirname "$0")/../.."

if [ -z "${FUNCTION_APP_URL:-}" ]; then
    echo "postdeploy: FUNCTION_APP_URL is not set; run this hook through azd (azd hooks run postdeploy)." >&2
    exit 1
fi
# VOICE_URL is built on PUBLIC_BASE_URL when one is set (a custom domain, Front Door): the address
# Twilio must use, because the app checks signatures against it.
voice_url=${VOICE_URL:-${FUNCTION_APP_URL%/}/api/voice_url}
base_url=${voice_url%/api/voice_url}

if [ -x .venv/bin/python ]; then
    python=.venv/bin/python
else
    python=python3
fi

if [ -z "${TWILIO_PHONE_NUMBER:-}" ]; then
    echo "Twilio webhooks of the app:"
    echo "  voice_url    $voice_url"
    echo "  sms_url      ${SMS_URL:-$base_url/api/sms_url}"
    echo "  call_status  ${CALL_STATUS_URL:-$base_url/api/call_status}"
    echo "To point your Twilio number's voice and SMS webhooks at them:"
    echo "  azd env set TWILIO_PHONE_NUMBER +1XXXXXXXXXX && azd hooks run postdeploy"
    echo "or run:"
    echo "  ${KEY_VAULT_URL:+KEY_VAULT_URL=$KEY_VAULT_URL }$python -m tools.wire_twilio --number +1XXXXXXXXXX --base-url $base_url"
    exit 0
fi

if ! "$python" -c 'import twilio.rest, azure.identity, azure.keyvault.secrets' 2>/dev/null; then
    # The app is deployed; only the wiring waits for the packages, so the deployment still succeeds.
    echo "postdeploy: $TWILIO_PHONE_NUMBER is not wired yet: $python cannot import the app's packages"
    echo "(twilio, azure-identity, azure-keyvault-secrets). To wire it, run:"
    echo "  python3 -m venv .venv && .venv/bin/python -m pip install -r requirements.txt && azd hooks run postdeploy"
    exit 0
fi

echo "Pointing $TWILIO_PHONE_NUMBER at $base_url"
status=0
"$python" -m tools.wire_twilio --number "$TWILIO_PHONE_NUMBER" --base-url "$base_url" || status=$?
if [ "$status" -eq 3 ]; then
    # The first deployment comes before the secrets are set: the app is up, only the wiring waits.
    echo "postdeploy: the number is not wired yet. Set the Twilio secrets, then run: azd hooks run postdeploy"
    exit 0
fi
exit "$status"
