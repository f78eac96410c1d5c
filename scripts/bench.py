"""Benchmark the fused loop on this machine: a table on stdout, every figure in a JSON file.

    python scripts/bench.py                  # full run (a few minutes), writes results/bench.json
    python scripts/bench.py --quick --out /tmp/bench.json   # tiny budget: checks that it runs

The measurements are described in :mod:`avgreward.bench`.
"""

import sys

from avgreward.bench import main

if __name__ == "__main__":
    sys.exit(main())
