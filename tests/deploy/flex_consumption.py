"""What Azure's Flex Consumption plan refuses or ignores, and what Azure's own Flex samples set: as data.

Neither pycep nor checkov knows what Azure refuses: a property can be valid in Microsoft.Web/sites' types and
still fail every deployment on Flex Consumption (siteConfig.ftpsState did). tests/deploy/test_infra.py checks the
templates against both lists. Each entry names the page that says so.
"""

from __future__ import annotations

from dataclasses import dataclass

DEPRECATIONS = (
    "https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations"
)
CONSIDERATIONS = "https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#considerations"
MIGRATION = (
    "https://learn.microsoft.com/azure/azure-functions/migration/migrate-plan-consumption-to-flex"
    "#apply-migrated-app-settings-in-the-new-app"
)


@dataclass(frozen=True)
class Rule:
    """A site property (a path under the site's `properties`) or an app setting that Flex will not take.

    `refused`: ARM answers BadRequest ("... for Flex Consumption sites is invalid") and the deployment fails.
    `ignored`: deprecated or set by the backend; the deployment succeeds, the value does nothing.
    """

    name: str
    kind: str  # "site_property" | "app_setting"
    verdict: str  # "refused" | "ignored"
    reason: str
    source: str


# Checked against the docs' "Flex Consumption plan deprecations" table (12/2025). Left out on purpose:
# PYTHON_THREADPOOL_THREAD_COUNT. No page deprecates it on Flex; the app settings reference still documents
# it for Python without a plan caveat, so a test refusing it would rest on nothing Azure says.
FLEX_REFUSES: tuple[Rule, ...] = (
    Rule(
        "ENABLE_ORYX_BUILD",
        "app_setting",
        "ignored",
        "Replaced by the remoteBuild parameter when deploying in Flex Consumption",
        DEPRECATIONS,
    ),
    Rule(
        "FUNCTIONS_EXTENSION_VERSION",
        "app_setting",
        "ignored",
        "App Setting is set by the backend. A value of ~1 can be ignored.",
        DEPRECATIONS,
    ),
    Rule(
        "FUNCTIONS_WORKER_RUNTIME",
        "app_setting",
        "refused",
        "Replaced by name in properties.functionAppConfig.runtime for Flex Consumption sites is invalid')",
        DEPRECATIONS,
    ),
    Rule(
        "FUNCTIONS_WORKER_RUNTIME_VERSION",
        "app_setting",
        "ignored",
        "Replaced by version in properties.functionAppConfig.runtime",
        DEPRECATIONS,
    ),
    Rule(
        "FUNCTIONS_MAX_HTTP_CONCURRENCY",
        "app_setting",
        "ignored",
        "Replaced by scale and concurrency's trigger section"
        " (functionAppConfig.scaleAndConcurrency.triggers.http.perInstanceConcurrency)",
        DEPRECATIONS,
    ),
    Rule("FUNCTIONS_WORKER_PROCESS_COUNT", "app_setting", "ignored", "Setting not valid", DEPRECATIONS),
    Rule("FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED", "app_setting", "ignored", "Setting not valid", DEPRECATIONS),
    Rule(
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
        "app_setting",
        "ignored",
        "Replaced by the remoteBuild parameter when deploying in Flex Consumption",
        DEPRECATIONS,
    ),
    Rule(
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "app_setting",
        "ignored",
        "Replaced by functionAppConfig's deployment section",
        DEPRECATIONS,
    ),
    Rule(
        "WEBSITE_CONTENTOVERVNET", "app_setting", "ignored", "Not used for networking in Flex Consumption", DEPRECATIONS
    ),
    Rule(
        "WEBSITE_CONTENTSHARE",
        "app_setting",
        "ignored",
        "Replaced by functionAppConfig's deployment section",
        DEPRECATIONS,
    ),
    Rule(
        "WEBSITE_DNS_SERVER",
        "app_setting",
        "ignored",
        "DNS is inherited from the integrated virtual network in Flex",
        DEPRECATIONS,
    ),
    Rule(
        "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
        "app_setting",
        "ignored",
        "Replaced by maximumInstanceCount in properties.functionAppConfig.scaleAndConcurrency",
        DEPRECATIONS,
    ),
    Rule(
        "WEBSITE_NODE_DEFAULT_VERSION",
        "app_setting",
        "ignored",
        "Replaced by version in properties.functionAppConfig.runtime",
        DEPRECATIONS,
    ),
    Rule(
        "WEBSITE_RUN_FROM_PACKAGE",
        "app_setting",
        "ignored",
        "Not used for deployments in Flex Consumption",
        DEPRECATIONS,
    ),
    Rule(
        "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
        "app_setting",
        "ignored",
        "Content share isn't used in Flex Consumption",
        DEPRECATIONS,
    ),
    Rule(
        "WEBSITE_VNET_ROUTE_ALL", "app_setting", "ignored", "Not used for networking in Flex Consumption", DEPRECATIONS
    ),
    Rule("siteConfig.alwaysOn", "site_property", "ignored", "Not valid", DEPRECATIONS),
    Rule("containerSize", "site_property", "ignored", "Renamed as instanceMemoryMB", DEPRECATIONS),
    Rule(
        "dnsConfiguration",
        "site_property",
        "ignored",
        "Custom DNS servers configured in the Azure Virtual Network are automatically used",
        DEPRECATIONS,
    ),
    Rule("siteConfig.ftpsState", "site_property", "refused", "FTPS not supported", DEPRECATIONS),
    Rule(
        "reserved",
        "site_property",
        "ignored",
        "Not valid; the plan's properties.reserved: true is still required",
        DEPRECATIONS,
    ),
    Rule("isXenon", "site_property", "ignored", "Not valid", DEPRECATIONS),
    Rule(
        "siteConfig.javaVersion",
        "site_property",
        "ignored",
        "Replaced by version in properties.functionAppConfig.runtime",
        DEPRECATIONS,
    ),
    Rule(
        "siteConfig.linuxFxVersion",
        "site_property",
        "refused",
        "Replaced by properties.functionAppConfig.runtime",
        DEPRECATIONS,
    ),
    Rule(
        "siteConfig.netFrameworkVersion",
        "site_property",
        "refused",
        "Replaced by version in properties.functionAppConfig.runtime",
        DEPRECATIONS,
    ),
    Rule(
        "siteConfig.powerShellVersion",
        "site_property",
        "ignored",
        "Replaced by version in properties.functionAppConfig.runtime",
        DEPRECATIONS,
    ),
    Rule(
        "siteConfig.functionAppScaleLimit", "site_property", "refused", "Renamed as maximumInstanceCount", DEPRECATIONS
    ),
    Rule(
        "siteConfig.preWarmedInstanceCount",
        "site_property",
        "refused",
        "Renamed as alwaysReadyInstances (functionAppConfig.scaleAndConcurrency.alwaysReady)",
        DEPRECATIONS,
    ),
    Rule("siteConfig.use32BitWorkerProcess", "site_property", "refused", "32-bit not supported", DEPRECATIONS),
    Rule(
        "vnetBackupRestoreEnabled",
        "site_property",
        "ignored",
        "Not used for networking in Flex Consumption",
        DEPRECATIONS,
    ),
    Rule(
        "vnetContentShareEnabled",
        "site_property",
        "ignored",
        "Not used for networking in Flex Consumption",
        DEPRECATIONS,
    ),
    Rule(
        "vnetImagePullEnabled", "site_property", "ignored", "Not used for networking in Flex Consumption", DEPRECATIONS
    ),
    Rule(
        "vnetRouteAllEnabled", "site_property", "ignored", "Not used for networking in Flex Consumption", DEPRECATIONS
    ),
    Rule("siteConfig.windowsFxVersion", "site_property", "ignored", "Not valid", DEPRECATIONS),
    Rule(
        "endToEndEncryptionEnabled",
        "site_property",
        "ignored",
        "platform certificate-based features like endToEndEncryptionEnabled are currently not supported",
        CONSIDERATIONS,
    ),
    Rule(
        "WEBSITE_LOAD_CERTIFICATES",
        "app_setting",
        "ignored",
        "Loading certificates with the WEBSITE_LOAD_CERTIFICATES app setting ... currently not supported",
        CONSIDERATIONS,
    ),
    Rule(
        "WEBSITE_TIME_ZONE",
        "app_setting",
        "ignored",
        "WEBSITE_TIME_ZONE and TZ app settings aren't currently supported when running on Flex Consumption plan",
        CONSIDERATIONS,
    ),
    Rule(
        "TZ",
        "app_setting",
        "ignored",
        "WEBSITE_TIME_ZONE and TZ app settings aren't currently supported when running on Flex Consumption plan",
        CONSIDERATIONS,
    ),
    Rule(
        "WEBSITE_USE_PLACEHOLDER_DOTNETISOLATED",
        "app_setting",
        "ignored",
        "filtered out by the docs' migration script as a setting that doesn't apply to Flex Consumption apps",
        MIGRATION,
    ),
    Rule(
        "WEBSITE_MOUNT_ENABLED",
        "app_setting",
        "ignored",
        "filtered out by the docs' migration script as a setting that doesn't apply to Flex Consumption apps",
        MIGRATION,
    ),
    Rule(
        "siteConfig.functionsRuntimeScaleMonitoringEnabled",
        "site_property",
        "refused",
        "named in no doc; ARM lists Site.SiteConfig.FunctionsRuntimeScaleMonitoringEnabled among the properties"
        " that 'for Flex Consumption sites is invalid'",
        "https://github.com/microsoft/azure-pipelines-tasks/issues/21032",
    ),
)

