"""Rendered YAML text to Python objects: exactly what PyYAML's safe loader gives, in about half the time.

Parsing the templates' output is most of the cost of rendering (the benchmark parses ~11,000
documents). libyaml (PyYAML's C parser) scans, parses and composes the node tree quickly; what is
slow is the pure-Python part around it: the resolver, called once per scalar to pick a tag by trying
regular expressions, and the constructor, which goes through several generic layers per node. Here
the resolver remembers the tag of each plain scalar (keys and small values repeat across objects), and
nodes are turned into objects by one direct recursive function using PyYAML's own constructor for each
scalar tag. Anything unusual — merge keys (`<<`), explicit or unknown tags, complex keys, any error —
is handed to PyYAML's standard constructor for that document, so results and error messages are
PyYAML's own.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_PLAIN_TAGS_LIMIT = 50_000  # a bound on the remembered plain scalars, not an LRU: the vocabulary is small


class _Unusual(Exception):
    """Raised inside the fast path: let PyYAML's standard constructor build this document."""


class _Loader(_BaseLoader):
    _plain_tags: dict[str, str] = {}

    def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
        # The safe loader has no path resolvers (checked below), so a tag depends only on the node's
        # kind and, for a plain scalar, on its text: remember that text's tag.
        if kind is ScalarNode:
            if not implicit[0]:
                return _STR
            tags = self._plain_tags
            tag = tags.get(value)
            if tag is None:
                tag = str(super().resolve(kind, value, implicit))
                if tag == _STR:
                    tag = _STR  # the constant itself: the builder tells strings apart by identity
                if len(tags) >= _PLAIN_TAGS_LIMIT:
                    tags.clear()
                tags[value] = tag
            return tag
        return _MAP if kind is MappingNode else _SEQ


assert not _Loader.yaml_path_resolvers, "path resolvers make a tag depend on where a node is"
assert _Loader.DEFAULT_SCALAR_TAG == _STR and _Loader.DEFAULT_MAPPING_TAG == _MAP


def load_documents(text: str) -> list[Any]:
    """Every document in `text`, as `list(yaml.load_all(text, Loader=CSafeLoader))` would return them.

    Raises `yaml.MarkedYAMLError` (with the problem's mark) for text that is not YAML.
    """
    # Without an anchor (`&name`) there can be no alias, so no node needs remembering.
    may_alias = "&" in text
    loader = _Loader(text)
    try:
        documents = []
        while loader.check_node():
            node = loader.get_node()
            documents.append(_construct_document(loader, node, may_alias))
        return documents
    finally:
        loader.dispose()


def _construct_document(loader: Any, node: Node | None, may_alias: bool) -> Any:
    if node is None:
        return None
    try:
        return _builder(loader, {} if may_alias else None)(node)
    except Exception:  # whatever it is, PyYAML's constructor decides (and explains) it
        return loader.construct_document(node)


def _builder(loader: Any, built: dict[int, Any] | None) -> Callable[[Node], Any]:
    """A function building one document's objects from its nodes.

    Plain strings, most of the nodes there are, are taken inline without a call. With `built`,
    collections are remembered by node, so an alias gives the same object, as PyYAML does.
    """
    constructors = loader.yaml_constructors
    scalar: dict[str, Callable[[Node], Any]] = {
        tag: partial(constructors[tag], loader)
        for tag in (
            "tag:yaml.org,2002:null",
            "tag:yaml.org,2002:bool",
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float",
            "tag:yaml.org,2002:timestamp",
        )
    }
    text_tag, map_tag, seq_tag = _STR, _MAP, _SEQ

    def build(node: Node) -> Any:
        kind = node.__class__
        if kind is ScalarNode:
            tag = node.tag
            if tag == text_tag:
                return node.value
            construct = scalar.get(tag)
            if construct is None:
                raise _Unusual(tag)
            return construct(node)
        if built is not None:
            seen = built.get(id(node))
            if seen is not None:
                return seen
        if kind is MappingNode:
            if node.tag != map_tag:
                raise _Unusual(node.tag)
            mapping: dict[Any, Any] = {}
            if built is not None:
                built[id(node)] = mapping
            for key_node, value_node in node.value:
                if key_node.__class__ is not ScalarNode:
                    raise _Unusual("a complex key")
                tag = key_node.tag
                if tag is text_tag:  # the resolver's own constant: a plain or quoted string
                    key = key_node.value
                elif tag in scalar:
                    key = scalar[tag](key_node)
                else:  # a merge key (<<), a value key (=) or an explicitly tagged key
                    raise _Unusual(tag)
                if value_node.tag is text_tag and value_node.__class__ is ScalarNode:
                    mapping[key] = value_node.value
                else:
                    mapping[key] = build(value_node)
            return mapping
        if kind is SequenceNode:
            if node.tag != seq_tag:
                raise _Unusual(node.tag)
            sequence: list[Any] = []
            if built is not None:
                built[id(node)] = sequence
            for item in node.value:
                if item.tag is text_tag and item.__class__ is ScalarNode:
                    sequence.append(item.value)
                else:
                    sequence.append(build(item))
            return sequence
        raise _Unusual(str(kind))

    return build
