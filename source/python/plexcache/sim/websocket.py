"""Plex's notification channel for the simulator: `/:/websockets/notifications`.

PMS pushes one JSON text message per event, `{"NotificationContainer": {"type": ..., "size": n, ...}}`:
`playing` (a PlaySessionStateNotification per session that started, moved or stopped) and `timeline`
(a TimelineEntry per library item created, processed or deleted). Only the server side of RFC 6455 that a
client such as websocket-client needs is here: the handshake, unmasked text frames out, masked frames in
(close and ping are answered, anything else is ignored).
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import select
import socket
import struct
import threading
from typing import Any, Optional

HANDSHAKE_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # fixed by RFC 6455
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


def accept_key(client_key: str) -> str:
    digest = hashlib.sha1((client_key + HANDSHAKE_GUID).encode()).digest()  # SHA-1: RFC 6455 prescribes it
    return base64.b64encode(digest).decode()


def frame(payload: bytes, opcode: int = TEXT) -> bytes:
    """One final, unmasked frame (servers never mask)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        return head + bytes([n]) + payload
    if n < 1 << 16:
        return head + bytes([126]) + struct.pack("!H", n) + payload
    return head + bytes([127]) + struct.pack("!Q", n) + payload


def _read_exact(sock: socket.socket, n: int) -> Optional[bytes]:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            return None
        out += chunk
    return out


def read_frame(sock: socket.socket) -> Optional[tuple[int, bytes]]:
    """(opcode, payload) of the next client frame; None when the peer has gone."""
    head = _read_exact(sock, 2)
    if head is None:
        return None
    opcode, n, masked = head[0] & 0x0F, head[1] & 0x7F, bool(head[1] & 0x80)
    if n == 126:
        raw = _read_exact(sock, 2)
        n = struct.unpack("!H", raw)[0] if raw else 0
    elif n == 127:
        raw = _read_exact(sock, 8)
        n = struct.unpack("!Q", raw)[0] if raw else 0
    mask = _read_exact(sock, 4) if masked else b"\0\0\0\0"
    body = _read_exact(sock, n) if n else b""
    if mask is None or body is None:
        return None
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(body))


class Hub:
    """The open notification channels; `publish` queues a container for each of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: list[queue.Queue[Optional[bytes]]] = []

    def subscribe(self) -> queue.Queue[Optional[bytes]]:
        q: queue.Queue[Optional[bytes]] = queue.Queue()
        with self._lock:
            self._queues.append(q)
        return q

    def unsubscribe(self, q: queue.Queue[Optional[bytes]]) -> None:
        with self._lock:
            if q in self._queues:
                self._queues.remove(q)

    @property
    def open_channels(self) -> int:
        with self._lock:
            return len(self._queues)

    def publish(self, container: dict[str, Any]) -> None:
        message = json.dumps({"NotificationContainer": container}).encode()
        with self._lock:
            for q in self._queues:
                q.put(message)

    def close_all(self) -> None:
        """Drop every channel, as a Plex restart or a network cut would (None tells a channel to end)."""
        with self._lock:
            for q in self._queues:
                q.put(None)
            self._queues.clear()


def pump(sock: socket.socket, outgoing: queue.Queue[Optional[bytes]], closing: threading.Event) -> None:
    """Send queued messages and answer the client's control frames until either side ends the channel."""
    sock.settimeout(5.0)  # for a frame already announced by select(), never for waiting
    while not closing.is_set():
        try:
            message = outgoing.get(timeout=0.05)
        except queue.Empty:
            message = b""
        if message is None:
            break
        try:
            if message:
                sock.sendall(frame(message))
            if not select.select([sock], [], [], 0)[0]:
                continue
            incoming = read_frame(sock)
            if incoming is None or incoming[0] == CLOSE:
                break
            if incoming[0] == PING:
                sock.sendall(frame(incoming[1], PONG))
        except OSError:
            return  # the client vanished: nothing to close politely
    try:
        sock.sendall(frame(b"\x03\xe8", CLOSE))  # 1000: normal closure
    except OSError:
        pass
