"""Building the configured providers, in waterfall order, for one workspace.

``ENRICH_PROVIDERS`` lists them by name. A provider that needs a key and has none (neither stored for the workspace
nor in its environment variable) is skipped and reported; an unknown name is a configuration error. Each real
provider's base URL can be overridden with ``<NAME>_BASE_URL`` (the local runtime points them at its fakes).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.enrichment.providers.base import Provider, ProviderInfo
from leadpipe.errors import ConfigurationError

# name -> (module, class). Modules are imported only when their provider is configured.
PROVIDERS: dict[str, tuple[str, str]] = {
    "sample": ("leadpipe.enrichment.providers.sample", "SampleRegistryProvider"),
    "sample-web": ("leadpipe.enrichment.providers.sample", "SampleWebProvider"),
    "apollo": ("leadpipe.enrichment.providers.apollo", "ApolloProvider"),
    "hunter": ("leadpipe.enrichment.providers.hunter", "HunterProvider"),
    "dropcontact": ("leadpipe.enrichment.providers.dropcontact", "DropcontactProvider"),
    "pdl": ("leadpipe.enrichment.providers.pdl", "PdlProvider"),
}


def provider_class(name: str) -> Any:
    if name not in PROVIDERS:
        raise ConfigurationError(
            f"unknown enrichment provider {name!r} in ENRICH_PROVIDERS (known: {', '.join(sorted(PROVIDERS))})"
        )
    module, cls = PROVIDERS[name]
    return getattr(importlib.import_module(module), cls)


def provider_info(name: str) -> ProviderInfo:
    info = provider_class(name).info
    assert isinstance(info, ProviderInfo)
    return info


@dataclass
class ProviderSet:
    providers: list[Provider]
    skipped: dict[str, str] = field(default_factory=dict)  # name -> reason

    def close(self) -> None:
        for provider in self.providers:
            provider.close()


def env_var_base_url(name: str) -> str:
    return name.upper().replace("-", "_") + "_BASE_URL"


def build_providers(
    order: Sequence[str],
    keys: ProviderKeys,
    workspace: str,
    *,
    budget: Budget | None = None,
    env: Mapping[str, str] | None = None,
) -> ProviderSet:
    env = os.environ if env is None else env
    infos = {name: provider_info(name) for name in order}
    found = keys.for_workspace(workspace, {n: i.key_env for n, i in infos.items() if i.needs_key})
    built: list[Provider] = []
    skipped: dict[str, str] = {}
    for name in order:
        info = infos[name]
        cls = provider_class(name)
        if not info.needs_key:
            built.append(cls())
            continue
        key = found.get(name)
        if not key:
            skipped[name] = (
                f"no API key (store one at the workspace's providers/{name} parameter or set {info.key_env})"
            )
            continue
        kwargs: dict[str, Any] = {"budget": budget}
        base_url = env.get(env_var_base_url(name))
        if base_url:
            kwargs["base_url"] = base_url
        built.append(cls(key, **kwargs))
    return ProviderSet(built, skipped)


def describe(order: Sequence[str], keys: ProviderKeys, workspace: str) -> list[dict[str, Any]]:
    """What the status endpoint reports: each configured provider, whether it will be asked, and why not."""
    infos = {name: provider_info(name) for name in order}
    found = keys.for_workspace(workspace, {n: i.key_env for n, i in infos.items() if i.needs_key})
    out = []
    for position, name in enumerate(order, start=1):
        info = infos[name]
        ready = not info.needs_key or bool(found.get(name))
        out.append(
            {
                "name": name,
                "position": position,
                "enabled": ready,
                "reason": None if ready else "no API key",
                "person_fields": sorted(info.person_fields),
                "company_fields": sorted(info.company_fields),
                "batch_size": info.batch_size,
                "rate_limit": f"{info.rate_limit.calls}/{info.rate_limit.per_seconds:g}s",
                "asynchronous": info.asynchronous,
            }
        )
    return out
