"""A small order-processing simulation: the program `make demo` records.

It is ordinary Python with a bit of everything a trace should show clearly: classes and
methods, recursion (bundle prices), a generator (order lines), an exception caught where it is
raised and another handled two calls up the stack, a thread pool (shipping quotes) and a little
asyncio (payment checks run concurrently). It runs in well under a second and prints the same
output every time.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field


class OutOfStock(Exception):
    """Raised when an order asks for more than the warehouse holds."""


@dataclass
class Product:
    sku: str
    name: str
    price: int  # cents
    parts: list[tuple[str, int]] = field(default_factory=list)  # a bundle: (sku, quantity)


CATALOG = {
    p.sku: p
    for p in [
        Product("tea", "Green tea", 450),
        Product("cup", "Cup", 800),
        Product("pot", "Tea pot", 2500),
        Product("set", "Tea set", 0, [("pot", 1), ("cup", 2)]),
        Product("gift", "Gift box", 300, [("set", 1), ("tea", 3)]),
    ]
}


class Warehouse:
    def __init__(self, stock: dict[str, int]) -> None:
        self.stock = dict(stock)

    def take(self, sku: str, quantity: int) -> None:
        have = self.stock.get(sku, 0)
        if have < quantity:
            raise OutOfStock(f"{sku}: want {quantity}, have {have}")
        self.stock[sku] = have - quantity


def unit_price(sku: str) -> int:
    """A product's price: its own, plus its parts' prices (recursively) for a bundle."""
    product = CATALOG[sku]
    return product.price + sum(qty * unit_price(part) for part, qty in product.parts)


@dataclass
class Order:
    number: int
    customer: str
    items: dict[str, int]

    def lines(self):
        """Yield (sku, quantity, line total) for each item: a generator."""
        for sku, quantity in self.items.items():
            yield sku, quantity, quantity * unit_price(sku)


def discount(total: int, customer: str) -> int:
    try:
        rate = {"ada": 10, "grace": 5}[customer]
    except KeyError:  # caught right here: most customers have no discount
        rate = 0
    return total * rate // 100


def reserve(warehouse: Warehouse, order: Order) -> None:
    for sku, quantity in order.items.items():
        warehouse.take(sku, quantity)  # may raise OutOfStock, handled in process()


def invoice(warehouse: Warehouse, order: Order) -> int:
    reserve(warehouse, order)
    total = sum(line for _sku, _qty, line in order.lines())
    return total - discount(total, order.customer)


def process(warehouse: Warehouse, orders: list[Order]) -> dict[int, int | str]:
    results: dict[int, int | str] = {}
    for order in orders:
        try:
            results[order.number] = invoice(warehouse, order)
        except OutOfStock as exc:  # raised two calls down, in Warehouse.take
            results[order.number] = f"rejected ({exc})"
    return results


def shipping_quote(order: Order) -> int:
    """Shipping cost in cents; computed on a worker thread."""
    weight = sum(quantity * (3 if sku in ("pot", "set", "gift") else 1) for sku, quantity in order.items.items())
    return 500 + 120 * weight


async def check_payment(order: Order, amount: int) -> bool:
    await asyncio.sleep(0.001 * (order.number % 3))  # a pretend payment provider
    return amount < 20_000


async def check_payments(orders: list[Order], amounts: dict[int, int | str]) -> list[bool]:
    checks = [check_payment(o, amounts[o.number]) for o in orders if isinstance(amounts[o.number], int)]
    return list(await asyncio.gather(*checks))


def main() -> None:
    warehouse = Warehouse({"tea": 20, "cup": 6, "pot": 2, "set": 1, "gift": 1})
    orders = [
        Order(1, "ada", {"tea": 2, "cup": 2}),
        Order(2, "linus", {"gift": 1}),
        Order(3, "grace", {"pot": 3}),  # only 2 pots: rejected
        Order(4, "guido", {"set": 1, "tea": 1}),
    ]
    amounts = process(warehouse, orders)
    with ThreadPoolExecutor(max_workers=2) as pool:
        quotes = list(pool.map(shipping_quote, orders))
    payments = asyncio.run(check_payments(orders, amounts))
    for order, quote in zip(orders, quotes):
        print(f"order {order.number} ({order.customer}): {amounts[order.number]}, shipping {quote}")
    print(f"payments ok: {payments}")
    print(f"stock left: {warehouse.stock}")


if __name__ == "__main__":
    main()
