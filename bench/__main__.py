"""`make bench`: every benchmark, one table each, printed and saved to bench/results/.

Absolute times on this shared 2-core machine move with its load; the tables put peers side by
side in one run (e.g. OpenCV vs Pillow decode, faceguard vs deface) so ratios can be trusted.
Set BENCH_ONLY=pipeline,media,log,app to run a subset.
"""

from __future__ import annotations

import importlib
import io
import os
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

SUITES = ["pipeline", "media", "log", "app"]


def main() -> int:
    only = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s] or SUITES
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    failed = []
    for name in only:
        try:
            mod = importlib.import_module(f"bench.bench_{name}")
        except ImportError as exc:
            print(f"[{name}] not available: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        t0 = time.perf_counter()
        buf = io.StringIO()
        if hasattr(mod, "main"):
            with redirect_stdout(buf):
                mod.main([])
        else:
            rows = mod.run()
            with redirect_stdout(buf):
                mod.print_table(rows)
        text = buf.getvalue()
        print(text)
        print(f"[{name}] {time.perf_counter() - t0:.0f} s\n")
        (out_dir / f"{name}.txt").write_text(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
