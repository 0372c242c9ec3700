"""The `plexcache-r` command line: parse, call, print. The work lives in the modules it calls."""

from __future__ import annotations

import errno
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import click

from plexcache import __version__
from plexcache import config as cfg
from plexcache.errors import PlexCacheError, SettingsError, UsageError
from plexcache.words import human_bytes


@dataclass
class Context:
    config_file: Optional[str]
    as_json: bool
    verbose: int
    quiet: bool
    _settings: Optional[cfg.Settings] = field(default=None, repr=False)
    settings_problems: list[tuple[str, str]] = field(default_factory=list, repr=False)

    @property
    def path(self) -> Path:
        return cfg.config_path(self.config_file)

    @property
    def settings(self) -> cfg.Settings:
        """The settings, validated. A file named by --config or $PLEXCACHE_CONFIG must exist: a typo would
        otherwise run on defaults and read as "nothing is managed"; only the built-in default may be absent
        (a first run), and then stderr says the defaults are in use."""
        if self._settings is None:
            self._settings = cfg.load(self.existing_path())
            # imported on use: startup stays light
            from plexcache.logsetup import configure

            configure(self._settings, verbose=self.verbose, quiet=self.quiet)
        return self._settings

    def readable(self) -> cfg.Settings:
        """The settings for commands that must work whatever the file holds (status, list, move back):
        a bad value gives way to its default, and `settings_problems` says which."""
        if self._settings is None:
            readable = cfg.load_readable(self.existing_path())
            self._settings, self.settings_problems = readable.settings, readable.problems
            # imported on use: startup stays light
            from plexcache.logsetup import configure

            configure(self._settings, verbose=self.verbose, quiet=self.quiet)
        return self._settings

    def existing_path(self) -> Path:
        path = self.path
        if path.exists():
            return path
        named = self.config_file or os.environ.get(cfg.CONFIG_ENV)
        if named:
            how = "--config" if self.config_file else f"${cfg.CONFIG_ENV}"
            raise UsageError(f"settings file {path} does not exist (named by {how}); check the path, or leave "
                             f"it out to use {cfg.DEFAULT_CONFIG_PATH}")
        if not (self.as_json or self.quiet):
            click.echo(f"plexcache-r: no settings at {path} yet; using the defaults", err=True)
        return path

    def emit(self, document: dict[str, Any], text: str | Callable[[], str]) -> None:
        """Print the JSON document with --json, else the human text (unless --quiet)."""
        if self.as_json:
            click.echo(json.dumps({"schema": 1, "ok": True, **document}, indent=1, default=str))
        elif not self.quiet:
            click.echo(text() if callable(text) else text)


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_file", metavar="PATH",
              help="Settings file [default: $PLEXCACHE_CONFIG or /boot/config/plugins/plexcache-r/settings.yaml].")
