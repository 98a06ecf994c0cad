"""YAML text to objects and back, exactly as PyYAML's safe loader and dumper do it, in about half the time.

Parsing the templates' output is most of the cost of rendering (the benchmark parses ~11,000
documents). libyaml (PyYAML's C parser) scans, parses and composes the node tree quickly; what is
slow is the pure-Python part around it: the resolver, called once per scalar to pick a tag by trying
regular expressions, and the constructor, which goes through several generic layers per node. Here
the resolver remembers the tag of each plain scalar (keys and small values repeat across objects), and
nodes are turned into objects by one direct recursive function using PyYAML's own constructor for each
scalar tag. Anything unusual — merge keys (`<<`), explicit or unknown tags, complex keys, any error —
is handed to PyYAML's standard constructor for that document, so results and error messages are
PyYAML's own. Most templates' text does not get here at all: yaml-rs reads it about three times
faster still, where `yaml_fast` can show the answer is the same (yaml-rs reads YAML 1.2).

Writing manifests back as YAML (`dump_documents`) has the same shape of cost: libyaml's emitter is
quick, the representer in front of it is not. Nodes are built directly for plain data (what rendering
produces), the emitter's resolver calls are remembered, and anything else goes through PyYAML's own
representer; the text is byte for byte what `yaml.dump_all` writes.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:
    from orchestrator.yaml_fast import fast_documents
except ImportError:  # PyYAML built without libyaml: no CParser to check the syntax with
    fast_documents = None  # type: ignore[assignment]

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_NULL = "tag:yaml.org,2002:null"
_PLAIN_TAGS_LIMIT = 50_000  # a bound on the remembered plain scalars, not an LRU: the vocabulary is small


class _Unusual(Exception):
    """Raised inside the fast path: let PyYAML's standard constructor build this document."""


class _RememberingResolver:
    """Mixed in before PyYAML's loader or dumper: the tag of each plain scalar's text, remembered.

    Both ask the same resolver (PyYAML's default rules) once per scalar, and it tries regular
    expressions each time; keys and small values repeat across objects, so the answers are kept.
    """

    _plain_tags: dict[str, str] = {}

    def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
        # No path resolvers (checked below), so a tag depends only on the node's kind and, for a plain
        # scalar, on its text.
        if kind is ScalarNode:
            if not implicit[0]:
                return _STR
            tags = self._plain_tags
            tag = tags.get(value)
            if tag is None:
                tag = str(super().resolve(kind, value, implicit))  # type: ignore[misc]  # PyYAML, next in the MRO
                if tag == _STR:
                    tag = _STR  # the constant itself: the builder tells strings apart by identity
                if len(tags) >= _PLAIN_TAGS_LIMIT:
                    tags.clear()
                tags[value] = tag
            return tag
        return _MAP if kind is MappingNode else _SEQ

    # libyaml calls these around every node to track paths for path resolvers, which there are none
    # of: doing nothing here saves a check per call.
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


class _Loader(_RememberingResolver, _BaseLoader):
    pass


assert not _Loader.yaml_path_resolvers, "path resolvers make a tag depend on where a node is"
assert _Loader.DEFAULT_SCALAR_TAG == _STR and _Loader.DEFAULT_MAPPING_TAG == _MAP


def load_documents(text: str) -> list[Any]:
    """Every document in `text`, as `list(yaml.load_all(text, Loader=CSafeLoader))` would return them.

    Raises `yaml.MarkedYAMLError` (with the problem's mark) for text that is not YAML.
    """
    if fast_documents is not None:
        documents = fast_documents(text)
        if documents is not None:
            return documents
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
        return _builder({})(node) if may_alias else _build(node)
    except Exception:  # whatever it is, PyYAML's constructor decides (and explains) it
        return loader.construct_document(node)


# PyYAML's own constructors for the implicit scalar tags. They keep no state (they read the node and
# class constants), so one constructor instance serves every document, in any thread.
_STATELESS = yaml.constructor.SafeConstructor()
_SCALARS: dict[str, Callable[[Node], Any]] = {
    tag: partial(yaml.constructor.SafeConstructor.yaml_constructors[tag], _STATELESS)
    for tag in (
        "tag:yaml.org,2002:null",
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:timestamp",
    )
}


# Nulls, booleans, integers and floats are immutable and depend only on their text, which repeats
# (ports, replica counts, `true`): each is constructed once by PyYAML and then shared, saving a chain of
# Python calls per scalar. Timestamps are left out: a datetime is immutable too, but rare here.
_SHAREABLE = frozenset({_NULL, _BOOL, _INT, _FLOAT})
_shared_scalars: dict[tuple[str, str], Any] = {}


def _scalar(node: Node) -> Any:
    """A non-string scalar's value, as PyYAML's constructor for its tag makes it."""
    tag = node.tag
    construct = _SCALARS.get(tag)
    if construct is None:
        raise _Unusual(tag)
    if tag not in _SHAREABLE:
        return construct(node)
    key = (tag, node.value)
    try:
        return _shared_scalars[key]
    except KeyError:
        value = construct(node)
        if len(_shared_scalars) >= _PLAIN_TAGS_LIMIT:
            _shared_scalars.clear()
        _shared_scalars[key] = value
        return value


