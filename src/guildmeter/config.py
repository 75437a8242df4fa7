"""Configuration: a TOML file, overridden by environment variables and command-line options."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from guildmeter.errors import GuildmeterError
from guildmeter.store import DEFAULT_DB_URL

__all__ = ["INTENT_MODES", "Config", "load_config"]

#: Where ``heavy_work`` may run.
HEAVY_WORK_MODES = ("auto", "processes", "threads")
#: What ``intents`` may say: both privileged intents, Server Members only, or neither.
INTENT_MODES = ("all", "no-message-content", "minimal")


@dataclass(frozen=True)
class Config:
    """Every setting, with its default. See the README's "Configuration" section."""

    db: str = DEFAULT_DB_URL
    #: Seconds between two flushes of the in-memory counters to the database.
    flush_interval_seconds: float = 5.0
    #: Seconds after a month ends before its pseudonyms are replaced and its key destroyed.
    #: Raise it above the flush interval when several processes (shards) write one database.
    anonymise_grace_seconds: float = 0.0
    #: User and channel ids that are never counted.
    ignored_users: frozenset[int] = field(default_factory=frozenset)
    ignored_channels: frozenset[int] = field(default_factory=frozenset)
    #: Keep generation prompts (members' own words) in the usage tables. Off by default.
    store_prompts: bool = False
    #: Heavy commands (dumps, reports) a member may run per ``cooldown_seconds``.
    cooldown_uses: int = 3
    cooldown_seconds: float = 60.0
    #: ``/stats`` a member may run per ``stats_cooldown_seconds``.
    stats_cooldown_uses: int = 2
    stats_cooldown_seconds: float = 30.0
    #: Workers for heavy commands (dumps, reports, /stats); the flush has its own thread.
    heavy_workers: int = 2
    #: Where heavy work runs: "processes" (a heavy command cannot slow the flush),
    #: "threads" (less memory; but both then need Python's interpreter lock), or "auto":
    #: processes in the standalone bot, threads in a host bot (worker processes start by
    #: re-running the host's main script, which must then guard its start-up with
    #: ``if __name__ == "__main__":`` — opt in with "processes" once it does).
    heavy_work: str = "auto"
    #: A heavy command still running after this many seconds is abandoned (its member told).
    heavy_job_timeout_seconds: float = 600.0
    #: Heavy commands running at once, per member, per guild and in all.
    heavy_jobs_per_member: int = 1
    heavy_jobs_per_guild: int = 2
    heavy_jobs_total: int = 8
    #: The longest range a dump may cover, in days.
    max_dump_days: int = 366
    #: The high-water mark: counters held in memory at most while the database is down
    #: (about 250 bytes each). Beyond it new events are dropped, with a loud warning.
    max_counters_in_memory: int = 2_000_000
    #: The privileged intents asked for (see README, "Intents"): ``all``,
    #: ``no-message-content`` (Server Members only) or ``minimal`` (neither). Discord
    #: refusing one is not fatal: the bot reconnects without it.
    intents: str = "all"
    #: The web dashboard (README, "Dashboard"): served inside the bot process when true.
    dashboard: bool = False
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8080
    #: The address people use, behind a reverse proxy (the OAuth2 redirect is built on it).
    dashboard_public_url: str = ""
    #: Signs the session cookies; empty: a random secret per process (sessions are in memory).
    dashboard_secret: str = ""
    #: The Discord application's OAuth2 client (Login with Discord); the secret may also
    #: come from ``GUILDMETER_OAUTH_CLIENT_SECRET``.
    oauth_client_id: str = ""
    oauth_client_secret: str = ""
    #: Where Discord's OAuth2 pages and REST API are (tests point them at the emulator).
    oauth_authorize_url: str = "https://discord.com/oauth2/authorize"
    discord_api_base: str = "https://discord.com/api/v10"
    #: The IANA timezone of guilds that never set one (``statsconfig timezone``).
    default_timezone: str = "UTC"
    #: Months after its end a month keeps its member-level rows (hourly counts under a
    #: token, usage records with member ids); then only its totals and stored reports stay.
    #: 0 keeps everything. A guild's ``statsconfig retention`` overrides it.
    retention_months: int = 0
    #: Seconds between two edits of a history backfill's progress message.
    backfill_progress_seconds: float = 5.0


