"""The tenant every request acts for (one default tenant until API keys name theirs)."""

from __future__ import annotations

DEFAULT_TENANT_ID = "default"
DEFAULT_TENANT_NAME = "Default tenant"
