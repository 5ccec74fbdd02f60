"""Closed-deal enrichment: won and lost deals from HubSpot, buying roles, account signals, the ICP profile."""