@click.option("--json", "as_json", is_flag=True, help="Machine output: one JSON document on stdout.")
@click.option("-v", "--verbose", count=True, help="More detail (twice for debug; tracebacks on errors).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(__version__, prog_name="plexcache-r")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, as_json: bool, verbose: int, quiet: bool) -> None:
    """Keep the media your Plex users are about to watch on the Unraid cache pool."""
    ctx.obj = Context(config_file, as_json, verbose, quiet)


# --- the cycle ----------------------------------------------------------------------------------


@cli.command()
@click.option("--dry-run", is_flag=True, help="Plan and report, but move nothing.")
@click.option("--before-mover", is_flag=True,
              help="Called by CA Mover Tuning just before it moves: a running mover is expected, not refused.")
@pass_ctx
def run(ctx: Context, dry_run: bool, before_mover: bool) -> None:
    """One full cycle: recover, discover, plan, move, write state and the mover ignore list, notify."""
    # imported on use: startup stays light
    from plexcache import engine
    from plexcache.render import render_report, terminal_progress

    settings = ctx.settings
    if not (dry_run or settings.dry_run):
        refuse_until_set_up(settings)
    show_bar = not ctx.as_json and not ctx.quiet and sys.stderr.isatty()
    report = engine.run_cycle(settings, dry_run=dry_run or settings.dry_run, before_mover=before_mover,
                              on_progress=terminal_progress() if show_bar else None)
    ctx.emit(report.to_json(), lambda: render_report(report))
    if report.exit_code:
        sys.exit(report.exit_code)


def refuse_until_set_up(settings: cfg.Settings) -> None:
    """A run moves files only once it is safe: Plex signed in, a mapping to a share, the mover kept away."""
    # imported on use: startup stays light
    from plexcache import readiness

    document = readiness.setup_document(settings)
    if not document["ready"]:
        raise UsageError(readiness.refusal(document))


@cli.command()
@click.option("--check-plex", is_flag=True, help="Also connect to Plex: test the token, suggest mappings.")
@pass_ctx
def setup(ctx: Context, check_plex: bool) -> None:
    """The set-up checklist: each step from install to the first run, done or what to do."""
    # loaded here, not at startup: each command loads only what it needs (plexapi only when Plex is asked)
    from plexcache import readiness
    from plexcache.render import render_setup

    ask_plex = None
    if check_plex:
        # imported on use: startup stays light
        from plexcache import plex

        def ask_plex(settings: cfg.Settings) -> tuple[Any, Any]:
            return plex.test_connection(settings), plex.list_libraries(settings)
    document = readiness.setup_document(ctx.settings, ask_plex=ask_plex)
    ctx.emit(document, lambda: render_setup(document))


@cli.command()
@pass_ctx
def plan(ctx: Context) -> None:
    """What `run` would do now, each item with its reasons. Changes nothing."""
    # imported on use: startup stays light
    from plexcache import engine
    from plexcache.render import render_plan

    document = engine.plan_document(ctx.settings)
    ctx.emit(document, lambda: render_plan(document))
    if document.get("exit_code"):
        sys.exit(document["exit_code"])


@cli.command()
@pass_ctx
def status(ctx: Context) -> None:
    """Running or idle, progress, the last run, cache usage and counts."""
    # imported on use: startup stays light
    from plexcache import query
    from plexcache.render import render_status

    document = query.status(ctx.readable())
    document["warnings"] = settings_warnings(ctx.settings_problems) + document["warnings"]
    ctx.emit(document, lambda: render_status(document))


def settings_warnings(problems: list[tuple[str, str]]) -> list[dict[str, str]]:
    """A settings file with bad values, as status warnings: which setting, and that its default is used."""
    return [{"code": "settings", "key": key,
             "message": f"The settings file has a bad value for {key} ({text}); the default is used until it "
                        "is corrected on the Settings page."} for key, text in problems]


@cli.command("list")
@click.option("--sort", type=click.Choice(["size", "cached_at", "title", "path"]), default="path",
              show_default=True)
@click.option("--filter", "text", metavar="TEXT", help="Only files whose path, title or user contains TEXT.")
@pass_ctx
def list_cmd(ctx: Context, sort: str, text: str | None) -> None:
    """The files plexcache-r manages."""
    # imported on use: startup stays light
    from plexcache import query
    from plexcache.render import render_list

    document = query.list_files(ctx.readable(), sort=sort, text=text)
    ctx.emit(document, lambda: render_list(document))


@cli.command()
@click.option("--days", type=click.IntRange(1, 90), default=30, show_default=True,
              help="How many days of daily figures (pool space, plays).")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True,
              help="How many runs, newest first.")
@pass_ctx
def history(ctx: Context, days: int, limit: int) -> None:
    """The runs of the last 90 days with their outcome, and a figure a day: pool space and plays."""
    # imported on use: startup stays light (no plexapi, no engine)
    from plexcache import runs
    from plexcache.render import render_history

    document = runs.document(ctx.readable(), days=days, limit=limit)
    ctx.emit(document, lambda: render_history(document))


