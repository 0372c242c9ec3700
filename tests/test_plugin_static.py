"""Static checks of the plugin as built: the .plg, the package, the CA template, reproducibility."""

from __future__ import annotations

import hashlib
import re
import struct
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from plexcache import config
from plugin_sandbox import harness

pytestmark = pytest.mark.plugin

REPO = harness.REPO
NAME = harness.NAME
VERSION_RE = re.compile(r"^\d{4}\.\d{2}\.\d{2}[a-z]?$")
PLUGDIR = f"/usr/local/emhttp/plugins/{NAME}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> harness.Build:
    return harness.build(tmp_path_factory.mktemp("plugin-build"))


@pytest.fixture(scope="module")
def plg(built: harness.Build) -> ET.Element:
    return ET.parse(built.plg).getroot()  # expat expands the internal DTD's entities


@pytest.fixture(scope="module")
def members(built: harness.Build) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(built.package, "r:xz") as archive:
        return {m.name[2:] if m.name.startswith("./") else m.name: m for m in archive.getmembers()}


def entity(text: str, name: str) -> str:
    match = re.search(r'<!ENTITY\s+' + re.escape(name) + r'\s+"([^"]*)">', text)
    assert match, f"no {name} entity"
    return match.group(1)


def test_repo_plg_is_valid_and_versioned_like_the_changelog() -> None:
    text = (REPO / f"{NAME}.plg").read_text()
    root = ET.fromstring(text)
    assert root.tag == "PLUGIN"
    for attribute in ("name", "author", "version", "pluginURL", "launch", "icon", "support", "min"):
        assert root.get(attribute), attribute
    assert VERSION_RE.match(root.get("version"))
    assert re.fullmatch(r"[0-9a-f]{64}", entity(text, "sha256"))
    newest = re.search(r"^###\s*(\S+)", (REPO / "plugin/CHANGES.md").read_text(), re.M).group(1)
    assert root.get("version") == newest, "plugin/CHANGES.md has a newer heading: run ./build.sh"


def test_built_plg_expands_to_valid_xml(plg: ET.Element, built: harness.Build) -> None:
    assert plg.get("name") == NAME
    assert VERSION_RE.match(plg.get("version"))
    assert plg.get("version") == built.version
    assert plg.get("launch") == "Settings/PlexCacheR"
    assert plg.get("min") == "6.12.0"
    for element in plg.iter():  # nothing left unexpanded
        assert "&" not in "".join(element.attrib.values()) + (element.text or "").replace("&&", "")


def test_sha256_entity_matches_the_package(plg: ET.Element, built: harness.Build) -> None:
    """The package is fetched into /tmp/plugins (RAM, checked against its SHA256) and handed to the
    install transaction; only a successful install keeps it on the flash drive."""
    digest = hashlib.sha256(built.package.read_bytes()).hexdigest()
    packages = [f for f in plg.findall("FILE") if (f.get("Name") or "").endswith(".txz")]
    assert len(packages) == 1
    package = packages[0]
    assert package.findtext("SHA256").strip() == digest
    assert package.get("Name") == f"/tmp/plugins/{built.package.name}"
    assert package.findtext("URL").strip().endswith(f"/{built.version}/{built.package.name}")
    scripts = "\n".join(f.findtext("INLINE") or "" for f in plg.findall("FILE"))
    assert f"{PLUGDIR}/scripts/install" in scripts and f"tar -xJf {package.get('Name')}" in scripts
    assert f"cp -f /boot/config/plugins/{NAME}/{built.package.name} {package.get('Name')}" in scripts  # offline boot


def test_one_version_everywhere(plg: ET.Element, built: harness.Build, members: dict[str, tarfile.TarInfo]) -> None:
    """plexcache/VERSION is the one place: the .plg, the package's name and its copy, the CLI, the changelog."""
    version = (REPO / "source/python/plexcache/VERSION").read_text().strip()
    assert plg.get("version") == built.version == version
    assert built.package.name == f"{NAME}-{version}-x86_64-1.txz"
    with tarfile.open(built.package, "r:xz") as archive:
        assert archive.extractfile(f"./usr/local/lib/{NAME}/app/plexcache/VERSION").read().decode().strip() == version
    assert re.search(r"^###\s*(\S+)", (REPO / "plugin/CHANGES.md").read_text(), re.M).group(1) == version
    from plexcache import __version__

    assert __version__ == version
    cli = subprocess.run([sys.executable, "-m", "plexcache", "--version"], capture_output=True, text=True, check=False)
    assert cli.stdout.strip() == f"{NAME}, version {version}"


