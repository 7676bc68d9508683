# azd runs this after `azd deploy`, with the azd environment's values (the Bicep outputs among them)
# as environment variables. With TWILIO_PHONE_NUMBER set (azd env set TWILIO_PHONE_NUMBER +1...), it
# points that number's voice and SMS webhooks at the app; without it, it prints how to.
# The Twilio credentials come from KEY_VAULT_URL's vault, read as your az (or azd) sign-in, or from
# TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN. The same steps as postdeploy.sh.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

Set-Location (Join-Path $PSScriptRoot '../..')

if (-not $env:FUNCTION_APP_URL) {
    [Console]::Error.WriteLine('postdeploy: FUNCTION_APP_URL is not set; run this hook through azd (azd hooks run postdeploy).')
    exit 1
}
# VOICE_URL is built on PUBLIC_BASE_URL when one is set (a custom domain, Front Door): the address
# Twilio must use, because the app checks signatures against it.
$voiceUrl = if ($env:VOICE_URL) { $env:VOICE_URL } else { "$($env:FUNCTION_APP_URL.TrimEnd('/'))/api/voice_url" }
$baseUrl = $voiceUrl -replace '/api/voice_url$', ''

$python = @('.venv/Scripts/python.exe', '.venv/bin/python') | Where-Object { Test-Path $_ } | Select-Object -First 1
if (-not $python) {
    # Windows PowerShell 5.1 has no $IsWindows, and only runs on Windows.
    $python = if ($env:OS -eq 'Windows_NT' -or $IsWindows) { 'python' } else { 'python3' }
}

if (-not $env:TWILIO_PHONE_NUMBER) {
    $smsUrl = if ($env:SMS_URL) { $env:SMS_URL } else { "$baseUrl/api/sms_url" }
    $callStatusUrl = if ($env:CALL_STATUS_URL) { $env:CALL_STATUS_URL } else { "$baseUrl/api/call_status" }
    $vault = if ($env:KEY_VAULT_URL) { "`$env:KEY_VAULT_URL='$($env:KEY_VAULT_URL)'; " } else { '' }
    Write-Output 'Twilio webhooks of the app:'
    Write-Output "  voice_url    $voiceUrl"
    Write-Output "  sms_url      $smsUrl"
    Write-Output "  call_status  $callStatusUrl"
    Write-Output "To point your Twilio number's voice and SMS webhooks at them:"
    Write-Output '  azd env set TWILIO_PHONE_NUMBER +1XXXXXXXXXX; azd hooks run postdeploy'
    Write-Output 'or run:'
    Write-Output "  $vault& $python -m tools.wire_twilio --number +1XXXXXXXXXX --base-url $baseUrl"
    exit 0
}

try {
    & $python -c 'import twilio.rest, azure.identity, azure.keyvault.secrets' 2>$null
    $imports = $LASTEXITCODE -eq 0
} catch {
    $imports = $false  # no such python, or (Windows PowerShell) its stderr taken for an error
}
if (-not $imports) {
    # The app is deployed; only the wiring waits for the packages, so the deployment still succeeds.
    Write-Output "postdeploy: $($env:TWILIO_PHONE_NUMBER) is not wired yet: $python cannot import the app's packages"
    Write-Output '(twilio, azure-identity, azure-keyvault-secrets). To wire it, run:'
    Write-Output '  python -m venv .venv; .venv/Scripts/python -m pip install -r requirements.txt; azd hooks run postdeploy'
    exit 0
}

Write-Output "Pointing $($env:TWILIO_PHONE_NUMBER) at $baseUrl"
& $python -m tools.wire_twilio --number $env:TWILIO_PHONE_NUMBER --base-url $baseUrl
if ($LASTEXITCODE -eq 3) {
    # The first deployment comes before the secrets are set: the app is up, only the wiring waits.
    Write-Output 'postdeploy: the number is not wired yet. Set the Twilio secrets, then run: azd hooks run postdeploy'
    exit 0
}
exit $LASTEXITCODE
