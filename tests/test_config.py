"""Settings: defaults, validation messages that name key and reason, migration, masking, the reference."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plexcache import config as cfg
from plexcache.errors import SettingsError, UsageError

ROOT = Path(__file__).resolve().parents[1]


def problems_of(document: object) -> dict[str, str]:
    with pytest.raises(SettingsError) as caught:
        cfg.from_mapping(document)
    return dict(caught.value.problems)


def test_empty_document_gives_defaults():
    assert cfg.from_mapping({}) == cfg.Settings()
    assert cfg.from_mapping(None) == cfg.Settings()


def test_defaults_round_trip_through_yaml():
    text = cfg.dump_yaml(cfg.Settings())
    assert cfg.from_mapping(yaml.safe_load(text)) == cfg.Settings()


def test_unknown_key_suggests_the_close_one():
    problems = problems_of({"plex": {"tokne": "abc"}})
    assert problems == {"plex.tokne": "unknown setting; did you mean plex.token?"}


def test_wrong_types_name_key_value_and_allowed():
    problems = problems_of({"cache": {"workers": "two", "backups": "yes", "eviction": "random"}})
    assert problems["cache.workers"] == "got 'two', expected a whole number"
    assert problems["cache.backups"] == "got 'yes', expected true or false"
    assert problems["cache.eviction"].startswith("got 'random', expected one of 'priority', 'age', 'none'")


def test_bool_is_not_a_number():
    assert "cache.workers" in problems_of({"cache": {"workers": True}})


def test_ranges_and_sizes():
    problems = problems_of({"cache": {"workers": 0, "min_free": "lots", "size_limit": "120%"}})
    assert problems["cache.workers"] == "got 0, expected a value from 1 to 16"
    assert "expected a size like 500GB" in problems["cache.min_free"]
    assert "over 100%" in problems["cache.size_limit"]


def test_every_problem_is_reported_at_once():
    problems = problems_of({"plex": {"url": "plex.local"}, "demand": {"next_episodes": -1}, "bogus": 1})
    assert set(problems) == {"plex.url", "demand.next_episodes", "bogus"}


def test_path_mappings_validated():
    problems = problems_of({"plex": {"path_mappings": [
        {"plex": "/data/tv", "share": "/mnt/user/tv"},
        {"plex": "/data/tv/", "share": "mnt/user/tv2"},
        {"share": "/mnt/user/x"},
    ]}})
    assert problems["plex.path_mappings[1].plex"] == "'/data/tv/' is mapped twice"
    assert problems["plex.path_mappings[1].share"] == "must be an absolute path starting with /"
    assert problems["plex.path_mappings[2].plex"] == "is required"


def test_list_items_typed():
    problems = problems_of({"notify": {"unraid_levels": ["summary", "loud"]}})
    assert "notify.unraid_levels[1]" in problems


@pytest.mark.parametrize("text,expected", [
    ("500GB", 500 * 10**9), ("1.5T", int(1.5 * 10**12)), ("800 MB", 800 * 10**6), ("20", 20 * 10**9),
    ("2GiB", 2 * 1024**3), ("1.5 TiB", int(1.5 * 1024**4)), ("512B", 512),
])
def test_parse_size_absolute(text, expected):
    assert cfg.parse_size(text).resolve(0) == expected


def test_parse_size_percent_and_empty():
    assert cfg.parse_size("10%").resolve(2000) == 200
    assert cfg.parse_size("") is None
    with pytest.raises(ValueError):
        cfg.parse_size("ten")


def test_schema_1_is_migrated_not_dropped():
    settings = cfg.from_mapping({"schema": 1, "eviction_mode": "age", "cache_limit": "200GB",
                                 "min_free_space": "5%"})
    assert (settings.schema, settings.cache.eviction, settings.cache.size_limit, settings.cache.min_free) == \
        (2, "age", "200GB", "5%")


def test_future_schema_refused():
    assert "schema" in problems_of({"schema": 99})


def test_a_section_that_is_not_a_mapping_is_named_even_during_migration():
    assert set(problems_of({"schema": True})) == {"schema"}  # a boolean is not a schema number
    for document in ({"schema": 1, "cache": 1}, {"cache": [1]}):
        with pytest.raises(cfg.SettingsError) as err:
            cfg.from_mapping(document)
        assert err.value.problems[0][0] == "cache" and "expected a mapping" in err.value.problems[0][1]


def test_mask_and_unmask_keep_stored_secret():
    settings = cfg.from_mapping({"plex": {"token": "secret-token"},
                                 "notify": {"webhooks": [{"url": "https://discord.com/api/webhooks/1/x"}]}})
    shown = cfg.to_mapping(settings, mask=True)
    assert shown["plex"]["token"] == cfg.MASK
    assert cfg.is_mask(shown["notify"]["webhooks"][0]["url"])
    assert "secret-token" not in str(shown) and "webhooks/1/x" not in str(shown)
    restored = cfg.from_mapping(cfg.unmask(shown, cfg.to_mapping(settings)))
    assert restored == settings


HOOKS = ["https://discord.com/api/webhooks/1/first", "https://hooks.slack.com/services/T/B/second",
         "https://discord.com/api/webhooks/3/third"]


@pytest.mark.parametrize("removed", [0, 1, 2])
def test_removing_a_masked_row_keeps_the_secrets_of_the_rows_left(removed):
    """Rows without a key (webhooks) are told apart by their masks, not by position: removing the first of
    three on the page keeps the second and third addresses, never shifts the first into their place."""
    stored = cfg.to_mapping(cfg.from_mapping({"notify": {"webhooks": [
        {"url": url, "levels": [level]}
        for url, level in zip(HOOKS, ["summary", "warnings", "errors"], strict=True)]}}))
    form = cfg.to_mapping(cfg.from_mapping(stored), mask=True)
    del form["notify"]["webhooks"][removed]
    saved = cfg.from_mapping(cfg.merge(stored, {"notify": form["notify"]}))
    kept = [h.url for h in saved.notify.webhooks]
    assert kept == [u for i, u in enumerate(HOOKS) if i != removed]
    assert [h.levels for h in saved.notify.webhooks] == [[lv] for i, lv in enumerate(["summary", "warnings",
                                                                                       "errors"]) if i != removed]


def test_a_mask_that_matches_no_stored_row_is_refused_not_guessed():
    stored = {"notify": {"webhooks": [{"url": HOOKS[0]}]}}
    form = cfg.to_mapping(cfg.from_mapping({"notify": {"webhooks": [{"url": HOOKS[1]}]}}), mask=True)
    with pytest.raises(cfg.SettingsError) as err:
        cfg.from_mapping(cfg.merge(stored, {"notify": form["notify"]}))
    assert err.value.problems == [("notify.webhooks[0].url",
                                   "stands for a stored value that is no longer there: enter it again")]


def test_empty_secret_is_not_masked():
    assert cfg.to_mapping(cfg.Settings(), mask=True)["plex"]["token"] == ""


def test_load_missing_file_gives_defaults(tmp_path):
    assert cfg.load(tmp_path / "none.yaml") == cfg.Settings()


def test_load_bad_yaml_is_a_usage_error(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("plex: [unclosed\n")
    with pytest.raises(UsageError, match="not valid YAML or JSON at line"):
        cfg.load(path)


def test_save_is_atomic_and_private(tmp_path):
    path = tmp_path / "sub" / "settings.yaml"
    cfg.save(cfg.Settings(), path)
    assert cfg.load(path) == cfg.Settings()
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["settings.yaml"]


def test_reference_covers_every_leaf_setting():
    keys = {row[0] for row in cfg.reference_rows()}
    assert {"plex.token", "cache.min_free", "paths.exclusion_list", "plex.path_mappings[].cacheable",
            "notify.webhooks[].levels", "schedule.mode", "live.poll_seconds"} <= keys


def test_reference_doc_is_current():
    """docs/settings.md is generated from the schema; regenerate with `plexcache-r config reference`."""
    assert (ROOT / "docs" / "settings.md").read_text() == cfg.reference_markdown()


@pytest.mark.parametrize("value", ["/usr/local/sbin/update_cron", "/tmp/anything-else"])
def test_retired_command_paths_load_and_are_dropped(tmp_path, value):
    """Settings once named Unraid's notify and update_cron (programs run as root); an old file still loads,
    whatever it said, and the keys are gone from what is shown and saved."""
    path = tmp_path / "settings.yaml"
    path.write_text(f"schema: 2\npaths:\n  notify_script: {value}\n  update_cron: {value}\n  log_dir: /tmp/logs\n")
    settings = cfg.load(path)
    assert settings.paths.log_dir == "/tmp/logs"
    paths = cfg.to_mapping(settings)["paths"]
    assert "notify_script" not in paths and "update_cron" not in paths


OVERRIDES = {"users": {"overrides": [{"name": "alice", "on_deck": True, "watchlist": True, "pin": "1234"},
                                     {"name": "bob", "on_deck": False, "watchlist": True, "pin": "9876"}]},
             "notify": {"webhooks": [{"url": "https://discord.com/api/webhooks/1/x"}]}}


def test_a_form_row_without_a_field_keeps_the_stored_value():
    """A form that does not show a row's field (a Plex Home PIN) sends the row without it: the stored
    value stays, matched by the row's user name whatever the order or the rows removed."""
    stored = cfg.to_mapping(cfg.from_mapping(OVERRIDES))
    sent = {"users": {"overrides": [{"name": "bob", "on_deck": True, "watchlist": True}]}}
    merged = cfg.from_mapping(cfg.merge(stored, sent))
    assert [(o.name, o.on_deck, o.pin) for o in merged.users.overrides] == [("bob", True, "9876")]


