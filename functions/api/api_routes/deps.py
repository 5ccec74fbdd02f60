"""Per-container wiring of the API function: settings, AWS clients and services, built on first use."""

from __future__ import annotations

from functools import cache

from leadpipe.apikeys import ApiKeyStore, KeyResolver
from leadpipe.aws import AwsClients
from leadpipe.contacts import ContactRepository
from leadpipe.deals.service import DealService
from leadpipe.deals.store import DealRepository
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.events import EventPublisher
from leadpipe.importer import ImportService
from leadpipe.jobs import JobRepository
from leadpipe.settings import Settings, get_settings
from leadpipe.workspaces import WorkspaceRepository, workspace_repository

clients = AwsClients()


@cache
def settings() -> Settings:
    return get_settings().require(
        "contacts_table", "state_table", "uploads_bucket", "import_queue_url", "enrich_queue_url", "sync_queue_url"
    )


@cache
def api_keys() -> ApiKeyStore:
    return ApiKeyStore(clients.dynamodb, settings().state_table)


@cache
def key_resolver() -> KeyResolver:
    """Key -> workspace, cached per container (see leadpipe.apikeys)."""
    return KeyResolver(api_keys())


@cache
def contacts() -> ContactRepository:
    return ContactRepository(clients.dynamodb, settings().contacts_table)


@cache
def jobs() -> JobRepository:
    return JobRepository(clients.dynamodb, settings().state_table)


@cache
def workspaces() -> WorkspaceRepository:
    return workspace_repository(clients.dynamodb, settings())


@cache
def provider_keys() -> ProviderKeys:
    return ProviderKeys(settings().provider_keys_path, ssm_client=clients.get("ssm"))


@cache
def importer() -> ImportService:
    return ImportService(
        s3=clients.s3,
        sqs=clients.sqs,
        contacts=contacts(),
        jobs=jobs(),
        publisher=EventPublisher(clients.events, settings().event_bus_name),
        settings=settings(),
    )


@cache
def deals() -> DealService:
    """Starts runs and reads their results; the runs themselves happen in the deals function."""
    return DealService(
        store=DealRepository(clients.dynamodb, settings().state_table),
        contacts=contacts(),
        sqs=clients.sqs,
        settings=settings(),
        keys=provider_keys(),
        workspaces=workspaces(),
    )
