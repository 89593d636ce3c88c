"""How a stdio server's words are read for the paths they name: as the program reads them
(quotes, ``=`` values, glued options, argument files, percent-decoded ``file:`` URLs,
interpreter code, path lists), never an npm package's scope taken for a file."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from fleet.mcp.config.spelled import arg_paths, env_paths


def named(args: tuple[str, ...], base: Path, every_word: bool = False) -> set[Path]:
    return {found.path for _, found in arg_paths(args, base, every_word)}


def test_quotes_equals_and_glued_options_are_read_off(tmp_path: Path) -> None:
    """`--opt="/w/x.js"`, `-r/w/y.js` and a quoted NODE_OPTIONS value each name the path."""
    w = tmp_path / "w"
    assert w / "x.js" in named((f'--opt="{w}/x.js"',), tmp_path)
    assert w / "y.js" in named((f"-r{w}/y.js",), tmp_path)
    value = f"--max-old-space-size=99 --require '{w}/my hook.js'"
    assert w / "my hook.js" in {f.path for f in env_paths(value, tmp_path, False)}


def test_a_path_list_is_split(tmp_path: Path) -> None:
    """PYTHONPATH-style lists name each of their entries."""
    found = {f.path for f in env_paths(f"/usr/lib:{tmp_path}/a:'{tmp_path}/b'", tmp_path, False)}
    assert {Path("/usr/lib"), tmp_path / "a", tmp_path / "b"} <= found


def test_an_argument_file_is_named_and_read(tmp_path: Path) -> None:
    """`@file`: the file itself, and each path its lines name, said to be in it; an npm
    scope (`@acme/server`, no such file) is no argument file."""
    listed = tmp_path / "args.txt"
    listed.write_text(f'--require "{tmp_path}/w/x.js"\n--other\n')
    found = list(arg_paths((f"@{listed}", "@acme/server"), tmp_path, False))
    assert (0, listed) in [(i, f.path) for i, f in found]
    [inner] = [f for _, f in found if f.path == tmp_path / "w" / "x.js"]
    assert inner.how == f"in the argument file {str(listed)!r}"
    assert all(index == 0 for index, _ in found)


def test_a_file_url_is_percent_decoded(tmp_path: Path) -> None:
    """`file:///…/w%6Frk/x.js` and `file://localhost/…` name the decoded path; another
    host's URL is not read as this host's path."""
    assert tmp_path / "work" / "x.js" in named((f"file://{tmp_path}/w%6Frk/x.js",), tmp_path)
    assert tmp_path / "a b" in named((f"--url=file://localhost{tmp_path}/a%20b",), tmp_path)
    assert Path("/etc/x") not in named(("file://far/etc/x",), tmp_path)


def test_interpreter_code_names_its_literals(tmp_path: Path) -> None:
    """`-c`/`-e`/`--eval=` code: its string literals (escapes read) and path-like runs, said
    to be in its code and not given whole (a path only mentioned never "holds")."""
    code = "import sys; sys.path.insert(0, '\\x2ftmp/w'); open(\"./rel/x\")"
    found = [f for _, f in arg_paths(("-c", code), tmp_path, False) if f.how == "in its code"]
    assert {f.path for f in found} >= {Path("/tmp/w"), tmp_path / "rel" / "x"}
    assert not any(f.whole for f in found)
    assert Path("/srv/h.js") in named(("--eval=require('/srv/h.js')",), tmp_path)
    assert Path("/srv/h.py") in named(("-cexec(open('/srv/h.py').read())",), tmp_path)


def test_words_that_are_no_paths_name_none(tmp_path: Path) -> None:
    """Options, numbers, npm packages and a division name nothing without a cwd."""
    words = ("-y", "@modelcontextprotocol/server-everything", "--port=8080")
    assert named(words, tmp_path) == set()
    assert named(("-c", "print(6 / 3)"), tmp_path) == set()


def test_a_file_urls_host_is_read_without_regard_to_case(tmp_path: Path) -> None:
    """`file://LOCALHOST/…` (as node and WHATWG read it) names this host's path."""
    assert tmp_path / "x.mjs" in named((f"--import=file://LOCALHOST{tmp_path}/x.mjs",), tmp_path)


def test_tilde_and_tilde_user_are_expanded_as_a_shell_does(tmp_path: Path) -> None:
    """`~user/…` in a word and in `sh -c` code names the user's home's path; a user that
    does not exist leaves the word a name, as a shell leaves it."""
    me = pwd.getpwuid(os.getuid())
    home = Path(me.pw_dir)
    assert home / "../w/x.mjs" in named((f"~{me.pw_name}/../w/x.mjs",), tmp_path)
    code = f"exec node --import ~{me.pw_name}/../w/x.mjs -e 1"
    assert home / "../w/x.mjs" in named(("-c", code), tmp_path)
    assert named(("~no-such-user-here/x",), tmp_path) == set()
