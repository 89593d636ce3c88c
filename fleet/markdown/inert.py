"""Whether a body Fleetwarden is about to post is inert on every kind of forge:
:func:`inert`, the last check of :func:`fleet.markdown.defuse.defuse` and of every post.

One body, whatever forge it goes to, passes both readings: GitHub's and Gitea's
(:func:`fleet.markdown.rendered.gfm_inert`: cmark-gfm and their reference patterns) and
GitLab's (:func:`fleet.markdown.gitlab_rendered.gitlab_inert`: comrak, its reference
patterns, its quick actions and closing statements). What one forge reads as live, the
other may read as text; neutralising both costs the other nothing.

The run's own numbers: ``own`` are the issue's and, where a forge numbers pull requests
with issues (GitHub, Gitea), the pull request's; ``own_pulls`` are a GitLab run's merge
request's, which GitLab numbers apart (its issue 3 and merge request 3 are two things:
``#3`` is the issue, ``!3`` the merge request). ``None`` says there is one namespace: a
``!N`` of ``own`` is the run's own too.
"""

from __future__ import annotations

from collections.abc import Collection

from fleet.markdown.gitlab_rendered import gitlab_inert
from fleet.markdown.rendered import gfm_inert


def inert(
    markdown: str, own: Collection[int] = (), *, own_pulls: Collection[int] | None = None
) -> bool:
    """Whether ``markdown`` holds nothing live on GitHub, Gitea or GitLab but references to
    the run's own issue and pull or merge request (the module says how ``own`` and
    ``own_pulls`` name them), and leaves a ``<details>`` after it a block of its own."""
    either = own if own_pulls is None else {*own, *own_pulls}  # GitHub reads !N as Gitea's
    return gfm_inert(markdown, either) and gitlab_inert(markdown, own, own_pulls=own_pulls)
