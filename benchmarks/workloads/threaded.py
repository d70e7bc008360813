"""Threads: 4 threads each making ~15k calls that take nested tuples (per-thread stacks,
shared buffers, container arguments rendered safely)."""

import threading


def f(pair):
    return pair[0] + 1


def g(n, meta):
    return f((n, meta)) * 2


def work():
    for i in range(7500):
        g(i, ("job", (i, i + 1)))


def run():
    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
