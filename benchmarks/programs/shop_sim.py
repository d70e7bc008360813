"""A deterministic shop simulation: the program `benchmarks/real_trace.py` records (~6.4 M calls).

It has the shapes real programs have, so that the explorer is measured on a trace recorded by
`flowtrace run` and not only on synthetic ones:

- a wide loop: `process_orders` calls `handle_order` a million times (one node with 1 M children);
  most orders only check stock, one in four goes through methods (`Order.build` a class method,
  `Order.total` with a generator expression, `Item.price`, a property);
- recursion: `fib` (a bushy call tree) and `Category.depth_first` over a nested catalogue, plus
  one deep chain (`countdown`, 400 levels);
- a generator pipeline: `read_events` → `parse_events` (generators whose children interleave
  with their consumer's) feeding `apply_event`;
- an occasional exception, raised and caught (`validate` on a bad order).

No clock, no randomness beyond a fixed linear congruential sequence: the same calls every run.

    python shop_sim.py [SCALE]   (SCALE 1.0 ≈ 6.4 M calls)
"""

from __future__ import annotations

import sys


class Item:
    def __init__(self, sku: int, cents: int) -> None:
        self.sku = sku
        self.cents = cents

    def price(self, qty: int) -> int:
        return self.cents * qty - self.discount(qty)

    def discount(self, qty: int) -> int:
        return self.cents // 10 if qty >= 3 else 0


class Order:
    def __init__(self, number: int, lines: list[tuple[Item, int]]) -> None:
        self.number = number
        self.lines = lines

    @property
    def size(self) -> int:
        return len(self.lines)

    def total(self) -> int:
        return sum(item.price(qty) for item, qty in self.lines)

    @classmethod
    def build(cls, number: int, catalogue: list[Item], seed: int) -> "Order":
        lines = []
        for k in range(1 + seed % 3):
            lines.append((catalogue[(seed >> (4 * k)) % len(catalogue)], 1 + (seed >> k) % 4))
        return cls(number, lines)


class InvalidOrder(Exception):
    pass


def validate(order: Order) -> None:
    if order.size == 3 and order.number % 97 == 0:
        raise InvalidOrder(f"order {order.number}: too many lines")


def lcg(x: int) -> int:
    return (x * 1103515245 + 12345) & 0x7FFFFFFF


def in_stock(sku: int) -> bool:
    return sku % 11 != 0


def handle_order(number: int, catalogue: list[Item], seed: int) -> int:
    if seed % 4:  # most orders: a stock check only
        return int(in_stock(seed % 1000))
    order = Order.build(number, catalogue, seed)
    try:
        validate(order)
    except InvalidOrder:
        return 0
    return order.total()


def process_orders(n: int, catalogue: list[Item]) -> int:
    revenue = 0
    seed = 7
    for number in range(n):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF  # inline: the wide node stays 1-level
        revenue += handle_order(number, catalogue, seed)
    return revenue


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


class Category:
    def __init__(self, name: str, children: list["Category"]) -> None:
        self.name = name
        self.children = children

    def depth_first(self) -> int:
        return 1 + sum(c.depth_first() for c in self.children)


def make_catalogue_tree(depth: int, fan: int, name: str = "root") -> Category:
    if depth == 0:
        return Category(name, [])
    return Category(name, [make_catalogue_tree(depth - 1, fan, f"{name}.{i}") for i in range(fan)])


def countdown(n: int) -> int:
    return 0 if n == 0 else 1 + countdown(n - 1)


def read_events(n: int):
    x = 1
    for i in range(n):
        x = lcg(x)
        yield f"{i}:{x % 5}:{x % 1000}"


def parse_events(lines):
    for line in lines:
        i, kind, amount = line.split(":")
        yield int(kind), int(amount)


def apply_event(stock: dict[int, int], kind: int, amount: int) -> None:
    stock[kind] = stock.get(kind, 0) + (amount if kind % 2 else -amount)


def replay(n: int) -> dict[int, int]:
    stock: dict[int, int] = {}
    for kind, amount in parse_events(read_events(n)):
        apply_event(stock, kind, amount)
    return stock


def main(scale: float = 1.0) -> None:
    catalogue = [Item(sku, 100 + 37 * sku % 900) for sku in range(64)]
    revenue = process_orders(int(1_000_000 * scale), catalogue)
    nodes = sum(make_catalogue_tree(6, 5).depth_first() for _ in range(max(1, int(4 * scale))))
    fibs = [fib(24) for _ in range(max(1, int(4 * scale)))]
    deep = sum(countdown(400) for _ in range(max(1, int(50 * scale))))
    stock = replay(int(600_000 * scale))
    print(f"revenue {revenue}, catalogue nodes {nodes}, fib {fibs[0]}, deep {deep}, stock {sorted(stock.items())}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
