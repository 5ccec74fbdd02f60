"""Workspace secrets: the HubSpot access token and app client secret, the providers' API keys.

They live only in SSM Parameter Store, as SecureString parameters encrypted with the AWS managed key ``aws/ssm``,
at the paths their readers (``leadpipe.enrichment.keys.ProviderKeys``, which decrypts them) already use -- never
in DynamoDB, never in a log line, never in an API answer. ``PROVIDER_KEYS_PATH`` is ``/leadpipe/{Stage}/workspaces``;
each parameter, and the environment variable its readers fall back to when the workspace stored none:

- ``{PROVIDER_KEYS_PATH}/{ws}/hubspot/token``: the HubSpot private app's access token (``HUBSPOT_TOKEN``);
- ``{PROVIDER_KEYS_PATH}/{ws}/hubspot/client_secret``: the HubSpot app's client secret, which verifies webhook
  signatures (``HUBSPOT_CLIENT_SECRET``);
- ``{PROVIDER_KEYS_PATH}/{ws}/providers/{provider}``: an enrichment provider's key (apollo, dropcontact, hunter,
  pdl: ``APOLLO_API_KEY``, ...) or Serper's (``SERPER_API_KEY``);
- ``{PROVIDER_KEYS_PATH}/{ws}/lemlist``: Lemlist's key, for imports (``LEMLIST_API_KEY``).

Nothing here reads a value back: whether a secret is set, and since when, comes from the parameters' metadata
(DescribeParameters). After a write, this container's cached secrets of the workspace are dropped; other containers
read the new value when their cache expires (``leadpipe.enrichment.keys.CACHE_SECONDS``, 5 minutes).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.errors import BadRequest, ConfigurationError, NotFound
from leadpipe.observability import logger

MAX_SECRET_CHARS = 4096  # a standard-tier parameter holds at most 4 KB


def _not_a_secret_write(record: logging.LogRecord) -> bool:
    """botocore logs every request's parameters at DEBUG ("Making request for OperationModel(name=PutParameter)
    with params: {... body ...}"): with the root logger at DEBUG a secret would reach the logs. Those records of
    PutParameter are dropped (the filter runs only for records that pass the level check: free otherwise)."""
    args = record.args if isinstance(record.args, tuple) else ()
    return not (args and getattr(args[0], "name", None) == "PutParameter")


logging.getLogger("botocore.endpoint").addFilter(_not_a_secret_write)


@dataclass(frozen=True)
class SecretSpec:
    parameter: str  # below {PROVIDER_KEYS_PATH}/{workspace}/
    env_var: str | None  # the deployment-wide fallback the readers use
    label: str
    # The HubSpot secrets open the deployment's own portal: their environment fallback serves the default workspace
    # only (see ProviderKeys.secret); a provider's key serves every workspace that has none of its own.
    fallback_everywhere: bool = True


HUBSPOT_SECRETS: dict[str, SecretSpec] = {
    "token": SecretSpec("hubspot/token", "HUBSPOT_TOKEN", "HubSpot access token", fallback_everywhere=False),
    "client_secret": SecretSpec(
        "hubspot/client_secret", "HUBSPOT_CLIENT_SECRET", "HubSpot app client secret", fallback_everywhere=False
    ),
}

# Keys read outside the enrichment registry, at these parameters (see leadpipe.deals.service.serper_key and
# leadpipe.remote_import.credential).
OTHER_PROVIDER_SECRETS: dict[str, SecretSpec] = {
    "serper": SecretSpec("providers/serper", "SERPER_API_KEY", "Serper API key (account signals)"),
    "lemlist": SecretSpec("lemlist", "LEMLIST_API_KEY", "Lemlist API key (imports)"),
}


def provider_secrets() -> dict[str, SecretSpec]:
    """Every provider that takes a key, by name: the enrichment providers that need one, Serper and Lemlist."""
    from leadpipe.enrichment.registry import PROVIDERS, provider_info

    specs: dict[str, SecretSpec] = {}
    for name in sorted(PROVIDERS):
        info = provider_info(name)
        if info.needs_key:
            specs[name] = SecretSpec(f"providers/{name}", info.key_env, f"{name} API key")
    return specs | OTHER_PROVIDER_SECRETS


def provider_secret(name: str) -> SecretSpec:
    """The secret of a provider by name; 404 for a name leadpipe does not know, 400 for one that takes no key."""
    from leadpipe.enrichment.registry import PROVIDERS

    specs = provider_secrets()
    if name in specs:
        return specs[name]
    if name in PROVIDERS:
        raise BadRequest(f"provider {name} needs no API key", code="provider_without_key")
    raise NotFound(
        f"unknown provider {name!r} (providers that take a key: {', '.join(sorted(specs))})", code="unknown_provider"
    )


def check_secret(value: str, label: str) -> str:
    """The value to store (surrounding spaces removed). The errors never quote the value."""
    cleaned = value.strip()
    if not cleaned:
        raise BadRequest(f"the {label} is empty", code="invalid_secret")
    if len(cleaned) > MAX_SECRET_CHARS:
        raise BadRequest(f"the {label} is longer than {MAX_SECRET_CHARS} characters", code="invalid_secret")
    if any(c.isspace() or not c.isprintable() for c in cleaned):
        raise BadRequest(f"the {label} contains spaces or control characters", code="invalid_secret")
    return cleaned


class SecretState(BaseModel):
    """Whether a secret is available to the workspace -- never its value."""

    set: bool = Field(description="a value is available: stored for the workspace, or the deployment's fallback")
    source: Literal["workspace", "environment"] | None = Field(
        description="workspace: stored in Parameter Store for this workspace; environment: the deployment's variable"
    )
    updated_at: datetime | None = Field(description="when the workspace's stored value was last written")


class WorkspaceSecrets:
    def __init__(
        self,
        ssm: Any,
        path_prefix: str,
        *,
        keys: ProviderKeys | None = None,
        env: Mapping[str, str] | None = None,
        default_workspace: str = "default",
    ) -> None:
        self.ssm = ssm
        self.default_workspace = default_workspace
        self.path_prefix = (path_prefix or "").rstrip("/")
        self.keys = keys  # this container's reader: its cache is dropped after a change
        self.env = os.environ if env is None else env

    def _root(self, workspace: str) -> str:
        if not self.path_prefix:
            raise ConfigurationError("PROVIDER_KEYS_PATH is not set: workspace secrets cannot be stored")
        return f"{self.path_prefix}/{workspace}"

    def parameter_name(self, workspace: str, spec: SecretSpec) -> str:
        return f"{self._root(workspace)}/{spec.parameter}"

    def put(self, workspace: str, spec: SecretSpec, value: str) -> None:
        """Store (or replace) the secret as a SecureString."""
        self.ssm.put_parameter(
            Name=self.parameter_name(workspace, spec),
            Value=check_secret(value, spec.label),
            Type="SecureString",
            Overwrite=True,
            Description=f"leadpipe: {spec.label} of workspace {workspace}",
        )
        self._changed(workspace)
        logger.info("workspace secret stored", extra={"workspace": workspace, "secret": spec.parameter})

    def delete(self, workspace: str, spec: SecretSpec) -> bool:
        """Remove the stored secret (the environment fallback, if any, applies again); False if none was stored."""
        try:
            self.ssm.delete_parameter(Name=self.parameter_name(workspace, spec))
        except self.ssm.exceptions.ParameterNotFound:
            return False
        self._changed(workspace)
        logger.info("workspace secret removed", extra={"workspace": workspace, "secret": spec.parameter})
        return True

    def _changed(self, workspace: str) -> None:
        if self.keys is not None:
            self.keys.forget(workspace)

    def stored(self, workspace: str) -> dict[str, datetime]:
        """The workspace's stored secrets (parameter below the workspace's path -> last written), from metadata."""
        root = self._root(workspace)
        found: dict[str, datetime] = {}
        kwargs: dict[str, Any] = {
            "ParameterFilters": [{"Key": "Path", "Option": "Recursive", "Values": [root]}],
            "MaxResults": 50,
        }
        while True:
            page = self.ssm.describe_parameters(**kwargs)
            for parameter in page.get("Parameters", []):
                name = str(parameter["Name"])
                if name.startswith(root + "/"):
                    found[name[len(root) + 1 :]] = parameter["LastModifiedDate"]
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]

    def states(self, workspace: str, specs: Mapping[str, SecretSpec]) -> dict[str, SecretState]:
        """Each named secret's state, with one listing of the workspace's parameters."""
        stored = self.stored(workspace)
        return {name: self.state(workspace, spec, stored) for name, spec in specs.items()}

    def state(self, workspace: str, spec: SecretSpec, stored: Mapping[str, datetime]) -> SecretState:
        if spec.parameter in stored:
            return SecretState(set=True, source="workspace", updated_at=stored[spec.parameter])
        applies = spec.env_var and (spec.fallback_everywhere or workspace == self.default_workspace)
        fallback = self.env.get(spec.env_var, "") if spec.env_var and applies else ""
        if fallback.strip():
            return SecretState(set=True, source="environment", updated_at=None)
        return SecretState(set=False, source=None, updated_at=None)
