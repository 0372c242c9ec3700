"""`plexcache-r demo`: a real cycle against the simulated Plex and a throw-away Unraid tree.

Nothing here is staged: the simulator serves Plex's real API, plexapi reads it over HTTP, and the engine
copies real (sparse) files between the sandbox's array disks and pool, with the journal and state of a
real installation. The demo only narrates.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import click

from plexcache import config as cfg
from plexcache import engine
from plexcache.errors import UsageError
from plexcache.logsetup import configure as configure_logging
from plexcache.render import render_list, render_report, terminal_progress, unknown_words
from plexcache.sim import SimServer, load
from plexcache.sim.sandbox import build_tree
from plexcache.words import describe_reasons, human_bytes, reason_words

DEMO_BUDGET = "40GB"
REDIRECT_ENV = "PLEXCACHE_PLEX_REDIRECT"
UNRAID_ROOT_ENV = cfg.UNRAID_ROOT_ENV  # Unraid's notify and update_cron: the sandbox's stand-ins


def default_scenario() -> Path:
    return Path(str(resources.files("plexcache.sim") / "scenarios" / "demo.yaml"))


def run_demo(keep: Optional[Path] = None, scenario: Optional[Path] = None, as_json: bool = False) -> int:
    """Run the demo; returns the exit code of the main run."""
    scenario_path = scenario or default_scenario()
    world = load(scenario_path)
    workdir = keep.expanduser().resolve() if keep else Path(tempfile.mkdtemp(prefix="plexcache-demo-"))
    if keep and workdir.exists() and any(workdir.iterdir()):
        raise UsageError(f"--keep {workdir}: the folder is not empty; give a new or empty folder")
    say = _Narrator(quiet=as_json)
    previous = {name: os.environ.get(name) for name in (REDIRECT_ENV, UNRAID_ROOT_ENV)}
    try:
        sandbox = build_tree(workdir / "root", world)
        sandbox.set_mover_tuning()  # a server set up as the Dashboard asks, so `run` in a kept tree may move files
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
            code, summary = _story(settings, server, world, say, show_progress=not as_json)
        if keep:
            port = _leave_for_exploring(workdir, settings_path)
            summary["kept"] = {"dir": str(workdir), "port": port}
            say.line(f"\nEverything is kept in {workdir}; to explore it (also in {workdir / 'README.txt'}):")
            say.line(explore_commands(workdir, port))
    finally:
        _restore_env(previous)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if as_json:
        click.echo(json.dumps({"schema": 1, "ok": code == 0, **summary}, indent=1, default=str))
    return code


def _story(settings: cfg.Settings, server: SimServer, world: Any, say: _Narrator,
           show_progress: bool) -> tuple[int, dict[str, Any]]:
    say.title(f"A simulated Plex server \"{world.server.name}\" with {len(world.users)} users, "
              f"and an Unraid tree with array disks and a cache pool.")
    say.step("1. Asking Plex what everyone will watch next")
    plan = engine.plan_document(settings)
    say.line(_who_watches_what(plan))
    say.line(f"   ({plan.get('plex_requests', server.count())} requests to Plex for the whole household)")

    bar = terminal_progress() if show_progress and sys.stderr.isatty() else None
    say.step("2. Running a cycle: copy those files to the pool, protect them from the mover")
    first = engine.run_cycle(settings, on_progress=bar)
    say.line(render_report(first))
    say.step("3. What is on the pool now, and why")
    say.line(render_list(engine.list_files(settings, sort="path")))

    say.step("4. A second run straight away changes nothing")
    second = engine.run_cycle(settings)
    say.line(render_report(second))
    summary = {"first_run": first.to_json(), "second_run": second.to_json()}

    finished = _finish_an_episode(server, plan)
    if finished:
        say.step(f"5. {finished} has just been watched; the next run follows")
        third = engine.run_cycle(settings, on_progress=bar)
        say.line(what_happened(third))
        summary["third_run"] = third.to_json()
        if _kept_for_retention(third):
            later = settings.cache.retention_hours + 1
            server.advance(f"{later:g}h")
            say.step(f"6. {later:g} hours later (a file stays {settings.cache.retention_hours:g} h after it was "
                     "cached, in case someone comes back to it)")
            fourth = engine.run_cycle(settings, now=time.time() + later * 3600, on_progress=bar)
            say.line(what_happened(fourth))
            summary["fourth_run"] = fourth.to_json()

    status = engine.status(settings)
    say.step("Done")
    say.line(f"   The pool holds {status['counts']['files']} managed file(s), "
             f"{human_bytes(status['counts']['bytes'])}; the mover ignore list is {settings.paths.exclusion_list}")
    summary["status"] = status
    return first.exit_code, summary


def what_happened(report: engine.RunReport) -> str:
    """The run in sentences made from what it did: each file cached or moved back with why, and each file
    nobody wants any more that stays for now, with why."""
    document = report.to_json()
    failed = {line.split(": ", 1)[0] for line in document.get("failures", [])}
    lines = []
    for action in document.get("actions", []):
        title = action.get("title") or os.path.basename(action["path"])
        if action["path"] in failed:
            continue
        if action["action"] == "cache":
            lines.append(f"   + cached {title}: {describe_reasons(action.get('reasons', []))}")
        elif action["action"] == "move_back":
            lines.append(f"   - moved back {title}: {action.get('why', '')}")
        elif action["action"] == "keep" and not action.get("reasons") and action.get("why"):
            lines.append(f"   = {title} stays for now: {action['why']}")
    lines.extend(f"   x {failure}" for failure in document.get("failures", []))
    return "\n".join(lines) or "   Nothing changed."


def _kept_for_retention(report: engine.RunReport) -> bool:
    return any(a["action"] == "keep" and not a.get("reasons") for a in report.to_json().get("actions", []))


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


def _finish_an_episode(server: SimServer, plan: dict[str, Any]) -> Optional[str]:
    """Mark the first cached On Deck episode as watched by its user, as if they had just finished it: its next
    episodes move up and it is wanted no more."""
    for action in plan.get("actions", []):
        if action.get("action") != "cache" or action.get("kind") != "episode" or not action.get("rating_key"):
            continue
        for reason in action.get("reasons", []):
            if reason["source"] == "on_deck":
                server.set_watched(reason["user"], int(action["rating_key"]))
                return f"{action.get('title')} ({reason['user']})"
    return None


def explore_commands(workdir: Path, port: int) -> str:
    """The commands that explore a kept demo, as README.txt and the demo's last words give them."""
    return (f"  plexcache-r sim serve --world {workdir / 'world.yaml'} --port {port} &\n"
            f"  export {REDIRECT_ENV}=http://127.0.0.1:{port}   # plex.tv calls go to the simulator too\n"
            f"  export {UNRAID_ROOT_ENV}={workdir / 'root'}   # Unraid's commands: the tree's stand-ins\n"
            f"  export {cfg.CONFIG_ENV}={workdir / 'settings.yaml'}\n"
            "  plexcache-r status; plexcache-r list; plexcache-r plan")


def _leave_for_exploring(workdir: Path, settings_path: Path) -> int:
    """Point the kept settings at a port free now, for `sim serve` to use; returns it."""
    port = _free_port()
    settings = cfg.load(settings_path)
    settings.plex.url = f"http://127.0.0.1:{port}"
    cfg.save(settings, settings_path)
    (workdir / "README.txt").write_text(
        "This is a kept plexcache-r demo. Start its simulated Plex, then use plexcache-r on it:\n\n"
        f"{explore_commands(workdir, port)}\n\n"
        f"The Unraid tree is {workdir / 'root'} (array disks under mnt/disk*, the pools under mnt/).\n"
        f"If port {port} is taken by then, start the simulator with another --port and change plex.url in\n"
        f"{settings_path} and {REDIRECT_ENV} to match.\n")
    return port


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
