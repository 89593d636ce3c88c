"""Tags as a reader sees them: which elements are hidden with all they hold
(:func:`hides`), which have no end (:data:`VOID_TAGS`), and a tag rebuilt with only what a
reader follows of it (:func:`rebuilt`)."""

from __future__ import annotations

import re
from html import escape
from typing import Final

HIDING_TAGS: Final = frozenset(
    {"script", "style", "template", "noscript", "head", "title", "iframe", "rp"}
)  # ``rp``: a ruby's fallback, which a browser that reads ruby never shows
VOID_TAGS: Final = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param"}
    | {"source", "track", "wbr"}
)
KEPT_ATTRIBUTES: Final = ("href", "src")
_CSS_COMMENT: Final = re.compile(r"/\*.*?(?:\*/|$)", re.DOTALL)
_HIDING_STYLE: Final = re.compile(
    r"(?:^|;)(?:display:none|visibility:(?:hidden|collapse)|content-visibility:hidden"
    r"|opacity:(?:0+\.?0*|\.0+)%?|font-size:(?:0+\.?0*|\.0+)(?:[a-z]+|%)?|color:transparent)"
    r"(?:!important)?(?:;|$)"
)
_TAG_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


def hides(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    """Whether an element ``<tag …attrs>`` is hidden from readers, and all it holds."""
    if tag in HIDING_TAGS:
        return True
    for name, value in attrs:
        if name == "hidden":
            return True
        if name == "style" and value:
            style = _CSS_COMMENT.sub("", value.casefold())
            style = "".join(style.split())
            if "\\" in style or _HIDING_STYLE.search(style):
                return True
    return False


def rebuilt(tag: str, attrs: list[tuple[str, str | None]], close: str = "") -> str:
    """``<tag>`` with only its ``href`` and ``src``: no other attribute is seen. A tag
    whose name no markup has (``<b<!--…>`` is one to a browser) is not shown at all."""
    if not _TAG_NAME.fullmatch(tag, 0, len(tag)):
        return ""
    kept = "".join(
        f' {name}="{escape(value)}"' for name, value in attrs if name in KEPT_ATTRIBUTES and value
    )
    return f"<{tag}{kept}{close}>"