def test_the_package_vendors_exactly_the_pinned_requirements(members: dict[str, tarfile.TarInfo]) -> None:
    """requirements.txt is the one list: pyproject.toml installs it and build.sh vendors it."""
    pins = {}
    for line in (REPO / "source/python/requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "_", name).lower()] = version
    vendored = {}
    for path in members:
        match = re.fullmatch(rf"usr/local/lib/{NAME}/vendor/([^/]+)-([^-/]+)\.dist-info", path)
        if match:
            vendored[re.sub(r"[-_.]+", "_", match.group(1)).lower()] = match.group(2)
    assert vendored == pins
    pyproject = (REPO / "source/python/pyproject.toml").read_text()
    assert 'dependencies = {file = "requirements.txt"}' in pyproject and '"dependencies"' in pyproject
    assert 'requires-python = ">=3.10"' in pyproject


def test_changes_block_is_the_changelog(plg: ET.Element) -> None:
    assert plg.findtext("CHANGES").strip() == (REPO / "plugin/CHANGES.md").read_text().strip()


def test_every_file_the_plg_runs_is_in_the_package(plg: ET.Element, members: dict[str, tarfile.TarInfo]) -> None:
    scripts = "\n".join(f.findtext("INLINE") or "" for f in plg.findall("FILE"))
    referenced = set(re.findall(re.escape(PLUGDIR) + r"/[\w./-]+", scripts))
    assert referenced, "the .plg runs nothing from the package?"
    for path in referenced:
        member = members.get(path.lstrip("/"))
        assert member is not None and member.isfile(), f"{path} is not in the package"
        assert member.mode & 0o111, f"{path} is not executable"


def test_package_carries_launcher_events_hook_and_backend(members: dict[str, tarfile.TarInfo]) -> None:
    lib = f"usr/local/lib/{NAME}"
    for path, executable in [
        (f"{PLUGDIR[1:]}/scripts/{NAME}", True), (f"{PLUGDIR[1:]}/scripts/bootstrap.py", False),
        (f"{PLUGDIR[1:]}/scripts/mover-hook", True), (f"{PLUGDIR[1:]}/scripts/live", True),
        (f"{PLUGDIR[1:]}/scripts/install", True), (f"{PLUGDIR[1:]}/scripts/uninstall", True),
        (f"{PLUGDIR[1:]}/event/disks_mounted", True), (f"{PLUGDIR[1:]}/event/unmounting_disks", True),
        (f"{PLUGDIR[1:]}/README.md", False), (f"{PLUGDIR[1:]}/images/{NAME}.png", False),
        (f"{lib}/app/plexcache/cli.py", False), (f"{lib}/app/plexcache/schedule.py", False),
        (f"{lib}/default-settings.yaml", False), (f"{lib}/app/plexcache/VERSION", False),
        ("install/slack-desc", False),
    ]:
        assert path in members, path
        assert bool(members[path].mode & 0o111) is executable, path
    for module in ("plexapi", "requests", "urllib3", "idna", "certifi", "charset_normalizer", "click",
                   "websocket", "yaml"):
        assert f"{lib}/vendor/{module}/__init__.py" in members, module


def test_package_is_root_owned_fixed_time_and_clean(members: dict[str, tarfile.TarInfo]) -> None:
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {(0, 0, "", "")}
    assert len({m.mtime for m in members.values()}) == 1
    names = list(members)
    assert names[0] == "." and names[1:] == sorted(names[1:], key=lambda n: n.split("/"))
    for name, member in members.items():
        assert "__pycache__" not in name and not name.endswith((".pyc", ".so")), name
        assert member.isfile() or member.isdir(), f"{name}: only files and directories"
        assert member.mode & 0o7777 in (0o644, 0o755), f"{name}: mode {oct(member.mode)}"


def test_slack_desc_follows_the_format(built: harness.Build) -> None:
    with tarfile.open(built.package, "r:xz") as archive:
        text = archive.extractfile("./install/slack-desc").read().decode()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("|")]
    assert len(lines) == 11 and all(line.startswith(f"{NAME}:") for line in lines)
    assert all(len(line) <= 80 for line in lines)


def test_default_settings_are_the_backends_defaults(built: harness.Build) -> None:
    with tarfile.open(built.package, "r:xz") as archive:
        text = archive.extractfile(f"./usr/local/lib/{NAME}/default-settings.yaml").read().decode()
    assert config.to_mapping(config.from_mapping(yaml.safe_load(text))) == config.to_mapping(config.Settings())


def test_staged_cli_runs_isolated_from_the_servers_python_path(built: harness.Build, tmp_path: Path) -> None:
    """A broken `click` on PYTHONPATH or in site-packages must not reach the backend (-I -S)."""
    poison = tmp_path / "poison"
    (poison / "click").mkdir(parents=True)
    (poison / "click" / "__init__.py").write_text("raise ImportError('poisoned click')\n")
    stage = built.dist.parent / "build" / "stage"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(poison), "PLEXCACHE_PYTHON": sys.executable,
           "PLEXCACHE_PLUGIN_DIR": str(stage / PLUGDIR.lstrip("/")),
           "PLEXCACHE_LIB": str(stage / f"usr/local/lib/{NAME}")}
    launcher = stage / PLUGDIR.lstrip("/") / "scripts" / NAME
    proc = subprocess.run([str(launcher), "--version"], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "version" in proc.stdout
    probe = subprocess.run([sys.executable, "-c", "import click"], env=env, capture_output=True, check=False)
    assert probe.returncode != 0  # the poison is real: without isolation it would break


def test_build_is_reproducible(built: harness.Build, tmp_path: Path) -> None:
    again = harness.rebuild(built, tmp_path)
    assert again.package.read_bytes() == built.package.read_bytes()
    assert again.plg.read_text() == built.plg.read_text()


def test_ca_template_agrees_with_the_plg(plg: ET.Element) -> None:
    ca = ET.parse(REPO / "plugin" / f"{NAME}.xml").getroot()
    assert ca.tag == "Containers"
    assert ca.findtext("PluginURL") == plg.get("pluginURL")
    assert ca.findtext("PluginAuthor") == plg.get("author")
    assert ca.findtext("Support") == plg.get("support")
    assert ca.findtext("MinVer") == plg.get("min")
    assert ca.findtext("Name") == plg.get("name")
    assert ca.findtext("Category") and ca.findtext("Overview")
    repo_raw = plg.get("pluginURL").rsplit("/", 1)[0]
    assert ca.findtext("Icon") == f"{repo_raw}/plugin/{NAME}.png"
    profile = ET.parse(REPO / "plugin" / "ca_profile.xml").getroot()
    assert (profile.findtext("Profile") or "").strip()
    assert profile.findtext("Icon") == ca.findtext("Icon")


def test_icon_is_a_256px_png() -> None:
    data = (REPO / "plugin" / f"{NAME}.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (256, 256)
