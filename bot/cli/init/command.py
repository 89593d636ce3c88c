"""``fleetwarden init [DIR] [--preset solo|pair|forge|pipeline]``: write a preset's config and
roster file into DIR (default: the current directory), and for a preset on a repository
with no ``--repo-url``, a git repository ``repo`` beside them with one commit.

Nothing is asked that has a default: on a terminal (stdin a tty) the preset, and a forge's
kind, repository and login, are asked with their defaults shown (Enter takes them); without
one, nothing is asked. An existing file or directory it would write is never overwritten:
nothing is written, and the refusal names it and how to choose another DIR.

The folder is Fleetwarden's own or nothing is written (:mod:`fleet.owned_places`): DIR, or
a folder above it, that another user owns or that its group or others may write (a sticky
``/tmp`` above it excepted) is refused, naming the owner or the mode and the fix — that
user could swap the config for one of their own. Each file is made whole from the folder's
descriptor and never over anything there, a link included. A url that ``check-config``
would refuse — one holding a credential above all — is refused with its words, before
anything is written: a credential belongs in the variable ``token_env`` names.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from bot.cli.init.presets import (
    CONFIG_NAME,
    DEFAULT_APIS,
    DEFAULT_PRESET,
    FORGE_KINDS,
    PRESETS,
    REPO_DIR,
    Answers,
    Preset,
    UnknownPreset,
    described,
    forge_kind_named,
    makes_repo,
    preset_named,
    render,
    url_problems,
)
from fleet.owned_places import not_ours, stat_problem
from fleet.private_files import create_whole

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
README = "# app\n\nThe repository Fleetwarden's agents work on, made by `fleetwarden init`.\n"
MAKEFILE = "test:\n\t@echo 'no tests yet: make test runs them'\n"
GIT_IDENTITY = ("-c", "user.name=Fleetwarden", "-c", "user.email=fleetwarden@localhost")

Ask = Callable[[str, str], str]
T = TypeVar("T")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir",
        nargs="?",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="where to write fleetwarden.yaml and roster.yaml (default: here; made if missing)",
    )
    lines = "; ".join(f"{p.name}: {p.what}" for p in PRESETS.values())
    parser.add_argument(
        "--preset", help=f"what to set up (default: {DEFAULT_PRESET}; asked on a terminal). {lines}"
    )
    parser.add_argument(
        "--repo-url", help="the repository the agents work on (pair, pipeline, forge)"
    )
    parser.add_argument("--forge-kind", choices=FORGE_KINDS, help="forge: github, gitea or gitlab")
    parser.add_argument("--forge-api", help="forge: its REST API root (GitHub's by default)")
    parser.add_argument("--forge-repo", help="forge: the repository, OWNER/NAME")
    parser.add_argument("--login", help="forge: the bot's login there")
    parser.add_argument("--listen", help="forge: the webhooks' address (127.0.0.1:8750)")


def main(args: argparse.Namespace, *, ask: Ask | None = None) -> int:
    """Write the preset's files; the exit status. ``ask``: how a question is put (default:
    on a terminal, ``input``; else none is)."""
    if ask is None and sys.stdin.isatty():
        ask = _input
    try:
        preset = (
            preset_named(args.preset)
            if args.preset
            else _chosen(ask, "Preset (" + ", ".join(PRESETS) + ")", DEFAULT_PRESET, preset_named)
        )
        directory: Path = args.dir
        answers = _answers(args, preset, directory, ask)
    except UnknownPreset as exc:
        print(f"fleetwarden init: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if ours := _our_code(directory):
        print(
            f"fleetwarden init: {directory} is inside Fleetwarden's own code ({ours}/); "
            "nothing was written. A config there would hide that code from its agents: "
            f"choose a directory of your own (`fleetwarden init myfleet --preset {preset.name}`)",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    if problems := url_problems(preset, answers):
        print(
            "fleetwarden init: nothing was written; check-config would refuse what these "
            "options put in the config:\n" + "\n".join(f"  {line}" for line in problems),
            file=sys.stderr,
        )
        return EXIT_USAGE
    if refused := _not_ours(directory, preset):
        print(f"fleetwarden init: {refused}", file=sys.stderr)
        return EXIT_REFUSED
    files = render(preset, answers)
    targets = [directory / name for name in files]
    if makes_repo(preset, answers):
        targets.append(directory / REPO_DIR)
    if taken := [path for path in targets if path.exists() or path.is_symlink()]:
        print(
            f"fleetwarden init: {', '.join(map(str, taken))} already "
            f"{'exists' if len(taken) == 1 else 'exist'}; nothing was written. Choose another "
            f"directory (`fleetwarden init OTHER_DIR --preset {preset.name}`), or move "
            f"{'it' if len(taken) == 1 else 'them'} away first",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    made: list[Path] = []
    try:
        made = _make_dirs(directory)
        if refused := _not_ours(directory, preset):  # one made meanwhile by someone else
            _remove(made)
            print(f"fleetwarden init: {refused}", file=sys.stderr)
            return EXIT_REFUSED
        _write(directory, files, makes_repo(preset, answers))
    except (OSError, subprocess.CalledProcessError) as exc:
        _remove(made)
        print(f"fleetwarden init: could not write {directory}: {_why(exc)}", file=sys.stderr)
        return EXIT_REFUSED
    print(_next_steps(preset, directory, answers, targets))
    return EXIT_OK


def _not_ours(directory: Path, preset: Preset) -> str | None:
    """Why ``init`` refuses to write in ``directory`` — it, or a folder above it, another
    user owns or may write — or ``None``."""
    try:
        found = not_ours(directory)
    except OSError as exc:
        return f"cannot read {directory}: {exc.strerror or exc}; nothing was written"
    if found is None:
        return None
    what = "" if found.path == directory.absolute() else f"a folder above {directory}: "
    return (
        f"{what}{found}; nothing was written. Another user could swap the config Fleetwarden "
        "reads for one of their own, or plant links where it writes. Choose a directory of "
        f"your own (`fleetwarden init ~/myfleet --preset {preset.name}`), or make it "
        f"Fleetwarden's: `{found.fix}`"
    )


def _make_dirs(directory: Path) -> list[Path]:
    """The missing levels of ``directory`` made (0755, whatever the umask: a folder its group
    may write is refused by ``run``); those made, outermost first."""
    missing = [level for level in (directory, *directory.parents) if not level.exists()]
    made = []
    for level in reversed(missing):
        level.mkdir(0o755)  # not exist_ok: one someone else made meanwhile is not ours
        made.append(level)
        os.chmod(level, 0o755)
    return made


def _write(directory: Path, files: dict[str, str], repo: bool) -> None:
    """The repository (when ``repo``) and ``files`` made in ``directory``, each whole and
    never over anything there (a link included); on a failure, none of them."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    written: list[str] = []
    made_repo = False
    try:
        if stat_problem(os.fstat(fd), os.geteuid(), passage=False, owner_only=False) is not None:
            raise OSError(errno.EPERM, "it changed hands while being written")
        if repo:
            _make_repo(directory / REPO_DIR)
            made_repo = True
        for name, text in files.items():
            create_whole(fd, name, text.encode("utf-8"), 0o644)
            written.append(name)
    except BaseException:
        for name in written:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=fd)
        if made_repo:
            shutil.rmtree(directory / REPO_DIR, ignore_errors=True)
        raise
    finally:
        os.close(fd)


