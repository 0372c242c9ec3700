#!/usr/bin/env bash
# Build the Unraid package dist/plexcache-r-VERSION-x86_64-1.txz and bring plexcache-r.plg up to date.
#
#   ./build.sh           build, then write version, sha256 and CHANGES into plexcache-r.plg (and dist/)
#   ./build.sh --check   build and fail if plexcache-r.plg is not what this tree builds (release check)
#
# The version is source/python/plexcache/VERSION (the one place; plugin/CHANGES.md must have it as its newest
# "###" heading); $VERSION overrides it for test builds and is then written into the package's copy. The
# same tree always gives the same bytes: sorted entries, one fixed mtime, root ownership, single-threaded
# xz. Dependencies are source/python/requirements.txt (also what pyproject.toml installs): pinned wheels
# from PyPI, downloaded once into build/wheels (then it works offline).
#
# Environment (all optional): VERSION, DIST_DIR, BUILD_DIR, WHEEL_CACHE, PYTHON, SOURCE_DATE_EPOCH,
# and for test builds PLG_BASE_URL (serve .plg and package from there; plexcache-r.plg is left alone),
# PLG_PYTHON_URL / PLG_PYTHON_SHA256 (another interpreter tarball).
set -euo pipefail

NAME=plexcache-r
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIST=${DIST_DIR:-$ROOT/dist}
WORK=${BUILD_DIR:-$ROOT/build/plugin}
WHEELS=${WHEEL_CACHE:-$ROOT/build/wheels}
PY=${PYTHON:-}
if [[ -z $PY ]]; then
  if [[ -x $ROOT/.venv/bin/python ]]; then PY=$ROOT/.venv/bin/python; else PY=python3; fi
fi
die() { echo "build.sh: $*" >&2; exit 1; }

# The pins, complete with what they need (vendored with --no-deps). PyYAML has no pure wheel: one binary
# wheel is taken and only its Python part kept (PyYAML falls back to it).
PINS=()
YAML_PIN=
while read -r pin; do
  [[ $pin =~ ^[A-Za-z0-9._-]+==[A-Za-z0-9.]+$ ]] || die "requirements.txt: '$pin' is not NAME==VERSION"
  if [[ ${pin,,} == pyyaml==* ]]; then YAML_PIN=$pin; else PINS+=("$pin"); fi
done < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$ROOT/source/python/requirements.txt")
[[ -n $YAML_PIN && ${#PINS[@]} -gt 0 ]] || die "source/python/requirements.txt lists no pyyaml or nothing else"

CHECK=0
case "${1:-}" in
  --check) CHECK=1 ;;
  "") ;;
  *) die "unknown option $1 (use --check or nothing)" ;;
esac

SOURCE_VERSION=$(tr -d '[:space:]' <"$ROOT/source/python/plexcache/VERSION")
NEWEST=$(sed -n 's/^###[[:space:]]*\([^[:space:]]*\)[[:space:]]*$/\1/p' "$ROOT/plugin/CHANGES.md" | head -n 1)
[[ $NEWEST == "$SOURCE_VERSION" ]] \
  || die "plugin/CHANGES.md's newest heading is '###$NEWEST' but source/python/plexcache/VERSION says '$SOURCE_VERSION': make them the same"
VERSION=${VERSION:-$SOURCE_VERSION}
[[ $VERSION =~ ^[0-9]{4}\.[0-9]{2}\.[0-9]{2}[a-z]?$ ]] \
  || die "version '$VERSION' is not YYYY.MM.DD[a-z] (the plugin manager compares versions as strings)"
PACKAGE=$NAME-$VERSION-x86_64-1.txz

