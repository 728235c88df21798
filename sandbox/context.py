"""What a Bot API method handler gets: the world, flood control and the request's files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.flood import FloodControl
from sandbox.spec import Upload
from sandbox.world import World


@dataclass
class Ctx:
    world: World
    flood: FloodControl
    uploads: dict[str, Upload] = field(default_factory=dict)


Handler = Callable[[Ctx, dict[str, Any]], Awaitable[Any]]
