"""Reading YAML a person wrote, strictly.

`yaml.safe_load` is safe from code execution but not from mistakes or attacks: a key given
twice silently keeps the last value (a second `root:` wins), and a few lines of nested
aliases ("billion laughs") expand to a structure that nothing can walk in a lifetime.
`load_yaml` refuses both, and a document nested deeper than Python can recurse, with the
line to look at. Mapping keys are read as the text written (`on:` stays "on", `1:` stays
"1"), because YAML 1.1 would otherwise turn them into booleans and numbers.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# How many values a document may expand to through its aliases. A real config with
# `<<: *defaults` merges has hundreds; an alias bomb has billions.
MAX_EXPANDED_VALUES = 10_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlRefused(Exception):
    """The text is YAML we do not accept; ``line`` is 1-based (0: not known)."""

    def __init__(self, problem: str, line: int = 0) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


def load_yaml(text: str) -> Any:
    """The one document in ``text``, refusing duplicate keys and alias bombs.

    Raises `YamlRefused` for what we refuse, `yaml.YAMLError` for text that is not YAML.
    """
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise YamlRefused("nests lists or mappings too deeply") from None
    finally:
        loader.dispose()


class _StrictLoader(yaml.SafeLoader):
    def compose_document(self) -> Node | None:
        node: Node | None = super().compose_document()
        if node is not None:
            _refuse_alias_bomb(node)
        return node

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):
            return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]
        _refuse_duplicate_keys(node)
        self.flatten_mapping(node)  # `<<: *defaults`; keys given here override merged ones
        return {_key(k): self.construct_object(v, deep=deep) for k, v in node.value}


def _key(node: Node) -> str:
    if not isinstance(node, ScalarNode):
        raise YamlRefused("a key must be a name, not a list or mapping", _line(node))
    return str(node.value)


def _refuse_duplicate_keys(node: MappingNode) -> None:
    first: dict[str, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
            continue
        key = str(key_node.value)
        if key in first:
            shown = key if len(key) <= 60 else key[:57] + "..."
            raise YamlRefused(
                f"key '{shown}' is given twice (first at line {first[key]}); keep one",
                _line(key_node),
            )
        first[key] = _line(key_node)


def _refuse_alias_bomb(root: Node) -> None:
    """Count the values ``root`` expands to, each shared node once (linear time)."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in in_progress:
            raise YamlRefused("an alias refers to the list or mapping that holds it", _line(node))
        in_progress.add(id(node))
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        in_progress.discard(id(node))
        if total > MAX_EXPANDED_VALUES and total > len(sizes) + 1:
            raise YamlRefused(
                f"aliases expand to more than {MAX_EXPANDED_VALUES:,} values", _line(node)
            )
        sizes[id(node)] = total
        return total

    size(root)


def _line(node: Node) -> int:
    mark = node.start_mark
    return mark.line + 1 if mark is not None else 0


__all__ = ["MAX_EXPANDED_VALUES", "YamlRefused", "load_yaml"]
