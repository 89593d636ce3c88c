"""An agent that plants programs in its own git repository's config, for the tests of
what Fleetwarden runs in an agent's workdir — standalone, standard library only.

Run in a repository (its working directory) as ``hostile_git.py MARKERS TAG``, or call
:func:`plant`. It writes ``evil.sh`` and makes the repository's config run it every way a
config can: ``core.fsmonitor``, every hook through ``core.hooksPath``, a clean/smudge/
process filter on every file (``.gitattributes``), ``diff.external``, a textconv driver,
``core.pager``, ``core.sshCommand``, and more of the same through ``include.path`` and
``includeIf``. Then it touches one tracked file (so that a ``git status`` must read it,
through the filter) and changes another. Whenever git runs ``evil.sh``, it writes a marker
file into ``MARKERS`` (who it ran as, in which namespaces) and leaves a process behind
whose command line holds ``TAG``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HOOKS = (
    "pre-commit",
    "post-checkout",
    "post-index-change",
    "pre-auto-gc",
    "reference-transaction",
    "post-rewrite",
    "fsmonitor-watchman",
)
KINDS = ("fsmonitor", "hook", "filter", "diff", "textconv", "pager", "ssh", "included")

EVIL = """\
#!/bin/sh
{{ echo "$1"; id; grep -E '^(Uid|CapEff|NSpid)' /proc/self/status; }} > "{markers}/$1.$$" 2>&1
setsid sh -c 'sleep 300' {tag} </dev/null >/dev/null 2>&1 &
case "$1" in filter) cat ;; esac
exit 0
"""


def init_repo(repo: Path) -> str:
    """Make ``repo`` a git repository with ``a.txt`` and ``b.txt`` in one commit; its full
    HEAD. (Run by the test, before any config is planted.)"""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(repo),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "a.txt").write_text("one\n")
    (repo / "b.txt").write_text("two\n")
    for args in (["init", "-q"], ["add", "a.txt", "b.txt"], ["commit", "-qm", "one"]):
        subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, timeout=30)
    done = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], env=env, check=True, capture_output=True
    )
    return done.stdout.decode().strip()


def leftovers(tag: str) -> list[int]:
    """The pids of the processes ``evil.sh`` left, found by ``tag`` in their command line."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if tag.encode() in fh.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def plant(repo: Path, markers: Path, tag: str) -> None:
    """Arm ``repo`` (a git repository with ``a.txt`` and ``b.txt`` committed)."""
    evil = repo / "evil.sh"
    evil.write_text(EVIL.format(markers=markers, tag=tag))
    evil.chmod(0o755)
    hooks = repo / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in HOOKS:
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\nexec {evil} hook\n")
        hook.chmod(0o755)
    (repo / ".gitattributes").write_text("* filter=evil diff=evil\n*.txt filter=included\n")
    (repo / "extra.cfg").write_text(
        f'[filter "included"]\n\tclean = {evil} included\n\tsmudge = {evil} included\n'
        f"\trequired = true\n[core]\n\tfsmonitor = {evil} included\n"
    )
    git_dir = repo / ".git"
    if git_dir.is_file():  # a submodule or a linked worktree: ``gitdir: …``
        git_dir = repo / git_dir.read_text().removeprefix("gitdir:").strip()
    with open(git_dir / "config", "a", encoding="utf-8") as config:
        config.write(
            f"[core]\n\tfsmonitor = {evil} fsmonitor\n\thooksPath = {hooks}\n"
            f"\tpager = {evil} pager\n\tsshCommand = {evil} ssh\n\tuntrackedCache = true\n"
            f'[filter "evil"]\n\tclean = {evil} filter\n\tsmudge = {evil} filter\n'
            f"\tprocess = {evil} filter\n"
            f'[diff]\n\texternal = {evil} diff\n[diff "evil"]\n\ttextconv = {evil} textconv\n'
            f"[include]\n\tpath = {repo / 'extra.cfg'}\n"
            f'[includeIf "gitdir:{repo}/"]\n\tpath = {repo / "extra.cfg"}\n'
        )
    os.utime(repo / "a.txt", (1_000_000_000, 1_000_000_000))  # same content, stat changed
    with open(repo / "b.txt", "a", encoding="utf-8") as changed:
        changed.write("changed by the agent\n")


if __name__ == "__main__":
    plant(Path.cwd(), Path(sys.argv[1]), sys.argv[2])
    print("planted", flush=True)
