"""Structure of a Plex payload: element path -> attribute name -> the kinds of value seen, XML and JSON alike.

A kind says what a value looks like, not what it is: `int`, `float`, `bool` (JSON true/false; XML writes
booleans as 0/1, which read as `int`), `epoch` (an integer of 9 or 10 digits in an attribute named ...At,
i.e. a timestamp in seconds), `digits` (a JSON string of digits, such as a ratingKey), `str`, `list` (a JSON
list of plain values), and `none` (empty, or JSON null: says nothing about the type).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

Shape = dict[str, dict[str, set[str]]]

_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?\d+\.\d+(e-?\d+)?")
NONE = "none"
# Text, whatever it happens to look like: a version "9", a resolution "1080", a title "1917", an anonymised uuid.
TEXT = {"address", "clientIdentifier", "code", "machineIdentifier", "name", "platformVersion", "productVersion",
        "summary", "tag", "title", "title1", "title2", "titleSort", "uuid", "version", "videoResolution"}


# Named like a time, but a change counter (1234 in the official document).
COUNTERS = {"contentChangedAt"}


def _number_kind(name: str, number: int) -> str:
    return "epoch" if name.endswith("At") and name not in COUNTERS and 10**8 < abs(number) < 10**10 else "int"


def kind_of(name: str, value: Any) -> str:
    """The kind of one value (a JSON value, or the text of an XML attribute)."""
    if value is None or value == "":
        return NONE
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return _number_kind(name, value)
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "list"
    return "digits" if value.isdigit() and name not in TEXT else "str"


def _xml_kind(name: str, text: str) -> str:
    if text == "":
        return NONE
    if name in TEXT:
        return "str"
    if _INT.fullmatch(text):
        return _number_kind(name, int(text))
    if _FLOAT.fullmatch(text):
        return "float"
    return "str"


def _add(out: Shape, path: str, name: str, kind: str) -> None:
    out.setdefault(path, {}).setdefault(name, set()).add(kind)


def xml_shape(text: str | bytes) -> Shape:
    out: Shape = {}

    def walk(el: ET.Element, prefix: str) -> None:
        path = f"{prefix}/{el.tag}" if prefix else el.tag
        out.setdefault(path, {})
        for name, value in el.attrib.items():
            _add(out, path, name, _xml_kind(name, value))
        for c in el:
            walk(c, path)

    walk(ET.fromstring(text), "")
    return out


def json_shape(text: str | bytes, root: str = "") -> Shape:
    """A PMS document ({"MediaContainer": {...}}), or with `root` a bare plex.tv object or list of objects."""
    out: Shape = {}

    def walk(obj: dict, path: str) -> None:
        out.setdefault(path, {})
        for k, v in obj.items():
            if isinstance(v, dict):
                walk(v, f"{path}/{k}")
            elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                for x in v:
                    walk(x, f"{path}/{k}")
            else:
                _add(out, path, k, kind_of(k, v))

    data = json.loads(text)
    if root:
        for obj in data if isinstance(data, list) else [data]:
            walk(obj, root)
        return out
    (name, body), = data.items()
    walk(body, name)
    return out


# What a value of the recorded kind may be in the simulator's answer. A recorded text may be served as
# digits (a title or a resolution may happen to be a number), a float may happen to be whole.
ACCEPTS = {"int": {"int"}, "epoch": {"epoch"}, "float": {"float", "int"}, "bool": {"bool"},
           "digits": {"digits"}, "str": {"str", "digits"}, "list": {"list"}}


def kind_clash(recorded: set[str], ours: set[str]) -> bool:
    """True when some value we serve is of a kind the recording never shows for that attribute."""
    rec = recorded - {NONE}
    if not rec:
        return False
    allowed = set().union(*(ACCEPTS[k] for k in rec))
    return bool((ours - {NONE}) - allowed)


def differences(recorded: Shape, ours: Shape, absent: dict[str, str] | None = None) -> list[str]:
    """Every element path and attribute the recording has and we lack, and every kind that differs.

    `absent` maps an element ("Extras": that element and everything under it, wherever it appears; a path such as
    "Media/Part" names nested ones) or an attribute ("Stream@anamorphic"; "@details" on any element) to why it
    is deliberately left out; those are not reported.
    """
    absent = absent or {}

    def excused(path: str, attr: str = "") -> bool:
        for key in absent:
            p, _, a = key.partition("@")
            if not a and f"/{p}/" in f"/{path}/":
                return True
            if a and a == attr and (not p or path == p or path.endswith("/" + p)):
                return True
        return False

    out = []
    for path, attrs in recorded.items():
        if excused(path):
            continue
        if path not in ours:
            out.append(f"{path}: element missing")
            continue
        for attr, kinds in sorted(attrs.items()):
            if excused(path, attr):
                continue
            if attr not in ours[path]:
                out.append(f"{path}@{attr}: attribute missing")
            elif kind_clash(kinds, ours[path][attr]):
                out.append(f"{path}@{attr}: recorded {sorted(kinds)}, served {sorted(ours[path][attr])}")
    return out


def _schema_kind(name: str, schema: dict[str, Any]) -> str:
    """The kind a schema property promises. Numbers are taken only as timestamps: the community spec
    types rating keys as numbers, while every recording has them as strings of digits."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    example = schema.get("example")
    if kind == "boolean":
        return "bool"
    if kind == "string":
        return "str"
    if kind in ("integer", "number") and isinstance(example, int) and name.endswith("At"):
        return _number_kind(name, example)
    return NONE


def schema_shape(schema: dict[str, Any], root: str = "") -> Shape:
    """The shape an OpenAPI response schema describes (JSON form): objects and arrays of objects are
    elements, everything else an attribute of the kind the schema promises."""
    out: Shape = {}

    def walk(node: dict[str, Any], path: str) -> None:
        out.setdefault(path, {})
        for name, prop in (node.get("properties") or {}).items():
            items = prop.get("items") or {}
            if prop.get("type") == "object" or "properties" in prop:
                walk(prop, f"{path}/{name}" if path else name)
            elif prop.get("type") == "array" and (items.get("type") == "object" or "properties" in items):
                walk(items, f"{path}/{name}" if path else name)
            else:
                _add(out, path, name, _schema_kind(name, prop))

    walk(schema, root)
    out.pop("", None)
    return out
