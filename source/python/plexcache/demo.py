"""`plexcache-r demo`: a real cycle against the simulated Plex and a throw-away Unraid tree.

Nothing here is staged: the simulator serves Plex's real API, plexapi reads it over HTTP, and the engine
copies real (sparse) files between the sandbox's array disks and pool, with the journal and state of a
real installation. The demo only narrates.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Optional

import click

from plexcache import config as cfg
from plexcache import engine
from plexcache.logsetup import configure as configure_logging
from plexcache.render import human_bytes, reason_words, render_list, render_report, unknown_words
from plexcache.sim import SimServer, load
from plexcache.sim.sandbox import build_tree

DEMO_BUDGET = "40GB"
KEEP_PORT = 32499  # the port `sim serve` is told to use for a kept demo (32400 is Plex's own)
REDIRECT_ENV = "PLEXCACHE_PLEX_REDIRECT"
UNRAID_ROOT_ENV = cfg.UNRAID_ROOT_ENV  # Unraid's notify and update_cron: the sandbox's stand-ins


def default_scenario() -> Path:
    return Path(str(resources.files("plexcache.sim") / "scenarios" / "demo.yaml"))


def run_demo(keep: Optional[Path] = None, scenario: Optional[Path] = None, as_json: bool = False) -> int:
    """Run the demo; returns the exit code of the main run."""
    scenario_path = scenario or default_scenario()
    world = load(scenario_path)
    workdir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="plexcache-demo-"))
    if keep and workdir.exists() and any(workdir.iterdir()):
        from plexcache.errors import UsageError

        raise UsageError(f"--keep {workdir}: the folder is not empty; give a new or empty folder")
    say = _Narrator(quiet=as_json)
    previous = {name: os.environ.get(name) for name in (REDIRECT_ENV, UNRAID_ROOT_ENV)}
    try:
        sandbox = build_tree(workdir / "root", world)
        os.environ[UNRAID_ROOT_ENV] = str(sandbox.root)
        shutil.copyfile(scenario_path, workdir / "world.yaml")
        with SimServer(world) as server:
            os.environ[REDIRECT_ENV] = server.url
            settings_path = workdir / "settings.yaml"
            document = sandbox.settings_dict(server.url, server.owner_token)
            # The sandbox's pool is a folder on this machine's disk: give the demo a fixed budget so what it
            # caches does not depend on how full that disk happens to be.
            document["cache"] = {"size_limit": DEMO_BUDGET, "min_free": "0"}
            cfg.save(cfg.from_mapping(document), settings_path)
            settings = cfg.load(settings_path)
            configure_logging(settings, quiet=True)  # the story is told on stdout; details go to the log
            code, summary = _story(settings, server, world, say)
        if keep:
            _leave_for_exploring(workdir, settings_path)
            say.line(f"\nEverything is kept in {workdir} (see {workdir / 'README.txt'}).")
    finally:
        _restore_env(previous)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if as_json:
        click.echo(json.dumps({"schema": 1, "ok": code == 0, **summary}, indent=1, default=str))
    return code


def _story(settings: cfg.Settings, server: SimServer, world: Any, say: _Narrator) -> tuple[int, dict]:
    say.title(f"A simulated Plex server \"{world.server.name}\" with {len(world.users)} users, "
              f"and an Unraid tree with array disks and a cache pool.")
    say.step("1. Asking Plex what everyone will watch next")
    plan = engine.plan_document(settings)
    say.line(_who_watches_what(plan))
    say.line(f"   ({plan.get('plex_requests', server.count())} requests to Plex for the whole household)")

    say.step("2. Running a cycle: copy those files to the pool, protect them from the mover")
    first = engine.run_cycle(settings)
    say.line(render_report(first))
    say.step("3. What is on the pool now, and why")
    say.line(render_list(engine.list_files(settings, sort="path")))

    say.step("4. A second run straight away changes nothing")
    second = engine.run_cycle(settings)
    say.line(render_report(second))

    finished = _finish_something(server, plan)
    if finished:
        say.step(f"5. {finished} is watched; the next run moves it back and caches what follows")
        third = engine.run_cycle(settings)
        say.line(render_report(third))

    status = engine.status(settings)
    say.step("Done")
    say.line(f"   The pool holds {status['counts']['files']} managed file(s), "
             f"{human_bytes(status['counts']['bytes'])}; the mover ignore list is {settings.paths.exclusion_list}")
    summary = {"first_run": first.to_json(), "second_run": second.to_json(), "status": status}
    return first.exit_code, summary


def _who_watches_what(plan: dict[str, Any]) -> str:
    wants: dict[str, list[str]] = defaultdict(list)
    for action in plan.get("actions", []):
        for reason in action.get("reasons", []):
            wants[reason["user"]].append(f"{action.get('title') or action['path']} ({reason_words(reason)})")
    lines = []
    for user in sorted(wants):
        lines.append(f"   {user}:")
        lines.extend(f"      - {item}" for item in sorted(set(wants[user])))
    for unknown in plan.get("unknown", []):
        lines.append(f"   ! {unknown_words(unknown)}")
    return "\n".join(lines) or "   Nobody is watching anything."


def _finish_something(server: SimServer, plan: dict[str, Any]) -> Optional[str]:
    """Mark the first On Deck movie as watched by its user, as if they had just finished it."""
    for action in plan.get("actions", []):
        for reason in action.get("reasons", []):
            if reason["source"] == "on_deck" and action.get("kind") == "movie" and action.get("rating_key"):
                server.set_watched(reason["user"], int(action["rating_key"]))
                return f"{action.get('title')} ({reason['user']})"
    return None


def _leave_for_exploring(workdir: Path, settings_path: Path) -> None:
    settings = cfg.load(settings_path)
    settings.plex.url = f"http://127.0.0.1:{KEEP_PORT}"
    cfg.save(settings, settings_path)
    (workdir / "README.txt").write_text(
        "This is a kept plexcache-r demo.\n\n"
        f"  plexcache-r sim serve --world {workdir / 'world.yaml'} --port {KEEP_PORT} &\n"
        f"  export {REDIRECT_ENV}=http://127.0.0.1:{KEEP_PORT}   # plex.tv calls go to the simulator too\n"
        f"  export {UNRAID_ROOT_ENV}={workdir / 'root'}   # Unraid's notify and update_cron: stand-ins\n"
        f"  export PLEXCACHE_CONFIG={settings_path}\n"
        "  plexcache-r status; plexcache-r list; plexcache-r plan\n\n"
        f"The Unraid tree is {workdir / 'root'} (array disks under mnt/disk*, the pools under mnt/).\n")


def _restore_env(previous: dict[str, Optional[str]]) -> None:
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class _Narrator:
    def __init__(self, quiet: bool) -> None:
        self.echo: Callable[[str], None] = (lambda _text: None) if quiet else click.echo

    def title(self, text: str) -> None:
        self.echo(click.style(text, bold=True))

    def step(self, text: str) -> None:
        self.echo("\n" + click.style(text, fg="cyan", bold=True))

    def line(self, text: str) -> None:
        self.echo(text)
