"""Recursive: fib(22), ~57k calls of one small function."""


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def run():
    return fib(22)
