"""HTTP surfaces: one router module per API, thin over the ingest engine."""
