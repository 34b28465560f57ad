"""What a failpoint costs when it is not armed: ns per call, unset and with other points armed.

    .venv/bin/python scripts/bench_failpoints.py
"""

import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from config import failpoints
from config.failpoints import failpoint

CALLS = 1_000_000


def ns_per_call():
    best = min(timeit.repeat(lambda: failpoint("settle.after_entitlement"), number=CALLS, repeat=5))
    baseline = min(timeit.repeat(lambda: None, number=CALLS, repeat=5))
    return (best - baseline) / CALLS * 1e9


def main():
    os.environ.pop(failpoints.ENV, None)
    failpoints.reset()
    print(f"unset:                     {ns_per_call():6.0f} ns per call")
    os.environ[failpoints.ALLOW_ENV] = "1"
    os.environ[failpoints.ENV] = "settle.after_lock=kill;outbox.after_esp_accepted=1*raise"
    failpoints.reset()
    print(f"other points armed:        {ns_per_call():6.0f} ns per call")


if __name__ == "__main__":
    main()
