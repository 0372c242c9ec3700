"""Shares, locations, pool space and environment checks on hand-made Unraid trees."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from plexcache.config import Settings
from plexcache.errors import EnvironmentRefuses
from plexcache.unraid import (
    Unraid,
    check_environment,
    classify,
    disks_in_standby,
    environment_problems,
    mover_running,
    parse_cfg,
    parse_ini_sections,
    read_cfg,
    read_shares,
    split_user_path,
)


@pytest.fixture
def root(tmp_path):
    s = Settings()
    p = s.paths
    p.pool_root = str(tmp_path / "mnt")
    p.disks_glob = str(tmp_path / "mnt" / "disk[0-9]*")
    p.user_root = str(tmp_path / "mnt" / "user")
    p.shares_config_dir = str(tmp_path / "boot" / "shares")
    p.emhttp_state_dir = str(tmp_path / "emhttp")
    p.mover_pid = str(tmp_path / "run" / "mover.pid")
    for d in ("mnt/disk1", "mnt/disk2", "mnt/disk10", "mnt/cache", "mnt/user", "boot/shares", "emhttp", "run"):
        (tmp_path / d).mkdir(parents=True)
    return s, tmp_path


def cfg(tmp_path, name: str, **keys: str) -> None:
    (tmp_path / "boot" / "shares" / f"{name}.cfg").write_text(
        "".join(f'{k}="{v}"\r\n' for k, v in keys.items()))


def touch(path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_parsers_handle_crlf_comments_and_sections():
    assert parse_cfg('# c\r\nshareUseCache="yes"\r\nshareCachePool="fast"\n') == {
        "shareUseCache": "yes", "shareCachePool": "fast"}
    ini = parse_ini_sections('["tv"]\nname="tv"\nuseCache="yes"\n["movies"]\nuseCache="no"\n')
    assert ini == {"tv": {"name": "tv", "useCache": "yes"}, "movies": {"useCache": "no"}}
    assert parse_cfg('; c\r\n[sec]\r\na="1"\r\nb = "two words"\nc=3\n') == {"a": "1", "b": "two words", "c": "3"}


def test_a_missing_cfg_file_reads_as_empty(tmp_path):
    assert read_cfg(tmp_path / "missing") == {}


@pytest.mark.parametrize("use, pool, pool2, exclusive, ok, words", [
    ("yes", "cache", "", False, True, ""),
    ("yes", "cache", "array", False, True, ""),
    ("yes", "cache", "fast", False, False, "secondary"),
    ("prefer", "cache", "", False, False, "already keeps"),
    ("only", "cache", "", False, False, "already on fast storage"),
    ("no", "", "", False, False, "array only"),
    ("yes", "cache", "", True, False, "exclusive"),
])
def test_only_pool_primary_array_secondary_shares_are_cacheable(use, pool, pool2, exclusive, ok, words):
    info = classify("tv", use, pool, pool2, exclusive)
    assert info.cacheable is ok and words in info.why


def test_shares_from_cfg_files_and_shares_ini_wins(root):
    s, tmp = root
    cfg(tmp, "tv", shareUseCache="yes", shareCachePool="cache")
    cfg(tmp, "movies", shareUseCache="yes", shareCachePool="cache")
    cfg(tmp, "isos", shareUseCache="no")
    (tmp / "emhttp" / "shares.ini").write_text('["movies"]\nname="movies"\nuseCache="yes"\ncachePool="cache"\n'
                                                'cachePool2=""\nexclusive="yes"\n')
    shares = read_shares(s, proc_mounts=str(tmp / "none"))
    assert shares["tv"].cacheable and not shares["isos"].cacheable
    assert shares["movies"].exclusive and not shares["movies"].cacheable


def test_exclusive_share_seen_as_a_symlink_in_user_root(root):
    s, tmp = root
    cfg(tmp, "appdata", shareUseCache="yes", shareCachePool="cache")
    (tmp / "mnt" / "cache" / "appdata").mkdir()
    os.symlink(tmp / "mnt" / "cache" / "appdata", tmp / "mnt" / "user" / "appdata")
    assert read_shares(s, proc_mounts=str(tmp / "none"))["appdata"].exclusive


def test_zfs_pool_is_recognised_from_proc_mounts(root):
    s, tmp = root
    cfg(tmp, "tv", shareUseCache="yes", shareCachePool="cache")
    mounts = tmp / "mounts"
    mounts.write_text(f"cache {tmp}/mnt/cache zfs rw 0 0\ncache/tv {tmp}/mnt/cache/tv zfs rw 0 0\n")
    info = read_shares(s, proc_mounts=str(mounts))["tv"]
    assert info.zfs and info.cacheable


def test_locate_finds_pool_copy_array_original_and_backup(root):
    s, tmp = root
    cfg(tmp, "tv", shareUseCache="yes", shareCachePool="cache")
    touch(tmp / "mnt/disk10/tv/Show/a.mkv")
    touch(tmp / "mnt/disk2/tv/Show/b.mkv.plexcached")
    touch(tmp / "mnt/cache/tv/Show/b.mkv")
    touch(tmp / "mnt/disk1/tv/Show/c.mkv")
    touch(tmp / "mnt/disk2/tv/Show/c.mkv")
    un = Unraid.load(s, proc_mounts=str(tmp / "none"))
    assert [d for d, _ in un.disks] == ["disk1", "disk2", "disk10"]
    a = un.locate(f"{s.paths.user_root}/tv/Show/a.mkv")
    assert a.on_array and not a.on_pool and a.disk == "disk10" and a.array_path == str(tmp / "mnt/disk10/tv/Show/a.mkv")
    assert a.pool_path == str(tmp / "mnt/cache/tv/Show/a.mkv")
    b = un.locate(f"{s.paths.user_root}/tv/Show/b.mkv")
    assert b.on_pool and not b.on_array and b.has_backup and b.disk == "disk2"
    assert b.backup_path == str(tmp / "mnt/disk2/tv/Show/b.mkv.plexcached")
    c = un.locate(f"{s.paths.user_root}/tv/Show/c.mkv")
    assert c.disks == ("disk1", "disk2")
    gone = un.locate(f"{s.paths.user_root}/tv/Show/none.mkv")
    assert not gone.exists and gone.disk is None


def test_locate_never_follows_user_root_or_escapes(root):
    s, tmp = root
    assert split_user_path(s.paths.user_root, "/elsewhere/x") is None
    assert split_user_path(s.paths.user_root, f"{s.paths.user_root}/tv/../etc/passwd") is None
    assert split_user_path(s.paths.user_root, f"{s.paths.user_root}/tv") is None
    un = Unraid.load(s, proc_mounts=str(tmp / "none"))
    ok, why = un.cacheable(f"{s.paths.user_root}/nosuch/x.mkv")
    assert not ok and "no configuration" in why


def test_pool_space_and_override(root):
    s, _tmp = root
    un = Unraid.load(s)
    space = un.pool_space("cache")
    assert space.total > 0 and 0 <= space.free <= space.total
    assert un.pool_space("cache", total_override=123).total == 123


def test_mover_pid_file_counts_only_with_a_live_process(root):
    s, tmp = root
    assert not mover_running(s)
    pid_file = tmp / "run" / "mover.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    assert mover_running(s)
    with pytest.raises(EnvironmentRefuses, match="mover"):
        check_environment(s)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid_file.write_text(dead.stdout)
    assert not mover_running(s)


def test_var_ini_parity_and_array_state(root):
    s, tmp = root
    var = tmp / "emhttp" / "var.ini"
    assert environment_problems(s) == []  # no var.ini: nothing to say
    var.write_text('mdState="STARTED"\nmdResync="0"\nmdResyncPos="0"\n')
    assert environment_problems(s) == []
    var.write_text('mdState="STARTED"\nmdResync="1"\nmdResyncPos="3000"\n')
    assert "parity" in environment_problems(s)[0]
    var.write_text('mdState="STOPPED"\nmdResync="0"\n')
    with pytest.raises(EnvironmentRefuses, match="not started") as err:
        check_environment(s)
    assert err.value.exit_code == 6


def test_disks_in_standby_come_from_disks_ini(root):
    s, tmp = root
    assert disks_in_standby(s) is None  # not Unraid: nothing is known to be asleep
    (tmp / "emhttp" / "disks.ini").write_text(
        '["parity"]\r\nname="parity"\r\ntype="Parity"\r\nspundown="1"\r\n'
        '["disk1"]\nname="disk1"\ntype="Data"\nspundown="0"\n'
        '["disk2"]\nname="disk2"\ntype="Data"\nspundown="1"\n'
        '["cache"]\nname="cache"\ntype="Cache"\n')
    assert disks_in_standby(s) == {"parity", "disk2"}
