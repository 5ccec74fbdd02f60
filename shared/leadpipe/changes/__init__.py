"""Change capture: HubSpot webhooks and polling in, the changed contacts compared and taken back in."""
