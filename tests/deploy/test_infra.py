"""The Bicep and azure.yaml that `azd up` deploys: they parse, pass checkov, and keep the settings the app relies on.

No Bicep compiler or Azure is at hand, so the templates are read with pycep (the parser checkov itself uses)
and checked as written: each test names one property of the deployment that a careless edit could lose.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from pycep import BicepParser

from shared.settings import ROUTE_PREFIX, Settings
from tests.deploy.flex_consumption import FLEX_REFUSES, SAMPLE_PATHS
from tests.support import FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
CHECKOV = ROOT / ".venv-infra" / "bin" / "checkov"
BICEP_FILES = sorted(path.relative_to(INFRA).as_posix() for path in INFRA.rglob("*.bicep"))

KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
STORAGE_DATA_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",  # Storage Table Data Contributor
}
TWILIO_PARAMETERS = ("twilioAccountSid", "twilioAuthToken")
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
# The resource types checkov 3.3.30 has Bicep checks for, among those the templates declare.
CHECKOV_CHECKED_TYPES = {
    "Microsoft.Web/sites",
    "Microsoft.Web/serverfarms",
    "Microsoft.Storage/storageAccounts",
    "Microsoft.Storage/storageAccounts/blobServices/containers",
    "Microsoft.KeyVault/vaults",
    "Microsoft.KeyVault/vaults/secrets",
}
# Every checkov finding deliberately skipped; the reason sits beside the skip in the Bicep.
EXPECTED_SKIPS = {
    ("CKV_AZURE_35", "/core/storage.bicep"),
    ("CKV_AZURE_59", "/core/storage.bicep"),
    ("CKV_AZURE_206", "/core/storage.bicep"),
    ("CKV_AZURE_109", "/core/keyvault.bicep"),
    ("CKV_AZURE_189", "/core/keyvault.bicep"),
    ("CKV_AZURE_41", "/core/keyvault.bicep"),
    ("CKV_AZURE_114", "/core/keyvault.bicep"),
    ("CKV_AZURE_225", "/app/function.bicep"),
    ("CKV_AZURE_17", "/app/function.bicep"),
    ("CKV_AZURE_212", "/app/function.bicep"),
    ("CKV_AZURE_213", "/app/function.bicep"),
    ("CKV_AZURE_222", "/app/function.bicep"),
    ("CKV_AZURE_78", "/app/function.bicep"),
}


# --- reading the templates -------------------------------------------------------------------------------------


@functools.cache
def parser() -> BicepParser:
    return BicepParser()


@functools.cache
def bicep(relative: str) -> dict[str, Any]:
    """A template as pycep's JSON: string literals and identifiers both appear as plain strings."""
    return cast("dict[str, Any]", parser().parse(file_path=INFRA / relative))


def body(declaration: dict[str, Any]) -> dict[str, Any]:
    """A resource's or module's properties, under any `if` or `for` that wraps them."""
    config: dict[str, Any] = declaration["config"]
    while "condition" in config or "loop_type" in config:
        config = config["config"]
    return config


def condition(declaration: dict[str, Any]) -> Any:
    return declaration["config"].get("condition")


def resources(relative: str, resource_type: str) -> dict[str, dict[str, Any]]:
    """The resources of one type in a template, by symbolic name."""
    declared: dict[str, dict[str, Any]] = bicep(relative).get("resources", {})
    return {name: resource for name, resource in declared.items() if resource["type"] == resource_type}


def only(relative: str, resource_type: str) -> dict[str, Any]:
    (resource,) = resources(relative, resource_type).values()
    return body(resource)


def dotted(value: Any) -> Any:
    """`identity.outputs.id` for pycep's nested property accessors; any other value as it is."""
    if isinstance(value, dict) and value.get("operator", {}).get("type") == "property_accessor":
        operands = value["operator"]["operands"]
        return f"{dotted(operands['operand_1'])}.{dotted(operands['operand_2'])}"
    return value


