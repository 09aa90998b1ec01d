#!/usr/bin/env python3
"""How fast the HA scenario simulator plays every scenario under test/ha-scenarios (the issue's
figure: all of them in under 10 s), and how much simulated time they cover."""
import argparse
import json
import re
import time
from pathlib import Path

from genet.ha import scenario

ROOT = Path(__file__).resolve().parents[1] / "test" / "ha-scenarios"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="plays of the whole set (the best is kept)")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    texts = {d.name: (d / "scenario").read_text() for d in sorted(p.parent for p in ROOT.glob("*/scenario"))}
    simulated = sum(float(re.search(r"^end (\S+)", t, re.M).group(1)) for t in texts.values())
    best = None
    for _ in range(args.rounds):
        started = time.perf_counter()
        for text in texts.values():
            scenario.run(text)
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    figures = {"scenarios": len(texts), "simulated_seconds": simulated, "wall_seconds": round(best, 3)}
    print(f"{len(texts)} scenarios, {simulated:.0f} simulated seconds, played in {best:.2f} s")
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
