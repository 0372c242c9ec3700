"""The one factory for HTTP sessions used by all product code that talks to Plex, plex.tv or RSS.

`make_session()` returns a requests.Session that
- applies a default timeout to every request that does not pass one,
- counts every request it sends, failed ones included (`count_requests(session)`): the one measure of
  "Plex requests" a run or live mode reports,
- when PLEXCACHE_PLEX_REDIRECT=http://127.0.0.1:PORT is set (off by default; a test and demo seam),
  rewrites https://plex.tv, clients.plex.tv, discover/metadata providers, rss.plex.tv and the other
  hosts python-plexapi hard-codes to http://127.0.0.1:PORT/_h/<host>/..., where the simulator answers.

Pass the session to every PlexServer(..., session=s) and MyPlexAccount(..., session=s); plexapi carries
it on through myPlexAccount(), switchHomeUser(), switchUser() and watchlist().
"""

from __future__ import annotations

import os
import threading
from typing import Any, Optional, Protocol
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

REDIRECT_ENV = "PLEXCACHE_PLEX_REDIRECT"
DEFAULT_TIMEOUT = 30.0
# Every plex.tv host python-plexapi 4.18.3 hard-codes (myplex.py, sonos.py), plus the RSS feed host.
PLEX_HOSTS = (
    "plex.tv",
    "www.plex.tv",
    "app.plex.tv",
    "clients.plex.tv",
    "discover.provider.plex.tv",
    "metadata.provider.plex.tv",
    "vod.provider.plex.tv",
    "music.provider.plex.tv",
    "rss.plex.tv",
    "sonos.plex.tv",
    "community.plex.tv",
)


class CountingSession(requests.Session):
    """A Session that counts every request it sends (a timeout, a refused connection and each redirect hop
    included): what was asked of Plex, whether or not an answer came. Safe across threads."""

    def __init__(self) -> None:
        super().__init__()
        self._count_lock = threading.Lock()
        self.sent = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        with self._count_lock:
            self.sent += 1
        return super().send(request, **kwargs)


class SessionFactory(Protocol):
    """What readers of Plex are given to make their session: make_session, or a test's wrapper of it."""

    def __call__(self, timeout: float) -> CountingSession: ...


class _TimeoutAdapter(HTTPAdapter):
    """Gives requests without an explicit timeout the session's default."""

    def __init__(self, timeout: float, **kwargs: Any) -> None:
        self.default_timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().send(request, **kwargs)


class RedirectAdapter(_TimeoutAdapter):
    """Rewrites https://<plex host>/path?q to <base>/_h/<host>/path?q (the simulator's virtual hosts)."""

    def __init__(self, base: str, timeout: float, **kwargs: Any) -> None:
        self.base = urlsplit(base.rstrip("/"))
        super().__init__(timeout, **kwargs)

    def rewrite(self, url: str) -> str:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host not in PLEX_HOSTS:
            return url
        path = f"{self.base.path}/_h/{host}{parts.path or '/'}"
        return urlunsplit((self.base.scheme, self.base.netloc, path, parts.query, ""))

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        request.url = self.rewrite(request.url or "")
        # The proxy that a test safety net sets for https must not apply to the loopback simulator.
        kwargs["proxies"] = {}
        return super().send(request, **kwargs)


def redirect_target() -> Optional[str]:
    """The simulator base URL from PLEXCACHE_PLEX_REDIRECT, or None when unset (the normal case)."""
    value = os.environ.get(REDIRECT_ENV, "").strip()
    return value or None


def make_session(timeout: Optional[float] = None) -> CountingSession:
    """A requests.Session for Plex/plex.tv traffic: default timeout, request counting, optional redirect."""
    session = CountingSession()
    t = DEFAULT_TIMEOUT if timeout is None else float(timeout)
    plain = _TimeoutAdapter(t)
    session.mount("http://", plain)
    session.mount("https://", plain)
    target = redirect_target()
    if target:
        adapter = RedirectAdapter(target, t)
        for host in PLEX_HOSTS:
            session.mount(f"https://{host}/", adapter)
            session.mount(f"http://{host}/", adapter)
        session.trust_env = False  # never send redirected or loopback traffic through an env proxy
    return session


def count_requests(session: requests.Session) -> int:
    """Requests sent through a session from make_session(), failed ones included (0 for any other)."""
    return session.sent if isinstance(session, CountingSession) else 0
