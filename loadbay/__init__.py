"""Loadbay: a self-hosted bulk ingestion server."""

__version__ = "0.1.0"
