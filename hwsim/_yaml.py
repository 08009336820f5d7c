"""The one YAML reader for user input: architecture files, sweep files and ``--set`` values.

PyYAML's ``safe_load`` builds no arbitrary objects, but it still accepts inputs that hurt later:
duplicate keys (the last one silently wins), alias bombs (nine anchors of nine aliases each make a
graph of 9⁹ nodes that the first ``deepcopy``/``json.dumps`` expands), deep nesting (a
``RecursionError`` instead of a message) and files that are not UTF-8. Here every document is

- at most :data:`MAX_BYTES` bytes of UTF-8 text (a regular file; a directory or a FIFO is refused),
- nested at most :data:`MAX_DEPTH` levels, aliases expanded,
- at most :data:`MAX_NODES` nodes with aliases expanded (and :data:`MAX_ALIASES` aliases),
- free of duplicate keys in every mapping,
- free of the characters YAML forbids (NUL, other C0/C1 control characters, lone surrogates, U+FFFE/FFFF: valid
  UTF-8 that PyYAML's reader refuses with a traceback-shaped ``ReaderError``),

and every failure is a :class:`YAMLInputError` (a ``ValueError``) whose message names the file,
the line and the limit. ``--set KEY=VALUE`` values are parsed by :func:`parse_scalar`, which also
refuses YAML tags, anchors and aliases.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20  # 1 MiB: the shipped arch and sweep files are a few KB
MAX_DEPTH = 32  # nesting levels, aliases expanded (the arch schema uses 3)
MAX_NODES = 100_000  # nodes with aliases expanded
MAX_ALIASES = 1_000


class YAMLInputError(ValueError):
    """A YAML input is unreadable or exceeds a limit. ``file`` and ``problem`` are kept separately."""

    def __init__(self, problem: str, *, file: str = "") -> None:
        self.problem = problem
        self.file = file
        super().__init__(f"{file}: {problem}" if file else problem)


def did_you_mean(word: Any, choices: Iterable[Any]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to ``word``, or ``""``."""
    names = [str(c) for c in choices]
    close = difflib.get_close_matches(str(word), names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Limit(Exception):
    def __init__(self, problem: str, mark: Any = None) -> None:
        line = f"line {mark.line + 1}: " if mark is not None else ""
        super().__init__(line + problem)


class _Loader(yaml.SafeLoader):
    """SafeLoader that counts aliases, bounds nesting while composing and refuses duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: ANN401 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Limit(f"more than {MAX_ALIASES} aliases; limit {MAX_ALIASES}", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Limit(f"nested more than {MAX_DEPTH} levels deep; limit {MAX_DEPTH}", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            dup = key in seen
        except TypeError:  # an unhashable key (a list): PyYAML reports it below
            continue
        if dup:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [x for kv in node.value for x in kv]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph that, aliases expanded, is too big, too deep or recursive (no recursion here)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        k = id(node)
        if done:
            ch = _children(node)
            size[k] = 1 + sum(size[id(c)] for c in ch)
            depth[k] = 1 + max((depth[id(c)] for c in ch), default=0)
            open_.discard(k)
            if size[k] > MAX_NODES:
                raise _Limit(f"expands to more than {MAX_NODES:,} values once aliases are expanded (an alias bomb?); "
                             f"limit {MAX_NODES:,}", node.start_mark)
            if depth[k] > MAX_DEPTH:
                raise _Limit(f"nested more than {MAX_DEPTH} levels deep once aliases are expanded; limit {MAX_DEPTH}",
                             node.start_mark)
            continue
        if k in size:
            continue
        if k in open_:
            raise _Limit("an alias refers to a node that contains it (recursive structure)", node.start_mark)
        open_.add(k)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size)


def _check_printable(text: str) -> None:
    """Refuse a character YAML does not allow, naming its line and column (PyYAML names an offset only)."""
    m = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if m is None:
        return
    pos = m.start()
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    raise _Limit(f"line {line}, column {col}: control character U+{ord(m.group()):04X} (YAML allows printable "
                 "characters, tab and newline only)")


def loads(text: str, *, file: str = "<string>") -> Any:
    """Parse one YAML document with the limits above (``file`` only names the source in messages)."""
    if len(text) > MAX_BYTES:
        raise YAMLInputError(f"{len(text):,} characters, more than the limit of {MAX_BYTES:,}", file=file)
    try:
        _check_printable(text)
    except _Limit as e:
        raise YAMLInputError(str(e), file=file) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    except _Limit as e:
        raise YAMLInputError(str(e), file=file) from None
    except yaml.YAMLError as e:
        raise YAMLInputError(f"not valid YAML ({' '.join(str(e).split())})", file=file) from None
    except RecursionError:
        raise YAMLInputError(f"nested too deeply; limit {MAX_DEPTH} levels", file=file) from None
    finally:
        loader.dispose()


def read_text(path: str | os.PathLike, *, what: str = "file", limit: int = MAX_BYTES) -> str:
    """UTF-8 text of a regular file of at most ``limit`` bytes (errors name the file; nothing blocks on a FIFO)."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise YAMLInputError(f"no such {what}", file=str(p)) from None
    except IsADirectoryError:
        raise YAMLInputError(f"is a directory; give a {what}", file=str(p)) from None
    except OSError as e:
        raise YAMLInputError(f"cannot open the {what} ({e.strerror})", file=str(p)) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise YAMLInputError(f"is a directory; give a {what}", file=str(p))
        if not stat.S_ISREG(st.st_mode):
            raise YAMLInputError(f"is not a regular file (a FIFO or a device); give a {what}", file=str(p))
        if st.st_size > limit:
            raise YAMLInputError(f"{st.st_size:,} bytes, more than the limit of {limit:,} for a {what}", file=str(p))
        data = os.read(fd, st.st_size + 1)
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise YAMLInputError(f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); save the {what} "
                             "as UTF-8", file=str(p)) from None


def load_file(path: str | os.PathLike, *, what: str = "YAML file") -> Any:
    """Read and parse a YAML file with every limit of this module."""
    return loads(read_text(path, what=what), file=str(path))


def parse_scalar(text: str, *, flag: str = "--set") -> Any:
    """A ``--set`` value: YAML flow syntax (``16``, ``.inf``, ``none``, ``[2, 4]``, ``{8: 0.2}``), no tags,
    anchors or aliases. Raises :class:`YAMLInputError` whose ``file`` is ``flag`` and ``problem`` names the value."""
    try:
        _check_printable(text)
    except _Limit as e:
        raise YAMLInputError(f"value {text!r}: {e}", file=flag) from None
    try:
        tokens = list(yaml.scan(text))
    except yaml.YAMLError as e:
        raise YAMLInputError(f"value {text!r} is not valid YAML ({' '.join(str(e).split())})", file=flag) from None
    for tok in tokens:
        if isinstance(tok, (yaml.TagToken, yaml.AnchorToken, yaml.AliasToken)):
            kind = type(tok).__name__[:-5].lower()
            raise YAMLInputError(f"value {text!r} uses a YAML {kind} (tags, anchors and aliases are not allowed)",
                                 file=flag)
    try:
        return loads(text, file=flag)
    except YAMLInputError as e:
        raise YAMLInputError(f"value {text!r}: {e.problem}", file=flag) from None
