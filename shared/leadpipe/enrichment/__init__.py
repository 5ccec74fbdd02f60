"""Enrichment: providers behind one interface, a per-field waterfall with a TTL cache, merged values with
provenance and confidence, and a quality score (DESIGN section 3; docs/enrichment.md)."""
