"""Hearing VRChat: the UDP listener, OSCQuery announcement and discovery, the 9001 fallback (asyncio adapter).

Start-up, in order:

1. bind a UDP listener on 127.0.0.1 on a *free* port and advertise it over
   OSCQuery (VRChat then sends ``/avatar/change``, ``MuteSelf`` and the
   avatar's parameters there, whatever other OSC apps hold 9001);
2. browse for a ``VRChat-Client-*`` service: when one appears (now or
   later), ``on_vrchat`` gets where it receives OSC;
3. if none answered within ``wait_s``, also listen on the classic port
   (``fallback_port``, 9001) for VRChat set-ups without OSCQuery, unless
   another app holds it (then say so once and carry on).  The fallback is
   released as soon as a VRChat client is found over OSCQuery, so an app
   started later can have 9001.

With ``use_oscquery`` false (or the packages missing) the fallback port is
bound at once, as before OSCQuery existed.

Who may send: any process on this computer.  Both ports are bound to
127.0.0.1, so only local processes reach them (a datagram from another
address is dropped all the same); the sender is not pinned to VRChat, because
VRChat advertises where it *receives* OSC, not the port it sends from.  A
local process can therefore send ``MuteSelf`` or the avatar toggle, as it can
to VRChat's own OSC port.  What it sends is parsed with bounds
(:mod:`ser_daemon.net.osc_in`): a malformed datagram is dropped, counted and
logged at most once per ten seconds, and never holds the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Callable, TypeVar

from ..net.endpoints import is_loopback
from ..net.osc_in import DropLog, OscRejected
from .oscquery import Advertisement, OscQueryUnavailable, VRChatBrowser, VRChatService, advertise

__all__ = ["VRChatLink"]

log = logging.getLogger(__name__)

T = TypeVar("T")


async def _in_own_thread(fn: Callable[..., T], *args: Any, if_abandoned: Callable[[T], None] | None = None) -> T:
    """Run a blocking call (mDNS probing takes ~1.5 s per service) in a daemon thread of its own.

    Not ``asyncio.to_thread``: a stop during start-up cancels the await, but ``asyncio.run``
    joins the default executor's threads before the process may exit, so an abandoned
    3-second announcement would hold the exit for its full length.  A daemon thread is left
    behind instead; if its call still succeeds, ``if_abandoned`` gets the result (to close it).
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future = loop.create_future()

    def deliver(ok: bool, value: Any) -> None:
        if fut.done():  # cancelled meanwhile: nobody will use the result; close it off the loop
            if ok and if_abandoned is not None:
                threading.Thread(target=if_abandoned, args=(value,), name="vrchat-abandoned", daemon=True).start()
        elif ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def run() -> None:
        try:
            ok, value = True, fn(*args)
        except Exception as exc:  # handed to the awaiting coroutine (this thread never sees signals)
            ok, value = False, exc
        try:
            loop.call_soon_threadsafe(deliver, ok, value)
        except RuntimeError:  # the loop is closed: the daemon has stopped
            if ok and if_abandoned is not None:
                if_abandoned(value)

    threading.Thread(target=run, name=f"vrchat-{getattr(fn, '__name__', 'start')}", daemon=True).start()
    return await fut


