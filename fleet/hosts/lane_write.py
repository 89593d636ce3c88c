"""Write a runtime's files into an agent's HOME on a host where Fleetwarden logs in as the
agent's own user — standalone, standard library only, run there (``python3 -I -S
lane_write.py HOME [FOLDER…]`` with the files on stdin as
:func:`fleet.lane_files.files_json` writes them): each FOLDER below HOME (a CLI's skills)
emptied, then each file written, through no symlink the agent left on the way or in place
(:mod:`fleet.lane_files`, loaded from its copy beside this one), so a link the agent
planted never leads Fleetwarden out of its HOME. What goes wrong is one line on stderr and
exit status 1.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType


def _lane_files() -> ModuleType:
    """``fleet/lane_files.py``, from beside this script's package directory."""
    where = Path(__file__).resolve().parents[1] / "lane_files.py"
    spec = importlib.util.spec_from_file_location("fleetwarden_lane_files", where)
    if spec is None or spec.loader is None:
        raise OSError(f"cannot load {where}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: lane_write.py HOME [FOLDER…] < files.json", file=sys.stderr)
        return 2
    home = Path(argv[1])
    try:
        files = json.load(sys.stdin)
        if not isinstance(files, dict):
            raise ValueError("the files are not a JSON object")
        lane = _lane_files()
        for folder in argv[2:]:
            relative = Path(folder).relative_to(home)  # ValueError: outside its HOME
            lane.empty_lane_dir(home, relative.as_posix())
        for path, text in files.items():
            below = Path(path).relative_to(home).as_posix()  # ValueError: outside its HOME
            lane.write_lane_file(home, below, lane.file_of(text))
    except (OSError, ValueError) as exc:
        print(f"lane_write: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
