"""Sign in to Plex with a PIN: show a 4-character code, the user enters it at plex.tv/link, we get a token.

The PIN state is plain data (id, code, client id, expiry), so the settings page can start a sign-in in one
command and poll for it in later ones. The same client identifier must be sent when polling.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Optional

import plexapi
from plexapi.myplex import MyPlexPinLogin

from plexcache.errors import PlexUnavailable
from plexcache.http import SessionFactory, make_session
from plexcache.plexread import PLEX_ERRORS, describe_error, parse_xml

LINK_URL = "https://plex.tv/link"
PIN_LIFETIME = 15 * 60  # plex.tv keeps a PIN for about 15 minutes


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