def role_id(assignment: dict[str, Any], relative: str) -> str:
    """The role definition GUID, read through the variable it is usually kept in."""
    name = assignment["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
    variables: dict[str, Any] = bicep(relative).get("variables", {})
    return str(variables[name]["value"]) if name in variables else str(name)


def role_assignments(relative: str, role: str) -> list[dict[str, Any]]:
    return [a for a in resources(relative, ROLE_ASSIGNMENT).values() if role_id(body(a), relative) == role]


def when_given(parameter: str) -> dict[str, Any]:
    """pycep's form of `if (!empty(parameter))`."""
    empty = {"function": {"type": "empty", "parameters": {"item_to_test": parameter}}}
    return {"operator": {"type": "not", "operands": {"bool_value": empty}}}


def module_params(name: str) -> dict[str, Any]:
    params: dict[str, Any] = body(bicep("main.bicep")["modules"][name])["params"]
    return params


def app_settings() -> dict[str, Any]:
    """Every app setting the function app can get, by name, including those added only on a condition."""
    settings: dict[str, Any] = {}

    def collect(value: Any) -> None:
        if isinstance(value, dict) and set(value) == {"name", "value"}:
            settings[value["name"]] = value["value"]
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    site = only("app/function.bicep", "Microsoft.Web/sites")
    collect(site["properties"]["siteConfig"]["appSettings"])
    for variable in bicep("app/function.bicep")["variables"].values():
        collect(variable["value"])
    return settings


def references(value: Any, variables: dict[str, Any]) -> Iterator[str]:
    """Every name a value mentions, directly, inside `${...}`, or through the variables it uses."""
    if isinstance(value, dict):
        for item in value.values():
            yield from references(item, variables)
    elif isinstance(value, list):
        for item in value:
            yield from references(item, variables)
    elif isinstance(value, str):
        names = {value, *re.findall(r"[A-Za-z_]\w*", " ".join(re.findall(r"\$\{([^}]*)\}", value)))}
        for name in names:
            yield name
            if name in variables:
                yield from references(variables[name]["value"], variables)


def parameters_file() -> dict[str, Any]:
    """main.parameters.json's entries, by parameter name."""
    mapped: dict[str, Any] = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    return mapped


def azure_yaml() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    return loaded


# --- syntax and checkov ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", BICEP_FILES)
def test_bicep_file_parses(relative: str) -> None:
    assert bicep(relative)["resources"], f"{relative} declares no resource"


def test_main_deploys_every_module_file() -> None:
    """A module file main.bicep no longer uses would be checked here but never deployed."""
    modules = [module["detail"]["path"] for module in bicep("main.bicep")["modules"].values()]

    assert sorted(["main.bicep", *modules]) == BICEP_FILES


@pytest.fixture(scope="module")
def checkov() -> dict[str, Any]:
    assert CHECKOV.is_file(), f"{CHECKOV} is missing: `make setup` builds it from requirements-infra.txt"
    # --skip-download: every check is local; without it checkov tries to fetch guidelines from Prisma Cloud.
    run = subprocess.run(
        [str(CHECKOV), "--directory", str(INFRA), "--framework", "bicep", "--output", "json", "--skip-download"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=ROOT,
    )
    assert run.returncode in {0, 1}, run.stderr
    report: dict[str, Any] = json.loads(run.stdout)
    return report


@pytest.mark.processes
def test_checkov_finds_no_failed_check(checkov: dict[str, Any]) -> None:
    failed = [f"{c['check_id']} {c['file_path']} {c['resource']}" for c in checkov["results"]["failed_checks"]]

    assert failed == []


@pytest.mark.processes
def test_checkov_parses_every_bicep_file(checkov: dict[str, Any]) -> None:
    assert checkov["results"]["parsing_errors"] == []


@pytest.mark.processes
def test_checkov_scans_every_resource_it_has_checks_for(checkov: dict[str, Any]) -> None:
    """A resource checkov failed to read would otherwise pass by having no finding at all."""
    expected = {
        (f"/{relative}", f"{resource['type']}.{name}")
        for relative in BICEP_FILES
        for name, resource in bicep(relative)["resources"].items()
        if resource["type"] in CHECKOV_CHECKED_TYPES and not resource["existing"]
    } | {
        (f"/{relative}", f"string.{name}")
        for relative in ("main.bicep", "core/keyvault.bicep")
        for name in TWILIO_PARAMETERS
    }
    results = checkov["results"]
    scanned = {
        (record["file_path"], record["resource"])
        for kind in ("passed_checks", "failed_checks", "skipped_checks")
        for record in results[kind]
    }

    assert len(expected) >= 10
    assert expected <= scanned


@pytest.mark.processes
def test_checkov_skips_only_the_listed_checks_each_with_its_reason(checkov: dict[str, Any]) -> None:
    skipped = checkov["results"]["skipped_checks"]

    assert {(record["check_id"], record["file_path"]) for record in skipped} == EXPECTED_SKIPS
    assert all(len(record["check_result"]["suppress_comment"]) > 30 for record in skipped)


# --- what Azure refuses, beyond what its types allow -------------------------------------------------------------

CITATION = "https://learn.microsoft.com/"
KEY_LINE = re.compile(r"^\s*(\w+|'[^']*'):\s*(.*?)\s*(//.*)?$")
BICEP_ONLY_KEYS = {"parent", "scope", "dependsOn"}


def property_paths(value: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths a template sets; an expression, an array or a map with quoted keys ends a path."""
    expression = not isinstance(value, dict) or not value or {"operator", "function"} & set(value)
    if expression or any(key.startswith("'") for key in value):
        yield prefix
        return
    for key, item in value.items():
        if key not in BICEP_ONLY_KEYS:
            yield from property_paths(item, f"{prefix}.{key}" if prefix else key)


def templates_of(resource_type: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(file, symbolic name, body) of every declared resource of one type."""
    for relative in BICEP_FILES:
        for name, declaration in resources(relative, resource_type).items():
            if not declaration["existing"]:
                yield relative, name, body(declaration)


def key_lines(relative: str, symbol: str) -> dict[str, int]:
    """Line index of each property key of one resource, by dotted path: a small scan of the Bicep text."""
    lines = (INFRA / relative).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"resource {symbol} ", line))
    found: dict[str, int] = {}
    stack: list[str | None] = []
    for index in range(start + 1, len(lines)):
        text = lines[index].split("//")[0].strip() if not lines[index].strip().startswith("//") else ""
        match = KEY_LINE.match(lines[index]) if text else None
        if match:
            path = ".".join([key for key in stack if key] + [match[1]])
            found.setdefault(path, index)
            if text.endswith(("{", "[")):
                stack.append(match[1])
        elif text.startswith(("}", "]")):
            if not stack:
                break
            stack.pop()
        elif text.endswith(("{", "[")):
            stack.append(None)
    return found


def cited(lines: list[str], index: int) -> bool:
    """The key's own comment (the lines right above it, or at its end) links an Azure page."""
    if CITATION in lines[index].partition("//")[2]:
        return True
    above = index - 1
    heading = []
    while above >= 0 and lines[above].strip().startswith("//"):
        heading.append(lines[above])
        above -= 1
    return any(CITATION in line for line in heading)


def test_no_site_property_or_app_setting_that_flex_consumption_refuses_or_ignores() -> None:
    refused = {rule.name: rule for rule in FLEX_REFUSES}
    site_properties = {
        path.removeprefix("properties.")
        for _, _, site in templates_of("Microsoft.Web/sites")
        for path in property_paths(site)
    }
    settings = set(app_settings())
    hits = [
        f"{rule.name}: {rule.reason} ({rule.source})"
        for rule in refused.values()
        if (rule.kind == "app_setting" and rule.name in settings)
        or (
            rule.kind == "site_property"
            and any(p == rule.name or p.startswith(f"{rule.name}.") for p in site_properties)
        )
    ]

    assert hits == []
    assert "siteConfig.cors.allowedOrigins" in site_properties  # the paths are read as this list names them
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in settings


def test_the_refusal_list_covers_what_azure_names_each_with_its_source() -> None:
    names = {rule.name for rule in FLEX_REFUSES}

    assert {
        "siteConfig.ftpsState",
        "siteConfig.linuxFxVersion",
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_EXTENSION_VERSION",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_CONTENTSHARE",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
        "ENABLE_ORYX_BUILD",
        "FUNCTIONS_WORKER_PROCESS_COUNT",
        "FUNCTIONS_MAX_HTTP_CONCURRENCY",
    } <= names
    assert all(rule.source.startswith(("https://learn.microsoft.com/", "https://github.com/")) for rule in FLEX_REFUSES)
    assert {rule.kind for rule in FLEX_REFUSES} == {"site_property", "app_setting"}
    assert {rule.verdict for rule in FLEX_REFUSES} == {"refused", "ignored"}
    assert len(names) == len(FLEX_REFUSES)


# Types no Flex sample deploys (the operator's alert and workbook): every property they set cites its page, but
# for the envelope every ARM resource has.
ENVELOPE = {"name": "every ARM resource", "location": "every ARM resource", "tags": "every ARM resource"}
CITED_PATHS = {
    **SAMPLE_PATHS,
    "Microsoft.Insights/actionGroups": ENVELOPE,
    "Microsoft.Insights/scheduledQueryRules": ENVELOPE,
    "Microsoft.Insights/workbooks": ENVELOPE,
}


@pytest.mark.parametrize("resource_type", sorted(CITED_PATHS))
def test_every_property_outside_azures_flex_samples_cites_the_page_that_accepts_it(resource_type: str) -> None:
    samples = CITED_PATHS[resource_type]
    uncited = []
    checked = 0
    for relative, symbol, declared in templates_of(resource_type):
        lines = (INFRA / relative).read_text(encoding="utf-8").splitlines()
        where = key_lines(relative, symbol)
        for path in property_paths(declared):
            if path in samples:
                continue
            parts = path.split(".")
            # The citation may stand at the leaf or at any enclosing key that no sample sets either.
            candidates = [
                ".".join(parts[:n])
                for n in range(1, len(parts) + 1)
                if not any(s == ".".join(parts[:n]) or s.startswith(".".join(parts[:n]) + ".") for s in samples)
            ]
            checked += 1
            if not any(candidate in where and cited(lines, where[candidate]) for candidate in candidates):
                uncited.append(f"{relative} {symbol}: {path}")

    assert uncited == []
    assert checked or (resource_type in SAMPLE_PATHS and resource_type != "Microsoft.Web/sites")


# --- the function app ------------------------------------------------------------------------------------------


def test_plan_is_flex_consumption_on_linux() -> None:
    plan = only("app/function.bicep", "Microsoft.Web/serverfarms")
    site = only("app/function.bicep", "Microsoft.Web/sites")

    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True
    assert site["kind"] == "functionapp,linux"
    assert dotted(site["properties"]["serverFarmId"]) == "plan.id"


def test_runtime_is_python_3_12_by_default_and_3_11_to_3_14_allowed() -> None:
    site = only("app/function.bicep", "Microsoft.Web/sites")
    parameter = bicep("main.bicep")["parameters"]["pythonVersion"]
    allowed = [d["argument"] for d in parameter["decorators"] if d["type"] == "allowed"]

    assert site["properties"]["functionAppConfig"]["runtime"] == {"name": "python", "version": "pythonVersion"}
    assert module_params("functionApp")["pythonVersion"] == "pythonVersion"
    assert parameter["default"] == "3.12"
    assert allowed == [["3.11", "3.12", "3.13", "3.14"]]


def test_scale_settings_come_from_parameters() -> None:
    scale = only("app/function.bicep", "Microsoft.Web/sites")["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    params = module_params("functionApp")

    assert scale["instanceMemoryMB"] == "instanceMemoryMB"
    assert scale["maximumInstanceCount"] == "maximumInstanceCount"
    assert params["instanceMemoryMB"] == "instanceMemoryMB"
    assert params["maximumInstanceCount"] == "maximumInstanceCount"


def decorator(parameter: str, kind: str) -> Any:
    """The argument of one decorator of a main.bicep parameter (`allowed`, `min_value`, …)."""
    (argument,) = [
        d["argument"] for d in bicep("main.bicep")["parameters"][parameter]["decorators"] if d["type"] == kind
    ]
    return argument


def test_instance_memory_is_512_2048_or_4096_mb_and_instances_stop_at_100_by_default() -> None:
    assert decorator("instanceMemoryMB", "allowed") == [512, 2048, 4096]
    assert bicep("main.bicep")["parameters"]["maximumInstanceCount"]["default"] == 100


def test_maximum_instance_count_is_at_least_the_40_flex_python_accepts_everywhere() -> None:
    """Flex Consumption's Python stack data gives lowestMaximumInstanceCount 40."""
    assert (decorator("maximumInstanceCount", "min_value"), decorator("maximumInstanceCount", "max_value")) == (
        40,
        1000,
    )


def test_always_ready_http_instances_only_when_asked_for() -> None:
    scale = only("app/function.bicep", "Microsoft.Web/sites")["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    choice = scale["alwaysReady"]["operator"]

    assert choice["type"] == "conditional"
    assert choice["operands"]["condition"]["operator"] == {
        "type": "greater_than",
        "operands": {"operand_1": "alwaysReadyInstanceCount", "operand_2": 0},
    }
    assert choice["operands"]["true_value"] == [{"name": "http", "instanceCount": "alwaysReadyInstanceCount"}]
    assert choice["operands"]["false_value"] == []
    assert bicep("main.bicep")["parameters"]["alwaysReadyInstanceCount"]["default"] == 0


def test_app_is_https_only_with_tls_1_2() -> None:
    site = only("app/function.bicep", "Microsoft.Web/sites")["properties"]

    assert site["httpsOnly"] is True
    assert site["siteConfig"]["minTlsVersion"] == "1.2"


def test_ftp_and_scm_basic_publishing_are_off() -> None:
    """FTP is off through the `ftp` policy: Flex Consumption refuses siteConfig.ftpsState itself."""
    policies = resources("app/function.bicep", "Microsoft.Web/sites/basicPublishingCredentialsPolicies")

    assert {body(p)["name"]: (body(p)["parent"], body(p)["properties"]) for p in policies.values()} == {
        "ftp": ("functionApp", {"allow": False}),
        "scm": ("functionApp", {"allow": False}),
    }


def test_app_runs_as_the_user_assigned_identity_alone() -> None:
    site = only("app/function.bicep", "Microsoft.Web/sites")
    params = module_params("functionApp")

    assert site["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {"'${identityId}'": {}}}
    assert dotted(params["identityId"]) == "identity.outputs.id"
    assert dotted(params["identityClientId"]) == "identity.outputs.clientId"


def test_deployment_storage_is_reached_with_the_identity() -> None:
    storage = only("app/function.bicep", "Microsoft.Web/sites")["properties"]["functionAppConfig"]["deployment"]

    assert storage["storage"] == {
        "type": "blobContainer",
        "value": "deploymentContainerUrl",
        "authentication": {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"},
    }
    assert dotted(module_params("functionApp")["deploymentContainerUrl"]) == "storage.outputs.deploymentContainerUrl"


def test_host_storage_connection_is_identity_based() -> None:
    settings = app_settings()

    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    for service in ("blob", "table"):
        assert settings[f"AzureWebJobsStorage__{service}ServiceUri"] == f"{service}ServiceUri"
        assert dotted(module_params("functionApp")[f"{service}ServiceUri"]) == f"storage.outputs.{service}ServiceUri"
    assert "AzureWebJobsStorage" not in settings
    assert "AzureWebJobsStorage__queueServiceUri" not in settings  # an HTTP-only app uses no queue


def test_app_settings_point_default_azure_credential_at_the_vault() -> None:
    settings = app_settings()

    assert settings["KEY_VAULT_URL"] == "keyVaultUrl"
    assert dotted(module_params("functionApp")["keyVaultUrl"]) == "keyVault.outputs.uri"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["AZURE_TOKEN_CREDENTIALS"] == "prod"


def test_app_settings_carry_the_twilio_options() -> None:
    settings = app_settings()

    assert settings["TWILIO_FROM_NUMBER"] == "twilioFromNumber"
    assert settings["ALLOWED_DESTINATIONS"] == "allowedDestinations"
    assert settings["PUBLIC_BASE_URL"] == "publicBaseUrl"
    assert settings["DESTINATION_HOURLY_LIMIT"] == "destinationHourlyLimit"
    assert settings["DAILY_LIMIT"] == "dailyLimit"


@pytest.mark.parametrize(
    ("variable", "parameter"),
    [
        ("publicBaseUrlSetting", "publicBaseUrl"),
        ("hourlyLimitSetting", "destinationHourlyLimit"),
        ("dailyLimitSetting", "dailyLimit"),
    ],
)
def test_optional_settings_are_set_only_when_given(variable: str, parameter: str) -> None:
    function = bicep("app/function.bicep")
    setting = function["variables"][variable]["value"]["operator"]

    assert setting["operands"]["condition"] == {
        "function": {"type": "empty", "parameters": {"item_to_test": parameter}}
    }
    assert setting["operands"]["true_value"] == []
    assert variable in json.dumps(only("app/function.bicep", "Microsoft.Web/sites")["properties"]["siteConfig"])


def test_app_settings_leave_out_what_flex_consumption_refuses() -> None:
    assert not {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"} & set(app_settings())


def test_app_insights_is_reached_with_the_identity() -> None:
    settings = app_settings()

    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "applicationInsightsConnectionString"


def test_cors_lets_either_portal_address_test_the_functions() -> None:
    cors = only("app/function.bicep", "Microsoft.Web/sites")["properties"]["siteConfig"]["cors"]

    assert cors["allowedOrigins"] == ["https://portal.azure.com", "https://ms.portal.azure.com"]


def test_app_carries_the_azd_service_tag_of_azure_yaml() -> None:
    tags = only("app/function.bicep", "Microsoft.Web/sites")["tags"]["function"]

    assert tags["type"] == "union"
    assert tags["parameters"]["arg_2"] == {"'azd-service-name'": next(iter(azure_yaml()["services"]))}


# --- storage -----------------------------------------------------------------------------------------------------


def test_storage_refuses_shared_keys_public_blobs_and_old_tls() -> None:
    account = only("core/storage.bicep", "Microsoft.Storage/storageAccounts")["properties"]

    assert account["allowSharedKeyAccess"] is False
    assert account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["supportsHttpsTrafficOnly"] is True


def test_identity_gets_the_storage_data_roles_on_the_account_only() -> None:
    assignments = [
        body(assignment) | {"role": role_id(body(assignment), "core/storage.bicep")}
        for assignment in resources("core/storage.bicep", ROLE_ASSIGNMENT).values()
    ]

    assert {a["role"] for a in assignments} == STORAGE_DATA_ROLES
    assert all(a["scope"] == "storage" and a["properties"]["principalId"] == "identityPrincipalId" for a in assignments)
    assert dotted(module_params("storage")["identityPrincipalId"]) == "identity.outputs.principalId"


# --- Key Vault ---------------------------------------------------------------------------------------------------


def test_key_vault_uses_rbac_soft_delete_for_7_days_and_purge_protection() -> None:
    vault = only("core/keyvault.bicep", "Microsoft.KeyVault/vaults")["properties"]

    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True
    assert vault["enablePurgeProtection"] is True
    assert vault["softDeleteRetentionInDays"] == "softDeleteRetentionDays"
    assert module_params("keyVault")["softDeleteRetentionDays"] == "keyVaultSoftDeleteRetentionDays"
    assert bicep("main.bicep")["parameters"]["keyVaultSoftDeleteRetentionDays"]["default"] == 7


def test_identity_may_read_secrets_of_the_vault_and_nothing_broader() -> None:
    (declaration,) = [a for relative in BICEP_FILES for a in role_assignments(relative, KEY_VAULT_SECRETS_USER)]
    assignment = body(declaration)

    assert assignment["scope"] == "vault"
    assert assignment["properties"]["principalId"] == "identityPrincipalId"
    assert assignment["properties"]["principalType"] == "ServicePrincipal"
    assert dotted(module_params("keyVault")["identityPrincipalId"]) == "identity.outputs.principalId"


def test_deploying_principal_may_write_secrets_when_known() -> None:
    (declaration,) = role_assignments("core/keyvault.bicep", KEY_VAULT_SECRETS_OFFICER)
    assignment = body(declaration)

    assert assignment["scope"] == "vault"
    assert assignment["properties"]["principalId"] == "principalId"
    assert condition(declaration) == when_given("principalId")
    assert module_params("keyVault")["principalId"] == "principalId"


def test_deploying_principal_is_assigned_with_the_principal_type_azd_reports() -> None:
    (declaration,) = role_assignments("core/keyvault.bicep", KEY_VAULT_SECRETS_OFFICER)
    principal_type = body(declaration)["properties"]["principalType"]["operator"]

    assert principal_type["type"] == "conditional"
    assert principal_type["operands"]["condition"] == {
        "function": {"type": "empty", "parameters": {"item_to_test": "principalType"}}
    }
    assert principal_type["operands"]["true_value"] is None
    assert principal_type["operands"]["false_value"] == "principalType"
    assert module_params("keyVault")["principalType"] == "principalType"
    assert decorator("principalType", "allowed") == ["", "User", "ServicePrincipal", "Group"]
    assert parameters_file()["principalType"] == {"value": "${AZURE_PRINCIPAL_TYPE}"}


def test_twilio_secrets_are_written_only_when_given() -> None:
    secrets = resources("core/keyvault.bicep", "Microsoft.KeyVault/vaults/secrets").values()
    written = {body(s)["name"]: (body(s)["parent"], body(s)["properties"]["value"], condition(s)) for s in secrets}

    assert written == {
        Settings.account_sid_secret: ("vault", "twilioAccountSid", when_given("twilioAccountSid")),
        Settings.auth_token_secret: ("vault", "twilioAuthToken", when_given("twilioAuthToken")),
    }


def test_twilio_secrets_have_a_content_type() -> None:
    """checkov cannot see it (it misreads resources under `if`), so its skip of CKV_AZURE_114 rests on this."""
    secrets = resources("core/keyvault.bicep", "Microsoft.KeyVault/vaults/secrets").values()

    assert {body(s)["properties"].get("contentType") for s in secrets} == {"text/plain"}


def test_twilio_parameters_are_secure_and_optional() -> None:
    for relative in ("main.bicep", "core/keyvault.bicep"):
        for name in TWILIO_PARAMETERS:
            assert {"type": "secure"} in bicep(relative)["parameters"][name]["decorators"], (relative, name)
    assert all(bicep("main.bicep")["parameters"][name]["default"] == "" for name in TWILIO_PARAMETERS)


def test_twilio_credentials_reach_only_the_key_vault_module() -> None:
    main = bicep("main.bicep")
    variables = main["variables"]
    users = {
        name
        for name, module in main["modules"].items()
        if set(TWILIO_PARAMETERS) & set(references(body(module)["params"], variables))
    }

    assert users == {"keyVault"}


def test_no_output_reveals_a_twilio_credential() -> None:
    for relative in BICEP_FILES:
        template = bicep(relative)
        variables = template.get("variables", {})
        for name, output in template.get("outputs", {}).items():
            leaked = set(TWILIO_PARAMETERS) & set(references(output["value"], variables))
            assert not leaked, f"{relative} output {name} uses {leaked}"


# --- monitoring --------------------------------------------------------------------------------------------------


def test_app_insights_refuses_local_auth() -> None:
    component = only("core/monitoring.bicep", "Microsoft.Insights/components")["properties"]

    assert component["DisableLocalAuth"] is True
    assert dotted(component["WorkspaceResourceId"]) == "logAnalytics.id"


def test_log_analytics_refuses_local_auth() -> None:
    workspace = only("core/monitoring.bicep", "Microsoft.OperationalInsights/workspaces")["properties"]

    assert workspace["features"]["disableLocalAuth"] is True


def test_identity_may_publish_telemetry_to_app_insights() -> None:
    (declaration,) = role_assignments("core/monitoring.bicep", MONITORING_METRICS_PUBLISHER)
    assignment = body(declaration)

    assert assignment["scope"] == "applicationInsights"
    assert assignment["properties"]["principalId"] == "identityPrincipalId"
    assert dotted(module_params("monitoring")["identityPrincipalId"]) == "identity.outputs.principalId"


# --- what azd reads and writes -----------------------------------------------------------------------------------


def test_outputs_name_what_azd_and_the_postdeploy_hook_read() -> None:
    outputs = set(bicep("main.bicep")["outputs"])

    assert {
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
        "AZURE_RESOURCE_GROUP",
        "AZURE_FUNCTION_APP_NAME",
        "AZURE_KEY_VAULT_NAME",
        "KEY_VAULT_URL",
        "FUNCTION_APP_URL",
        "VOICE_URL",
        "SMS_URL",
        "CALL_STATUS_URL",
    } <= outputs


def test_webhook_outputs_are_the_webhook_routes() -> None:
    outputs = bicep("main.bicep")["outputs"]

    for output, function in (("VOICE_URL", "voice_url"), ("SMS_URL", "sms_url"), ("CALL_STATUS_URL", "call_status")):
        assert outputs[output]["value"] == "${webhookBaseUrl}" + FUNCTIONS[function].path(ROUTE_PREFIX)


def test_everything_is_deployed_in_the_resource_group_rg_env() -> None:
    abbreviations: dict[str, str] = json.loads((INFRA / "abbreviations.json").read_text(encoding="utf-8"))
    group = only("main.bicep", "Microsoft.Resources/resourceGroups")

    assert group["name"] == "${abbrs.resourcesResourceGroups}${environmentName}"
    assert abbreviations["resourcesResourceGroups"] == "rg-"
    assert {body(module)["scope"] for module in bicep("main.bicep")["modules"].values()} == {"rg"}


def test_generated_names_fit_azure_naming_rules() -> None:
    """Names are an abbreviation and the 13 characters of uniqueString(); Key Vault and storage allow 24."""
    abbreviations: dict[str, str] = json.loads((INFRA / "abbreviations.json").read_text(encoding="utf-8"))

    def name(module: str, param: str = "name") -> str:
        template = module_params(module)[param]
        template = re.sub(r"\$\{abbrs\.(\w+)\}", lambda m: abbreviations[m.group(1)], template)
        return str(template.replace("${resourceToken}", "0123456789abc"))

    assert re.fullmatch(r"[a-z0-9]{3,24}", name("storage"))
    assert re.fullmatch(r"[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]", name("keyVault"))
    assert len(name("functionApp")) <= 60
    assert len(name("functionApp", "planName")) <= 60


def test_parameters_file_sets_only_declared_parameters_and_every_required_one() -> None:
    mapped = parameters_file()
    declared = bicep("main.bicep")["parameters"]
    required = {name for name, parameter in declared.items() if parameter["default"] is None}

    assert set(mapped) <= set(declared)
    assert required <= set(mapped)


def test_parameters_file_defaults_match_the_bicep_defaults() -> None:
    mapped = parameters_file()
    declared = bicep("main.bicep")["parameters"]

    for name, entry in mapped.items():
        default = re.fullmatch(r"\$\{\w+=(.*)\}", entry["value"])
        if default:
            assert default.group(1) == str(declared[name]["default"]), name


def test_azd_environment_supplies_the_twilio_values() -> None:
    mapped = parameters_file()

    assert mapped["twilioAccountSid"] == {"value": "${TWILIO_ACCOUNT_SID}"}
    assert mapped["twilioAuthToken"] == {"value": "${TWILIO_AUTH_TOKEN}"}
    assert mapped["principalId"] == {"value": "${AZURE_PRINCIPAL_ID}"}


@pytest.mark.parametrize(
    ("variable", "parameter"),
    [
        ("AZURE_ENV_NAME", "environmentName"),
        ("TWILIO_FROM_NUMBER", "twilioFromNumber"),
        ("ALLOWED_DESTINATIONS", "allowedDestinations"),
        ("PYTHON_VERSION", "pythonVersion"),
        ("ALWAYS_READY_INSTANCE_COUNT", "alwaysReadyInstanceCount"),
        ("INSTANCE_MEMORY_MB", "instanceMemoryMB"),
        ("MAXIMUM_INSTANCE_COUNT", "maximumInstanceCount"),
        ("PUBLIC_BASE_URL", "publicBaseUrl"),
        ("DESTINATION_HOURLY_LIMIT", "destinationHourlyLimit"),
        ("DAILY_LIMIT", "dailyLimit"),
        ("ALERT_EMAIL", "alertEmail"),
        ("CALL_FAILURE_ALERT_PERCENT", "callFailureAlertPercent"),
    ],
)
def test_azd_env_set_variable_reaches_its_parameter(variable: str, parameter: str) -> None:
    assert re.fullmatch(rf"\$\{{{variable}(=[^}}]*)?\}}", parameters_file()[parameter]["value"])


def test_azure_yaml_deploys_the_project_as_a_python_function_app() -> None:
    project = azure_yaml()
    (service,) = project["services"].values()

    assert isinstance(project["name"], str)
    assert project["name"]
    assert service == {"project": ".", "language": "python", "host": "function"}
    assert (ROOT / project["infra"]["path"] / f"{project['infra']['module']}.bicep") == INFRA / "main.bicep"


@pytest.mark.parametrize("event", ["preprovision", "postdeploy"])
def test_azd_hooks_run_scripts_that_exist_and_stay_on_screen(event: str) -> None:
    """A non-interactive hook's output is cleared by azd when it ends; these print what to do next."""
    hooks = azure_yaml()["hooks"][event]

    assert hooks == {
        "posix": {"shell": "sh", "run": f"infra/hooks/{event}.sh", "interactive": True, "continueOnError": False},
        "windows": {
            "shell": "pwsh",
            "run": f"infra/hooks/{event}.ps1",
            "interactive": True,
            "continueOnError": False,
        },
    }
    assert all((ROOT / hook["run"]).is_file() for hook in hooks.values())
    assert set(azure_yaml()["hooks"]) == {"preprovision", "postdeploy"}


# --- the preprovision hook ---------------------------------------------------------------------------------------


def preprovision(**values: str) -> subprocess.CompletedProcess[str]:
    """The hook as azd runs it: sh, with the azd environment's values (only those given) as variables."""
    sh = shutil.which("sh")
    assert sh is not None
    return subprocess.run(
        [sh, str(INFRA / "hooks/preprovision.sh")],
        env={"PATH": "/usr/bin:/bin", **values},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.processes
@pytest.mark.parametrize(
    "values",
    [{}, {"ALWAYS_READY_INSTANCE_COUNT": "100"}, {"MAXIMUM_INSTANCE_COUNT": "40", "ALWAYS_READY_INSTANCE_COUNT": "40"}],
    ids=["defaults", "as many as the default maximum", "as many as the maximum"],
)
def test_preprovision_accepts_always_ready_instances_up_to_the_maximum(values: dict[str, str]) -> None:
    done = preprovision(**values)

    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@pytest.mark.processes
@pytest.mark.parametrize(
    ("values", "maximum"),
    [
        ({"ALWAYS_READY_INSTANCE_COUNT": "101"}, "100"),
        ({"MAXIMUM_INSTANCE_COUNT": "40", "ALWAYS_READY_INSTANCE_COUNT": "41"}, "40"),
    ],
    ids=["over the default maximum", "over the maximum"],
)
def test_preprovision_refuses_more_always_ready_instances_than_the_maximum(
    values: dict[str, str], maximum: str
) -> None:
    done = preprovision(**values)

    assert done.returncode == 1
    assert done.stderr == (
        f"preprovision: ALWAYS_READY_INSTANCE_COUNT ({values['ALWAYS_READY_INSTANCE_COUNT']}) is more than"
        f" MAXIMUM_INSTANCE_COUNT ({maximum}); Flex Consumption refuses more always-ready instances than the app may"
        " have. Lower one, or raise the other:\n"
        f"  azd env set ALWAYS_READY_INSTANCE_COUNT {maximum}\n"
    )


@pytest.mark.processes
@pytest.mark.parametrize("name", ["MAXIMUM_INSTANCE_COUNT", "ALWAYS_READY_INSTANCE_COUNT"])
def test_preprovision_refuses_a_count_that_is_not_a_whole_number(name: str) -> None:
    done = preprovision(**{name: "2.5"})

    assert done.returncode == 1
    assert done.stderr == f"preprovision: {name} must be a whole number, not '2.5'.\n"


def test_preprovision_defaults_are_the_parameters_file_defaults() -> None:
    """An unset value means the parameter's default; the hook must assume the same one."""
    hook = (INFRA / "hooks/preprovision.sh").read_text(encoding="utf-8")
    mapped = parameters_file()

    for variable, parameter in (
        ("MAXIMUM_INSTANCE_COUNT", "maximumInstanceCount"),
        ("ALWAYS_READY_INSTANCE_COUNT", "alwaysReadyInstanceCount"),
    ):
        default = re.fullmatch(rf"\$\{{{variable}=(\d+)\}}", mapped[parameter]["value"])
        assert default is not None, parameter
        assert f"${{{variable}:-{default.group(1)}}}" in hook


def test_readme_commands_read_only_values_azd_writes() -> None:
    """The documented `eval "$(azd env get-values)"` commands use main.bicep's outputs by name."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    commands = "".join(page.read_text(encoding="utf-8") for page in pages)
    used = set(re.findall(r"\$\{?(AZURE_[A-Z_]+|FUNCTION_APP_URL|KEY_VAULT_URL)\b", commands))

    assert {"AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME", "FUNCTION_APP_URL"} <= used
    assert used <= set(bicep("main.bicep")["outputs"])


def test_per_instance_concurrency_reaches_flex_and_the_app_with_the_apps_own_default() -> None:
    """Flex scales on it, and the app sizes its Twilio connection pool to it: both must get the same number."""
    scale = only("app/function.bicep", "Microsoft.Web/sites")["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    setting = app_settings()["PER_INSTANCE_CONCURRENCY"]

    assert scale["triggers"] == {"http": {"perInstanceConcurrency": "perInstanceConcurrency"}}
    assert setting == {"function": {"type": "string", "parameters": {"value_to_convert": "perInstanceConcurrency"}}}
    assert module_params("functionApp")["perInstanceConcurrency"] == "perInstanceConcurrency"
    assert (decorator("perInstanceConcurrency", "min_value"), decorator("perInstanceConcurrency", "max_value")) == (
        1,
        1000,
    )
    default = bicep("main.bicep")["parameters"]["perInstanceConcurrency"]["default"]
    assert default == Settings().per_instance_concurrency
    assert parameters_file()["perInstanceConcurrency"] == {"value": f"${{PER_INSTANCE_CONCURRENCY={default}}}"}