def paths_from_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--paths-from FILE and --null: any number of paths without a command line long enough to hold them."""
    command = click.option("-0", "--null", "null", is_flag=True,
                           help="Paths in FILE are separated by NUL characters, not lines.")(command)
    return click.option("--paths-from", "paths_from", metavar="FILE",
                        help="Also read paths from FILE, one a line ('-' for stdin).")(command)


def gather_paths(paths: tuple[str, ...], paths_from: Optional[str], null: bool) -> list[str]:
    """The PATH arguments followed by those read from --paths-from (empty lines or entries skipped)."""
    if paths_from is None:
        return list(paths)
    try:
        data = sys.stdin.read() if paths_from == "-" else Path(paths_from).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the paths in {paths_from}: {exc}") from None
    entries = data.split("\0") if null else data.splitlines()
    return [*paths, *(entry for entry in entries if entry)]


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Move every managed file back and leave no trace.")
@paths_from_options
@pass_ctx
def evict(ctx: Context, paths: tuple[str, ...], everything: bool, paths_from: Optional[str], null: bool) -> None:
    """Move the given managed files (or all of them) back to the array now."""
    # imported on use: startup stays light
    from plexcache import engine
    from plexcache.render import render_report

    if everything and (paths or paths_from):
        raise UsageError("give the paths of managed files or --all, not both")
    chosen = gather_paths(paths, paths_from, null)
    if not chosen and not everything:
        raise UsageError("give the paths of managed files, or --all (see `plexcache-r list`)")
    report = engine.evict(ctx.readable(), None if everything else chosen)
    ctx.emit(report.to_json(), lambda: render_report(report))
    if report.exit_code:
        sys.exit(report.exit_code)


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("--off", is_flag=True, help="Unpin: let the usual rules decide again.")
@click.option("--key", metavar="RATING_KEY", help="Pin a movie, show or season by its Plex rating key instead.")
@paths_from_options
@pass_ctx
def pin(ctx: Context, paths: tuple[str, ...], off: bool, paths_from: Optional[str], null: bool,
        key: Optional[str]) -> None:
    """Keep the given files cached regardless of policy (takes effect at the next run); or, with --key, a
    movie, show or season of Plex, cached or not (find its key with `plex search`)."""
    # imported on use: startup stays light
    from plexcache import engine

    if key is not None:
        if paths or paths_from:
            raise UsageError("give either --key or paths to pin, not both")
        pin_title(ctx, key, off)
        return
    chosen = gather_paths(paths, paths_from, null)
    if not chosen:
        raise UsageError("give the paths of the files to pin (or --paths-from FILE)")
    changed = engine.pin(ctx.settings, chosen, on=not off)
    verb = "Unpinned" if off else "Pinned"
    ctx.emit({"changed": changed}, f"{verb} {len(changed)} file(s).")


def pin_title(ctx: Context, key: str, off: bool) -> None:
    # imported on use: it reads Plex
    from plexcache import titles

    result = titles.pin(ctx.settings, key, on=not off)
    title = (result["title"] or {}).get("title", key)
    if off:
        words = f"Unpinned {title}." if result["changed"] else f"{key} was not pinned."
    else:
        words = (f"Pinned {title} ({result['files']} files, {human_bytes(result['size'])}): the next run caches "
                 "it, as far as the pool has room." if result["changed"] else f"{title} is pinned already.")
    ctx.emit({**result, "message": words}, words)


@cli.command()
@pass_ctx
def live(ctx: Context) -> None:
    """Follow Plex activity and cache next episodes as playback starts."""
    # imported on use: startup stays light
    from plexcache import live as live_mode

    settings = ctx.settings
    if settings.live.enabled:   # off: serve says so first, since turning it on is the step to take
        refuse_until_set_up(settings)   # live mode caches files: the same steps as `run` make it safe
    live_mode.serve(settings)


@cli.command()
@pass_ctx
def stop(ctx: Context) -> None:
    """Ask a running run or maintenance job to stop; a copy in flight is undone, nothing is half-moved."""
    # imported on use: startup stays light
    from plexcache.runctl import RunLock, StopFlag

    settings = ctx.settings
    running = RunLock(settings.paths.volatile_dir).held_by() is not None
    if running:
        StopFlag(settings.paths.volatile_dir).request()
    ctx.emit({"running": running},
             "Asked the running job to stop; a copy in flight is undone." if running else "Nothing is running.")


@cli.command()
@click.option("--fix", "fixes", multiple=True, metavar="KIND", help="Apply a fix (repeatable).")
@click.option("--cheap", is_flag=True,
              help="Only the checks that read no array disk (no spin-up), with the last full check's result.")
@click.option("--compare", "compare", metavar="USER_PATH",
              help="Hash every copy of one file (/mnt/user/SHARE/FILE): are they the same bytes? Reads them whole.")
@pass_ctx
def audit(ctx: Context, fixes: tuple[str, ...], cheap: bool, compare: Optional[str]) -> None:
    """Cache health: unprotected, orphaned backups, stale entries, duplicates; and their fixes."""
    # imported on use: startup stays light
    from plexcache import audit as audit_mod
    from plexcache.fsutil import read_json, write_json_if_changed
    from plexcache.render import render_audit

    if cheap and fixes:
        raise UsageError("--cheap only looks; leave it out to apply fixes")
    if compare is not None:
        if fixes or cheap:
            raise UsageError("--compare only reads one file's copies; leave out --fix and --cheap")
        if not compare.startswith(ctx.settings.paths.user_root.rstrip("/") + "/"):
            raise UsageError(f"--compare takes a user-share path ({ctx.settings.paths.user_root}/SHARE/FILE)")
        compared = audit_mod.compare_copies(ctx.settings, compare)
        ctx.emit(compared, compared["message"])
        return
    last_file = Path(ctx.settings.paths.state_dir) / LAST_AUDIT_FILE
    document = audit_mod.audit(ctx.settings, fixes=list(fixes), cheap=cheap)
    if cheap:
        try:
            document["last_full"] = read_json(last_file, 1).get("last_full")
        except UsageError:
            document["last_full"] = None   # unreadable: the next full check writes it again
    else:   # what the Maintenance tab shows until the next full check, without reading the disks again
        write_json_if_changed(last_file, {"schema": 1, "last_full": {
            "at": time.time(), "message": document["message"], "summary": document["summary"],
            "findings": len(document["findings"])}})
    ctx.emit(document, lambda: render_audit(document))


LAST_AUDIT_FILE = "last_audit.json"


@cli.command("import")
@click.argument("source", type=click.Path(exists=True, file_okay=False))
@click.option("--dry-run", is_flag=True, help="Show what would be adopted; change nothing.")
@pass_ctx
def import_cmd(ctx: Context, source: str, dry_run: bool) -> None:
    """Adopt an existing PlexCache-R installation's settings and cached files."""
    # imported on use: startup stays light
    from plexcache import importer

    document = importer.import_installation(ctx.settings, ctx.path, Path(source), dry_run=dry_run)
    ctx.emit(document, document.get("message", ""))


