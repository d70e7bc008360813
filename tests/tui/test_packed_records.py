"""The explorer's packed (still compressed) STRS chunks read value records (FORMAT 1.4) too:
a writer may compress a chunk with records, though flowtrace's own stores them as they are."""

from __future__ import annotations

import zlib

import numpy as np

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


def test_a_part_s_records_stay_packed_under_the_session_s_ids() -> None:
    """Another process's chunk of records (a session of several processes) is kept as stored
    too, its ids made the session's: after the texts the session holds."""
    from flowtrace.ftr.chunks import Chunk
    from flowtrace_tui.model.loader import TraceData
    from flowtrace_tui.model.parts import PartIds, ProcessRecord

    data = TraceData()
    data.feed([Chunk(F.STRS, F.encode_strings(1, ["root", "texts"]), 0)])
    data.processes += [ProcessRecord(0, "root.ftr"), ProcessRecord(1, "child.ftr")]
    part = PartIds(1)
    data.feed([Chunk(F.STRS, HAND_MADE, 0)], part)
    packed = data.strings.chunks[-1]
    assert isinstance(packed, PackedStrings) and packed.first_id == 3
    assert part.strings(np.arange(5, 5 + len(HAND_MADE_TEXTS))).tolist() == list(range(3, 3 + len(HAND_MADE_TEXTS)))
    want = {3 + i: t for i, t in enumerate(HAND_MADE_TEXTS)}
    assert data.strings.texts(range(3, 3 + len(HAND_MADE_TEXTS))) == want
    assert [data.strings.text(i) for i in want] == list(want.values())
    assert data.strings.text(2) == "texts" and data.strings.count == 2 + len(HAND_MADE_TEXTS)
