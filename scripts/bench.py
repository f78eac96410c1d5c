"""Benchmark the fused loop on this machine: a table on stdout, every figure in a JSON file.

    python scripts/bench.py                  # full run (a few minutes), writes results/bench.json
    python scripts/bench.py --quick --out /tmp/bench.json   # tiny budget: checks that it runs
    python scripts/bench.py --startup        # and the start-up section, timed from outside
    python scripts/bench.py --only startup   # that section alone (about a minute),
                                             # writes results/bench-startup.json

The measurements are described in :mod:`avgreward.bench`.
"""

import sys

from avgreward.bench import main

if __name__ == "__main__":
    sys.exit(main())
