/*
 * flowtrace._crecorder -- the recording hot path in C (the Python side is
 * flowtrace/recorder/c.py; the reference semantics are flowtrace/recorder/python.py).
 *
 * The sys.monitoring callbacks are METH_FASTCALL methods of one `Core` object. They keep
 * per-thread stacks and the session's rows in plain C memory (no Python object is created
 * per call), read timestamps from the TSC or CLOCK_MONOTONIC (mapped at drain onto
 * CLOCK_MONOTONIC, time.perf_counter_ns's clock on Linux: see stamp()) and cache the
 * per-code-object filter decision in the code object's co_extra slot.
 * What needs Python -- the filter decision, the thread/task tables, exception texts, the
 * text of containers and (in full mode) of other objects -- is done by hooks into the
 * wrapper, once per code object / thread / task / exception, never per plain call; the
 * filter's answer once per file name and module where it holds for all their code (codes.c).
 *
 * Concurrency: callbacks and drain() run with the GIL held (free-threaded builds are not
 * supported), so the session buffers are shared by all threads without a lock. A hook that
 * runs Python may release the GIL: code that calls one re-reads any buffer pointer after
 * it, and captures values into local storage before appending them.
 *
 * Values (safe mode, see capture_value): None, bools, 64-bit ints and floats are stored
 * inline; exact str / bytes / big int / complex / Ellipsis / NotImplemented are immutable,
 * so a reference is kept until the next drain (at most one flush interval) and they are
 * rendered then -- the same text as at call time, and invisible to the program (no
 * __del__, no weakref). A tuple or list of scalars is packed at call time into a value
 * record's slot (packed.c: no reference, no text; in safe mode instances of one class in it
 * too, their type referenced as V_OPAQUE's is); other builtin containers can mutate, so
 * they are rendered at call time (reprs.value_text, which never calls a user __repr__ in safe
 * mode). Any other object is
 * kept as (type, address): the type is referenced until the drain, the object not at all,
 * so recording never extends an object's life or runs its code (nor a class's: a collection
 * that could free a class the batch references is preceded by its release from the batch, collect.c). Strings get provisional
 * ids at event time; the drain renders them, removes duplicates and renumbers.
 */
#ifndef FLOWTRACE_CRECORDER_H
#define FLOWTRACE_CRECORDER_H
/* The files (each one concern):
 *   clock.c     the hot path's clock (TSC or CLOCK_MONOTONIC) and its mapping to ns
 *   buffers.c   row buffers (growth), provisional texts, the error policy of callbacks
 *   threads.c   per-thread state (stacks) and backpressure
 *   codes.c     per-code-object decisions (filter, argument layout)
 *   capture.c   value capture at event time (memo, small ints, exception texts)
 *   packed.c    tuples and lists of scalars (and instances) packed at event time into value record slots
 *   render.c    rendering captured values at drain (reprs.py's text, in C), the STRS payload
 *               (texts and value records) and its reader (expand_strings)
 *   strtab.c    final string ids by UTF-8 bytes (deduplication)
 *   encode.c    drain: rows to the CALL/EXIT/MARK payloads (varints) and the STRS payload
 *   callbacks.c the sys.monitoring callbacks (and asyncio task lookup)
 *   control.c   start / seed / stop and the other control methods
 *   core.c      the Core type and the module (constants exported for the import check)
 *   genwatch.c  generators closed where CPython sends no event (both recorders)
 *   guard.c     the Python recorder's callbacks guarded against asynchronous exceptions
 *   sighold.c   the program's signal handlers held off while our Python code runs in a callback
 *   audit.c     the process's audit hook: Python called only for the events it needs
 *   collect.c   a collection that could free a class a batch holds: the class released from the batch first
 *   profile_pass.c  not the recorder: profile.py's pass (`flowtrace stats`, pstats, collapsed) over a
 *               session's decoded columns, the same numbers
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
/* The recorder's own memory (rows, texts, tables) comes from the C library, not from Python's
 * allocators: tracemalloc traces PyMem_Raw* and PyMem_*, and a program that measures its own
 * memory with it (tracemalloc.get_traced_memory: more-itertools' test suite does) must not
 * count buffers that grow with its calls -- 7.4 MB after 20000 calls with arguments. Every
 * PyMem_Raw* in these sources handles memory of ours only; memory that Python hands us
 * (PyOS_double_to_string's) is still freed with PyMem_Free. */
static inline void *ft_raw_malloc(size_t n) { return malloc(n ? n : 1); }
static inline void *ft_raw_calloc(size_t n, size_t size) { return n && size ? calloc(n, size) : calloc(1, 1); }
static inline void *ft_raw_realloc(void *p, size_t n) { return realloc(p, n ? n : 1); }
#undef PyMem_RawMalloc
#undef PyMem_RawCalloc
#undef PyMem_RawRealloc
#undef PyMem_RawFree
#define PyMem_RawMalloc ft_raw_malloc
#define PyMem_RawCalloc ft_raw_calloc
#define PyMem_RawRealloc ft_raw_realloc
#define PyMem_RawFree free
#include <stdint.h>
#include <string.h>
#include <time.h>

#ifdef Py_GIL_DISABLED
#error "flowtrace._crecorder needs the GIL (free-threaded builds use the Python recorder)"
#endif

/* Arguments are read straight from the callee's interpreter frame (no frame object, no
 * f_locals dict): that is what makes capture cheap. The layout is internal and version
 * specific, hence the internal header; the extension is built per Python version. */
#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#include "opcode.h"   /* CLEANUP_THROW, END_ASYNC_FOR (per version) */
#undef Py_BUILD_CORE

#if PY_VERSION_HEX >= 0x030D0000
#define CURRENT_FRAME(ts) ((ts)->current_frame)
#define FRAME_CODE(f) ((PyObject *)(f)->f_executable)
#else
#define CURRENT_FRAME(ts) ((ts)->cframe->current_frame)
#define FRAME_CODE(f) ((PyObject *)(f)->f_code)
#endif

#ifndef CO_FAST_CELL
#define CO_FAST_CELL 0x40
#endif

#pragma GCC visibility push(hidden)

/* ------------------------------------------------------------------------------------ */
/* Rows, in the units of docs/FORMAT.md, except that times are ticks of the hot-path clock
 * (stamp(): raw TSC or CLOCK_MONOTONIC ns) until the drain converts them to CLOCK_MONOTONIC
 * ns, and string references (args, val, ref) are provisional ids until it renumbers them. */

/* Calls and exits -- nearly all rows -- are kept as columns, written by the callbacks
 * straight into buffers that the drain encodes into the chunk payloads (encode.c) and keeps
 * for a later batch (a fresh 4 KiB page costs a page fault, ~1.7 us). Rows kept as structs
 * and converted at drain cost a second copy of every row. Buffers come from malloc (see ft_raw_malloc);
 * every writer holds the GIL. */
typedef struct { uint32_t *par, *fn, *thr, *args, *task; int64_t *t0; uint8_t *flag; } CallCols;
typedef struct { uint32_t *call, *val; int64_t *t1; uint8_t *how; } ExitCols;
/* A mark row: 32 bytes, two a cache line (the buffer is 64-byte aligned: buffers.c grow_marks),
 * where 56-byte rows (t, t2, run, exc, call, ref, othr, n, thr, kind) took one or two lines each
 * and 75 % more fresh pages a batch. exc: internal, the exception of a handled mark (kind
 * MARK_HANDLED only, unset in other rows), for RERAISE; kind 0 = dropped. A fold (kind MARK_FOLD)
 * takes two rows: its head -- t (its first resume), call, ref (its first run's value), othr (the
 * resumer), as any mark -- and right after it its tail, kind 0 (the drain's walk skips it):
 * n runs, run their summed running ticks, t2 the last run's yield. A run that extends the fold
 * writes its tail alone (Entry.fold is the tail's index + 1: callbacks.c fold_row); see
 * cb_py_yield. (The fold's thread, a field of the 56-byte row, was never read: fold_open compares
 * Susp.fthr.) */
typedef struct {
    union { int64_t t; int64_t run; };   /* a row's time; a fold tail's summed running ticks */
    union { void *exc; int64_t t2; };    /* MARK_HANDLED: its exception; a fold tail: the last yield */
    union { uint32_t call; uint32_t n; };   /* a fold tail: n */
    uint32_t ref, othr;
    uint8_t kind;
} MarkRow;
_Static_assert(sizeof(MarkRow) == 32, "MarkRow: two a cache line");
#define MARK_SLOT 11   /* the marks' place in a page (buffers.c col_grow: after the exit columns') */

/* (END_RAISE_HERE, 1.6: left by an exception raised in the call itself -- END_RAISE and that
 * call's `raise` mark in one row; cb_py_unwind) */
enum { END_RETURN = 1, END_RAISE = 2, END_UNFINISHED = 3, END_RAISE_HERE = 4 };
enum { MARK_SUSPEND = 1, MARK_RESUME = 2, MARK_THROW = 3, MARK_RAISE = 4, MARK_HANDLED = 5, MARK_FOLD = 6 };
#define CALL_PARTIAL 1
/* column encodings (ftr/format.py ENC_*; 2-4 are the varint ones of format 1.2, 5-12 of 1.3; encode.c;
 * 13, a deflated column of 1.8, writer.c; 14, a column on another's rows of 1.9) */
enum { ENC_VARINT_DELTA = 2, ENC_VARINT = 3, ENC_CONST = 4, ENC_PARENT = 5, ENC_SPARSE_DELTA = 6, ENC_SPARSE = 7,
       ENC_BITS = 8, ENC_GOLOMB_DELTA = 9, ENC_GOLOMB = 10, ENC_GOLOMB_PARENT = 11, ENC_GOLOMB_RISE = 12,
       ENC_DEFLATE = 13, ENC_SHARED = 14 };
#define DEFLATE_COLUMNS 2   /* a chunk's `compress` in NativeWriter.put: its columns deflated (writer.c) */
#define ZLIB_MIN_BYTES_PER_CALL 2   /* ftr/writer.py's rules for deflating a batch's MARK chunk (and ids), */
#define ZLIB_MAX_STRS_PER_MARK 2    /* which encode.c's marks_payload follows (`dense`) */
#define SAMPLE_SPAN 4608   /* the coders sample 1 + n / SAMPLE_SPAN times sparser past it (encode.c sample_step; format.GOLOMB_SAMPLE_SPAN) */

