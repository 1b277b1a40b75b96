"""Provider registry: slug -> provider. A new provider is one module plus one line here."""

from __future__ import annotations

from shared.providers import acessorias
from shared.providers.base import Provider

PROVIDERS: dict[str, Provider] = {
    acessorias.SLUG: acessorias.PROVIDER,
}


def get_provider(slug: str) -> Provider | None:
    """The provider for a slug, if we have one."""
    return PROVIDERS.get(slug)
