"""The log query language: a Lucene-like syntax parsed with ``lark`` into a small tree.

The same tree compiles to SQL (for search, stats, top and alerts; every value a bound parameter)
and to a Python predicate (for the live tail, which filters lines before they are read back).

    status:500   status:[500 TO 599]   status:>=500   path:/api/v1/orders*
    service:agora AND NOT level:debug   "payment failed"   timeout   attrs.provider:alipay

Words without a field search the message (full text); a quoted phrase matches the words in that
order. ``AND`` is implied between terms; ``OR``, ``NOT``/``-`` and parentheses group them. A
syntax error names its position.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lark import Lark, Token, Transformer, UnexpectedInput
from lark.exceptions import UnexpectedToken, VisitError
from sqlalchemy import (
    ColumnElement,
    Double,
    and_,
    case,
    false,
    func,
    literal,
    not_,
    or_,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB

from agora.core.errors import ValidationFailed
from agora.logs.models import log_lines

TEXT_FIELDS = frozenset(
    {"service", "host", "level", "message", "method", "path", "route", "ip", "user_agent"}
    | {"request_id", "trace_id"}
)
NUMBER_FIELDS = frozenset({"status", "duration_ms", "bytes", "id"})
ATTRS_PREFIX = "attrs."
_WORD_CHARS = re.compile(r"\w+", re.UNICODE)

_GRAMMAR = r"""
    ?start: expr?
    ?expr: or_expr
    ?or_expr: and_expr (_OR and_expr)*
    ?and_expr: unary (_AND? unary)*
    ?unary: _NOT unary -> negate
          | "-" unary -> negate
          | atom
    ?atom: "(" expr ")"
         | FIELD ":" value -> field
         | value_plain -> free
    ?value: range | compare | PHRASE -> phrase | WORD -> word | "(" expr ")" -> group
    ?value_plain: PHRASE -> phrase | WORD -> word
    range: LBRACKET bound _TO bound RBRACKET
    bound: WORD | PHRASE
    compare: CMP WORD
    FIELD.3: /[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_\-]+)*(?=:)/
    CMP.2: ">=" | "<=" | ">" | "<"
    LBRACKET: "[" | "{"
    RBRACKET: "]" | "}"
    _AND.2: "AND" | "&&"
    _OR.2: "OR" | "||"
    _NOT.2: "NOT" | "!"
    _TO.2: "TO"
    PHRASE: /"(?:[^"\\]|\\.)*"/
    WORD: /(?:[^\s()"\[\]{}:\\<>=!-]|\\.)(?:[^\s()"\[\]{}\\]|\\.)*/
    %import common.WS
    %ignore WS
