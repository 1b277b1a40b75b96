"""Provider registry: slug -> provider. A new provider is one module plus one line here."""

from __future__ import annotations

from shared.providers import acessorias, bomcontrole, onecode
from shared.providers.base import Provider

PROVIDERS: dict[str, Provider] = {
    acessorias.SLUG: acessorias.PROVIDER,
    onecode.SLUG: onecode.PROVIDER,
    bomcontrole.SLUG: bomcontrole.PROVIDER,
}


def get_provider(slug: str) -> Provider | None:
    """The provider for a slug, if we have one."""
    return PROVIDERS.get(slug)