def _remove(made: list[Path]) -> None:
    for level in reversed(made):
        with contextlib.suppress(OSError):
            level.rmdir()


def _answers(args: argparse.Namespace, preset: Preset, directory: Path, ask: Ask | None) -> Answers:
    config = str((directory / CONFIG_NAME).absolute())
    answers = Answers(config=config, repo_url=args.repo_url)
    if not preset.forge:
        return answers
    kind = (
        forge_kind_named(args.forge_kind)
        if args.forge_kind
        else _chosen(ask, "Forge kind (" + ", ".join(FORGE_KINDS) + ")", "github", forge_kind_named)
    )
    default_api = DEFAULT_APIS[kind]
    return replace(
        answers,
        forge=kind,
        forge_api=args.forge_api or _asked(ask, "Its API root", default_api),
        forge_repo=args.forge_repo
        or _asked(ask, "The repository (OWNER/NAME)", answers.forge_repo),
        login=args.login or _asked(ask, "The bot's login there", answers.login),
        listen=args.listen or answers.listen,
    )


def _chosen(ask: Ask | None, question: str, default: str, named: Callable[[str], T]) -> T:
    """What the answer names, for a question with a fixed set of answers: one naming none is
    answered with the one likely meant and the question is put again, so a typo costs one
    line, not the answers given before it (Ctrl-C still leaves, writing nothing)."""
    while True:
        answer = _asked(ask, question, default)
        try:
            return named(answer)
        except UnknownPreset as exc:
            if ask is None:
                raise
            print(f"fleetwarden init: {exc}", file=sys.stderr)


