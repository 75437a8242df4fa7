"""Two guilds on their own clocks, end to end: the real bot against the emulator.

Alpha follows Asia/Kolkata (+5:30), Beta America/New_York (a DST zone, fall-back on
2026-11-01). Messages and voice sessions arrive at chosen instants around local midnight,
the local month boundary and the DST change; the reports, dumps and month-end
anonymisation the bot produces are checked against an independent computation that only
converts each event's instant to local time (the reference never sees a bucket).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from guildmeter.cli import cli
from guildmeter.export.kaztron_import import import_files
from guildmeter.reports.compute import REPORT_COLUMNS
from guildmeter.store import Store
from guildmeter.store.settings import SettingsStore
from guildmeter.zonetext import describe_timezone

from tests.discord_emulator.server import MANAGE_GUILD, FakeGuild, FakeInteraction
from tests.ext.conftest import Running, gunzip_lines
from tests.reports.reference import Fed, reference_report

ANN, BOB, CYD = 1001, 1002, 2002
KOLKATA, NEW_YORK = ZoneInfo("Asia/Kolkata"), ZoneInfo("America/New_York")
COLUMNS = ["active_users", "voice_users", "messages", "voice_man_hours"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


class Feed:
    """What the test sends, as the reference sees it: events at local times."""

    def __init__(self, running: Running, guild: FakeGuild, zone: ZoneInfo) -> None:
        self.running, self.guild, self.zone = running, guild, zone
        self.events: list[Fed] = []

    async def message(self, channel: str, user: int, when: datetime) -> None:
        channel_id = self.running.channel(channel, self.guild)
        await self.running.emulator.message(self.guild, channel_id, user, when)
        await self.running.settle()  # counted before the next flush, not as a late event
        self.events.append(Fed(when.astimezone(self.zone), "msg", str(user), channel, 1))

    async def voice(self, user: int, start: datetime, end: datetime) -> None:
        """A session from ``start`` to ``end`` (the bot's clock is moved to each end)."""
        (voice_id,) = self.guild.voice_channels
        name = self.guild.voice_channels[voice_id]
        emu, clock = self.running.emulator, self.running.clock
        clock.now = start
        await emu.voice(self.guild, user, voice_id)
        await self.running.settle()
        clock.now = end
        await emu.voice(self.guild, user, None)
        await self.running.settle()
        seconds = int((end - start).total_seconds())
        for second in range(seconds):  # one event per second: no bucket arithmetic at all
            moment = (start + timedelta(seconds=second)).astimezone(self.zone)
            self.events.append(Fed(moment, "voice", str(user), name, 1))

    def expected(
        self, kind: str, first: datetime, end: datetime, *, with_voice: bool = True
    ) -> list[dict[str, object]]:
        events = [e for e in self.events if with_voice or e.event != "voice"]
        return reference_report(events, kind, first, end, None)


async def _slash(
    running: Running, guild: FakeGuild, name: str, sub: str | None, **options: object
) -> FakeInteraction:
    channel = next(iter(guild.text_channels))
    interaction = await running.emulator.slash(
        guild, channel, ANN, name, dict(options), subcommand=sub
    )
    await interaction.answered.wait()
    await running.settle()
    return interaction


def _csv_rows(data: bytes) -> dict[str, dict[str, float]]:
    header, *rows = (line.split(",") for line in gunzip_lines(data))
    assert header == [title for _key, title in REPORT_COLUMNS]
    keys = [key for key, _title in REPORT_COLUMNS]
    out = {}
    for row in rows:
        values = dict(zip(keys, row, strict=True))
        out[values["case"]] = {
            "active_users": float(values["active_users"]),
            "voice_users": float(values["voice_users"]),
            "messages": float(values["messages"]),
            "voice_man_hours": float(values["voice_man_hours"]),
        }
    return out


def _assert_table(got: dict[str, dict[str, float]], expected: list[dict[str, object]]) -> None:
    assert list(got) == [str(row["case"]) for row in expected]
    for row in expected:
        for column in COLUMNS:
            assert got[str(row["case"])][column] == pytest.approx(row[column], abs=1e-6), (
                row["case"],
                column,
            )


async def _table_report(
    running: Running, guild: FakeGuild, kind: str, daterange: str
) -> dict[str, dict[str, float]]:
    done = await _slash(
        running, guild, "userstats", "report", type=kind, channel="all", daterange=daterange
    )
    (reply,) = done.replies
    assert reply.files, reply.content
    csv_name = next(name for name in reply.files if name.endswith(".csv.gz"))
    return _csv_rows(reply.files[csv_name])


async def _dump(running: Running, guild: FakeGuild, daterange: str) -> tuple[str, list[str]]:
    done = await _slash(running, guild, "userstats", "dump", daterange=daterange)
    (reply,) = done.replies
    ((_name, data),) = reply.files.items()
    return reply.content, gunzip_lines(data)


def _periods(events: list[Fed], event: str) -> dict[str, int]:
    """Independent: each event's local hour start, written with its offset."""
    out: dict[str, int] = {}
    for e in events:
        if e.event != event:
            continue
        start = e.when.replace(minute=0, second=0, microsecond=0)
        text = start.isoformat(sep=" ")
        out[text] = out.get(text, 0) + e.count
    return out


def _dumped(lines: list[str], event: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in lines[1:]:
        period, kind, _user, _channel, count = line.split(",")
        if kind == event:
            out[period] = out.get(period, 0) + int(count)
    return out


async def test_two_guilds_on_their_own_clocks(running: Running, tmp_path: Path) -> None:
    emu, clock, stats = running.emulator, running.clock, running.stats
    alpha, beta = list(emu.guilds.values())
    moderators = running.bot.get_cog("User statistics")
    moderators.cooldown_uses = 1000  # type: ignore[union-attr]  # many reports in a row
    # ann may configure Beta too (Manage Server there).
    role = await emu.role_create(beta, "Admins", MANAGE_GUILD)
    beta.member_roles[ANN] = [role]
    await running.settle()

    clock.now = utc(2026, 10, 2, 9)
    done = await _slash(running, alpha, "statsconfig", "timezone", zone="asia/kolkata")
    assert "now follow Asia/Kolkata" in done.replies[0].content
    assert "applies at once" in done.replies[0].content
    done = await _slash(running, beta, "statsconfig", "timezone", zone="America/New_Yrok")
    assert r"did you mean America/New\_York" in done.replies[0].content  # Discord shows "_"
    done = await _slash(running, beta, "statsconfig", "timezone", zone="America/New_York")
    assert "applies at once" in done.replies[0].content
    shown = await _slash(running, alpha, "statsconfig", "show")
    assert "Timezone: Asia/Kolkata" in shown.replies[0].content

    a, b = Feed(running, alpha, KOLKATA), Feed(running, beta, NEW_YORK)
    # Alpha: around local midnight (Sunday 4 October to Monday 5 October, IST).
    await a.message("general", ANN, utc(2026, 10, 4, 18, 29, 59))  # Sun 23:59:59 IST
    await a.message("general", ANN, utc(2026, 10, 4, 18, 30))  # Mon 00:00:00 IST
    await a.message("art", BOB, utc(2026, 10, 4, 19, 10))  # Mon 00:40 IST
    await a.message("general", BOB, utc(2026, 10, 4, 18, 0))  # Sun 23:30 IST
    # Alpha: its month ends at 2026-10-31 18:30 UTC (midnight of 1 November, IST).
    await a.voice(BOB, utc(2026, 10, 31, 17, 45), utc(2026, 10, 31, 19, 10))
    await a.message("general", ANN, utc(2026, 10, 31, 18, 29, 59))  # October, IST
    await a.message("general", BOB, utc(2026, 10, 31, 18, 30))  # November, IST
    for guild in (alpha, beta):  # both post their month's report when it is over
        general = next(iter(guild.text_channels))
        before = len(emu.sent)  # (sent now, in December: outside every range checked)
        await emu.message(guild, general, ANN, content=f".statsconfig reportchannel <#{general}>")
        assert "will be posted" in (await emu.wait_for_post(before + 1))[-1].content
        await running.settle()
    monthly = running.bot.get_cog("Monthly reports")
    clock.now = utc(2026, 10, 31, 19, 15)
    result = await running.cog.flush()
    assert result.error is None
    assert [(r.guild_id, r.month) for r in result.anonymised] == [(alpha.id, 202610)]
    store = stats.store
    assert store.anonymised_at(alpha.id, 202610) is not None
    assert store.anonymised_at(beta.id, 202610) is None  # still 31 October in New York
    before = len(emu.sent)
    assert await monthly.post_due_reports() == [alpha.id]  # type: ignore[union-attr]
    (post,) = emu.sent[before:]
    assert post.embeds[0]["title"].startswith("October 2026")

    # Beta: local midnight, then the fall-back hour twice (01:00 EDT, then 01:00 EST).
    await b.message("general", ANN, utc(2026, 10, 31, 12))  # Sat 08:00 EDT
    await b.message("general", ANN, utc(2026, 11, 1, 3, 59))  # Sat 31 Oct 23:59 EDT
    await b.message("general", CYD, utc(2026, 11, 1, 4, 0))  # Sun 1 Nov 00:00 EDT
    await b.message("general", ANN, utc(2026, 11, 1, 5, 30))  # 01:30 EDT
    await b.voice(CYD, utc(2026, 11, 1, 5, 50), utc(2026, 11, 1, 6, 20))  # 01:50 EDT-01:20 EST
    await b.message("general", CYD, utc(2026, 11, 1, 6, 30))  # 01:30 EST
    await b.message("general", CYD, utc(2026, 11, 1, 7, 5))  # 02:05 EST
    clock.now = utc(2026, 11, 1, 6, 40)
    result = await running.cog.flush()
    assert result.error is None
    assert [(r.guild_id, r.month) for r in result.anonymised] == [(beta.id, 202610)]
    assert await monthly.post_due_reports() == [beta.id]  # type: ignore[union-attr]

    # Reports, as the moderators get them, against the reference in local time.
    a_oct = (datetime(2026, 10, 1, tzinfo=KOLKATA), datetime(2026, 11, 1, tzinfo=KOLKATA))
    b_oct = (datetime(2026, 10, 1, tzinfo=NEW_YORK), datetime(2026, 11, 1, tzinfo=NEW_YORK))
    a_nov = (datetime(2026, 11, 1, tzinfo=KOLKATA), datetime(2026, 11, 2, tzinfo=KOLKATA))
    b_nov = (datetime(2026, 11, 1, tzinfo=NEW_YORK), datetime(2026, 11, 2, tzinfo=NEW_YORK))
    for guild, feed, ranges in ((alpha, a, (a_oct, a_nov)), (beta, b, (b_oct, b_nov))):
        for text, (first, end) in zip(("2026-10", "2026-11-01"), ranges, strict=True):
            for kind in ("weekday", "hourly"):
                got = await _table_report(running, guild, kind, text)
                _assert_table(got, feed.expected(kind, first, end))
            done = await _slash(
                running, guild, "userstats", "report", type="full", channel="all", daterange=text
            )
            fields = {f["name"]: f["value"] for f in done.replies[0].embeds[0]["fields"]}
            (full,) = feed.expected("full", first, end)
            assert fields["Messages"] == f"{full['messages']:,}"
            assert fields["Active users"] == f"{full['active_users']:,}"
            zone = "Asia/Kolkata" if guild is alpha else "America/New_York"
            assert zone in done.replies[0].embeds[0]["footer"]["text"]

    # Spot checks a reader can follow.
    hourly = await _table_report(running, beta, "hourly", "2026-11-01")
    assert hourly["1"]["messages"] == 2  # 01:30 EDT and 01:30 EST: one local hour, twice
    assert hourly["1"]["voice_man_hours"] == pytest.approx(0.5)
    weekday = await _table_report(running, alpha, "weekday", "2026-10")
    assert (weekday["Sunday"]["messages"], weekday["Monday"]["messages"]) == (2, 2)

    # Dumps: Periods are the local hour's start with its offset; October is anonymised.
    for guild, feed, day in ((alpha, a, "2026-10-31"), (beta, b, "2026-11-01")):
        _content, lines = await _dump(running, guild, day)
        assert lines[0] == "Period,Event,User hash,Channel,Count"
        local_day = [e for e in feed.events if f"{e.when:%Y-%m-%d}" == day]
        assert _dumped(lines, "msg") == _periods(local_day, "msg")
        assert _dumped(lines, "voice") == _periods(local_day, "voice")
    _, lines = await _dump(running, alpha, "2026-10-31")
    assert "2026-10-31 23:00:00+05:30" in lines[1]
    assert all(line.split(",")[2].startswith("u202610$") for line in lines[1:])
    _, lines = await _dump(running, beta, "2026-11-01")
    periods = {line.split(",")[0] for line in lines[1:]}
    assert {"2026-11-01 01:00:00-04:00", "2026-11-01 01:00:00-05:00"} <= periods

    # The dump goes back in: a Kolkata guild re-imports it hour for hour.
    dump = tmp_path / "alpha.userstats.csv.gz"
    done = await _slash(running, alpha, "userstats", "dump", daterange="2026-10-31")
    dump.write_bytes(next(iter(done.replies[0].files.values())))
    other = Store.open(str(tmp_path / "copy.db"))
    other.set_timezone(77, "Asia/Kolkata", utc(2026, 10, 1))
    assert import_files(other, 77, [dump]).rows == len(lines_of(dump)) - 1
    other.close()
    copy = CliRunner().invoke(
        cli, ["--db", str(tmp_path / "copy.db"), "export", "--guild", "77", "--range",
              "2026-10-31", "-o", str(tmp_path / "again.csv.gz")],
    )  # fmt: skip
    assert copy.exit_code == 0, copy.output
    assert sorted(lines_of(tmp_path / "again.csv.gz")) == sorted(lines_of(dump))

    # The report JSON carries the zone's offset; /privacy names the local key-death time.
    result_json = CliRunner().invoke(
        cli, ["--db", str(stats.store.engine.url.database), "report", "full", "--guild",
              str(alpha.id), "--range", "2026-10", "--format", "json"],
    )  # fmt: skip
    assert result_json.exit_code == 0, result_json.output
    assert '"start": "2026-10-01T00:00:00+05:30"' in result_json.output
    assert '"end": "2026-11-01T00:00:00+05:30"' in result_json.output
    privacy = await _slash(running, beta, "privacy", "show")
    assert "2026-12-01 00:00 America/New_York (UTC-05:00)" in privacy.replies[0].content
    assert SettingsStore(store).read(alpha.id).min_cell_users == 5


def lines_of(path: Path) -> list[str]:
    return gunzip_lines(path.read_bytes())


async def test_the_zone_option_is_autocompleted(running: Running) -> None:
    (config,) = [c for c in running.emulator.global_commands if c["name"] == "statsconfig"]
    (timezone,) = [o for o in config["options"] if o["name"] == "timezone"]
    (zone,) = timezone["options"]
    assert zone["name"] == "zone" and zone["autocomplete"] is True
    cog = running.bot.get_cog("User statistics")
    choices = await cog._zone_choices(None, "kolk")  # type: ignore[union-attr]
    assert [(c.name, c.value) for c in choices] == [("Asia/Kolkata", "Asia/Kolkata")]
    assert len(await cog._zone_choices(None, "")) == 25  # type: ignore[union-attr]


async def test_the_zone_is_for_configurers_and_checked(running: Running) -> None:
    refused = await running.slash(BOB, "statsconfig", "timezone", zone="Asia/Kolkata")
    assert "Kolkata" not in refused.replies[0].content
    assert running.stats.collector.calendar(running.alpha.id).is_utc
    (reply,) = await running.say("general", ANN, ".statsconfig timezone Mars/Olympus")
    assert "unknown timezone 'Mars/Olympus'" in reply.content
    # A prefix command is a message, counted like any other: the change waits a month.
    (reply,) = await running.say("general", ANN, ".statsconfig timezone Europe/Berlin")
    assert "follow Europe/Berlin from the start of the next month" in reply.content
    (reply,) = await running.say("general", ANN, ".statsconfig")
    assert "Timezone: UTC" in reply.content and "; Europe/Berlin from 20" in reply.content


async def test_a_new_zone_waits_for_the_next_local_month(running: Running) -> None:
    clock, alpha = running.clock, running.alpha
    await running.emulator.message(alpha, running.channel("general"), ANN, clock.now)
    await running.settle()
    assert (await running.cog.flush()).error is None  # the guild has statistics now
    interaction = await running.slash(ANN, "statsconfig", "timezone", zone="Asia/Kathmandu")
    text = interaction.replies[0].content
    assert "from the start of the next month, 2026-06-01 00:00 Asia/Kathmandu" in text
    calendar = running.stats.collector.calendar(alpha.id)
    assert calendar.zone_name_for_month(202605) == "UTC"
    assert calendar.month_start(202606) == datetime(2026, 6, 1, tzinfo=ZoneInfo("Asia/Kathmandu"))
    assert "Asia/Kathmandu from 2026-06-01 00:00" in describe_timezone(calendar, clock.now)
    # May keeps its UTC buckets: the message is where it was.
    clock.now = datetime(2026, 6, 1, 0, 10, tzinfo=ZoneInfo("Asia/Kathmandu"))
    await running.emulator.message(alpha, running.channel("general"), ANN, clock.now)
    await running.settle()
    assert (await running.cog.flush()).error is None
    lines = gunzip_lines(
        (await running.slash(ANN, "userstats", "dump", daterange="2026-06-01"))
        .replies[0]
        .files.popitem()[1]
    )
    assert [line.split(",")[0] for line in lines[1:] if ",msg," in line] == [
        "2026-06-01 00:00:00+05:45"
    ]