# One fixed time for every entry: the version's date, plus a minute per same-day letter.
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
  day=${VERSION:0:10}
  SOURCE_DATE_EPOCH=$(date -u -d "${day//./-}" +%s)
  if [[ ${#VERSION} -eq 11 ]]; then
    letter=$(printf '%d' "'${VERSION:10:1}")
    SOURCE_DATE_EPOCH=$((SOURCE_DATE_EPOCH + (letter - 96) * 60))
  fi
fi

fetch_wheel() {  # fetch_wheel PIN PIP-ARGS...: make sure the wheel is in the cache
  local pin=$1; shift
  local norm=${pin%%==*} version=${pin##*==}
  norm=${norm//-/_}
  if [[ -z $(find "$WHEELS" -maxdepth 1 -iname "$norm-$version-*.whl" -print -quit) ]]; then
    echo "build.sh: downloading $pin" >&2
    # (pip's notes about this machine's extra index locations are noise here)
    "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      -d "$WHEELS" "$@" "$pin" 2> >(grep -v '^WARNING: Location' >&2) >&2 \
      || die "could not download $pin (needs PyPI once; then build/wheels is used)"
  fi
  find "$WHEELS" -maxdepth 1 -iname "$norm-$version-*.whl" -print -quit
}

mkdir -p "$WHEELS" "$DIST"
WHEEL_FILES=()
for pin in "${PINS[@]}"; do
  WHEEL_FILES+=("$(fetch_wheel "$pin" --platform any --python-version 3.10 --implementation py --abi none)")
done
WHEEL_FILES+=("$(fetch_wheel "$YAML_PIN" --platform manylinux2014_x86_64 --python-version 3.12 \
  --implementation cp --abi cp312)")

# --- stage ----------------------------------------------------------------------------------------
STAGE=$WORK/stage
PLUG=$STAGE/usr/local/emhttp/plugins/$NAME
LIB=$STAGE/usr/local/lib/$NAME
rm -rf "$WORK"
mkdir -p "$PLUG" "$LIB/app" "$LIB/vendor" "$STAGE/install"

cp -R "$ROOT/source/emhttp/." "$PLUG/"
cp "$ROOT/plugin/README.md" "$PLUG/README.md"
mkdir -p "$PLUG/images"
[[ -e $PLUG/images/$NAME.png ]] || cp "$ROOT/plugin/$NAME.png" "$PLUG/images/$NAME.png"
cp -R "$ROOT/source/python/plexcache" "$LIB/app/plexcache"
echo "$VERSION" >"$LIB/app/plexcache/VERSION"

"$PY" - "$LIB/vendor" "${WHEEL_FILES[@]}" <<'PYEOF'
"""Unpack wheels into the vendor dir: a pure wheel is a zip of its import tree; compiled parts are skipped."""
import sys
import zipfile
from pathlib import Path

target = Path(sys.argv[1])
for wheel in sys.argv[2:]:
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if member.endswith("/") or member.endswith(".so") or ".data/" in member.split("/")[0]:
                continue
            out = target / member
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(archive.read(member))
PYEOF

find "$STAGE" -depth \( -name __pycache__ -o -name '*.pyc' -o -name '*.egg-info' -o -name '.*.swp' \) \
  -exec rm -rf {} +

# The default settings, made by the staged code itself (also proves the staged tree imports in isolation).
"$PY" -I -S -B - "$LIB" >"$LIB/default-settings.yaml" <<'PYEOF' || die "the staged backend does not import"
import sys

lib = sys.argv[1]
sys.path[:0] = [lib + "/app", lib + "/vendor"]
from plexcache import config

sys.stdout.write(config.dump_yaml(config.Settings()))
PYEOF

cat >"$STAGE/install/slack-desc" <<EOF
           |-----handy-ruler------------------------------------------------------|
$NAME: $NAME (Plex-aware cache pool filler for Unraid)
$NAME:
$NAME: Asks Plex what each user is about to watch (On Deck, next episodes,
$NAME: watchlists), copies exactly those files from the array to the pool,
$NAME: keeps them out of the mover's way and moves them back when watched.
$NAME: Array disks stay asleep and playback starts at once.
$NAME:
$NAME: Unraid plugin: Settings > User Utilities > PlexCache-R.
$NAME:
$NAME: Version $VERSION
$NAME:
EOF

# Modes: directories 755, files 644, executables (kept from the source, plus scripts and events) 755.
find "$STAGE" -type d -exec chmod 755 {} +
find "$STAGE" -type f -perm /111 -exec chmod 755 {} +
find "$STAGE" -type f ! -perm /111 -exec chmod 644 {} +
find "$PLUG/scripts" "$PLUG/event" -type f ! -name '*.py' ! -name '*.php' -exec chmod 755 {} + 2>/dev/null || true

# --- package --------------------------------------------------------------------------------------
tar --sort=name --format=gnu --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    -C "$STAGE" -cf - . | xz -9 --threads=1 -c >"$WORK/$PACKAGE"
SHA256=$(sha256sum "$WORK/$PACKAGE" | cut -d' ' -f1)
mv "$WORK/$PACKAGE" "$DIST/$PACKAGE"

# --- the .plg -------------------------------------------------------------------------------------
"$PY" - "$ROOT/$NAME.plg" "$DIST/$NAME.plg" "$VERSION" "$SHA256" "$ROOT/plugin/CHANGES.md" <<'PYEOF'
"""Write version, sha256 (and test-only URL overrides) into the entities and CHANGES.md into <CHANGES>."""
import os
import re
import sys
from pathlib import Path
from xml.sax.saxutils import escape

source, out, version, sha256, changes = sys.argv[1:]
text = Path(source).read_text(encoding="utf-8")


def entity(name: str, value: str) -> None:
    global text
    pattern = re.compile(r'(<!ENTITY\s+%s\s+")[^"]*(">)' % re.escape(name))
    if not pattern.search(text):
        sys.exit(f"build.sh: {source} has no {name} entity")
    text = pattern.sub(lambda m: m.group(1) + value + m.group(2), text, count=1)


entity("version", version)
entity("sha256", sha256)
base = os.environ.get("PLG_BASE_URL", "").rstrip("/")
if base:
    entity("gitURL", base)
    entity("releaseURL", base)
for env, name in (("PLG_PYTHON_URL", "pythonURL"), ("PLG_PYTHON_SHA256", "pythonSHA256")):
    if os.environ.get(env):
        entity(name, os.environ[env])
notes = escape(Path(changes).read_text(encoding="utf-8").strip())
text, count = re.subn(r"<CHANGES>.*?</CHANGES>", lambda m: f"<CHANGES>\n{notes}\n</CHANGES>", text,
                      count=1, flags=re.S)
if not count:
    sys.exit(f"build.sh: {source} has no <CHANGES> block")
Path(out).write_text(text, encoding="utf-8")
PYEOF

if [[ $CHECK == 1 ]]; then
  cmp -s "$DIST/$NAME.plg" "$ROOT/$NAME.plg" \
    || die "$NAME.plg is not up to date with this tree: run ./build.sh and commit $NAME.plg"
  echo "build.sh: $NAME.plg matches the build"
elif [[ -z ${PLG_BASE_URL:-}${PLG_PYTHON_URL:-}${PLG_PYTHON_SHA256:-} ]]; then
  cmp -s "$DIST/$NAME.plg" "$ROOT/$NAME.plg" || cp "$DIST/$NAME.plg" "$ROOT/$NAME.plg"
fi
echo "build.sh: $DIST/$PACKAGE"
echo "build.sh: version $VERSION sha256 $SHA256 ($(stat -c %s "$DIST/$PACKAGE") bytes)"
