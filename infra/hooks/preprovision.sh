#!/bin/sh
# azd runs this before `azd provision`, with the azd environment's values as environment variables. It
# refuses, before anything is created, the scale settings that Flex Consumption would refuse mid-deployment
# and that a Bicep parameter cannot check alone. Unset values take main.parameters.json's defaults.
set -eu

maximum=${MAXIMUM_INSTANCE_COUNT:-100}
always_ready=${ALWAYS_READY_INSTANCE_COUNT:-0}

case "$maximum" in '' | *[!0-9]*)
    echo "preprovision: MAXIMUM_INSTANCE_COUNT must be a whole number, not '$maximum'." >&2
    exit 1 ;;
esac
case "$always_ready" in '' | *[!0-9]*)
    echo "preprovision: ALWAYS_READY_INSTANCE_COUNT must be a whole number, not '$always_ready'." >&2
    exit 1 ;;
esac
if [ "$always_ready" -gt "$maximum" ]; then
    echo "preprovision: ALWAYS_READY_INSTANCE_COUNT ($always_ready) is more than MAXIMUM_INSTANCE_COUNT ($maximum);" \
        "Flex Consumption refuses more always-ready instances than the app may have. Lower one, or raise the other:" >&2
    echo "  azd env set ALWAYS_READY_INSTANCE_COUNT $maximum" >&2
    exit 1
fi
