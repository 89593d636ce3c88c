"""Ready an agent's lane on a host where Fleetwarden logs in as root — standalone, standard
library only, run there as root (``python3 -I -S lane_setup.py UID HOME WORKDIR [FOLDER…]``)
with the runtime's files for its HOME on stdin (:func:`fleet.lane_files.files_json`).

It makes HOME and the workdir if they are missing, empties each FOLDER below HOME (a CLI's
skills: :func:`fleet.lane_files.empty_lane_dir`), writes each file through no symlink the
agent left (:func:`fleet.lane_files.write_lane_file`, loaded from its copy beside this
one), and hands both trees to the agent's own uid (:func:`fleet.lane_files.hand_over`:
never through a symlink, never a file with another hard link). What goes wrong is one line
on stderr and exit status 1.
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
    if len(argv) < 4 or not argv[1].isdigit():
        print("usage: lane_setup.py UID HOME WORKDIR [FOLDER…] < files.json", file=sys.stderr)
        return 2
    uid, home, workdir = int(argv[1]), Path(argv[2]), Path(argv[3])
    fresh = [Path(folder) for folder in argv[4:]]
    try:
        files = json.load(sys.stdin)
        if not isinstance(files, dict):
            raise ValueError("the files are not a JSON object")
        lane = _lane_files()
        for top in (home, workdir):
            top.mkdir(mode=0o700, parents=True, exist_ok=True)
        for folder in fresh:
            lane.empty_lane_dir(home, folder.relative_to(home).as_posix())
        for path, text in files.items():
            relative = Path(path).relative_to(home)  # ValueError: outside its HOME
            lane.write_lane_file(home, relative.as_posix(), lane.file_of(text))
        lane.hand_over_lane(home, workdir, uid)
    except (OSError, ValueError) as exc:
        print(f"lane_setup: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
