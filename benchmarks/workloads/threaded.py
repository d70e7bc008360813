"""Threads: 4 threads each making ~15k calls (per-thread stacks, shared buffers)."""

import threading


def f(n):
    return n + 1


def g(n):
    return f(n) * 2


def work():
    for i in range(7500):
        g(i)


def run():
    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