def test_a_masked_secret_in_a_row_is_the_stored_one_of_that_row():
    stored = cfg.to_mapping(cfg.from_mapping(OVERRIDES))
    shown = cfg.to_mapping(cfg.from_mapping(OVERRIDES), mask=True)
    assert shown["users"]["overrides"][1]["pin"] == cfg.MASK and "9876" not in str(shown)
    sent = {"users": {"overrides": [shown["users"]["overrides"][1]]}}   # alice's row removed
    for document in (cfg.merge(stored, sent), cfg.unmask(cfg.merge(shown, sent), stored)):
        assert cfg.from_mapping(document).users.overrides[0].pin == "9876"


def test_a_changed_or_cleared_secret_is_taken():
    stored = cfg.to_mapping(cfg.from_mapping(OVERRIDES))
    sent = {"users": {"overrides": [{"name": "alice", "pin": "5555"}, {"name": "bob", "pin": ""}]}}
    merged = cfg.from_mapping(cfg.merge(stored, sent))
    assert [o.pin for o in merged.users.overrides] == ["5555", ""]


def test_every_secret_comes_from_the_schema():
    assert set(cfg.secret_keys()) == {"plex.token", "users.rss_url", "users.overrides[].pin",
                                      "notify.webhooks[].url"}
    settings = cfg.from_mapping({**OVERRIDES, "plex": {"token": "tok-secret"}})
    assert set(cfg.secret_values(settings)) == {"tok-secret", "1234", "9876", "https://discord.com/api/webhooks/1/x"}


