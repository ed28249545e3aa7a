"""How long each notebook takes top to bottom, in quick mode and in full mode (issue 21).

Each notebook is executed with nbconvert into a temporary copy (the committed one is not
touched), in a fresh kernel, once per mode:

- quick: ``RECSYS_NB_QUICK=1`` (what ``make test`` runs under nbval); small subsets and
  the small cached models in ``models/quick-*`` (trained on the first run, so a second
  run is the steady state: ``--repeat-quick`` runs quick mode twice and keeps the second);
- full: without it, after ``make demo`` (its reference models and the whole catalogue).

Goals: under 3 minutes per notebook in quick mode, under 5 minutes in full mode on 2
cores. Prints a table and saves benchmarks/results/notebook_times.{md,json}.

    .venv/bin/python benchmarks/notebook_times.py                 # every notebook, both modes
    .venv/bin/python benchmarks/notebook_times.py --modes quick 05_recommend
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
GOALS_S = {"quick": 180.0, "full": 300.0}


def run(notebook: Path, mode: str, workdir: Path) -> tuple[float, str]:
    """Seconds to execute ``notebook`` in ``mode``, and "ok" or the error's last line."""
    env = {k: v for k, v in os.environ.items() if k != "RECSYS_NB_QUICK"}
    if mode == "quick":
        env["RECSYS_NB_QUICK"] = "1"
    cmd = [
        str(REPO / ".venv" / "bin" / "jupyter"),
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--log-level",
        "ERROR",
        "--ExecutePreprocessor.timeout=3600",
        "--ExecutePreprocessor.store_widget_state=False",
        "--output-dir",
        str(workdir),
        "--output",
        f"{notebook.stem}-{mode}",
        str(notebook),
    ]
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=notebook.parent, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    status = "ok" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["?"])[-1]
    return seconds, status


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", help="notebook names (default: all)")
    p.add_argument("--modes", default="quick,full", help="quick,full (default) or one")
    p.add_argument("--repeat-quick", action="store_true", help="quick mode twice, keep 2nd")
    args = p.parse_args(argv)
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    if args.names:
        notebooks = [n for n in notebooks if any(n.stem.startswith(x) for x in args.names)]
    modes = [m for m in args.modes.split(",") if m]
    rows = []
    with tempfile.TemporaryDirectory(prefix="notebook-times-") as tmp:
        for nb in notebooks:
            row = {"notebook": nb.stem}
            for mode in modes:
                seconds, status = run(nb, mode, Path(tmp))
                if mode == "quick" and args.repeat_quick:
                    seconds, status = run(nb, mode, Path(tmp))
                row[f"{mode}_s"] = round(seconds, 1)
                row[f"{mode}_status"] = status
                row[f"{mode}_goal_met"] = status == "ok" and seconds < GOALS_S[mode]
                print(f"{nb.stem:28} {mode:5} {seconds:7.1f} s  {status}", flush=True)
            rows.append(row)
    saved = RESULTS / "notebook_times.json"
    if args.names and saved.is_file():  # the other notebooks keep their saved rows
        measured = {r["notebook"]: r for r in rows}
        before = json.loads(saved.read_text())["rows"]
        kept = [r for r in before if all(f"{m}_s" in r for m in modes)]
        rows = sorted(
            {**{r["notebook"]: r for r in kept}, **measured}.values(), key=lambda r: r["notebook"]
        )
    lines = [
        "| notebook | " + " | ".join(f"{m} (s, goal < {GOALS_S[m]:.0f})" for m in modes) + " |",
        "|---|" + "---:|" * len(modes),
    ]
    for row in rows:
        cells = []
        for m in modes:
            mark = "" if row[f"{m}_goal_met"] else " (missed)"
            if row[f"{m}_status"] != "ok":
                mark = f" (failed: {row[f'{m}_status'][:60]})"
            cells.append(f"{row[f'{m}_s']:.0f}{mark}")
        lines.append(f"| {row['notebook']} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print("\n" + table)
    report = {
        "benchmark": "notebook_times",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2)},
        "goals_s": GOALS_S,
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "notebook_times.json").write_text(json.dumps(report, indent=1) + "\n")
    (RESULTS / "notebook_times.md").write_text(table + "\n")
    print("saved benchmarks/results/notebook_times.md")
    return 0 if all(r.get(f"{m}_status") == "ok" for r in rows for m in modes) else 1


if __name__ == "__main__":
    sys.exit(main())
