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


# Old names that are links to a current zone in the IANA database, yet still reported by
# browsers (ICU keeps CLDR's older spellings: Chromium says "Asia/Calcutta") or found in
# old settings. We show and store the current name. site.js keeps the same table (a test
# checks that they agree).
LEGACY_ZONES = {
    "Africa/Asmera": "Africa/Asmara",
    "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
    "America/Catamarca": "America/Argentina/Catamarca",
    "America/Cordoba": "America/Argentina/Cordoba",
    "America/Fort_Wayne": "America/Indiana/Indianapolis",
    "America/Godthab": "America/Nuuk",
    "America/Indianapolis": "America/Indiana/Indianapolis",
    "America/Jujuy": "America/Argentina/Jujuy",
    "America/Louisville": "America/Kentucky/Louisville",
    "America/Mendoza": "America/Argentina/Mendoza",
    "Asia/Calcutta": "Asia/Kolkata",
    "Asia/Chongqing": "Asia/Shanghai",
    "Asia/Chungking": "Asia/Shanghai",
    "Asia/Dacca": "Asia/Dhaka",
    "Asia/Harbin": "Asia/Shanghai",
    "Asia/Istanbul": "Europe/Istanbul",
    "Asia/Katmandu": "Asia/Kathmandu",
    "Asia/Macao": "Asia/Macau",
    "Asia/Rangoon": "Asia/Yangon",
    "Asia/Saigon": "Asia/Ho_Chi_Minh",
    "Asia/Tel_Aviv": "Asia/Jerusalem",
    "Asia/Thimbu": "Asia/Thimphu",
    "Asia/Ujung_Pandang": "Asia/Makassar",
    "Asia/Ulan_Bator": "Asia/Ulaanbaatar",
    "Atlantic/Faeroe": "Atlantic/Faroe",
    "Etc/UCT": "UTC",
    "Etc/UTC": "UTC",
    "Etc/Universal": "UTC",
    "Etc/Zulu": "UTC",
    "Europe/Kiev": "Europe/Kyiv",
    "Europe/Uzhgorod": "Europe/Kyiv",
    "Europe/Zaporozhye": "Europe/Kyiv",
    "Pacific/Enderbury": "Pacific/Kanton",
    "Pacific/Ponape": "Pacific/Pohnpei",
    "Pacific/Samoa": "Pacific/Pago_Pago",
    "Pacific/Truk": "Pacific/Chuuk",
    "UCT": "UTC",
    "US/Alaska": "America/Anchorage",
    "US/Arizona": "America/Phoenix",
    "US/Central": "America/Chicago",
    "US/Eastern": "America/New_York",
    "US/Hawaii": "Pacific/Honolulu",
    "US/Mountain": "America/Denver",
    "US/Pacific": "America/Los_Angeles",
    "Universal": "UTC",
    "Zulu": "UTC",
}


def canonical(name: str) -> str:
    """The current IANA name of a zone: 'Asia/Calcutta' → 'Asia/Kolkata'."""
    return LEGACY_ZONES.get(name, name)
