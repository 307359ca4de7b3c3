"""Times as people read them: every time we write is labelled with a named zone.

"16:00 Berlin time", "10:00 New York time", "23:00 UTC": the place an IANA zone is
named after, not its abbreviation, which is ambiguous ("CST"), missing (many zones
only have "+1345" or "-03") or doubled ("23:00 UTC (UTC)").
"""

from datetime import datetime
from zoneinfo import ZoneInfo

from .models import is_timezone

# In-person sessions take place in New York City (the product's one place), whatever
# zone the tutor's account is set to: the time at the meeting place is New York's.
PLACE_ZONE = "America/New_York"

_UTC = frozenset({"UTC", "UCT", "Universal", "Zulu", "GMT", "GMT0", "GMT+0", "GMT-0", "Greenwich"})
# The POSIX-style zones a browser may still report, in words.
_NAMED = {
    "EST5EDT": "US Eastern time",
    "CST6CDT": "US Central time",
    "MST7MDT": "US Mountain time",
    "PST8PDT": "US Pacific time",
}


def zone_or_utc(*names: str | None) -> str:
    """The first of `names` that is a real IANA zone (a stored value may not be)."""
    return next((name for name in names if name and is_timezone(name)), "UTC")


def zone_label(name: str) -> str:
    """'America/New_York' → 'New York time', 'Etc/GMT+5' → 'UTC-5', 'UTC' → 'UTC'."""
    if name.removeprefix("Etc/") in _UTC:
        return "UTC"
    if name.startswith("Etc/GMT"):
        # POSIX signs: Etc/GMT+5 is five hours *behind* UTC.
        offset = name.removeprefix("Etc/GMT")
        return f"UTC{offset.translate(str.maketrans('+-', '-+'))}"
    if name in _NAMED:
        return _NAMED[name]
    place = name.rsplit("/", 1)[-1].replace("_", " ")
    return place if place.isupper() else f"{place} time"


def _day(local: datetime, *, short: bool) -> str:
    if short:
        return f"{local:%a} {local.day} {local:%b}"
    return f"{local:%A} {local.day} {local:%B %Y}"


def when(moment: datetime, zone: str, *, end: datetime | None = None, short: bool = False) -> str:
    """'Friday 4 December 2026, 16:00–17:00 Berlin time' (short: 'Fri 4 Dec, 16:00 …')."""
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz)
    until = f"–{end.astimezone(tz):%H:%M}" if end is not None else ""
    return f"{_day(local, short=short)}, {local:%H:%M}{until} {zone_label(zone)}"
