"""Tenants and, later, API keys, scopes and rate limits."""