@cli.command()
@pass_ctx
def recover(ctx: Context) -> None:
    """Finish or roll back operations a crash interrupted (also done at the start of every run)."""
    # imported on use: startup stays light
    from plexcache import engine

    document = engine.recover_only(ctx.settings)
    ctx.emit(document, document["message"])


# --- settings ---------------------------------------------------------------------------------


@cli.group("config")
def config_group() -> None:
    """Show, change and document the settings."""


@config_group.command("show")
@pass_ctx
def config_show(ctx: Context) -> None:
    """Print the settings, secrets masked."""
    # imported on use: startup stays light
    import yaml

    readable = cfg.load_readable(ctx.existing_path())
    # A valid file shows as the settings it means (every default filled in, rows included); a broken one
    # shows its own values over the defaults, the bad ones too, so the form shows what is there to correct.
    shown = cfg.merge(cfg.to_mapping(cfg.Settings()), readable.raw) if readable.problems \
        else cfg.to_mapping(readable.settings)
    data = cfg.mask_mapping(shown)
    problems = [{"key": key, "message": text} for key, text in readable.problems]
    ctx.emit({"settings": data, "problems": problems}, lambda: yaml.safe_dump(data, sort_keys=False).rstrip() + "".join(
        f"\n# invalid: {p['key']}: {p['message']}" for p in problems))


@config_group.command("set")
@click.option("--merge", is_flag=True, help="Merge a partial document into the current settings.")
@click.option("--check", is_flag=True, help="Validate only; write nothing.")
@pass_ctx
def config_set(ctx: Context, merge: bool, check: bool) -> None:
    """Validate settings (YAML or JSON) from stdin and write them atomically."""
    incoming = cfg.parse_text(sys.stdin.read(), "the settings on stdin")
    if not isinstance(incoming, dict):
        raise SettingsError([("(top level)", "expected a mapping of settings on stdin")])
    # the stored file as it is, bad values and all: what is checked is the result, so a form that
    # corrects a bad value can be saved
    readable = cfg.load_readable(ctx.path)
    current = cfg.merge(cfg.to_mapping(cfg.Settings()), readable.raw)
    document = cfg.merge(current, incoming) if merge else cfg.unmask(incoming, current)
    settings = cfg.from_mapping(document)
    kept = None
    if not check:
        if any(key in ("(file)", "(top level)") for key, _ in readable.problems) and ctx.path.exists():
            kept = cfg.keep_broken(ctx.path)   # unreadable, so not merged: never lose what was in it
        cfg.save(settings, ctx.path)
    verb = "valid" if check else f"saved to {ctx.path}"
    warnings = [{"key": key, "message": text} for key, text in share_warnings(settings)]
    ctx.emit({"written": not check, "path": str(ctx.path), "kept_broken": kept, "warnings": warnings},
             lambda: "\n".join([f"Settings {verb}." + (f" The unreadable file was kept as {kept}." if kept else ""),
                                 *(f"warning: {w['key']}: {w['message']}" for w in warnings)]))


