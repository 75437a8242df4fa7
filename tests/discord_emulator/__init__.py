"""A local Discord: gateway v10 websocket and REST routes, for end-to-end tests."""

from tests.discord_emulator.server import Emulator, snowflake

__all__ = ["Emulator", "snowflake"]
