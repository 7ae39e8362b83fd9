"""Which name a request was sent to, and which site sent it: the defences of a server that any
web page the person visits can reach (one on loopback, without a key).

A page cannot read another site's answers, but it can send it writes a browser sends without a
CORS preflight (a form's multipart upload, a ``text/plain`` POST), and DNS rebinding (the page's
own name, re-pointed at 127.0.0.1) makes the server "its own site" for reading too. So:

- **Host.** Every request (a WebSocket's too) must be sent to a name this server answers to:
  its configured ``VOICEID_HOST``, a loopback name or address (``localhost``, 127.0.0.0/8,
  ``::1``, any port), or a name of ``VOICEID_ALLOWED_HOSTS`` (for a reverse proxy or a DNS
  name; ``*.example.org`` allows its subdomains, not ``example.org`` itself; a bare ``*`` is
  refused, as it would turn the defence off). A server listening on every interface (``0.0.0.0``,
  ``::``, as in Docker) also answers to any IP address: no rebinding page can send one, since a
  page reached by address is its own site. A request without a Host header comes from no browser.
- **Origin.** A browser names the page that sent a request in ``Origin`` and, today, says how
  it relates to the server in ``Sec-Fetch-Site``. A write, and every WebSocket (browsers put
  no same-origin limit on those), is cross-site unless its Origin is the server's own (scheme,
  Host and port) and its Sec-Fetch-Site, when sent, is ``same-origin`` or ``none``:
  ``same-site`` is refused too, as another port of localhost is the same site. A request with
  neither header (curl, the CLI, scripts) is no page's, and is taken as before.
"""

from __future__ import annotations

import ipaddress

from starlette.types import Scope

__all__ = [
    "OPEN_HOSTS",
    "HostCheck",
    "check_allowed_host",
    "cross_site",
    "listens_everywhere",
    "request_site",
]

OPEN_HOSTS = ("0.0.0.0", "::", "")  # addresses that listen on every interface
LOOPBACK_NAMES = ("localhost",)
HOST_CACHE_SIZE = 256  # Host values whose verdict is kept; a client cannot grow it past this
SAME_SITE = (b"same-origin", b"none")  # Sec-Fetch-Site values of a page's own requests
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
_WEB_SCHEMES = {"ws": "http", "wss": "https"}  # a WebSocket's Origin is its page's


def listens_everywhere(host: str) -> bool:
    """Whether ``host`` (``VOICEID_HOST``) is a wildcard address: every interface."""
    return host in OPEN_HOSTS


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None


def check_allowed_host(entry: str) -> str:
    """``entry`` of ``VOICEID_ALLOWED_HOSTS``, lower-cased; ``ValueError`` naming it when it is
    no host name (a URL, a port) or is ``*``."""
    name = entry.strip().lower().rstrip(".")
    if name == "*":
        raise ValueError(
            "VOICEID_ALLOWED_HOSTS entry '*' would let any name, and so any DNS-rebinding page, "
            "reach the server: list the names ('*.example.org' allows its subdomains)"
        )
    if "/" in name or (":" in name and _ip(name) is None) or "*" in name.removeprefix("*."):
        raise ValueError(
            f"VOICEID_ALLOWED_HOSTS entry {entry!r} is not a host name: give names or addresses "
            "without a scheme or port, such as 'voice.example.org' or '*.example.org'"
        )
    return name


def _host_name(host: str) -> str:
    """The name part of a Host header: no port, no brackets, no trailing dot."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    name, colon, _ = host.rpartition(":")
    if not colon or ":" in name:  # no port, or an IPv6 address without brackets
        name = host
    return name.rstrip(".")


class HostCheck:
    """Whether a request's Host header names this server (the rules: this module's doc)."""

    def __init__(self, host: str, allowed: tuple[str, ...]) -> None:
        self.any_address = listens_everywhere(host)
        configured = () if self.any_address else (_host_name(host.lower()),)
        self.names = frozenset((*LOOPBACK_NAMES, *configured,
                                *(a for a in allowed if not a.startswith("*."))))  # fmt: skip
        self.suffixes = tuple(a[1:] for a in allowed if a.startswith("*."))  # ".example.org"
        self.described = ", ".join(
            [*configured, "localhost and loopback addresses"]
            + (["any IP address"] if self.any_address else [])
            + [a for a in allowed if a not in configured]
        )
        self._verdicts: dict[bytes, bool] = {}

    def allows(self, host: bytes | None) -> bool:
        """Whether a request whose Host header is ``host`` (None: none sent) may be answered."""
        if host is None:
            return True
        verdict = self._verdicts.get(host)
        if verdict is None:
            verdict = self._judge(_host_name(host.decode("latin-1").lower()))
            if len(self._verdicts) < HOST_CACHE_SIZE:
                self._verdicts[host] = verdict
        return verdict

    def _judge(self, name: str) -> bool:
        if name in self.names or name.endswith(self.suffixes):
            return True
        address = _ip(name)
        if address is None:
            return False
        mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
        return (
            address.is_loopback or (mapped is not None and mapped.is_loopback) or self.any_address
        )

    def refusal(self, host: bytes) -> str:
        """Why a request sent to ``host`` is refused, and what to set."""
        return (
            f"Host {host.decode('latin-1')!r} is not a name this server answers to "
            f"({self.described}): a page may have reached it under a name of its own, as DNS "
            "rebinding does. If a proxy or DNS name should reach it, add the name to "
            "VOICEID_ALLOWED_HOSTS (comma-separated; '*.example.org' allows its subdomains)"
        )


def request_site(scope: Scope) -> tuple[bytes | None, bytes | None, bytes | None]:
    """The Host, Origin and Sec-Fetch-Site headers of ``scope``, read in one pass (None when
    absent; the first of each when repeated)."""
    host = origin = fetch_site = None
    for name, value in scope["headers"]:
        if name == b"host":
            host = value if host is None else host
        elif name == b"origin":
            origin = value if origin is None else origin
        elif name == b"sec-fetch-site":
            fetch_site = value if fetch_site is None else fetch_site
    return host, origin, fetch_site


def cross_site(
    scheme: str, host: bytes | None, origin: bytes | None, fetch_site: bytes | None
) -> str | None:
    """Why a request with these headers comes from another site's page, or None when it comes
    from the server's own page or from no page at all. ``scheme`` is the request's."""
    web = _WEB_SCHEMES.get(scheme, scheme)
    default_port = _DEFAULT_PORTS.get(web, "")
    own = f"{web}://{(host or b'').decode('latin-1').lower().removesuffix(default_port)}"
    if origin is not None:
        sent = origin.decode("latin-1").lower().removesuffix(default_port)
        if sent != own:
            return f"it came from a page of {sent!r} (its Origin), not from {own!r}"
    if fetch_site is not None and fetch_site.lower() not in SAME_SITE:
        return f"the browser says it is {fetch_site.decode('latin-1')} (Sec-Fetch-Site)"
    return None
