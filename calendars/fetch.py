"""Fetching a calendar from a URL a tutor typed: over HTTP(S) only, to public addresses
only, bounded in time and size.

The URL is someone's input, and the server fetches it from inside our network, so every
connection (the first one, and each redirect's) is made by a connection class that
resolves the host itself, refuses private, loopback, link-local and other non-public
addresses (SSRF), and connects to the address it checked, so a second DNS answer cannot
swap in another one (DNS rebinding). CALENDAR_ALLOW_PRIVATE_ADDRESSES turns the check
off: for tests and for a CalDAV server on your own network, never by default.

Bounds: the whole fetch (redirects and body included) has CALENDAR_FETCH_TIMEOUT_SECONDS,
enforced by a timer that shuts the fetch's sockets when it runs out (a socket timeout
alone bounds each wait for the next byte, not a server trickling its answer a byte at a
time); the body at most CALENDAR_MAX_BYTES once decompressed, counted while it streams
in; at most MAX_REDIRECTS redirects; web ports only (BAD_PORTS, the ports browsers
refuse: mail, SSH, DNS... are not fetched, so a calendar link cannot make us speak to
another protocol's server). Other public ports stay allowed: self-hosted calendars
(Nextcloud, Radicale) often answer on 8443 or 5232.
ICS links are fetched with urllib3 and conditional GET (ETag / Last-Modified); CalDAV
through the `caldav` client, whose requests session is given the same guarded
connections (see caldav_events).

Every failure is a FetchError whose text is what the tutor reads on their page.
"""

import contextlib
import contextvars
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import certifi
import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import connection as urllib3_connection

MAX_REDIRECTS = 3
CHUNK = 64 * 1024
USER_AGENT = "TutoringCalendarSync/1.0"
# The WHATWG Fetch standard's "bad ports" (https://fetch.spec.whatwg.org/#bad-port),
# which browsers refuse for the same reason: they belong to other protocols.
BAD_PORTS = frozenset(
    {0, 1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95,
     101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161,
     179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563,
     587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060,
     5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080}
)  # fmt: skip
# Whitespace and control characters have no place inside a URL (urlsplit would quietly
# drop tabs and line breaks; a space would reach the request line).
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029]")


class FetchError(Exception):
    """The fetch failed; str() says why in plain words ("404 from calendar.google.com")."""


class Refused(FetchError):
    """The host is not one we may connect to (SSRF guard)."""


# --- which URLs and addresses -------------------------------------------------------------


