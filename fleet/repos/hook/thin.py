"""The objects of a push git took from outside it: the bases of its thin pack's deltas.

A client may send a *thin* pack — deltas against objects it believes the receiver has.
``git index-pack --fix-thin`` then copies each such base into the pushed pack whole, so
the quarantine holds an object the push never carried. Only a REF_DELTA names its base by
id (an OFS_DELTA points back into the same pack), and git's own client writes a REF_DELTA
only against what the receiver advertised (the line's branches). So the line's hook reads
each pack in the quarantine and lists the base id of every REF_DELTA: whatever of those
the store outside the push holds and the line does not reach was borrowed — and a push
with a delta against it is refused whole, since the delta's result (a new file of its
own id) is another branch's content under a new name.

Everything else in the quarantine the push sent whole or rebuilt from a delta against what
it sent or what the line holds: a new file whose content happens to match another branch's
file is the push's own.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Final

from fleet.repos.hook.scan import GIT_TIMEOUT, git_argv, without_quarantine

REF_DELTA: Final = 7


def borrowed_bases(quarantine: str) -> set[str]:
    """The base ids of every REF_DELTA in the packs under ``quarantine``."""
    if not quarantine:
        return set()
    bases: set[str] = set()
    for pack in sorted(Path(quarantine, "pack").glob("*.pack")):
        index = pack.with_suffix(".idx")
        if index.is_file():
            bases |= _ref_delta_bases(pack, _offsets(index))
    return bases


def _offsets(index: Path) -> list[int]:
    """Each object's offset in the pack, as ``git show-index`` reads its index."""
    with index.open("rb") as stdin:
        done = subprocess.run(
            git_argv("show-index"),
            stdin=stdin,
            capture_output=True,
            env=without_quarantine(),
            timeout=GIT_TIMEOUT,
            check=True,
        )
    return [int(line.split()[0]) for line in done.stdout.decode("ascii").splitlines() if line]


def _ref_delta_bases(pack: Path, offsets: list[int]) -> set[str]:
    """The base id after the type-and-size header of each REF_DELTA entry."""
    bases: set[str] = set()
    with pack.open("rb") as raw:
        for offset in offsets:
            raw.seek(offset)
            head = raw.read(16 + 20)  # a size header of at most 10 bytes, then the id
            if not head or (head[0] >> 4) & 7 != REF_DELTA:
                continue
            at = 0
            while head[at] & 0x80:
                at += 1
            base = head[at + 1 : at + 21]
            if len(base) == 20:
                bases.add(base.hex())
    return bases
