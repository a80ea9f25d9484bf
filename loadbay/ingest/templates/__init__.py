"""Tenant templates: which entity types, event types and state keys a tenant's data has."""
