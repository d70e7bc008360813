"""`flowtrace export --format pstats|collapsed|speedscope|perfetto`: each read back by its
consumer's parser where Python has one (`pstats`), else checked against its format (the
speedscope file schema's rules, a protobuf decode of the Perfetto trace), exactly on a session
with known times and for well-formedness on random ones."""

from __future__ import annotations

import io
import json
import pathlib
import pstats
import subprocess
import sys
from collections import defaultdict
from typing import Any

import pytest
from trace_builder import random_session, write_profile_sample

from flowtrace.export import EXPORTS
from flowtrace.ftr.scan import survey
from flowtrace.profile import profile

ENDINGS = ("finished", "killed", "stopped")


@pytest.fixture
def sample(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "p.ftr"
    write_profile_sample(path)
    return path


def export_text(path: pathlib.Path, fmt: str) -> str:
    out = io.StringIO()
    EXPORTS[fmt].write(survey(path), out)
    return out.getvalue()


def export_bytes(path: pathlib.Path, fmt: str) -> bytes:
    out = io.BytesIO()
    EXPORTS[fmt].write(survey(path), out)
    return out.getvalue()


# --- pstats -----------------------------------------------------------------------------------

def test_pstats_loads_in_pstats(sample: pathlib.Path, tmp_path: pathlib.Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "flowtrace", "export", str(sample), "-f", "pstats"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == f"flowtrace: wrote {tmp_path / 'p.pstats'} (pstats, 8 calls)\n"
    stats = pstats.Stats(str(tmp_path / "p.pstats")).stats  # type: ignore[attr-defined]
    main, fib, gen, leaf, work = (("/src/app.py", 1, "main"), ("/src/app.py", 10, "fib"),
                                  ("/src/app/gen.py", 5, "numbers"), ("/src/app.py", 20, "leaf"),
                                  ("/src/app/pool.py", 3, "Pool.work"))
    def s(ns: int) -> float:
        return ns / 1e9

    assert stats == {
        main: (1, 1, s(870), s(1000), {}),
        fib: (1, 3, s(90), s(90), {main: (1, 1, s(60), s(90)), fib: (0, 2, s(30), 0.0)}),
        gen: (1, 1, s(30), s(40), {main: (1, 1, s(30), s(40))}),
        leaf: (2, 2, s(110), s(110), {gen: (1, 1, s(10), s(10)), work: (1, 1, s(100), s(100))}),
        work: (1, 1, s(200), s(300), {}),
    }
    out = io.StringIO()
    pstats.Stats(str(tmp_path / "p.pstats"), stream=out).sort_stats("cumulative").print_stats()
    assert "8 function calls (6 primitive calls)" in out.getvalue()


def test_pstats_sums_functions_that_share_a_key(tmp_path: pathlib.Path) -> None:
    """Two generator expressions on one line are two functions with one pstats key (file,
    first line, name): their calls and times are summed, not one written over the other
    (found on click's test suite: one of 324,706 calls was missing)."""
    prog = tmp_path / "two.py"
    prog.write_text("def pick(rows):\n"
                    "    return sorted(r for r in rows) == sorted(\n"
                    "        r for r in reversed(rows))\n"
                    "def main():\n"
                    "    return pick([2, 1]), pick([3])\n"
                    "main()\n")
    proc = subprocess.run([sys.executable, "-m", "flowtrace", "run", "-o", str(tmp_path / "t.ftr"), str(prog)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    info = survey(tmp_path / "t.ftr")
    stats = pstats.Stats(str(_pstats_file(info, tmp_path))).stats  # type: ignore[attr-defined]
    f = str(prog)
    module, main, pick, genexpr = (f, 1, "<module>"), (f, 4, "main"), (f, 1, "pick"), (f, 2, "pick.<locals>.<genexpr>")
    assert {k: v[:2] for k, v in stats.items()} == {module: (1, 1), main: (1, 1), pick: (2, 2), genexpr: (4, 4)}
    assert {k: v[:2] for k, v in stats[genexpr][4].items()} == {pick: (4, 4)}
    times = profile(info).functions
    mine = [t for fid, t in times.items() if info.functions[fid].qualname == "pick.<locals>.<genexpr>"]
    assert len(mine) == 2  # two functions (code objects), one key
    assert stats[genexpr][2:4] == pytest.approx((sum(t.self for t in mine) / 1e9, sum(t.total for t in mine) / 1e9),
                                                rel=1e-12)  # (seconds summed: float rounding)
    assert pstats.Stats(str(tmp_path / "t.pstats")).total_calls == 8  # type: ignore[attr-defined]


def _pstats_file(info: Any, tmp_path: pathlib.Path) -> pathlib.Path:
    out = tmp_path / "t.pstats"
    with open(out, "wb") as f:
        EXPORTS["pstats"].write(info, f)
    return out


# --- collapsed --------------------------------------------------------------------------------

def test_collapsed_stacks(sample: pathlib.Path) -> None:
    assert sorted(export_text(sample, "collapsed").splitlines()) == [
        "thread MainThread;main (app.py:1) 870",
        "thread MainThread;main (app.py:1);fib (app.py:10) 60",
        "thread MainThread;main (app.py:1);fib (app.py:10);fib (app.py:10) 20",
        "thread MainThread;main (app.py:1);fib (app.py:10);fib (app.py:10);fib (app.py:10) 10",
        "thread MainThread;main (app.py:1);numbers (app/gen.py:5) 30",
        "thread MainThread;main (app.py:1);numbers (app/gen.py:5);leaf (app.py:20) 10",
        "thread worker;Pool.work (app/pool.py:3) 200",
        "thread worker;Pool.work (app/pool.py:3);leaf (app.py:20) 100",
    ]


# --- speedscope -------------------------------------------------------------------------------

def check_speedscope(doc: dict[str, Any]) -> None:
    """The rules of https://www.speedscope.app/file-format-schema.json that apply to an evented
    file, and what speedscope's importer checks on top: each close matches the frame on top."""
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = doc["shared"]["frames"]
    assert all(isinstance(f["name"], str) for f in frames)
    assert isinstance(doc["profiles"], list) and 0 <= doc["activeProfileIndex"] <= max(0, len(doc["profiles"]) - 1)
    for p in doc["profiles"]:
        assert p["type"] == "evented" and p["unit"] == "nanoseconds" and isinstance(p["name"], str)
        stack: list[int] = []
        at = p["startValue"]
        for e in p["events"]:
            assert e["type"] in ("O", "C") and 0 <= e["frame"] < len(frames)
            assert p["startValue"] <= at <= e["at"] <= p["endValue"]
            at = e["at"]
            if e["type"] == "O":
                stack.append(e["frame"])
            else:
                assert stack and stack.pop() == e["frame"]
        assert not stack


def test_speedscope_exact(sample: pathlib.Path) -> None:
    doc = json.loads(export_text(sample, "speedscope"))
    check_speedscope(doc)
    assert [f["name"] for f in doc["shared"]["frames"]] == ["main", "fib", "numbers", "leaf", "Pool.work"]
    main, worker = doc["profiles"]
    assert (main["name"], main["startValue"], main["endValue"]) == ("MainThread", 0, 1000)
    assert [(e["type"], e["frame"], e["at"]) for e in main["events"]] == [
        ("O", 0, 0), ("O", 1, 10), ("O", 1, 20), ("O", 1, 30), ("C", 1, 40), ("C", 1, 50), ("C", 1, 100),
        ("O", 2, 200), ("C", 2, 220), ("O", 2, 300), ("O", 3, 305), ("C", 3, 315), ("C", 2, 320), ("C", 0, 1000)]
    assert [(e["type"], e["frame"], e["at"]) for e in worker["events"]] == [
        ("O", 4, 100), ("O", 3, 150), ("C", 3, 250), ("C", 4, 400)]


@pytest.mark.parametrize("seed", range(10))
def test_speedscope_of_random_sessions_is_well_formed(tmp_path: pathlib.Path, seed: int) -> None:
    path = tmp_path / "s.ftr"
    random_session(path, seed, steps=300, threads=1 + seed % 3, ending=ENDINGS[seed % 3])
    check_speedscope(json.loads(export_text(path, "speedscope")))


# --- perfetto ---------------------------------------------------------------------------------

def fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """A protobuf message's fields in order: (number, int for a varint, bytes when delimited)."""
    out, pos = [], 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            size, pos = _varint(data, pos)
            out.append((number, data[pos : pos + size]))
            pos += size
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def one(msg: list[tuple[int, Any]], number: int, default: Any = None) -> Any:
    return next((v for n, v in msg if n == number), default)


def decode_trace(data: bytes) -> dict[str, Any]:
    """Tracks, interned names and the events of each track, from the raw bytes."""
    tracks: dict[int, dict[str, Any]] = {}
    names: dict[int, str] = {}
    notes: dict[int, str] = {}
    events: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    packets = fields(data)
    assert all(n == 1 for n, _ in packets)
    for _n, raw in packets:
        p = fields(raw)
        desc = one(p, 60)
        if desc is not None:
            d = fields(desc)
            proc, thread = one(d, 3), one(d, 4)
            tracks[one(d, 1)] = {"parent": one(d, 5), "name": (one(d, 2) or b"").decode(),
                                 "process": fields(proc) if proc else None, "thread": fields(thread) if thread else None}
            continue
        assert one(p, 10) == 1  # one packet sequence
        interned = one(p, 12)
        if interned is not None:
            for n, entry in fields(interned):
                e = fields(entry)
                (names if n == 2 else notes)[one(e, 1)] = one(e, 2).decode()
        te = one(p, 11)
        if te is None:
            continue
        assert one(p, 13) == 2  # needs the interned state
        t = fields(te)
        args = {notes[one(f, 1)]: (one(f, 6).decode() if one(f, 6) is not None else one(f, 4))
                for f in (fields(v) for n, v in t if n == 4)}
        name = names.get(one(t, 10)) if one(t, 10) is not None else (one(t, 23) or b"").decode() or None
        events[one(t, 11)].append((one(p, 8), {1: "B", 2: "E", 3: "I"}[one(t, 9)], name, args))
    return {"tracks": tracks, "events": dict(events), "names": names, "notes": notes}


def check_slices(trace: dict[str, Any]) -> None:
    """On every track: times never go back, every end closes an open slice, none left open."""
    for uuid, evs in trace["events"].items():
        assert uuid in trace["tracks"]
        depth, at = 0, 0
        for t, kind, _name, _args in evs:
            assert t >= at
            at = t
            depth += {"B": 1, "E": -1, "I": 0}[kind]
            assert depth >= 0
        assert depth == 0


def test_perfetto_exact(sample: pathlib.Path) -> None:
    trace = decode_trace(export_bytes(sample, "perfetto"))
    check_slices(trace)
    tracks = trace["tracks"]
    assert one(tracks[1]["process"], 1) == 42 and one(tracks[1]["process"], 6) == b"app.py"
    threads = {uuid: (one(t["thread"], 2), one(t["thread"], 5).decode()) for uuid, t in tracks.items() if t["thread"]}
    assert sorted(threads.values()) == [(101, "MainThread"), (102, "worker")]
    assert all(tracks[uuid]["parent"] == 1 for uuid in threads)
    main = next(uuid for uuid, (_tid, name) in threads.items() if name == "MainThread")
    assert trace["events"][main] == [
        (0, "B", "main", {"call": 1, "args": "x=1"}), (10, "B", "fib", {"call": 2, "args": "n=2"}),
        (20, "B", "fib", {"call": 3, "args": "n=1"}), (30, "B", "fib", {"call": 4, "args": "n=0"}),
        (35, "I", "raise", {"text": "ValueError: n=0"}), (40, "E", None, {"exception": "ValueError: n=0"}),
        (50, "E", None, {"result": "1"}), (100, "E", None, {"result": "1"}),
        (200, "B", "numbers", {"call": 5, "args": "n=3"}), (220, "E", None, {}), (300, "B", "numbers", {}),
        (305, "B", "leaf", {"call": 6, "args": ""}), (315, "E", None, {"result": "None"}), (320, "E", None, {"result": "None"}),
        (1000, "E", None, {"result": "None"})]
    assert sorted(trace["names"].values()) == ["Pool.work", "fib", "leaf", "main", "numbers"]


@pytest.mark.parametrize("seed", range(10))
def test_perfetto_of_random_sessions_is_well_formed(tmp_path: pathlib.Path, seed: int) -> None:
    path = tmp_path / "s.ftr"
    random_session(path, seed, steps=300, threads=1 + seed % 3, ending=ENDINGS[seed % 3])
    trace = decode_trace(export_bytes(path, "perfetto"))
    check_slices(trace)
    task_tracks = [uuid for uuid, t in trace["tracks"].items() if not t["thread"] and not t["process"]]
    assert {trace["tracks"][u]["name"] for u in task_tracks} == {"Task-1", "task 2"}


def test_every_export_by_the_command(sample: pathlib.Path, tmp_path: pathlib.Path) -> None:
    for name, export in EXPORTS.items():
        proc = subprocess.run([sys.executable, "-m", "flowtrace", "export", str(sample), "-f", name, "-o", "-"],
                              capture_output=True, timeout=60)
        assert proc.returncode == 0 and proc.stderr == b"", name
        assert proc.stdout == (export_bytes(sample, name) if export.binary else export_text(sample, name).encode())