def _build(node: Node) -> Any:
    """A document's objects from its nodes, for a document without anchors.

    Plain strings, most of the nodes there are, are taken inline without a call: the resolver gives
    them the `_STR` constant itself, so one identity test recognises them.
    """
    kind = node.__class__
    if kind is ScalarNode:
        if node.tag == _STR:
            return node.value
        return _scalar(node)
    if kind is MappingNode:
        if node.tag != _MAP:
            raise _Unusual(node.tag)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag is _STR and key_node.__class__ is ScalarNode:
                key = key_node.value
            elif key_node.__class__ is ScalarNode and key_node.tag in _SCALARS:
                key = _scalar(key_node)
            else:  # a merge key (<<), a value key (=), an explicitly tagged or a complex key
                raise _Unusual(str(key_node.tag))
            if value_node.tag is _STR and value_node.__class__ is ScalarNode:
                mapping[key] = value_node.value
            else:
                mapping[key] = _build(value_node)
        return mapping
    if kind is SequenceNode:
        if node.tag != _SEQ:
            raise _Unusual(node.tag)
        return [
            item.value if item.tag is _STR and item.__class__ is ScalarNode else _build(item)
            for item in node.value
        ]
    raise _Unusual(str(kind))


def _builder(built: dict[int, Any]) -> Callable[[Node], Any]:
    """`_build` for a document with anchors: collections are remembered by node, so an alias gives the
    same object (and a recursive structure contains itself), as PyYAML does."""

    def build(node: Node) -> Any:
        kind = node.__class__
        if kind is ScalarNode:
            return _build(node)
        seen = built.get(id(node))
        if seen is not None:
            return seen
        if kind is MappingNode:
            if node.tag != _MAP:
                raise _Unusual(node.tag)
            mapping: dict[Any, Any] = {}
            built[id(node)] = mapping
            for key_node, value_node in node.value:
                if key_node.__class__ is not ScalarNode:
                    raise _Unusual("a complex key")
                if key_node.tag != _STR and key_node.tag not in _SCALARS:
                    raise _Unusual(str(key_node.tag))
                mapping[_build(key_node)] = build(value_node)
            return mapping
        if kind is SequenceNode:
            if node.tag != _SEQ:
                raise _Unusual(node.tag)
            sequence: list[Any] = []
            built[id(node)] = sequence
            sequence.extend(build(item) for item in node.value)
            return sequence
        raise _Unusual(str(kind))

    return build


# --- objects to text -----------------------------------------------------------------------------------


class _Dumper(_RememberingResolver, _BaseDumper):
    pass


assert not _Dumper.yaml_path_resolvers, "path resolvers make a tag depend on where a node is"


def dump_documents(
    objects: Iterable[Any],
    *,
    sort_keys: bool = False,
    explicit_start: bool = True,
    allow_unicode: bool = False,
    width: int | None = None,
) -> str:
    """The text `yaml.dump_all(objects, Dumper=CSafeDumper, sort_keys=sort_keys,
    default_flow_style=False, explicit_start=explicit_start, allow_unicode=allow_unicode, width=width)`
    returns, byte for byte (the last three are the emitter's: they change no node)."""
    return _dump(
        objects, sort_keys=sort_keys, explicit_start=explicit_start, allow_unicode=allow_unicode, width=width
    )


def dump_value(data: Any) -> str:
    """The text `yaml.dump(data, Dumper=CSafeDumper, sort_keys=True, default_flow_style=False)` returns,
    byte for byte: the templates' `to_yaml`."""
    return _dump((data,), sort_keys=True, explicit_start=False)


def _dump(
    objects: Iterable[Any],
    *,
    sort_keys: bool,
    explicit_start: bool,
    allow_unicode: bool = False,
    width: int | None = None,
) -> str:
    stream = io.StringIO()
    dumper = _Dumper(
        stream,
        default_flow_style=False,
        sort_keys=sort_keys,
        explicit_start=explicit_start,
        allow_unicode=allow_unicode,
        width=width,
    )
    try:
        dumper.open()
        for data in objects:
            try:
                node = _represent(data, {}, sort_keys)
            except _Unusual:  # a type plain data does not have: PyYAML's representer decides
                dumper.represent(data)
            else:
                dumper.serialize(node)
        dumper.close()
    finally:
        dumper.dispose()
    return stream.getvalue()


def _represent(data: Any, seen: dict[int, Node], sort_keys: bool) -> Node:
    """The node PyYAML's SafeRepresenter makes for `data`, for the exact types plain data has.

    Collections met twice in one document become the same node (an anchor and an alias), and
    strings, numbers, booleans and None never do, as in SafeRepresenter.
    """
    kind = data.__class__
    if kind is str:
        return ScalarNode(_STR, data)
    if kind is dict or kind is list:
        node = seen.get(id(data))
        if node is not None:
            return node
        value: list[Any] = []
        if kind is dict:
            node = MappingNode(_MAP, value, flow_style=False)
            seen[id(data)] = node
            items = list(data.items())
            if sort_keys:
                with contextlib.suppress(TypeError):  # keys that do not compare stay in their order
                    items = sorted(items)
            for key, item in items:
                value.append((_represent(key, seen, sort_keys), _represent(item, seen, sort_keys)))
        else:
            node = SequenceNode(_SEQ, value, flow_style=False)
            seen[id(data)] = node
            for item in data:
                value.append(_represent(item, seen, sort_keys))
        return node
    if kind is bool:
        return ScalarNode(_BOOL, "true" if data else "false")
    if kind is int:
        return ScalarNode(_INT, str(data))
    if data is None:
        return ScalarNode(_NULL, "null")
    if kind is float:
        return ScalarNode(_FLOAT, _float_text(data))
    raise _Unusual(kind.__name__)


def _float_text(data: float) -> str:
    """SafeRepresenter.represent_float's text."""
    if data != data:
        return ".nan"
    if data == float("inf"):
        return ".inf"
    if data == float("-inf"):
        return "-.inf"
    text = repr(data).lower()
    if "." not in text and "e" in text:  # 1e17 is not a YAML float; 1.0e17 is
        text = text.replace("e", ".0e", 1)
    return text