/* A captured value (one argument, a result or a yielded value). */
enum {
    V_NONE = 1, V_TRUE, V_FALSE,
    V_INT,      /* u.i */
    V_FLOAT,    /* u.d */
    V_OBJ,      /* o: owned reference to an immutable builtin, rendered at drain (an exact str:
                 * memo-keyed by its address, as V_CLASS: capture.c value_key_in) */
    V_TEXT,     /* o: owned str already rendered */
    V_OPAQUE,   /* o: owned reference to the type, u.addr: the object's address */
    V_UNBOUND,  /* the frame slot was empty */
    V_DEFREPR,  /* full mode, object.__repr__: like V_OPAQUE (its text is the placeholder's) */
    V_PACKED,   /* a tuple or list of scalars packed at event time (packed.c): u.i = PACKED_AT(offset
                 * in its entry's packed bytes, length, characters of its text but for the labels of
                 * the instances in it); o: owned reference to those instances' type, or NULL */
    V_CLASS,    /* safe mode, a class: o, an owned reference to it (reprs.class_text at drain) */
    V_FUNCTION, /* safe mode, a function, generator, coroutine or async generator: o, an owned
                 * reference to its __qualname__ (a str), u.addr: its address | its NAMED_* kind */
    V_BUILTIN,  /* safe mode, a module's builtin function: o, an owned reference to it
                 * (render.c text_builtin at drain; memo-keyed by its address, as V_CLASS) */
};
/* V_FUNCTION's kinds, in its address's low bits (objects are 8-aligned): named_kind(). */
enum { NAMED_FUNCTION, NAMED_GENERATOR, NAMED_COROUTINE, NAMED_ASYNC_GENERATOR, NAMED_NONE };
static inline int
named_kind(PyTypeObject *tp)
{
    return tp == &PyFunction_Type ? NAMED_FUNCTION : tp == &PyGen_Type ? NAMED_GENERATOR
           : tp == &PyCoro_Type ? NAMED_COROUTINE : tp == &PyAsyncGen_Type ? NAMED_ASYNC_GENERATOR : NAMED_NONE;
}
/* the __qualname__ of an object of a NAMED_* kind (a function's, or a generator's: the three
 * generator types share their head) */
static inline PyObject *
named_qualname(PyObject *o, int kind)
{
    return kind == NAMED_FUNCTION ? ((PyFunctionObject *)o)->func_qualname : ((PyGenObject *)o)->gi_qualname;
}
#define PACKED_AT(off, len, chars) ((int64_t)((uint64_t)(off) | (uint64_t)(len) << 32 | (uint64_t)(chars) << 48))
#define PACKED_OFF(i) ((size_t)((uint64_t)(i) & 0xFFFFFFFFu))
#define PACKED_LEN(i) ((size_t)((uint64_t)(i) >> 32 & 0x7FFF))   /* (<= PACK_MAX) */
/* (bit 47) its instances are RS_PACKED_LABELED, their labels numbered at call time; its chars count them */
#define PACKED_LABELS ((int64_t)1 << 47)
#define PACKED_LABELED(i) ((uint64_t)(i) >> 47 & 1)
#define PACKED_CHARS(i) ((size_t)((uint64_t)(i) >> 48))
typedef struct { PyObject *o; union { int64_t i; double d; uintptr_t addr; } u; uint8_t tag; } Slot;
_Static_assert(V_BUILTIN < 16, "memo keys keep a slot tag in 4 bits");

/* A provisional string id's content: a text made at event time, slots to render, (S_EXC)
 * an exception whose text is its builtin type's name and, when nslots is 1, the int `exc_int`
 * ("ValueError: 3"; text holds the type: capture.c's exc_entry), or (S_REC) an argument list
 * written at event time as a value record's slots (packed.c's args_record): rec_len bytes of
 * the batch's packed bytes from pack_off, no slots. */
enum { S_TEXT = 1, S_ARGS, S_VALUE, S_EXC, S_REC };
/* A string id in a row (args, val, a mark's ref) is provisional -- its entry's index + 1 in
 * the batch -- or, with this bit, already final: a text an earlier batch of this session wrote
 * (a small int's, small_hit; an exception's, capture.c exc_entry), which the drain keeps as it
 * is (final_id). Final ids stay below 2^31. */
#define FINAL_ID 0x80000000u
static inline uint32_t
final_id(uint32_t id, size_t nstrs, const uint32_t *remap)
{
    if (id & FINAL_ID) return id & ~FINAL_ID;
    uint32_t at = id - 1;   /* (0, no text: wraps past nstrs, as any id out of range) */
    return at < nstrs ? remap[at] : 0;
}
typedef struct {
    PyObject *text;
    union { size_t slot_off; int64_t exc_int; size_t rec_len; };
    uint32_t nslots, code_idx;
    uint32_t pack_off;   /* where its slots' packed bytes (V_PACKED) start in the batch's */
    uint8_t kind;
    uint8_t packed;      /* a slot is V_PACKED: the entry is written as a record; (S_REC) the
                          * record holds objects: REC_SIDE bytes before it */
} StrEntry;

/* The drain's memo from one batch to the next (render.c text_memo): an argument list or value
 * whose text is its slots' contents -- small ints, None, bools, strs and bytes (of at most
 * TMEMO_STR_MAX), texts made at call time, functions' names and addresses -- to the final id
 * its text took. The entry holds its strs and bytes (immutable, no finalizer, no weak
 * reference: holding them is invisible) until replaced or the next session starts. */
#define TMEMO_SIZE 4096   /* direct-mapped */
#define TMEMO_SLOTS 3
typedef struct { uint64_t hash; uint32_t sid, code_idx; uint8_t kind, nslots; Slot slots[TMEMO_SLOTS]; } TextMemo;

/* A direct-indexed memo for one small non-negative int: the only argument of one function,
 * or a result / yielded value (see commit_memo). sid is valid in batch `batch` only; final,
 * the text's final string id, in the session of generation fgen (see small_final). */
typedef struct { uint32_t sid, batch, final, fgen; } SmallEntry;
typedef struct { SmallEntry *tab; uint32_t n; } SmallTab;
#define EXC_TYPES 8   /* exception types with a small-int table (the first seen; others: an entry each) */

/* What the session knows about one recorded code object (its index is in co_extra).
 * The fields read at a call and its return (callbacks.c's fast paths, capture.c's keyed paths,
 * packed.c's shapes) are the first 64 bytes, and the entries are 64-byte aligned (codes.c
 * codes_grow): one cache line a code, where with the fields in their old order and 96-byte
 * entries half the codes took two -- the entry's first load was ~40 % of vc_cb_py_start's
 * samples on flask's phase (perf annotate, session 29: a program of thousands of codes).
 * PY_START's and PY_RETURN's fast paths no longer read it for a call whose arguments' entry the
 * hot memo has (its co_extra slot's flags and CodeRec: see there); a keyed miss, the other
 * argument lists and the other events still do. */
typedef struct {
    void *code;        /* the code object (not a reference: only compared, callbacks.c) */
    uint32_t func;     /* FUNC id (0 for the create_task hook) */
    int32_t small;     /* one plain parameter: its name's small-int table (commit_memo), or -1 */
    uint32_t unkeyed;  /* batch + 1 in which an argument could not be keyed (args_id): the
                        * key-first path is not tried again in that batch */
    uint32_t unrec;    /* batch + 1 in which an argument list could not be a record (args_record):
                        * not tried again in that batch */
    uint32_t recd;     /* batch + 1 in which an argument list was one (args_record): args_id tries
                        * that first in that batch */
    uint32_t rec_ni, rec_epoch;   /* its names' index in the batch's record dictionary, valid while
                                   * rec_epoch is the core's (args_record) */
    uint16_t nargs;    /* number of leading localsplus slots captured (0: none shown) */
    uint16_t nshown;   /* number of names shown (compiler-internal ".0" etc. are not) */
    uint16_t rec_chars;   /* an argument list's characters besides the values ("name=" each, ", ") */
    uint8_t genlike;   /* generator, coroutine, async generator or iterable coroutine */
    uint8_t coro;      /* coroutine or async generator: asks for its asyncio task */
    uint8_t hook;      /* BaseEventLoop.create_task: not a call; its return names a creator */
    uint8_t start_slow;   /* coro or hook: vc_cb_py_start's fast path does not start it */
    uint8_t keyed;        /* nargs when 1..MEMO_SLOTS and no cell among them (args_id's and start_keyed's
                           * keyed path), else 0 */
    uint8_t rec;          /* its argument lists can be records (args_record): 0 not known yet, ARGREC_YES, ARGREC_NO */
    uint8_t cells;        /* an argument is a cell variable (captured by an inner function): arg_value */
    uint8_t order4;    /* order[k] for k < 4 in bits 2k, 2k + 1, for a code of at most 4 slots (its
                        * indexes < 4: a keyed code's): capture.c rec_args and packed.c args_record
                        * (arg_order) read it here, in the line they read anyway (order, an array
                        * of its own, was a cache miss at most keyed misses, perf annotate) */
    uint8_t rec_side;     /* its last record held an instance (args_record: REC_SIDE, where the next one's
                           * header goes), else 0 */
    uint8_t shape_tries;  /* shapes compiled in batch shape_batch - 1 (packed.c: a few a batch) */
    uint32_t shape_batch;
    struct ArgShape *shape;   /* args_record's walk of this code's last record, compiled (packed.c), or NULL */
    /* (the first 64 bytes end here) */
    PyObject *names;   /* tuple, display order: "a", "*args", "kwonly", "**kw" */
    uint16_t *order;   /* display position -> localsplus index */
    uint8_t *star;     /* display position -> 0 plain, 1 *args, 2 **kwargs */
    uint8_t own;       /* the program's own code (filters.CodeFilter.is_own): where task roots hang */
} __attribute__((aligned(64))) CodeInfo;
_Static_assert(offsetof(CodeInfo, names) == 64, "CodeInfo: the fields of calls and returns in its first 64 bytes");

/* What PY_START's fast path reads of a one-parameter code for a small int argument
 * (args_small_hit_fast, XF_SMALL) besides its co_extra slot's flags (XF_*): 4 bytes a code in an
 * array of their own (CoreObject.fast, same index as codes), sixteen codes a cache line -- not
 * its CodeInfo line, a cache miss at most calls of a program of thousands of codes (see CodeRec).
 * A copy of CodeInfo's, made with it. */
typedef struct {
    int32_t small;    /* CodeInfo.small (XF_SMALL: no cell) */
} CodeFast;

/* What the fast paths read of a recorded code besides its co_extra slot's flags: the call row's
 * FUNC id (start_fast), and what a keyed miss's record reads (capture.c rec_args) -- 16 bytes a
 * code in an array of their own (CoreObject.crec, same index as codes), four codes a cache line,
 * codes met together in time numbered together (code_slow: in order of first sight). A program
 * of thousands of codes (flask's test_basic: ~5,000) missed the cache at its code's CodeInfo
 * line at most calls: that load was ~60 % of vc_cb_py_start's samples on flask's phase (perf
 * annotate, session 30), and ~20 % of start_keyed_miss's (session 31: ~270 k records a run).
 * func is with the record's fields, one line for both, which start_keyed_any asks for as it
 * starts (a hit's row reads func, a miss's record the rest): as an array of its own (CodeFast's
 * until session 33) it was a second line, a miss at ~15 % of start_fast_out's samples. func is
 * CodeInfo's, made with it; the others are copies made when the code's names are numbered in a
 * batch (capture.c rec_names_commit); n 0 where the code's lists cannot be records or it shows
 * more than MEMO_SLOTS names. */
