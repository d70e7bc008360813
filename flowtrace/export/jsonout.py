"""JSON text for the exporters that list every call (`json`, `chrome`): one encoder for the
whole export and the items of a long array written a batch at a time.

`json.dumps(value, ensure_ascii=False, default=str)` builds a new `JSONEncoder` at every call
(its keyword arguments are not the defaults), and an export made one `dumps` and two `write`s
per call or slice: 1.5 M of each for a 775 k-call session. The same encoder, made once, gives
the same text; joining a batch of items makes one write of them.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, TextIO

# What json.dumps(value, ensure_ascii=False, default=str) makes: text as it is (not \u-escaped),
# and str() of anything JSON has no type for.
dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
string = json.encoder.encode_basestring  # (the same encoder's text of a str: quoted, escaped)


# An item's JSON text already made (by an exporter that writes its commonest item itself): a
# str, which `write_items` writes as it is (the exporters' other items are dicts and lists). A
# plain str, not a subclass: making a subclass's instance copied each item's text once more.
Encoded = str

_BATCH = 2048  # items a write: ~0.5 MB of text, whatever the session's size
_BETWEEN = ",\n  "


def write_items(out: TextIO, items: Iterable[Any]) -> None:
    """Write each item's JSON on a line of its own, indented, with commas between: the body
    of a JSON array (a str item is its JSON text already: `Encoded`). Memory: one batch of
    items' text at a time."""
    batch: list[str] = []
    before = "\n  "
    for item in items:
        batch.append(item if type(item) is str else dumps(item))
        if len(batch) == _BATCH:
            out.write(before + _BETWEEN.join(batch))
            batch.clear()
            before = _BETWEEN
    if batch:
        out.write(before + _BETWEEN.join(batch))
