"""Search text in English and Chinese, prepared for PostgreSQL full-text search.

PostgreSQL cannot segment Chinese (it has no spaces between words), so the application does it
with jieba, on write and on query. A product's ``search_vector`` joins two halves per field:
the English words of the text under the ``english`` configuration (stemmed: "phones" finds
"phone"), and the jieba tokens of its Chinese text under ``simple`` (kept as they are). Indexing
uses jieba's search mode, which adds the short words inside long ones (智能手机 also yields 智能
and 手机), and queries use its precise mode; so 手机 finds 华为智能手机.

jieba loads its dictionary (about a second and 60 MB) on first use; ``ensure_segmenter`` does it
once per process in a thread, off the event loop, and only once some text has Chinese in it.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

import jieba
import nh3

_CHINESE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"\w")
ALLOWED_TAGS = frozenset(
    {"p", "br", "strong", "em", "b", "i", "u", "ul", "ol", "li", "h2", "h3", "h4", "blockquote",
     "a", "img", "table", "thead", "tbody", "tr", "th", "td", "span", "code", "pre"}
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})

jieba.setLogLevel(logging.WARNING)


@dataclass(frozen=True)
class SearchText:
    """A text split for the two configurations: English words, and Chinese tokens."""

    english: str
    chinese: str

    @property
    def is_empty(self) -> bool:
        """Whether nothing searchable is left (only punctuation or spaces)."""
        return not (_WORD.search(self.english) or self.chinese)


async def ensure_segmenter(*texts: str) -> None:
    """Load jieba's dictionary once per process, in a thread, the first time one of ``texts``
    has Chinese to split: the dictionary takes about 60 MB, which a process that only ever sees
    other scripts never spends."""
    if not jieba.dt.initialized and any(_CHINESE.search(text) for text in texts):
        await asyncio.to_thread(jieba.initialize)


def for_index(text: str) -> SearchText:
    """Split a product's text for indexing (jieba search mode: long words and their parts)."""
    chinese = " ".join(
        token for run in _CHINESE.findall(text) for token in jieba.cut_for_search(run)
    )
    return SearchText(_CHINESE.sub(" ", text), chinese)


def for_query(text: str) -> SearchText:
    """Split a search query (jieba precise mode: the words the buyer meant)."""
    chinese = " ".join(token for run in _CHINESE.findall(text) for token in jieba.cut(run))
    return SearchText(_CHINESE.sub(" ", text), chinese)


def sanitise_html(description: str) -> str:
    """Rich text made harmless: no scripts, no event handlers, no ``javascript:`` URLs."""
    return nh3.clean(
        description,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
    )


def plain_text(description: str) -> str:
    """The words of an HTML description, without markup, for the search index."""
    return html.unescape(nh3.clean(description, tags=set()))


def attribute_text(values: Iterable[object]) -> str:
    """Variant attribute values as searchable words ("red", "256GB" ...)."""
    return " ".join(str(value) for value in values if not isinstance(value, bool))
