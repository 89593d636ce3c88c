"""What a PATH directory under a hidden path brings back (fleet/sandbox/installs.py), on
real directories: the install but for its credentials and data, and nothing reached through
a place an agent may write or a link that leads out of the install's own folders."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from fleet.sandbox import installs


def test_an_install_brings_its_folders_and_kept_files_never_its_credentials(tmp_path: Path) -> None:
    fly = tmp_path / "u" / ".fly"
    for made in ("bin", "lib", ".git", "keyrings", "my_tokens"):
        (fly / made).mkdir(parents=True)
    for name in ("config.yml", "credentials.toml", "version", "env", "go.env"):
        (fly / name).write_text("x\n")
    (fly / "escape").symlink_to(tmp_path)  # a link out of the install
    (fly / "all").symlink_to(".")  # and one to all of it
    found = set(installs.needs(str(fly / "bin"), True, []))
    assert {str(fly / n) for n in ("bin", "lib", "version", "env", "go.env")} <= found
    kept_out = ("config.yml", "credentials.toml", "keyrings", "my_tokens", "escape", "all")
    assert not {str(fly / n) for n in (*kept_out, ".git")} & found


def test_a_link_to_a_file_beside_the_bin_brings_the_file_not_its_folder(tmp_path: Path) -> None:
    """``~/.cargo/bin/h -> ../helper`` must not bring ``~/.cargo`` (and its credentials);
    ``~/.pyenv/bin/pyenv -> ../libexec/pyenv`` brings ``libexec``, where the rest of it is."""
    cargo = tmp_path / "u" / ".cargo"
    (cargo / "bin").mkdir(parents=True)
    (cargo / "helper").write_text("#!/bin/sh\n")
    (cargo / "credentials.toml").write_text("token\n")
    (cargo / "bin" / "h").symlink_to("../helper")
    found = installs.needs(str(cargo / "bin"), False, [])
    assert found == [str(cargo / "bin"), str(cargo / "helper")]
    pyenv = tmp_path / "u" / ".pyenv"  # pyenv's own link brings the folder it leads into
    (pyenv / "bin").mkdir(parents=True)
    (pyenv / "libexec").mkdir()
    (pyenv / "libexec" / "pyenv").write_text("#!/bin/sh\n")
    (pyenv / "bin" / "pyenv").symlink_to("../libexec/pyenv")
    assert installs.needs(str(pyenv / "bin"), False, [])[1:] == [str(pyenv / "libexec")]


def test_nothing_is_found_through_a_place_an_agent_may_write(tmp_path: Path) -> None:
    """A PATH directory in an agent's workdir, a link in a PATH directory that leads through
    one, and a venv's ``home`` pointing out of one are never followed."""
    work, secret = tmp_path / "work", tmp_path / "fw" / ".config" / "gh"
    secret.mkdir(parents=True)
    venv = work / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "zz").symlink_to(secret / "hosts.yml")
    (venv / "pyvenv.cfg").write_text(f"home = {secret}\n")
    assert installs.needs(str(venv / "bin"), True, [str(work)]) == []
    tools = tmp_path / "tools" / "bin"
    tools.mkdir(parents=True)
    (tools / "t").symlink_to(venv / "bin" / "zz")
    (tools / "v").symlink_to(work)
    assert installs.needs(str(tools), False, [str(work)]) == [str(tools)]


def test_a_venvs_python_must_be_a_bin_and_a_home_never_comes_back_whole(tmp_path: Path) -> None:
    home = tmp_path / "alice"
    (home / ".ssh").mkdir(parents=True)
    venv = tmp_path / "opt" / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "tool").write_text("#!/bin/sh\n")
    (venv / "pyvenv.cfg").write_text(f"home = {home}\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "tool").symlink_to(venv / "bin" / "tool")
    assert installs.needs(str(tmp_path / "bin"), False, []) == [str(tmp_path / "bin"), str(venv)]
    (home / "bin").mkdir()
    assert installs.members(str(home), []) == []  # `~/bin` on PATH: HOME is no install


def test_a_path_directory_inside_local_share_brings_its_tool(tmp_path: Path) -> None:
    """mise's shims in ``~/.local/share/mise/shims`` need its installs beside them."""
    local = tmp_path / "u" / ".local"
    shims = local / "share" / "mise" / "shims"
    shims.mkdir(parents=True)
    (local / "share" / "keyrings").mkdir()
    found = installs.needs(str(shims), False, [])
    assert found == [str(shims), str(local / "share" / "mise")]


def test_a_host_runs_the_same_file_alone_and_odd_names_are_skipped(tmp_path: Path) -> None:
    """As a host does: ``python3 -I -S -c SOURCE REQUEST``, no Fleetwarden on its path; a
    name that cannot be told as text is left out, never the whole answer."""
    tool = tmp_path / "tool"
    (tool / "bin").mkdir(parents=True)
    (tool / "lib").mkdir()
    (tool / "bin").joinpath("ok").write_text("")
    odd = bytes(tool) + b"/\xe9t\xe9"
    Path(odd.decode(errors="surrogateescape")).mkdir()
    request = json.dumps({"dirs": [[str(tool / "bin"), True]], "untrusted": []})
    source = Path(installs.__file__).read_text()
    done = subprocess.run(
        ["/usr/bin/python3", "-I", "-S", "-c", source],
        input=request,
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    assert json.loads(done.stdout) == [[str(tool / "bin"), str(tool / "lib")]]


def test_a_link_out_of_the_install_brings_a_plain_file_at_most(tmp_path: Path) -> None:
    """A link in ``~/.local/bin`` to a key brings nothing; to a download, the file alone; to
    a project's ``bin``, that ``bin`` without the project's ``.git`` and ``config``; to
    Yarn's global packages under ``~/.config``, their ``node_modules``."""
    user = tmp_path / "u"
    local_bin = user / ".local" / "bin"
    local_bin.mkdir(parents=True)
    (user / ".ssh").mkdir()
    (user / ".ssh" / "id_ed25519").write_text("key\n")
    (user / "Downloads").mkdir()
    (user / "Downloads" / "kubectl").write_text("#!/bin/sh\n")
    (user / "proj" / "bin").mkdir(parents=True)
    (user / "proj" / ".git").mkdir()
    (user / "proj" / "bin" / "run").write_text("#!/bin/sh\n")
    yarn = user / ".config" / "yarn" / "global" / "node_modules" / "tsc" / "bin"
    yarn.mkdir(parents=True)
    (yarn / "tsc").write_text("#!/usr/bin/env node\n")
    (local_bin / "k").symlink_to(user / ".ssh" / "id_ed25519")
    (local_bin / "kubectl").symlink_to(user / "Downloads" / "kubectl")
    (local_bin / "run").symlink_to(user / "proj" / "bin" / "run")
    (local_bin / "tsc").symlink_to(yarn / "tsc")
    found = installs.linked(str(local_bin), [])
    assert found == [
        str(user / "Downloads" / "kubectl"),
        str(user / "proj" / "bin"),
        str(user / ".config" / "yarn" / "global" / "node_modules"),
    ]


def test_shims_bring_their_install_as_a_bin_does(tmp_path: Path) -> None:
    pyenv = tmp_path / "u" / ".pyenv"
    for made in ("shims", "versions", "libexec"):
        (pyenv / made).mkdir(parents=True)
    (pyenv / "version").write_text("3.11.7\n")
    install = "shims" in installs.BINS
    found = installs.needs(str(pyenv / "shims"), install, [])
    assert found == [str(pyenv / n) for n in ("shims", "libexec", "version", "versions")]
