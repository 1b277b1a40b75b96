"""Per-tenant provider credentials: environment locally, Google Secret Manager in production.

A secret is named `syncq-<tenant_slug>-<provider>-<key>`; locally it is the environment
variable `SYNCQ_SECRET_<NAME>` (upper case, dashes as underscores). Values are never
logged, returned or stored in a job's payload or result.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Protocol

from shared.errors import UpstreamError
from shared.settings import get_settings


class SecretStore(Protocol):
    def get(self, name: str) -> str | None: ...


def secret_name(tenant_slug: str, provider: str, key: str) -> str:
    """The canonical name of a tenant's provider secret."""
    return f"syncq-{tenant_slug}-{provider}-{key}"


ENV_PREFIX = "SYNCQ_SECRET_"  # what every local secret's variable starts with


def env_var(name: str) -> str:
    """The environment variable holding a secret locally."""
    return ENV_PREFIX + name.upper().replace("-", "_")


class EnvSecretStore:
    """Secrets from environment variables (local stack, tests)."""

    def get(self, name: str) -> str | None:
        return os.environ.get(env_var(name)) or None


class GcpSecretStore:
    """Google Secret Manager, latest version, cached briefly per warm instance."""

    def __init__(self, project: str, ttl_s: float = 300.0) -> None:
        from google.cloud import secretmanager  # noqa: PLC0415

        self._client = secretmanager.SecretManagerServiceClient()
        self._project = project
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str | None:
        from google.api_core import exceptions as gexc  # noqa: PLC0415

        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(name)
            if hit and now - hit[0] < self._ttl:
                return hit[1]
        path = f"projects/{self._project}/secrets/{name}/versions/latest"
        try:
            value: str | None = self._client.access_secret_version(
                name=path, timeout=10
            ).payload.data.decode()
        except gexc.NotFound:
            value = None
        with self._lock:
            self._cache[name] = (now, value)
        return value


_store: SecretStore | None = None
_lock = threading.Lock()


def get_store() -> SecretStore:
    """The configured secret store (created once per process)."""
    global _store  # noqa: PLW0603 - one client per process
    with _lock:
        if _store is None:
            settings = get_settings()
            _store = (
                GcpSecretStore(settings.tasks.gcp_project)
                if settings.secrets.secret_backend == "gcp"
                else EnvSecretStore()
            )
        return _store


def reset_store() -> None:
    """Forget the store (tests)."""
    global _store  # noqa: PLW0603
    with _lock:
        _store = None


def require_secret(tenant_slug: str, provider: str, key: str) -> str:
    """A tenant's provider secret, or a non-retryable error naming what is missing."""
    value = get_store().get(secret_name(tenant_slug, provider, key))
    if not value:
        raise UpstreamError(
            f"No {provider} {key} is configured for this tenant.",
            code="credentials_missing",
            retryable=False,
        )
    return value
