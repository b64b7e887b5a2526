"""OSCQuery with VRChat: advertise where the daemon listens, find where VRChat listens (thin adapter).

VRChat (since 2023.3) finds OSC apps through mDNS (``_osc._udp`` and
``_oscjson._tcp`` services) and sends avatar data to the UDP port each one
advertises, so apps no longer fight over port 9001.  It advertises itself as
``VRChat-Client-XXXXXX`` the same way: its ``_osc._udp`` port is where
parameters go (9000 unless the user changed it).

Both directions use ``zeroconf`` bound to **127.0.0.1 only**, as
``python-oscquery`` does for VRChat: nothing is announced on, or read from,
another network interface (emotion read from a voice is personal data, and
VRChat on the same PC hears loopback announcements).  The OSCQuery HTTP
server (the address-space JSON VRChat reads to decide what to send us) is
our own (:mod:`ser_daemon.net.oscquery_http`: python-oscquery's handler served
files from the working folder), bound to 127.0.0.1 on a free port; the
documents it serves are python-oscquery's.

Everything blocking (zeroconf threads, the HTTP server) runs in background
threads; callbacks arrive from those threads.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import SerError, import_failure
from ..net.oscquery_http import OscQueryHttpServer

__all__ = ["OscQueryUnavailable", "VRChatService", "Advertisement", "VRChatBrowser", "advertise", "VRCHAT_PREFIX",
           "fetch_avatar_paths", "tree_paths"]

log = logging.getLogger(__name__)

VRCHAT_PREFIX = "VRChat-Client-"
OSC_TYPE = "_osc._udp.local."
OSCJSON_TYPE = "_oscjson._tcp.local."
LOOPBACK = "127.0.0.1"
HTTP_POLL_S = 0.05  # how often the OSCQuery HTTP server checks for shutdown
MAX_TREE_BYTES = 4 * 1024 * 1024  # VRChat's /avatar tree: a few hundred parameters are ~100 kB
MAX_TREE_DEPTH = 32


class OscQueryUnavailable(SerError, ImportError):
    """zeroconf / python-oscquery are not installed."""


def _imports() -> tuple[Any, Any]:
    try:
        import zeroconf
        from pythonoscquery import osc_query_service
    except ImportError as exc:
        raise OscQueryUnavailable(import_failure(
            exc, "zeroconf or python-oscquery",
            "OSCQuery needs the zeroconf and python-oscquery packages: pip install zeroconf python-oscquery"
        )) from exc
    return zeroconf, osc_query_service


@dataclass(frozen=True)
class VRChatService:
    """A VRChat client found over mDNS: where it receives OSC."""

    name: str
    host: str
    osc_port: int
    kind: str = "osc"  # "osc": osc_port is where it receives OSC; "query": its OSCQuery HTTP port


class Advertisement:
    """The daemon's own OSCQuery service; :meth:`close` withdraws it."""

    def __init__(self, service: Any, http_thread: threading.Thread, http: Any = None) -> None:
        self._service = service
        self._thread = http_thread
        self._http = http
        self.name: str = service.server_name
        self.http_port: int = service.http_port
        self.osc_port: int = service.osc_port

    def close(self) -> None:
        try:
            self._service.stop()  # HTTP shutdown, then mDNS goodbye packets
        except Exception as exc:  # never fail a shutdown over an announcement
            log.debug("OSCQuery stop: %s", exc)
        self._thread.join(timeout=2.0)
        if self._http is not None:
            self._http.server_close()  # python-oscquery's stop() leaves the listening socket open


def advertise(osc_port: int, name: str | None = None, wanted: tuple[str, ...] = ("/avatar/change",
              "/avatar/parameters/MuteSelf")) -> Advertisement:
    """Announce an OSC receiver on 127.0.0.1:``osc_port`` that wants ``wanted`` addresses.

    VRChat sends ``/avatar`` data to services whose address space holds
    ``/avatar`` nodes; listing the addresses we read is also documentation
    for any other OSCQuery tool.

    Raises:
        OscQueryUnavailable: the packages are missing.
        OSError: the HTTP server could not bind or mDNS could not start.
    """
    _, oqs = _imports()
    from pythonoscquery.shared.osc_access import OSCAccess
    from pythonoscquery.shared.osc_address_space import OSCAddressSpace
    from pythonoscquery.shared.osc_path_node import OSCPathNode

    space = OSCAddressSpace()
    for address in wanted:
        value: Any = "" if address.endswith("/change") else False
        space.add_node(OSCPathNode(address, access=OSCAccess.WRITEONLY_VALUE, value=value))
    server_name = name or f"ser-daemon-{secrets.token_hex(3)}"
    # Our own HTTP server on loopback (the library's binds every interface and serves files),
    # made before the service so its real port is announced.
    http = OscQueryHttpServer(space, None, (LOOPBACK, 0))
    service = oqs.OSCQueryService(space, server_name, http.server_address[1], osc_port, osc_ip=LOOPBACK)
    http.host_info = service.host_info
    service.http_server = http  # start() then only announces
    # serve_forever notices shutdown() once per poll: its default 0.5 s would be half of the 1 s stop budget.
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": HTTP_POLL_S}, name="oscquery-http",
                              daemon=True)
    thread.start()
    try:
        service.start()
    except Exception:
        http.shutdown()
        http.server_close()
        raise
    log.info("OSCQuery: advertising %s (OSC 127.0.0.1:%d, HTTP 127.0.0.1:%d)", server_name, osc_port,
             http.server_address[1])
    return Advertisement(service, thread, http)


