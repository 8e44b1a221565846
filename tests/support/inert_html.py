"""Checks that HTML built from hostile input stays inert: parsed as a browser would, the input is text, never markup.

A string comparison ("no ``<script`` in the page") misses an attribute that escapes its quotes; parsing the
page finds every element and attribute the input could have smuggled in.
"""

from __future__ import annotations

from html.parser import HTMLParser

ACTIVE_TAGS = {"script", "img", "svg", "iframe", "object", "embed", "style", "link", "meta", "base", "form"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def assert_inert(html: str, shown: list[str], allowed_tags: set[str] = frozenset(),
                 allowed_handlers: dict[str, str] | None = None) -> _Page:
    """No element the page's own markup does not use (``allowed_tags``), no event handler but the page's own
    (``allowed_handlers``: attribute to its exact value), no ``javascript:`` link; each of ``shown`` is in the
    page's text, verbatim."""
    page = parse(html)
    handlers = allowed_handlers or {}
    for tag, attrs in page.elements:
        assert tag not in ACTIVE_TAGS - set(allowed_tags), (tag, attrs)
        for name, value in attrs.items():
            assert not name.startswith("on") or handlers.get(name) == value, (tag, name, value)
            assert not (value or "").strip().lower().startswith("javascript:"), (tag, name, value)
    text = "".join(page.text)
    missing = [value for value in shown if value not in text]
    assert not missing, f"not shown as text: {missing}"
    return page


def hrefs(html: str) -> list[str]:
    return [attrs["href"] for tag, attrs in parse(html).elements if tag == "a" and attrs.get("href")]