#: Seconds settings stop at a month: beyond it a grace or cooldown is nonsense, and timers
#: given such values overflow.
_MAX_SECONDS = 31 * 86400
#: The bounds of each numeric setting, both included (a float minimum of 0.0 excludes 0).
_BOUNDS: dict[str, tuple[float, float]] = {
    "flush_interval_seconds": (0.0, _MAX_SECONDS),
    "anonymise_grace_seconds": (0, _MAX_SECONDS),
    "cooldown_uses": (1, 10_000),
    "cooldown_seconds": (0.0, _MAX_SECONDS),
    "stats_cooldown_uses": (1, 10_000),
    "stats_cooldown_seconds": (0.0, _MAX_SECONDS),
    "heavy_workers": (1, 256),
    "heavy_job_timeout_seconds": (0.0, _MAX_SECONDS),
    "heavy_jobs_per_member": (1, 10_000),
    "heavy_jobs_per_guild": (1, 10_000),
    "heavy_jobs_total": (1, 10_000),
    "max_dump_days": (1, 100 * 366),
    "max_counters_in_memory": (1, 1_000_000_000),
    "dashboard_port": (1, 65535),
    "retention_months": (0, 1200),
    "backfill_progress_seconds": (0.0, _MAX_SECONDS),
}


def _check_bounds(name: str, value: float, low: float, high: float) -> None:
    """Refuse a value outside [low, high] (a float low of 0.0: above 0), NaN and infinity."""
    if isinstance(low, float) and low == 0.0:
        ok, wanted = 0 < value <= high, f"above 0 and at most {high:g}"
    else:
        ok, wanted = low <= value <= high, f"from {low:g} to {high:g}"
    if name == "retention_months":
        wanted = f"0 (keep everything) to {high:g} months"
    if not ok:  # NaN compares false: refused too
        raise GuildmeterError(f"setting {name} must be {wanted}, not {value!r}")


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """Read ``path`` (TOML, keys as in `Config`), then ``GUILDMETER_DB``, then ``overrides``.

    Unknown keys and wrong types are refused with a message naming the key and the file.
    """
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values.update(tomllib.loads(Path(path).read_text(encoding="utf-8")))
        except OSError as exc:
            raise GuildmeterError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise GuildmeterError(f"config file {path} is not valid TOML: {exc}") from None
    if os.environ.get("GUILDMETER_DB"):
        values["db"] = os.environ["GUILDMETER_DB"]
    if os.environ.get("GUILDMETER_OAUTH_CLIENT_SECRET"):
        values["oauth_client_secret"] = os.environ["GUILDMETER_OAUTH_CLIENT_SECRET"]
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name: f for f in fields(Config)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise GuildmeterError(
            f"unknown setting(s) {', '.join(unknown)} in {path or 'configuration'}; "
            f"known settings: {', '.join(sorted(known))}"
        )
    defaults = Config()
    for name, value in list(values.items()):
        expected = type(getattr(defaults, name))
        if expected is frozenset:
            if not isinstance(value, list | tuple | set | frozenset) or not all(
                isinstance(v, int) for v in value
            ):
                raise GuildmeterError(f"setting {name} must be a list of integer ids")
            values[name] = frozenset(value)
        elif expected is float and isinstance(value, int | float) and not isinstance(value, bool):
            values[name] = float(value)
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise GuildmeterError(
                f"setting {name} must be {expected.__name__}, not {type(value).__name__}"
            )
    for name, value in values.items():
        if name in _BOUNDS:
            _check_bounds(name, value, *_BOUNDS[name])
    heavy_work = values.get("heavy_work", defaults.heavy_work)
    if heavy_work not in HEAVY_WORK_MODES:
        raise GuildmeterError(
            "setting heavy_work must be one of "
            f"{', '.join(repr(m) for m in HEAVY_WORK_MODES)}, not {heavy_work!r}"
        )
    intents = values.get("intents", defaults.intents)
    if intents not in INTENT_MODES:
        raise GuildmeterError(
            f"setting intents must be one of {', '.join(repr(m) for m in INTENT_MODES)}, "
            f"not {intents!r}"
        )
    if "default_timezone" in values:
        from guildmeter.zones import TimezoneError, check_zone

        try:
            values["default_timezone"] = check_zone(values["default_timezone"])
        except TimezoneError as exc:
            raise GuildmeterError(f"setting default_timezone: {exc}") from None
    return Config(**values)
