"""Sign in to Plex with a PIN: show a 4-character code, the user enters it at plex.tv/link, we get a token.

The PIN state is plain data (id, code, client id, expiry), so the settings page can start a sign-in in one
command and poll for it in later ones: the pending PIN waits in `pin.json` under the volatile folder (mode
0600) and the token, once given, goes straight into the settings file, never to the screen or the log.
The same client identifier must be sent when polling.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import plexapi
from plexapi.myplex import MyPlexPinLogin

from plexcache import config as cfg
from plexcache.errors import PlexUnavailable, UsageError
from plexcache.fsutil import atomic_write_text, remove_own_file
from plexcache.http import SessionFactory, make_session
from plexcache.plexread import PLEX_ERRORS, describe_error, parse_xml

LINK_URL = "https://plex.tv/link"
PIN_LIFETIME = 15 * 60  # plex.tv keeps a PIN for about 15 minutes
PENDING_FILE = "pin.json"
POLL_SECONDS = 2.0  # how often an interactive sign-in asks whether the code was entered


@dataclass(frozen=True)
class PinLogin:
    id: str
    code: str  # what the user types at plex.tv/link
    client_id: str
    expires_at: float
    link: str = LINK_URL

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PinLogin:
        return cls(id=str(data["id"]), code=str(data["code"]), client_id=str(data["client_id"]),
                   expires_at=float(data["expires_at"]), link=str(data.get("link", LINK_URL)))


def _headers(client_id: str) -> dict[str, str]:
    headers = dict(plexapi.BASE_HEADERS)
    headers["X-Plex-Client-Identifier"] = client_id
    headers["X-Plex-Product"] = "plexcache-r"
    headers["Accept"] = "application/xml"
    return headers


def start_pin_login(session_factory: Optional[SessionFactory] = None, *, timeout: float = 30.0) -> PinLogin:
    """Ask plex.tv for a new PIN. Raises PlexUnavailable when plex.tv cannot be reached."""
    session = (session_factory or make_session)(timeout)
    client_id = plexapi.BASE_HEADERS.get("X-Plex-Client-Identifier") or "plexcache-r"
    try:
        response = session.post(MyPlexPinLogin.PINS, headers=_headers(client_id), timeout=timeout)
        if response.status_code not in (200, 201):
            raise PlexUnavailable(f"plex.tv refused a sign-in PIN (HTTP {response.status_code}); try again later")
        data = parse_xml(response.text, "a sign-in PIN")
    except PLEX_ERRORS as exc:
        raise PlexUnavailable(f"cannot reach plex.tv for a sign-in PIN: {describe_error(exc)}") from None
    pin_id, code = data.get("id"), data.get("code")
    if not pin_id or not code:
        raise PlexUnavailable("plex.tv answered without a PIN; try again later")
    try:
        lifetime = float(data.get("expiresIn") or PIN_LIFETIME)
    except ValueError:  # not a number: plex.tv's usual lifetime
        lifetime = PIN_LIFETIME
    return PinLogin(id=pin_id, code=code, client_id=client_id, expires_at=time.time() + lifetime)


def poll_pin(pin: PinLogin, session_factory: Optional[SessionFactory] = None, *,
             timeout: float = 30.0) -> Optional[str]:
    """The token once the user has entered the code; None while waiting. PlexUnavailable if the PIN
    expired or plex.tv cannot be read. The token is returned, never printed or logged."""
    if time.time() > pin.expires_at:
        raise PlexUnavailable("the sign-in PIN expired; start `plexcache-r plex login` again")
    session = (session_factory or make_session)(timeout)
    try:
        response = session.get(f"{MyPlexPinLogin.PINS}/{pin.id}", headers=_headers(pin.client_id), timeout=timeout)
        if response.status_code == 404:
            raise PlexUnavailable("plex.tv no longer knows this sign-in PIN; start `plexcache-r plex login` again")
        if response.status_code != 200:
            raise PlexUnavailable(f"plex.tv refused the PIN check (HTTP {response.status_code}); try again")
        data = parse_xml(response.text, "a sign-in PIN")
    except PLEX_ERRORS as exc:
        raise PlexUnavailable(f"cannot reach plex.tv to check the sign-in PIN: {describe_error(exc)}") from None
    return data.get("authToken") or None


# ------------------------------------------------------------------ `plexcache-r plex login`


def pending_path(settings: cfg.Settings) -> Path:
    return Path(settings.paths.volatile_dir) / PENDING_FILE


def start_login(settings: cfg.Settings) -> PinLogin:
    """A new PIN, kept for later `poll_login` calls (the settings page polls from separate commands)."""
    pin = start_pin_login()
    atomic_write_text(pending_path(settings), json.dumps(pin.to_json()), mode=0o600)
    return pin


def poll_login(settings: cfg.Settings, config_file: Path) -> bool:
    """Has the code of the waiting PIN been entered? If so its token is stored in the settings file."""
    pending = pending_path(settings)
    if not pending.exists():
        raise UsageError("no sign-in is waiting; start one with `plexcache-r plex login --start`")
    token = poll_pin(PinLogin.from_json(json.loads(pending.read_text())))
    if not token:
        return False
    store_token(config_file, token)
    remove_own_file(pending)
    return True


def wait_for_login(pin: PinLogin, config_file: Path, timeout: float,
                   pause: Callable[[float], None] = time.sleep) -> None:
    """Poll until the code is entered (then store the token), or raise UsageError after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        token = poll_pin(pin)
        if token:
            store_token(config_file, token)
            return
        pause(POLL_SECONDS)
    raise UsageError(f"the code was not entered within {timeout:.0f} s; run `plexcache-r plex login` again")


def store_token(config_file: Path, token: str) -> None:
    """Write the token into the settings file (validated and saved atomically like `config set`)."""
    document = cfg.merge(cfg.to_mapping(cfg.load(config_file)), {"plex": {"token": token}})
    cfg.save(cfg.from_mapping(document), config_file)
