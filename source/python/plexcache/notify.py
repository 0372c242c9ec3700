"""Notifications: Unraid's notify script, Discord and Slack webhooks, each with its own levels.

Levels: summary (one per run), activity (what moved), warnings, errors. A webhook address is a secret: it
is never logged or shown; failures name the webhook by its position and kind only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

from plexcache.config import Settings, unraid_command
from plexcache.http import make_session
from plexcache.words import human_bytes

log = logging.getLogger(__name__)

EVENT = "PlexCache-R"
LINK = "/Settings/PlexCacheR"
COLOURS = {"summary": 0x2E7D32, "activity": 0x1565C0, "warnings": 0xF9A825, "errors": 0xC62828}
IMPORTANCE = {"summary": "normal", "activity": "normal", "warnings": "warning", "errors": "alert"}
NOTIFY_SCRIPT = "/usr/local/emhttp/webGui/scripts/notify"  # Unraid's own; never a setting


@dataclass
class Message:
    """One notification: a level, a one-line subject, a description and labelled figures."""

    level: str  # summary | activity | warnings | errors
    subject: str
    description: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # e.g. the files that failed (shortened)


def human_seconds(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    return f"{minutes} min {sec} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def webhook_kind(url: str) -> str:
    if "discord.com/api/webhooks" in url or "discordapp.com/api/webhooks" in url:
        return "discord"
    if "hooks.slack.com" in url:
        return "slack"
    return "generic"


def discord_payload(msg: Message) -> dict[str, Any]:
    embed: dict[str, Any] = {"title": msg.subject[:256], "color": COLOURS.get(msg.level, 0),
                             "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    description = "\n".join([msg.description, *msg.lines]).strip()
    if description:
        embed["description"] = description[:4000]
    if msg.fields:
        embed["fields"] = [{"name": k[:256], "value": (v or "-")[:1024], "inline": True}
                           for k, v in msg.fields[:25]]
    return {"username": "plexcache-r", "embeds": [embed]}


def slack_payload(msg: Message) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": msg.subject[:150]}}]
    text = "\n".join([msg.description, *msg.lines]).strip()
    if text:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
    if msg.fields:
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v or '-'}"}
                                                     for k, v in msg.fields[:10]]})
    return {"text": msg.subject, "blocks": blocks}


def generic_payload(msg: Message) -> dict[str, Any]:
    return {"text": msg.subject, "level": msg.level, "description": msg.description,
            "fields": dict(msg.fields), "lines": msg.lines}


PAYLOADS: dict[str, Callable[[Message], dict[str, Any]]] = {
    "discord": discord_payload, "slack": slack_payload, "generic": generic_payload}


def _default_session() -> Any:
    return make_session()  # the shared retry and timeout policy


class Notifier:
    """Sends messages to the destinations whose levels include the message's level."""

    def __init__(self, settings: Settings, *, session_factory: Optional[Callable[[], Any]] = None,
                 runner: Callable[..., Any] = subprocess.run, timeout: float = 10.0) -> None:
        self.settings = settings
        self.session_factory = session_factory or _default_session
        self.runner = runner
        self.timeout = timeout
        self.errors: list[str] = []

    def send(self, msg: Message) -> int:
        """Deliver one message; returns how many destinations took it. Never raises."""
        sent = 0
        if msg.level in self.settings.notify.unraid_levels:
            sent += self._unraid(msg)
        hooks = [(i, h) for i, h in enumerate(self.settings.notify.webhooks) if msg.level in h.levels]
        if hooks:
            session = self.session_factory()
            for index, hook in hooks:
                sent += self._webhook(session, index, hook.url, msg)
        return sent

    def send_all(self, messages: list[Message]) -> int:
        return sum(self.send(m) for m in messages)

    def _unraid(self, msg: Message) -> int:
        script = unraid_command(NOTIFY_SCRIPT)
        if not (os.path.isfile(script) and os.access(script, os.X_OK)):
            log.debug("Unraid notify script %s not found; skipping", script)
            return 0
        # The event name carries the level: two notifications with one event name in the same second collide.
        argv = [script, "-e", f"{EVENT} {msg.level}", "-s", msg.subject, "-d", unraid_description(msg),
                "-i", IMPORTANCE.get(msg.level, "normal"), "-l", LINK]
        body = unraid_message(msg)
        if body:
            argv += ["-m", body]
        try:
            result = self.runner(argv, capture_output=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            self._fail(f"Unraid notify failed: {exc}")
            return 0
        if getattr(result, "returncode", 0) != 0:
            self._fail(f"Unraid notify exited with {result.returncode}")
            return 0
        return 1

    def _webhook(self, session: Any, index: int, url: str, msg: Message) -> int:
        kind = webhook_kind(url)
        try:
            with _quiet_urllib3():
                response = session.post(url, json=PAYLOADS[kind](msg), timeout=self.timeout)
        except Exception as exc:  # any transport error; the URL must not leak through str(exc)
            self._fail(f"webhook {index + 1} ({kind}) failed: {type(exc).__name__}")
            return 0
        status = getattr(response, "status_code", 0)
        if status >= 300:
            self._fail(f"webhook {index + 1} ({kind}) answered HTTP {status}")
            return 0
        return 1

    def _fail(self, text: str) -> None:
        self.errors.append(text)
        log.warning("%s", text)


def unraid_description(msg: Message) -> str:
    """notify -d: the one line Unraid's bell and list show. The description, else the first line of the
    body (a warnings message has only lines), saying how many more the full message holds."""
    head = msg.description or (msg.lines[0] if msg.lines else "") or msg.subject
    more = len(msg.lines) - (0 if msg.description else 1)
    return (head + (f" (and {more} more)" if more > 0 else ""))[:1000]


def unraid_message(msg: Message) -> str:
    """notify -m: everything, the figures and every line. Unraid's notify splits it at the two characters
    backslash-n (its line break in the archive and the e-mail), never at a real newline."""
    lines = [msg.description, *(f"{k}: {v}" for k, v in msg.fields), *msg.lines]
    return "\\n".join(" ".join(line.split()) for line in lines if line)[:8000]


@contextlib.contextmanager
def _quiet_urllib3() -> Iterator[None]:
    """urllib3 logs every request line at DEBUG, which would put the webhook's secret path in the log."""
    logger = logging.getLogger("urllib3.connectionpool")
    before = logger.level
    logger.setLevel(max(before, logging.INFO))
    try:
        yield
    finally:
        logger.setLevel(before)


# ---------------------------------------------------------------- run messages


def run_messages(summary: dict[str, Any], failures: list[str], activity: list[str]) -> list[Message]:
    """The messages one run produces: a summary, activity lines, warnings and errors (each only when due)."""
    took = max(0.0, (summary.get("finished_at") or 0) - (summary.get("started_at") or 0))
    fields = [("Cached", f"{summary.get('cached', 0)} ({human_bytes(summary.get('bytes_cached', 0))})"),
              ("Moved back", f"{summary.get('moved_back', 0)} ({human_bytes(summary.get('bytes_moved_back', 0))})"),
              ("Failed", str(summary.get("failed", 0))), ("Time", human_seconds(took))]
    dry = " (dry run)" if summary.get("dry_run") else ""
    messages = [Message("summary", f"plexcache-r run finished{dry}", summary.get("message", ""), fields)]
    if activity:
        messages.append(Message("activity", f"plexcache-r moved {len(activity)} file(s){dry}",
                                lines=_shorten(activity)))
    warnings = [w if isinstance(w, str) else w.get("message", "") for w in summary.get("warnings", [])]
    warnings += [f"demand of {u['scope']} unknown: {u['error']}" for u in summary.get("unknown", [])]
    if warnings:
        messages.append(Message("warnings", "plexcache-r: warnings", lines=_shorten(warnings)))
    if failures or summary.get("exit_code") in (1, 3):
        messages.append(Message("errors", f"plexcache-r: {len(failures)} file(s) failed",
                                summary.get("message", ""), fields, _shorten(failures)))
    return messages


def _shorten(lines: list[str], limit: int = 15) -> list[str]:
    if len(lines) <= limit:
        return list(lines)
    return [*lines[:limit], f"... and {len(lines) - limit} more"]
