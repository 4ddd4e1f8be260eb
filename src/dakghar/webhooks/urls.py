"""Which callback URLs Dakghar will POST to: the SSRF guard (pure, no DNS).

A callback URL is chosen by an API client, and the gateway POSTs to it from inside the operator's
network, so an unchecked URL lets any account reach loopback services, cloud metadata
(169.254.169.254), private networks or the gateway's own API. :func:`check_callback_url` is the
one rule, applied when a URL is set (API, account, campaigns) and again before each delivery:

* the scheme must be ``http`` or ``https`` and the URL must not carry ``user:password@``;
* the host must not be an IP literal, in any spelling a browser or ``getaddrinfo`` accepts
  (``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``, ``[::ffff:127.0.0.1]``, ...), that
  is loopback, private, link-local, CGNAT (100.64/10), multicast, unspecified, reserved or
  otherwise not globally routable, nor one of the gateway's own ``(address, port)`` pairs;
* the host must not be a name that only means something inside a network: a single label
  (resolved through search domains), ``localhost`` and ``*.localhost``, or a name under a suffix
  used for private networks (:data:`PRIVATE_SUFFIXES`).

With ``allow_private`` (``[webhooks] allow_private_networks``, on for ``serve --demo``) only the
scheme and userinfo rules remain. Names that resolve to private addresses cannot be judged
without DNS; the sender checks every resolved address at connect time (``webhooks.resolver``).
"""

from __future__ import annotations

import functools
import socket
import string
from collections.abc import Collection
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from yarl import URL

from dakghar.errors import InvalidCallbackUrl

if TYPE_CHECKING:
    from dakghar.settings import Settings

IPAddress = IPv4Address | IPv6Address

DEFAULT_PORTS = {"http": 80, "https": 443}
# Suffixes that name hosts inside a network rather than on the internet: RFC 6761 localhost,
# RFC 6762 mDNS .local, RFC 8375 home.arpa, ICANN's private-use .internal (GCP metadata lives at
# metadata.google.internal), and the undelegated names commonly used on LANs and intranets.
PRIVATE_SUFFIXES = (
    "localhost",
    "localdomain",
    "local",
    "internal",
    "intranet",
    "lan",
    "home",
    "corp",
    "home.arpa",
)
_CGNAT = ip_network("100.64.0.0/10")
_HOST_CHARS = frozenset(string.ascii_lowercase + string.digits + "-._")
_HEX = frozenset(string.hexdigits)
_OCT = frozenset("01234567")
_DEC = frozenset(string.digits)


def check_callback_url(
    url: str,
    *,
    allow_private: bool,
    own: Collection[tuple[str, int]] = (),
    field: str = "callback_url",
) -> str:
    """Return ``url`` unchanged if Dakghar may POST to it; else raise :class:`InvalidCallbackUrl`.

    ``own`` holds the gateway's own ``(host, port)`` pairs (see :func:`gateway_addresses`); a
    port of 0 there stands for every port. ``field`` names the input in the problem's ``errors``.
    """

    def refuse(reason: str) -> InvalidCallbackUrl:
        return InvalidCallbackUrl(
            f"{field} {reason}",
            errors=[{"field": field, "code": InvalidCallbackUrl.code, "detail": reason}],
        )

    # Whitespace and control characters are silently stripped or split on by some parsers
    # (yarl drops tabs), so what we check would not be what another layer connects to.
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise refuse("must not contain whitespace or control characters")
    try:
        parsed = URL(url)
        netloc = urlsplit(url).netloc
    except ValueError as exc:
        raise refuse(f"is not a valid URL ({exc})") from None
    if parsed.scheme not in DEFAULT_PORTS or not parsed.is_absolute():
        raise refuse("must be an absolute http:// or https:// URL")
    # Both parsers are asked: yarl drops an empty "@", urlsplit keeps it.
    if parsed.user is not None or parsed.password is not None or "@" in netloc:
        raise refuse("must not carry user:password@ credentials")
    host = parsed.raw_host  # IDNA-encoded and lower-cased, as aiohttp will resolve it
    if not host:
        raise refuse("has no host")
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS[parsed.scheme]
    if port == 0:
        raise refuse("has port 0")
    try:
        ip = host_address(host)
    except ValueError as exc:
        raise refuse(str(exc)) from None
    name = host.rstrip(".")
    if ip is None and (not name or not set(name) <= _HOST_CHARS):
        raise refuse("has a host name with characters a DNS name cannot hold")
    if allow_private:
        return url
    if ip is not None:
        reason = address_refusal(ip, port, own)
        if reason:
            raise refuse(f"points at {_article(reason)} {reason} address ({ip})")
        return url
    for suffix in PRIVATE_SUFFIXES:
        if name == suffix or name.endswith("." + suffix):
            raise refuse(f"points at a private-network name ({suffix})")
    if "." not in name:
        raise refuse("must use a fully qualified host name, not a single label")
    if _is_own(name, port, own):
        raise refuse("points at the gateway itself")
    return url


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def host_address(host: str) -> IPAddress | None:
    """The IP address ``host`` spells, or None when it is a DNS name.

    IPv4 follows the WHATWG URL host parser (the same numbers ``inet_aton`` accepts): a host
    whose last label is a number is an address, each part decimal, ``0x`` hex or ``0`` octal,
    the last part filling the remaining bytes. Raises ``ValueError`` when such a host is not a
    valid address, since resolvers disagree on what it would reach.
    """
    if ":" in host:  # yarl only lets a bracketed IPv6 literal hold a colon
        try:
            # A zone id (fe80::1%eth0) says which link, not which address.
            return ip_address(host.split("%", 1)[0].strip("[]"))
        except ValueError:
            raise ValueError(f"host {host!r} is not a valid IPv6 address") from None
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if _ipv4_number(parts[-1]) is None:
        return None
    numbers = [_ipv4_number(p) for p in parts]
    if len(parts) > 4 or None in numbers:
        raise ValueError(f"host {host!r} is neither a valid IPv4 address nor a name")
    nums = [n for n in numbers if n is not None]
    if any(n > 255 for n in nums[:-1]) or nums[-1] >= 256 ** (5 - len(nums)):
        raise ValueError(f"host {host!r} is an IPv4 address out of range")
    value = nums[-1]
    for i, n in enumerate(nums[:-1]):
        value += n << (8 * (3 - i))
    return IPv4Address(value)


