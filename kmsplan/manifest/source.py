"""Reading manifest and policy files into plain values, with the line and column of every node.

Everything a hostile or broken file can do ends here as a `Diagnostic`: files too large,
binary or non-UTF-8 bytes, YAML syntax errors, tabs, duplicate keys, anchors that expand
without bound ("billion laughs"), nesting too deep to walk. Values come out as JSON-shaped
Python data (dict, list, str, int, float, bool, None); YAML timestamps stay strings.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from kmsplan.errors import Diagnostic
from kmsplan.model import Location

MAX_FILE_BYTES = 5 * 1024 * 1024
# Deeper than any sensible manifest or policy (a policy condition sits at depth ~9), and far
# below the depth at which walking the tree recursively could exhaust Python's stack.
MAX_DEPTH = 64
# Values produced after expanding YAML aliases; stops "billion laughs" documents.
MAX_NODES = 200_000

PathPart = str | int
DocPath = tuple[PathPart, ...]
_T = TypeVar("_T")

_SIMPLE_KEY = re.compile(r"^[^.\[\]\"'\s]+$")


def render_path(path: DocPath) -> str:
    """`("keys", "orders", "policy", "Statement", 0)` -> `keys.orders.policy.Statement[0]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _SIMPLE_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


def render_path_under(prefix: str, tail: DocPath) -> str:
    """`render_path((*head, *tail))` given `prefix = render_path(head)`, `head` not empty."""
    return prefix + _render_tail(tail)


@functools.lru_cache(maxsize=4096)
def _render_tail(tail: DocPath) -> str:
    # The same tails (policy.Statement[0].Effect, ...) recur under every key.
    out = ""
    for part in tail:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _SIMPLE_KEY.match(part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


class SourceError(Exception):
    """A file that cannot be turned into a document at all."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.render())
        self.diagnostic = diagnostic


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """One parsed file: its value and where each node of it was written."""

    file: str  # the path as the user gave it (or as joined from it)
    value: Any
    values: Mapping[DocPath, Location] = field(default_factory=dict)  # path -> the value node
    keys: Mapping[DocPath, Location] = field(default_factory=dict)  # path -> its mapping key

    def locate(self, path: DocPath) -> Location:
        """Where the value at `path` was written; its nearest written ancestor if not there."""
        for end in range(len(path), -1, -1):
            loc = self.values.get(path[:end])
            if loc is not None:
                return loc
        return Location(file=self.file, line=1, column=1)

    def locate_key(self, path: DocPath) -> Location:
        """Where the mapping key naming `path` was written (for "unknown field" errors)."""
        loc = self.keys.get(path)
        return loc if loc is not None else self.locate(path)

    def diagnostic(
        self,
        path: DocPath,
        message: str,
        allowed: str = "",
        *,
        at_key: bool = False,
        display_path: DocPath | None = None,
    ) -> Diagnostic:
        loc = self.locate_key(path) if at_key else self.locate(path)
        return Diagnostic(
            file=loc.file,
            line=loc.line,
            column=loc.column,
            path=render_path(path if display_path is None else display_path),
            message=message,
            allowed=allowed,
        )


def file_diagnostic(
    file: str, message: str, allowed: str = "", *, line: int = 1, column: int = 1
) -> Diagnostic:
    return Diagnostic(
        file=file, line=line, column=column, path="", message=message, allowed=allowed
    )


# ---- bytes -> text --------------------------------------------------------------------------


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte `offset`."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    line = data.count(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return line, column


class Unreadable(Exception):
    """A path that is not a regular file kmsplan may read: `reason` says what it is instead
    ("is a folder, not a file", "is a symlink loop", ...), to follow the file's name."""

    def __init__(self, reason: str, allowed: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.allowed = allowed


def tree_root(given: str | Path) -> Path:
    """The folder that files reached from the manifest path `given` must stay inside: the
    git work tree holding it (the nearest folder above it with a `.git` entry, file or folder;
    git itself is not run), else the manifest folder (a file's own folder). Resolved."""
    start = Path(os.path.abspath(given))
    if not start.is_dir():
        start = start.parent
    for folder in (start, *start.parents):
        if os.path.lexists(folder / ".git"):
            return _resolved(folder)
    return _resolved(start)


def _resolved(path: Path) -> Path:
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError):  # pragma: no cover - realpath is not strict
        return path


def describe_root(root: Path) -> str:
    if os.path.lexists(root / ".git"):
        return f"the git work tree {root}"
    return f"the manifest folder {root}"


def _kind_of_file(mode: int) -> str | None:
    """What a non-regular file is, for a message; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a file"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a file"
    return "is not a regular file"


def read_bytes(fs_path: Path, *, root: Path | None, limit: int = MAX_FILE_BYTES) -> bytes:
    """Up to `limit` + 1 bytes of the regular file at `fs_path`; `Unreadable` for anything
    else, decided before a byte is read: a path leading (through symlinks or `..`) outside
    `root`, nothing there, a dangling symlink, a symlink loop, a folder, a device, a FIFO or a
    socket. Devices and FIFOs are never opened for reading (they may block or never end)."""
    try:
        os.lstat(fs_path)
    except (FileNotFoundError, NotADirectoryError):
        raise Unreadable("not found") from None
    except (OSError, ValueError) as exc:
        raise Unreadable(f"cannot be read: {_reason(exc)}") from None
    if root is not None and not _resolved(fs_path).is_relative_to(root):
        raise Unreadable(
            f"leads outside {describe_root(root)}; refused, not read",
            f"files inside {describe_root(root)}",
        )
    try:
        mode = os.stat(fs_path).st_mode
    except FileNotFoundError:
        raise Unreadable("is a symlink to nothing (its target does not exist)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Unreadable("is a symlink loop") from None
        raise Unreadable(f"cannot be read: {_reason(exc)}") from None
    what = _kind_of_file(mode)
    if what is not None:
        raise Unreadable(what)
    # O_NONBLOCK: should the path have become a FIFO since, opening it does not wait for a
    # writer; the kind is checked again on what was opened, before reading.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(fs_path, flags)
    except OSError as exc:
        raise Unreadable(f"cannot be read: {_reason(exc)}") from None
    with os.fdopen(fd, "rb") as fh:
        what = _kind_of_file(os.fstat(fd).st_mode)
        if what is not None:
            raise Unreadable(what)
        try:
            return fh.read(limit + 1)
        except OSError as exc:
            raise Unreadable(f"cannot be read: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or exc.__class__.__name__


def read_text(file: str, fs_path: Path, *, kind: str = "manifest", root: Path | None = None) -> str:
    """The file's text; a SourceError for anything that is not a readable, small UTF-8 text
    (inside `root`, when given: see `read_bytes`)."""
    try:
        data = read_bytes(fs_path, root=root)
    except Unreadable as exc:
        raise SourceError(
            file_diagnostic(file, f"{kind} {exc.reason}", exc.allowed, line=0, column=0)
        ) from None
    return decode_text(file, fs_path, data, kind=kind)


def decode_text(file: str, fs_path: Path, data: bytes, *, kind: str) -> str:
    """The text of `data` (what `read_bytes` read from `fs_path`); a SourceError when it is too
    large, binary or not UTF-8."""
    if len(data) > MAX_FILE_BYTES:
        size = fs_path.stat().st_size
        raise SourceError(
            file_diagnostic(
                file,
                f"{kind} is too large: {size} bytes",
                f"at most {MAX_FILE_BYTES} bytes (5 MiB)",
            )
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        line, column = _position(data, nul)
        raise SourceError(
            file_diagnostic(
                file,
                f"{kind} is a binary file (it contains NUL bytes)",
                "UTF-8 text",
                line=line,
                column=column,
            )
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _position(data, exc.start)
        raise SourceError(
            file_diagnostic(
                file,
                f"{kind} is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                "UTF-8 text",
                line=line,
                column=column,
            )
        ) from None
    return text.removeprefix("\ufeff")


# ---- YAML -> value + locations --------------------------------------------------------------

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


class _Resolver(yaml.resolver.Resolver):
    """YAML's implicit typing, except that dates stay strings (JSON has no date type)."""

    yaml_implicit_resolvers = {  # noqa: RUF012 - PyYAML's own class-level table
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
    }


class _PyEvents(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """PyYAML's pure-Python event parser, used when libyaml is not installed."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)


def _event_parser(text: str) -> tuple[Any, bool]:
    """An event parser for `text`, and whether its error positions count UTF-8 bytes."""
    try:
        from yaml._yaml import CParser  # libyaml: the same events, ~20x faster
    except ImportError:  # pragma: no cover - depends on how PyYAML was built
        return _PyEvents(text), False
    return CParser(text), True


class _ComposeError(Exception):
    def __init__(self, mark: object, message: str, allowed: str = "") -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message
        self.allowed = allowed


def _mark(mark: object) -> yaml.Mark | None:
    # libyaml's marks carry the same line/column attributes as PyYAML's.
    return cast("yaml.Mark | None", mark)


def _compose_events(parser: Any, *, kind: str) -> Node | None:
    """Build the node graph from parser events without recursion, so that nesting depth is
    checked (and refused) instead of exhausting the stack."""
    resolver = _Resolver()
    anchors: dict[str, Node] = {}
    open_nodes: list[Node] = []
    pending_keys: list[Node | None] = []
    root: Node | None = None
    documents = 0

    def attach(node: Node) -> None:
        nonlocal root
        if not open_nodes:
            root = node
            return
        parent = open_nodes[-1]
        if isinstance(parent, SequenceNode):
            parent.value.append(node)
        elif pending_keys[-1] is None:
            pending_keys[-1] = node
        else:
            parent.value.append((pending_keys[-1], node))
            pending_keys[-1] = None

    while True:
        event = parser.get_event()
        if isinstance(event, yaml.StreamEndEvent):
            return root
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise _ComposeError(
                    event.start_mark,
                    "invalid YAML: more than one document in the file",
                    "one YAML document per file",
                )
        elif isinstance(event, yaml.AliasEvent):
            target = anchors.get(str(event.anchor))
            if target is None:
                raise _ComposeError(
                    event.start_mark, f"invalid YAML: unknown alias *{event.anchor}"
                )
            attach(target)
        elif isinstance(event, yaml.ScalarEvent):
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolver.resolve(ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
            node: Node = ScalarNode(
                tag, event.value, _mark(event.start_mark), _mark(event.end_mark), style=event.style
            )
            if event.anchor is not None:
                anchors[event.anchor] = node
            attach(node)
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if len(open_nodes) >= MAX_DEPTH:
                raise _ComposeError(
                    event.start_mark, f"{kind} is nested too deeply", f"at most {MAX_DEPTH} levels"
                )
            is_seq = isinstance(event, yaml.SequenceStartEvent)
            node_class = SequenceNode if is_seq else MappingNode
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolver.resolve(node_class, None, event.implicit)  # type: ignore[no-untyped-call]
            node = node_class(tag, [], _mark(event.start_mark), None, flow_style=event.flow_style)
            if event.anchor is not None:
                anchors[event.anchor] = node
            attach(node)
            open_nodes.append(node)
            pending_keys.append(None)
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            open_nodes.pop().end_mark = _mark(event.end_mark)
            pending_keys.pop()


def _tag_text(tag: str) -> str:
    prefix = "tag:yaml.org,2002:"
    return "!!" + tag.removeprefix(prefix) if tag.startswith(prefix) else tag


def _location(file: str, mark: Any) -> Location:
    if mark is None:
        return Location(file=file, line=1, column=1)
    return Location(file=file, line=mark.line + 1, column=mark.column + 1)


def _offset_position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _char_at(text: str, mark: yaml.Mark | None) -> str:
    if mark is None:
        return ""
    lines = text.split("\n", mark.line + 1)
    if mark.line >= len(lines):
        return ""
    line = lines[mark.line]
    return line[mark.column] if mark.column < len(line) else ""


def _yaml_error_message(exc: yaml.MarkedYAMLError, text: str) -> str:
    problem = exc.problem or exc.context or "syntax error"
    if "\\t" in problem or "'\\t'" in problem or _char_at(text, exc.problem_mark) == "\t":
        return "invalid YAML: a tab character here (YAML indents with spaces only)"
    message = f"invalid YAML: {problem}"
    if exc.context and exc.problem and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    return message


def _compose(file: str, text: str, *, kind: str) -> Node | None:
    return _parse_events(file, text, kind, lambda parser: _compose_events(parser, kind=kind))


def _parse_events(file: str, text: str, kind: str, consume: Callable[[Any], _T]) -> _T:
    """`consume(parser)` for an event parser of `text`, its YAML errors as SourceErrors."""
    byte_positions = False
    try:
        parser, byte_positions = _event_parser(text)
        return consume(parser)
    except yaml.reader.ReaderError as exc:
        offset = exc.position
        if byte_positions:
            offset = len(text.encode("utf-8")[:offset].decode("utf-8", errors="ignore"))
        line, column = _offset_position(text, offset)
        bad = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        raise SourceError(
            file_diagnostic(
                file,
                f"{kind} contains a control character ({bad})",
                "printable Unicode text",
                line=line,
                column=column,
            )
        ) from None
    except _ComposeError as exc:
        loc = _location(file, exc.mark)
        raise SourceError(
            file_diagnostic(file, exc.message, exc.allowed, line=loc.line, column=loc.column)
        ) from None
    except yaml.MarkedYAMLError as exc:
        loc = _location(file, exc.problem_mark or exc.context_mark)
        raise SourceError(
            file_diagnostic(file, _yaml_error_message(exc, text), line=loc.line, column=loc.column)
        ) from None
    except yaml.YAMLError as exc:
        raise SourceError(file_diagnostic(file, f"invalid YAML: {exc}")) from None


class _Builder:
    """Turns a composed node graph into values, recording locations and problems."""

    def __init__(self, file: str, *, record_locations: bool = True) -> None:
        self.file = file
        self.values: dict[DocPath, Location] = {}
        self.keys: dict[DocPath, Location] = {}
        self.problems: list[Diagnostic] = []
        self._count = 0
        self._active: set[int] = set()
        self._record = record_locations

    def _problem(self, node: Node, path: DocPath, message: str, allowed: str = "") -> None:
        loc = _location(self.file, node.start_mark)
        self.problems.append(
            Diagnostic(
                file=self.file,
                line=loc.line,
                column=loc.column,
                path=render_path(path),
                message=message,
                allowed=allowed,
            )
        )

    def build(self, node: Node, path: DocPath) -> Any:
        self._count += 1
        if self._count > MAX_NODES:
            loc = _location(self.file, node.start_mark)
            raise SourceError(
                file_diagnostic(
                    self.file,
                    "YAML aliases expand to too many values",
                    f"at most {MAX_NODES} values after expanding anchors",
                    line=loc.line,
                    column=loc.column,
                )
            )
        if len(path) > MAX_DEPTH:
            loc = _location(self.file, node.start_mark)
            raise SourceError(
                file_diagnostic(
                    self.file,
                    "document is nested too deeply (through aliases)",
                    f"at most {MAX_DEPTH} levels",
                    line=loc.line,
                    column=loc.column,
                )
            )
        if id(node) in self._active:
            loc = _location(self.file, node.start_mark)
            raise SourceError(
                file_diagnostic(
                    self.file,
                    "YAML alias refers to itself",
                    "aliases of complete, non-recursive values",
                    line=loc.line,
                    column=loc.column,
                )
            )
        if self._record:
            self.values[path] = _location(self.file, node.start_mark)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                if node.tag != _SEQ:
                    self._problem(
                        node,
                        path,
                        f"unsupported YAML tag {_tag_text(node.tag)}",
                        "plain YAML lists",
                    )
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self._active.discard(id(node))
        self._problem(node, path, "unsupported YAML node")
        return None

    def _scalar(self, node: ScalarNode, path: DocPath) -> Any:
        if node.tag not in _SCALAR_TAGS:
            if node.tag == "tag:yaml.org,2002:merge":
                self._problem(
                    node,
                    path,
                    "YAML merge keys (<<) are not supported",
                    "write the fields out, or use defaults",
                )
            else:
                self._problem(
                    node,
                    path,
                    f"unsupported YAML tag {_tag_text(node.tag)}",
                    "strings, numbers, booleans, null, mappings and lists",
                )
            return node.value
        constructor = yaml.SafeLoader.yaml_constructors[node.tag]
        return constructor(_SCALAR_CONSTRUCTOR, node)

    def _mapping(self, node: MappingNode, path: DocPath) -> dict[str, Any]:
        if node.tag != _MAP:
            self._problem(
                node, path, f"unsupported YAML tag {_tag_text(node.tag)}", "plain YAML mappings"
            )
        out: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                if isinstance(key_node, ScalarNode):
                    self._problem(
                        key_node,
                        path,
                        "YAML merge keys (<<) are not supported",
                        "write the fields out, or use defaults",
                    )
                else:
                    self._problem(key_node, path, "a mapping key must be a plain string")
                continue
            # Keys are taken as written: `123:` names "123", `on:` names "on".
            key = str(key_node.value)
            child = (*path, key)
            if key in first_seen:
                self._problem(
                    key_node,
                    child,
                    f'duplicate key "{key}" (first at line {first_seen[key]})',
                    "each key once per mapping",
                )
                continue
            first_seen[key] = key_node.start_mark.line + 1
            if self._record:
                self.keys[child] = _location(self.file, key_node.start_mark)
            out[key] = self.build(value_node, child)
        return out


class _ScalarConstructor(yaml.constructor.SafeConstructor):
    pass


_SCALAR_CONSTRUCTOR = _ScalarConstructor()


def _location_maker() -> Callable[[str, int, int], Location]:
    """A constructor of `Location`s at half the cost of the dataclass's own, which checks the
    frozen fields one keyword at a time: a large manifest has a location for every node.
    It fills the same three slots, so the objects are the same; should `Location` ever gain
    anything more, the ordinary constructor is used."""
    fields = getattr(Location, "__dataclass_fields__", {})
    if hasattr(Location, "__post_init__") or list(fields) != ["file", "line", "column"]:
        return lambda file, line, column: Location(file=file, line=line, column=column)
    new = object.__new__
    slots = vars(Location)  # the slot descriptors
    set_file, set_line, set_column = (slots[name].__set__ for name in fields)

    def make(file: str, line: int, column: int) -> Location:
        location: Location = new(Location)
        set_file(location, file)
        set_line(location, line)
        set_column(location, column)
        return location

    return make


_new_location = _location_maker()


class _NotPlain(Exception):
    """The fast path met something only the careful path handles."""


def _fast_document(file: str, parser: Any, kind: str) -> Document | None:
    """The document straight from parser events in one pass, or None if it holds anything to
    report or to expand (anchors, aliases, tags, merge or duplicate keys, too many values).

    Such documents are rare; they are parsed again by `_compose` and `_Builder`, whose
    results this pass reproduces exactly for every other document: values and locations in
    the same order, YAML errors raised at the same event.
    """
    try:
        return _fast_events(file, parser, kind)
    except _NotPlain:
        return None


def _fast_events(file: str, parser: Any, kind: str) -> Document:
    resolve = _Resolver().resolve
    plain_tags: dict[str, str] = {}  # plain scalar text -> its resolved tag
    constructed: dict[tuple[str, str], Any] = {}  # (tag, text) -> value, for non-strings
    constructors = yaml.SafeLoader.yaml_constructors
    values: dict[DocPath, Location] = {}
    keys: dict[DocPath, Location] = {}
    # The innermost open container, its path, and (in a mapping) the path of the entry whose
    # value comes next, None while its key is still to come; outer ones wait on `stack`.
    container: Any = None
    path: DocPath = ()
    entry: DocPath | None = None
    in_mapping = False
    stack: list[tuple[Any, DocPath, DocPath | None, bool]] = []
    root: Any = None
    has_root = False
    count = 0
    documents = 0
    get_event = parser.get_event
    new_location = _new_location
    scalar_event = yaml.ScalarEvent
    mapping_start = yaml.MappingStartEvent
    sequence_start = yaml.SequenceStartEvent
    mapping_end = yaml.MappingEndEvent
    sequence_end = yaml.SequenceEndEvent

    while True:
        event = get_event()
        event_type = type(event)
        if event_type is scalar_event:
            if event.anchor is not None:
                raise _NotPlain
            text_value: str = event.value
            tag = event.tag
            if tag is None or tag == "!":
                if event.implicit[0]:
                    tag = plain_tags.get(text_value)
                    if tag is None:
                        tag = resolve(ScalarNode, text_value, event.implicit)  # type: ignore[no-untyped-call]
                        plain_tags[text_value] = tag
                else:
                    tag = _STR
            mark = event.start_mark
            if in_mapping and entry is None:
                # A mapping key, taken as written.
                if tag == "tag:yaml.org,2002:merge" or text_value in container:
                    raise _NotPlain
                entry = (*path, text_value)
                keys[entry] = new_location(file, mark.line + 1, mark.column + 1)
                continue
            count += 1
            if count > MAX_NODES or tag not in _SCALAR_TAGS:
                raise _NotPlain
            if tag == _STR:
                value: Any = text_value
            else:
                cache_key = (tag, text_value)
                if cache_key in constructed:
                    value = constructed[cache_key]
                else:
                    value = constructors[tag](
                        _SCALAR_CONSTRUCTOR, ScalarNode(tag, text_value, mark, mark)
                    )
                    constructed[cache_key] = value
            if in_mapping:
                container[entry[-1]] = value  # type: ignore[index]
                values[entry] = new_location(  # type: ignore[index]
                    file, mark.line + 1, mark.column + 1
                )
                entry = None
            elif container is not None:
                item_path: DocPath = (*path, len(container))
                values[item_path] = new_location(file, mark.line + 1, mark.column + 1)
                container.append(value)
            else:
                root, has_root = value, True
                values[()] = new_location(file, mark.line + 1, mark.column + 1)
        elif event_type is mapping_start or event_type is sequence_start:
            if len(stack) >= MAX_DEPTH:
                raise _ComposeError(
                    event.start_mark, f"{kind} is nested too deeply", f"at most {MAX_DEPTH} levels"
                )
            if event.anchor is not None:
                raise _NotPlain
            tag = event.tag
            is_seq = event_type is sequence_start
            if tag is not None and tag != "!" and tag != (_SEQ if is_seq else _MAP):
                raise _NotPlain
            if in_mapping and entry is None:
                raise _NotPlain  # a mapping or list as a mapping key
            count += 1
            if count > MAX_NODES:
                raise _NotPlain
            mark = event.start_mark
            child: Any = [] if is_seq else {}
            if in_mapping:
                child_path: DocPath = entry  # type: ignore[assignment]
                container[child_path[-1]] = child
            elif container is not None:
                child_path = (*path, len(container))
                container.append(child)
            else:
                child_path = ()
                root, has_root = child, True
            values[child_path] = new_location(file, mark.line + 1, mark.column + 1)
            stack.append((container, path, entry, in_mapping))
            container, path, entry, in_mapping = child, child_path, None, not is_seq
        elif event_type is mapping_end or event_type is sequence_end:
            container, path, entry, in_mapping = stack.pop()
            entry = None  # the entry whose value just ended
        elif event_type is yaml.AliasEvent:
            raise _NotPlain
        elif event_type is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _ComposeError(
                    event.start_mark,
                    "invalid YAML: more than one document in the file",
                    "one YAML document per file",
                )
        elif event_type is yaml.StreamEndEvent:
            break

    if not has_root:
        return Document(file=file, value=None)
    return Document(file=file, value=root, values=values, keys=keys)


def parse_yaml(
    file: str, text: str, *, kind: str = "manifest"
) -> tuple[Document, list[Diagnostic]]:
    """Parse one YAML document. Fatal problems raise SourceError; others are returned."""
    fast = _parse_events(file, text, kind, lambda parser: _fast_document(file, parser, kind))
    if fast is not None:
        return fast, []
    # The document has something to report or needs aliases expanded: take the careful path.
    node = _compose(file, text, kind=kind)
    if node is None:
        return Document(file=file, value=None), []
    builder = _Builder(file)
    value = builder.build(node, ())
    doc = Document(file=file, value=value, values=builder.values, keys=builder.keys)
    return doc, builder.problems


# ---- JSON -> value + locations --------------------------------------------------------------


def _max_depth(value: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse_json(
    file: str, text: str, *, kind: str = "policy file"
) -> tuple[Document, list[Diagnostic]]:
    """Parse a JSON document strictly; locations come from reading it again as YAML (JSON is
    nearly YAML), best effort: where that fails, the document is located at its start."""
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                duplicates.append(k)
            out[k] = v
        return out

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise SourceError(
            file_diagnostic(
                file, f"{kind} is not valid JSON: {exc.msg}", line=exc.lineno, column=exc.colno
            )
        ) from None
    except ValueError as exc:
        raise SourceError(file_diagnostic(file, f"{kind} is not valid JSON: {exc}")) from None
    except RecursionError:
        raise SourceError(
            file_diagnostic(file, f"{kind} is nested too deeply", f"at most {MAX_DEPTH} levels")
        ) from None
    if _max_depth(value) > MAX_DEPTH:
        raise SourceError(
            file_diagnostic(file, f"{kind} is nested too deeply", f"at most {MAX_DEPTH} levels")
        )
    # Tabs are legal whitespace in JSON but not in YAML; one space keeps every column.
    try:
        located, problems = parse_yaml(file, text.replace("\t", " "), kind=kind)
    except SourceError:
        located, problems = Document(file=file, value=None), []
    if duplicates and not problems:
        problems = [
            file_diagnostic(file, f'duplicate key "{k}"', "each key once per object")
            for k in dict.fromkeys(duplicates)
        ]
    # Only duplicate-key findings carry over: everything else JSON itself has judged.
    problems = [p for p in problems if p.message.startswith("duplicate key")]
    return Document(file=file, value=value, values=located.values, keys=located.keys), problems


def iter_strings(value: Any, path: DocPath) -> Iterator[tuple[DocPath, str, bool]]:
    """Every string in a JSON-shaped value: (path, text, is_mapping_key)."""
    if isinstance(value, str):
        yield path, value, False
    elif isinstance(value, dict):
        for k, v in value.items():
            yield (*path, k), k, True
            yield from iter_strings(v, (*path, k))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from iter_strings(item, (*path, i))