typedef struct {
    uint32_t epoch;   /* CodeInfo.rec_epoch */
    uint32_t ni;      /* CodeInfo.rec_ni */
    uint16_t chars;   /* CodeInfo.rec_chars */
    uint8_t order4;   /* CodeInfo.order4 */
    uint8_t n;        /* CodeInfo.nshown when rec is ARGREC_YES and nshown <= MEMO_SLOTS, else 0 */
    uint32_t func;    /* CodeInfo.func */
} CodeRec;
_Static_assert(sizeof(CodeRec) == 16, "CodeRec: four a cache line");

/* co_extra holds (generation << 40) | (code index + 1) << XF_IDX_SHIFT | flags | excluded-bit;
 * zero = unseen. The flags are what the fast paths ask of a recorded code (vc_cb_py_start,
 * vc_cb_py_return), read with its index, so that they do not read its CodeInfo, a cache miss at
 * most calls of a program of thousands of codes (see CodeRec). */
#define EXTRA_GEN(v) ((uint64_t)(v) >> 40)
#define GEN_BITS(g) ((uint64_t)(g) & 0xFFFFFF)
#define XF_SLOW ((uint64_t)1 << 1)      /* CodeInfo.start_slow */
#define XF_GENLIKE ((uint64_t)1 << 2)   /* CodeInfo.genlike */
#define XF_SMALL ((uint64_t)1 << 3)     /* CodeInfo.small >= 0 and no cell: args_small_hit_fast */
#define XF_UNKEYED ((uint64_t)1 << 4)   /* CodeInfo.unkeyed was set in this session (start_keyed
                                         * reads it only then) */
#define XF_KEYED_SHIFT 5                /* 3 bits: CodeInfo.keyed */
#define XF_KEYED(d) ((uint32_t)((d) >> XF_KEYED_SHIFT) & 7)
#define XF_NOARGS ((uint64_t)1 << 8)    /* CodeInfo.nargs 0 (no argument shown: a genexpr's ".0",
                                         * none at all): its list is the batch's "" (args_empty_hit) */
#define XF_IDX_SHIFT 9
#define IDX_MASK ((((uint64_t)1) << (40 - XF_IDX_SHIFT)) - 1)   /* (index + 1 below the generation's bits) */
#define EXTRA_IDX(v) ((Py_ssize_t)(((uint64_t)(v) >> XF_IDX_SHIFT) & IDX_MASK) - 1)
enum { ARGREC_YES = 1, ARGREC_NO = 2 };

/* An open call on a thread's stack (frame: its interpreter frame, for matching ends). A
 * generator run begun by a plain resume may fold (cb_py_yield): quiet is 1 until a call starts
 * under it, it gets a mark, it ends or a drain comes (then 0), and while it is 1 the run's
 * resume row is not written yet: rt is its time and rothr its resumer (quiet_end writes it
 * when the run turns out not quiet; ~83% of the runs fold, and their resume rows were written
 * only to be taken out again). fold: the index + 1 of the fold row in this batch that the run
 * extends if it stays quiet -- set by its resume only when that row is its call's fold by the
 * same resumer on the same thread (fold_open), cleared with quiet (quiet_end) -- else 0.
 * hmark: the index + 1 of the call's `handled` row while that is the
 * call's latest mark (a re-raise may take it back: cb_reraise; the drain holds it back,
 * hold_handled), a row of batch qbatch (low 32 bits), else 0. */
typedef struct {
    void *frame; int64_t rt; uint32_t call, code_idx, task, quiet, rothr, fold, qbatch, hmark;
    union Susp *srec, *pred;   /* see Susp */
} Entry;   /* (64 bytes: the top of a stack is a shift away, not a multiply) */
_Static_assert(sizeof(Entry) == 64, "Entry: 64 bytes");

/* The C recorder watches suspended generators for a close that sends no event (genwatch.c):
 * 3.13+ each one as it enters the generator map (GENWATCH_EAGER: its shortcut closes some
 * without an event anywhere); 3.12 only where a close can go unseen -- inside a hook that runs
 * Python code (hook_runs_python) -- so the map's entries are watched just before one runs. */
#define GENWATCH_EAGER (PY_VERSION_HEX >= 0x030D0000)

/* A generator / coroutine that has suspended at least once (the generator map, callbacks.c),
 * keyed by its interpreter frame (which lives inside the generator object, so its address is
 * stable while the generator exists); running (code NULL): resumed since (on a thread's stack).
 * Records live in a pool (SuspPool) and never move while they are in the map: the map's table
 * (SuspSlot) holds pointers to them; slot: the record's index in that table (susp_remove);
 * pred: the generator last resumed from a run of this one (Entry.pred, kept across its runs). */
typedef union Susp {
    struct { void *frame;
             void *code;   /* its code while suspended; NULL while running (the resume's one test) */
             union Susp *pred;
             uint32_t call, code_idx, task, fold, fbatch, fothr, fthr, slot;
             PyObject *watch;   /* a GenRef to its generator (genwatch.c), or NULL */
    };
    unsigned char size_[64];   /* (one cache line) */
} Susp;   /* fold: see Entry; fothr, fthr: that fold row's resumer and thread (fold_open) */
_Static_assert(sizeof(Susp) == 64, "Susp: 64 bytes");
/* The map's table: open addressing by frame, linear probing, backward-shift deletion (the
 * slots move, not the records). An empty slot has frame and rec NULL. */
typedef struct { void *frame; Susp *rec; } SuspSlot;
/* The records' pool: blocks of SUSP_BLOCK records, never freed before the core (a pointer to a
 * record stays readable: Entry.pred is checked by the record's frame); free: records taken
 * out of the map (frame NULL), linked by pred; used: records handed out from the blocks. */
#define SUSP_BLOCK 256
typedef struct { Susp **blocks; size_t nblocks, used; Susp *free; } SuspPool;
/* (Entry.srec: its generator's record, set by the resume that pushed it (NULL if none): its
 * yield finds the record without hashing -- checked by frame and call, as a record whose
 * generator vanished silently may have been given to another. Entry.pred: the record of the
 * generator this call last resumed (NULL: none): the resume's first guess, before the probe --
 * a `yield from` chain resumes the same child at every value. Checked by its frame: a record
 * out of the map has frame NULL, and one given again holds the map's entry of its new frame.) */

/* Calls seeded at start (seed_running) for a thread that has not run an event yet. */
typedef struct { unsigned long ident; uint32_t thr; Entry *stack; size_t depth; } Seed;

/* Most argument lists and results are a few inline scalars (ints, floats, None, bools) or
 * (type, address) of opaque objects that repeat (fib(3) is called many times): the hot memo,
 * a two-way cache from their binary form to the provisional string id of their first
 * entry in this batch (commit_memo), stores one entry for them all, rendered once at drain.
 * (A second memo at drain, from the binary form to the final id, cost more in cache misses
 * than the renders it saved: dropped; the text table dedupes what the hot memo missed.)
 * The hot memo and text tables keep hashes with the low bit set (0 marks an empty slot);
 * the slot index comes from the other bits, or only the odd half of a table would be used. */
#define HSLOT(h) ((h) >> 1)
#define PACK_MAX 1024   /* bytes of packed values one capture may hold (packed.c) */
#define MEMO_SLOTS 4
_Static_assert(MEMO_SLOTS < 8, "CodeInfo.keyed in 3 bits of co_extra's flags (XF_KEYED)");
typedef struct Memo {
    uint64_t hash;
    uint64_t head;                 /* code index | kind << 32 | n << 40 | slot tags << 48 */
    uint32_t sid;
    int64_t vals[MEMO_SLOTS];
    uintptr_t types[MEMO_SLOTS];   /* hot memo only: the type of an opaque value */
} Memo;

/* The hot memo's block: HOT_SIZE entries, then a 32-bit tag per entry (hot_tag_of: 0 empty),
 * checked before the entry itself, then a byte per set: the way its next entry goes to. Two-way:
 * a key's set is the pair of entries HOT_SET(hash), HOT_SET(hash) + 1 (their tags side by side),
 * filled in turn (capture.c hot_find, memo_remember_n). Direct-mapped, two keys of one slot
 * called in turn evicted each other at every call: the oop workload's misses were 60.6 k or
 * 73.5 k by where its objects landed (the same keys, another build).
 * Every probe reads its set's tags and every miss writes one and reads the way byte, so both
 * arrays are small (8 KB and 1 KB): with 64-bit tags (16 KB) the tag's load was ~38 % of
 * start_keyed_any's samples, and the way, kept in the set's first entry, a cache miss of its
 * own at ~17 % of start_keyed_miss's (perf annotate, flask's phase, session 29). */
#define HOT_SET(h) (HSLOT(h) & (HOT_SIZE - 2))
#define HOT_BYTES (HOT_SIZE * (sizeof(Memo) + sizeof(uint32_t)) + HOT_SIZE / 2)
#define HOT_TAGS(c) ((uint32_t *)((c)->hot + HOT_SIZE))
#define HOT_NEXT(c) ((uint8_t *)(HOT_TAGS(c) + HOT_SIZE))
/* An entry's tag: its hash's low half and the batch in one word (one xor). An entry of another
 * batch of the session (the block is cleared at each start) never has the tag of the same key
 * now (the same hash, batches < 2^32 apart), and the probe compares the whole key after the tag
 * -- an entry of another key whose tag this is by chance is turned away there (its hash, always
 * odd, and a forgotten entry's hash is 0: collect.c forget_dying). (The set's index bits are
 * among the tag's, the same for all of a set's keys: a chance match is 1 in 2^21 probes that
 * would have missed, each then one entry read. The high half, shifted down, was an instruction
 * more at every probe: callgrind generators +0.4 M, raytrace +0.9 M.) */
static inline uint32_t
hot_tag_of(uint64_t hash, uint64_t batch)
{
    return (uint32_t)(hash ^ batch);
}

typedef struct ThreadState {
    struct ThreadState *prev, *next;  /* all live thread states (GIL-protected list) */
    PyThreadState *tstate;
    uint64_t gen;                     /* session generation this state belongs to */
    uint32_t thr;                     /* THRD id in that session */
    Entry *stack;
    size_t depth, cap;
    PyObject *exc_ptr;                /* borrowed: the exception whose text is cached */
    uint32_t exc_sid;                 /* its provisional string id ... */
    uint64_t exc_batch;               /* ... valid in this batch only */
    /* The exception this thread's recorded code knows (see exc_known in callbacks.c): it
     * arrived in call known_call from a recorded callee or a throw (known_caught 0), or was
     * marked there and caught (1). Borrowed: only its address is compared. */
    PyObject *known;
    uint32_t known_call;
    uint8_t known_caught;
    PyObject *known_from;             /* the recorded callee's code it came out of, or NULL (borrowed) */
    int in_overflow;                  /* this thread is running the overflow hook */
    uint64_t task_epoch;              /* the asyncio task last found here (callbacks.c, task_lookup): */
    uint32_t task_tid;                /* its TASK id, valid while tasks_epoch is task_epoch */
    /* The values of the capture under way on this thread that were packed (packed.c), until
     * commit_slots copies them to the batch: per thread, because a hook that runs Python
     * between two arguments may let another thread capture meanwhile. */
    size_t npack;
    /* the batch (the core's rec_epoch + 1) whose record dictionary numbered the labels of the
     * RS_PACKED_LABELED instances in pack (0: none; UINT32_MAX: more than one -- a hook ran a
     * drain between two arguments), which pack_commit numbers again in another batch */
    uint32_t pack_lab_epoch;
    unsigned char pack[PACK_MAX];
} ThreadState;

