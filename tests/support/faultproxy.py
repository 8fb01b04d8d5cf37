"""A TCP proxy that can be told to fail: put between the stack's processes and an emulator.

Restarting an emulator loses everything it holds in memory (Firestore's documents, Pub/Sub's
topics and subscriptions), so an outage is played here instead: the processes connect to the
proxy (their `*_EMULATOR_HOST` names it), the proxy relays to the emulator, and a test switches
its mode:

- `pass`: every byte relayed both ways.
- `down`: as if the service had stopped: the port is closed (new connections are refused) and
  every open connection is dropped.
- `reset`: as if the service crashed behind its address: every new connection is accepted
  and reset at once (counted: a test can wait until a client has tried), open ones dropped.
- `blackhole`: as if the network ate everything: connections are accepted and never answered,
  open ones stop relaying (what they carry is discarded). Leaving the mode drops them, since
  what they were in the middle of cannot be resumed.

Relaying is two threads per connection (blocking sockets): the stack opens a handful of
long-lived gRPC connections and a few HTTP ones, so threads are simple and enough.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Self

from tools.stack.processes import LOCALHOST, free_port

Mode = Literal["pass", "down", "reset", "blackhole"]
_CHUNK = 65536


@dataclass
class _Link:
    """One client connection and, unless accepted in a blackhole, its upstream connection."""

    client: socket.socket
    upstream: socket.socket | None
    frozen: bool = False  # saw a blackhole: dropped on leaving it

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


@dataclass
class FaultCounts:
    """What the proxy did: faults played, connections relayed, swallowed or dropped."""

    relayed: int = 0
    faults: list[Mode] = field(default_factory=list)  # each change into `down` or `blackhole`
    reset: int = 0  # connections reset on arrival
    swallowed: int = 0  # accepted in a blackhole
    dropped: int = 0  # open connections cut by a mode change


class FaultProxy:
    """`127.0.0.1:{port}` relaying to `127.0.0.1:{target_port}`, in a mode set by `set_mode`.

    with FaultProxy(emulator_port) as proxy:
        env["FIRESTORE_EMULATOR_HOST"] = proxy.host
        proxy.set_mode("down")  # ... then "pass" again
    """

    def __init__(self, target_port: int, *, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.counts = FaultCounts()
        self._mode: Mode = "pass"
        self._lock = threading.Lock()
        self._by_id: dict[int, _Link] = {}
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    @property
    def host(self) -> str:
        """`HOST:PORT`, as the Firestore and Pub/Sub `*_EMULATOR_HOST` variables take it."""
        return f"{LOCALHOST}:{self.port}"

    @property
    def mode(self) -> Mode:
        return self._mode

    def start(self) -> None:
        self._listen()

    def stop(self) -> None:
        """Close the port and every connection. Idempotent."""
        self._unlisten()
        self._drop(lambda _link: True)

    def set_mode(self, mode: Mode) -> None:
        with self._lock:
            previous, self._mode = self._mode, mode
        if mode == previous:
            return
        if mode != "pass":
            self.counts.faults.append(mode)
        if mode == "down":
            self._unlisten()
            self.counts.dropped += self._drop(lambda _link: True)
            return
        if mode == "reset":
            self.counts.dropped += self._drop(lambda _link: True)
        elif mode == "blackhole":
            with self._lock:
                for link in self._by_id.values():
                    link.frozen = True
        else:  # back to pass: what a blackhole froze cannot be resumed
            self.counts.dropped += self._drop(lambda link: link.frozen)
        self._listen()

    # --- the listening side ----------------------------------------------------------------

    def _listen(self) -> None:
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOCALHOST, self.port))
        listener.listen(128)
        self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept_loop, args=(listener,), name=f"faultproxy:{self.port}", daemon=True
        )
        self._acceptor.start()

    def _unlisten(self) -> None:
        listener, acceptor = self._listener, self._acceptor
        self._listener = self._acceptor = None
        if listener is None:
            return
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        listener.close()
        if acceptor is not None:
            acceptor.join(timeout=5)

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return  # the listener was closed
            self._serve(client)

    def _serve(self, client: socket.socket) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._mode == "reset":
            # Linger 0: close() sends RST, the client reads "connection reset by peer".
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            self.counts.reset += 1
            return
        if self._mode == "blackhole":
            link = _Link(client, None, frozen=True)
            self.counts.swallowed += 1
            self._track(link)
            threading.Thread(target=self._swallow, args=(link,), daemon=True).start()
            return
        try:
            upstream = socket.create_connection((LOCALHOST, self.target_port), timeout=5)
        except OSError:
            client.close()  # the service itself is not there: the client sees it go away
            return
        upstream.settimeout(None)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(client, upstream)
        self.counts.relayed += 1
        self._track(link)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(link, source, sink), daemon=True).start()

    # --- one connection ----------------------------------------------------------------------

    def _track(self, link: _Link) -> None:
        with self._lock:
            self._by_id[id(link)] = link

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._by_id.pop(id(link), None)
        link.close()

    def _drop(self, predicate: Callable[[_Link], bool]) -> int:
        with self._lock:
            chosen = [link for link in self._by_id.values() if predicate(link)]
            for link in chosen:
                self._by_id.pop(id(link), None)
        for link in chosen:
            link.close()
        return len(chosen)

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(_CHUNK):
                if link.frozen:
                    continue  # a blackhole: read and discard
                sink.sendall(chunk)
        except OSError:
            pass
        self._forget(link)

    def _swallow(self, link: _Link) -> None:
        with contextlib.suppress(OSError):
            while link.client.recv(_CHUNK):
                pass
        self._forget(link)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()
