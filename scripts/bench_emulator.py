"""Benchmark the Stripe emulator: payments per second, and one filtered list page at 100k charges.

    .venv/bin/python scripts/bench_emulator.py [--threads 4] [--seconds 5] [--charges 100000]

It starts the emulator as a subprocess (logging at WARNING), then:

(a) drives PaymentIntent create with confirm=true and pm_card_visa from several client threads,
    each on its own keep-alive connection, for a fixed time, and prints payments per second;
(b) seeds N charges through POST /_emulator/seed (the normal payment code path, without events),
    and times GET /v1/charges?customer=...&created[gte]=...&limit=100 (and an unfiltered page).
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stripe_emulator.testing import EmulatorProcess


class Client:
    """One keep-alive connection, as an SDK's session would hold."""

    def __init__(self, api_base: str, key: str):
        parts = urlsplit(api_base)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.headers = {"Authorization": f"Bearer {key}",
                        "Content-Type": "application/x-www-form-urlencoded"}

    def call(self, method: str, path: str, params: dict | None = None) -> tuple[int, dict]:
        body = None
        if method == "POST":
            body = urlencode(params or {})
        elif params:
            path = f"{path}?{urlencode(params)}"
        self.connection.request(method, path, body=body, headers=self.headers)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read())


def payments_per_second(emulator: EmulatorProcess, threads: int, seconds: float) -> dict:
    counts = [0] * threads
    errors = [0] * threads
    start_line = threading.Barrier(threads + 1)
    deadline = [0.0]

    def worker(i: int) -> None:
        client = Client(emulator.api_base, emulator.secret_key)
        params = {"amount": "2000", "currency": "usd", "payment_method": "pm_card_visa",
                  "confirm": "true", "metadata[bench]": str(i)}
        client.call("GET", "/v1/account")  # open the connection before timing
        start_line.wait()
        while time.perf_counter() < deadline[0]:
            status, body = client.call("POST", "/v1/payment_intents", params)
            if status == 200 and body["status"] == "succeeded":
                counts[i] += 1
            else:
                errors[i] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    deadline[0] = time.perf_counter() + seconds + 0.05
    started = time.perf_counter()
    start_line.wait()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    total = sum(counts)
    return {"payments": total, "errors": sum(errors), "seconds": round(elapsed, 2),
            "payments_per_second": round(total / elapsed, 1), "threads": threads}


def list_page_timing(emulator: EmulatorProcess, charges: int, customers: int,
                     repeats: int) -> dict:
    seed = emulator.control.seed(charges=charges, customers=customers, spacing=1)
    client = Client(emulator.api_base, emulator.secret_key)
    customer = seed["customers"][0]
    # A window that holds more than one page of this customer's charges.
    gte = seed["last_created"] - (charges // 2)
    filtered = {"customer": customer, "limit": "100", "created[gte]": str(gte)}
    timings = {"filtered": [], "unfiltered": []}
    page_sizes = {}
    for name, params in (("filtered", filtered), ("unfiltered", {"limit": "100"})):
        for _ in range(repeats):
            started = time.perf_counter()
            status, body = client.call("GET", "/v1/charges", params)
            timings[name].append((time.perf_counter() - started) * 1000)
            assert status == 200, body
            page_sizes[name] = (len(body["data"]), body["has_more"])
    return {
        "charges_in_store": emulator.control.state()["counts"]["charge"],
        "seed_seconds": seed["seconds"],
        "filtered_page": {"query": filtered, "rows": page_sizes["filtered"][0],
                          "has_more": page_sizes["filtered"][1],
                          "median_ms": round(statistics.median(timings["filtered"]), 2),
                          "max_ms": round(max(timings["filtered"]), 2)},
        "unfiltered_page": {"median_ms": round(statistics.median(timings["unfiltered"]), 2),
                            "max_ms": round(max(timings["unfiltered"]), 2)},
    }


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--charges", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with EmulatorProcess(log_level="WARNING") as emulator:
        result = payments_per_second(emulator, args.threads, args.seconds)
        print(f"(a) payments (PaymentIntent create+confirm, pm_card_visa), {result['threads']} "
              f"keep-alive client threads for {result['seconds']} s: {result['payments']} ok, "
              f"{result['errors']} errors -> {result['payments_per_second']} payments/s")
        emulator.control.reset()
        pages = list_page_timing(emulator, args.charges, args.customers, args.repeats)
        filtered = pages["filtered_page"]
        print(f"(b) seeded {pages['charges_in_store']} charges in {pages['seed_seconds']} s; "
              f"GET /v1/charges?customer=..&created[gte]=..&limit=100 -> {filtered['rows']} rows "
              f"(has_more={filtered['has_more']}): median {filtered['median_ms']} ms, max "
              f"{filtered['max_ms']} ms over {args.repeats} requests")
        unfiltered = pages["unfiltered_page"]
        print(f"    unfiltered first page (limit=100): median {unfiltered['median_ms']} ms, "
              f"max {unfiltered['max_ms']} ms")
        print(f"    emulator RSS: {rss_mb(emulator.process.pid)} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
