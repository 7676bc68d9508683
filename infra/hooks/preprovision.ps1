# azd runs this before `azd provision`, with the azd environment's values as environment variables. It
# refuses, before anything is created, the scale settings that Flex Consumption would refuse mid-deployment
# and that a Bicep parameter cannot check alone. Unset values take main.parameters.json's defaults. The
# same steps as preprovision.sh.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$maximum = if ($env:MAXIMUM_INSTANCE_COUNT) { $env:MAXIMUM_INSTANCE_COUNT } else { '100' }
$alwaysReady = if ($env:ALWAYS_READY_INSTANCE_COUNT) { $env:ALWAYS_READY_INSTANCE_COUNT } else { '0' }

foreach ($setting in @(@('MAXIMUM_INSTANCE_COUNT', $maximum), @('ALWAYS_READY_INSTANCE_COUNT', $alwaysReady))) {
    if ($setting[1] -notmatch '^[0-9]+$') {
        [Console]::Error.WriteLine("preprovision: $($setting[0]) must be a whole number, not '$($setting[1])'.")
        exit 1
    }
}
if ([long]$alwaysReady -gt [long]$maximum) {
    [Console]::Error.WriteLine("preprovision: ALWAYS_READY_INSTANCE_COUNT ($alwaysReady) is more than MAXIMUM_INSTANCE_COUNT ($maximum); Flex Consumption refuses more always-ready instances than the app may have. Lower one, or raise the other:")
    [Console]::Error.WriteLine("  azd env set ALWAYS_READY_INSTANCE_COUNT $maximum")
    exit 1
}