def share_warnings(settings: cfg.Settings) -> list[tuple[str, str]]:
    """Path mappings whose share folder does not exist (a typo, or a share not created yet): worth a word
    next to the field, not a refusal (the share may be on its way)."""
    user_root = settings.paths.user_root.rstrip("/")
    out = []
    for i, mapping in enumerate(settings.plex.path_mappings):
        rel = mapping.share.rstrip("/").removeprefix("/mnt/user").lstrip("/")
        if mapping.share.startswith("/mnt/user/") and not os.path.isdir(os.path.join(user_root, rel)):
            out.append((f"plex.path_mappings[{i}].share",
                        f"{mapping.share} does not exist (yet): no file under it can be cached until it does"))
    return out


def _settings_with(ctx: Context, source: str) -> cfg.Settings:
    """The saved settings with a partial document merged over them (a form not saved yet), validated."""
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    incoming = cfg.parse_text(text, "the settings to test")
    if not isinstance(incoming, dict):
        raise SettingsError([("(top level)", "expected a mapping of settings")])
    settings = cfg.from_mapping(cfg.merge(cfg.to_mapping(ctx.settings), incoming))
    # imported on use: startup stays light
    from plexcache.logsetup import configure

    configure(settings, verbose=ctx.verbose, quiet=ctx.quiet)   # a typed secret is scrubbed from the log too
    return settings


@config_group.command("defaults")
@pass_ctx
def config_defaults(ctx: Context) -> None:
    """Print the default settings file."""
    ctx.emit({"settings": cfg.to_mapping(cfg.Settings())}, cfg.dump_yaml(cfg.Settings()).rstrip())


@config_group.command("reference")
@pass_ctx
def config_reference(ctx: Context) -> None:
    """Print the settings reference (Markdown), generated from the schema."""
    ctx.emit({"rows": cfg.reference_rows()}, cfg.reference_markdown().rstrip())


@config_group.command("schema")
@pass_ctx
def config_schema(ctx: Context) -> None:
    """Print the schema the Settings page is built from: every setting's type, default, bounds, options,
    label and help, and the words the pages show for exit codes, reasons and health-check findings."""
    # imported on use: startup stays light
    from plexcache import vocabulary

    document = {"keys": cfg.schema_keys(), "vocabulary": vocabulary.document()}
    ctx.emit(document, lambda: json.dumps(document, indent=1))


# --- Plex helpers for the settings page -----------------------------------------------------------


@cli.group("plex")
def plex_group() -> None:
    """Connection check, pickers for the settings page, PIN sign-in."""


@plex_group.command("test")
@click.option("--settings-from", "settings_from", metavar="FILE",
              help="Test these settings (a partial document, '-' for stdin) merged over the saved ones.")
@pass_ctx
def plex_test(ctx: Context, settings_from: Optional[str]) -> None:
    """Check the connection and the token (the saved ones, or those about to be saved)."""
    # imported on use: startup stays light
    from plexcache import plex

    settings = ctx.settings if settings_from is None else _settings_with(ctx, settings_from)
    result = plex.test_connection(settings)
    server = result["server"]
    ctx.emit(result, f"Connected to {server['name']} (Plex {server['version']}) as {result['owner']}; "
                     f"{result['libraries']} libraries.")


@plex_group.command("search")
@click.argument("text")
@click.option("--limit", type=click.IntRange(1, 50), default=10, show_default=True, help="Results per kind.")
@pass_ctx
def plex_search(ctx: Context, text: str, limit: int) -> None:
    """Movies, shows and seasons of the chosen libraries whose title matches TEXT (to pin with `pin --key`)."""
    # imported on use: startup stays light
    from plexcache import titles

    found = titles.search(ctx.settings, text, limit)
    ctx.emit(found, lambda: "\n".join(
        f"{r['rating_key']:>8}  {r['kind']:<6} {r['title']}" + (" (pinned)" if r["pinned"] else "") + "".join(
            f"\n{s['rating_key']:>8}    {s['title']}" for s in r.get("seasons", []))
        for r in found["results"]) or "Nothing found.")


