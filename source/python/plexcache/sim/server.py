"""The simulated Plex: PMS at bare paths, plex.tv and friends under /_h/<host>/, control API under /_sim/.

Usable in-process (`with SimServer(scenario) as sim: ...`) or standalone (`serve(path, port)`, behind
`plexcache-r sim serve`). Every request is recorded so tests can count requests and fail on unexpected
ones; faults can be injected per path, host and token.
"""

from __future__ import annotations

import fnmatch
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional, Union
from urllib.parse import parse_qsl, urlsplit

from plexcache.sim.payloads import Node, to_json, to_xml
from plexcache.sim.scenario import Scenario, load
from plexcache.sim.websocket import Hub, accept_key, pump
from plexcache.sim.world import World

PMS_HOST = "pms"
REDIRECT_HOSTS = ("plex.tv", "clients.plex.tv", "discover.provider.plex.tv", "metadata.provider.plex.tv",
                  "rss.plex.tv", "vod.provider.plex.tv", "music.provider.plex.tv", "sonos.plex.tv",
                  "app.plex.tv", "www.plex.tv")
FAULTS = ("timeout", "truncated", "garbage", "drop")
NOTIFICATIONS = "/:/websockets/notifications"


@dataclass
class Request:
    """One recorded request. `user` is the name the token resolved to (None: no or unknown token)."""

    method: str
    host: str  # "pms" or the virtual host (plex.tv, discover.provider.plex.tv, ...)
    path: str
    query: dict[str, str]
    status: int  # 0 when the connection was dropped or timed out
    user: Optional[str]
    token_known: bool
    fault: Optional[str] = None
    at: float = 0.0

    def __str__(self) -> str:
        q = "&".join(f"{k}={v}" for k, v in self.query.items() if k != "X-Plex-Token")
        return f"{self.method} {self.host}{self.path}{'?' + q if q else ''} -> {self.status} ({self.user})"


@dataclass
class Fault:
    path: str  # glob on the path (without query), e.g. "/library/sections/*/all"
    fault: Union[int, str]  # HTTP status, or one of FAULTS
    times: Optional[int] = None  # None: every time
    token: Optional[str] = None
    host: Optional[str] = None  # "pms" or a virtual host; None: any
    hits: int = field(default=0)

    def matches(self, host: str, path: str, token: Optional[str]) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.host is not None and self.host != host:
            return False
        if self.token is not None and self.token != token:
            return False
        return fnmatch.fnmatchcase(path, self.path)


class HttpError(Exception):
    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Route = tuple[str, "re.Pattern[str]", Callable[..., Any]]


