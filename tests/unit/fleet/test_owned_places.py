"""Whose a folder is, by the rule and on the file system: another uid's, or one its group or
others may write, is not Fleetwarden's own; a sticky folder is a safe way through only when
root or Fleetwarden's uid owns it; links on the way are followed to what they lead through."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fleet.owned_places import not_ours, passed, stat_problem

ME, OTHER = 1000, 1001


def _info(mode: int, uid: int) -> os.stat_result:
    return os.stat_result((mode, 0, 0, 1, uid, 0, 0, 0, 0, 0))


DIR = stat.S_IFDIR


@pytest.mark.parametrize(
    ("mode", "uid", "passage", "refused"),
    [
        (DIR | 0o755, ME, False, False),
        (DIR | 0o755, 0, False, False),
        (DIR | 0o755, OTHER, False, True),
        (DIR | 0o775, ME, False, True),
        (DIR | 0o757, ME, True, True),
        (DIR | 0o1777, 0, True, False),  # /tmp on the way
        (DIR | 0o1777, ME, True, False),
        (DIR | 0o1777, OTHER, True, True),  # its owner may rename anything in it
        (DIR | 0o1777, 0, False, True),  # the folder itself: others may plant in it
        (stat.S_IFREG | 0o1666, ME, True, True),  # a sticky bit on a file protects nothing
    ],
)
def test_the_rule(mode: int, uid: int, passage: bool, refused: bool) -> None:
    """Another owner, or a group or others who may write, refuse a place; a sticky folder
    root or we own is refused only as the place itself."""
    found = stat_problem(_info(mode, uid), ME, passage=passage, owner_only=False)
    assert (found is not None) == refused


def test_a_state_dir_roots_owns_is_not_another_users_own() -> None:
    """``owner_only``: a folder root owns is not the state dir of a Fleetwarden of uid ME."""
    assert stat_problem(_info(DIR | 0o700, 0), ME, passage=False, owner_only=True) is not None
    assert stat_problem(_info(DIR | 0o700, ME), ME, passage=False, owner_only=True) is None


def test_the_fix_names_both_what_is_wrong() -> None:
    """Owned by another and writable by others: both said, both fixed."""
    found = stat_problem(_info(DIR | 0o777, OTHER), ME, passage=False, owner_only=False)
    assert found is not None
    why, fix = found
    assert f"uid {OTHER}" in why and "mode 0777" in why
    assert fix == f"chown {ME} PATH && chmod go-w PATH"


def test_a_link_on_the_way_is_judged_by_what_it_leads_through(tmp_path: Path) -> None:
    """A path through a link is judged by the folders the kernel passes through: a folder
    others may write behind the link refuses it."""
    open_ = tmp_path / "open"
    open_.mkdir()
    open_.chmod(0o777)
    (open_ / "fleet").mkdir()
    (tmp_path / "link").symlink_to(open_)
    walked, exists = passed(tmp_path / "link" / "fleet")
    assert exists and [p.path for p in walked][-2:] == [open_, open_ / "fleet"]
    found = not_ours(tmp_path / "link" / "fleet", uid=os.geteuid())
    assert found is not None and found.path == open_ and "mode 0777" in str(found)


def test_a_missing_place_is_judged_by_the_folder_it_would_be_made_in(tmp_path: Path) -> None:
    """A path that does not exist yet is Fleetwarden's own when every folder above it is."""
    assert not_ours(tmp_path / "new" / "deeper", uid=os.geteuid()) is None
    walked, exists = passed(tmp_path / "new" / "deeper")
    assert not exists and walked[-1].path == tmp_path
