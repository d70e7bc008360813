"""Human-readable durations and counts, fixed width where the tree columns need it."""

from __future__ import annotations


def fmt_ns(ns: int) -> str:
    """A duration in the largest unit that keeps 3 significant digits: 950 ns, 1.25 ms, 3.40 s."""
    ns = int(ns)
    if ns < 0:
        return "-" + fmt_ns(-ns)
    if ns < 1_000:
        return f"{ns} ns"
    for unit, scale in (("µs", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000)):
        v = ns / scale
        if v < 999.5 or unit == "s":
            if unit == "s" and v >= 3600:
                h, rem = divmod(int(v), 3600)
                return f"{h}h{rem // 60:02d}m"
            if unit == "s" and v >= 600:
                m, s = divmod(int(v), 60)
                return f"{m}m{s:02d}s"
            if v < 9.995:
                return f"{v:.2f} {unit}"
            if v < 99.95:
                return f"{v:.1f} {unit}"
            return f"{v:.0f} {unit}"
    return f"{ns} ns"  # unreachable


def plural(n: int, noun: str) -> str:
    """`n` and the noun, plural unless n == 1: "1 call", "2,048 calls"."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def fmt_count(n: int) -> str:
    """1234 -> '1,234'; 1_234_567 -> '1.2M' (compact for tree columns)."""
    n = int(n)
    if n < 100_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1000:.0f}k"
    return f"{n / 1_000_000:.1f}M"


def parse_duration(text: str) -> int:
    """'1ms', '250 us', '2.5s', '300ns', '5' (ms) -> nanoseconds. Raises ValueError with a message."""
    t = text.strip().lower().replace(" ", "").replace("µs", "us")
    if not t:
        return 0
    units = (("ns", 1), ("us", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000))
    for suffix, scale in units:
        if t.endswith(suffix) and (suffix != "s" or not t.endswith(("ns", "us", "ms"))):
            num = t[: -len(suffix)]
            break
    else:
        num, scale = t, 1_000_000
    try:
        value = float(num)
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (try 1ms, 250us, 2s)") from None
    if value < 0:
        raise ValueError("a duration cannot be negative")
    return int(round(value * scale))
