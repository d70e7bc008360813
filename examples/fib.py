"""Recursive Fibonacci: the smallest program whose call tree is worth looking at.

Usage: python examples/fib.py [N]   (default N = 5)
"""

import sys


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"fib({n}) = {fib(n)}")
