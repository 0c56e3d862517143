"""Regenerate docs/report.png, the README's picture of a report, from a real run.

Runs configs/profile.yaml (every suite on five of its scripted organisms, a situation sweep
added, fewer samples: about 30 s on 2 cores) through `sandbox run`, which writes the run's
report, then screenshots its report.html in headless Chromium (Debian's `chromium`, or
$CHROMIUM). The image is the top of the page: the capability profile and the XC section.

    .venv/bin/python scripts/report_image.py [--out docs/report.png] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SWEEP = {"name": "situation_sweep", "params": {"grid": [[3, 1], [5, 1], [10, 1], [10, 5], [20, 2]]}}
OVERRIDES = [
    "engine=local",
    "models=[honest, training_gamer, stateless_strategist, focal_colluder, worst_case]",
    "sampling.k=100",
    "sampling.bootstrap=500",
    "control.steps=60",
    "control.deployments=2000",
]
WINDOW = "1280,2290"


def run(out_dir: Path) -> Path:
    """A finished run of the profile config (with a sweep) under `out_dir`: its directory."""
    data = yaml.safe_load((REPO / "configs" / "profile.yaml").read_text(encoding="utf-8"))
    data["run"] = {**data["run"], "name": "report", "output_dir": str(out_dir / "runs")}
    data["games"].insert(2, SWEEP)
    for game in data["games"]:
        if game["name"] == "training_gaming":
            game["k"] = 50
    config = out_dir / "report.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    cmd = [sys.executable, "-m", "sandbox.cli", "run", str(config), *OVERRIDES, "--quiet"]
    subprocess.run(cmd, check=True, cwd=REPO, env=env, timeout=600)
    (run_dir,) = (out_dir / "runs").iterdir()
    return run_dir


def screenshot(page: Path, png: Path) -> None:
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        sys.exit("chromium is not on PATH (Debian: apt-get install chromium; or set $CHROMIUM)")
    png.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={WINDOW}",
        f"--screenshot={png.resolve()}",
        page.resolve().as_uri(),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "report.png")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the run in DIR")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        run_dir = run(base)
        screenshot(run_dir / "report.html", args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
    if args.keep:
        print(f"its run: {run_dir}")


if __name__ == "__main__":
    main()
