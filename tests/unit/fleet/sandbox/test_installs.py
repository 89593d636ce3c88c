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
    for made in ("bin", "lib", ".ssh-like", "keyrings", "my_tokens"):
        (fly / made).mkdir(parents=True)
    for name in ("config.yml", "credentials.toml", "version", "env"):
        (fly / name).write_text("x\n")
    (fly / "escape").symlink_to(tmp_path)  # a link out of the install
    found = set(installs.needs(str(fly / "bin"), True, []))
    assert {str(fly / n) for n in ("bin", "lib", ".ssh-like", "version", "env")} <= found
    kept_out = ("config.yml", "credentials.toml", "keyrings", "my_tokens", "escape")
    assert not {str(fly / n) for n in kept_out} & found


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
        ["/usr/bin/python3", "-I", "-S", "-c", source, request],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    assert json.loads(done.stdout) == [[str(tool / "bin"), str(tool / "lib")]]