class _Server(ThreadingHTTPServer):
    """A client that hangs up mid-request (a run killed on purpose, a timeout) is no error of the server's:
    it is not worth a traceback on stderr. Anything else still gets one."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class SimServer:
    """A simulated Plex world served over HTTP on 127.0.0.1."""

    def __init__(self, scenario: Union[Scenario, str, Path], port: int = 0, timeout_sleep: float = 3.0) -> None:
        self.scenario = load(scenario) if isinstance(scenario, (str, Path)) else scenario
        self.world = World(self.scenario)
        self.port = port
        self.timeout_sleep = min(float(timeout_sleep), 30.0)
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self._log_lock = threading.Lock()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self.url = ""
        from plexcache.sim.routes import build_routes
        self.routes: dict[str, list[Route]] = build_routes(self)
        self.notifications = Hub()
        self.world.publish = self.notifications.publish
        self._closing = threading.Event()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> str:
        handler = type("SimHandler", (_Handler,), {"sim": self})
        self._httpd = _Server(("127.0.0.1", self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="plex-sim", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._closing.set()
        self.notifications.close_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> SimServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ tokens

    @property
    def owner_token(self) -> str:
        return self.scenario.owner.token

    def token(self, user: str, pms: bool = False) -> str:
        u = self.scenario.users[user]
        return u.pms_token if pms else u.token

    def tv_url(self, host: str = "plex.tv") -> str:
        return f"{self.url}/_h/{host}"

    # ------------------------------------------------------------ request log

    def _record(self, req: Request) -> None:
        with self._log_lock:
            self.requests.append(req)

    def reset_log(self) -> None:
        with self._log_lock:
            self.requests.clear()

    def count(self, path: str = "*", method: Optional[str] = None, host: Optional[str] = None,
              user: Optional[str] = None, status: Optional[int] = None) -> int:
        """How many recorded requests match (path is a glob; host 'pms' for the server)."""
        return len(self.find(path, method, host, user, status))

    def find(self, path: str = "*", method: Optional[str] = None, host: Optional[str] = None,
             user: Optional[str] = None, status: Optional[int] = None) -> list[Request]:
        with self._log_lock:
            reqs = list(self.requests)
        return [r for r in reqs if fnmatch.fnmatchcase(r.path, path) and (method is None or r.method == method)
                and (host is None or r.host == host) and (user is None or r.user == user)
                and (status is None or r.status == status)]

    def errors(self) -> list[Request]:
        """Requests that failed without an injected fault (404s, 401s, 400s): usually a test bug."""
        with self._log_lock:
            return [r for r in self.requests if r.fault is None and (r.status >= 400 or r.status == 0)]

    def paths(self) -> list[str]:
        with self._log_lock:
            return [f"{r.method} {r.host}{r.path}" for r in self.requests]

    # ------------------------------------------------------------ faults

    def inject(self, path_glob: str, fault: Union[int, str], times: Optional[int] = None,
               token: Optional[str] = None, host: Optional[str] = None) -> Fault:
        """Make matching requests fail: an HTTP status, 'timeout', 'truncated', 'garbage' or 'drop'."""
        if not (isinstance(fault, int) or fault in FAULTS):
            raise ValueError(f"unknown fault {fault!r}: use an HTTP status or one of {', '.join(FAULTS)}")
        f = Fault(path=path_glob, fault=fault, times=times, token=token, host=host)
        with self._log_lock:
            self.faults.append(f)
        return f

    def clear_faults(self) -> None:
        with self._log_lock:
            self.faults.clear()

    def _fault_for(self, host: str, path: str, token: Optional[str]) -> Optional[Fault]:
        with self._log_lock:
            for f in self.faults:
                if f.matches(host, path, token):
                    f.hits += 1
                    return f
        return None

    # ------------------------------------------------------------ world changes (also via /_sim/)

    def add_session(self, user: str, item: Any, offset: Any = "5m", state: str = "playing",
                    player: str = "Living Room TV") -> str:
        return self.world.add_session(user, item, offset, state, player)

    def remove_session(self, session_id: Optional[str] = None) -> int:
        return self.world.remove_session(session_id)

    def set_watched(self, user: str, item: Any, watched: bool = True, at: Any = None) -> list[int]:
        return self.world.set_watched(user, item, watched, at)

    def set_offset(self, user: str, item: Any, offset_ms: int, at: Any = None) -> int:
        return self.world.set_offset(user, item, offset_ms, at)

    def add_episodes(self, show: Any, season: int, count: int) -> list[int]:
        return self.world.add_episodes(show, season, count)

    def advance(self, seconds: Any) -> int:
        return self.world.advance(seconds)

    def drop_notifications(self) -> None:
        """Cut every open notification websocket, as a Plex restart or a network drop would."""
        self.notifications.close_all()

    def authorise_pin(self, pin_id: int, user: Optional[str] = None) -> None:
        self.world.authorise_pin(pin_id, user)

    def log_json(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return [asdict(r) for r in self.requests]


class _Handler(BaseHTTPRequestHandler):
    sim: SimServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once: no 40 ms delayed-ACK stall per request
    server_version = "PlexMediaServer/sim"
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log replaces stderr noise

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if path.startswith("/_sim/"):
            self._control(method, path, query, body)
            return
        host = PMS_HOST
        m = re.match(r"^/_h/([^/]+)(/.*)?$", path)
        if m:
            host, path = m.group(1), m.group(2) or "/"
        token = self.headers.get("X-Plex-Token") or query.get("X-Plex-Token")
        users = self.sim.world.tv_tokens if host != PMS_HOST else self.sim.world.pms_tokens
        user = users.get(token) if token else None
        req = Request(method=method, host=host, path=path,
                      query={k: v for k, v in query.items() if k != "X-Plex-Token"},
                      status=0, user=user, token_known=user is not None, at=time.time())
        # The request is recorded before the response goes out, so a client that has its answer
        # always finds its request in the log.
        fault = self.sim._fault_for(host, path, token)
        ctx = _Ctx(self, method, host, path, query, body, token, user)
        if fault is not None and fault.fault == "truncated":
            # the real answer for this path, cut in the middle of an element
            status, ctype, payload = self._dispatch(ctx)
            req.fault, req.status = "truncated", status
            self.sim._record(req)
            self._send(status, ctype, _truncate(payload))
            return
        if fault is not None:
            req.fault = str(fault.fault)
            req.status = fault.fault if isinstance(fault.fault, int) else (200 if fault.fault in
                                                                            ("truncated", "garbage") else 0)
            self.sim._record(req)
            self._apply_fault(fault, req)
            return
        if host == PMS_HOST and path == NOTIFICATIONS and method == "GET":
            self._notifications(ctx, req)
            return
        try:
            status, ctype, payload = self._dispatch(ctx)
        except Exception:
            req.status = 500
            self.sim._record(req)
            self._send(*_error(500, "Internal Server Error"))
            raise
        req.status = status
        self.sim._record(req)
        self._send(status, ctype, payload, ctx.extra_headers)

    def _dispatch(self, ctx: _Ctx) -> tuple[int, str, bytes]:
        routes = self.sim.routes.get(ctx.host, [])
        if ctx.host != PMS_HOST and ctx.host not in self.sim.routes:
            return _error(404, "Not Found")
        try:
            for method, pattern, fn in routes:
                m = pattern.fullmatch(ctx.path)
                if m and method == ctx.method:
                    # one world lock per request: control calls may mutate the world from other threads
                    with self.sim.world.lock:
                        result = fn(ctx, *m.groups())
                    return ctx.render(result)
            for _method, pattern, _ in routes:
                if pattern.fullmatch(ctx.path):
                    return _error(405, "Method Not Allowed")
            return _error(404, "Not Found")
        except HttpError as exc:
            return _error(exc.status, exc.message or ("Unauthorized" if exc.status == 401 else "Error"))
        except (ValueError, KeyError) as exc:
            return _error(400, f"Bad Request: {exc}")

    def _notifications(self, ctx: _Ctx, req: Request) -> None:
        """The websocket: 401 without a known token, 400 without an upgrade, else events until closed."""
        key = self.headers.get("Sec-WebSocket-Key")
        if ctx.user is None or "websocket" not in (self.headers.get("Upgrade") or "").lower() or not key:
            req.status = 401 if ctx.user is None else 400
            self.sim._record(req)
            self._send(*_error(req.status, "Unauthorized" if req.status == 401 else "Bad Request: not a websocket"))
            return
        outgoing = self.sim.notifications.subscribe()
        req.status = 101
        self.sim._record(req)
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(key))
        self.end_headers()
        try:
            pump(self.connection, outgoing, self.sim._closing)
        finally:
            self.sim.notifications.unsubscribe(outgoing)
            self.close_connection = True

    def _send(self, status: int, ctype: str, payload: bytes, headers: Optional[dict[str, str]] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        # headers and body in one write (two small writes meet delayed ACKs: 40 ms per request)
        buffered: list[bytes] = self.__dict__["_headers_buffer"]
        buffered.append(b"\r\n")
        if self.command != "HEAD":
            buffered.append(payload)
        self.flush_headers()

    def _apply_fault(self, fault: Fault, req: Request) -> None:
        kind = fault.fault
        if isinstance(kind, int):
            self._send(*_error(kind, "Simulated failure"))
            return
        if kind == "timeout":
            time.sleep(self.sim.timeout_sleep)
            self.close_connection = True
            return
        if kind == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        # garbage: a 200 whose body is not XML at all
        self._send(200, "text/xml;charset=utf-8", b"<MediaContainer size=\"1\"><Video <<\x00 not xml")

    def _control(self, method: str, path: str, query: dict[str, str], body: bytes) -> None:
        from plexcache.sim.routes import control
        try:
            data = json.loads(body.decode() or "{}") if body else dict(query)
            result = control(self.sim, method, path, data)
            self._send(200, "application/json", json.dumps(result).encode())
        except HttpError as exc:
            self._send(exc.status, "application/json", json.dumps({"error": exc.message}).encode())
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, "application/json", json.dumps({"error": str(exc)}).encode())


def _truncate(payload: bytes) -> bytes:
    """Cut a payload inside an element: just after the '<' of a tag near the middle."""
    cut = payload.find(b"<", len(payload) // 2)
    if cut < 0:
        cut = payload.rfind(b"<")
    return payload[: max(cut + 1, 1)] if cut >= 0 else payload[: len(payload) // 2]


def _error(status: int, message: str) -> tuple[int, str, bytes]:
    body = f"<html><head><title>{message}</title></head><body><h1>{status} {message}</h1></body></html>"
    return status, "text/html", body.encode()


class _Ctx:
    """What a route handler gets: request facts, the resolved user, paging and rendering helpers."""

    def __init__(self, handler: _Handler, method: str, host: str, path: str, query: dict[str, str], body: bytes,
                 token: Optional[str], user: Optional[str]) -> None:
        self.handler = handler
        self.sim = handler.sim
        self.world = handler.sim.world
        self.method = method
        self.host = host
        self.path = path
        self.query = query
        self.body = body
        self.token = token
        self.user = user
        self.headers = handler.headers
        self.extra_headers: dict[str, str] = {}

    @property
    def wants_json(self) -> bool:
        return "application/json" in (self.headers.get("Accept") or "")

    def need_user(self) -> str:
        if self.user is None:
            raise HttpError(401, "Unauthorized")
        return self.user

    def need_owner(self) -> str:
        user = self.need_user()
        if self.world.sc.users[user].kind != "owner":
            raise HttpError(401, "Unauthorized")
        return user

    def paging(self) -> tuple[int, Optional[int]]:
        def get(name: str) -> Optional[str]:
            return self.headers.get(name) or self.query.get(name)
        start = int(get("X-Plex-Container-Start") or 0)
        size = get("X-Plex-Container-Size")
        return max(0, start), (None if size is None else max(0, int(size)))

    def page(self, node: Node, keys: list[Any], build: Callable[[Any], Node], always_total: bool = False) -> Node:
        """Fill `node` with one page of `keys`, building only the items on that page."""
        start, size = self.paging()
        total = len(keys)
        chunk = keys[start:] if size is None else keys[start:start + size]
        for k in chunk:
            node.add(build(k))
        node.attrs["size"] = len(chunk)
        if size is not None or start or always_total:
            node.attrs["totalSize"] = total
            node.attrs["offset"] = start
            self.extra_headers["X-Plex-Container-Start"] = str(start)
            self.extra_headers["X-Plex-Container-Total-Size"] = str(total)
        return node

    def render(self, result: Any) -> tuple[int, str, bytes]:
        if isinstance(result, tuple):  # (status, content type, bytes) from a route that renders itself
            return result
        if result is None:
            return 200, "text/xml;charset=utf-8", b""
        if self.wants_json:
            return 200, "application/json", to_json(result)
        return 200, "text/xml;charset=utf-8", to_xml(result)


def serve(path: Union[str, Path], port: int = 32400, out: Any = None) -> None:
    """Run the simulator in the foreground until Ctrl-C (`plexcache-r sim serve`)."""
    out = out or sys.stdout
    sim = SimServer(path, port=port)
    url = sim.start()
    print(f"Plex simulator for {path} at {url}", file=out)
    print(f"  plex.tv and friends under {url}/_h/<host>/ (set PLEXCACHE_PLEX_REDIRECT={url})", file=out)
    for u in sim.scenario.users.values():
        extra = f", PMS token {u.pms_token}" if u.pms_token != u.token else ""
        print(f"  user {u.name} ({u.kind}): token {u.token}{extra}", file=out)
    print("Press Ctrl-C to stop.", file=out, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
