"""Ports for the local stacks tests start (chosen as `infra.local.supervise.free_ports` does)."""

from __future__ import annotations

from dataclasses import fields

from infra.local.stack import Ports
from infra.local.supervise import free_ports


def stack_port_env() -> dict[str, str]:
    """A port for every part of `make run`'s stack, in the variables that move them."""
    names = [Ports.variable(f.name) for f in fields(Ports)]
    return dict(zip(names, map(str, free_ports(len(names))), strict=True))
