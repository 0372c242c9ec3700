"""The sandbox Unraid tree: layout, share configs, media files, the /mnt/user stand-in, notify, settings."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess

from plexcache import config
from plexcache.sim.sandbox import build_tree, deterministic_bytes


def parse_cfg(path):
    out = {}
    for line in path.read_text().splitlines():
        k, _, v = line.partition("=")
        out[k] = v.strip('"')
    return out


def test_layout(sandbox, scenario):
    mnt = sandbox.mnt
    assert sorted(p.name for p in mnt.iterdir()) == ["cache", "disk1", "disk2", "disk3", "fast", "user"]
    for d in (sandbox.plugin_dir, sandbox.state_dir, sandbox.volatile_dir, sandbox.log_dir, sandbox.mover_pid.parent):
        assert d.is_dir()
    var = parse_cfg(sandbox.var_ini)
    assert var["mdState"] == "STARTED" and var["mdResync"] == "0"
    assert stat.S_IMODE(sandbox.disk("disk1").stat().st_mode) == 0o777


def test_share_configs(sandbox):
    tv = parse_cfg(sandbox.shares_dir / "tv.cfg")
    assert (tv["shareUseCache"], tv["shareCachePool"]) == ("yes", "cache")
    kids = parse_cfg(sandbox.shares_dir / "kids.cfg")
    assert (kids["shareUseCache"], kids["shareCachePool"]) == ("prefer", "fast")
    archive = parse_cfg(sandbox.shares_dir / "archive.cfg")
    assert (archive["shareUseCache"], archive["shareCachePool"]) == ("no", "")
    assert '["tv"]' in (sandbox.emhttp_dir / "shares.ini").read_text()
    assert (sandbox.mnt / "cache" / "tv").is_dir() and not (sandbox.mnt / "cache" / "archive").exists()


def test_media_files_sparse_and_real(sandbox, scenario):
    parts = {p.file: p for p in scenario.all_parts()}
    arrival = parts["/data/movies/Arrival (2016)/Arrival (2016).mkv"]
    path = sandbox.physical_path(arrival)
    assert path == sandbox.mnt / "disk1" / "movies" / "Arrival (2016)" / "Arrival (2016).mkv"
    st = path.stat()
    assert st.st_size == arrival.size and st.st_blocks * 512 < 1024 * 1024  # sparse
    assert stat.S_IMODE(st.st_mode) == 0o666
    srt = path.with_name("Arrival (2016).en.srt")
    assert srt.is_file() and "subtitle" in srt.read_text()
    small = parts["/data/movies/Paddington 2 (2017)/Paddington 2 (2017).mkv"]
    data = sandbox.physical_path(small).read_bytes()
    assert len(data) == 700 * 1024 and data == deterministic_bytes(small.file, small.size)
    cached = parts["/data/movies/Already Cached (2020)/Already Cached (2020).mkv"]
    assert sandbox.physical_path(cached).parent.parent.parent.name == "cache"


def test_same_scenario_same_hashes(tmp_path, scenario):
    a = build_tree(tmp_path / "a", scenario)
    b = build_tree(tmp_path / "b", scenario)
    rel = "kids/Bluey (2018)/Season 01/Bluey (2018) - S01E01.mkv"
    ha = hashlib.sha256((a.user / rel).read_bytes()).hexdigest()
    hb = hashlib.sha256((b.user / rel).read_bytes()).hexdigest()
    assert ha == hb


def test_user_view_and_refresh(sandbox):
    rel = "tv/Severance (2022)/Season 01/Severance (2022) - S01E01.mkv"
    link = sandbox.user / rel
    assert link.is_symlink() and link.resolve() == (sandbox.mnt / "disk2" / rel).resolve()
    pool_copy = sandbox.mnt / "cache" / rel
    pool_copy.parent.mkdir(parents=True, exist_ok=True)
    pool_copy.write_bytes(b"x")
    sandbox.refresh_user_view()
    assert (sandbox.user / rel).resolve() == pool_copy.resolve()  # the pool copy wins
    assert sandbox.user_path("/data/tv/Severance (2022)/Season 01/Severance (2022) - S01E01.mkv") == link


def test_notify_and_switches(sandbox):
    subprocess.run([str(sandbox.notify_script), "-e", "PlexCache-R", "-s", "done", "-i", "normal"], check=True)
    assert sandbox.notifications() == [["-e", "PlexCache-R", "-s", "done", "-i", "normal"]]
    subprocess.run([str(sandbox.update_cron)], check=True)
    sandbox.set_var(mdResyncPos="42")
    assert parse_cfg(sandbox.var_ini)["mdResyncPos"] == "42"
    sandbox.set_mover_running(True)
    assert sandbox.mover_pid.read_text().strip() == str(os.getpid())
    sandbox.set_mover_running(False)
    assert not sandbox.mover_pid.exists()


def test_settings_dict_is_valid_settings(sandbox):
    settings = config.from_mapping(sandbox.settings_dict("http://127.0.0.1:1", "tok"))
    assert settings.paths.state_dir == str(sandbox.state_dir)
    assert sandbox.notify_script == sandbox.root / "usr/local/emhttp/webGui/scripts/notify"  # Unraid's own place
    maps = {m.plex: m.share for m in settings.plex.path_mappings}
    assert maps["/data/tv"] == str(sandbox.user / "tv")
    for value in vars(settings.paths).values():
        assert str(value).startswith(str(sandbox.root)), value


def test_add_missing_media_after_new_episodes(sim, sandbox):
    new = sim.add_episodes("Slow Horses", 2, 2)
    created = sandbox.add_missing_media()
    files = [p.file for rk in new for p in sim.scenario.items[rk].parts()]
    assert [sandbox.physical_path(p) for rk in new for p in sim.scenario.items[rk].parts()] == created
    assert all(sandbox.user_path(f).exists() for f in files)
    assert sandbox.add_missing_media() == []


def test_settings_dict_carries_pins(sandbox):
    settings = config.from_mapping(sandbox.settings_dict("http://127.0.0.1:1", "tok"))
    assert [(o.name, o.pin) for o in settings.users.overrides] == [("kid", "1234")]
