"""The ``world`` fixture (sandbox, real dispatcher, both databases) for tests of bot/ modules."""

from tests.bot.conversations.conftest import world  # noqa: F401
