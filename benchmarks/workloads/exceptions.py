"""Exception-heavy: every third call raises and is caught two frames up (~40k calls)."""


def check(i):
    if i % 3 == 0:
        raise ValueError(i)
    return i


def middle(i):
    return check(i) + 1


def run():
    caught = 0
    for i in range(20000):
        try:
            middle(i)
        except ValueError:
            caught += 1
    return caught