class VRChatLink:
    """Owns every socket and service the daemon uses to hear VRChat."""

    def __init__(
        self,
        on_datagram: Callable[[bytes], None],
        on_vrchat: Callable[[VRChatService], None],
        *,
        fallback_port: int = 9001,
        use_oscquery: bool = True,
        wait_s: float = 3.0,
        wanted: tuple[str, ...] = ("/avatar/change", "/avatar/parameters/MuteSelf"),
        on_query: Callable[[VRChatService], None] | None = None,
        on_fallback: Callable[[int | None], None] | None = None,
    ) -> None:
        self.on_datagram = on_datagram
        self.on_vrchat = on_vrchat
        self.on_query = on_query  # VRChat's OSCQuery tree was found (its HTTP port)
        self.on_fallback = on_fallback  # listening on the classic port now (None: it could not be bound)
        self.fallback_port = fallback_port
        self.use_oscquery = use_oscquery
        self.wait_s = wait_s
        self.wanted = wanted  # the addresses announced in our OSCQuery tree
        self.port: int | None = None  # the advertised listener's port
        self.advertisement: Advertisement | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.DatagramTransport | None = None
        self._fallback: asyncio.DatagramTransport | None = None
        self._browser: VRChatBrowser | None = None
        self._waiter: asyncio.Task | None = None
        self._found = asyncio.Event()
        self.drops = DropLog(log, "the VRChat listen port")
        self.datagrams = 0  # received on either port
        self.worst_handling_s = 0.0  # longest time one datagram took to handle

    def stats(self) -> dict[str, Any]:
        """Datagrams heard, dropped, and the longest one took to handle (for ``--stats-json``)."""
        return {"datagrams": self.datagrams, "dropped": self.drops.total,
                "worst_handling_ms": round(self.worst_handling_s * 1000, 3)}

    def _received(self, data: bytes, addr: Any) -> None:
        """One datagram: hand it on if it is from this computer and is OSC; time and count it."""
        t0 = time.perf_counter()
        self.datagrams += 1
        try:
            if not (isinstance(addr, tuple) and addr and is_loopback(addr[0])):
                raise OscRejected("sender is not on this computer")
            self.on_datagram(data)
        except OscRejected as exc:
            self.drops.note(str(exc), addr[0] if isinstance(addr, tuple) and addr else addr)
        finally:
            self.worst_handling_s = max(self.worst_handling_s, time.perf_counter() - t0)

    async def _bind(self, port: int) -> asyncio.DatagramTransport:
        link = self
        assert self._loop is not None

        class _Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple) -> None:
                link._received(data, addr)

        transport, _ = await self._loop.create_datagram_endpoint(_Proto, local_addr=("127.0.0.1", port))
        return transport

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.use_oscquery:
            try:
                self._main = await self._bind(0)
                self.port = self._main.get_extra_info("sockname")[1]
                # A stop while these run cancels start() (Daemon._main): they are left to finish alone.
                self.advertisement = await _in_own_thread(advertise, self.port, None, self.wanted,
                                                          if_abandoned=Advertisement.close)
                self._browser = await _in_own_thread(VRChatBrowser, self._found_threadsafe,
                                                     if_abandoned=VRChatBrowser.close)
            except (OscQueryUnavailable, OSError) as exc:
                log.warning("OSCQuery unavailable (%s); listening for VRChat on port %d instead", exc,
                            self.fallback_port)
                await self._close_oscquery()
                await self._bind_fallback()
                return
            self._waiter = asyncio.create_task(self._fallback_unless_found())
        else:
            await self._bind_fallback()

    def _found_threadsafe(self, svc: VRChatService) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._on_found, svc)
        except RuntimeError:
            pass  # loop closed during shutdown

    def _on_found(self, svc: VRChatService) -> None:
        if svc.kind == "query":
            if self.on_query is not None:
                self.on_query(svc)
            return
        self._found.set()
        if self._fallback is not None:
            log.info("VRChat found over OSCQuery: releasing port %d for other apps", self.fallback_port)
            self._fallback.close()
            self._fallback = None
        self.on_vrchat(svc)

    async def _fallback_unless_found(self) -> None:
        try:
            await asyncio.wait_for(self._found.wait(), self.wait_s)
        except asyncio.TimeoutError:
            log.info("no VRChat answered over OSCQuery within %.0f s: also listening on port %d",
                     self.wait_s, self.fallback_port)
            await self._bind_fallback()

    async def _bind_fallback(self) -> None:
        if not self.fallback_port:
            return
        try:
            self._fallback = await self._bind(self.fallback_port)
        except OSError as exc:
            log.warning(
                "cannot listen for VRChat on 127.0.0.1:%d (%s: another OSC app has it?); avatar changes will be "
                "picked up at the next parameter change instead", self.fallback_port, exc.strerror or exc,
            )
        if self.on_fallback is not None:
            self.on_fallback(self.fallback_port if self._fallback is not None else None)

    async def _close_oscquery(self) -> None:
        if self._browser is not None:
            await asyncio.to_thread(self._browser.close)
            self._browser = None
        if self.advertisement is not None:
            await asyncio.to_thread(self.advertisement.close)
            self.advertisement = None
        if self._main is not None:
            self._main.close()
            self._main = None

    async def close(self) -> None:
        if self._waiter is not None:
            self._waiter.cancel()
        await self._close_oscquery()
        if self._fallback is not None:
            self._fallback.close()
            self._fallback = None
