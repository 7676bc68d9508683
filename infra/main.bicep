// What `azd up` provisions: one resource group holding a Flex Consumption function app, its storage,
// a Key Vault for the Twilio credentials, and monitoring, all reached with one user-assigned identity.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource. It must offer Flex Consumption: az functionapp list-flexconsumption-locations')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object ID of the user or service principal running azd; given Key Vault Secrets Officer on the vault so that it can set the secrets. Empty: no access.')
param principalId string = ''

@description('Kind of principalId, which azd fills in (AZURE_PRINCIPAL_TYPE): User or ServicePrincipal. Empty: left to Azure to find out.')
@allowed([
  ''
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = ''

@description('Python version of the function app.')
@allowed([
  '3.11'
  '3.12'
  '3.13'
  '3.14'
])
param pythonVersion string = '3.12'

@description('Memory of each instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// 40 is the lowest maximum that Flex Consumption's Python stack accepts in every region (its stack data
// gives lowestMaximumInstanceCount 40; lower values were rolled out in some regions only).
@description('Most instances the app scales out to: the ceiling on what a burst of traffic can cost. At least 40.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

// "In Python apps, all instance sizes use an HTTP trigger concurrency level of one by default":
// https://learn.microsoft.com/azure/azure-functions/functions-concurrency#http-trigger-concurrency
@description('HTTP requests one instance serves at once (1 to 1000). Flex Consumption gives a Python app 1 unless told; the app\'s Twilio connection pool is sized to match.')
@minValue(1)
@maxValue(1000)
param perInstanceConcurrency int = 16

@description('HTTP instances kept warm (billed while idle). 0 scales to zero and has cold starts.')
@minValue(0)
@maxValue(1000)
param alwaysReadyInstanceCount int = 0

@description('Days a deleted vault or secret stays recoverable. Fixed once the vault exists.')
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionDays int = 7

@secure()
@description('Twilio account SID, written to the secret twilio-account-sid. Empty: the secret is left as it is (set it later).')
param twilioAccountSid string = ''

@secure()
@description('Twilio auth token, written to the secret twilio-auth-token. Empty: the secret is left as it is (set it later).')
param twilioAuthToken string = ''

@description('Default from number of make_call and send_sms, E.164.')
param twilioFromNumber string = ''

@description('Who make_call and send_sms may reach: ISO 3166 region codes and/or E.164 prefixes (US,CA or +1,+44). Empty: every destination.')
param allowedDestinations string = ''

@description('Calls and texts to one number per hour, across every instance. Empty: the app\'s default (10); 0 turns it off.')
param destinationHourlyLimit string = ''

@description('Calls and texts per UTC day for the whole app, across every instance. Empty: no daily limit.')
param dailyLimit string = ''

@description('The base URL Twilio uses when a custom domain or a proxy sits in front of the app. Empty: the app\'s own URL.')
param publicBaseUrl string = ''

@description('Email address told when calls fail (see callFailureAlertPercent), through an action group. Empty: no action group; the alert still shows in Azure Monitor.')
param alertEmail string = ''

@description('Percentage of an hour\'s ended calls that may fail before the alert fires.')
@minValue(0)
@maxValue(99)
param callFailureAlertPercent int = 20

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var trimmedPublicBaseUrl = endsWith(publicBaseUrl, '/') ? take(publicBaseUrl, length(publicBaseUrl) - 1) : publicBaseUrl
var webhookBaseUrl = empty(publicBaseUrl) ? functionApp.outputs.url : trimmedPublicBaseUrl

resource rg 'Microsoft.Resources/resourceGroups@2024-11-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'core/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'core/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    identityPrincipalId: identity.outputs.principalId
  }
}

module operations 'core/operations.bicep' = {
  name: 'operations'
  scope: rg
  params: {
    actionGroupName: '${abbrs.insightsActionGroups}${resourceToken}'
    alertName: '${abbrs.insightsScheduledQueryRules}calls-failing-${resourceToken}'
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.id
    alertEmail: alertEmail
    callFailureAlertPercent: callFailureAlertPercent
  }
}

module storage 'core/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    identityPrincipalId: identity.outputs.principalId
  }
}

module keyVault 'core/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    softDeleteRetentionDays: keyVaultSoftDeleteRetentionDays
    identityPrincipalId: identity.outputs.principalId
    principalId: principalId
    principalType: principalType
    twilioAccountSid: twilioAccountSid
    twilioAuthToken: twilioAuthToken
  }
}

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    planName: '${abbrs.webServerFarms}${resourceToken}'
    name: '${abbrs.webSitesFunctions}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    pythonVersion: pythonVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    alwaysReadyInstanceCount: alwaysReadyInstanceCount
    perInstanceConcurrency: perInstanceConcurrency
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    blobServiceUri: storage.outputs.blobServiceUri
    tableServiceUri: storage.outputs.tableServiceUri
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultUrl: keyVault.outputs.uri
    twilioFromNumber: twilioFromNumber
    allowedDestinations: allowedDestinations
    publicBaseUrl: publicBaseUrl
    destinationHourlyLimit: destinationHourlyLimit
    dailyLimit: dailyLimit
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output KEY_VAULT_URL string = keyVault.outputs.uri
output FUNCTION_APP_URL string = functionApp.outputs.url
output VOICE_URL string = '${webhookBaseUrl}/api/voice_url'
output SMS_URL string = '${webhookBaseUrl}/api/sms_url'
output CALL_STATUS_URL string = '${webhookBaseUrl}/api/call_status'
