"""Structure of a Plex payload: element path -> attribute names (values ignored), for XML and JSON alike."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

Shape = dict[str, set[str]]


def xml_shape(text: str | bytes) -> Shape:
    out: Shape = {}

    def walk(el: ET.Element, prefix: str) -> None:
        path = f"{prefix}/{el.tag}" if prefix else el.tag
        out.setdefault(path, set()).update(el.attrib)
        for c in el:
            walk(c, path)

    walk(ET.fromstring(text), "")
    return out


def json_shape(text: str | bytes) -> Shape:
    out: Shape = {}

    def walk(obj: dict, path: str) -> None:
        attrs = out.setdefault(path, set())
        for k, v in obj.items():
            if isinstance(v, dict):
                walk(v, f"{path}/{k}")
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                for x in v:
                    walk(x, f"{path}/{k}")
            else:
                attrs.add(k)

    data = json.loads(text)
    (root, body), = data.items()
    walk(body, root)
    return out
