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


def test_records_are_made_into_texts_only_when_one_is_asked_for() -> None:
    """The loader keeps a chunk of value records as stored (a live view reads ~10^5 calls a
    poll and shows forty): the texts are the same as the eager decoder's, made on first use."""
    from flowtrace.ftr.chunks import Chunk
    from flowtrace_tui.model.loader import TraceData

    data = TraceData()
    data.feed([Chunk(F.STRS, HAND_MADE, 0), Chunk(F.STRS, F.encode_strings(20, ["plain"]), 0)])
    packed, plain = data.strings.chunks
    assert isinstance(packed, PackedStrings) and not packed.compressed  # not expanded yet
    assert not isinstance(plain, PackedStrings)  # a chunk of texts only is read as it is
    assert data.strings.count == 20
    assert data.strings.texts(range(5, 5 + len(HAND_MADE_TEXTS))) == {5 + i: t for i, t in enumerate(HAND_MADE_TEXTS)}
    assert isinstance(data.strings.chunks[0], PackedStrings)  # `texts` keeps none
    assert [data.strings.text(5 + i) for i in range(len(HAND_MADE_TEXTS))] == HAND_MADE_TEXTS
    assert not isinstance(data.strings.chunks[0], PackedStrings)  # kept once shown
    assert data.strings.text(20) == "plain"
