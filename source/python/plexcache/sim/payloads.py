"""One response model, two serialisers (XML as PMS sends by default, JSON for Accept: application/json).

A response is a tree of `Node(tag, attrs, children)`. Attribute values keep their Python types: XML
writes booleans as 1/0 (never an empty string: plexapi's cast(bool, "") raises), JSON keeps them typed.
JSON follows the PMS convention: a container is {"MediaContainer": {...}}, metadata items (Video,
Directory, ... with a ratingKey) go in a "Metadata" array, other repeated children in an array named by
their tag, and the one-per-parent children (User, Player, Session, ...) are plain objects.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional

_XML_ESC = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;",
                          "\t": "&#9;"})
SINGLE_TAGS = {"User", "Player", "Session", "TranscodeSession", "subscription", "profile", "UserState",
               "OnDeck", "connections"}
METADATA_TAGS = {"Video", "Directory", "Track", "Photo", "Playlist"}


class Node:
    __slots__ = ("attrs", "children", "tag", "text")

    def __init__(self, tag: str, attrs: Optional[dict[str, Any]] = None,
                 children: Optional[list[Node]] = None, text: Optional[str] = None) -> None:
        self.tag = tag
        self.attrs = attrs if attrs is not None else {}
        self.children = children if children is not None else []
        self.text = text

    def add(self, child: Node) -> Node:
        self.children.append(child)
        return child

    def find(self, tag: str) -> Optional[Node]:
        return next((c for c in self.children if c.tag == tag), None)


_NEEDS_ESC = re.compile(r'[&<>"\n\r\t]')


def _xml_value(value: Any) -> str:
    if value is True:
        return "1"
    if value is False:
        return "0"
    text = str(value)
    if type(value) is int or not _NEEDS_ESC.search(text):
        return text
    return text.translate(_XML_ESC)


def to_xml(node: Node) -> bytes:
    out: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    _write_xml(node, out)
    return "".join(out).encode("utf-8")


def _write_xml(node: Node, out: list[str]) -> None:
    out.append("<" + node.tag)
    out.extend(f' {k}="{_xml_value(v)}"' for k, v in node.attrs.items() if v is not None)
    if not node.children and node.text is None:
        out.append("/>\n")
        return
    out.append(">")
    if node.text is not None:
        out.append(_xml_value(node.text))
    else:
        out.append("\n")
    for c in node.children:
        _write_xml(c, out)
    out.append(f"</{node.tag}>\n")


def _json_key(parent: Node, child: Node) -> str:
    if child.tag in METADATA_TAGS and "ratingKey" in child.attrs:
        return "Metadata"
    return child.tag


def _to_obj(node: Node) -> dict[str, Any]:
    obj: dict[str, Any] = {k: v for k, v in node.attrs.items() if v is not None}
    for c in node.children:
        key = _json_key(node, c)
        if c.tag in SINGLE_TAGS:
            obj[key] = _to_obj(c)
        else:
            obj.setdefault(key, []).append(_to_obj(c))
    if node.text is not None:
        obj["value"] = node.text
    return obj


def to_json(node: Node) -> bytes:
    return json.dumps({node.tag: _to_obj(node)}, separators=(",", ":")).encode("utf-8")
