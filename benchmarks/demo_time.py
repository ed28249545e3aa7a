"""`make demo` (and `make test`) from a fresh clone: wall time, and where it goes.

Each run clones this checkout's HEAD into a new temporary folder (nothing built: no
venv, no widget bundle, no models, no caches but pip's and npm's), points
``RECSYS_NB_DATA`` at the shared data, and times ``make demo`` (then, with ``--test``,
``make test`` in the same clone, as a newcomer runs the README's two commands). The
demo's own stage lines (``[i/n] <name>: <stage>: N s``) split its time; what is left of
the wall time is the installs (pip, npm ci, the widget bundle) and start-up. Prints a
table, saves ``benchmarks/results/demo_time.{md,json}`` and each run's log beside them.

    .venv/bin/python benchmarks/demo_time.py               # one fresh-clone make demo
    .venv/bin/python benchmarks/demo_time.py --runs 3 --test

Needs git, make, Python 3.11 and Node on the PATH, like the README's two commands. The
clone is removed afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STAGE = re.compile(r"^\[\d+/\d+\] (?P<what>.+): (?P<seconds>\d+) s \(")
FINISHED = re.compile(r"^demo finished in (?P<seconds>\d+) s")
FIGURE = re.compile(r"^\d+ items embedded; (?P<label>\w+) P@10: model (?P<p>[\d.]+)")
COLOUR_ROW = re.compile(r"^model\s+(?P<values>[\d.\s]+)$")


def _timed(command: list[str], cwd: Path, env: dict, log: Path) -> tuple[float, int, str]:
    began = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    return time.perf_counter() - began, proc.returncode, log.read_text()


def parse_demo(output: str) -> dict:
    """Stage times, the demo's own total and the reference figures from its output."""
    stages, figures, demo_s = {}, {}, None
    model_rows = []
    for line in output.splitlines():
        if m := STAGE.match(line):
            stages[m["what"]] = int(m["seconds"])
        elif m := FINISHED.match(line):
            demo_s = int(m["seconds"])
        elif m := FIGURE.match(line):
            figures[f"{m['label']} P@10"] = float(m["p"])
        elif m := COLOUR_ROW.match(line.strip()):
            model_rows.append([float(v) for v in m["values"].split()])
    # the products table's model row: 3 precisions, same_colour@10, MRR
    products = [row for row in model_rows if len(row) == 5]
    if products:
        figures["same_colour@10"] = products[-1][3]
    return {"stages": stages, "demo_s": demo_s, "figures": figures}


def one_run(index: int, data: Path, with_test: bool, keep: bool, stamp: str) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="recsys-nb-fresh-"))
    clone = folder / "main"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    commit = subprocess.run(
        ["git", "-C", str(clone), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_NB_", "VIRTUAL_ENV"))}
    env["RECSYS_NB_DATA"] = str(data)
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / f"demo_time-{stamp}-{index}.log"
    load_before = os.getloadavg()[0]
    wall, rc, output = _timed(["make", "demo"], clone, env, log)
    row = {"run": index, "commit": commit, "make_demo_s": round(wall), "rc": rc}
    row.update(parse_demo(output))
    if row["demo_s"] is not None:
        row["installs_s"] = round(wall - row["demo_s"])
    row["load_before"] = round(load_before, 2)
    if with_test and rc == 0:
        test_log = RESULTS / f"demo_time-{stamp}-{index}-test.log"
        test_wall, test_rc, test_out = _timed(["make", "test"], clone, env, test_log)
        row.update(make_test_s=round(test_wall), test_rc=test_rc)
        if m := re.search(r"(\d+) passed.* in ([\d.]+)s", test_out):
            row.update(passed=int(m[1]), pytest_s=round(float(m[2])))
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(row), flush=True)
    return row


def table(rows: list[dict]) -> str:
    stage_names = list(dict.fromkeys(name for row in rows for name in row["stages"]))
    tested = any("make_test_s" in row for row in rows)
    head = ["run", "commit", "make demo s", "installs + start s", *stage_names, "figures"]
    head += ["make test s", "pytest s (passed)"] if tested else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [str(row["run"]), row["commit"], str(row["make_demo_s"])]
        cells.append(str(row.get("installs_s", "-")))
        cells += [str(row["stages"].get(name, "-")) for name in stage_names]
        cells.append(", ".join(f"{k} {v:.3f}" for k, v in row["figures"].items()) or "-")
        if tested:
            cells.append(str(row.get("make_test_s", "-")))
            cells.append(f"{row.get('pytest_s', '-')} ({row.get('passed', '-')})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--test", action="store_true", help="also time make test in each clone")
    parser.add_argument("--keep", action="store_true", help="keep the clones")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("RECSYS_NB_DATA", ROOT.parent / "shared" / "data")),
    )
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"demo_time: no shared data at {args.data}: set --data or RECSYS_NB_DATA")
        return 2
    stamp = f"{dt.datetime.now():%Y%m%d-%H%M%S}"
    rows = [
        one_run(i + 1, args.data.resolve(), args.test, args.keep, stamp) for i in range(args.runs)
    ]
    text = (
        f"# make demo from a fresh clone ({stamp})\n\n"
        f"{os.cpu_count()} CPUs; pip's and npm's caches as this machine has them; "
        "seconds of wall time. Stage columns: the demo's own lines; installs + start: "
        "make demo's wall time less the demo's own total (pip install, npm ci, the widget "
        "bundle, Python start-up).\n\n" + table(rows) + "\n"
    )
    print(text)
    (RESULTS / "demo_time.md").write_text(text)
    (RESULTS / "demo_time.json").write_text(json.dumps(rows, indent=1))
    return 0 if all(row["rc"] == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
