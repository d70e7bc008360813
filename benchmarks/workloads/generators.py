"""pyperformance-style `generators`: a binary tree walked by recursive generators (`yield
from` at every level) and a pipeline of generator stages, written afresh for this benchmark.
Each yielded value suspends and resumes a chain of generator frames."""


class Tree:
    def __init__(self, left, value, right):
        self.left, self.value, self.right = left, value, right

    def __iter__(self):
        if self.left:
            yield from self.left
        yield self.value
        if self.right:
            yield from self.right


def build(lo, hi):
    if lo >= hi:
        return None
    mid = (lo + hi) // 2
    return Tree(build(lo, mid), mid, build(mid + 1, hi))


def evens(values):
    for v in values:
        if v % 2 == 0:
            yield v


def squares(values):
    for v in values:
        yield v * v


def run():
    tree = build(0, 2000)
    total = 0
    for _ in range(3):
        total += sum(tree)
    total += sum(squares(evens(range(20000))))
    return total
