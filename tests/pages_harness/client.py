"""Requests to the pages' endpoint (include/exec.php) as the browser sends them, answers kept whole."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Optional, Union

from realtime import seconds

ENDPOINT = "/plugins/plexcache-r/include/exec.php"
Fields = Union[dict[str, Any], list[tuple[str, str]]]


@dataclass
class Reply:
    status: int
    body: str
    content_type: str

    @property
    def doc(self) -> dict:
        """The JSON answer; a reply that is not JSON fails the test with what came instead."""
        try:
            doc = json.loads(self.body)
        except ValueError:
            raise AssertionError(f"HTTP {self.status} answer is not JSON: {self.body[:500]!r}") from None
        assert isinstance(doc, dict), doc
        return doc

    @property
    def refused_by_unraid(self) -> bool:
        """Unraid's CSRF check ended the request: 7.4+ say so in JSON with 403, older exit with an empty 200."""
        if self.status == 403:
            return "csrf_token" in self.doc.get("error", "")
        return self.status == 200 and self.body == ""


def form(data: Fields) -> list[tuple[str, str]]:
    """Fields as pairs; a list value becomes repeated `name[]` fields (what jQuery and old pages send)."""
    if isinstance(data, list):
        return data
    pairs = []
    for key, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((f"{key}[]" if isinstance(value, list) else key, str(item)))
    return pairs


def call(server: Any, method: str, data: Fields, headers: Optional[dict[str, str]] = None,
         timeout: float = 30) -> Reply:
    """One request; `timeout` is a base figure (realtime.seconds scales it)."""
    query = urllib.parse.urlencode(form(data))
    if method == "GET":
        req = urllib.request.Request(f"{server.url}{ENDPOINT}?{query}", headers=headers or {})
    else:
        req = urllib.request.Request(server.url + ENDPOINT, data=query.encode(), method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=seconds(timeout)) as resp:
            return Reply(resp.status, resp.read().decode(), resp.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.read().decode(), err.headers.get("Content-Type", ""))


def post(server: Any, token: str, action: str, **fields: Any) -> Reply:
    """A POST as the pages send it: the action, Unraid's csrf_token, lists as one JSON field."""
    data: dict[str, Any] = {"action": action, "csrf_token": token}
    for key, value in fields.items():
        data[key] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return call(server, "POST", data)


def get(server: Any, action: str, **params: Any) -> Reply:
    return call(server, "GET", {"action": action, **params})