def normalise_url(url: str) -> str:
    """The URL we fetch for what a tutor typed: webcal:// (calendar apps' subscribe
    scheme) means https://. Raises ValueError with a message for anything that is not an
    http(s) URL with a host."""
    text = url.strip()
    if _UNSAFE.search(text):
        raise ValueError("Remove the spaces, line breaks or control characters from the address.")
    try:
        parts = urlsplit(text)
    except ValueError:
        raise ValueError("This is not a web address.") from None
    scheme = parts.scheme.lower()
    if scheme in ("webcal", "webcals"):
        scheme = "https"
    if scheme not in ("http", "https"):
        raise ValueError("Use an address starting with https://, http:// or webcal://.")
    if not parts.hostname:
        raise ValueError("The address needs a host name.")
    if len(parts.hostname) > 253:  # DNS's limit
        raise ValueError("The host name is too long.")
    if parts.username or parts.password:
        raise ValueError("Put the user name and password in their own fields.")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("The address has an invalid port.") from None
    if port in BAD_PORTS:
        raise ValueError(f"Port {port} is not a web port: calendars are not fetched from it.")
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether `ip` is an ordinary Internet address: not private, loopback, link-local
    (169.254.169.254, the cloud metadata service), shared, reserved or multicast. IPv6
    forms that carry an IPv4 address (mapped, 6to4, NAT64) are judged by that address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
        if ip.teredo:
            return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def vetted_addresses(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, if we may connect to them; Refused if any is not
    public (a name with one private answer among public ones is refused whole)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError:
        raise FetchError(f"no such host: {host}") from None
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES:
        for address in addresses:
            if not is_public(ipaddress.ip_address(address.split("%", 1)[0])):
                raise Refused(f"{host} is a private or local address: not fetched")
    return addresses


# --- guarded connections --------------------------------------------------------------------


class _Guarded:
    """Connects only to vetted addresses of the host (see vetted_addresses); TLS still
    checks the certificate against the host name (urllib3 uses self.host for that)."""

    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        try:
            addresses = vetted_addresses(self.host.strip("[]"), self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        last: OSError | None = None
        for address in addresses:
            try:
                sock = urllib3_connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from exc
            except OSError as exc:
                last = exc
                continue
            deadline = _DEADLINE.get()
            if deadline is not None:
                deadline.watch(sock)
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {last}")  # type: ignore[arg-type]


class GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


POOL_CLASSES = {"http": GuardedHTTPConnectionPool, "https": GuardedHTTPSConnectionPool}


def _pool_manager() -> urllib3.PoolManager:
    manager = urllib3.PoolManager(num_pools=4, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
    manager.pool_classes_by_scheme = POOL_CLASSES
    return manager


class Deadline:
    """The time the whole fetch has left, enforced while it is in use (`with deadline:`).

    Socket timeouts bound each wait for the next bytes, so a server that trickles its
    answer (headers or body, a byte at a time) could hold a fetch far longer. While the
    deadline is in use, every connection the fetch opens registers its socket here
    (_Guarded._new_conn), and a timer shuts them all when the time is up: whatever read
    is waiting ends at once, and `expired` says why.
    """

    def __init__(self, seconds: float, host: str) -> None:
        self.seconds = seconds
        self.host = host
        self._end = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer: threading.Timer | None = None
        self.expired = False

    def left(self) -> float:
        remaining = self._end - time.monotonic()
        if remaining <= 0 or self.expired:
            raise self.error()
        return remaining

    def error(self) -> FetchError:
        return FetchError(f"{self.host} did not answer within {self.seconds:g} seconds")

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def __enter__(self) -> "Deadline":
        self._token = _DEADLINE.set(self)
        self._timer = threading.Timer(max(self._end - time.monotonic(), 0), self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._sockets.clear()
        _DEADLINE.reset(self._token)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


# The deadline of the fetch running in this thread (or context), if any.
_DEADLINE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "calendar_fetch_deadline", default=None
)


def too_large() -> FetchError:
    limit = settings.CALENDAR_MAX_BYTES
    size = f"{round(limit / 2**20, 1):g} MB" if limit >= 2**20 else f"{round(limit / 2**10):g} KB"
    return FetchError(f"the calendar is larger than {size}")


def _read_limited(chunks: Iterator[bytes], deadline: Deadline) -> bytes:
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > settings.CALENDAR_MAX_BYTES:
            raise too_large()
        deadline.left()
    # The end of a body without a length is the connection closing, as the deadline's
    # timer closes it: what arrived by then is not the whole calendar.
    deadline.left()
    return bytes(body)


def _declared_too_large(headers: Any) -> bool:
    try:
        return int(headers.get("Content-Length") or 0) > settings.CALENDAR_MAX_BYTES
    except ValueError:
        return False


def explain(exc: Exception, host: str, deadline: Deadline) -> FetchError:
    """A transport failure in plain words."""
    if isinstance(exc, FetchError):
        return exc
    if deadline.expired:  # the timer shut the connection: whatever broke, time ran out
        return deadline.error()
    if isinstance(exc, NameResolutionError):
        return FetchError(f"no such host: {host}")
    if isinstance(exc, NewConnectionError):  # a ConnectTimeoutError subclass: first
        return FetchError(f"could not connect to {host}")
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError | TimeoutError):
        return deadline.error()
    if isinstance(exc, SSLError):
        return FetchError(f"{host}'s secure connection could not be verified")
    return FetchError(f"the connection to {host} broke off")


# --- ICS links ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    """A calendar's bytes, or None when the server said it has not changed (304)."""

    body: bytes | None
    etag: str = ""
    last_modified: str = ""


def fetch_ics(
    url: str,
    *,
    etag: str = "",
    last_modified: str = "",
    username: str = "",
    password: str = "",
) -> Fetched:
    """GET an ICS link: conditional when `etag`/`last_modified` are given, following at
    most MAX_REDIRECTS redirects (each to http(s) and, like every connection, a public
    address). Credentials go to the first host only."""
    host = host_of(url)
    deadline = Deadline(settings.CALENDAR_FETCH_TIMEOUT_SECONDS, host)
    headers = {
        "User-Agent": USER_AGENT,
        "Accept": "text/calendar, text/plain;q=0.5, */*;q=0.1",
        "Accept-Encoding": "gzip, deflate",
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    if username or password:
        headers["Authorization"] = urllib3.make_headers(basic_auth=f"{username}:{password}")[
            "authorization"
        ]
    first_host = host
    manager = _pool_manager()
    try:
        with deadline:
            return _follow(manager, url, headers, first_host, deadline)
    finally:
        manager.clear()


def _follow(
    manager: urllib3.PoolManager,
    url: str,
    headers: dict[str, str],
    first_host: str,
    deadline: Deadline,
) -> Fetched:
    """fetch_ics's requests: the first and each redirect's, within `deadline`."""
    etag, last_modified = headers.get("If-None-Match", ""), headers.get("If-Modified-Since", "")
    host = first_host
    for _hop in range(MAX_REDIRECTS + 1):
        host = deadline.host = host_of(url)
        if host != first_host:
            headers.pop("Authorization", None)
        left = deadline.left()
        try:
            response = manager.urlopen(
                "GET",
                url,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                timeout=urllib3.Timeout(connect=left, read=left),
            )
        except (HTTPError, OSError) as exc:
            raise explain(exc, host, deadline) from exc
        read = False
        try:
            location = response.headers.get("Location")
            if response.status in (301, 302, 303, 307, 308) and location:
                try:
                    url = normalise_url(urljoin(url, location))
                except ValueError:
                    raise FetchError(f"{host} redirected to a non-web address") from None
                continue
            if response.status == 304:
                return Fetched(None, etag, last_modified)
            if response.status != 200:
                raise FetchError(f"{response.status} from {host}")
            if _declared_too_large(response.headers):
                raise too_large()
            try:
                body = _read_limited(response.stream(CHUNK, decode_content=True), deadline)
            except (HTTPError, OSError) as exc:
                raise explain(exc, host, deadline) from exc
            read = True
            return Fetched(
                body,
                etag=(response.headers.get("ETag") or "")[:255],
                last_modified=(response.headers.get("Last-Modified") or "")[:64],
            )
        finally:
            # A body left unread (a redirect's, an error page) would spoil the
            # connection for the next request: close it instead of reusing it.
            if not read:
                response.close()
            response.release_conn()
    raise FetchError(f"too many redirects from {host}")


# --- CalDAV ---------------------------------------------------------------------------------


class GuardedAdapter(HTTPAdapter):
    """requests' adapter over the guarded connections, with the fetch's deadline and
    size limit (the caldav client reads whole responses into memory)."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOL_CLASSES

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        try:
            # The client's redirects come through here too: the same schemes and ports.
            normalise_url(request.url or "")
        except ValueError:
            raise FetchError(f"{self.deadline.host} redirected to a non-web address") from None
        self.deadline.host = host_of(request.url or "")
        left = self.deadline.left()
        kwargs["timeout"] = (left, left)
        kwargs["verify"] = certifi.where()
        response = super().send(request, stream=True, **kwargs)
        if _declared_too_large(response.headers):
            response.close()
            raise too_large()
        try:
            chunks = response.raw.stream(CHUNK, decode_content=True)
            response._content = _read_limited(chunks, self.deadline)
        except (HTTPError, OSError) as exc:
            raise explain(exc, self.deadline.host, self.deadline) from exc
        finally:
            response.close()
        return response


def caldav_events(
    url: str, *, username: str, password: str, start: datetime, end: datetime
) -> list[bytes]:
    """The iCalendar texts of the events in a CalDAV calendar collection that touch
    [start, end) (recurring ones whole: we expand them ourselves, as for ICS links)."""
    import caldav
    from caldav.lib import error as caldav_error
    from lxml import etree  # type: ignore[import-untyped]

    host = host_of(url)
    deadline = Deadline(settings.CALENDAR_FETCH_TIMEOUT_SECONDS, host)
    client = caldav.DAVClient(url=url, username=username or None, password=password or None)
    session = client.session
    session.trust_env = False  # no proxies or ~/.netrc credentials from the environment
    session.max_redirects = MAX_REDIRECTS
    adapter = GuardedAdapter(deadline)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    try:
        with deadline:
            calendar = client.calendar(url=url)
            found = calendar.search(start=start, end=end, event=True, expand=False)
            return [
                item.data.encode() if isinstance(item.data, str) else item.data for item in found
            ]
    except FetchError:
        raise
    except requests.TooManyRedirects:
        raise FetchError(f"too many redirects from {deadline.host}") from None
    except requests.Timeout:
        raise deadline.error() from None
    except requests.ConnectionError as exc:
        cause = exc.args[0] if exc.args else exc
        reason = getattr(cause, "reason", cause)
        raise explain(reason if isinstance(reason, Exception) else exc, host, deadline) from exc
    except requests.RequestException as exc:
        raise explain(exc, host, deadline) from exc
    except caldav_error.AuthorizationError:
        raise FetchError(f"{host} refused the user name or password") from None
    except caldav_error.NotFoundError:
        raise FetchError(f"404 from {host}") from None
    except (caldav_error.DAVError, caldav_error.ReportError, ValueError) as exc:
        raise FetchError(_dav_failure(exc, host)) from exc
    except (etree.LxmlError, TypeError, AttributeError, KeyError, IndexError) as exc:
        # The client's reading of an answer that is not CalDAV (a web page, a 207 with
        # no calendar in it, XML it cannot parse): the client does not name these.
        raise FetchError(f"{host} did not answer like a CalDAV calendar") from exc
    finally:
        session.close()


def _dav_failure(exc: Exception, host: str) -> str:
    text = str(exc)
    for code in ("400", "403", "405", "500", "502", "503"):
        if code in text:
            return f"{code} from {host}"
    return f"{host} did not answer like a CalDAV calendar"