def _asked(ask: Ask | None, question: str, default: str) -> str:
    if ask is None:
        return default
    return ask(question, default).strip() or default


def _input(question: str, default: str) -> str:
    try:
        return input(f"{question} [{default}]: ")
    except EOFError:
        return ""


def _make_repo(path: Path) -> None:
    """A git repository on ``main`` with a README and a Makefile (``make test``), one commit,
    that takes a push to its checked-out ``main`` (``receive.denyCurrentBranch
    updateInstead``: a ``merge`` lands there and its working tree follows, while it has no
    uncommitted changes)."""
    git = shutil.which("git")
    if git is None:
        raise OSError("git is not installed: install it, or pass --repo-url with your repository")
    path.mkdir(0o755)
    os.chmod(path, 0o755)
    try:
        subprocess.run(
            [git, "init", "-q", "-b", "main", str(path)], check=True, capture_output=True
        )
        subprocess.run(
            [git, "-C", str(path), "config", "receive.denyCurrentBranch", "updateInstead"],
            check=True,
            capture_output=True,
        )
        (path / "README.md").write_text(README, encoding="utf-8")
        (path / "Makefile").write_text(MAKEFILE, encoding="utf-8")
        subprocess.run(
            [git, "-C", str(path), "add", "README.md", "Makefile"], check=True, capture_output=True
        )
        subprocess.run(
            [git, *GIT_IDENTITY, "-C", str(path), "commit", "-q", "-m", "Start the repository"],
            check=True,
            capture_output=True,
            env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1"},
        )
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)  # never half a repository
        raise


def _why(exc: OSError | subprocess.CalledProcessError) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        said = (exc.stderr or b"").decode(errors="replace").strip()
        return f"git failed: {said}"
    return exc.strerror or str(exc)


def _next_steps(preset: Preset, directory: Path, answers: Answers, written: list[Path]) -> str:
    lines = [f"Wrote the {preset.name} preset: {described(preset, answers)}"]
    lines += [f"  {path}" for path in written]
    lines.append("Next:")
    if preset.forge:
        lines.append(
            "  export FORGE_TOKEN=…  FORGE_WEBHOOK_SECRET=…"
            "   (the bot's token, the webhook's secret)"
        )
    program = _program()
    lines.append(f"  {program} check-config --config {answers.config}")
    lines.append(
        f"  bash run.sh --config {answers.config}   (in Fleetwarden's checkout; or {program} run)"
    )
    return "\n".join(lines)


def _program() -> str:
    """``fleetwarden`` as this shell can run it: the bare name when the one on PATH is
    this one, else the path it was typed as (``.venv/bin/fleetwarden``, run.sh's venv,
    is on no PATH), relative to here when it lies below."""
    ran = Path(sys.argv[0])
    if ran.name != "fleetwarden":  # python -m bot.cli: no program of that name ran
        return "fleetwarden"
    found = shutil.which("fleetwarden")
    if found is not None and Path(found).resolve() == ran.resolve():
        return "fleetwarden"
    if not ran.is_absolute():
        return shlex.quote(str(ran))
    with contextlib.suppress(ValueError):
        return shlex.quote(str(ran.relative_to(Path.cwd())))
    return shlex.quote(str(ran))


PACKAGES = ("bot", "connectors", "fleet", "scheduler")
"""Fleetwarden's own packages: no config is written inside one."""


def _our_code(directory: Path) -> Path | None:
    """The folder of Fleetwarden's own package that ``directory`` is (or is inside), if any:
    a config folder's contents are kept from the agents' sandbox, so one there would hide
    the code its agents run (``fleet/sandbox/forwarder.py``)."""
    here = directory.resolve()
    for name in PACKAGES:
        package = (Path(__file__).resolve().parents[3] / name).resolve()
        if here == package or package in here.parents:
            return package
    return None