class VRChatBrowser:
    """Watches mDNS on 127.0.0.1 for VRChat clients; calls ``on_found`` once per new client.

    Args:
        on_found: called (from a zeroconf thread) with each VRChat client found.
        prefix: service names that count as VRChat.
    """

    def __init__(self, on_found: Callable[[VRChatService], None], prefix: str | None = None) -> None:
        zeroconf, _ = _imports()
        # $SER_VRCHAT_SERVICE_PREFIX: lets tests on a shared machine tell their fake VRChat from another's.
        prefix = prefix or os.environ.get("SER_VRCHAT_SERVICE_PREFIX") or VRCHAT_PREFIX
        self._zc = zeroconf.Zeroconf(interfaces=[LOOPBACK])
        self.prefix = prefix
        self.found: dict[str, VRChatService] = {}
        self.first = threading.Event()
        self._on_found = on_found
        browser = self

        class _Listener(zeroconf.ServiceListener):
            def add_service(self, zc: Any, type_: str, name: str) -> None:
                browser._seen(zc, type_, name)

            def update_service(self, zc: Any, type_: str, name: str) -> None:
                browser._seen(zc, type_, name)

            def remove_service(self, zc: Any, type_: str, name: str) -> None:
                browser.found.pop(type_ + name, None)

        # Both of VRChat's services: _osc._udp says where it receives OSC, _oscjson._tcp where its
        # OSCQuery tree is (the worn avatar's parameters: see fetch_avatar_paths).
        self._browser = zeroconf.ServiceBrowser(self._zc, [OSC_TYPE, OSCJSON_TYPE], _Listener())

    def _seen(self, zc: Any, type_: str, name: str) -> None:
        if not name.startswith(self.prefix):
            return
        info = zc.get_service_info(type_, name, timeout=1000)
        if info is None or not info.parsed_addresses():
            return
        kind = "query" if type_ == OSCJSON_TYPE else "osc"
        svc = VRChatService(name.split(".", 1)[0], info.parsed_addresses()[0], int(info.port), kind)
        key = type_ + name
        if self.found.get(key) == svc:
            return
        self.found[key] = svc
        if kind == "osc":
            log.info("OSCQuery: found %s receiving OSC on %s:%d", svc.name, svc.host, svc.osc_port)
            self.first.set()
        else:
            log.info("OSCQuery: found %s's parameter tree at http://%s:%d/", svc.name, svc.host, svc.osc_port)
        self._on_found(svc)

    def close(self) -> None:
        try:
            self._browser.cancel()
        finally:
            self._zc.close()


def tree_paths(node: Any, depth: int = 0) -> set[str]:
    """Every ``FULL_PATH`` in an OSCQuery JSON tree (nodes nest under ``CONTENTS``); bounded in depth."""
    out: set[str] = set()
    if not isinstance(node, dict) or depth > MAX_TREE_DEPTH:
        return out
    path = node.get("FULL_PATH")
    if isinstance(path, str):
        out.add(path)
    contents = node.get("CONTENTS")
    if isinstance(contents, dict):
        for child in contents.values():
            out |= tree_paths(child, depth + 1)
    return out


def fetch_avatar_paths(svc: VRChatService, timeout_s: float = 2.0) -> set[str] | None:
    """The OSC paths under ``/avatar`` that VRChat's OSCQuery tree lists (the worn avatar's parameters).

    Only a VRChat on this machine is asked (127.0.0.1).  None when it cannot be read (no
    answer, not JSON, too large): the caller then knows nothing, rather than "no parameters".
    """
    import json
    import urllib.error
    import urllib.request

    if svc.kind != "query" or svc.host != LOOPBACK:
        return None
    url = f"http://{LOOPBACK}:{svc.osc_port}/avatar"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:  # noqa: S310 (loopback, http only)
            body = r.read(MAX_TREE_BYTES + 1)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        log.info("OSCQuery: could not read %s (%s)", url, exc)
        return None
    if len(body) > MAX_TREE_BYTES:
        log.info("OSCQuery: %s is larger than %d bytes; not read", url, MAX_TREE_BYTES)
        return None
    try:
        tree = json.loads(body)
    except (ValueError, RecursionError):
        log.info("OSCQuery: %s is not JSON", url)
        return None
    return tree_paths(tree)