def test_the_log_scrubber_hides_a_plex_home_pin():
    import logging

    from plexcache.logsetup import RedactSecrets, secrets_of

    settings = cfg.from_mapping(OVERRIDES)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "switching to %s with pin %s", ("bob", "9876"), None)
    RedactSecrets(secrets_of(settings)).filter(record)
    assert "9876" not in record.getMessage()


def test_a_broken_file_still_gives_every_good_value(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"schema": 2, "cache": {"min_free": "lots", "workers": 3},
                                    "plex": {"token": "tok-1", "path_mappings": [
                                        {"plex": "/data/tv", "share": "/mnt/user/tv"},
                                        {"plex": "data/films", "share": "/mnt/user/films"}]},
                                    "paths": {"state_dir": str(tmp_path / "state")}, "colour": "red"}))
    readable = cfg.load_readable(path)
    assert readable.settings.cache.workers == 3 and readable.settings.cache.min_free == "10%"
    assert readable.settings.plex.token == "tok-1" and readable.settings.paths.state_dir == str(tmp_path / "state")
    assert [m.plex for m in readable.settings.plex.path_mappings] == ["/data/tv"]
    assert {key for key, _ in readable.problems} == {"cache.min_free", "plex.path_mappings[1].plex", "colour"}
    assert readable.raw["cache"]["min_free"] == "lots"


def test_a_file_that_is_not_yaml_gives_the_defaults_and_says_where(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("cache: {min_free: [\n")
    readable = cfg.load_readable(path)
    assert readable.settings == cfg.Settings() and readable.raw == {}
    assert readable.problems[0][0] == "(file)" and "line" in readable.problems[0][1]
