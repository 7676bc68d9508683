// The vault holding the Twilio account SID and auth token. Access is by Azure RBAC only: the app's
// identity may read secrets of this vault, the deploying principal may also write them.
param name string
param location string
param tags object
param softDeleteRetentionDays int
param identityPrincipalId string
param principalId string
param principalType string

@secure()
param twilioAccountSid string

@secure()
param twilioAuthToken string

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  // checkov:skip=CKV_AZURE_109:Flex Consumption without a virtual network has no fixed outbound addresses to allow, and Functions is no trusted service for the bypass; access is by Entra ID and RBAC only.
  // checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109: the app reads the vault over its public endpoint, as does az keyvault secret set.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true // https://learn.microsoft.com/azure/key-vault/general/rbac-guide
    enableSoftDelete: true // https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview
    softDeleteRetentionInDays: softDeleteRetentionDays // https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview
    enablePurgeProtection: true // https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview
    publicNetworkAccess: 'Enabled' // https://learn.microsoft.com/azure/key-vault/general/network-security
    // https://learn.microsoft.com/azure/key-vault/general/network-security
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource accountSidSecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (!empty(twilioAccountSid)) {
  // checkov:skip=CKV_AZURE_41:Twilio credentials do not expire; an expiry date would stop the app on that date. Rotate with az keyvault secret set.
  // checkov:skip=CKV_AZURE_114:contentType is set below; checkov 3.3.30 reads the properties of a resource deployed with if one level too high and misses it.
  parent: vault
  name: 'twilio-account-sid'
  properties: {
    value: twilioAccountSid
    contentType: 'text/plain'
  }
}

resource authTokenSecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (!empty(twilioAuthToken)) {
  // checkov:skip=CKV_AZURE_41:Twilio credentials do not expire; an expiry date would stop the app on that date. Rotate with az keyvault secret set.
  // checkov:skip=CKV_AZURE_114:contentType is set below; checkov 3.3.30 reads the properties of a resource deployed with if one level too high and misses it.
  parent: vault
  name: 'twilio-auth-token'
  properties: {
    value: twilioAuthToken
    contentType: 'text/plain'
  }
}

resource identityReadsSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource deployerWritesSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(vault.id, principalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: principalId
    // Told, Azure need not look the principal up, which can fail for one created moments ago.
    principalType: empty(principalType) ? null : principalType
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