"""


class QuerySyntaxError(ValidationFailed):
    """The query is not valid in the log query language; ``position`` names where (0-based)."""

    code = "invalid_query"
    title = "Invalid query"


@dataclass(frozen=True)
class Term:
    """One condition: ``field`` (None for the message's full text) against a value."""

    field: str | None
    kind: Literal["word", "phrase", "range", "compare"]
    value: str
    upper: str | None = None
    op: str = "="
    include_lower: bool = True
    include_upper: bool = True
    position: int = 0


@dataclass(frozen=True)
class Not:
    """The negation of a condition."""

    operand: Node


@dataclass(frozen=True)
class BoolOp:
    """Conditions joined by ``and`` or ``or``."""

    op: Literal["and", "or"]
    operands: tuple[Node, ...]


Node = Term | Not | BoolOp


class _ToTree(Transformer[Token, Node]):
    def or_expr(self, items: list[Node]) -> Node:
        return BoolOp("or", tuple(items))

    def and_expr(self, items: list[Node]) -> Node:
        return BoolOp("and", tuple(items))

    def negate(self, items: list[Node]) -> Node:
        return Not(items[0])

    def word(self, items: list[Token]) -> Term:
        return Term(None, "word", _unescape(items[0]), position=_pos(items[0]))

    def phrase(self, items: list[Token]) -> Term:
        return Term(None, "phrase", _unescape(items[0][1:-1]), position=_pos(items[0]))

    def bound(self, items: list[Token]) -> str:
        token = items[0]
        return _unescape(token[1:-1] if token.type == "PHRASE" else token)

    def range(self, items: list[Any]) -> Term:
        low, lower, upper, high = items
        return Term(
            None, "range", lower, upper=upper,
            include_lower=low == "[", include_upper=high == "]", position=_pos(low),
        )  # fmt: skip

    def compare(self, items: list[Token]) -> Term:
        return Term(None, "compare", _unescape(items[1]), op=str(items[0]), position=_pos(items[0]))

    def group(self, items: list[Node]) -> Node:
        return items[0]

    def free(self, items: list[Node]) -> Node:
        return items[0]

    def field(self, items: list[Any]) -> Node:
        name: Token = items[0]
        return _with_field(items[1], str(name), _pos(name))


def _with_field(node: Node, name: str, position: int) -> Node:
    """Give every unfielded term under ``node`` the field ``name`` (``field:(a OR b)``)."""
    if isinstance(node, Term):
        _check_field(name, position)
        return Term(
            name, node.kind, node.value, node.upper, node.op,
            node.include_lower, node.include_upper, node.position,
        )  # fmt: skip
    if isinstance(node, Not):
        return Not(_with_field(node.operand, name, position))
    return BoolOp(node.op, tuple(_with_field(child, name, position) for child in node.operands))


def _check_field(name: str, position: int) -> None:
    if name in TEXT_FIELDS or name in NUMBER_FIELDS:
        return
    if name.startswith(ATTRS_PREFIX) and len(name) > len(ATTRS_PREFIX):
        return
    raise QuerySyntaxError(
        f"Unknown field {name!r} at position {position}.", position=position, field=name
    )


def _pos(token: Token) -> int:
    return int(token.start_pos or 0)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


@functools.cache
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", maybe_placeholders=False)


@functools.lru_cache(maxsize=1024)
def parse(query: str) -> Node | None:
    """The tree of ``query`` (None for an empty query: everything matches).

    ``QuerySyntaxError`` (422) names the position of the first thing that does not parse, or of
    a field or value that cannot be used."""
    if not query.strip():
        return None
    try:
        tree = _parser().parse(query)
    except UnexpectedInput as error:
        at_end = isinstance(error, UnexpectedToken) and error.token.type == "$END"
        position = len(query) if at_end else int(getattr(error, "pos_in_stream", None) or 0)
        raise QuerySyntaxError(
            f"The query does not parse at position {position}: {_context(query, position)!r}.",
            position=position,
        ) from None
    try:
        node: Node = _ToTree().transform(tree)
    except VisitError as error:
        if isinstance(error.orig_exc, QuerySyntaxError):
            raise error.orig_exc from None
        raise
    _check_values(node)
    return node


def _context(query: str, position: int) -> str:
    return query[position : position + 20] or "end of query"


def _check_values(node: Node) -> None:
    if isinstance(node, Not):
        _check_values(node.operand)
    elif isinstance(node, BoolOp):
        for child in node.operands:
            _check_values(child)
    elif node.kind in ("range", "compare") and node.field is None:
        raise QuerySyntaxError(
            f"A range needs a field, at position {node.position}.", position=node.position
        )
    elif node.field in NUMBER_FIELDS:
        for value in (node.value, node.upper):
            if value is not None and value != "*" and _number(value) is None:
                raise QuerySyntaxError(
                    f"{node.field} takes a number, not {value!r} (position {node.position}).",
                    position=node.position,
                )


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


# --- SQL -------------------------------------------------------------------------------------


def to_sql(node: Node | None) -> ColumnElement[bool]:
    """The condition on ``log_lines`` that ``node`` means, every value a bound parameter."""
    if node is None:
        return true()
    if isinstance(node, Not):
        # A line without the field matches ``NOT field:x``: NULL counts as false, not unknown.
        return not_(func.coalesce(to_sql(node.operand), false()))
    if isinstance(node, BoolOp):
        parts = [to_sql(child) for child in node.operands]
        return and_(*parts) if node.op == "and" else or_(*parts)
    return _term_sql(node)


def _term_sql(term: Term) -> ColumnElement[bool]:
    if term.field is None or term.field == "message":
        return _full_text(term)
    if term.field.startswith(ATTRS_PREFIX):
        return _attribute(term, term.field[len(ATTRS_PREFIX) :])
    column = log_lines.c[term.field]
    if term.kind in ("range", "compare"):
        return _range(term, column, numeric=term.field in NUMBER_FIELDS)
    if term.field in NUMBER_FIELDS:
        return column == float(term.value)
    value = term.value.lower() if term.field == "level" else term.value
    if term.kind == "word" and _has_wildcard(value):
        return column.like(_like_pattern(value), escape="\\")
    return column == value


def _full_text(term: Term) -> ColumnElement[bool]:
    search = log_lines.c.search
    if term.kind == "phrase":
        return search.op("@@")(func.phraseto_tsquery("simple", term.value))
    if term.kind != "word":
        raise QuerySyntaxError(
            f"The message takes words or phrases (position {term.position}).",
            position=term.position,
        )
    if _has_wildcard(term.value):
        stem = term.value.rstrip("*")
        if not stem or _has_wildcard(stem):
            return log_lines.c.message.ilike(_like_pattern(term.value, anywhere=True), escape="\\")
        quoted = "'" + stem.lower().replace("'", "''") + "':*"
        return search.op("@@")(func.to_tsquery("simple", quoted))
    return search.op("@@")(func.plainto_tsquery("simple", term.value))


def _attribute(term: Term, name: str) -> ColumnElement[bool]:
    text_value = log_lines.c.attrs.op("->>")(name)
    if term.kind in ("range", "compare"):
        return _range(term, _numeric_text(text_value), numeric=True)
    if term.kind == "word" and _has_wildcard(term.value):
        return text_value.like(_like_pattern(term.value), escape="\\")
    containments: list[ColumnElement[bool]] = [
        log_lines.c.attrs.op("@>")(literal({name: term.value}, JSONB))
    ]
    number = _number(term.value) if term.kind == "word" else None
    if number is not None:
        exact: Any = int(number) if number.is_integer() else number
        containments.append(log_lines.c.attrs.op("@>")(literal({name: exact}, JSONB)))
    if term.kind == "word" and term.value in ("true", "false"):
        containments.append(
            log_lines.c.attrs.op("@>")(literal({name: term.value == "true"}, JSONB))
        )
    return or_(*containments)


def _range(term: Term, target: Any, *, numeric: bool) -> ColumnElement[bool]:
    """``target`` within the term's range, or compared by its operator."""

    def value(raw: str) -> Any:
        return float(raw) if numeric else raw

    if term.kind == "compare":
        bound = value(term.value)
        comparisons: dict[str, ColumnElement[bool]] = {
            ">": target > bound, ">=": target >= bound, "<": target < bound, "<=": target <= bound,
        }  # fmt: skip
        return comparisons[term.op]
    conditions: list[ColumnElement[bool]] = []
    if term.value != "*":
        low = value(term.value)
        conditions.append(target >= low if term.include_lower else target > low)
    if term.upper is not None and term.upper != "*":
        high = value(term.upper)
        conditions.append(target <= high if term.include_upper else target < high)
    return and_(*conditions) if conditions else target.is_not(None)


def _numeric_text(column: Any) -> ColumnElement[float]:
    """A JSON attribute's text as a number, NULL when it is not one (never a cast error)."""
    return case(
        (column.op("~")(r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"), func.cast(column, Double)),
        else_=None,
    )


def _has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def _like_pattern(value: str, *, anywhere: bool = False) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = escaped.replace("*", "%").replace("?", "_")
    return f"%{pattern}%" if anywhere and not pattern.startswith("%") else pattern


# --- Python ----------------------------------------------------------------------------------

Line = Mapping[str, Any]
Predicate = Callable[[Line], bool]


def matcher(node: Node | None) -> Predicate:
    """A predicate telling whether a line (a mapping of its fields) matches ``node``.

    Used by the live tail; it agrees with ``to_sql`` on the lines it sees (full text is matched
    on lower-cased words, as the ``simple`` text search configuration does)."""
    if node is None:
        return lambda _: True
    if isinstance(node, Not):
        inner = matcher(node.operand)
        return lambda line: not inner(line)
    if isinstance(node, BoolOp):
        parts = [matcher(child) for child in node.operands]
        if node.op == "and":
            return lambda line: all(part(line) for part in parts)
        return lambda line: any(part(line) for part in parts)
    return _term_matcher(node)


def _term_matcher(term: Term) -> Predicate:
    if term.field is None or term.field == "message":
        return _text_matcher(term)
    field = term.field

    def value_of(line: Line) -> Any:
        if field.startswith(ATTRS_PREFIX):
            return (line.get("attrs") or {}).get(field[len(ATTRS_PREFIX) :])
        return line.get(field)

    if term.kind in ("range", "compare"):
        check = _numeric_check(term)
        return lambda line: check(value_of(line))
    wanted = term.value.lower() if field == "level" else term.value
    if term.kind == "word" and _has_wildcard(wanted):
        pattern = re.compile(
            "".join(
                ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in wanted
            ) + r"\Z", re.DOTALL,
        )  # fmt: skip
        return lambda line: (
            (value := value_of(line)) is not None and bool(pattern.match(str(value)))
        )
    return lambda line: _equal(value_of(line), wanted)


def _equal(value: Any, wanted: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return str(value).lower() == wanted
    if isinstance(value, int | float):
        number = _number(wanted)
        return number is not None and float(value) == number
    return str(value) == wanted


def _numeric_check(term: Term) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        number = _number(str(value)) if value is not None and not isinstance(value, bool) else None
        if number is None:
            return False
        if term.kind == "compare":
            bound = float(term.value)
            return {
                ">": number > bound, ">=": number >= bound,
                "<": number < bound, "<=": number <= bound,
            }[term.op]  # fmt: skip
        if term.value != "*":
            low = float(term.value)
            if number < low or (number == low and not term.include_lower):
                return False
        if term.upper is not None and term.upper != "*":
            high = float(term.upper)
            if number > high or (number == high and not term.include_upper):
                return False
        return True

    return check


def _text_matcher(term: Term) -> Predicate:
    if term.kind not in ("word", "phrase"):
        return lambda _: False
    words = [word.lower() for word in _WORD_CHARS.findall(term.value)]
    prefix = term.kind == "word" and term.value.endswith("*")

    def matches(line: Line) -> bool:
        message = line.get("message")
        if not message or not words:
            return False
        tokens = [token.lower() for token in _WORD_CHARS.findall(str(message))]
        if prefix:
            return any(token.startswith(words[0]) for token in tokens)
        if term.kind == "word":
            return all(word in tokens for word in words)
        span = len(words)
        return any(tokens[i : i + span] == words for i in range(len(tokens) - span + 1))

    return matches
