"""The generator workload of benchmarks/generators.py: one generator yields N values to a `for`
loop, nothing is called inside it (issue 8 item 1: each yield used to cost two mark rows).

    python gen_yield.py [N]

Prints one line, `yields=N seconds=S`: the loop's own wall time (perf_counter), so the
process start-up and a tracer's saving are left out of it."""

import sys
import time


def numbers(n):
    for i in range(n):
        yield i


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000_000
    total = 0
    t0 = time.perf_counter()
    for v in numbers(n):
        total += v
    seconds = time.perf_counter() - t0
    assert total == n * (n - 1) // 2
    print(f"yields={n} seconds={seconds:.6f}")


main()
