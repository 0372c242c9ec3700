"""A page-test sandbox on the real `plexcache-r` and the Plex simulator: the demo scenario's Unraid tree
(file sizes scaled from G to M so copies take a second), Mover Tuning set up, and the page served inside
Unraid's own template (the newest stable webGui release, every request through its local_prepend.php)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

from pages_harness import webgui
from pages_harness.harness import REAL_CLI, Sandbox, Server, make_sandbox


@contextlib.contextmanager
def real_server(root: Path, adjust: Optional[Callable[[dict[str, Any]], None]] = None,
                world_text: Optional[Callable[[str], str]] = None) -> Iterator[tuple[Sandbox, Server]]:
    """adjust: changes to the settings before they are saved; world_text: changes to the scenario."""
    from plexcache import config as cfg
    from plexcache.demo import default_scenario
    from plexcache.sim import SimServer, load
    from plexcache.sim.sandbox import build_tree

    world_file = root / "world.yaml"
    text = re.sub(r"(\d+(?:\.\d+)?)\s*G\b", r"\1M", default_scenario().read_text())
    world_file.write_text(world_text(text) if world_text else text)
    world = load(world_file)
    tree = build_tree(root / "root", world)
    tree.set_mover_tuning()   # set up: runs are refused until the mover is kept off the cached files
    with SimServer(world) as plex:
        box = make_sandbox(root, webgui.NEWEST_STABLE, cli=REAL_CLI, keep_settings=True)
        settings = tree.settings_dict(plex.url, plex.owner_token)
        # the sandbox pool is a folder on this machine's disk: a tiny floor, lest a busy disk decide the test
        settings["cache"] = {**settings.get("cache", {}), "min_free": "1MB"}
        if adjust:
            adjust(settings)
        cfg.save(cfg.from_mapping(settings), box.config)
        box.extra_env["PLEXCACHE_PLEX_REDIRECT"] = plex.url   # plex.tv calls (PIN sign-in) go to the simulator
        box.plex = plex  # type: ignore[attr-defined]
        box.tree = tree  # type: ignore[attr-defined]
        with Server(box) as server:
            yield box, server
        assert box.php_errors() == []


def cached_files(box: Sandbox) -> list[dict[str, Any]]:
    """The files the real CLI lists as cached, after one run if none is yet."""
    files = box.cli_json("list")["files"]
    if not files:
        box.cli_json("run")
        files = box.cli_json("list")["files"]
    assert files, "a run cached nothing"
    return list(files)


def a_cached_file(box: Sandbox) -> tuple[Path, Path, Path]:
    """A cached file with a backup on its array disk: its path below the user shares, that backup, and another
    array disk."""
    paths = box.settings()["paths"]
    entry = next(f for f in cached_files(box) if f["disk"])
    rel = Path(entry["path"]).relative_to(paths["user_root"])
    disks = Path(paths["disks_glob"]).parent
    backup = disks / entry["disk"] / f"{rel}.plexcached"
    other = next(d for d in sorted(disks.glob(Path(paths["disks_glob"]).name)) if d.name != entry["disk"])
    return rel, backup, other