def _ipv4_number(part: str) -> int | None:
    """One dotted part as inet_aton reads it, or None (``int()`` alone would take ``1_0``)."""
    if part[:2] in ("0x", "0X"):
        digits, base, allowed = part[2:], 16, _HEX
    elif len(part) > 1 and part[0] == "0":
        digits, base, allowed = part[1:], 8, _OCT
    else:
        digits, base, allowed = part, 10, _DEC
    if not part or not set(digits) <= allowed:
        return None
    return int(digits, base) if digits else 0


def address_refusal(ip: IPAddress, port: int, own: Collection[tuple[str, int]] = ()) -> str | None:
    """Why Dakghar must not connect to ``ip:port`` (a short adjective), or None if it may."""
    if isinstance(ip, IPv6Address):
        # An IPv6 address that carries an IPv4 one reaches that IPv4 host (mapped, 6to4).
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is not None:
            return address_refusal(inner, port, own)
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, IPv4Address) and ip in _CGNAT:
        return "shared (CGNAT)"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "non-global"
    if _is_own(str(ip), port, own):
        return "gateway's own"
    return None


def _normal_host(host: str) -> str:
    """One spelling per host, so own-address lookups compare like with like."""
    host = host.strip("[]").lower().rstrip(".")
    try:
        ip = ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _is_own(host: str, port: int, own: Collection[tuple[str, int]]) -> bool:
    target = _normal_host(host)
    return any(_normal_host(h) == target and p in (0, port) for h, p in own)


def gateway_addresses(settings: Settings) -> frozenset[tuple[str, int]]:
    """The ``(host, port)`` pairs the gateway's API answers on, for ``check_callback_url(own=)``.

    The listen host and what it resolves to; a wildcard listener (``0.0.0.0``, ``::``) answers on
    every local address, approximated by the machine's host name, what that resolves to, and
    loopback. Cached per listen address: it runs at most a couple of local look-ups per process.
    """
    return _gateway_addresses(settings.host, settings.port)


@functools.lru_cache(maxsize=8)
def _gateway_addresses(host: str, port: int) -> frozenset[tuple[str, int]]:
    names = {host}
    try:
        wildcard = host in ("", "*") or ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        wildcard = False
    if wildcard:
        names |= {socket.gethostname(), "localhost", "127.0.0.1", "::1"}
    found = {_normal_host(n) for n in names if n not in ("", "*")}
    for name in names - {"", "*"}:
        try:
            infos = socket.getaddrinfo(name.strip("[]"), port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            continue  # an unresolvable name simply adds no addresses
        found |= {_normal_host(str(info[4][0])) for info in infos}
    return frozenset((h, port) for h in found)
