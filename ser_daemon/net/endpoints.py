"""Network addresses as users give them: endpoints, browser origins, tokens, loopback checks."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["Endpoint", "parse_endpoint", "parse_origin", "check_token", "is_loopback"]


@dataclass(frozen=True)
class Endpoint:
    """A host and port, as given by the user (``HOST:PORT`` or ``PORT``)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_HOST_RE = re.compile(r"^[A-Za-z0-9._\-:]+$")


def parse_endpoint(text: str, default_host: str = "127.0.0.1", what: str = "endpoint") -> Endpoint:
    """Parse ``HOST:PORT``, ``[v6]:PORT`` or ``PORT``.

    Raises:
        ConfigError: the text is not of that form or the port is out of range.
    """
    if not isinstance(text, (str, int)) or isinstance(text, bool):
        raise ConfigError(f"{what} must be HOST:PORT or PORT. Received: {text!r}")
    s = str(text).strip()
    host, sep, port_s = s.rpartition(":")
    if not sep:
        host, port_s = default_host, s
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not _HOST_RE.fullmatch(host):
        raise ConfigError(f"{what}: bad host in {s!r}; expected HOST:PORT, e.g. 127.0.0.1:9000")
    try:
        port = int(port_s)
    except ValueError:
        raise ConfigError(f"{what}: bad port in {s!r}; expected HOST:PORT, e.g. 127.0.0.1:9000") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what}: port must be in 0..65535. Received: {port}")
    return Endpoint(host, port)


def parse_origin(text: str) -> str:
    """Check a browser origin as browsers send it: ``scheme://host[:port]``, nothing more.

    Raises:
        ConfigError: anything else (a path, a bare host name, spaces, a bad port).
    """
    import urllib.parse

    s = str(text)
    bad = ConfigError(
        f"--ws-allow-origin: {s!r} is not an origin; expected SCHEME://HOST[:PORT], e.g. http://localhost:3000"
    )
    if s != s.strip() or not s.isprintable() or " " in s:
        raise bad
    try:
        u = urllib.parse.urlsplit(s)
        port = u.port
    except ValueError:
        raise bad from None
    if not re.fullmatch(r"[a-z][a-z0-9+.\-]*", u.scheme) or not u.hostname or u.username or u.password:
        raise bad
    if u.path or u.query or u.fragment or s.endswith(":") or port == 0:
        raise bad
    return s


def check_token(token: str) -> str:
    """A WebSocket token: 16+ printable characters, no spaces (a token of spaces is no secret).

    Raises:
        ConfigError: too short, or holds whitespace or control characters.
    """
    hint = "(e.g. python -c 'import secrets; print(secrets.token_urlsafe())')"
    if not isinstance(token, str) or not token.isprintable() or any(c.isspace() for c in token):
        raise ConfigError(f"ws_token must not contain spaces or control characters {hint}")
    if len(token) < 16:
        raise ConfigError(f"ws_token must be at least 16 characters {hint}")
    return token


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine: ``localhost`` or a loopback IP address.

    The address is parsed, never judged by its prefix: ``127.example.invalid`` is a name that
    any DNS server may point anywhere.
    """
    if not isinstance(host, str):
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
