"""`plexcache-r import DIR`: adopt a PlexCache-R installation (its settings JSON, its tracking files and its
.plexcached backups) without moving a byte; anything dubious is reported, not adopted."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plexcache import config as cfg
from plexcache.errors import LockHeld, UsageError
from plexcache.importer import import_installation, settings_patch
from realtime import seconds
from test_audit_support import ARRIVAL, ARRIVAL_SRT, DUNE, EP1, EP2, EP3, HEAT, World, kinds

MARKER = "### Plexcache exclusions below this line"


class OldInstall:
    """A PlexCache-R folder (settings, data/, lists) whose files were cached the way PlexCache-R does it:
    copy to the final pool name keeping times, then rename the array original to NAME.plexcached."""

    def __init__(self, world: World, root: Path) -> None:
        self.world = world
        self.root = root
        (root / "data").mkdir(parents=True)
        self.listed: list[str] = []
        self.stamps: dict[str, object] = {}

    def settings(self, **extra: object) -> dict:
        mnt = self.world.mnt
        doc = {
            "PLEX_URL": "http://192.168.1.100:32400/", "PLEX_TOKEN": "old-token-123",
            "path_mappings": [
                {"name": "Movies", "plex_path": "/data/movies/", "real_path": f"{mnt}/user/movies/",
                 "cache_path": f"{mnt}/cache/movies/", "cacheable": True, "enabled": True},
                {"name": "TV", "plex_path": "/data/tv/", "real_path": f"{mnt}/user0/tv/",
                 "cache_path": f"{mnt}/cache/tv/", "cacheable": True, "enabled": True},
                {"name": "Old", "plex_path": "/data/old/", "real_path": f"{mnt}/user/old/",
                 "cache_path": f"{mnt}/cache/old/", "cacheable": True, "enabled": False},
                {"name": "Remote NAS", "plex_path": "/data/nas/", "real_path": "/mnt/remotes/nas/",
                 "cache_path": None, "cacheable": False, "enabled": True}],
            "cache_dir": f"{mnt}/cache/", "valid_sections": [1, 2], "number_episodes": 7, "days_to_monitor": 60,
            "watchlist_toggle": True, "watchlist_episodes": 2, "users_toggle": True,
            "users": [{"title": "partner", "token": "t1", "is_local": True, "skip_ondeck": False,
                       "skip_watchlist": True},
                      {"title": "stranger", "token": "t2", "is_local": False, "skip_ondeck": True,
                       "skip_watchlist": True}],
            "remote_watchlist_toggle": False, "remote_watchlist_rss_url": "", "watched_move": True,
            "cache_retention_hours": 24, "watchlist_retention_days": 0, "cache_eviction_mode": "fifo",
            "cache_limit": "", "min_free_space": "50GB", "plexcache_quota": "500GB",
            "create_plexcached_backups": True, "hardlinked_files": "skip", "cache_associated_files": "subtitles",
            "exit_if_active_session": False, "max_concurrent_moves_cache": 5, "max_concurrent_moves_array": 2,
            "notification_type": "both", "unraid_levels": ["summary", "error"], "webhook_levels": ["warning"],
            "webhook_url": "https://discord.com/api/webhooks/123/abc",
            "schedule": {"enabled": True, "schedule_type": "interval", "interval_hours": 6}}
        doc.update(extra)
        return doc

    def cache(self, f: tuple[str, str], srt: bool = False) -> None:
        w = self.world
        array, pool = w.array(f), w.pool(f)
        pool.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(array, pool)
        os.rename(array, str(array) + ".plexcached")
        self.listed.append(str(pool))
        self.stamps[str(pool)] = {"cached_at": "2026-01-10T21:15:03.123456", "source": "ondeck",
                                  "media_type": "episode" if f[0] == "tv" else "movie",
                                  "rating_key": str(500 + len(self.stamps))}
        if srt:
            self.cache((f[0], f[1].rsplit(".", 1)[0] + ".en.srt"))
            self.stamps[str(pool)]["associated_files"] = [str(pool.with_suffix(".en.srt"))]

    def write(self, settings: dict) -> None:
        (self.root / "plexcache_settings.json").write_text(json.dumps(settings, indent=4))
        (self.root / "plexcache_cached_files.txt").write_text("".join(f"{p}\n" for p in self.listed))
        (self.root / "data" / "timestamps.json").write_text(json.dumps(self.stamps, indent=2))
        (self.root / "data" / "pinned_media.json").write_text(json.dumps(
            {"777": {"rating_key": "777", "type": "episode", "title": "S01E01", "added_at": "2026-01-01T00:00:00",
                     "added_by": "admin"}}))
        (self.root / "unraid_mover_exclusions.txt").write_text(
            "/mnt/cache/appdata/keep-me\n" + MARKER + "\n" + "".join(f"{p}\n" for p in self.listed))
        (self.root / "plexcache.lock").write_text("")


@pytest.fixture
def world(tmp_path):
    return World(tmp_path / "root")


@pytest.fixture
def old(world, tmp_path):
    """Arrival (+srt), E01, E02 cached properly; E03's pool copy grew (mismatch); Dune cached with backups
    off (no backup); Heat listed but its pool copy is gone (only the backup is left)."""
    inst = OldInstall(world, tmp_path / "plexcache")
    inst.cache(ARRIVAL, srt=True)
    inst.cache(EP1)
    inst.stamps[str(world.pool(EP1))]["rating_key"] = "777"  # pinned there
    inst.cache(EP2)
    inst.cache(EP3)
    with open(world.pool(EP3), "ab") as handle:
        handle.write(b"remuxed on the pool")
    inst.cache(DUNE)
    os.unlink(str(world.array(DUNE)) + ".plexcached")
    inst.cache(HEAT)
    os.unlink(world.pool(HEAT))
    inst.write(inst.settings())
    return inst


def state_files(world: World) -> dict[str, bytes]:
    out = {}
    for path in [Path(world.settings.paths.state_dir), Path(world.settings.paths.exclusion_list).parent]:
        for p in sorted(path.rglob("*")):
            if p.is_file():
                out[str(p)] = p.read_bytes()
    out[str(world.settings_path)] = world.settings_path.read_bytes()
    return out


def test_dry_run_reports_and_changes_nothing(world, old):
    tree, state = world.snapshot(), state_files(world)
    doc = import_installation(world.settings, world.settings_path, old.root, dry_run=True)
    assert doc["dry_run"] and "Dry run" in doc["message"]
    assert sorted(a["path"] for a in doc["adopted"]) == sorted(
        world.user(f) for f in (ARRIVAL, ARRIVAL_SRT, EP1, EP2))
    rejected = {r["path"]: r["why"] for r in doc["not_adopted"]}
    assert set(rejected) == {world.user(EP3), world.user(DUNE), world.user(HEAT)}
    assert "size mismatch" in rejected[world.user(EP3)]
    assert "no .plexcached backup" in rejected[world.user(DUNE)]
    assert "no copy on the pool" in rejected[world.user(HEAT)]
    assert "demand.next_episodes" in doc["settings"]["changed"]
    assert world.snapshot() == tree and state_files(world) == state


def test_import_adopts_good_files_and_maps_settings(world, old):
    live = cfg.merge(cfg.to_mapping(world.settings), {"live": {"enabled": True}, "log_level": "debug"})
    settings = cfg.from_mapping(live)
    cfg.save(settings, world.settings_path)
    tree = world.snapshot()
    doc = import_installation(settings, world.settings_path, old.root)
    assert not doc["dry_run"] and len(doc["adopted"]) == 4
    assert world.snapshot() == tree  # an import never touches a media file

    registry = world.registry()
    assert sorted(registry.entries) == sorted(world.user(f) for f in (ARRIVAL, EP1, EP2))
    arrival = registry.get(world.user(ARRIVAL))
    assert arrival.sidecars == [world.user(ARRIVAL_SRT)] and arrival.disk == "disk1" and arrival.backup
    assert arrival.kind == "movie" and arrival.cached_at > 1.7e9
    assert registry.get(world.user(EP1)).pinned and registry.get(world.user(EP1)).rating_key == "777"
    listed = world.listed()
    assert str(world.pool(ARRIVAL)) in listed and str(world.pool(ARRIVAL).with_suffix(".en.srt")) in listed
    assert "/mnt/cache/appdata/keep-me" in listed
    assert str(world.pool(EP3)) not in listed

    new = cfg.load(world.settings_path)
    assert new.plex.url == "http://192.168.1.100:32400" and new.plex.token == "old-token-123"
    assert new.plex.libraries == ["1", "2"]
    assert new.plex.path_mappings == settings.plex.path_mappings  # ours already cover /data/movies, /data/tv
    assert any("Remote NAS" in n for n in doc["settings"]["notes"])
    assert any("'Old'" in n and "disabled" in n for n in doc["settings"]["notes"])
    assert new.demand.next_episodes == 7 and new.demand.days_to_monitor == 60 and new.demand.watchlist_episodes == 2
    assert new.cache.retention_hours == 24 and new.cache.eviction == "age" and new.cache.size_limit == "500GB"
    assert new.cache.min_free == "50GB" and new.cache.backups and new.cache.workers == 5
    assert new.users.skip == ["stranger"]
    assert [(o.name, o.on_deck, o.watchlist) for o in new.users.overrides] == [("partner", True, False)]
    assert new.notify.unraid_levels == ["summary", "errors"]
    assert new.notify.webhooks[0].url.startswith("https://discord.com/") and new.notify.webhooks[0].levels == [
        "warnings"]
    assert new.schedule.mode == "interval" and new.schedule.interval_hours == 6
    assert new.live.enabled and new.log_level == "debug"  # unrelated current settings kept
    assert new.paths == settings.paths
    assert world.audit()["history"][-1]["action"] == "import"


def test_imported_files_are_healthy_and_the_rest_shows_in_the_audit(world, old):
    import_installation(world.settings, world.settings_path, old.root)
    got = kinds(world.audit())
    assert ("mismatch", world.user(EP3)) in got and ("orphaned", world.user(HEAT)) in got
    assert not [p for _k, p in got if p in (world.user(ARRIVAL), world.user(EP1), world.user(EP2))]


def test_import_twice_adopts_nothing_new(world, old):
    import_installation(world.settings, world.settings_path, old.root)
    registry = world.registry().to_document()
    doc = import_installation(cfg.load(world.settings_path), world.settings_path, old.root)
    assert doc["adopted"] == [] and len(doc["already_managed"]) == 4
    assert world.registry().to_document() == registry


def test_import_refuses_while_plexcache_r_runs(world, old):
    tree, state = world.snapshot(), state_files(world)
    with open(old.root / "plexcache.lock") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(LockHeld, match="PlexCache-R is running"):
            import_installation(world.settings, world.settings_path, old.root)
    assert world.snapshot() == tree and state_files(world) == state


def test_a_folder_without_settings_is_a_usage_error(world, tmp_path):
    with pytest.raises(UsageError, match=r"plexcache_settings\.json"):
        import_installation(world.settings, world.settings_path, tmp_path)


def test_bad_values_are_skipped_with_a_note(world):
    data = {"PLEX_URL": "http://10.0.0.2:32400", "PLEX_TOKEN": "x", "cache_limit": "lots",
            "number_episodes": "five", "days_to_monitor": 30, "webhook_url": "http://insecure.example/hook",
            "notification_type": "webhook", "cache_drive_size": "3.7TB"}
    patch, notes = settings_patch(world.settings, data)
    from plexcache.importer import merged_settings

    new = merged_settings(world.settings, patch, notes)
    assert new.demand.days_to_monitor == 30 and new.cache.size_limit == ""
    assert new.demand.next_episodes == world.settings.demand.next_episodes
    joined = "\n".join(notes)
    assert "cache.size_limit" in joined and "number_episodes" in joined and "https" in joined
    assert "cache_drive_size" in joined and new.notify.unraid_levels == []


def test_mappings_are_translated_to_share_paths(world, old):
    bare = cfg.from_mapping({**cfg.to_mapping(world.settings), "plex": {"url": "http://127.0.0.1:32400"}})
    patch, _notes = settings_patch(bare, old.settings())
    got = {m["plex"]: (m["share"], m["cacheable"]) for m in patch["plex"]["path_mappings"]}
    user = str(world.sb.user)
    assert got == {"/data/movies": (f"{user}/movies", True), "/data/tv": (f"{user}/tv", True)}  # user0 -> user
    docker = {"path_mappings": [{"name": "M", "plex_path": "/media/movies", "real_path": "/data/movies",
                                 "cache_path": "/cache/movies", "host_cache_path": f"{world.mnt}/cache/movies"}]}
    patch, _ = settings_patch(bare, docker)
    assert patch["plex"]["path_mappings"] == [{"plex": "/media/movies", "share": f"{user}/movies",
                                               "cacheable": True}]


def test_legacy_single_path_settings_become_mappings(world):
    mnt = world.mnt
    data = {"plex_source": "/media/", "real_source": f"{mnt}/user/", "plex_library_folders": ["movies", "tv"],
            "nas_library_folders": ["movies", "tv"], "users_toggle": False}
    patch, _notes = settings_patch(world.settings, data)
    plex = [m["plex"] for m in patch["plex"]["path_mappings"]]
    assert "/media/movies" in plex and "/media/tv" in plex
    assert patch["users"]["home"] == {"on_deck": False, "watchlist": False}


def test_cli_import_dry_run_json(world, old):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXCACHE")}
    env["PLEXCACHE_CONFIG"] = str(world.settings_path)
    proc = subprocess.run([sys.executable, "-m", "plexcache", "--json", "import", str(old.root), "--dry-run"],
                          capture_output=True, text=True, env=env, timeout=seconds(60))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["dry_run"] and len(doc["adopted"]) == 4 and "old-token-123" not in proc.stdout
    text = subprocess.run([sys.executable, "-m", "plexcache", "import", str(old.root), "--dry-run"],
                          capture_output=True, text=True, env=env, timeout=seconds(60)).stdout
    assert "would adopt 4" in text and "not adopted" in text


def test_docker_install_lists_container_paths(world, tmp_path):
    inst = OldInstall(world, tmp_path / "config")
    inst.cache(ARRIVAL, srt=True)
    host = f"{world.mnt}/cache/movies"
    inst.listed = [p.replace(host, "/cache/movies") for p in inst.listed]
    inst.stamps = {k.replace(host, "/cache/movies"): v for k, v in inst.stamps.items()}
    settings = inst.settings(path_mappings=[
        {"name": "Movies", "plex_path": "/data/movies", "real_path": "/media/movies", "cache_path": "/cache/movies",
         "host_cache_path": host, "cacheable": True, "enabled": True}])
    inst.write(settings)
    doc = import_installation(world.settings, world.settings_path, inst.root)
    assert sorted(a["path"] for a in doc["adopted"]) == [world.user(ARRIVAL_SRT), world.user(ARRIVAL)]
    assert world.registry().get(world.user(ARRIVAL)).kind == "movie"  # its timestamp entry was found
