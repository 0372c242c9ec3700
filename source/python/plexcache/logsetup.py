"""Logging: a rotating file under paths.log_dir and one line a record on stderr, secrets scrubbed from every
record; tracebacks go to the file, and to stderr only with -v."""

from __future__ import annotations

import logging
import logging.handlers
import re
from pathlib import Path

from plexcache.config import Settings, secret_values
from plexcache.runs import RunTag

LOG_NAME = "plexcache-r.log"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_TOKEN_PATTERNS = [
    re.compile(r"(X-Plex-Token=)[^&\s'\"]+", re.IGNORECASE),
    re.compile(r"(authenticationToken=|authToken=|accessToken=)[\"']?[^&\s'\"]+", re.IGNORECASE),
    re.compile(r"(https://(?:discord(?:app)?\.com/api/webhooks|hooks\.slack\.com/services)/)\S+"),
]


class RedactSecrets(logging.Filter):
    """Replace configured secrets and anything token-shaped with ****, whatever logged it."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info:  # a traceback quotes values too (formatted once, then kept on the record)
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text, self.secrets)
        return True


class ChannelDropsAreNotErrors(logging.Filter):
    """plexapi logs every end of Plex's notification channel as an error ("AlertListener Error: ...").
    A Plex restart or a network blip ends it; live mode polls meanwhile and logs the event itself, at info
    level, so the Logs page does not fill with red lines for something that is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("AlertListener Error")


class OneLine(logging.Formatter):
    """stderr's format without -v: the message alone, never a traceback (the log file keeps it)."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "****")
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(r"\1****", text)
    return text


def secrets_of(settings: Settings) -> list[str]:
    """Every secret the settings hold, as the schema marks them (token, RSS address, webhooks, PINs)."""
    return secret_values(settings)


def configure(settings: Settings, *, verbose: int = 0, quiet: bool = False) -> None:
    """Log to the rotating file (if its folder can be made) and warnings to stderr."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_plexcache", False):  # only the handlers added here carry the mark
            root.removeHandler(handler)
    scrub = RedactSecrets(secrets_of(settings))
    level = logging.DEBUG if verbose > 1 else LEVELS[settings.log_level]
    root.setLevel(min(level, logging.INFO if verbose else level))
    # [run id] inside a run, else [process id]: who wrote the line, so the Logs tab can show one run alone
    fmt = logging.Formatter("%(asctime)s %(levelname)-7s [%(run)s] %(name)s: %(message)s")
    try:
        log_dir = Path(settings.paths.log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(log_dir / LOG_NAME, maxBytes=2_000_000,
                                                            backupCount=4, encoding="utf-8")
        file_handler.addFilter(RunTag())
        _add(root, file_handler, level, fmt, scrub)
    except OSError:
        pass  # a read-only or missing log folder must not stop the command
    console = logging.StreamHandler()
    console_level = logging.ERROR if quiet else (logging.INFO if verbose else logging.WARNING)
    console_format = logging.Formatter if verbose else OneLine
    _add(root, console, console_level, console_format("plexcache-r: %(message)s"), scrub)
    for noisy in ("urllib3", "plexapi", "websocket"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    plexapi_log = logging.getLogger("plexapi")
    if not any(isinstance(f, ChannelDropsAreNotErrors) for f in plexapi_log.filters):
        plexapi_log.addFilter(ChannelDropsAreNotErrors())


def _add(root: logging.Logger, handler: logging.Handler, level: int, fmt: logging.Formatter,
         scrub: logging.Filter) -> None:
    handler.setLevel(level)
    handler.setFormatter(fmt)
    handler.addFilter(scrub)
    handler._plexcache = True  # type: ignore[attr-defined]  # the mark configure() and tests take them off by
    root.addHandler(handler)
