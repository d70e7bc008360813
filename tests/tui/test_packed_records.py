"""The explorer's packed (still compressed) STRS chunks read value records (FORMAT 1.4) too:
a writer may compress a chunk with records, though flowtrace's own stores them as they are."""

from __future__ import annotations

import zlib

from flowtrace.ftr import format as F
from flowtrace_tui.model.loader import PackedStrings

from test_value_records import HAND_MADE, HAND_MADE_TEXTS


def test_packed_chunk_with_records_reads_its_texts() -> None:
    packed = PackedStrings(zlib.compress(HAND_MADE))
    assert (packed.first_id, packed.count) == (5, len(HAND_MADE_TEXTS))
    for upto in (None, 5, 5 + len(HAND_MADE_TEXTS) - 1):
        strings = packed.decoded(upto)
        assert [strings.text(5 + i) for i in range(strings.count)] == HAND_MADE_TEXTS
    assert F.expand_strings(HAND_MADE) == F.encode_strings(5, HAND_MADE_TEXTS)