extern ThreadState all_threads;      /* threads.c: every live thread state (a ring) */
extern _Thread_local ThreadState *tls_state __attribute__((tls_model("initial-exec")));
extern Py_ssize_t extra_index;        /* our co_extra slot (codes.c) */
extern struct CoreObject *active_core;

typedef struct { int64_t tick, ns; } Anchor;   /* a clock reading in ticks and in ns */
typedef struct { uint64_t hash; size_t off; uint32_t len, sid; } StrKey;
/* tags[j]: 0 (empty) or the high half of keys[j].hash with the low bit set (strtab.c) */
typedef struct StrTab { uint32_t *tags; StrKey *keys; size_t cap, n; char *arena; size_t alen, acap; } StrTab;

/* An asyncio task seen in this session (callbacks.c, task_lookup): a weakref to it and its
 * TASK id; a direct-mapped table by the task's address. */
typedef struct { PyObject *ref; uint32_t tid; } TaskSlot;
#define TASKS_SEEN 64

/* A tuple packed as an argument in this batch, by identity (packed.c, pack_item): a strong
 * reference (it holds only immutable scalars and such tuples: nothing that runs code when freed,
 * and its text cannot change while it lives) and where its bytes are in the batch's packed
 * bytes, valid while epoch is the core's rec_epoch + 1; height: the nesting below it. */
typedef struct { PyObject *o; uint32_t epoch, off; uint16_t len, chars; uint8_t height; } PackId;
#define PACK_IDS 64

/* An entry of a batch's record dictionary numbered at call time (CoreObject.rec_items): type
 * NULL, the names of code code_idx; else the label of `type` (owned), lab_len bytes at lab_off. */
typedef struct { PyObject *type; uint32_t code_idx, lab_off, lab_len; } RecItem;
/* rec_label's table of this batch's labels by type (two-way): 256 entries, not 64 -- with argument
 * lists holding instances written at call time (args_record) flask's batches label more classes
 * than 64 entries keep, and a label made again (its class dict read, numbered again in the
 * dictionary) cost its whole process ~13 M instructions (callgrind, PYTHONHASHSEED=0) */
#define REC_TYPES 256
/* A call-time record holding objects (StrEntry.packed set on its S_REC entry) is preceded in the
 * packed bytes by REC_SIDE bytes: its first and last object addresses (u64, native order) and
 * the offset in the record of its first address step's varint (u16): the drain rewrites that
 * step when a record it made itself came in between (strings_batch). */
#define REC_SIDE 18

typedef struct CoreObject {
    PyObject_HEAD
    uint64_t gen;
    int active;
    int args_mode;                   /* 0 off, 1 safe, 2 full */
    /* The callbacks' fast paths (callbacks.c) may run -- active, the TSC clock, and co_extra
     * read in place (fast_update) -- for a thread state of this session: fast_gen is gen when
     * the three hold, else FAST_NEVER (no thread state's gen), so that one compare with the
     * thread state's gen tests the four (running_state; it cost a test more of every event). */
    uint64_t fast_gen;
    /* co_extra as the fast paths test it (code_known): this session's code k has the slot
     * code_base + (k << XF_IDX_SHIFT) + its flags, for k < code_lim >> XF_IDX_SHIFT (code_slow,
     * clear_codes) */
    uint64_t code_base, code_lim;
    /* hooks into the Python wrapper */
    PyObject *on_code;               /* (code, module) -> CODE_IN [| FUNC_OWN] [| CODE_SAME], 0 excluded
                                      * [| CODE_SAME], -1 create_task hook (recorder/c.py _on_code) */
    PyObject *on_thread;             /* (ident) -> THRD id */
    PyObject *exc_text;              /* exc -> text */
    PyObject *repr_now;              /* value -> text (containers; every object in full mode) */
    PyObject *task_hook;             /* (parent, thr) -> (task id, new TASK entry or None) */
    PyObject *task_created;          /* (task, creator call id) -> None */
    PyObject *tasks_out;             /* list the new TASK entries are appended to */
    PyObject *funcs_out;             /* list the new FUNC entries are appended to (code_slow) */
    uint32_t nfuncs;                 /* FUNC ids given (the recorder's: never reset) */
    /* on_code's answers kept by (file name, module) when it says they hold for every code object
     * of that name (CODE_SAME): codes.c verdict_slot; open addressing, linear probing */
    struct Verdict *verdicts; size_t nverdicts;
    uint64_t verdicts_epoch;         /* codes.c verdict_epoch when they were kept */
    TaskSlot tasks_seen[TASKS_SEEN];  /* tasks whose id is known without the hook (cleared at start) */
    PyObject *overflow;              /* () -> None: the session flushes on this thread (or NULL) */
    PyObject *on_exit;               /* (exc) -> None: a SystemExit left a thread's outermost frame
                                      * (the process's exit status: session.py), or NULL */
    size_t overflow_rows;            /* the cap: pending rows that make a start/resume call `overflow` */
    size_t overflow_at;              /* the test's threshold: overflow_rows, raised after a hook
                                      * call that flushed nothing (reset by every drain) */
    struct StrTab stab;              /* UTF-8 text -> final string id (deduplication) */
    TextMemo *tmemo;                 /* slots -> final string id, from batch to batch (render.c) */
    uint32_t next_final_sid;
    /* rows */
    CallCols calls; size_t ncalls, capcalls;
    ExitCols exits; size_t nexits, capexits;
    MarkRow *marks; size_t nmarks, capmarks;
    size_t nheld;                    /* marks[0..nheld): held `handled` rows, t in ns, ref final (hold_handled) */
    uint32_t call_first_id, next_call_id;
    StrEntry *strs; size_t nstrs, capstrs;
    Slot *slots; size_t nslots, capslots;
    uint64_t batch;                  /* drains so far (provisional string ids are per batch) */
    CodeInfo *codes; size_t ncodes, capcodes;
    CodeFast *fast;                  /* the fast path's copy of codes' small (capcodes entries) */
    CodeRec *crec;                   /* a keyed miss's copy of codes' record fields (capcodes entries) */
    /* the generator map: open addressing, linear probing, backward-shift deletion; nsusp
     * counts its entries, running or not */
    SuspSlot *susp; size_t nsusp, capsusp;
    unsigned susp_shift;             /* 64 - log2(capsusp): susp_hash (set with capsusp) */
    SuspPool susp_pool;              /* the map's records */
    uint8_t unwatched;               /* 3.12: an entry may have no watch yet (susp_watch) */
    uint8_t watch_now;               /* 3.12: every new entry is watched at once (genwatch_lazy) */
    int tool;                        /* 3.12: our sys.monitoring tool id (note_monitoring), or -1 */
    uint64_t mon_version;            /* 3.12: the interpreter's monitoring version then */
    uint32_t *lost; size_t nlost, caplost;   /* generators whose frame address was reused */
    Seed *seeds; size_t nseeds, capseeds;
    /* the previous batch's row buffers, reused by the next drain's swap: fresh memory costs a
     * page fault per page and regrowing copies everything */
    struct Memo *hot;                /* event time: inline-only values seen in this batch */
    MarkRow *spare_marks; size_t cap_spare_marks;
    StrEntry *spare_strs; size_t cap_spare_strs;
    Slot *spare_slots; size_t cap_spare_slots;
    unsigned char *packed; size_t npacked, cappacked;   /* this batch's packed values (V_PACKED) */
    unsigned char *spare_packed; size_t cap_spare_packed;
    uint64_t errors;                 /* internal errors swallowed (never raised into user code) */
    uint64_t rendered;               /* drain statistics: entries rendered */
    Anchor anchor;                   /* (ticks, ns) at start / the last drain: see tick_map */
    SmallTab small_vals;             /* results / yielded values that are small ints (commit_memo) */
    SmallTab *small_args;            /* one-int argument lists, one table per parameter name ... */
    PyObject **small_names;          /* ... (the text is "name=value" whatever the function) */
    size_t nsmall_args, capsmall_args;
    uint32_t empty_sid;              /* the "" of argument-less calls ... */
    uint64_t empty_batch;            /* ... in this batch */
    struct { int64_t x; uintptr_t t; uint32_t sid, batch; uint8_t tag; } last_val;   /* the key of the last
                                      * value value_id keyed, and its entry (in batch `batch`) */
    Memo hit_key;                    /* capture.c end_keyed's and start_keyed_any's key, for their misses
                                      * (end_keyed_miss, start_keyed_miss): here, not on their stacks, so
                                      * that they need no frame. One for both: each is read only
                                      * between its probe and the end of its miss, where no other
                                      * event's callback runs (no Python code does) */
    uint32_t single_sid[3];          /* the entries of a None, True, False result ... */
    uint64_t single_batch[3];        /* ... in these batches (value_id) */
    size_t small_bytes;              /* all SmallTabs' memory (bounded: SMALL_BUDGET) */
    /* Exception texts of a static builtin type with one small non-negative int or no argument
     * ("ValueError: 3", "KeyError"): a small-int table per type (capture.c exc_small_entry),
     * entry v + 1 for the int v, 0 for none; kept from session to session like small_vals */
    struct { PyTypeObject *tp; SmallTab tab; } exc_small[EXC_TYPES];
    uint8_t exc_finals;              /* this batch's rows hold a final id of an exception text */
    uint32_t rec_epoch;              /* + 1 each time the batch's entries go (drain, clear_pending) ... */
    uint32_t rec_next;               /* ... and the record dictionary index the next code or label takes */
    /* The batch's record dictionary as numbered at call time (capture.c rec_label, rec_names):
     * its entries in index order, each a code's names or a type's label -- the type referenced
     * until the drain, its label's UTF-8 in rec_labs at lab_off -- which strings_batch writes
     * first, in this order; swapped out with the batch's entries. */
    RecItem *rec_items; size_t nrec_items, caprec_items;
    char *rec_labs; size_t nrec_labs, caprec_labs;
    /* labels numbered in this batch, by type address (valid while epoch is rec_epoch + 1):
     * idx, the label's characters, or ok 0 when the type's objects take the slot path */
    struct { void *tp; uint32_t epoch, idx; uint16_t chars; uint8_t ok; } rec_types[REC_TYPES];
    struct { void *tp; uint32_t epoch, idx; uint16_t chars; } rec_last;   /* the last one found ok */
    uint64_t rec_addr;               /* the last object address a call-time record wrote in this batch */
    PackId pack_ids[PACK_IDS];       /* tuples packed as arguments, by address (packed.c) */
} CoreObject;

#define MAX_STRING 60     /* reprs.MAX_STRING */
#define MAX_TEXT 240      /* reprs.MAX_TEXT */
#define MAX_ITEMS 6       /* reprs.MAX_ITEMS */
#define MAX_DEPTH 3       /* reprs.MAX_DEPTH */
#define FUNC_OWN (1L << 30)   /* on_code's flag on CODE_IN: the program's own code (recorder/c.py) */
#define CODE_IN 1L            /* on_code's answer: record the code (code_slow gives its FUNC id) */
#define CODE_SAME (1L << 29)  /* on_code's flag: every code object of this file name and module gets
                               * this answer until the next mark (filters.CodeFilter.first_sight) */

