// The Flex Consumption plan and the Python function app. The app reaches its storage, Key Vault and
// Application Insights with the user-assigned identity alone: no connection string carries a key.
param planName string
param name string
param location string
param tags object
param identityId string
param identityClientId string
param pythonVersion string
param instanceMemoryMB int
param maximumInstanceCount int
param alwaysReadyInstanceCount int
param perInstanceConcurrency int
param deploymentContainerUrl string
param blobServiceUri string
param tableServiceUri string
param applicationInsightsConnectionString string
param keyVaultUrl string
param twilioFromNumber string
param allowedDestinations string
param publicBaseUrl string
param destinationHourlyLimit string
param dailyLimit string

// FUNCTIONS_WORKER_RUNTIME stays out: Flex Consumption takes the runtime from functionAppConfig.runtime
// and refuses the setting. FUNCTIONS_EXTENSION_VERSION stays out too: on Flex it is deprecated and set by
// the backend. tests/deploy lists every setting and site property Flex refuses or ignores, with its source.
var appSettings = [
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: blobServiceUri
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: tableServiceUri
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: applicationInsightsConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identityClientId};Authorization=AAD'
  }
  {
    name: 'KEY_VAULT_URL'
    value: keyVaultUrl
  }
  {
    // DefaultAzureCredential picks a user-assigned identity only when told its client ID.
    name: 'AZURE_CLIENT_ID'
    value: identityClientId
  }
  {
    // Keeps DefaultAzureCredential from probing developer credentials in Azure.
    name: 'AZURE_TOKEN_CREDENTIALS'
    value: 'prod'
  }
  {
    // Sizes the Twilio client's connection pool to the requests an instance serves at once.
    name: 'PER_INSTANCE_CONCURRENCY'
    value: string(perInstanceConcurrency)
  }
  {
    name: 'TWILIO_FROM_NUMBER'
    value: twilioFromNumber
  }
  {
    name: 'ALLOWED_DESTINATIONS'
    value: allowedDestinations
  }
]
var publicBaseUrlSetting = empty(publicBaseUrl) ? [] : [{ name: 'PUBLIC_BASE_URL', value: publicBaseUrl }]
var hourlyLimitSetting = empty(destinationHourlyLimit) ? [] : [{ name: 'DESTINATION_HOURLY_LIMIT', value: destinationHourlyLimit }]
var dailyLimitSetting = empty(dailyLimit) ? [] : [{ name: 'DAILY_LIMIT', value: dailyLimit }]

resource plan 'Microsoft.Web/serverfarms@2024-11-01' = {
  // checkov:skip=CKV_AZURE_225:Zone redundancy is offered in only some Flex Consumption regions; a single-zone plan deploys everywhere.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-11-01' = {
  // checkov:skip=CKV_AZURE_17:Twilio presents no client certificate; webhooks are checked by Twilio signature, make_call and send_sms by function key.
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales per function on demand; there is no worker count to set.
  // checkov:skip=CKV_AZURE_213:Flex Consumption does not support the platform health check.
  // checkov:skip=CKV_AZURE_78:Flex Consumption refuses siteConfig.ftpsState; FTP is off through the ftp basic publishing credentials policy below.
  // checkov:skip=CKV_AZURE_222:Twilio must reach the webhooks over the internet; they are checked by signature.
  name: name
  location: location
  // azd deploys the service named 'api' in azure.yaml to the app carrying this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    clientCertEnabled: false
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        // Parenthesized: checkov's parser reads `a > 0 ? x : y` as `a > (0 ? x : y)`. Flex takes it:
        // https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to#set-always-ready-instance-counts
        alwaysReady: (alwaysReadyInstanceCount > 0) ? [{ name: 'http', instanceCount: alwaysReadyInstanceCount }] : []
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        // https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to#set-http-concurrency-limits
        triggers: {
          http: {
            perInstanceConcurrency: perInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
    siteConfig: {
      // Flex takes it; its migration guide sets it on the new app:
      // https://learn.microsoft.com/azure/azure-functions/migration/migrate-plan-consumption-to-flex#apply-other-app-configurations
      minTlsVersion: '1.2'
      // Likewise: https://learn.microsoft.com/azure/azure-functions/migration/migrate-plan-consumption-to-flex#apply-other-app-configurations
      http20Enabled: true
      cors: {
        // The portal's Code + Test calls the functions from the browser, on either of its addresses. Flex takes it:
        // https://learn.microsoft.com/azure/azure-functions/migration/migrate-plan-consumption-to-flex#configure-any-custom-domains-and-cors-access
        allowedOrigins: [
          'https://portal.azure.com'
          'https://ms.portal.azure.com'
        ]
      }
      appSettings: concat(appSettings, publicBaseUrlSetting, hourlyLimitSetting, dailyLimitSetting)
    }
  }
}

resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output url string = 'https://${functionApp.properties.defaultHostName}'
