"""Fixtures for the sandbox tests: a fresh sandbox per test on 127.0.0.1 with two users."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from sandbox_testkit import ANN, BOB

from sandbox.app import RunningSandbox, running_sandbox


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    """Flood control sped up 1000×, so only the tests that want a 429 see one."""
    async with running_sandbox(scale=1000) as sb:
        await sb.client.create_user(**ANN)
        await sb.client.create_user(**BOB)
        yield sb


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
