"""Provider API keys: per workspace from SSM Parameter Store (SecureString), cached, with environment fallbacks.

Keys are stored at ``{PROVIDER_KEYS_PATH}/{workspace}/providers/{provider}`` (e.g.
``/leadpipe/dev/workspaces/default/providers/apollo``) and read with one GetParametersByPath through Powertools'
SSMProvider, cached for 5 minutes per container. A provider without a stored key falls back to its environment
variable (``APOLLO_API_KEY``, ...); a provider with neither is skipped and reported, never faked.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from leadpipe.observability import logger

CACHE_SECONDS = 300


class ProviderKeys:
    def __init__(
        self,
        path_prefix: str | None,
        *,
        ssm_client: Any = None,
        env: Mapping[str, str] | None = None,
        fetch: Callable[[str], Mapping[str, str]] | None = None,
    ) -> None:
        self.path_prefix = (path_prefix or "").rstrip("/")
        self.env = os.environ if env is None else env
        self._fetch = fetch
        self._ssm_client = ssm_client
        self._provider: Any = None

    def _stored(self, workspace: str) -> Mapping[str, str]:
        if not self.path_prefix:
            return {}
        return self._by_path(f"{self.path_prefix}/{workspace}/providers")

    def _by_path(self, path: str) -> Mapping[str, str]:
        if self._fetch is not None:
            return self._fetch(path)
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SSMProvider

            self._provider = SSMProvider(boto3_client=self._ssm_client) if self._ssm_client else SSMProvider()
        try:
            values = self._provider.get_multiple(path, decrypt=True, max_age=CACHE_SECONDS)
        except Exception as exc:  # no parameters, no permission, throttled: fall back to the environment
            logger.warning("could not read stored secrets", extra={"path": path, "error": str(exc)})
            return {}
        return {str(k).rsplit("/", 1)[-1]: str(v) for k, v in values.items()}

    def forget(self, workspace: str) -> None:
        """Drop this container's cached secrets of ``workspace`` (after it changed them): the next read is fresh.
        Other containers see the change once their cache expires (``CACHE_SECONDS``)."""
        if self._provider is None or not self.path_prefix:
            return
        root = f"{self.path_prefix}/{workspace}"
        for key in [k for k in self._provider.store if k and (k[0] == root or str(k[0]).startswith(root + "/"))]:
            self._provider.store.pop(key, None)

    def secret(self, workspace: str, name: str, env_var: str | None = None) -> str | None:
        """One secret of a workspace, e.g. ``hubspot/token`` at ``{prefix}/{workspace}/hubspot/token``, else the
        environment variable -- for HubSpot secrets only in the default workspace: the deployment's token opens the
        deployment's portal, which belongs to the default workspace; another workspace without a token of its own
        must not read or write it."""
        folder, _, leaf = name.rpartition("/")
        if self.path_prefix:
            path = f"{self.path_prefix}/{workspace}/{folder}" if folder else f"{self.path_prefix}/{workspace}"
            stored = self._by_path(path)
            if stored.get(leaf):
                return stored[leaf].strip()
        if name.startswith("hubspot/") and workspace != (self.env.get("DEFAULT_WORKSPACE") or "default"):
            return None
        value = self.env.get(env_var) if env_var else None
        return value.strip() if value and value.strip() else None

    def for_workspace(self, workspace: str, names_to_env: Mapping[str, str | None]) -> dict[str, str | None]:
        """Each provider's key (stored, else from its environment variable), or None."""
        stored = self._stored(workspace)
        keys: dict[str, str | None] = {}
        for name, env_var in names_to_env.items():
            value = stored.get(name) or (self.env.get(env_var) if env_var else None)
            keys[name] = value.strip() if value and value.strip() else None
        return keys
