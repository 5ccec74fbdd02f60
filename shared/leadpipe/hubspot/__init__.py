"""HubSpot: the one HTTP client, the property mapping and overwrite policies, and the sync service."""