static inline int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- the hot path's clock: ticks, converted to CLOCK_MONOTONIC ns at drain ----
 * clock_gettime costs ~25-50 ns here (vDSO: a seqlock, rdtscp and the scaling), twice per
 * call. Where the kernel's own CLOCK_MONOTONIC is the invariant TSC (x86-64, cpuid says
 * invariant, clocksource "tsc"), CLOCK_MONOTONIC is a linear function of the TSC between NTP
 * adjustments, so the callbacks store the raw TSC (one rdtsc: below) and the drain maps
 * each batch's ticks onto ns by the line through two anchors -- (tsc, ns) pairs read
 * together at the previous drain (or start) and at this one. The mapping is exact at the
 * anchors, monotonic, and continuous from one batch to the next (they share an anchor), so
 * every time in the file stays on time.perf_counter_ns's timeline. Elsewhere ticks are ns
 * and the conversion is the identity. FLOWTRACE_CLOCK=monotonic forces clock_gettime.
 * Plain rdtsc, not rdtscp or lfence;rdtsc: each event's time is read once, inside its own
 * callback, and the reads compared lie hundreds of instructions apart (one thread's starts and
 * ends) or a GIL hand-off apart (other threads'), so nothing needs the read held back until
 * earlier instructions finish -- and those cost ~19 ns a read where rdtsc costs ~8 ns beside light work (a microbenchmark,
 * AMD EPYC Zen 4 VM; ~30-40 ns with cache misses in flight: its ~36 microcoded uops narrow the
 * out-of-order window). One read an event, none redundant: ~2.5 M reads a run of flask's
 * test_basic, ~85 perf samples of the ~800 of our code (the instruction after each rdtsc). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <x86intrin.h>
#define HAVE_TSC 1
#endif
extern int use_tsc;   /* set once at import (clock_init) */

static inline int64_t
stamp(void)
{
#ifdef HAVE_TSC
    if (use_tsc) return (int64_t)__rdtsc();
#endif
    return now_ns();
}

/* ns = a.ns + round((tick - a.tick) * mult / 2^TICK_SHIFT), mult = (b.ns - a.ns) / (b.tick -
 * a.tick) in fixed point: a 64x64->128 bit multiply per value (the division once per batch).
 * Rounding makes it exact at both anchors for segments shorter than 2^48 ticks (~26 h at
 * 3 GHz); longer ones are off by a nanosecond or so. */
#define TICK_SHIFT 48
typedef struct { Anchor a; __int128 mult; uint64_t mult64; int identity; } TickMap;   /* (mult64: mult when it fits, else 0) */

static inline int64_t
tick_to_ns(const TickMap *m, int64_t tick)
{
    if (m->identity) return tick;
    __int128 x = (__int128)(tick - m->a.tick) * m->mult + ((__int128)1 << (TICK_SHIFT - 1));
    return m->a.ns + (int64_t)(x >> TICK_SHIFT);   /* arithmetic shift: floor, also below a */
}

/* A placeholder's "module.Class" for one type, as UTF-8: in `buf` (made in C), or owned by the
 * hook's str `label`. */
typedef struct { PyObject *type, *label; const char *u; size_t len, nchars; char *buf; size_t cap; } Label;
/* direct-mapped by type address; a miss costs text_label (~450 instructions) or a hook call.
 * 64 thrashed on flask's test_basic: 28 k misses in 42 drains */
#define LABELS 256

/* UTF-8 text being built, with its length in characters (the reference cuts by characters). */
typedef struct { char *p; size_t len, cap, nchars; } Text;

/* A text render_slot made in this drain for an exact str, bytes or frozen tuple (V_OBJ), or a
 * class (V_CLASS: its text as of the drain, as a type's Label is), by the object's address:
 * the batch's slots hold their objects until the drain ends, so within it the same address is
 * the same object, and the same text. lits[] is direct-mapped; the texts are lit_text's bytes
 * [off, off + len). */
typedef struct { PyObject *o; uint32_t off, len, nchars; } LitMemo;
#define LIT_MEMO 1024

typedef struct {
    PyObject *render_obj;   /* reprs.value_text for the rare immutables (complex, an int of 200 bits...) */
    PyObject *type_label;   /* cls -> "module.Class" (the placeholder's name) */
    Label labels[LABELS];   /* this drain's labels (the slots hold the types meanwhile) */
    const unsigned char *packed;      /* the batch's packed values (V_PACKED slots) ... */
    size_t npacked;                   /* ... (how many bytes) ... */
    const unsigned char *pack_base;   /* ... and those of the entry being rendered */
    const RecItem *items;             /* the batch's record dictionary as numbered at call time ... */
    size_t nitems;
    const char *labs;                 /* ... and its labels' bytes (CoreObject.rec_items) */
    LitMemo *lits;                    /* (render.c lit_find; made on first use, freed by labels_clear) */
    Text lit_text;
} RenderCtx;
/* Does packed slot s of an entry whose packed values start at `base` lie in the batch's? (They
 * always do: commit_slots copies them with the entry. A check, not a trust: a slot read past
 * them would read memory that is not ours.) */
static inline int
packed_in(const RenderCtx *rc, const unsigned char *base, const Slot *s)
{
    return base >= rc->packed && (size_t)(base - rc->packed) + PACKED_OFF(s->u.i) + PACKED_LEN(s->u.i) <= rc->npacked;
}

/* An exact dict's version tag (PEP 509; capture.c dict_state): CPython gives a dict a tag from one
 * counter of the interpreter when it is made and at every change of its items, so a tag (past its
 * low 8 bits, the watchers') names one dict in one state, never reused; 0: no tag (3.14). */
#if PY_VERSION_HEX < 0x030E0000
static inline uint64_t
dict_tag(PyObject *v)
{
_Pragma("GCC diagnostic push")
_Pragma("GCC diagnostic ignored \"-Wdeprecated-declarations\"")   /* (deprecated, not gone, in 3.12 and 3.13) */
    return ((PyDictObject *)v)->ma_version_tag;
_Pragma("GCC diagnostic pop")
}
#else
static inline uint64_t dict_tag(PyObject *v) { (void)v; return 0; }
#endif

/* Value records in STRS payloads (docs/FORMAT.md, "Value records"; render.c writes and reads
 * them, packed.c packs containers into their slots at event time). */
#define REC_MARK 0xFF        /* a record's first byte (never the first byte of UTF-8) */
#define STRS_RECORDS 0x80000000u   /* the count's flag: a dictionary and records follow */
enum { REC_VALUE = 1, REC_ARGS = 2 };
/* slot tags; 5 and 6 (format 1.5): a tuple / list, a varint count and that many slots; 7 (1.10): a
 * varint index into the chunk's dictionary, whose entry is the slot's text */
enum { RS_LITERAL = 0, RS_FLOAT = 1, RS_OBJECT = 2, RS_DEFREPR = 3, RS_INT = 4, RS_TUPLE = 5, RS_LIST = 6, RS_TEXT_AT = 7 };
/* packed.c's instance in a packed value (never in a file): 8 bytes, its address (native order);
 * the drain writes it as RS_OBJECT with the label of the type its slot holds (1.7) */
#define RS_PACKED_OBJECT 0x80
/* packed.c's instance whose label was numbered at call time (pack_value's second walk: instances
 * of two classes, or beside a class's text), never in a file: its label's index in the batch's
 * record dictionary (u32), its address and its type's address (u64 each; native order: the type
 * only for pack_commit to number the label again in another batch -- the capture's frame holds
 * the instance, so its type, until then); the drain writes RS_OBJECT with that index */
#define RS_PACKED_LABELED 0x81
#define PACKED_LABELED_BYTES 21
/* "<" label " object at 0x" address in hex ">" but for the label: its characters */
#define OBJECT_CHARS(a) ((size_t)(67 - __builtin_clzll((unsigned long long)(a) | 1)) / 4 + 15)
#define FLOAT_CHARS 24       /* the longest repr of a double: -2.2250738585072014e-308 */

/* A float slot's 8 bytes, little-endian (one store where the machine is: a byte loop was
 * most of an RS_FLOAT's cost). */
static inline unsigned char *
put_f64le(unsigned char *q, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(q, &bits, 8);
#else
    for (int i = 0; i < 8; i++) q[i] = (unsigned char)(bits >> (8 * i));
#endif
    return q + 8;
}


/* ---- shared constants (also exported by the module and checked against reprs.py and
 * ftr/format.py when flowtrace/recorder/c.py imports it: see constants.c) ---- */
/* hot memo entries (capture.c): 2048 (~196 KB with the tags). Measured (session 10) under
 * callgrind --cache-sim=yes --branch-sim=yes, the workload phase of 3 run()s (flush interval
 * 1000), 1024 / 2048 / 4096 entries:
 *   oop        instructions 705.4 / 705.3 / 706.2 M, I1 misses 3.34 / 3.28 / 3.34 M,
 *              D1 read misses 984 / 999 / 1037 k, D1 write misses 666 / 683 / 696 k;
 *   deltablue  instructions 1018.8 / 995.2 / 984.8 M (its overhead -3.3% / -4.7%: fewer misses
 *              of its many objects), I1 misses 1.70 / 1.53 / 1.59 M, D1 read misses 3.41 / 3.41 /
 *              3.46 M, D1 write misses 1.16 / 1.03 / 0.95 M.
 * 2048 takes 70% of 4096's gain on deltablue and is neutral on oop in every count (4096: oop +5%
 * D1 read misses); the L2 (2 MB here) is not in those counts, so the smaller block. An earlier
 * same-run timing A/B had oop ~10-20% slower at 4096 than at 512-1024; the A/B repeated now
 * (nice -15, 7 rounds, oop scale 60, load 10-25) saw no difference beyond its noise: CPU
 * median/min 1.10/1.00 s at 1024, 1.42/0.96 at 2048, 1.03/0.99 at 4096 (untraced 0.41/0.37). */
#define HOT_SIZE 2048
#define N_BUILTIN_STR 11       /* reprs._BUILTIN_STR's types (capture.c, filled at import) */

/* ---- globals (each defined in one file) ---- */
extern uint64_t generation_counter;                         /* core.c */
extern PyObject *DISABLE;                                   /* sys.monitoring.DISABLE */
extern PyObject *thread_key;                                /* key of our capsule in each thread's dict */
extern PyObject *str_name, *str_root, *str_empty, *str_module_key, *str_builtins;
extern PyObject *str_asyncio, *str_events, *str_get_running_loop, *str_current_task, *str_tasks, *str_current_tasks;
extern reprfunc builtin_str[N_BUILTIN_STR];                 /* capture.c */
extern PyObject **builtin_str_types[N_BUILTIN_STR];         /* core.c: their types */

/* ---- functions shared between the files ---- */
/* COLD: a slow path (growing a buffer, a failure, a thread's or code's first event, the drain
 * at backpressure). GCC then lays the blocks that call it out of the hot callbacks, in their
 * .cold parts: the instructions that run at every event stay together, in fewer cache lines
 * (the oop workload's callbacks missed the instruction cache ~3x as often as VizTracer's,
 * callgrind --cache-sim). */
#define COLD __attribute__((cold))
/* clock.c */
void clock_init(void);
Anchor anchor_now(void);
TickMap tick_map(Anchor a, Anchor b);
/* buffers.c */
COLD int grow(void **buf, size_t *cap, size_t need, size_t item);
COLD int grow_exits(CoreObject *c);
COLD int grow_calls(CoreObject *c);
void col_free(void *col);   /* a row column of grow_calls' or grow_exits', or grow_marks' rows */
COLD int grow_marks(CoreObject *c, size_t need);   /* (room for `need` mark rows) */
void reserve_texts(CoreObject *c);   /* (a batch's texts, slots, packed bytes made at their first size) */
uint32_t add_text(CoreObject *c, PyObject *text);
PyObject *payload_bytes(size_t size);
extern PyObject *tracemalloc_is_tracing;   /* _tracemalloc.is_tracing, or NULL (core.c, at import) */
COLD PyObject *callback_failed(CoreObject *c);
COLD void soft_fail(CoreObject *c);
/* threads.c */
COLD void end_stack(CoreObject *c, Entry *stack, size_t *depth, int64_t t);
COLD int stack_reserve(ThreadState *ts, size_t n);
COLD ThreadState *thread_state_slow(CoreObject *c, PyThreadState *tstate);
COLD PyObject *overflow_slow(CoreObject *c, ThreadState *ts);
extern _Thread_local int own_tracing;   /* core.c: the tracing levels this thread holds for our own work (gc_phase) */
void before_collection(PyThreadState *tstate, PyObject *info);   /* collect.c: gc_phase's "start" outside our work */
int gc_collecting(void);   /* collect.c: a collection runs now (its callbacks are being called) */
PyObject *mod_set_collect_hook(PyObject *m, PyObject *hook);
PyObject *core_release_classes(CoreObject *c, PyObject *const *args, Py_ssize_t nargs);   /* collect.c */
/* callbacks.c */
PyObject *start_row_out(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, Py_ssize_t idx, uint32_t a);
PyObject *start_fast_out(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, Py_ssize_t idx, uint32_t a);
PyObject *start_args_out(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx);
PyObject *end_row_out(CoreObject *c, ThreadState *ts, int64_t t, uint32_t v);
/* codes.c */
COLD Py_ssize_t code_slow(CoreObject *c, PyCodeObject *co, PyObject *globals);
PyObject *mod_func_entry(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *mod_forget_verdicts(PyObject *m, PyObject *unused);
void clear_verdicts(CoreObject *c);
PyObject **func_entry_keys(void);
/* capture.c */
void slots_clear(Slot *s, size_t n);
uint32_t value_id(CoreObject *c, PyObject *v);
uint32_t value_id_now(CoreObject *c, PyObject *v, int seq);
PyObject *end_keyed(CoreObject *c, PyObject *value);
uint32_t args_id(CoreObject *c, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx);
uint32_t args_id_unkeyed(CoreObject *c, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx);
PyObject *start_keyed_any(CoreObject *c, _PyInterpreterFrame *frame, Py_ssize_t idx, uint32_t n);
PyObject *start_unkeyed(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx);
/* PY_START's fast path (vc_cb_py_start) for a call whose arguments args_small_hit did not find,
 * its stack and buffers as start_fast needs them: safe mode, a code of 1 to MEMO_SLOTS arguments
 * none a cell (CodeInfo.keyed) that could be keyed in this batch -- capture.c start_keyed_any;
 * anything else start_unkeyed (the code's shape, packed.c, else start_args_out). ts must be this
 * thread's tls_state and co the frame's code (running_state's tests): start_keyed_any takes them
 * from there again rather than keep them in registers. Inline, one test
 * and a tail call (a function of its own and a switch were ~19 instructions a call, callgrind oop). */
static inline __attribute__((always_inline)) PyObject *
start_keyed(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx, uint64_t d)
{
    uint32_t n = XF_KEYED(d);   /* (co_extra's flags: no CodeInfo read, but unkeyed's where it was set) */
    if (c->args_mode == 1 && c->hot && n && (!(d & XF_UNKEYED) || c->codes[idx].unkeyed != (uint32_t)c->batch + 1))
        return start_keyed_any(c, frame, idx, n);   /* (ts: tls_state, co: the frame's, as there) */
    return start_unkeyed(c, ts, frame, co, idx);
}
uint32_t args_id_rest(CoreObject *c, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx);
uint32_t exc_id_slow(CoreObject *c, ThreadState *ts, PyObject *exc);
uint32_t *small_final(CoreObject *c, const StrEntry *e, const Slot *slots);
COLD int rec_names_commit(CoreObject *c, uint32_t code_idx);
/* The instances of a call-time record that packed.c's args_record writes (capture.c rec_put_instance):
 * the record's first byte (steps are found from it), the last address written (from the core's
 * rec_addr), the first one and its step's offset in the record (0: none yet) -- REC_SIDE's. */
typedef struct { const unsigned char *start; uint64_t addr, first; size_t step_at; } RecObjs;
unsigned char *rec_put_instance(CoreObject *c, unsigned char *q, PyObject *o, RecObjs *r, size_t *ch);
int rec_label_now(CoreObject *c, PyTypeObject *tp, uint32_t *idx, size_t *chars);
void rec_labels_now_clear(void);
COLD int rec_label_make(CoreObject *c, PyTypeObject *tp, uint32_t *idx, size_t *chars);
void rec_items_clear(RecItem *items, size_t n);
/* packed.c */
int pack_value(CoreObject *c, Slot *s, PyObject *v, int safe);
uint32_t value_record(CoreObject *c, PyObject *v);
COLD int args_layout(CodeInfo *ci);
void pack_ids_clear(CoreObject *c);
void shape_free(CodeInfo *ci);
uint32_t args_record(CoreObject *c, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx, int rest);
PyObject *start_shaped(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx,
                       unsigned char **at);
int pack_commit(CoreObject *c, StrEntry *e);
void pack_drop(void);
/* render.c */
PyObject *cut_text(PyObject *text, Py_ssize_t limit);
void labels_clear(RenderCtx *rc);
int render_entry(CoreObject *c, RenderCtx *rc, StrEntry *e, Slot *slots, Text *t);
PyObject *builtin_text_now(PyObject *v, int safe);
PyObject *module_text_now(PyObject *m);
size_t item_text_now(PyObject *o, unsigned char *q, size_t room);
int plain_names(PyTypeObject *meta);
int enum_class_slow(PyTypeObject *tp);   /* render.c */
/* Is tp an Enum class (its metaclass enum.EnumType or a subclass: reprs.enum_text's test)? A class
 * whose metaclass is type -- nearly all -- is answered by one comparison. */
static inline int
enum_class(PyTypeObject *tp)
{
    return Py_TYPE(tp) != &PyType_Type && enum_class_slow(tp);
}
int strings_batch(CoreObject *c, RenderCtx *rc, StrEntry *strs, size_t nstrs, Slot *slots, uint32_t *remap,
                  PyObject **payload, size_t *count);
PyObject *mod_expand_strings(PyObject *m, PyObject *arg);
/* strtab.c */
uint64_t bytes_hash(const char *p, size_t n);
void stab_clear(StrTab *st);
void tmemo_clear(CoreObject *c);
void tmemo_release(void);
#define DROP_AHEAD 16   /* (objects: ~the DECREFs that run while a line comes from memory -- core_drain) */
void stab_free(StrTab *st);
uint32_t stab_find(StrTab *st, const char *p, size_t n, uint64_t h);
int stab_add(StrTab *st, const char *p, size_t n, uint64_t h, uint32_t sid);
/* A line fetched into the cache ahead of its use. GCC 12 drops a __builtin_prefetch that only
 * runs past a test (`if (!n) return;` before it: its dead code elimination, -O1 and -O2), and
 * dropped stab_prefetch's two without a word (the build had none of them): the asm is kept. */
static inline void
fetch_line(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
#else
    __builtin_prefetch(p);
#endif
}
/* Where a text of hash h is first looked for in the table (its probe runs on from there). */
static inline size_t stab_home(const StrTab *st, uint64_t h) { return HSLOT(h) & (st->cap - 1); }
/* The lines stab_find reads first for hash h -- its tag and its home slot's key -- fetched ahead
 * (render.c strings_batch: most texts found are in their home slot, the table at most half full). */
static inline void
stab_prefetch(const StrTab *st, uint64_t h)
{
    if (!st->n) return;
    size_t j = stab_home(st, h);
    fetch_line(&st->tags[j]);
    fetch_line(&st->keys[j]);
}
/* encode.c */
void free_calls(CallCols *k);
void free_exits(ExitCols *k);
PyObject *core_drain(CoreObject *c, PyObject *const *args, Py_ssize_t nargs);
PyObject *mod_decode_varints(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *mod_decode_shared(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
PyObject *mod_func_json(PyObject *m, PyObject *functions);
/* one unsigned LEB128 value at *pp (not past end), *pp moved past it: 0, or -1 when cut short or
 * longer than 64 bits (encode.c; the readers of columns and of value records use it) */
int get_varint(const unsigned char **pp, const unsigned char *end, uint64_t *out);
/* writer.c */
int add_native_writer(PyObject *m);
/* crc.c: zlib's crc32(crc, p, n), carry-less multiplication where the CPU has it (FT_HAVE_ZLIB only) */
uint32_t chunk_crc32(uint32_t crc, const unsigned char *p, size_t n);
/* callbacks.c */
PyObject *cb_py_start(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *cb_py_resume(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *cb_py_throw(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *cb_py_return(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *cb_py_yield(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *cb_py_unwind(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *core_set_exit_hook(CoreObject *c, PyObject *hook);
PyObject *cb_exception_handled(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *cb_reraise(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *core_callback(PyObject *core, PyObject *name);
void unwatch_tasks(void);
/* control.c */
void clear_pending(CoreObject *c);
void clear_codes(CoreObject *c);
void clear_seeds(CoreObject *c);
void clear_tasks_seen(CoreObject *c);
PyObject *core_start(CoreObject *c, PyObject *ignored);
PyObject *core_seed(CoreObject *c, PyObject *args);
PyObject *core_stop(CoreObject *c, PyObject *ignored);
int add_guard(PyObject *m);                                                         /* guard.c */
COLD int hook_exception_to_program(void);
COLD void hook_traceback_cut(PyObject *exc);
PyObject *call_in_callback(PyObject *func, PyObject *const *args, size_t nargsf, PyObject *kwnames);
int add_genwatch(PyObject *m);                                                       /* genwatch.c */
int add_audit(PyObject *m);                                                          /* audit.c */
int add_profile_pass(PyObject *m);                                                   /* profile_pass.c */
/* sighold.c: the program's signal handlers held off on the main thread while our Python code
 * runs inside a callback (1: held; 0: not the main thread, or held already), run after it; an
 * exception (stolen) raised at the main thread's next check outside a callback. */
int signals_hold(void);
void signals_release(int held);
int signals_main_thread(void);   /* (the main thread, held or not) */
void program_gets(PyObject *exc);
PyObject *program_code(PyObject *func, PyObject *arg);   /* (not held while it runs) */
void susp_unwatch(CoreObject *c);
PyObject *genwatch_core(CoreObject *c, void *frame, uint32_t call);
COLD void genwatch_lazy(CoreObject *c);
PyObject *core_note_monitoring(CoreObject *c, PyObject *tool);
int genwatch_end(CoreObject *c, ThreadState *ts, void *frame, uint32_t call, int64_t t);   /* callbacks.c */
PyObject *core_pending(CoreObject *c, PyObject *ignored);
PyObject *core_set_overflow(CoreObject *c, PyObject *args);
PyObject *core_stats(CoreObject *c, PyObject *ignored);

/* ---- hot-path helpers, inline in every file that uses them ---- */

/* An exit row where there is room for it (add_exit; the callbacks' fast paths test the room first). */
static inline __attribute__((always_inline)) void
put_exit(CoreObject *c, uint32_t call, int64_t t, uint8_t how, uint32_t val)
{
    size_t i = c->nexits++;
    c->exits.call[i] = call; c->exits.t1[i] = t; c->exits.how[i] = how; c->exits.val[i] = val;
}

static inline int
add_exit(CoreObject *c, uint32_t call, int64_t t, uint8_t how, uint32_t val)
{
    if (c->nexits == c->capexits && grow_exits(c) < 0) return -1;
    put_exit(c, call, t, how, val);
    return 0;
}

static inline int
add_mark(CoreObject *c, uint32_t call, int64_t t, uint8_t kind, uint32_t ref, uint32_t othr)
{
    if (c->nmarks == c->capmarks && grow_marks(c, c->nmarks + 1) < 0) return -1;
    MarkRow *r = &c->marks[c->nmarks++];
    r->t = t; r->call = call; r->ref = ref; r->othr = othr; r->kind = kind;   /* (exc: MARK_HANDLED's caller sets it) */
    return 0;
}

/* A new call row; its id (0 on failure) is the next one (ids are consecutive in row order:
 * nothing that can run Python may come between taking the id and writing the row). */
static inline __attribute__((always_inline)) uint32_t
put_call(CoreObject *c, int64_t t0, uint32_t par, uint32_t fn, uint32_t thr, uint32_t args, uint32_t task,
         uint8_t flag)
{
    size_t i = c->ncalls++;
    CallCols *k = &c->calls;
    k->t0[i] = t0; k->par[i] = par; k->fn[i] = fn; k->thr[i] = thr; k->args[i] = args; k->task[i] = task;
    k->flag[i] = flag;
    return c->next_call_id++;
}

static inline uint32_t
add_call(CoreObject *c, int64_t t0, uint32_t par, uint32_t fn, uint32_t thr, uint32_t args, uint32_t task,
         uint8_t flag)
{
    if (c->ncalls == c->capcalls && grow_calls(c) < 0) return 0;
    return put_call(c, t0, par, fn, thr, args, task, flag);
}

static inline StrEntry *
str_entry(CoreObject *c, uint32_t *sid)
{
    if (c->nstrs == c->capstrs && grow((void **)&c->strs, &c->capstrs, c->nstrs + 1, sizeof(StrEntry)) < 0)
        return NULL;
    StrEntry *e = &c->strs[c->nstrs++];
    memset(e, 0, sizeof(*e));
    *sid = (uint32_t)c->nstrs;   /* provisional: index + 1 in this batch */
    return e;
}

/* Is v an int of one digit (a compact int: its value read in place)? Its value as the small-int
 * tables index them (a negative one: huge, past every table). */
static inline int
small_int(PyObject *v)
{
    return v && Py_TYPE(v) == &PyLong_Type && PyUnstable_Long_IsCompact((PyLongObject *)v);
}
static inline uint64_t
small_int_value(PyObject *v)
{
    return (uint64_t)PyUnstable_Long_CompactValue((PyLongObject *)v);
}

/* The small-int tables' lookup for a value not captured yet (the common hit: no Slot, no type
 * tests, no call; small_entry_id: the entry at index x, for callbacks.c's exc_seen_id too): its
 * provisional id in this batch, or else its text's final id (FINAL_ID)
 * when an earlier batch of this session wrote it (capture.c small_final) -- no entry at all: a
 * loop over range(n) run again, or ints that outlive a flush interval, cost a table read --
 * or 0 to take the capture path. */
static inline uint32_t
small_entry_id(const CoreObject *c, const SmallTab *st, uint64_t x)
{
    if (x >= st->n) return 0;
    const SmallEntry *e = &st->tab[x];
    if (e->batch == (uint32_t)c->batch && e->sid) return e->sid;
    return e->fgen == (uint32_t)c->gen && e->final && e->final < FINAL_ID ? e->final | FINAL_ID : 0;
}
static inline uint32_t
small_hit(const CoreObject *c, const SmallTab *st, PyObject *v)
{
    if (!small_int(v)) return 0;
    return small_entry_id(c, st, small_int_value(v));
}

/* args_id's commonest case inline on the hot path: one plain parameter (its small-int table:
 * codes.c small_args_for) holding a small int found there. */
static inline uint32_t
args_small_hit(const CoreObject *c, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx)
{
    const CodeInfo *ci = &c->codes[idx];
    int32_t k = ci->small;
    /* (a cell: args_id. small >= 0 is a code of one argument, so `cells` is that argument's:
     * no read of co_localspluskinds' bytes, a line of its own) */
    if (k < 0 || ci->cells || !frame || FRAME_CODE(frame) != (PyObject *)co)
        return 0;
    return small_hit(c, &c->small_args[k], frame->localsplus[0]);
}

/* args_small_hit for the fast path (vc_cb_py_start, XF_SMALL set: one plain parameter, no cell;
 * the frame running the code: running_state): the value tested first, the code's table read
 * (CodeFast.small) only for a small int -- not for an instance, which most one-parameter methods
 * (self) take. */
static inline uint32_t
args_small_hit_fast(const CoreObject *c, _PyInterpreterFrame *frame, Py_ssize_t idx)
{
    PyObject *v = frame->localsplus[0];
    if (!small_int(v)) return 0;
    return small_entry_id(c, &c->small_args[c->fast[idx].small], small_int_value(v));
}

/* The fast path's argument list of a code that shows none (vc_cb_py_start, XF_NOARGS): the
 * batch's "" entry when it has one (args_id_rest makes it at the batch's first such call) --
 * not the way there through start_keyed, start_unkeyed, start_args_out, args_id_unkeyed and
 * args_id_rest (~18 k calls of flask's test_basic a run: genexprs, whose ".0" is not shown, and
 * functions of no parameter), four frames and their lines in the instruction cache. */
static inline uint32_t
args_empty_hit(const CoreObject *c)
{
    return c->empty_batch == c->batch ? c->empty_sid : 0;
}

/* value_id's commonest cases inline on the hot path: a None result whose entry this batch has
 * (value_id_other's: procedures, __init__ -- no call, no type tests; as a call of value_id and
 * then value_id_other, those two missed the instruction cache at nearly every None of the oop
 * workload: ~3 misses a call, callgrind --cache-sim), or a small int result found in its table. */
static inline uint32_t
value_small_hit(const CoreObject *c, PyObject *v)
{
    if (!c->args_mode) return 0;
    if (v == Py_None) return c->single_batch[0] == c->batch ? c->single_sid[0] : 0;
    return small_hit(c, &c->small_vals, v);
}

/* Provisional string id of an exception's text, made at its first event (capture.c
 * exc_id_slow): an exception passing through the frames of one thread (UNWIND, UNWIND,
 * HANDLED) takes it from the thread's cache here, inline -- exc_id_slow's frame is large
 * (~18 instructions to enter and leave). The cache is dropped at every new raise (a dead
 * exception's address may be reused) and at every drain (provisional ids are per batch). */
static inline uint32_t
exc_id(CoreObject *c, ThreadState *ts, PyObject *exc)
{
    if (exc == ts->exc_ptr && ts->exc_batch == c->batch && ts->exc_sid) return ts->exc_sid;
    return exc_id_slow(c, ts, exc);
}

/* The hot-path lookup: one thread-local load and two compares. */
static inline ThreadState *
thread_state(CoreObject *c, PyThreadState *tstate)
{
    ThreadState *ts = tls_state;
    if (ts && ts->gen == c->gen && ts->tstate == tstate) return ts;
    return thread_state_slow(c, tstate);
}

/* The callbacks' `return None`, with the (one compare) backpressure test. */
static inline PyObject *
done_or_overflow(CoreObject *c, ThreadState *ts)
{
    if (c->ncalls + c->nexits + c->nmarks < c->overflow_at) Py_RETURN_NONE;
    return overflow_slow(c, ts);
}

/* A stack entry where there is room for it (push; the callbacks' fast paths test the room first). */
static inline __attribute__((always_inline)) void
put_entry(ThreadState *ts, void *frame, uint32_t call, uint32_t code_idx, uint32_t task)
{
    Entry *e = &ts->stack[ts->depth++];
    e->frame = frame; e->call = call; e->code_idx = code_idx; e->task = task; e->quiet = e->fold = e->hmark = 0;
    e->srec = e->pred = NULL;
}

static inline int
push(ThreadState *ts, void *frame, uint32_t call, uint32_t code_idx, uint32_t task)
{
    if (ts->depth == ts->cap && stack_reserve(ts, ts->depth + 1) < 0) return -1;
    put_entry(ts, frame, call, code_idx, task);
    return 0;
}

/* The quiet run of stack entry e is not quiet after all (a call under it, a mark of its call,
 * its end): its resume row, held back till now, is written (0, or -1 with an error). Out of
 * line: the hot paths test e->quiet and call this only when set. */
int quiet_end_slow(CoreObject *c, Entry *e);
static inline __attribute__((always_inline)) int
quiet_end(CoreObject *c, Entry *e)
{
    return e->quiet ? quiet_end_slow(c, e) : 0;
}
/* Before a drain: the held-back resume rows of every quiet run in progress go into the batch
 * being drained (its runs are not quiet any more: a run folds only within a batch), so that a
 * file cut short after this flush still shows each running generator's resume. */
void quiet_end_all(CoreObject *c);

/* Argument i of the frame (an argument captured by an inner function is already a cell at
 * PY_START: its content). kinds: the code's co_localspluskinds bytes, or NULL when no argument
 * is a cell (CodeInfo.cells 0: arg_kinds). */
static inline PyObject *
arg_value(_PyInterpreterFrame *frame, const char *kinds, uint32_t i)
{
    PyObject *v = frame->localsplus[i];
    if (v && kinds && (kinds[i] & CO_FAST_CELL) && PyCell_Check(v)) v = PyCell_GET(v);
    return v;
}

/* The localsplus index of display position k of code ci (CodeInfo.order[k]): from order4, in
 * CodeInfo's first line, for a code of at most 4 captured slots (every index below 4: order4
 * holds all its positions) -- order, an array of its own, was a cache miss at ~26 % of packed.c
 * args_record's samples (flask's phase, perf annotate, session 33); else order[k]. */
static inline uint32_t
arg_order(const CodeInfo *ci, uint32_t k)
{
    return ci->nargs <= 4 ? (uint32_t)(ci->order4 >> (2 * k)) & 3 : ci->order[k];
}

/* arg_value's kinds for code co (ci its CodeInfo): NULL when none of its arguments is a cell --
 * nearly every code -- so that the kinds' bytes, an object of their own, are not read: their
 * line was a cache miss at ~17 % of capture.c args_id_rest's samples (perf annotate, flask's
 * phase, session 31), one test of CodeInfo's line, which the caller reads anyway. */
static inline const char *
arg_kinds(const CodeInfo *ci, PyCodeObject *co)
{
    return ci->cells ? PyBytes_AS_STRING(co->co_localspluskinds) : NULL;
}

#define CODE_EXCLUDED (-1)
#define CODE_ERROR (-2)

/* Our co_extra slot, read in place: PyUnstable_Code_GetExtra is a call into libpython that
 * checks its arguments (~15 instructions of every event). The block's layout is CPython's
 * private _PyCodeObjectExtra (Objects/codeobject.c, the same since 3.6); codes.c checks it
 * against the API once, at import (extra_layout_check), and uses the API only if it differs. */
typedef struct { Py_ssize_t ce_size; void *ce_extras[1]; } CodeExtra;
extern int extra_inline;
int extra_layout_check(void);
static inline uintptr_t
code_extra(PyCodeObject *co)
{
    if (extra_inline) {
        const CodeExtra *ex = (const CodeExtra *)co->co_extra;
        return ex && extra_index < ex->ce_size ? (uintptr_t)ex->ce_extras[extra_index] : 0;
    }
    void *p = NULL;
    PyUnstable_Code_GetExtra((PyObject *)co, extra_index, &p);   /* (cannot fail for a valid index) */
    return (uintptr_t)p;
}

/* The code's index (>= 0), CODE_EXCLUDED, or CODE_ERROR. One array read when known. */
static inline Py_ssize_t
code_index(CoreObject *c, PyCodeObject *co, _PyInterpreterFrame *frame)
{
    uintptr_t v = code_extra(co);
    if (v && EXTRA_GEN(v) == GEN_BITS(c->gen))
        return (v & 1) ? CODE_EXCLUDED : EXTRA_IDX(v);
    return code_slow(c, co, (frame && FRAME_CODE(frame) == (PyObject *)co) ? frame->f_globals : NULL);
}

/* The fast paths' code lookup (fast_gen: the slot is read in place): for a code this session
 * records, its index << XF_IDX_SHIFT | its flags (XF_*), else UINT64_MAX -- unseen, excluded,
 * another session's: code_index answers. A subtraction and one unsigned compare: the slot of
 * this session's code k is code_base + (k << XF_IDX_SHIFT) + its flags (code_base:
 * GEN_BITS(gen) << 40 | 1 << XF_IDX_SHIFT); an excluded code's (code_base - 511), 0, and another
 * generation's are all code_lim or more above it, or below it (wrapping). */
static inline uint64_t
code_known(const CoreObject *c, PyCodeObject *co)
{
    const CodeExtra *ex = (const CodeExtra *)co->co_extra;
    if (!ex || extra_index >= ex->ce_size) return UINT64_MAX;
    uint64_t d = (uint64_t)(uintptr_t)ex->ce_extras[extra_index] - c->code_base;
    return d < c->code_lim ? d : UINT64_MAX;
}

/* The hot-path clock where fast_gen holds (use_tsc, where the TSC is there at all). */
static inline int64_t
fast_stamp(void)
{
#ifdef HAVE_TSC
    return (int64_t)__rdtsc();
#else
    return now_ns();
#endif
}

/* c->fast_gen from what it depends on; after any of them (or gen) changes. */
#define FAST_NEVER UINT64_MAX   /* (generations count up from 1: no thread state has this one) */
static inline void
fast_update(CoreObject *c)
{
#ifdef HAVE_TSC
    int fast = c->active && extra_inline && use_tsc;
#else
    int fast = c->active && extra_inline;
#endif
    c->fast_gen = fast ? c->gen : FAST_NEVER;
}

/* The head of a dict's keys object (internal/pycore_dict.h struct _dictkeysobject, the same in
 * 3.12 and 3.13; that header does not build beside Python.h's own): its kind, DICT_KEYS_GENERAL
 * (0) when a key is not an exact str. */
typedef struct { Py_ssize_t refcnt; uint8_t log2_size, log2_index_bytes, kind; } DictKeysHead;
static inline int
dict_keys_general(PyObject *d)
{
#if PY_VERSION_HEX < 0x030E0000
    return ((const DictKeysHead *)(const void *)((PyDictObject *)d)->ma_keys)->kind == 0;
#else
    (void)d;
    return 1;   /* (a layout not checked: every dict taken as one whose lookup could run Python) */
#endif
}

/* d[key] (borrowed) for an exact str key, without running Python code: 1 with *item set (NULL:
 * missing), or 0 when only a lookup that could run Python would say. A dict whose keys are
 * all exact strs (DICT_KEYS_UNICODE, or split) compares keys by identity and by their
 * characters; one holding any other key (DICT_KEYS_GENERAL) calls that key's __eq__ when its
 * hash equals key's -- a class dict can hold such a key, and its __eq__ could do anything,
 * switch threads included, in the middle of a callback whose state is live (capture.c
 * rec_label_new, the keyed miss's c->hit_key). */
static inline int
dict_str_item(PyObject *d, PyObject *key, PyObject **item)
{
    if (dict_keys_general(d)) return 0;
    *item = PyDict_GetItemWithError(d, key);   /* (an exact str's cached hash: no error either) */
    return 1;
}

/* v's decimal digits written backwards ending at `end` (20 bytes at most), as int.__repr__
 * writes them; their start. By hand: snprintf was a tenth of the drain (render.c), ~800
 * instructions a number (encode.c's func_json). */
static inline char *
decimal(char *end, int64_t v)
{
    uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do { *--end = (char)('0' + m % 10); m /= 10; } while (m);
    if (v < 0) *--end = '-';
    return end;
}

static inline size_t
ptr_hash(void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33;
    return (size_t)x;
}

/* 3.13+ checks the eval breaker at a generator's RESUME before its PY_RESUME: a signal handler's
 * or a finalizer's call made there has the generator's frame for caller while the generator's
 * resumer is still on top (callbacks.c resume_unseen). A call whose caller frame is not the top's
 * goes the way that looks (start_parent); on 3.12 the resume is seen first. */
#if PY_VERSION_HEX >= 0x030D0000
#define RESUME_BEFORE_EVENT 1
#define CALLER_NOT_TOP(frame, up) (!(up) || (frame)->previous != (up)->frame)
#else
#define RESUME_BEFORE_EVENT 0
#define CALLER_NOT_TOP(frame, up) 0
#endif

/* PY_START's row and stack entry for a call whose arguments' id `a` is known (0: none), on a
 * fast path (fast_gen: the TSC read directly): calls nothing when there is room and its parent's
 * run is not quiet -- else start_row_out (start_parent's quiet_end, the buffers grown; 3.13: a
 * caller that is not the top, CALLER_NOT_TOP). Same row, same entry as start_parent and start_row
 * make. (vc_cb_py_start, capture.c start_keyed_any; callbacks.c start_fast_out for the others) */
static inline __attribute__((always_inline)) PyObject *
start_fast(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, Py_ssize_t idx, uint32_t a)
{
    const Entry *up = ts->depth ? &ts->stack[ts->depth - 1] : NULL;
    if (c->ncalls == c->capcalls || ts->depth == ts->cap || (up && up->quiet)   /* (quiet: start_parent's row) */
            || CALLER_NOT_TOP(frame, up))
        return start_row_out(c, ts, frame, idx, a);
    uint32_t parent = 0, task = 0;
    if (up) { parent = up->call; task = up->task; }   /* (start_parent, its top not quiet) */
    /* put_call's row and put_entry's entry written field by field, each value read just before
     * its store (a store to a column may alias what is read next, so they stay in this order),
     * and the clock read last: few values are live at any point. As put_call's arguments, all
     * read first and the clock with them, they were ~10, and start_fast_out saved 3 registers
     * (now none), vc_cb_py_start 3 (now 2) at every call (objdump; callgrind oop: -6
     * instructions a keyed miss, -2 a call) */
    size_t i = c->ncalls++;
    CallCols *k = &c->calls;
    k->par[i] = parent; k->fn[i] = c->crec[idx].func; k->thr[i] = ts->thr; k->args[i] = a; k->task[i] = task;
    k->flag[i] = 0;
    put_entry(ts, frame, c->next_call_id++, (uint32_t)idx, task);   /* (put_call's id) */
    k->t0[i] = fast_stamp();
    return done_or_overflow(c, ts);
}

/* PY_RETURN's exit row for the call on top of the stack (not a generator's), its value's id `v`
 * known (0: none), on a fast path: calls nothing when there is room -- else end_row_out (the
 * buffer grown). Same row, same stack as end_row makes. (vc_cb_py_return, capture.c end_keyed) */
static inline __attribute__((always_inline)) PyObject *
end_fast(CoreObject *c, ThreadState *ts, int64_t t, uint32_t v)
{
    if (c->nexits == c->capexits) return end_row_out(c, ts, t, v);
    ts->depth--;
    put_exit(c, ts->stack[ts->depth].call, t, END_RETURN, v);
    Py_RETURN_NONE;
}

/* A frame's home slot in the generator map (capsusp > 0): Fibonacci hashing, the product's top
 * log2(capsusp) bits -- a multiply and a shift, where ptr_hash's mix and mask were ~8
 * instructions of every resume (benchmarks' generators: ~13 switches a call). */
static inline size_t
susp_hash(const CoreObject *c, void *frame)
{
    return (size_t)(((uint64_t)(uintptr_t)frame * 0x9E3779B97F4A7C15ULL) >> c->susp_shift);
}

/* The watch of a new generator map entry (genwatch.c): its GenRef on 3.13+; on 3.12 none yet
 * (a GenRef a generator cost +21 M instructions on benchmarks' generators), noted for
 * hook_runs_python -- unless code run unseen may free generators (watch_now: genwatch_lazy). */
static inline __attribute__((always_inline)) PyObject *
susp_watch(CoreObject *c, void *frame, uint32_t call)
{
#if GENWATCH_EAGER
    return genwatch_core(c, frame, call);
#else
    if (c->watch_now) return genwatch_core(c, frame, call);
    c->unwatched = 1;
    return NULL;
#endif
}

/* Before a hook runs Python code inside a callback: a generator freed there is closed with no
 * event (CPython sends none inside a monitoring callback), so on 3.12 every entry of the
 * generator map is watched first (genwatch_lazy). Nothing to do once all are. */
static inline void
hook_runs_python(CoreObject *c)
{
#if !GENWATCH_EAGER
    if (c->unwatched) genwatch_lazy(c);
#else
    (void)c;
#endif
}

#pragma GCC visibility pop
#endif
