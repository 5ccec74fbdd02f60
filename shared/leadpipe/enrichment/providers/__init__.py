"""Enrichment providers. Each module holds one adapter; ``registry`` builds them by name."""