@plex_group.command("libraries")
@pass_ctx
def plex_libraries(ctx: Context) -> None:
    """The server's libraries (id, title, type, locations)."""
    # imported on use: startup stays light
    from plexcache import plex

    libraries = plex.list_libraries(ctx.settings)
    ctx.emit({"libraries": libraries}, lambda: "\n".join(
        f"{lib['id']:>4}  {lib['type']:<6} {lib['title']}  ({', '.join(lib['locations'])})" for lib in libraries))


@plex_group.command("users")
@pass_ctx
def plex_users(ctx: Context) -> None:
    """The owner, home users and friends."""
    # imported on use: startup stays light
    from plexcache import plex

    users = plex.list_users(ctx.settings)
    ctx.emit({"users": users}, lambda: "\n".join(f"{u['kind']:<8} {u['name']}" for u in users))


@plex_group.command("login")
@click.option("--start", "mode", flag_value="start", help="Only ask for a PIN and print it (for the settings page).")
@click.option("--poll", "mode", flag_value="poll", help="Check once whether the PIN from --start was entered.")
@click.option("--timeout", default=300, show_default=True, help="Seconds to wait for the code (interactive).")
@pass_ctx
def plex_login(ctx: Context, mode: str | None, timeout: int) -> None:
    """Sign in with a PIN at plex.tv/link and store the token (never shown)."""
    # imported on use: startup stays light
    from plexcache import plexauth

    settings = ctx.settings
    if mode == "poll":
        signed_in = plexauth.poll_login(settings, ctx.path)
        ctx.emit({"signed_in": signed_in}, "Signed in." if signed_in else "Still waiting for the code.")
        return
    if mode == "start":
        pin = plexauth.start_login(settings)
        ctx.emit({"code": pin.code, "link": pin.link, "expires_at": pin.expires_at},
                 f"Go to {pin.link} and enter the code {pin.code}")
        return
    pin = plexauth.start_pin_login()
    click.echo(f"Go to {pin.link} and enter the code {pin.code}", err=ctx.as_json)
    plexauth.wait_for_login(pin, ctx.path, timeout)
    ctx.emit({"signed_in": True}, "Signed in; the token is stored in the settings.")


# --- plugin plumbing ------------------------------------------------------------------------------


@cli.group("schedule")
def schedule_group() -> None:
    """The plugin's cron schedule."""


@schedule_group.command("apply")
@pass_ctx
def schedule_apply(ctx: Context) -> None:
    """Write the plugin's .cron from the settings and reload Unraid's cron."""
    # imported on use: startup stays light
    from plexcache import schedule

    result = schedule.apply_schedule(ctx.settings)
    document = result.to_json()
    ctx.emit(document, document.get("message", "Schedule applied."))


@cli.group("query", hidden=True)
def query_group() -> None:
    """One-word answers for the plugin's shell scripts, so bash never parses YAML."""


@query_group.command("live-enabled")
@pass_ctx
def query_live_enabled(ctx: Context) -> None:
    """Exit 0 when live mode is on, 1 when it is off."""
    sys.exit(0 if ctx.settings.live.enabled else 1)


@query_group.command("live-pid")
@pass_ctx
def query_live_pid(ctx: Context) -> None:
    """The pid of the running live watcher (found by its lock, however it was started); exit 1 when none runs."""
    # imported on use: startup stays light
    from plexcache.runctl import live_pid

    pid = live_pid(ctx.settings)
    if not pid:
        sys.exit(1)
    click.echo(pid)


@query_group.command("managed-count")
@pass_ctx
def query_managed_count(ctx: Context) -> None:
    """How many files are on a pool because of plexcache-r (0 before the first run)."""
    # imported on use: startup stays light
    from plexcache.state import StateStore

    click.echo(len(StateStore(ctx.settings).load_registry()))