# The Flex Consumption deployments Azure publishes, as read for this list.
SAMPLES = {
    "flex-samples-bicep": "Azure-Samples/azure-functions-flex-consumption-samples@9519a36 IaC/bicep/main.bicep"
    " (AVM web/site 0.16.0, web/serverfarm 0.1.1, storage/storage-account 0.25.0, their defaults included)",
    "flex-samples-arm": "Azure-Samples/azure-functions-flex-consumption-samples@9519a36"
    " IaC/armtemplate/azuredeploy.json",
    "python-azd-quickstart": "Azure-Samples/functions-quickstart-python-http-azd@7ed4638 infra/"
    " (AVM web/site 0.15.1, web/serverfarm 0.1.1, storage/storage-account 0.8.3, their defaults included)",
    "quickstart-templates": "Azure/azure-quickstart-templates"
    " quickstarts/microsoft.web/function-app-flex-managed-identities/main.bicep",
    "flex-samples-keyvault-module": "Azure-Samples/azure-functions-flex-consumption-samples@d2a6647"
    " E2E/HTTP-VNET-EH/infra/core/security/keyvault.bicep (no current Flex sample deploys a vault)",
}

# Property paths (dotted from the resource body; arrays named, not entered) that those samples set, by
# resource type, each with one sample that sets it. A path infra/ sets outside this list needs a comment
# beside it that links the Azure page saying Flex (or the resource) accepts it.
SAMPLE_PATHS: dict[str, dict[str, str]] = {
    "Microsoft.KeyVault/vaults": {
        "location": "flex-samples-keyvault-module",
        "name": "flex-samples-keyvault-module",
        "properties.accessPolicies": "flex-samples-keyvault-module",
        "properties.sku.family": "flex-samples-keyvault-module",
        "properties.sku.name": "flex-samples-keyvault-module",
        "properties.tenantId": "flex-samples-keyvault-module",
        "tags": "flex-samples-keyvault-module",
    },
    "Microsoft.Storage/storageAccounts": {
        "kind": "flex-samples-arm",
        "location": "flex-samples-arm",
        "name": "flex-samples-arm",
        "properties.accessTier": "flex-samples-arm",
        "properties.allowBlobPublicAccess": "flex-samples-bicep",
        "properties.allowCrossTenantReplication": "flex-samples-bicep",
        "properties.allowSharedKeyAccess": "flex-samples-arm",
        "properties.customDomain.name": "flex-samples-bicep",
        "properties.customDomain.useSubDomainName": "flex-samples-bicep",
        "properties.defaultToOAuthAuthentication": "flex-samples-bicep",
        "properties.dnsEndpointType": "flex-samples-bicep",
        "properties.encryption.keySource": "flex-samples-bicep",
        "properties.encryption.requireInfrastructureEncryption": "flex-samples-bicep",
        "properties.encryption.services.blob.enabled": "flex-samples-bicep",
        "properties.encryption.services.file.enabled": "flex-samples-bicep",
        "properties.encryption.services.queue.enabled": "flex-samples-bicep",
        "properties.encryption.services.table.enabled": "flex-samples-bicep",
        "properties.isLocalUserEnabled": "flex-samples-bicep",
        "properties.isNfsV3Enabled": "flex-samples-bicep",
        "properties.isSftpEnabled": "flex-samples-bicep",
        "properties.minimumTlsVersion": "flex-samples-bicep",
        "properties.networkAcls.bypass": "flex-samples-bicep",
        "properties.networkAcls.defaultAction": "flex-samples-bicep",
        "properties.publicNetworkAccess": "flex-samples-bicep",
        "properties.supportsHttpsTrafficOnly": "flex-samples-bicep",
        "sku.name": "flex-samples-arm",
        "sku.tier": "flex-samples-arm",
        "tags": "flex-samples-bicep",
    },
    "Microsoft.Web/serverfarms": {
        "kind": "flex-samples-arm",
        "location": "flex-samples-arm",
        "name": "flex-samples-arm",
        "properties.maximumElasticWorkerCount": "flex-samples-bicep",
        "properties.perSiteScaling": "flex-samples-bicep",
        "properties.reserved": "flex-samples-arm",
        "properties.targetWorkerCount": "flex-samples-bicep",
        "properties.targetWorkerSizeId": "flex-samples-bicep",
        "properties.workerTierName": "flex-samples-bicep",
        "properties.zoneRedundant": "flex-samples-arm",
        "sku.name": "flex-samples-arm",
        "sku.tier": "flex-samples-arm",
        "tags": "flex-samples-bicep",
    },
    "Microsoft.Web/sites": {
        "identity.type": "flex-samples-arm",
        "identity.userAssignedIdentities": "python-azd-quickstart",
        "kind": "flex-samples-arm",
        "location": "flex-samples-arm",
        "name": "flex-samples-arm",
        "properties.clientAffinityEnabled": "flex-samples-bicep",
        "properties.clientCertEnabled": "flex-samples-bicep",
        "properties.clientCertMode": "flex-samples-bicep",
        "properties.enabled": "flex-samples-bicep",
        "properties.functionAppConfig.deployment.storage.authentication.type": "flex-samples-arm",
        "properties.functionAppConfig.deployment.storage.authentication.userAssignedIdentityResourceId": (
            "python-azd-quickstart"
        ),
        "properties.functionAppConfig.deployment.storage.type": "flex-samples-arm",
        "properties.functionAppConfig.deployment.storage.value": "flex-samples-arm",
        "properties.functionAppConfig.runtime.name": "flex-samples-arm",
        "properties.functionAppConfig.runtime.version": "flex-samples-arm",
        "properties.functionAppConfig.scaleAndConcurrency.instanceMemoryMB": "flex-samples-arm",
        "properties.functionAppConfig.scaleAndConcurrency.maximumInstanceCount": "flex-samples-arm",
        "properties.httpsOnly": "flex-samples-bicep",
        "properties.hyperV": "flex-samples-bicep",
        "properties.publicNetworkAccess": "flex-samples-bicep",
        "properties.redundancyMode": "flex-samples-bicep",
        "properties.scmSiteAlsoStopped": "flex-samples-bicep",
        "properties.serverFarmId": "flex-samples-arm",
        "properties.siteConfig.alwaysOn": "flex-samples-bicep",
        "properties.siteConfig.appSettings": "flex-samples-arm",
        "properties.storageAccountRequired": "flex-samples-bicep",
        "properties.virtualNetworkSubnetId": "python-azd-quickstart",
        "properties.vnetContentShareEnabled": "flex-samples-bicep",
        "properties.vnetImagePullEnabled": "flex-samples-bicep",
        "properties.vnetRouteAllEnabled": "flex-samples-bicep",
        "tags": "flex-samples-bicep",
    },
}
