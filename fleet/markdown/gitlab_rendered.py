"""What GitLab makes of a body Fleetwarden is about to post: :func:`gitlab_inert`, the check
:func:`fleet.markdown.defuse.defuse` holds its work to beside GitHub's
(:mod:`fleet.markdown.rendered`).

GitLab renders markdown with comrak, through its ``gitlab-glfm-markdown`` gem, then applies
its reference filters to each text node outside ``pre``, ``code`` and ``a`` (and to each
link whose address is one reference). Here the body is rendered by comrak too (PyPI
``comrak``, the Rust library's binding) with GitLab's options as far as the binding has
them (gitlabhq's ``lib/banzai/filter/markdown_engines/glfm_markdown.rb``): alerts,
autolinks (relaxed), CJK-friendly emphasis, description lists, escaped characters kept
apart, footnotes, full info strings, heading anchors (``user-content-``), math in code and
in dollars, ``>>>`` quotes, strikethrough, tables, task lists (relaxed, in tables too),
wiki links, raw HTML kept (so any shows). The HTML is then read as GitLab's filters read
it: :mod:`fleet.markdown.glfm`'s references and mentions in each text node, a link to an
issue or to one reference. Before any of it, the text as written is read for what GitLab
takes from it unrendered (:mod:`fleet.markdown.gitlab_raw`): a quick action, a closing
statement naming another issue.

What the check cannot see:

* options the binding lacks: ``only_escape_chars`` (GitLab keeps only its reference
  characters apart when escaped; comrak here keeps every escaped character apart, so a
  span of any other is read back into its text), ``placeholder_detection`` (``%{…}``
  placeholders, read as milestones here), ``header_accessibility`` and
  ``inapplicable_tasks`` (``[~]`` task items);
* GitLab's filters that run on the HTML besides its references: its own autolinking,
  inline diffs, emoji, front matter, math and diagram rendering, the sanitizer — none
  of them makes a reference, a mention or a command; a commit's SHA (``9ba12248``) and
  a range of them are links GitLab makes, and are left as they are;
* which references resolve: GitLab links ``x#5`` only if project ``x`` and its issue 5
  exist, ``~bug`` only if the label does, ``@name`` only if someone has the name, and a
  web address only on its own host; every one is taken for live here;
* an administrator's own ``issue_closing_pattern``, an external tracker's references
  (``JIRA-123``), and the quick actions a newer GitLab may add under a name with other
  characters than letters, digits and ``_``.
"""

from __future__ import annotations

from collections.abc import Collection

import comrak

from fleet.markdown import glfm
from fleet.markdown.gitlab_raw import closings, quick_actions
from fleet.markdown.live_markdown import to_issue
from fleet.markdown.rendered import HtmlReader, inert_as_rendered, read_html


def _options() -> tuple[comrak.ExtensionOptions, comrak.ParseOptions, comrak.RenderOptions]:
    """GitLab's options for comrak, as far as the binding has them (the module says which)."""
    extension = comrak.ExtensionOptions()
    for name in (
        "alerts", "autolink", "cjk_friendly_emphasis", "description_lists", "footnotes",
        "math_code", "math_dollars", "multiline_block_quotes", "strikethrough", "table",
        "tasklist", "wikilinks_title_before_pipe",
    ):  # fmt: skip
        setattr(extension, name, True)
    extension.tagfilter = False
    extension.header_id_prefix = "user-content-"
    parse = comrak.ParseOptions()
    parse.relaxed_autolinks = True
    parse.relaxed_tasklist_matching = True
    parse.tasklist_in_table = True
    parse.smart = False
    parse.escaped_char_spans = True
    render = comrak.RenderOptions()
    for name in ("escaped_char_spans", "full_info_string", "github_pre_lang"):
        setattr(render, name, True)
    render.tasklist_classes = True
    render.sourcepos = True
    render.hardbreaks = False
    render.unsafe_ = True
    return extension, parse, render


_EXTENSION, _PARSE, _RENDER = _options()


def gitlab_html(markdown: str) -> str:
    """``markdown`` as GitLab's comrak renders it, raw HTML kept."""
    return comrak.render_markdown(markdown, _EXTENSION, _PARSE, _RENDER)


def gitlab_inert(
    markdown: str, own: Collection[int] = (), *, own_pulls: Collection[int] | None = None
) -> bool:
    """Whether ``markdown``, posted on GitLab, runs no quick action, closes no other issue,
    and renders nothing live but references to ``own`` (issues) and ``own_pulls`` (merge
    requests; ``None``: ``own``), and leaves a ``<details>`` after it a block of its own."""
    if quick_actions(markdown) or closings(markdown, own):
        return False
    return inert_as_rendered(
        markdown, gitlab_html, lambda html: read_html(_Reader(own, own_pulls), html)
    )


def gitlab_live(
    markdown: str, own: Collection[int] = (), *, own_pulls: Collection[int] | None = None
) -> list[str]:
    """What :func:`gitlab_inert` finds live in ``markdown``, said in a few words each (for a
    test's or a log's message)."""
    found = [f"a quick action ({line[:40]})" for line in quick_actions(markdown)]
    found += [f"a closing statement ({line[:40]})" for line in closings(markdown, own)]
    read = read_html(_Reader(own, own_pulls), gitlab_html(markdown))
    return found + (["unreadable HTML"] if read is None else read.live)


class _Reader(HtmlReader):
    """Reads comrak's HTML as GitLab's reference filters do: each text node whole (an
    escaped reference character, kept apart in a span of its own, ends one)."""

    def __init__(self, own: Collection[int], pulls: Collection[int] | None) -> None:
        super().__init__()
        self.own = own
        self.pulls = pulls
        self.node: list[str] = []  # the text node being read
        self.escaped = False  # in a span of one escaped character

    def link(self, href: str) -> str | None:
        return "a link to an issue or a reference" if to_issue(href) else None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "span" and "data-escaped-char" in dict(attrs):
            self.escaped = True
            self.stack.append(tag)
            return
        super().handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self.escaped and self.stack and self.stack[-1] == tag:
            self.stack.pop()
            self.escaped = False
            return
        super().handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self.escaped and data in glfm.REFERENCE_CHARS:
            self.boundary()  # GitLab keeps it apart: it starts nothing, ends what was before
            return
        self.node.append(data)

    def boundary(self) -> None:
        text = "".join(self.node)
        self.node = []
        if text and not self.quiet:
            self.live.extend(glfm.live(text, self.own, self.pulls))

    def close(self) -> None:
        super().close()
        self.boundary()