@query_group.command("mover-tuning")
@pass_ctx
def query_mover_tuning(ctx: Context) -> None:
    """One line per CA Mover Tuning problem; nothing when all is well."""
    # imported on use: startup stays light
    from plexcache import schedule

    for problem in schedule.mover_tuning_status(ctx.settings)["problems"]:
        click.echo(problem)


@cli.command()
@click.option("--keep", metavar="DIR", type=click.Path(file_okay=False),
              help="Leave the simulated world, Unraid tree and settings in DIR to explore.")
@click.option("--scenario", metavar="FILE", type=click.Path(exists=True, dir_okay=False),
              help="Scenario YAML (default: the built-in household).")
@pass_ctx
def demo(ctx: Context, keep: str | None, scenario: str | None) -> None:
    """Run a real cycle against a simulated Plex and a temporary Unraid tree."""
    # imported on use: startup stays light
    from plexcache import demo as demo_mod

    code = demo_mod.run_demo(keep=Path(keep) if keep else None, scenario=Path(scenario) if scenario else None,
                             as_json=ctx.as_json)
    if code:
        sys.exit(code)


@cli.group("sim")
def sim_group() -> None:
    """The embedded Plex simulator."""


@sim_group.command("serve")
@click.option("--world", "world", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Scenario/world YAML.")
@click.option("--port", default=0, show_default=True, help="Port on 127.0.0.1 (0 = any free port).")
def sim_serve(world: str, port: int) -> None:
    """Run the Plex simulator in the foreground until Ctrl-C."""
    # imported on use: startup stays light
    from plexcache.sim import server

    try:
        server.serve(Path(world), port)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise UsageError(f"port {port} is in use (another simulator or program?); stop it or give another "
                         "--port, and point plex.url and PLEXCACHE_PLEX_REDIRECT at the same port") from None


# --- entry point ----------------------------------------------------------------------------------


GLOBAL_FLAGS = frozenset({"--json", "-v", "-vv", "--verbose", "-q", "--quiet"})
NO_MACHINE_OUTPUT = {("live",): "live", ("sim", "serve"): "sim serve"}


def hoist_global_options(args: list[str]) -> list[str]:
    """Move the global options to the front wherever they were typed (`status --json` reads as `--json
    status`); everything after `--` stays as it is (a file may be named like an option)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in GLOBAL_FLAGS or arg.startswith("--config="):
            front.append(arg)
        elif arg == "--config" and i + 1 < len(args):
            front.extend(args[i:i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _refuse_json_without_machine_output(args: list[str]) -> None:
    if "--json" not in args:
        return
    words = tuple(a for a in args if not a.startswith("-"))
    for command, name in NO_MACHINE_OUTPUT.items():
        if words[:len(command)] == command:
            raise UsageError(f"`{name}` has no machine output; leave out --json")


def _fail(exc: BaseException, code: int, as_json: bool, problems: list[tuple[str, str]] | None = None) -> None:
    message = str(exc) or exc.__class__.__name__
    click.echo(f"plexcache-r: {message}", err=True)
    if as_json:
        document: dict[str, Any] = {"schema": 1, "ok": False, "error": message, "exit_code": code}
        if problems:
            document["problems"] = [{"key": k, "message": m} for k, m in problems]
        click.echo(json.dumps(document, indent=1))
    elif problems and len(problems) > 1:
        for key, text in problems[1:]:
            click.echo(f"plexcache-r: invalid setting {key}: {text}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    args = hoist_global_options(sys.argv[1:] if argv is None else list(argv))
    as_json = "--json" in args
    verbose = any(a in ("-v", "-vv", "--verbose") for a in args)
    try:
        _refuse_json_without_machine_output(args)
        cli.main(args=args, prog_name="plexcache-r", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("plexcache-r: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        if isinstance(exc, click.UsageError) and exc.ctx is not None and not as_json:
            click.echo(exc.ctx.get_usage(), err=True)
        _fail(Exception(exc.format_message()), 2, as_json)
    except PlexCacheError as exc:
        if verbose:
            traceback.print_exc()
        _fail(exc, exc.exit_code, as_json, getattr(exc, "problems", None))
    except KeyboardInterrupt:
        click.echo("plexcache-r: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # the last line of defence: one clear line, traceback only with -v
        if verbose:
            traceback.print_exc()
        hint = "" if verbose else " (run with -v for details)"
        _fail(Exception(f"unexpected error: {exc.__class__.__name__}: {exc}{hint}"), 1, as_json)
