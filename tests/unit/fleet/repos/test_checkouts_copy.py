"""Copying gitignored files into a new checkout never writes through a symlink the
checkout holds (its content is the upstream's, which an agent may have written), never
overwrites a tracked file, and copies the operator's own symlinks as symlinks."""

from __future__ import annotations

from pathlib import Path

from fleet.repos.line.checkouts import copy_into, not_copied


def test_symlinks_in_the_checkout_are_never_written_through(tmp_path: Path) -> None:
    source, dest, outside = tmp_path / "fixtures", tmp_path / "checkout", tmp_path / "outside"
    for folder in (source / "data", dest, outside):
        folder.mkdir(parents=True)
    (source / ".env").write_text("SECRET=1\n")
    (source / "data" / "a.json").write_text("{}\n")
    (source / "tracked.txt").write_text("operator's\n")
    (dest / ".env").symlink_to(outside / "pwned")
    (dest / "data").symlink_to(outside)
    (dest / "tracked.txt").write_text("upstream's\n")
    copied = copy_into(dest, source, [".env", "data/a.json", "tracked.txt"])
    assert copied == []
    assert list(outside.iterdir()) == []
    assert (dest / "tracked.txt").read_text() == "upstream's\n"


def test_missing_paths_are_copied_links_as_links(tmp_path: Path) -> None:
    source, dest = tmp_path / "fixtures", tmp_path / "checkout"
    (source / "fixtures").mkdir(parents=True)
    dest.mkdir()
    (source / ".env.example").write_text("A=1\n")
    (source / "fixtures" / "one.json").write_text("1\n")
    (source / "link").symlink_to("/etc/hostname")
    copied = copy_into(dest, source, [".env.example", "fixtures", "link", "absent"])
    assert copied == [".env.example", "fixtures", "link"]
    assert (dest / "fixtures" / "one.json").read_text() == "1\n"
    assert (dest / "link").is_symlink()


def test_what_is_not_there_to_copy_is_said(tmp_path: Path) -> None:
    """A ``copy_from`` that is no directory, and paths of ``copy`` missing from it, are
    named; nothing missing says nothing."""
    source = tmp_path / "fixtures"
    gone = not_copied(source, [".env.example", "data"])
    assert gone == (
        f"copy_from {source} is not a directory on this machine, so none of .env.example, "
        "data was copied in: set copy_from to the directory they are in"
    )
    source.mkdir()
    (source / ".env.example").write_text("A=1\n")
    assert not_copied(source, [".env.example", "absent", "gone/x"]) == (
        f"absent, gone/x not found in copy_from {source}, so not copied in"
    )
    assert not_copied(source, [".env.example"]) == ""
