/*
 * flowtrace._crecorder -- the recording hot path in C (the Python side is
 * flowtrace/recorder/c.py; the reference semantics are flowtrace/recorder/python.py).
 *
 * The sys.monitoring callbacks are METH_FASTCALL methods of one `Core` object. They keep
 * per-thread stacks and the session's rows in plain C memory (no Python object is created
 * per call), read timestamps from the TSC or CLOCK_MONOTONIC (mapped at drain onto
 * CLOCK_MONOTONIC, time.perf_counter_ns's clock on Linux: see stamp()) and cache the
 * per-code-object filter decision in the code object's co_extra slot.
 * What needs Python -- the filter decision, the function/thread/task tables, exception
 * texts, the text of containers and (in full mode) of other objects -- is done by hooks
 * into the wrapper, once per code object / thread / task / exception, never per plain call.
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
 * __del__, no weakref). Builtin containers can mutate, so they are rendered at call time
 * (reprs.value_text, which never calls a user __repr__ in safe mode). Any other object is
 * kept as (type, address): the type is referenced until the drain, the object not at all,
 * so recording never extends an object's life or runs its code. Strings get provisional
 * ids at event time; the drain renders them, removes duplicates and renumbers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
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
#include "opcode.h"   /* SEND, GET_ANEXT, CLEANUP_THROW, END_ASYNC_FOR, CACHE (per version) */
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

/* ------------------------------------------------------------------------------------ */
/* Rows, in the units of docs/FORMAT.md, except that times are ticks of the hot-path clock
 * (stamp(): raw TSC or CLOCK_MONOTONIC ns) until the drain converts them to CLOCK_MONOTONIC
 * ns, and string references (args, val, ref) are provisional ids until it renumbers them. */

/* Calls and exits -- nearly all rows -- are kept as columns, written by the callbacks
 * straight into the buffers that the drain hands to Python as the Batch's array.array
 * columns (adopt_column: no copy). Rows kept as structs and converted at drain cost a second
 * copy of every row, and each fresh 4 KiB page costs a page fault here (~1.7 us): per call
 * ~56 bytes of rows plus ~54 of columns. Buffers come from PyMem_Malloc (the array frees
 * them with PyMem_Free); every writer holds the GIL. */
typedef struct { uint32_t *par, *fn, *thr, *args, *task; int64_t *t0; uint8_t *flag; } CallCols;
typedef struct { uint32_t *call, *val; int64_t *t1; uint8_t *how; } ExitCols;
/* (exc: internal, the exception of a handled mark, for RERAISE; kind 0 = dropped) */
typedef struct { int64_t t; void *exc; uint32_t call, ref, othr; uint8_t kind; } MarkRow;

enum { END_RETURN = 1, END_RAISE = 2, END_UNFINISHED = 3 };
enum { MARK_SUSPEND = 1, MARK_RESUME = 2, MARK_THROW = 3, MARK_RAISE = 4, MARK_HANDLED = 5 };
#define CALL_PARTIAL 1

/* A captured value (one argument, a result or a yielded value). */
enum {
    V_NONE = 1, V_TRUE, V_FALSE,
    V_INT,      /* u.i */
    V_FLOAT,    /* u.d */
    V_OBJ,      /* o: owned reference to an immutable builtin, rendered at drain */
    V_TEXT,     /* o: owned str already rendered */
    V_OPAQUE,   /* o: owned reference to the type, u.addr: the object's address */
    V_UNBOUND,  /* the frame slot was empty */
    V_DEFREPR,  /* full mode, object.__repr__: like V_OPAQUE (its text is the placeholder's) */
};
typedef struct { PyObject *o; union { int64_t i; double d; uintptr_t addr; } u; uint8_t tag; } Slot;
_Static_assert(V_DEFREPR < 16, "memo keys keep a slot tag in 4 bits");

/* A provisional string id's content: a text made at event time, or slots to render. */
enum { S_TEXT = 1, S_ARGS, S_VALUE };
typedef struct { PyObject *text; size_t slot_off; uint32_t nslots, code_idx; uint8_t kind; } StrEntry;

/* A direct-indexed memo for one small non-negative int: the only argument of one function,
 * or a result / yielded value (see commit_memo). sid is valid in batch `batch` only. */
typedef struct { uint32_t sid, batch; } SmallEntry;
typedef struct { SmallEntry *tab; uint32_t n; } SmallTab;

/* What the session knows about one recorded code object (its index is in co_extra). */
typedef struct {
    PyObject *names;   /* tuple, display order: "a", "*args", "kwonly", "**kw" */
    uint16_t *order;   /* display position -> localsplus index */
    uint8_t *star;     /* display position -> 0 plain, 1 *args, 2 **kwargs */
    uint32_t func;     /* FUNC id (0 for the create_task hook) */
    uint16_t nargs;    /* number of leading localsplus slots captured (0: none shown) */
    uint16_t nshown;   /* number of names shown (compiler-internal ".0" etc. are not) */
    uint8_t genlike;   /* generator, coroutine, async generator or iterable coroutine */
    uint8_t coro;      /* coroutine or async generator: asks for its asyncio task */
    uint8_t hook;      /* BaseEventLoop.create_task: not a call; its return names a creator */
    int32_t small;     /* one plain parameter: its name's small-int table (commit_memo), or -1 */
} CodeInfo;

/* An open call on a thread's stack (frame: its interpreter frame, for matching ends). */
typedef struct { void *frame; uint32_t call, code_idx, task; } Entry;

/* A suspended generator / coroutine, keyed by its interpreter frame (which lives inside the
 * generator object, so its address is stable while the generator exists). */
typedef struct { void *frame; uint32_t call, code_idx, task; } Susp;

/* Calls seeded at start (seed_running) for a thread that has not run an event yet. */
typedef struct { unsigned long ident; uint32_t thr; Entry *stack; size_t depth; } Seed;

/* Most argument lists and results are a few inline scalars (ints, floats, None, bools) or
 * (type, address) of opaque objects that repeat (fib(3) is called many times): the hot memo,
 * a direct-mapped cache from their binary form to the provisional string id of their first
 * entry in this batch (commit_memo), stores one entry for them all, rendered once at drain.
 * (A second memo at drain, from the binary form to the final id, cost more in cache misses
 * than the renders it saved: dropped; the text table dedupes what the hot memo missed.)
 * The hot memo and text tables keep hashes with the low bit set (0 marks an empty slot);
 * the slot index comes from the other bits, or only the odd half of a table would be used. */
#define HSLOT(h) ((h) >> 1)
#define MEMO_SLOTS 4
typedef struct Memo {
    uint64_t hash;
    uint64_t head;                 /* code index | kind << 32 | n << 40 | slot tags << 48 */
    uint32_t sid, batch;
    int64_t vals[MEMO_SLOTS];
    uintptr_t types[MEMO_SLOTS];   /* hot memo only: the type of an opaque value */
} Memo;

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
    PyObject *unwound;                /* borrowed: exception that just left a recorded call */
    PyObject *task_ref;               /* weakref to the asyncio task last seen here ... */
    uint32_t task_id;                 /* ... its TASK id ... */
    uint64_t task_gen;                /* ... in this session */
    int in_overflow;                  /* this thread is running the overflow hook */
} ThreadState;

static ThreadState all_threads = {&all_threads, &all_threads, NULL, 0, 0, NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, 0};
static _Thread_local ThreadState *tls_state __attribute__((tls_model("initial-exec")));
static uint64_t generation_counter;
static Py_ssize_t extra_index = -1;
static PyObject *DISABLE;
static PyObject *thread_key;         /* key of our capsule in each thread's state dict */
static PyObject *str_name, *str_root, *str_empty;
static struct CoreObject *active_core;

typedef struct { int64_t tick, ns; } Anchor;   /* a clock reading in ticks and in ns */
typedef struct { uint64_t hash; size_t off; uint32_t len, sid; } StrKey;
typedef struct StrTab { StrKey *tab; size_t cap, n; char *arena; size_t alen, acap; } StrTab;
static void stab_clear(StrTab *st);
static void stab_free(StrTab *st);

typedef struct CoreObject {
    PyObject_HEAD
    uint64_t gen;
    int active;
    int args_mode;                   /* 0 off, 1 safe, 2 full */
    /* hooks into the Python wrapper */
    PyObject *on_code;               /* (code, module) -> fid > 0, 0 excluded, -1 create_task hook */
    PyObject *on_thread;             /* (ident) -> THRD id */
    PyObject *exc_text;              /* exc -> text */
    PyObject *repr_now;              /* value -> text (containers; every object in full mode) */
    PyObject *task_hook;             /* (parent, thr) -> (task id, new TASK entry or None) */
    PyObject *task_created;          /* (task, creator call id) -> None */
    PyObject *tasks_out;             /* list the new TASK entries are appended to */
    PyObject *overflow;              /* () -> None: the session flushes on this thread (or NULL) */
    size_t overflow_rows;            /* the cap: pending rows that make a start/resume call `overflow` */
    size_t overflow_at;              /* the test's threshold: overflow_rows, raised after a hook
                                      * call that flushed nothing (reset by every drain) */
    struct StrTab stab;              /* UTF-8 text -> final string id (deduplication) */
    uint32_t next_final_sid;
    /* rows */
    CallCols calls; size_t ncalls, capcalls;
    ExitCols exits; size_t nexits, capexits;
    MarkRow *marks; size_t nmarks, capmarks;
    uint32_t call_first_id, next_call_id;
    StrEntry *strs; size_t nstrs, capstrs;
    Slot *slots; size_t nslots, capslots;
    uint64_t batch;                  /* drains so far (provisional string ids are per batch) */
    CodeInfo *codes; size_t ncodes, capcodes;
    /* suspended generators: open addressing, linear probing, backward-shift deletion */
    Susp *susp; size_t nsusp, capsusp;
    uint32_t *lost; size_t nlost, caplost;   /* generators whose frame address was reused */
    Seed *seeds; size_t nseeds, capseeds;
    /* the previous batch's row buffers, reused by the next drain's swap: fresh memory costs a
     * page fault per page and regrowing copies everything */
    struct Memo *hot;                /* event time: inline-only values seen in this batch */
    MarkRow *spare_marks; size_t cap_spare_marks;
    StrEntry *spare_strs; size_t cap_spare_strs;
    Slot *spare_slots; size_t cap_spare_slots;
    uint64_t errors;                 /* internal errors swallowed (never raised into user code) */
    uint64_t rendered;               /* drain statistics: entries rendered */
    Anchor anchor;                   /* (ticks, ns) at start / the last drain: see tick_map */
    SmallTab small_vals;             /* results / yielded values that are small ints (commit_memo) */
    SmallTab *small_args;            /* one-int argument lists, one table per parameter name ... */
    PyObject **small_names;          /* ... (the text is "name=value" whatever the function) */
    size_t nsmall_args, capsmall_args;
    uint32_t empty_sid;              /* the "" of argument-less calls ... */
    uint64_t empty_batch;            /* ... in this batch */
    size_t small_bytes;              /* all SmallTabs' memory (bounded: SMALL_BUDGET) */
} CoreObject;

/* ------------------------------------------------------------------------------------ */
/* Small helpers                                                                         */

#define MAX_STRING 60     /* reprs.MAX_STRING */
#define MAX_TEXT 240      /* reprs.MAX_TEXT */
static PyObject *cut_text(PyObject *text, Py_ssize_t limit);

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
 * adjustments, so the callbacks store the raw TSC (one rdtsc, ~10-20 ns) and the drain maps
 * each batch's ticks onto ns by the line through two anchors -- (tsc, ns) pairs read
 * together at the previous drain (or start) and at this one. The mapping is exact at the
 * anchors, monotonic, and continuous from one batch to the next (they share an anchor), so
 * every time in the file stays on time.perf_counter_ns's timeline. Elsewhere ticks are ns
 * and the conversion is the identity. FLOWTRACE_CLOCK=monotonic forces clock_gettime. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <x86intrin.h>
#define HAVE_TSC 1
#endif
static int use_tsc;   /* set once at import (clock_init) */

static inline int64_t
stamp(void)
{
#ifdef HAVE_TSC
    if (use_tsc) return (int64_t)__rdtsc();
#endif
    return now_ns();
}

/* A (ticks, ns) pair read as close together as the machine allows: the ns reading between
 * two rdtsc, the tightest of a few tries (a preemption in between makes one loose). */
static Anchor clock_origin;   /* read at import: a long segment for a batch that has none */
static Anchor
anchor_now(void)
{
    Anchor best = {0, 0};
#ifdef HAVE_TSC
    if (use_tsc) {
        int64_t gap = INT64_MAX;
        for (int i = 0; i < 5; i++) {
            int64_t a = (int64_t)__rdtsc(), ns = now_ns(), b = (int64_t)__rdtsc();
            if (b - a < gap) { gap = b - a; best.tick = a + (b - a) / 2; best.ns = ns; }
        }
        return best;
    }
#endif
    best.ns = best.tick = now_ns();
    return best;
}

/* ns = a.ns + round((tick - a.tick) * mult / 2^TICK_SHIFT), mult = (b.ns - a.ns) / (b.tick -
 * a.tick) in fixed point: a 64x64->128 bit multiply per value (the division once per batch).
 * Rounding makes it exact at both anchors for segments shorter than 2^48 ticks (~26 h at
 * 3 GHz); longer ones are off by a nanosecond or so. */
#define TICK_SHIFT 48
typedef struct { Anchor a; __int128 mult; int identity; } TickMap;

static TickMap
tick_map(Anchor a, Anchor b)
{
    TickMap m = {a, 0, !use_tsc};
    if (m.identity) return m;
    int64_t dt = b.tick - a.tick, dn = b.ns - a.ns;
    if (dt <= 0 || dn < 0) {   /* no usable segment (no tick passed): the rate since import */
        dt = b.tick - clock_origin.tick;
        dn = b.ns - clock_origin.ns;
        if (dt <= 0 || dn < 0) { dt = 1; dn = 1; }
    }
    m.mult = (((__int128)dn << TICK_SHIFT) + dt / 2) / dt;
    return m;
}

/* Ticks are the TSC only where that is CLOCK_MONOTONIC's own source and invariant (constant
 * rate in every P/C-state, "constant_tsc nonstop_tsc" in /proc/cpuinfo): cpuid's invariant-TSC
 * bit, and the kernel's current clocksource is "tsc" (it also checked the TSCs agree across
 * CPUs; it falls back to another clocksource when they do not). Should it switch later, the
 * map stays monotonic and exact at the anchors, off between them by the two clocks' drift
 * over one flush interval. */
static void
clock_init(void)
{
    use_tsc = 0;
#ifdef HAVE_TSC
    const char *force = getenv("FLOWTRACE_CLOCK");
    if (force && !strcmp(force, "monotonic")) return;
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000007) return;
    if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8))) return;
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (!f) return;
    char name[32] = {0};
    int ok = fgets(name, sizeof name, f) != NULL && !strcmp(name, "tsc\n");
    fclose(f);
    if (!ok) return;
    use_tsc = 1;
    clock_origin = anchor_now();
#endif
}

static inline int64_t
tick_to_ns(const TickMap *m, int64_t tick)
{
    if (m->identity) return tick;
    __int128 x = (__int128)(tick - m->a.tick) * m->mult + ((__int128)1 << (TICK_SHIFT - 1));
    return m->a.ns + (int64_t)(x >> TICK_SHIFT);   /* arithmetic shift: floor, also below a */
}

static int
grow(void **buf, size_t *cap, size_t need, size_t item)
{
    if (need <= *cap) return 0;
    size_t ncap = *cap ? *cap : 256;
    while (ncap < need) ncap *= 2;
    void *p = PyMem_RawRealloc(*buf, ncap * item);
    if (!p) { PyErr_NoMemory(); return -1; }
    *buf = p;
    *cap = ncap;
    return 0;
}

/* A failure inside a callback must never reach the traced program: count it and clear it.
 * BaseExceptions that are not Exceptions (KeyboardInterrupt, SystemExit raised by a signal
 * handler that ran inside a hook) are let through, so Ctrl-C still works. */
static PyObject *
callback_failed(CoreObject *c)
{
    c->errors++;
    PyObject *exc = PyErr_GetRaisedException();
    if (exc && !PyErr_GivenExceptionMatches(exc, PyExc_Exception)) {
        PyErr_SetRaisedException(exc);
        return NULL;
    }
    Py_XDECREF(exc);
    Py_RETURN_NONE;
}

/* Same, for a failure whose event row is still worth writing (e.g. a value text failed). */
static void
soft_fail(CoreObject *c)
{
    if (PyErr_Occurred()) { c->errors++; PyErr_Clear(); }
}

/* Double the capacity of a set of column buffers (all or nothing: a failure keeps the old
 * capacity, and a buffer already grown is merely larger than needed). */
static int
grow_cols(void **cols[], const size_t sizes[], int ncols, size_t *cap)
{
    size_t ncap = *cap ? *cap * 2 : 1024;
    for (int k = 0; k < ncols; k++) {
        void *p = PyMem_Realloc(*cols[k], ncap * sizes[k]);
        if (!p) { PyErr_NoMemory(); return -1; }
        *cols[k] = p;
    }
    *cap = ncap;
    return 0;
}

static int
grow_exits(CoreObject *c)
{
    void **cols[] = {(void **)&c->exits.call, (void **)&c->exits.val, (void **)&c->exits.t1, (void **)&c->exits.how};
    static const size_t sizes[] = {4, 4, 8, 1};
    return grow_cols(cols, sizes, 4, &c->capexits);
}

static int
grow_calls(CoreObject *c)
{
    CallCols *k = &c->calls;
    void **cols[] = {(void **)&k->par, (void **)&k->fn, (void **)&k->thr, (void **)&k->args, (void **)&k->task,
                     (void **)&k->t0, (void **)&k->flag};
    static const size_t sizes[] = {4, 4, 4, 4, 4, 8, 1};
    return grow_cols(cols, sizes, 7, &c->capcalls);
}

static inline int
add_exit(CoreObject *c, uint32_t call, int64_t t, uint8_t how, uint32_t val)
{
    if (c->nexits == c->capexits && grow_exits(c) < 0) return -1;
    size_t i = c->nexits++;
    c->exits.call[i] = call; c->exits.t1[i] = t; c->exits.how[i] = how; c->exits.val[i] = val;
    return 0;
}

static inline int
add_mark(CoreObject *c, uint32_t call, int64_t t, uint8_t kind, uint32_t ref, uint32_t othr)
{
    if (c->nmarks == c->capmarks && grow((void **)&c->marks, &c->capmarks, c->nmarks + 1, sizeof(MarkRow)) < 0)
        return -1;
    MarkRow *r = &c->marks[c->nmarks++];
    r->t = t; r->exc = NULL; r->call = call; r->ref = ref; r->othr = othr; r->kind = kind;
    return 0;
}

/* A new call row; its id (0 on failure) is the next one (ids are consecutive in row order:
 * nothing that can run Python may come between taking the id and writing the row). */
static inline uint32_t
add_call(CoreObject *c, int64_t t0, uint32_t par, uint32_t fn, uint32_t thr, uint32_t args, uint32_t task,
         uint8_t flag)
{
    if (c->ncalls == c->capcalls && grow_calls(c) < 0) return 0;
    size_t i = c->ncalls++;
    CallCols *k = &c->calls;
    k->t0[i] = t0; k->par[i] = par; k->fn[i] = fn; k->thr[i] = thr; k->args[i] = args; k->task[i] = task;
    k->flag[i] = flag;
    return c->next_call_id++;
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

/* A provisional string id for a text made now (steals `text`; 0 if NULL). */
static uint32_t
add_text(CoreObject *c, PyObject *text)
{
    uint32_t sid = 0;
    if (!text) return 0;
    StrEntry *e = str_entry(c, &sid);
    if (!e) { Py_DECREF(text); return 0; }
    e->kind = S_TEXT;
    e->text = text;
    return sid;
}

/* ------------------------------------------------------------------------------------ */
/* Per-thread state. It is owned by a capsule stored in the thread's state dict, so it is
 * freed when the thread ends (PyThreadState_Clear, GIL held); a thread-local pointer caches
 * it for the hot path. It is reused across sessions and reset when the generation differs. */

static void
end_stack(CoreObject *c, Entry *stack, size_t *depth, int64_t t)
{
    while (*depth) add_exit(c, stack[--*depth].call, t, END_UNFINISHED, 0);
}

static void
thread_capsule_destructor(PyObject *capsule)
{
    ThreadState *ts = (ThreadState *)PyCapsule_GetPointer(capsule, "flowtrace.thread");
    if (!ts) { PyErr_Clear(); return; }
    /* a thread cannot end inside a recorded call; if it somehow did, the call ends here */
    if (active_core && active_core->active && ts->gen == active_core->gen && ts->depth)
        end_stack(active_core, ts->stack, &ts->depth, stamp());
    ts->prev->next = ts->next;
    ts->next->prev = ts->prev;
    if (tls_state == ts) tls_state = NULL;
    PyMem_RawFree(ts->stack);
    Py_XDECREF(ts->task_ref);
    PyMem_RawFree(ts);
}

static int
stack_reserve(ThreadState *ts, size_t n)
{
    return grow((void **)&ts->stack, &ts->cap, n, sizeof(Entry));
}

static ThreadState *
thread_state_slow(CoreObject *c, PyThreadState *tstate)
{
    ThreadState *ts = NULL;
    PyObject *dict = PyThreadState_GetDict();
    if (!dict) { PyErr_SetString(PyExc_RuntimeError, "no thread state dict"); return NULL; }
    PyObject *cap = PyDict_GetItemWithError(dict, thread_key);   /* borrowed */
    if (cap) {
        ts = (ThreadState *)PyCapsule_GetPointer(cap, "flowtrace.thread");
        if (!ts) return NULL;
    } else {
        if (PyErr_Occurred()) return NULL;
        ts = PyMem_RawCalloc(1, sizeof(ThreadState));
        if (!ts) { PyErr_NoMemory(); return NULL; }
        cap = PyCapsule_New(ts, "flowtrace.thread", thread_capsule_destructor);
        if (!cap) { PyMem_RawFree(ts); return NULL; }
        ts->next = all_threads.next;
        ts->prev = &all_threads;
        all_threads.next->prev = ts;
        all_threads.next = ts;
        int r = PyDict_SetItem(dict, thread_key, cap);
        Py_DECREF(cap);   /* on failure this runs the destructor, which unlinks ts */
        if (r < 0) return NULL;
    }
    ts->tstate = tstate;
    if (ts->gen != c->gen) {
        /* First event of this thread in this session: its seeded calls, or a THRD id. */
        unsigned long ident = PyThread_get_thread_ident();
        ts->depth = 0;
        ts->exc_ptr = NULL;
        ts->unwound = NULL;
        Seed *seed = NULL;
        for (size_t i = 0; i < c->nseeds; i++)
            if (c->seeds[i].ident == ident && c->seeds[i].stack) { seed = &c->seeds[i]; break; }
        if (seed) {
            if (stack_reserve(ts, seed->depth) < 0) return NULL;
            memcpy(ts->stack, seed->stack, seed->depth * sizeof(Entry));
            ts->depth = seed->depth;
            ts->thr = seed->thr;
            PyMem_RawFree(seed->stack);
            seed->stack = NULL;
            seed->depth = 0;
        } else {
            PyObject *r = PyObject_CallOneArg(c->on_thread, Py_None);
            if (!r) return NULL;
            unsigned long thr = PyLong_AsUnsignedLong(r);
            Py_DECREF(r);
            if (thr == (unsigned long)-1 && PyErr_Occurred()) return NULL;
            ts->thr = (uint32_t)thr;
        }
        ts->gen = c->gen;
    }
    tls_state = ts;
    return ts;
}

/* The hot-path lookup: one thread-local load and two compares. */
static inline ThreadState *
thread_state(CoreObject *c, PyThreadState *tstate)
{
    ThreadState *ts = tls_state;
    if (ts && ts->gen == c->gen && ts->tstate == tstate) return ts;
    return thread_state_slow(c, tstate);
}

/* Backpressure (issue 3: buffers are bounded and flushed, never dropped). A program that
 * makes calls nonstop can out-run the flusher thread, which needs the GIL for the drain and
 * the writer; the rows would then pile up without bound. Past `overflow_rows` pending rows,
 * a call start or resume calls the session's overflow hook on the recording thread itself,
 * which drains and writes synchronously: the program waits for its own trace. Called last in
 * a callback, when its row and stack entry are complete (the hook runs Python: a drain may
 * swap the buffers). The thread's own events are not delivered while a monitoring callback
 * runs, so the flush is not traced; `in_overflow` guards against re-entry anyway. */
static PyObject *
overflow_slow(CoreObject *c, ThreadState *ts)
{
    if (!c->overflow || ts->in_overflow) Py_RETURN_NONE;
    PyObject *hook = Py_NewRef(c->overflow);   /* release() may drop c->overflow meanwhile */
    uint64_t batch = c->batch;
    ts->in_overflow = 1;
    PyObject *r = PyObject_CallNoArgs(hook);
    ts->in_overflow = 0;
    Py_DECREF(hook);
    /* A hook during which nothing was drained (writer closed, this thread already inside a
     * flush) must not be called again at every event: the next test is one cap further. (A
     * drain, by this thread or another, has set overflow_at back to the cap.) */
    if (c->batch == batch) c->overflow_at = c->ncalls + c->nexits + c->nmarks + c->overflow_rows;
    if (!r) return callback_failed(c);
    Py_DECREF(r);
    Py_RETURN_NONE;
}

/* The callbacks' `return None`, with the (one compare) backpressure test. */
static inline PyObject *
done_or_overflow(CoreObject *c, ThreadState *ts)
{
    if (c->ncalls + c->nexits + c->nmarks < c->overflow_at) Py_RETURN_NONE;
    return overflow_slow(c, ts);
}

static inline int
push(ThreadState *ts, void *frame, uint32_t call, uint32_t code_idx, uint32_t task)
{
    if (ts->depth == ts->cap && stack_reserve(ts, ts->depth + 1) < 0) return -1;
    Entry *e = &ts->stack[ts->depth++];
    e->frame = frame; e->call = call; e->code_idx = code_idx; e->task = task;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Code objects: the filter decision, once per code object and session.                  */

/* co_extra holds (generation << 40) | (code index + 1) << 1 | excluded-bit; zero = unseen. */
#define EXTRA_GEN(v) ((uint64_t)(v) >> 40)
#define GEN_BITS(g) ((uint64_t)(g) & 0xFFFFFF)
#define CODE_EXCLUDED (-1)
#define CODE_ERROR (-2)

static int
fill_code_info(CodeInfo *ci, PyCodeObject *co)
{
    /* localsplus order is: positional, keyword-only, *args, **kwargs; the text shows
     * positional, *args, keyword-only, **kwargs (reprs.args_text's order). */
    int flags = co->co_flags;
    int npos = co->co_argcount, nkw = co->co_kwonlyargcount;
    int nvar = (flags & CO_VARARGS) ? 1 : 0, nkwd = (flags & CO_VARKEYWORDS) ? 1 : 0;
    int total = npos + nkw + nvar + nkwd;
    PyObject *varnames = PyCode_GetVarnames(co);
    if (!varnames) return -1;
    if (PyTuple_GET_SIZE(varnames) < total) total = npos = nkw = nvar = nkwd = 0;
    PyObject *names = PyTuple_New(total);
    ci->order = PyMem_RawMalloc(sizeof(uint16_t) * (total + 1));
    ci->star = PyMem_RawMalloc(total + 1);
    if (!names || !ci->order || !ci->star) {
        Py_XDECREF(names); Py_DECREF(varnames);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return -1;
    }
    int shown_n = 0;
    for (int i = 0; i < total; i++) {
        int src, kind = 0;
        if (i < npos) src = i;
        else if (i == npos && nvar) { src = npos + nkw; kind = 1; }
        else if (i < npos + nvar + nkw) src = i - nvar;
        else { src = npos + nkw + nvar; kind = 2; }
        PyObject *name = PyTuple_GET_ITEM(varnames, src);
        /* A parameter named ".0" (the iterator a generator expression receives) is made by
         * the compiler, not written by the user: it is not shown as an argument. */
        if (PyUnicode_Check(name) && PyUnicode_GET_LENGTH(name) && PyUnicode_READ_CHAR(name, 0) == '.')
            continue;
        PyObject *shown = kind == 1 ? PyUnicode_FromFormat("*%U", name)
                        : kind == 2 ? PyUnicode_FromFormat("**%U", name) : Py_NewRef(name);
        if (!shown) { Py_DECREF(varnames); Py_DECREF(names); return -1; }
        PyTuple_SET_ITEM(names, shown_n, shown);
        ci->order[shown_n] = (uint16_t)src;
        ci->star[shown_n] = (uint8_t)kind;
        shown_n++;
    }
    Py_DECREF(varnames);
    if (shown_n < total && _PyTuple_Resize(&names, shown_n) < 0) return -1;
    ci->names = names;
    ci->nshown = (uint16_t)shown_n;
    ci->nargs = shown_n ? (uint16_t)total : 0;   /* nothing shown: nothing captured */
    ci->genlike = (flags & (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR | CO_ITERABLE_COROUTINE)) != 0;
    ci->coro = (flags & (CO_COROUTINE | CO_ASYNC_GENERATOR)) != 0;
    return 0;
}

/* The small-int table of a one-parameter function (ci->small, else -1): shared by every
 * function whose parameter has the same name (f(n) and g(n) both write "n=5"). A handful of
 * names in practice; bounded. Never fails: without a table the hot memo serves. */
static void
small_args_for(CoreObject *c, CodeInfo *ci)
{
    ci->small = -1;
    if (ci->nargs != 1 || ci->nshown != 1 || ci->star[0] != 0) return;
    PyObject *name = PyTuple_GET_ITEM(ci->names, 0);
    if (!PyUnicode_CheckExact(name)) return;
    for (size_t i = 0; i < c->nsmall_args; i++) {
        if (c->small_names[i] == name || PyUnicode_Compare(c->small_names[i], name) == 0) {
            ci->small = (int32_t)i;
            return;
        }
    }
    if (c->nsmall_args >= 4096) return;
    if (c->nsmall_args == c->capsmall_args) {
        size_t ncap = c->capsmall_args ? c->capsmall_args * 2 : 16;
        SmallTab *t = PyMem_RawRealloc(c->small_args, ncap * sizeof(SmallTab));
        if (!t) return;
        c->small_args = t;
        PyObject **n = PyMem_RawRealloc(c->small_names, ncap * sizeof(PyObject *));
        if (!n) return;   /* (small_args merely larger than needed) */
        c->small_names = n;
        c->capsmall_args = ncap;
    }
    c->small_args[c->nsmall_args].tab = NULL;
    c->small_args[c->nsmall_args].n = 0;
    c->small_names[c->nsmall_args] = Py_NewRef(name);
    ci->small = (int32_t)c->nsmall_args++;
}

/* First sight of a code object in this session: ask the wrapper (filters.CodeFilter). */
static Py_ssize_t
code_slow(CoreObject *c, PyCodeObject *co, PyObject *globals)
{
    /* the module the code runs in (filters match module names): globals' __name__ */
    PyObject *module = NULL;
    if (globals && PyDict_Check(globals)) {
        module = PyDict_GetItemWithError(globals, str_name);
        if (!module && PyErr_Occurred()) return CODE_ERROR;
    }
    PyObject *r = PyObject_CallFunctionObjArgs(c->on_code, (PyObject *)co, module ? module : Py_None, NULL);
    if (!r) return CODE_ERROR;
    long func = PyLong_AsLong(r);
    Py_DECREF(r);
    if (func == -1 && PyErr_Occurred()) return CODE_ERROR;
    uintptr_t v;
    Py_ssize_t idx = CODE_EXCLUDED;
    if (func == 0) {
        v = (uintptr_t)((GEN_BITS(c->gen) << 40) | 1);
    } else {
        if (grow((void **)&c->codes, &c->capcodes, c->ncodes + 1, sizeof(CodeInfo)) < 0) return CODE_ERROR;
        CodeInfo *ci = &c->codes[c->ncodes];
        memset(ci, 0, sizeof(*ci));
        if (fill_code_info(ci, co) < 0) return CODE_ERROR;
        small_args_for(c, ci);
        ci->func = func > 0 ? (uint32_t)func : 0;
        ci->hook = func < 0;
        idx = (Py_ssize_t)c->ncodes++;
        v = (uintptr_t)((GEN_BITS(c->gen) << 40) | ((uint64_t)(idx + 1) << 1));
    }
    if (PyUnstable_Code_SetExtra((PyObject *)co, extra_index, (void *)v) < 0) return CODE_ERROR;
    return idx;
}

/* The code's index (>= 0), CODE_EXCLUDED, or CODE_ERROR. One array read when known. */
static inline Py_ssize_t
code_index(CoreObject *c, PyCodeObject *co, _PyInterpreterFrame *frame)
{
    void *p = NULL;
    /* PyUnstable_Code_GetExtra only reads an array; it cannot fail for a valid index. */
    PyUnstable_Code_GetExtra((PyObject *)co, extra_index, &p);
    uintptr_t v = (uintptr_t)p;
    if (v && EXTRA_GEN(v) == GEN_BITS(c->gen))
        return (v & 1) ? CODE_EXCLUDED : (Py_ssize_t)((v >> 1) & 0x7FFFFFFFFFULL) - 1;
    return code_slow(c, co, (frame && FRAME_CODE(frame) == (PyObject *)co) ? frame->f_globals : NULL);
}

/* ------------------------------------------------------------------------------------ */
/* ------------------------------------------------------------------------------------ */
/* Value capture (at event time). The capture goes to a caller-owned Slot first and is
 * appended to the session buffers only once no more Python code can run: a hook that runs
 * Python may release the GIL, and another thread (or a drain) may then move the buffers. */

static void
slots_clear(Slot *s, size_t n)
{
    for (size_t i = 0; i < n; i++) Py_CLEAR(s[i].o);
}

/* object.__repr__ names the type "module.qualname" (tp_name for builtins) and the
 * placeholder's label (c.py type_label) reads the same -- unless __module__ is not a str or
 * is "builtins" on a heap type; those rare types take the hook. */
static PyObject *str_module_key, *str_builtins;
static int
default_repr_label_ok(PyTypeObject *tp)
{
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) return 1;
    PyObject *mod = PyDict_GetItemWithError(tp->tp_dict, str_module_key);   /* borrowed */
    if (!mod) { PyErr_Clear(); return 0; }
    return PyUnicode_CheckExact(mod) && PyUnicode_Compare(mod, str_builtins) != 0;
}

static int
capture_value(CoreObject *c, Slot *s, PyObject *v)
{
    s->o = NULL;
    if (v == NULL) { s->tag = V_UNBOUND; return 0; }
    PyTypeObject *tp = Py_TYPE(v);
    if (v == Py_None) { s->tag = V_NONE; return 0; }
    if (v == Py_True) { s->tag = V_TRUE; return 0; }
    if (v == Py_False) { s->tag = V_FALSE; return 0; }
    if (tp == &PyLong_Type) {
        if (PyUnstable_Long_IsCompact((PyLongObject *)v)) {   /* one digit: no call, no overflow test */
            s->tag = V_INT; s->u.i = (int64_t)PyUnstable_Long_CompactValue((PyLongObject *)v);
            return 0;
        }
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (!overflow) {
            if (x == -1 && PyErr_Occurred()) return -1;
            s->tag = V_INT; s->u.i = x;
            return 0;
        }
        s->tag = V_OBJ; s->o = Py_NewRef(v);   /* immutable: rendered at drain */
        return 0;
    }
    if (tp == &PyFloat_Type) { s->tag = V_FLOAT; s->u.d = PyFloat_AS_DOUBLE(v); return 0; }
    if (tp == &PyUnicode_Type || tp == &PyBytes_Type || tp == &PyComplex_Type
            || v == Py_Ellipsis || v == Py_NotImplemented) {
        /* immutable builtins: rendering them at drain gives the text they have now, and
         * holding them until then is invisible to the program (no __del__, no weakref) */
        s->tag = V_OBJ; s->o = Py_NewRef(v);
        return 0;
    }
    if (c->args_mode == 1 && !(tp == &PyList_Type || tp == &PyTuple_Type || tp == &PyDict_Type
            || tp == &PySet_Type || tp == &PyFrozenSet_Type || tp == &PyByteArray_Type)) {
        /* safe mode, any other object: its type and address only (the placeholder text is
         * made from the type at drain; the object itself is not referenced) */
        s->tag = V_OPAQUE;
        s->o = Py_NewRef((PyObject *)tp);
        s->u.addr = (uintptr_t)v;
        return 0;
    }
    if (c->args_mode == 2 && tp->tp_repr == PyBaseObject_Type.tp_repr && default_repr_label_ok(tp)) {
        /* full mode, but the type keeps object.__repr__: repr(v) is "<module.Qualname object
         * at 0x...>", the placeholder's text, so it is made at drain from type + address
         * like V_OPAQUE (no Python call now) */
        s->tag = V_DEFREPR;
        s->o = Py_NewRef((PyObject *)tp);
        s->u.addr = (uintptr_t)v;
        return 0;
    }
    /* builtin containers (they can mutate) and, in full mode, other objects: the reference
     * rules make the text now (bounded; in safe mode they never call a user __repr__) */
    PyObject *t = PyObject_CallOneArg(c->repr_now, v);
    if (!t) return -1;
    if (!PyUnicode_Check(t)) { Py_DECREF(t); PyErr_SetString(PyExc_TypeError, "repr hook returned a non-str"); return -1; }
    s->tag = V_TEXT; s->o = t;
    return 0;
}

static inline Slot *
slot_room(CoreObject *c, size_t n)
{
    if (c->nslots + n > c->capslots && grow((void **)&c->slots, &c->capslots, c->nslots + n, sizeof(Slot)) < 0)
        return NULL;
    return &c->slots[c->nslots];
}

static inline int memo_key_slots(uint8_t kind, uint32_t code_idx, const Slot *slots, uint32_t n, Memo *key);
static inline int memo_same(const Memo *a, const Memo *b);
#ifndef HOT_SIZE
#define HOT_SIZE 4096
#endif

/* Append captured slots and a string entry for them; returns the string id (0 on failure,
 * with the slots released). No Python code runs in here. */
static uint32_t
commit_slots(CoreObject *c, Slot *local, uint32_t n, uint8_t kind, uint32_t code_idx)
{
    Slot *dst = slot_room(c, n);
    uint32_t sid = 0;
    StrEntry *e = dst ? str_entry(c, &sid) : NULL;
    if (!e) { slots_clear(local, n); return 0; }
    memcpy(dst, local, n * sizeof(Slot));
    e->kind = kind; e->slot_off = c->nslots; e->nslots = n; e->code_idx = code_idx;
    c->nslots += n;
    return sid;
}

/* commit_slots, but values already captured in this batch -- ints, floats, None, bools and
 * (type, address) of opaque objects -- reuse that entry's id: fib(3) called a thousand times
 * stores one entry, and the drain renders it once. Provisional ids are per batch, hence the
 * batch check. */
/* Small non-negative ints -- indexes, counters, sizes -- are the commonest values there are,
 * and a program walks through thousands of them (f(i) for i in range(10000), on 4 threads):
 * more than the direct-mapped hot memo holds, so most would miss it and each be stored and
 * rendered again. A one-int argument list (per function) and a one-int result get a table
 * indexed by the value instead: one load, no hashing, no collisions. Tables grow (doubling)
 * to the largest value seen below SMALL_MAX, within SMALL_BUDGET bytes for the session. */
#define SMALL_MAX ((uint64_t)1 << 15)
#define SMALL_BUDGET ((size_t)16 << 20)
static int
small_grow(CoreObject *c, SmallTab *st, uint64_t v)
{
    uint32_t n = st->n ? st->n : 64;
    while (n <= v) n *= 2;
    size_t more = (size_t)(n - st->n) * sizeof(SmallEntry);
    if (c->small_bytes + more > SMALL_BUDGET) return -1;
    SmallEntry *t = PyMem_RawRealloc(st->tab, n * sizeof(SmallEntry));
    if (!t) return -1;   /* (no error set: the hot memo takes the value instead) */
    memset(t + st->n, 0, more);
    st->tab = t; st->n = n;
    c->small_bytes += more;
    return 0;
}

/* commit_memo's small-int lookup for a value not captured yet (the common hit, without a
 * Slot, the capture's type tests or a call): its provisional id, or 0 to take the full path. */
static inline uint32_t
small_hit(CoreObject *c, const SmallTab *st, PyObject *v)
{
    if (!v || Py_TYPE(v) != &PyLong_Type || !PyUnstable_Long_IsCompact((PyLongObject *)v)) return 0;
    size_t x = (size_t)PyUnstable_Long_CompactValue((PyLongObject *)v);   /* (negative: huge) */
    if (x >= st->n) return 0;
    const SmallEntry *e = &st->tab[x];
    return e->batch == (uint32_t)c->batch ? e->sid : 0;
}

static inline uint32_t
commit_memo(CoreObject *c, Slot *local, uint32_t n, uint8_t kind, uint32_t code_idx)
{
    Memo key, *m;
    if (n == 1 && local[0].tag == V_INT && (uint64_t)local[0].u.i < SMALL_MAX) {
        int32_t k = kind == S_ARGS ? c->codes[code_idx].small : -1;
        SmallTab *st = kind == S_ARGS ? (k >= 0 ? &c->small_args[k] : NULL) : &c->small_vals;
        uint64_t v = (uint64_t)local[0].u.i;
        if (st && (v < st->n || small_grow(c, st, v) == 0)) {
            SmallEntry *e = &st->tab[v];
            if (e->batch == (uint32_t)c->batch && e->sid) return e->sid;   /* (an int holds no reference) */
            uint32_t sid = commit_slots(c, local, 1, kind, code_idx);
            if (sid) { e->sid = sid; e->batch = (uint32_t)c->batch; }
            return sid;
        }
    }
    if (!c->hot || !memo_key_slots(kind, code_idx, local, n, &key)) return commit_slots(c, local, n, kind, code_idx);
    m = &c->hot[HSLOT(key.hash) & (HOT_SIZE - 1)];
    if (m->batch == (uint32_t)c->batch && memo_same(m, &key)) {
        slots_clear(local, n);   /* the entry it reuses holds its own type references */
        return m->sid;
    }
    uint32_t sid = commit_slots(c, local, n, kind, code_idx);
    if (sid) {
        /* field by field, n slots only: copying the whole stack key read it back in 16-byte
         * loads over 8-byte stores (a store-forwarding stall) and copied unused slots */
        m->hash = key.hash; m->head = key.head; m->sid = sid; m->batch = (uint32_t)c->batch;
        for (uint32_t k = 0; k < n; k++) { m->vals[k] = key.vals[k]; m->types[k] = key.types[k]; }
    }
    return sid;
}

/* String id for a single value (result, yielded value); 0 when capture is off. */
static uint32_t
value_id(CoreObject *c, PyObject *v)
{
    if (!c->args_mode) return 0;
    uint32_t hit = small_hit(c, &c->small_vals, v);
    if (hit) return hit;
    Slot s;
    if (capture_value(c, &s, v) < 0) return 0;
    return commit_memo(c, &s, 1, S_VALUE, 0);
}

/* String id for the arguments of the call whose frame is running now. */
static uint32_t
args_id(CoreObject *c, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx)
{
    uint32_t n = c->codes[idx].nargs;
    if (!frame || FRAME_CODE(frame) != (PyObject *)co) return 0;
    if (!n) {   /* reprs.args_text gives "": one entry per batch for all such calls */
        if (c->empty_batch != c->batch || !c->empty_sid) {
            c->empty_sid = add_text(c, Py_NewRef(str_empty));
            c->empty_batch = c->batch;
        }
        return c->empty_sid;
    }
    const char *kinds = PyBytes_AS_STRING(co->co_localspluskinds);
    if (n == 1) {   /* f(i): the small-int table first, before anything is captured */
        PyObject *v = frame->localsplus[0];
        if (v && (kinds[0] & CO_FAST_CELL) && PyCell_Check(v)) v = PyCell_GET(v);
        int32_t k = c->codes[idx].small;
        uint32_t hit = k >= 0 ? small_hit(c, &c->small_args[k], v) : 0;
        if (hit) return hit;
    }
    Slot small[8];
    Slot *local = n <= 8 ? small : PyMem_RawMalloc(n * sizeof(Slot));
    if (!local) { PyErr_NoMemory(); return 0; }
    uint32_t sid = 0;
    for (uint32_t i = 0; i < n; i++) {
        PyObject *v = frame->localsplus[i];
        /* an argument captured by an inner function is already a cell at PY_START */
        if (v && (kinds[i] & CO_FAST_CELL) && PyCell_Check(v)) v = PyCell_GET(v);
        if (capture_value(c, &local[i], v) < 0) { slots_clear(local, i); goto done; }
    }
    /* (c->codes may have moved while a hook ran; idx is still valid) */
    sid = commit_memo(c, local, n, S_ARGS, (uint32_t)idx);
done:
    if (local != small) PyMem_RawFree(local);
    return sid;
}

/* Provisional string id for an exception's text, made now (exceptions mutate and die).
 * One text per exception object while it travels through the frames of one thread: the
 * cache is dropped at every new raise (a dead exception's address may be reused) and at
 * every drain (provisional ids are per batch). */
/* reprs.exception_text without a Python call, for the common case: a builtin exception
 * type (static, in builtins: its name is tp_name) whose __str__ is one of the builtin ones
 * reprs._BUILTIN_STR lists and whose args are all exact str/int/float/bool/None/bytes -- then
 * both modes use str(exc), which runs no user code. NULL (no error set) otherwise: the
 * wrapper's hook does it, with the reference's rules for every other case. */
#define N_BUILTIN_STR 11
static reprfunc builtin_str[N_BUILTIN_STR];

/* "Name: " for a static builtin exception type (immortal: the address is a stable key) */
#define EXC_PREFIXES 32
static struct { PyTypeObject *tp; PyObject *head; } exc_prefixes[EXC_PREFIXES];
static PyObject *
exc_prefix(PyTypeObject *tp)
{
    size_t i = (((uintptr_t)tp) >> 4) & (EXC_PREFIXES - 1);
    if (exc_prefixes[i].tp == tp) return exc_prefixes[i].head;
    PyObject *head = PyUnicode_FromFormat("%s: ", tp->tp_name);
    if (!head) return NULL;
    Py_XSETREF(exc_prefixes[i].head, head);
    exc_prefixes[i].tp = tp;
    return head;
}

static PyObject *
exc_text_fast(PyObject *exc)
{
    PyTypeObject *tp = Py_TYPE(exc);
    if ((tp->tp_flags & Py_TPFLAGS_HEAPTYPE) || !PyExceptionInstance_Check(exc) || strchr(tp->tp_name, '.'))
        return NULL;
    int known = 0;
    for (int i = 0; i < N_BUILTIN_STR; i++) known |= tp->tp_str == builtin_str[i];
    if (!known) return NULL;
    PyObject *args = ((PyBaseExceptionObject *)exc)->args;
    if (!args || !PyTuple_CheckExact(args)) return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
        PyTypeObject *at = Py_TYPE(PyTuple_GET_ITEM(args, i));
        if (!(at == &PyUnicode_Type || at == &PyLong_Type || at == &PyFloat_Type || at == &PyBool_Type
              || at == Py_TYPE(Py_None) || at == &PyBytes_Type))
            return NULL;
    }
    PyObject *msg = PyObject_Str(exc);
    if (!msg) { PyErr_Clear(); return NULL; }   /* the hook reports it as the reference does */
    if (!PyUnicode_CheckExact(msg)) { Py_DECREF(msg); return NULL; }
    msg = cut_text(msg, MAX_TEXT);
    if (!msg) { PyErr_Clear(); return NULL; }
    /* "Name: msg" by concatenation with the type's cached "Name: " (PyUnicode_FromFormat
     * parsed the format every time: most of this function's cost) */
    PyObject *head = exc_prefix(tp), *r;
    if (!head) r = NULL;
    else if (!PyUnicode_GET_LENGTH(msg)) r = PyUnicode_Substring(head, 0, PyUnicode_GET_LENGTH(head) - 2);
    else r = PyUnicode_Concat(head, msg);
    Py_DECREF(msg);
    if (!r) PyErr_Clear();
    return r;
}

static uint32_t
exc_id(CoreObject *c, ThreadState *ts, PyObject *exc)
{
    if (exc == ts->exc_ptr && ts->exc_batch == c->batch && ts->exc_sid) return ts->exc_sid;
    PyObject *t = exc_text_fast(exc);
    if (!t) t = PyObject_CallOneArg(c->exc_text, exc);
    if (!t) return 0;
    uint32_t sid = add_text(c, t);
    ts->exc_ptr = exc;
    ts->exc_sid = sid;
    ts->exc_batch = c->batch;
    return sid;
}

/* ------------------------------------------------------------------------------------ */
/* Stack matching                                                                         */

/* Index of this frame's entry (normally the top), or -1 for a call that started before
 * recording (its end is ignored). Entries above it lost their end event, which a correct
 * interpreter never does; they end as unfinished so that the tree still balances. */
static inline Py_ssize_t
pop_target(CoreObject *c, ThreadState *ts, void *frame, int64_t t)
{
    if (ts->depth && ts->stack[ts->depth - 1].frame == frame) return (Py_ssize_t)ts->depth - 1;
    for (Py_ssize_t i = (Py_ssize_t)ts->depth - 2; i >= 0; i--) {
        if (ts->stack[i].frame == frame) {
            while (ts->depth > (size_t)i + 1) add_exit(c, ts->stack[--ts->depth].call, t, END_UNFINISHED, 0);
            return i;
        }
    }
    return -1;
}

/* ---- suspended generators map ---- */

static inline size_t
ptr_hash(void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33;
    return (size_t)x;
}

static int
susp_put(CoreObject *c, void *frame, uint32_t call, uint32_t code_idx, uint32_t task)
{
    if ((c->nsusp + 1) * 2 > c->capsusp) {
        size_t ncap = c->capsusp ? c->capsusp * 2 : 64;
        Susp *n = PyMem_RawCalloc(ncap, sizeof(Susp));
        if (!n) { PyErr_NoMemory(); return -1; }
        for (size_t i = 0; i < c->capsusp; i++) {
            if (!c->susp[i].frame) continue;
            size_t j = ptr_hash(c->susp[i].frame) & (ncap - 1);
            while (n[j].frame) j = (j + 1) & (ncap - 1);
            n[j] = c->susp[i];
        }
        PyMem_RawFree(c->susp);
        c->susp = n;
        c->capsusp = ncap;
    }
    size_t mask = c->capsusp - 1, j = ptr_hash(frame) & mask;
    while (c->susp[j].frame && c->susp[j].frame != frame) j = (j + 1) & mask;
    if (!c->susp[j].frame) c->nsusp++;
    else if (c->susp[j].call != call) {
        /* the address belonged to a generator that vanished without an event (3.13.0 closes
         * suspended generators silently, gh-140373): it ends as unfinished at stop */
        if (grow((void **)&c->lost, &c->caplost, c->nlost + 1, sizeof(uint32_t)) < 0) return -1;
        c->lost[c->nlost++] = c->susp[j].call;
    }
    c->susp[j].frame = frame; c->susp[j].call = call; c->susp[j].code_idx = code_idx; c->susp[j].task = task;
    return 0;
}

/* Remove and return the entry for frame (0 if none). */
static int
susp_take(CoreObject *c, void *frame, Susp *out)
{
    if (!c->nsusp) return 0;
    size_t mask = c->capsusp - 1, j = ptr_hash(frame) & mask;
    while (c->susp[j].frame) {
        if (c->susp[j].frame == frame) {
            *out = c->susp[j];
            /* backward-shift deletion keeps probe chains intact without tombstones */
            size_t i = j;
            for (;;) {
                c->susp[i].frame = NULL;
                size_t k = i;
                for (;;) {
                    k = (k + 1) & mask;
                    if (!c->susp[k].frame) { c->nsusp--; return 1; }
                    size_t h = ptr_hash(c->susp[k].frame) & mask;
                    if (i <= k ? (i < h && h <= k) : (i < h || h <= k)) continue;
                    break;
                }
                c->susp[i] = c->susp[k];
                i = k;
            }
        }
        j = (j + 1) & mask;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* The callbacks (semantics: flowtrace/recorder/python.py, the reference)                */

#define CODE_ARG(args) ((PyCodeObject *)(args)[0])

/* A coroutine / async generator call starting at `row`: ask the wrapper for the asyncio task
 * running now (python.py's _task_id). Called before the row is written; returns the task
 * id (0: none) and, for a task seen for the first time, its TASK entry (new reference) whose
 * "root" is filled in by finish_task once the call has its id. */
/* The hook's first steps, from C (python.py's _task_id: no asyncio module or no running
 * loop -> no task, else asyncio.current_task()). 1 with *task a new reference (NULL: no
 * task), or 0 when anything failed: then the hook answers, with its own error handling. */
static PyObject *str_asyncio, *str_events, *str_get_running_loop, *str_current_task;
static int
current_task_fast(PyObject **task)
{
    *task = NULL;
    PyObject *asyncio = PyImport_GetModule(str_asyncio);
    if (!asyncio) return PyErr_Occurred() ? (PyErr_Clear(), 0) : 1;
    PyObject *events = PyObject_GetAttr(asyncio, str_events);
    PyObject *loop = events ? PyObject_CallMethodNoArgs(events, str_get_running_loop) : NULL;
    Py_XDECREF(events);
    PyObject *t = NULL;
    if (loop && loop != Py_None) t = PyObject_CallMethodNoArgs(asyncio, str_current_task);
    Py_DECREF(asyncio);
    if (!loop || (loop != Py_None && !t)) { Py_XDECREF(loop); PyErr_Clear(); return 0; }
    Py_DECREF(loop);
    if (t == Py_None) Py_CLEAR(t);
    *task = t;
    return 1;
}

/* The task's id: from this thread's one-entry cache (the task that ran the previous
 * coroutine here, usually the same one) or from the hook, which also registers new tasks. */
static uint32_t
task_lookup(CoreObject *c, ThreadState *ts, uint32_t parent, uint32_t thr, PyObject **entry)
{
    *entry = NULL;
    PyObject *task = NULL;
    int fast = current_task_fast(&task);
    if (fast && !task) return 0;
    if (fast && ts->task_ref && ts->task_gen == c->gen) {
#if PY_VERSION_HEX >= 0x030D0000
        PyObject *cached = NULL;
        if (PyWeakref_GetRef(ts->task_ref, &cached) < 0) PyErr_Clear();
        Py_XDECREF(cached);   /* only its identity is compared; task holds the object */
#else
        PyObject *cached = PyWeakref_GetObject(ts->task_ref);   /* borrowed; None if dead */
#endif
        if (cached == task) { Py_DECREF(task); return ts->task_id; }
    }
    PyObject *r = PyObject_CallFunction(c->task_hook, "II", (unsigned)parent, (unsigned)thr);
    if (!r) { Py_XDECREF(task); soft_fail(c); return 0; }
    uint32_t tid = 0;
    if (PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 2) {
        tid = (uint32_t)PyLong_AsUnsignedLong(PyTuple_GET_ITEM(r, 0));
        if (PyErr_Occurred()) { soft_fail(c); tid = 0; }
        else if (PyTuple_GET_ITEM(r, 1) != Py_None) *entry = Py_NewRef(PyTuple_GET_ITEM(r, 1));
    }
    Py_DECREF(r);
    if (task && tid) {   /* remember it (a task type without weakrefs is simply not cached) */
        PyObject *ref = PyWeakref_NewRef(task, NULL);
        if (ref) { Py_XSETREF(ts->task_ref, ref); ts->task_id = tid; ts->task_gen = c->gen; }
        else PyErr_Clear();
    }
    Py_XDECREF(task);
    return tid;
}

/* No Python code runs here (dict and list operations on exact types with int/str keys), so
 * the TASK entry is complete before any drain can see it. */
static void
finish_task(CoreObject *c, PyObject *entry, uint32_t cid)
{
    if (!entry) return;
    PyObject *root = PyLong_FromUnsignedLong(cid);
    if (!root || PyDict_SetItem(entry, str_root, root) < 0 || PyList_Append(c->tasks_out, entry) < 0) soft_fail(c);
    Py_XDECREF(root);
    Py_DECREF(entry);
}

static PyObject *
cb_py_start(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    if (!c->active || nargs < 1) Py_RETURN_NONE;
    PyCodeObject *co = CODE_ARG(args);
    PyThreadState *tstate = PyThreadState_Get();
    _PyInterpreterFrame *frame = CURRENT_FRAME(tstate);
    Py_ssize_t idx = code_index(c, co, frame);
    if (idx == CODE_EXCLUDED) return Py_NewRef(DISABLE);   /* never called again for this code */
    if (idx < 0) return callback_failed(c);
    if (c->codes[idx].hook) return Py_NewRef(DISABLE);
    ThreadState *ts = thread_state(c, tstate);
    if (!ts) return callback_failed(c);
    int64_t t = stamp();
    uint32_t parent = 0, task = 0;
    if (ts->depth) { parent = ts->stack[ts->depth - 1].call; task = ts->stack[ts->depth - 1].task; }
    PyObject *entry = NULL;
    if (c->codes[idx].coro) {
        uint32_t own = task_lookup(c, ts, parent, ts->thr, &entry);
        if (own) task = own;   /* else inside its parent's task (python.py's drain rule) */
    }
    /* The arguments after the task hook: it runs Python, which may let a drain run and
     * start a new batch, and the provisional string id must belong to the row's batch. (No
     * code of this frame has run yet, so the values are the call's arguments.) */
    uint32_t a = 0;
    if (c->args_mode) {
        a = args_id(c, frame, co, idx);
        if (!a) soft_fail(c);
    }
    uint32_t id = add_call(c, t, parent, c->codes[idx].func, ts->thr, a, task, 0);
    if (!id) { Py_XDECREF(entry); return callback_failed(c); }
    finish_task(c, entry, id);
    if (push(ts, frame, id, (uint32_t)idx, task) < 0) return callback_failed(c);
    return done_or_overflow(c, ts);
}

static PyObject *
cb_py_return(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    if (!c->active || nargs < 3) Py_RETURN_NONE;
    PyCodeObject *co = CODE_ARG(args);
    PyThreadState *tstate = PyThreadState_Get();
    _PyInterpreterFrame *frame = CURRENT_FRAME(tstate);
    Py_ssize_t idx = code_index(c, co, frame);
    if (idx == CODE_EXCLUDED) return Py_NewRef(DISABLE);
    if (idx < 0) return callback_failed(c);
    ThreadState *ts = thread_state(c, tstate);
    if (!ts) return callback_failed(c);
    if (c->codes[idx].hook) {
        /* BaseEventLoop.create_task returned a task: its creator is the recorded call on
         * top of this thread's stack (python.py: creators[id(task)]) */
        uint32_t top = ts->depth ? ts->stack[ts->depth - 1].call : 0;
        PyObject *r = PyObject_CallFunction(c->task_created, "OI", args[2], (unsigned)top);
        if (!r) return callback_failed(c);
        Py_DECREF(r);
        Py_RETURN_NONE;
    }
    int64_t t = stamp();
    Py_ssize_t i = pop_target(c, ts, frame, t);
    if (i < 0) Py_RETURN_NONE;
    uint32_t v = 0;
    if (c->args_mode) { v = value_id(c, args[2]); if (!v) soft_fail(c); }
    uint32_t call = ts->stack[i].call;
    ts->depth = (size_t)i;
    if (add_exit(c, call, t, END_RETURN, v) < 0) return callback_failed(c);
    Py_RETURN_NONE;
}

static PyObject *
cb_py_yield(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    if (!c->active || nargs < 3) Py_RETURN_NONE;
    PyCodeObject *co = CODE_ARG(args);
    PyThreadState *tstate = PyThreadState_Get();
    _PyInterpreterFrame *frame = CURRENT_FRAME(tstate);
    Py_ssize_t idx = code_index(c, co, frame);
    if (idx == CODE_EXCLUDED) return Py_NewRef(DISABLE);
    if (idx < 0) return callback_failed(c);
    if (c->codes[idx].hook) return Py_NewRef(DISABLE);
    ThreadState *ts = thread_state(c, tstate);
    if (!ts) return callback_failed(c);
    int64_t t = stamp();
    Py_ssize_t i = pop_target(c, ts, frame, t);
    if (i < 0) Py_RETURN_NONE;   /* a generator running since before recording: ignored */
    uint32_t v = 0;
    if (c->args_mode) { v = value_id(c, args[2]); if (!v) soft_fail(c); }
    Entry e = ts->stack[i];
    ts->depth = (size_t)i;
    if (add_mark(c, e.call, t, MARK_SUSPEND, v, 0) < 0) return callback_failed(c);
    if (susp_put(c, frame, e.call, e.code_idx, e.task) < 0) return callback_failed(c);
    Py_RETURN_NONE;
}

/* PY_RESUME and PY_THROW: a suspended generator / coroutine runs again. */
static PyObject *
resume_common(CoreObject *c, PyObject *const *args, Py_ssize_t nargs, int throw)
{
    PyCodeObject *co = CODE_ARG(args);
    PyThreadState *tstate = PyThreadState_Get();
    _PyInterpreterFrame *frame = CURRENT_FRAME(tstate);
    Py_ssize_t idx = code_index(c, co, frame);
    /* (PY_THROW cannot be disabled: CPython would raise and drop the callback) */
    if (idx == CODE_EXCLUDED) return Py_NewRef(throw ? Py_None : DISABLE);
    if (idx < 0) return callback_failed(c);
    if (c->codes[idx].hook) return Py_NewRef(throw ? Py_None : DISABLE);
    ThreadState *ts = thread_state(c, tstate);
    if (!ts) return callback_failed(c);
    int64_t t = stamp();
    uint32_t ref = 0;
    if (throw) {
        ts->exc_ptr = NULL;   /* an exception enters here: its text is made afresh */
        ref = exc_id(c, ts, args[2]);
        if (!ref) soft_fail(c);
    }
    uint32_t parent = ts->depth ? ts->stack[ts->depth - 1].call : 0;
    Susp s;
    if (susp_take(c, frame, &s)) {
        if (add_mark(c, s.call, t, throw ? MARK_THROW : MARK_RESUME, ref, parent) < 0) return callback_failed(c);
        if (push(ts, frame, s.call, s.code_idx, s.task) < 0) return callback_failed(c);
        if (throw) ts->unwound = args[2];   /* its RAISE inside is the throw, not a new raise */
        return done_or_overflow(c, ts);
    }
    /* Never seen starting: a generator created and started before recording (partial), or
     * a coroutine thrown into before its first step (a task cancelled before it ran: THROW
     * with no START) -- then it starts here. Same test as python.py (the frame's f_lasti). */
    int lasti = frame && FRAME_CODE(frame) == (PyObject *)co ? _PyInterpreterFrame_LASTI(frame) : -1;
    int f_lasti = lasti < 0 ? -1 : lasti * (int)sizeof(_Py_CODEUNIT);
    int partial = throw ? f_lasti > 2 : f_lasti > 0;
    uint32_t task = 0;
    PyObject *entry = NULL;
    uint64_t batch = c->batch;
    if (c->codes[idx].coro) task = task_lookup(c, ts, parent, ts->thr, &entry);
    if (throw && c->batch != batch) {   /* a drain ran in the hook: ref was the old batch's */
        ref = exc_id(c, ts, args[2]);
        if (!ref) soft_fail(c);
    }
    if (!task) task = ts->depth ? ts->stack[ts->depth - 1].task : 0;
    uint32_t id = add_call(c, t, parent, c->codes[idx].func, ts->thr, 0, task, partial ? CALL_PARTIAL : 0);
    if (!id) { Py_XDECREF(entry); return callback_failed(c); }
    finish_task(c, entry, id);
    if (throw && add_mark(c, id, t, MARK_THROW, ref, parent) < 0) return callback_failed(c);
    if (push(ts, frame, id, (uint32_t)idx, task) < 0) return callback_failed(c);
    if (throw) ts->unwound = args[2];
    return done_or_overflow(c, ts);
}

static PyObject *
cb_py_resume(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    if (!c->active || nargs < 1) Py_RETURN_NONE;
    return resume_common(c, args, nargs, 0);
}

static PyObject *
cb_py_throw(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    if (!c->active || nargs < 3) Py_RETURN_NONE;
    return resume_common(c, args, nargs, 1);
}

/* The recorded thread state for an event that cannot be disabled, or NULL to ignore it. */
static inline ThreadState *
exc_event_state(CoreObject *c, PyObject *const *args, Py_ssize_t nargs, _PyInterpreterFrame **framep,
                int *failed)
{
    *failed = 0;
    if (!c->active || nargs < 3) return NULL;
    PyThreadState *tstate = PyThreadState_Get();
    _PyInterpreterFrame *frame = CURRENT_FRAME(tstate);
    *framep = frame;
    Py_ssize_t idx = code_index(c, CODE_ARG(args), frame);
    if (idx == CODE_EXCLUDED) return NULL;
    if (idx < 0 || c->codes[idx].hook) { *failed = idx < 0; return NULL; }
    ThreadState *ts = thread_state(c, tstate);
    if (!ts) *failed = 1;
    return ts;
}

static PyObject *
cb_py_unwind(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    _PyInterpreterFrame *frame = NULL;
    int failed;
    ThreadState *ts = exc_event_state(c, args, nargs, &frame, &failed);
    if (!ts) return failed ? callback_failed(c) : Py_NewRef(Py_None);
    int64_t t = stamp();
    Py_ssize_t i = pop_target(c, ts, frame, t);
    if (i < 0) Py_RETURN_NONE;
    uint32_t v = exc_id(c, ts, args[2]);
    if (!v) soft_fail(c);
    uint32_t call = ts->stack[i].call;
    ts->depth = (size_t)i;
    if (add_exit(c, call, t, END_RAISE, v) < 0) return callback_failed(c);
    ts->unwound = args[2];   /* the caller's RAISE for it is propagation, not a new raise */
    Py_RETURN_NONE;
}

/* Is this RAISE (or EXCEPTION_HANDLED, `handled`) of a StopIteration/StopAsyncIteration
 * CPython's own iteration protocol (an awaited result delivered at SEND, the end of an
 * `async for`, a thrown-into subgenerator's result at CLEANUP_THROW) rather than an exception
 * the program raised? The same rule as python.py's protocol_stop (see there); only reached
 * for those two exception types, so the code bytes are fetched off the hot path. */
static int
protocol_stop(PyObject *code, PyObject *offset, PyObject *exc, int handled)
{
    int stop_iter = PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_StopIteration);
    if (!stop_iter && !PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_StopAsyncIteration)) return 0;
    if (!PyCode_Check(code) || !PyLong_Check(offset)) return 0;
    Py_ssize_t off = PyLong_AsSsize_t(offset);
    if (off < 0) { PyErr_Clear(); return 0; }
    PyObject *bytes = PyCode_GetCode((PyCodeObject *)code);   /* deoptimised, cached by CPython */
    if (!bytes) { PyErr_Clear(); return 0; }
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(bytes);
    int r = 0;
    if (off < PyBytes_GET_SIZE(bytes)) {
        if (b[off] == CACHE && off >= 2) off -= 2;   /* 3.13.0: SEND's error path reports its cache */
        int op = b[off];
        if (handled) r = op == (stop_iter ? CLEANUP_THROW : END_ASYNC_FOR);
        else r = op == SEND && (stop_iter || (off >= 4 && b[off - 4] == GET_ANEXT));
    }
    Py_DECREF(bytes);
    return r;
}

static PyObject *
cb_raise(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    _PyInterpreterFrame *frame = NULL;
    int failed;
    ThreadState *ts = exc_event_state(c, args, nargs, &frame, &failed);
    if (!ts) return failed ? callback_failed(c) : Py_NewRef(Py_None);
    if (!ts->depth) Py_RETURN_NONE;
    PyObject *exc = args[2];
    int travelling = exc == ts->unwound;
    ts->unwound = NULL;
    if (travelling || protocol_stop(args[0], args[1], exc, 0)) Py_RETURN_NONE;
    ts->exc_ptr = NULL;   /* a new raise: make the text afresh */
    int64_t t = stamp();
    uint32_t ref = exc_id(c, ts, exc);
    if (!ref) soft_fail(c);
    if (add_mark(c, ts->stack[ts->depth - 1].call, t, MARK_RAISE, ref, 0) < 0) return callback_failed(c);
    Py_RETURN_NONE;
}

static PyObject *
cb_exception_handled(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    _PyInterpreterFrame *frame = NULL;
    int failed;
    ThreadState *ts = exc_event_state(c, args, nargs, &frame, &failed);
    if (!ts) return failed ? callback_failed(c) : Py_NewRef(Py_None);
    ts->unwound = NULL;
    if (!ts->depth || protocol_stop(args[0], args[1], args[2], 1)) Py_RETURN_NONE;
    int64_t t = stamp();
    uint32_t ref = exc_id(c, ts, args[2]);
    if (!ref) soft_fail(c);
    if (add_mark(c, ts->stack[ts->depth - 1].call, t, MARK_HANDLED, ref, 0) < 0) return callback_failed(c);
    c->marks[c->nmarks - 1].exc = args[2];
    Py_RETURN_NONE;
}

/* RERAISE: the compiler's own handlers (`except E as e` cleanup, `with`, `finally`) catch and
 * re-raise; their EXCEPTION_HANDLED is not a catch. The latest `handled` mark of this call
 * for this exception is dropped, unless a re-raise already dropped it (python.py's
 * _cancel_handled, done here at once instead of at drain; like there, only within the rows
 * not drained yet -- and looking back at most RERAISE_SCAN marks). */
#define RERAISE_SCAN 4096
static PyObject *
cb_reraise(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    _PyInterpreterFrame *frame = NULL;
    int failed;
    ThreadState *ts = exc_event_state(c, args, nargs, &frame, &failed);
    if (!ts) return failed ? callback_failed(c) : Py_NewRef(Py_None);
    if (!ts->depth) Py_RETURN_NONE;
    uint32_t cid = ts->stack[ts->depth - 1].call;
    size_t stop = c->nmarks > RERAISE_SCAN ? c->nmarks - RERAISE_SCAN : 0;
    for (size_t i = c->nmarks; i > stop; i--) {
        MarkRow *m = &c->marks[i - 1];
        if (m->call == cid && m->exc == (void *)args[2] && (m->kind == MARK_HANDLED || m->kind == 0)) {
            m->kind = 0;
            break;
        }
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------ */
/* Control from the wrapper                                                               */

static void
clear_pending(CoreObject *c)
{
    for (size_t i = 0; i < c->nstrs; i++) Py_CLEAR(c->strs[i].text);
    for (size_t i = 0; i < c->nslots; i++) Py_CLEAR(c->slots[i].o);
    c->nstrs = c->nslots = c->ncalls = c->nexits = c->nmarks = 0;
}

static void
clear_codes(CoreObject *c)
{
    for (size_t i = 0; i < c->ncodes; i++) {
        Py_CLEAR(c->codes[i].names);
        PyMem_RawFree(c->codes[i].order); c->codes[i].order = NULL;
        PyMem_RawFree(c->codes[i].star); c->codes[i].star = NULL;
    }
    c->ncodes = 0;
    for (size_t i = 0; i < c->nsmall_args; i++) {
        PyMem_RawFree(c->small_args[i].tab);
        Py_CLEAR(c->small_names[i]);
    }
    c->nsmall_args = 0;
    c->small_bytes = c->small_vals.n * sizeof(SmallEntry);
}

static void
clear_seeds(CoreObject *c)
{
    for (size_t i = 0; i < c->nseeds; i++) PyMem_RawFree(c->seeds[i].stack);
    c->nseeds = 0;
}

static PyObject *
core_start(CoreObject *c, PyObject *Py_UNUSED(ignored))
{
    if (!c->on_code) { PyErr_SetString(PyExc_RuntimeError, "the recorder has no hooks (call __init__)"); return NULL; }
    if (active_core && active_core != c && active_core->active) {
        PyErr_SetString(PyExc_RuntimeError, "another C recorder is already recording in this process");
        return NULL;
    }
    clear_pending(c);
    clear_codes(c);
    clear_seeds(c);
    c->nsusp = 0;
    c->nlost = 0;
    if (c->susp) memset(c->susp, 0, c->capsusp * sizeof(Susp));
    /* a new generation invalidates every cached code decision and thread state at once */
    c->gen = ++generation_counter;
    if (GEN_BITS(c->gen) == 0) c->gen = ++generation_counter;
    c->call_first_id = c->next_call_id = 1;
    c->next_final_sid = 1;
    stab_clear(&c->stab);
    if (!c->hot) c->hot = PyMem_RawCalloc(HOT_SIZE, sizeof(Memo));   /* NULL: no dedupe, still correct */
    else memset(c->hot, 0, HOT_SIZE * sizeof(Memo));
    c->batch++;
    c->errors = 0;
    c->anchor = anchor_now();   /* the first batch's ticks map from here */
    c->active = 1;
    Py_XSETREF(active_core, (CoreObject *)Py_NewRef(c));
    Py_RETURN_NONE;
}

/* seed(ident, frames): the frames running on thread `ident` (outermost first) when
 * recording starts; the recorded ones (not generators) become partial calls, and that
 * thread's stack starts with them (python.py's _seed_running). Returns the THRD id used
 * (0 if none was recorded). */
static PyObject *
core_seed(CoreObject *c, PyObject *args)
{
    unsigned long ident;
    PyObject *frames;
    if (!PyArg_ParseTuple(args, "kO!", &ident, &PyList_Type, &frames)) return NULL;
    int64_t t = stamp();
    uint32_t thr = 0;
    Entry *stack = NULL;
    size_t depth = 0, cap = 0;
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(frames); k++) {
        PyObject *f = PyList_GET_ITEM(frames, k);
        if (!PyFrame_Check(f)) continue;
        _PyInterpreterFrame *iframe = ((PyFrameObject *)f)->f_frame;
        PyCodeObject *co = PyFrame_GetCode((PyFrameObject *)f);
        Py_ssize_t idx = code_index(c, co, iframe);
        Py_DECREF(co);
        if (idx == CODE_ERROR) goto fail;
        if (idx < 0 || c->codes[idx].hook || c->codes[idx].genlike) continue;
        if (!thr) {   /* the thread's definition precedes its first row */
            PyObject *r = PyObject_CallOneArg(c->on_thread, PyTuple_GET_ITEM(args, 0));
            if (!r) goto fail;
            thr = (uint32_t)PyLong_AsUnsignedLong(r);
            Py_DECREF(r);
            if (PyErr_Occurred()) goto fail;
        }
        uint32_t id = add_call(c, t, depth ? stack[depth - 1].call : 0, c->codes[idx].func, thr, 0, 0, CALL_PARTIAL);
        if (!id) goto fail;
        if (grow((void **)&stack, &cap, depth + 1, sizeof(Entry)) < 0) goto fail;
        stack[depth].frame = iframe; stack[depth].call = id; stack[depth].code_idx = (uint32_t)idx;
        stack[depth].task = 0;
        depth++;
    }
    if (depth) {
        if (grow((void **)&c->seeds, &c->capseeds, c->nseeds + 1, sizeof(Seed)) < 0) goto fail;
        Seed *s = &c->seeds[c->nseeds++];
        s->ident = ident; s->thr = thr; s->stack = stack; s->depth = depth;
    } else {
        PyMem_RawFree(stack);
    }
    return PyLong_FromUnsignedLong(thr);
fail:
    PyMem_RawFree(stack);
    return NULL;
}

/* End every open call as unfinished: each thread's stack (innermost first), seeded threads
 * that never ran again, suspended generators and those that vanished silently. */
static PyObject *
core_stop(CoreObject *c, PyObject *Py_UNUSED(ignored))
{
    if (!c->active) Py_RETURN_NONE;
    int64_t t = stamp();
    for (ThreadState *ts = all_threads.next; ts != &all_threads; ts = ts->next)
        if (ts->gen == c->gen) { end_stack(c, ts->stack, &ts->depth, t); ts->gen = 0; }
    for (size_t i = 0; i < c->nseeds; i++)
        if (c->seeds[i].stack) end_stack(c, c->seeds[i].stack, &c->seeds[i].depth, t);
    clear_seeds(c);
    for (size_t i = 0; i < c->capsusp; i++)
        if (c->susp[i].frame) {
            add_exit(c, c->susp[i].call, t, END_UNFINISHED, 0);
            c->susp[i].frame = NULL;
        }
    c->nsusp = 0;
    for (size_t i = 0; i < c->nlost; i++) add_exit(c, c->lost[i], t, END_UNFINISHED, 0);
    c->nlost = 0;
    c->active = 0;
    if (active_core == c) Py_CLEAR(active_core);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* ---- rendering at drain time: the reference's value_text / args_text, in C ---- */

/* A placeholder's "module.Class" for one type, as UTF-8 (the label str owns the bytes). */
typedef struct { PyObject *type, *label; const char *u; size_t len, nchars; } Label;
#define LABELS 64   /* direct-mapped by type address; a miss only costs a hook call */

typedef struct {
    PyObject *render_obj;   /* reprs.value_text for the rare immutables (big int, complex...) */
    PyObject *type_label;   /* cls -> "module.Class" (the placeholder's name) */
    Label labels[LABELS];   /* this drain's labels (the slots hold the types meanwhile) */
} RenderCtx;

static inline size_t ptr_hash(void *p);

static Label *
label_for(RenderCtx *rc, PyObject *type)
{
    Label *lb = &rc->labels[ptr_hash(type) & (LABELS - 1)];
    if (lb->type == type) return lb;
    PyObject *label = PyObject_CallOneArg(rc->type_label, type);
    if (!label) return NULL;
    Py_ssize_t n;
    const char *u = PyUnicode_Check(label) ? PyUnicode_AsUTF8AndSize(label, &n) : NULL;
    if (!u) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "type_label returned a non-str");
        Py_DECREF(label);
        return NULL;
    }
    Py_XSETREF(lb->label, label);
    lb->type = type; lb->u = u; lb->len = (size_t)n; lb->nchars = (size_t)PyUnicode_GET_LENGTH(label);
    return lb;
}

static void
labels_clear(RenderCtx *rc)
{
    for (int i = 0; i < LABELS; i++) { Py_CLEAR(rc->labels[i].label); rc->labels[i].type = NULL; }
}

/* UTF-8 text being built, with its length in characters (the reference cuts by characters). */
typedef struct { char *p; size_t len, cap, nchars; } Text;

static int
text_add(Text *t, const char *s, size_t nbytes, size_t nchars)
{
    if (t->len + nbytes > t->cap) {
        size_t ncap = t->cap ? t->cap : 256;
        while (ncap < t->len + nbytes) ncap *= 2;
        char *p = PyMem_RawRealloc(t->p, ncap);
        if (!p) { PyErr_NoMemory(); return -1; }
        t->p = p; t->cap = ncap;
    }
    memcpy(t->p + t->len, s, nbytes);
    t->len += nbytes;
    t->nchars += nchars;
    return 0;
}

static int
text_add_str(Text *t, PyObject *u)
{
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(u, &n);
    if (!s) return -1;
    return text_add(t, s, (size_t)n, (size_t)PyUnicode_GET_LENGTH(u));
}

/* reprs._cut on the part of `t` from byte b0 (char c0) on, which is longer than `limit`
 * characters: keep its first limit-3 characters and add "...". */
static int
text_cut(Text *t, size_t b0, size_t c0, size_t limit)
{
    size_t keep = limit - 3, seen = 0, i = b0;
    for (; i < t->len; i++) {
        if (((unsigned char)t->p[i] & 0xC0) != 0x80) {   /* a character starts here */
            if (seen == keep) break;
            seen++;
        }
    }
    t->len = i;
    t->nchars = c0 + keep;
    return text_add(t, "...", 3, 3);
}

/* reprs._cut: text if short enough, else its first limit-3 characters and "...". Steals. */
static PyObject *
cut_text(PyObject *text, Py_ssize_t limit)
{
    if (!text || PyUnicode_GET_LENGTH(text) <= limit) return text;
    PyObject *head = PyUnicode_Substring(text, 0, limit - 3);
    Py_DECREF(text);
    if (!head) return NULL;
    PyObject *r = PyUnicode_FromFormat("%U...", head);
    Py_DECREF(head);
    return r;
}

/* repr of a str/bytes cut to MAX_STRING items, as reprs._text does it. */
static PyObject *
short_repr(PyObject *o)
{
    PyObject *part, *r;
    int longer;
    if (PyUnicode_Check(o)) {
        longer = PyUnicode_GET_LENGTH(o) > MAX_STRING;
        part = longer ? PyUnicode_Substring(o, 0, MAX_STRING) : Py_NewRef(o);
    } else {
        longer = PyBytes_GET_SIZE(o) > MAX_STRING;
        part = longer ? PyBytes_FromStringAndSize(PyBytes_AS_STRING(o), MAX_STRING) : Py_NewRef(o);
    }
    if (!part) return NULL;
    r = PyObject_Repr(part);
    Py_DECREF(part);
    if (r && longer) {
        PyObject *r2 = PyUnicode_FromFormat("%U...", r);
        Py_DECREF(r);
        r = r2;
    }
    return r;
}

/* Append the text of one captured value. `star`: 1 for *args, 2 for **kwargs (their text
 * when unbound is the empty tuple / dict, as in reprs.args_text). */
static int
render_slot(RenderCtx *rc, Text *t, Slot *s, int star)
{
    char buf[96];
    int n;
    PyObject *u = NULL;
    switch (s->tag) {
    case V_NONE: return text_add(t, "None", 4, 4);
    case V_TRUE: return text_add(t, "True", 4, 4);
    case V_FALSE: return text_add(t, "False", 5, 5);
    case V_INT: {   /* decimal by hand: snprintf was a tenth of the drain */
        uint64_t m = s->u.i < 0 ? 0 - (uint64_t)s->u.i : (uint64_t)s->u.i;
        char *d = buf + sizeof buf;
        do { *--d = (char)('0' + m % 10); m /= 10; } while (m);
        if (s->u.i < 0) *--d = '-';
        n = (int)(buf + sizeof buf - d);
        return text_add(t, d, (size_t)n, (size_t)n);
    }
    case V_FLOAT: {
        char *f = PyOS_double_to_string(s->u.d, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (!f) return -1;
        size_t len = strlen(f);
        int r = text_add(t, f, len, len);
        PyMem_Free(f);
        return r;
    }
    case V_UNBOUND:
        if (star == 1) return text_add(t, "()", 2, 2);
        if (star == 2) return text_add(t, "{}", 2, 2);
        return text_add(t, "?", 1, 1);
    case V_TEXT:
        return text_add_str(t, s->o);
    case V_OBJ:
        if (PyUnicode_CheckExact(s->o) || PyBytes_CheckExact(s->o)) u = cut_text(short_repr(s->o), MAX_TEXT);
        else u = PyObject_CallOneArg(rc->render_obj, s->o);
        break;
    case V_OPAQUE:
    case V_DEFREPR: {
        /* reprs.placeholder, written straight into the text: no Python object per value */
        Label *lb = label_for(rc, s->o);
        if (!lb) return -1;
        size_t b0 = t->len, c0 = t->nchars;
        char *h = buf + sizeof buf;
        *--h = '>';
        uintptr_t a = s->u.addr;
        do { *--h = "0123456789abcdef"[a & 15]; a >>= 4; } while (a);
        memcpy(h -= 13, " object at 0x", 13);
        size_t hn = (size_t)(buf + sizeof buf - h);
        if (text_add(t, "<", 1, 1) < 0 || text_add(t, lb->u, lb->len, lb->nchars) < 0
                || text_add(t, h, hn, hn) < 0)
            return -1;
        /* value_text cuts at MAX_TEXT; a full-mode repr is cut at 2 * MAX_STRING first */
        size_t limit = s->tag == V_DEFREPR ? 2 * MAX_STRING : MAX_TEXT;
        return t->nchars - c0 > limit ? text_cut(t, b0, c0, limit) : 0;
    }
    default:
        return text_add(t, "?", 1, 1);
    }
    if (!u) return -1;
    if (!PyUnicode_Check(u)) { Py_DECREF(u); PyErr_SetString(PyExc_TypeError, "renderer returned a non-str"); return -1; }
    int r = text_add_str(t, u);
    Py_DECREF(u);
    return r;
}

/* The UTF-8 text of one string entry (a value, or a whole argument list) into `t`. */
static int
render_entry(CoreObject *c, RenderCtx *rc, StrEntry *e, Slot *slots, Text *t)
{
    t->len = t->nchars = 0;
    if (e->kind == S_VALUE) return render_slot(rc, t, &slots[e->slot_off], 0);
    CodeInfo *ci = &c->codes[e->code_idx];
    for (uint32_t k = 0; k < ci->nshown; k++) {
        if (k && text_add(t, ", ", 2, 2) < 0) return -1;
        if (text_add_str(t, PyTuple_GET_ITEM(ci->names, k)) < 0) return -1;
        if (text_add(t, "=", 1, 1) < 0) return -1;
        if (render_slot(rc, t, &slots[e->slot_off + ci->order[k]], ci->star[k]) < 0) return -1;
    }
    return t->nchars > 2 * MAX_TEXT ? text_cut(t, 0, 0, 2 * MAX_TEXT) : 0;
}

#define STR_IDS_MAX 65536   /* python.py: the dedup table is bounded; a text may repeat */

/* ---- final string ids by UTF-8 bytes (deduplication across the session, in C) ----
 * Repeated texts (the same placeholder, "n=3", an exception raised in a loop) get the id of
 * their first occurrence without a Python str or dict lookup. Bounded like python.py's
 * table: past STR_IDS_MAX texts it starts afresh (a text may then repeat in the file). */

static uint64_t
bytes_hash(const char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
        p += 8; n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    return h | 1;
}

static void
stab_clear(StrTab *st)
{
    if (st->tab) memset(st->tab, 0, st->cap * sizeof(StrKey));
    st->n = 0;
    st->alen = 0;
}

static void
stab_free(StrTab *st)
{
    PyMem_RawFree(st->tab); PyMem_RawFree(st->arena);
    memset(st, 0, sizeof *st);
}

static uint32_t
stab_find(StrTab *st, const char *p, size_t n, uint64_t h)
{
    if (!st->n) return 0;
    size_t mask = st->cap - 1;
    for (size_t j = HSLOT(h) & mask; st->tab[j].hash; j = (j + 1) & mask) {
        StrKey *k = &st->tab[j];
        if (k->hash == h && k->len == n && !memcmp(st->arena + k->off, p, n)) return k->sid;
    }
    return 0;
}

static int
stab_add(StrTab *st, const char *p, size_t n, uint64_t h, uint32_t sid)
{
    if (st->n >= STR_IDS_MAX) stab_clear(st);
    if ((st->n + 1) * 2 > st->cap) {
        size_t ncap = st->cap ? st->cap * 2 : 1024;
        StrKey *nt = PyMem_RawCalloc(ncap, sizeof(StrKey));
        if (!nt) { PyErr_NoMemory(); return -1; }
        for (size_t i = 0; i < st->cap; i++) {
            if (!st->tab[i].hash) continue;
            size_t j = HSLOT(st->tab[i].hash) & (ncap - 1);
            while (nt[j].hash) j = (j + 1) & (ncap - 1);
            nt[j] = st->tab[i];
        }
        PyMem_RawFree(st->tab);
        st->tab = nt; st->cap = ncap;
    }
    if (grow((void **)&st->arena, &st->acap, st->alen + n + 1, 1) < 0) return -1;
    memcpy(st->arena + st->alen, p, n);
    size_t mask = st->cap - 1, j = HSLOT(h) & mask;
    while (st->tab[j].hash) j = (j + 1) & mask;
    st->tab[j].hash = h; st->tab[j].off = st->alen; st->tab[j].len = (uint32_t)n; st->tab[j].sid = sid;
    st->alen += n;
    st->n++;
    return 0;
}

/* An array.array of `n` zeros with typecode `tc` (array('I', [0]) * n: one allocation and a
 * fill, no Python int per item); the drain writes the values into its buffer. */
static PyObject *array_type;
static PyObject *
new_array(char tc, size_t n)
{
    PyObject *one = PyObject_CallFunction(array_type, "C(i)", (int)tc, 0);
    if (!one) return NULL;
    PyObject *r = PySequence_Repeat(one, (Py_ssize_t)n);
    Py_DECREF(one);
    return r;
}

/* An array.array that owns `buf` (n items of typecode tc, room for cap; from PyMem_Malloc),
 * without copying it: an empty array is made and its private fields are pointed at the
 * buffer. The struct is arraymodule.c's (unchanged from 3.12 to 3.13 at least); array_adopt_ok
 * checked the layout at import, else the items are copied into a new array. Takes `buf`
 * in every case (freed on failure). */
typedef struct {
    PyObject_VAR_HEAD
    char *ob_item;
    Py_ssize_t allocated;
    const void *ob_descr;
    PyObject *weakreflist;
    Py_ssize_t ob_exports;
} ArrayMirror;
static int array_adopt_ok;

static size_t
typecode_size(char tc)
{
    return tc == 'q' ? 8 : (tc == 'B' ? 1 : 4);
}

static PyObject *
adopt_column(char tc, void *buf, size_t n, size_t cap)
{
    PyObject *a;
    if (!n || !buf) {
        PyMem_Free(buf);
        return PyObject_CallFunction(array_type, "C", (int)tc);
    }
    if (array_adopt_ok) {
        a = PyObject_CallFunction(array_type, "C", (int)tc);
        if (!a) { PyMem_Free(buf); return NULL; }
        ArrayMirror *m = (ArrayMirror *)a;
        m->ob_item = buf;
        m->allocated = (Py_ssize_t)cap;
        Py_SET_SIZE(a, (Py_ssize_t)n);
        return a;
    }
    a = new_array(tc, n);
    Py_buffer view;
    if (a && PyObject_GetBuffer(a, &view, PyBUF_WRITABLE) == 0) {
        memcpy(view.buf, buf, n * typecode_size(tc));
        PyBuffer_Release(&view);
    } else {
        Py_CLEAR(a);
    }
    PyMem_Free(buf);
    return a;
}

/* A new column of n (uninitialised) items; *items points at them. */
static PyObject *
new_column(char tc, size_t n, void **items)
{
    *items = NULL;
    if (!n) return PyObject_CallFunction(array_type, "C", (int)tc);
    void *buf = PyMem_Malloc(n * typecode_size(tc));
    if (!buf) { PyErr_NoMemory(); return NULL; }
    PyObject *a = adopt_column(tc, buf, n, n);
    if (!a) return NULL;
    if (array_adopt_ok) { *items = buf; return a; }
    Py_buffer view;   /* the copy's own buffer (a fresh array is never resized meanwhile) */
    if (PyObject_GetBuffer(a, &view, PyBUF_WRITABLE) < 0) { Py_DECREF(a); return NULL; }
    *items = view.buf;
    PyBuffer_Release(&view);
    return a;
}

/* Is arraymodule.c's struct the one ArrayMirror describes? Checked on real arrays once. */
static int
check_array_layout(void)
{
    if (((PyTypeObject *)array_type)->tp_basicsize != (Py_ssize_t)sizeof(ArrayMirror)) return 0;
    PyObject *a = PyObject_CallFunction(array_type, "C(iii)", (int)'I', 7, 8, 9);
    if (!a) { PyErr_Clear(); return 0; }
    ArrayMirror *m = (ArrayMirror *)a;
    int ok = Py_SIZE(a) == 3 && m->allocated >= 3 && m->allocated < 1024 && m->ob_item
             && ((uint32_t *)m->ob_item)[0] == 7 && ((uint32_t *)m->ob_item)[2] == 9
             && m->weakreflist == NULL && m->ob_exports == 0;
    Py_DECREF(a);
    if (!ok) return 0;
    a = PyObject_CallFunction(array_type, "C", (int)'q');   /* an empty one owns nothing */
    if (!a) { PyErr_Clear(); return 0; }
    m = (ArrayMirror *)a;
    ok = Py_SIZE(a) == 0 && m->ob_item == NULL && m->allocated == 0;
    if (ok) {   /* adopt a buffer, read it back through the array's own API */
        int64_t *buf = PyMem_Malloc(2 * sizeof(int64_t));
        if (!buf) { Py_DECREF(a); PyErr_Clear(); return 0; }
        buf[0] = 5; buf[1] = -(INT64_C(1) << 40);
        m->ob_item = (char *)buf; m->allocated = 2; Py_SET_SIZE(a, 2);
        PyObject *item = PySequence_GetItem(a, 1);
        ok = item && PyLong_AsLongLong(item) == -(INT64_C(1) << 40) && PySequence_Size(a) == 2;
        Py_XDECREF(item);
    }
    Py_DECREF(a);   /* frees the adopted buffer with PyMem_Free, as it will every column */
    PyErr_Clear();
    return ok;
}

static void
free_calls(CallCols *k)
{
    PyMem_Free(k->par); PyMem_Free(k->fn); PyMem_Free(k->thr); PyMem_Free(k->args);
    PyMem_Free(k->task); PyMem_Free(k->t0); PyMem_Free(k->flag);
    memset(k, 0, sizeof *k);
}

static void
free_exits(ExitCols *k)
{
    PyMem_Free(k->call); PyMem_Free(k->val); PyMem_Free(k->t1); PyMem_Free(k->how);
    memset(k, 0, sizeof *k);
}

/* ---- drain: swap the rows out, render and number the texts, build column bytes ---- */

typedef struct {
    CallCols calls; size_t ncalls; uint32_t call_first_id; size_t capcalls;
    ExitCols exits; size_t nexits; size_t capexits;
    MarkRow *marks; size_t nmarks; size_t capmarks;
    StrEntry *strs; size_t nstrs; size_t capstrs;
    Slot *slots; size_t nslots; size_t capslots;
} Swapped;


/* Fill `key` for an entry whose slots are all inline or (type, address); 0 if the entry
 * cannot be memoized. (type, address) is a sound key within a batch only: there the first
 * entry's slot holds the type, so its address cannot name another type meanwhile. */
static inline int
memo_key_slots(uint8_t kind, uint32_t code_idx, const Slot *slots, uint32_t n, Memo *key)
{
    if (kind == S_TEXT || n > MEMO_SLOTS) return 0;
    /* only the first n tags/vals/types are ever read (memo_same: n is in the key), so nothing
     * is cleared (a memset of the key was a quarter of the event-time cost) */
    /* the fixed part is one word, compared at once (byte fields stored one by one and then
     * read as a wider word stalled store forwarding) */
    uint64_t head = (uint64_t)(kind == S_ARGS ? code_idx : 0) | (uint64_t)kind << 32 | (uint64_t)n << 40;
    uint64_t h = (0x9E3779B97F4A7C15ULL ^ head) * 0xff51afd7ed558ccdULL;   /* before the values, or kind ^ value collide */
    h ^= h >> 29;
    for (uint32_t k = 0; k < n; k++) {
        const Slot *sl = &slots[k];
        uint8_t tag = sl->tag;
        int64_t v = 0;
        uintptr_t t = 0;
        if (tag == V_INT) v = sl->u.i;
        else if (tag == V_FLOAT) memcpy(&v, &sl->u.d, 8);
        else if (tag > V_FLOAT && tag != V_UNBOUND) {
            if (tag != V_OPAQUE && tag != V_DEFREPR) return 0;
            t = (uintptr_t)sl->o;
            v = (int64_t)sl->u.addr;
            h ^= t * 0x9E3779B97F4A7C15ULL;
        }
        head |= (uint64_t)(tag & 15) << (48 + 4 * k);   /* tags < 16 (V_* enum) */
        key->vals[k] = v; key->types[k] = t;
        h = (h ^ (uint64_t)v) * 0xff51afd7ed558ccdULL;
        h = (h ^ (h >> 29) ^ tag) * 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 32;
    }
    key->hash = h | 1;
    key->head = head;
    return 1;
}

static inline int
memo_same(const Memo *a, const Memo *b)
{
    if (a->hash != b->hash || a->head != b->head) return 0;
    uint32_t n = (uint32_t)(b->head >> 40) & 0xFF;
    for (uint32_t k = 0; k < n; k++)
        if (a->vals[k] != b->vals[k] || a->types[k] != b->types[k]) return 0;
    return 1;
}

static PyObject *
core_drain(CoreObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "drain(render_obj, type_label)"); return NULL; }
    /* Swap everything out first (no Python code runs until this is done): callbacks on other
     * threads, which may run while rendering releases the GIL, start on fresh buffers. */
    Swapped w = {
        c->calls, c->ncalls, c->call_first_id, c->capcalls, c->exits, c->nexits, c->capexits,
        c->marks, c->nmarks, c->capmarks, c->strs, c->nstrs, c->capstrs, c->slots, c->nslots, c->capslots,
    };
    memset(&c->calls, 0, sizeof c->calls); c->capcalls = 0;   /* (given away as the arrays) */
    memset(&c->exits, 0, sizeof c->exits); c->capexits = 0;
    c->marks = c->spare_marks; c->capmarks = c->cap_spare_marks; c->spare_marks = NULL; c->cap_spare_marks = 0;
    c->ncalls = c->nexits = c->nmarks = 0;
    c->call_first_id = c->next_call_id;
    c->strs = c->spare_strs; c->capstrs = c->cap_spare_strs; c->spare_strs = NULL; c->cap_spare_strs = 0;
    c->slots = c->spare_slots; c->capslots = c->cap_spare_slots; c->spare_slots = NULL; c->cap_spare_slots = 0;
    c->nstrs = c->nslots = 0;
    c->overflow_at = c->overflow_rows;   /* rows are gone: back to the cap */
    c->batch++;   /* provisional string ids start again: drop the exception-text caches */
    /* this batch's ticks -> ns: the line from the previous anchor to one read now (every row
     * swapped out was written before it; the next batch starts from it) */
    Anchor here = anchor_now();
    TickMap tmap = tick_map(c->anchor, here);
    c->anchor = here;
    size_t kept = 0;   /* marks dropped by a re-raise go */
    for (size_t i = 0; i < w.nmarks; i++)
        if (w.marks[i].kind) w.marks[kept++] = w.marks[i];
    w.nmarks = kept;

    PyObject *result = NULL, *texts = NULL;
    uint32_t *remap = NULL;
    RenderCtx rc = {args[0], args[1], {{NULL}}};
    Text tb = {NULL, 0, 0, 0};
    Text blob = {NULL, 0, 0, 0}, offs = {NULL, 0, 0, 0};   /* the STRS payload's parts */
    uint32_t zero = 0;
    if (text_add(&offs, (const char *)&zero, 4, 0) < 0) goto done;
    uint32_t first_sid = c->next_final_sid;
    texts = PyList_New(0);
    remap = PyMem_RawMalloc((w.nstrs + 1) * sizeof(uint32_t));
    if (!texts || !remap) { if (!remap) PyErr_NoMemory(); goto done; }
    for (size_t i = 0; i < w.nstrs; i++) {
        StrEntry *e = &w.strs[i];
        c->rendered++;
        const char *u = NULL;
        Py_ssize_t ulen = 0;
        PyObject *t = NULL, *enc = NULL;
        if (e->kind == S_TEXT) {
            t = Py_NewRef(e->text);
            u = PyUnicode_AsUTF8AndSize(t, &ulen);
            if (!u) {   /* lone surrogates: the file stores them as the writer does */
                PyErr_Clear();
                enc = PyUnicode_AsEncodedString(t, "utf-8", "surrogatepass");
                if (enc) { u = PyBytes_AS_STRING(enc); ulen = PyBytes_GET_SIZE(enc); }
            }
        } else if (render_entry(c, &rc, e, w.slots, &tb) == 0) {
            u = tb.p ? tb.p : "";
            ulen = (Py_ssize_t)tb.len;
        }
        if (!u) {
            /* one unreadable value must not lose the batch: say so in its place */
            PyErr_Clear();
            Py_XDECREF(t);
            t = NULL;
            u = "<unreadable>";
            ulen = 12;
        }
        uint64_t h = bytes_hash(u, (size_t)ulen);
        uint32_t sid = stab_find(&c->stab, u, (size_t)ulen, h);
        if (sid) {
            remap[i] = sid;
            Py_XDECREF(t); Py_XDECREF(enc);
            continue;
        }
        if (!t) t = PyUnicode_DecodeUTF8(u, ulen, "surrogatepass");
        int r = t ? stab_add(&c->stab, u, (size_t)ulen, h, c->next_final_sid) : -1;
        if (r < 0) { Py_XDECREF(t); Py_XDECREF(enc); goto done; }
        sid = c->next_final_sid++;
        remap[i] = sid;
        r = PyList_Append(texts, t);
        Py_DECREF(t);
        /* `u` may be enc's bytes (lone surrogates): enc lives until they are in the payload */
        uint32_t end = (uint32_t)(blob.len + (size_t)ulen);
        if (r == 0 && (text_add(&blob, u, (size_t)ulen, 0) < 0 || text_add(&offs, (const char *)&end, 4, 0) < 0))
            r = -1;
        Py_XDECREF(enc);
        if (r < 0) goto done;
    }
    result = PyDict_New();
    if (!result) goto done;
    {
        /* The call and exit columns are the buffers the callbacks wrote (adopted by arrays):
         * only times (ticks -> ns) and string ids (provisional -> final) change, in place.
         * The marks (few) are converted from their rows. The time columns also come as 32-bit
         * deltas (Batch.*_deltas, item 0 left to the writer, which knows the origin), or None
         * when a step does not fit. */
#define NCOLS 19
        static const char *cn[NCOLS] = {"call_parent", "call_func", "call_thread", "call_t0", "call_args",
                                   "call_task", "call_flag", "exit_call", "exit_t1", "exit_how", "exit_val",
                                   "mark_call", "mark_t", "mark_kind", "mark_ref", "mark_other",
                                   "call_t0_deltas", "exit_t1_deltas", "mark_t_deltas"};
        static const char tcs[] = "IIIqIIBIqBIIqBIIiii";
        PyObject *arr[NCOLS] = {NULL};
        int failed = 0, wide[3] = {0, 0, 0};
        int64_t prev = 0;
#define DELTA(d, i, t, k) do { \
                int64_t step_ = (t) - prev; prev = (t); \
                if (i && (step_ < INT32_MIN || step_ > INT32_MAX)) wide[k] = 1; \
                d[i] = i ? (int32_t)step_ : 0; } while (0)
        CallCols *cc = &w.calls;
        int32_t *d0 = NULL, *d1 = NULL, *d2 = NULL;
        for (size_t i = 0; i < w.ncalls; i++)
            cc->args[i] = (cc->args[i] && cc->args[i] <= w.nstrs) ? remap[cc->args[i] - 1] : 0;
        if ((arr[16] = new_column('i', w.ncalls, (void **)&d0))) {
            for (size_t i = 0; i < w.ncalls; i++) {
                int64_t t = tick_to_ns(&tmap, cc->t0[i]);
                cc->t0[i] = t;
                DELTA(d0, i, t, 0);
            }
        }
        ExitCols *ec = &w.exits;
        for (size_t i = 0; i < w.nexits; i++)
            ec->val[i] = (ec->val[i] && ec->val[i] <= w.nstrs) ? remap[ec->val[i] - 1] : 0;
        if ((arr[17] = new_column('i', w.nexits, (void **)&d1))) {
            for (size_t i = 0; i < w.nexits; i++) {
                int64_t t = tick_to_ns(&tmap, ec->t1[i]);
                ec->t1[i] = t;
                DELTA(d1, i, t, 1);
            }
        }
        /* the buffers become arrays (each adopt_column takes its buffer, also on failure) */
        void *cbuf[7] = {cc->par, cc->fn, cc->thr, cc->t0, cc->args, cc->task, cc->flag};
        void *ebuf[4] = {ec->call, ec->t1, ec->how, ec->val};
        for (int k = 0; k < 7; k++) arr[k] = adopt_column(tcs[k], cbuf[k], w.ncalls, w.capcalls);
        for (int k = 0; k < 4; k++) arr[7 + k] = adopt_column(tcs[7 + k], ebuf[k], w.nexits, w.capexits);
        memset(&w.calls, 0, sizeof w.calls);
        memset(&w.exits, 0, sizeof w.exits);
        uint32_t *mc = NULL, *mr = NULL, *mo = NULL;
        int64_t *mt = NULL;
        uint8_t *mk = NULL;
        arr[11] = new_column('I', w.nmarks, (void **)&mc);
        arr[12] = new_column('q', w.nmarks, (void **)&mt);
        arr[13] = new_column('B', w.nmarks, (void **)&mk);
        arr[14] = new_column('I', w.nmarks, (void **)&mr);
        arr[15] = new_column('I', w.nmarks, (void **)&mo);
        arr[18] = new_column('i', w.nmarks, (void **)&d2);
        for (int k = 0; k < NCOLS; k++) if (!arr[k]) failed = 1;
        if (!failed) {
            for (size_t i = 0; i < w.nmarks; i++) {
                const MarkRow *r = &w.marks[i];
                int64_t t = tick_to_ns(&tmap, r->t);
                mc[i] = r->call; mt[i] = t; mk[i] = r->kind; mo[i] = r->othr;
                mr[i] = (r->ref && r->ref <= w.nstrs) ? remap[r->ref - 1] : 0;
                DELTA(d2, i, t, 2);
            }
        }
#undef DELTA
        for (int k = 0; k < NCOLS; k++) {
            PyObject *v = (k >= 16 && wide[k - 16]) ? Py_None : arr[k];
            if (!failed && PyDict_SetItemString(result, cn[k], v) < 0) failed = 1;
            Py_XDECREF(arr[k]);
        }
#undef NCOLS
        /* format.encode_strings' payload, built from the UTF-8 already at hand: <II header
         * (first id, count), count + 1 u32 offsets, the texts (little-endian hosts only) */
        PyObject *strs_payload = NULL;
        uint16_t probe = 1;
        if (*(uint8_t *)&probe == 1 && blob.len < UINT32_MAX) {
            uint32_t head[2] = {first_sid, (uint32_t)PyList_GET_SIZE(texts)};
            strs_payload = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(8 + offs.len + blob.len));
            if (strs_payload) {
                char *q = PyBytes_AS_STRING(strs_payload);
                memcpy(q, head, 8);
                if (offs.len) memcpy(q + 8, offs.p, offs.len);
                if (blob.len) memcpy(q + 8 + offs.len, blob.p, blob.len);
            }
        } else {
            strs_payload = Py_NewRef(Py_None);
        }
        struct { const char *name; PyObject *value; } items[] = {
            {"strings_payload", strs_payload},
            {"call_first_id", PyLong_FromUnsignedLong(w.call_first_id)},
            {"strings_first_id", PyLong_FromUnsignedLong(first_sid)},
            {"strings", Py_NewRef(texts)},
        };
        for (size_t k = 0; k < sizeof items / sizeof items[0]; k++) {
            if (!items[k].value || PyDict_SetItemString(result, items[k].name, items[k].value) < 0) failed = 1;
            Py_XDECREF(items[k].value);
        }
        if (failed) Py_CLEAR(result);
    }
done:
    Py_XDECREF(texts);
    labels_clear(&rc);
    PyMem_RawFree(tb.p);
    PyMem_RawFree(blob.p);
    PyMem_RawFree(offs.p);
    PyMem_RawFree(remap);
    for (size_t i = 0; i < w.nstrs; i++) Py_XDECREF(w.strs[i].text);
    for (size_t i = 0; i < w.nslots; i++) Py_XDECREF(w.slots[i].o);
#define KEEP_SPARE(buf, cap, spare, spare_cap) \
    if (!(spare)) { (spare) = (buf); (spare_cap) = (cap); } else PyMem_RawFree(buf)
    free_calls(&w.calls);   /* (NULL when they became arrays) */
    free_exits(&w.exits);
    KEEP_SPARE(w.marks, w.capmarks, c->spare_marks, c->cap_spare_marks);
    KEEP_SPARE(w.strs, w.capstrs, c->spare_strs, c->cap_spare_strs);
    KEEP_SPARE(w.slots, w.capslots, c->spare_slots, c->cap_spare_slots);
    return result;
}

static PyObject *
core_pending(CoreObject *c, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSize_t(c->ncalls + c->nexits + c->nmarks);
}

static PyObject *
core_set_overflow(CoreObject *c, PyObject *args)
{
    PyObject *hook;
    Py_ssize_t rows;
    if (!PyArg_ParseTuple(args, "On", &hook, &rows)) return NULL;
    if (hook != Py_None && !PyCallable_Check(hook)) { PyErr_SetString(PyExc_TypeError, "overflow hook must be callable or None"); return NULL; }
    if (rows < 1) { PyErr_SetString(PyExc_ValueError, "overflow rows must be >= 1"); return NULL; }
    Py_XSETREF(c->overflow, hook == Py_None ? NULL : Py_NewRef(hook));
    c->overflow_rows = c->overflow_at = c->overflow ? (size_t)rows : SIZE_MAX;
    Py_RETURN_NONE;
}

static PyObject *
core_stats(CoreObject *c, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("{sKsKsnsnsnsi}", "errors", (unsigned long long)c->errors,
                         "rendered", (unsigned long long)c->rendered,
                         "codes", (Py_ssize_t)c->ncodes, "suspended", (Py_ssize_t)c->nsusp,
                         "strings", (Py_ssize_t)c->nstrs, "zero_copy_columns", array_adopt_ok);
}

/* ------------------------------------------------------------------------------------ */
/* The Core type                                                                          */

static int
core_init(CoreObject *c, PyObject *args, PyObject *kw)
{
    static char *names[] = {"args_mode", "on_code", "on_thread", "exc_text", "repr_now", "task_hook",
                            "task_created", "tasks_out", NULL};
    int mode = 1;
    PyObject *on_code, *on_thread, *exc_text, *repr_now, *task_hook, *task_created, *tasks_out;
    if (PyTuple_GET_SIZE(args) == 0 && (!kw || PyDict_GET_SIZE(kw) == 0)) return 0;   /* hooks later */
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iOOOOOOO!", names, &mode, &on_code, &on_thread,
                                     &exc_text, &repr_now, &task_hook, &task_created,
                                     &PyList_Type, &tasks_out))
        return -1;
    if (c->active) { PyErr_SetString(PyExc_RuntimeError, "the recorder is running"); return -1; }
    if (mode < 0 || mode > 2) { PyErr_SetString(PyExc_ValueError, "args_mode must be 0, 1 or 2"); return -1; }
    c->args_mode = mode;
    Py_XSETREF(c->on_code, Py_NewRef(on_code));
    Py_XSETREF(c->on_thread, Py_NewRef(on_thread));
    Py_XSETREF(c->exc_text, Py_NewRef(exc_text));
    Py_XSETREF(c->repr_now, Py_NewRef(repr_now));
    Py_XSETREF(c->task_hook, Py_NewRef(task_hook));
    Py_XSETREF(c->task_created, Py_NewRef(task_created));
    Py_XSETREF(c->tasks_out, Py_NewRef(tasks_out));
    return 0;
}

static int
core_traverse(CoreObject *c, visitproc visit, void *arg)
{
    Py_VISIT(c->on_code); Py_VISIT(c->on_thread); Py_VISIT(c->exc_text); Py_VISIT(c->repr_now);
    Py_VISIT(c->task_hook); Py_VISIT(c->task_created); Py_VISIT(c->tasks_out); Py_VISIT(c->overflow);
    return 0;
}

static int
core_clear(CoreObject *c)
{
    Py_CLEAR(c->on_code); Py_CLEAR(c->on_thread); Py_CLEAR(c->exc_text); Py_CLEAR(c->repr_now);
    Py_CLEAR(c->task_hook); Py_CLEAR(c->task_created); Py_CLEAR(c->tasks_out);
    Py_CLEAR(c->overflow);
    c->overflow_rows = c->overflow_at = SIZE_MAX;
    return 0;
}

static void
core_dealloc(CoreObject *c)
{
    PyObject_GC_UnTrack(c);
    c->active = 0;
    clear_pending(c);
    clear_codes(c);
    clear_seeds(c);
    core_clear(c);
    stab_free(&c->stab);
    free_calls(&c->calls); free_exits(&c->exits);
    PyMem_RawFree(c->marks);
    PyMem_RawFree(c->strs); PyMem_RawFree(c->slots); PyMem_RawFree(c->codes);
    PyMem_RawFree(c->susp); PyMem_RawFree(c->lost); PyMem_RawFree(c->seeds);
    PyMem_RawFree(c->spare_marks);
    PyMem_RawFree(c->spare_strs); PyMem_RawFree(c->spare_slots);
    PyMem_RawFree(c->hot);
    PyMem_RawFree(c->small_vals.tab);
    PyMem_RawFree(c->small_args);
    PyMem_RawFree(c->small_names);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

/* The hooks are bound methods of the wrapper, which holds this core: dropping them after
 * stop breaks that cycle, so a finished recorder is freed at once (not at the next GC). */
static PyObject *
core_release(CoreObject *c, PyObject *Py_UNUSED(ignored))
{
    if (c->active) { PyErr_SetString(PyExc_RuntimeError, "the recorder is running"); return NULL; }
    core_clear(c);
    Py_RETURN_NONE;
}

#define CB(name, fn, doc) {name, (PyCFunction)(void (*)(void))fn, METH_FASTCALL, doc}
static PyMethodDef core_methods[] = {
    CB("py_start", cb_py_start, "PY_START callback"),
    CB("py_resume", cb_py_resume, "PY_RESUME callback"),
    CB("py_throw", cb_py_throw, "PY_THROW callback"),
    CB("py_return", cb_py_return, "PY_RETURN callback"),
    CB("py_yield", cb_py_yield, "PY_YIELD callback"),
    CB("py_unwind", cb_py_unwind, "PY_UNWIND callback"),
    CB("raise_", cb_raise, "RAISE callback"),
    CB("exception_handled", cb_exception_handled, "EXCEPTION_HANDLED callback"),
    CB("reraise", cb_reraise, "RERAISE callback"),
    CB("drain", core_drain, "drain(render_obj, type_label) -> dict of column bytes and texts."),
    {"start", (PyCFunction)core_start, METH_NOARGS, "Begin a session (new ids, new generation)."},
    {"seed", (PyCFunction)core_seed, METH_VARARGS, "seed(ident, frames): partial calls running at start."},
    {"stop", (PyCFunction)core_stop, METH_NOARGS, "End every open call as unfinished; stop recording."},
    {"pending", (PyCFunction)core_pending, METH_NOARGS, "Rows waiting for the next drain."},
    {"release", (PyCFunction)core_release, METH_NOARGS, "Drop the hooks (after stop; __init__ sets them again)."},
    {"stats", (PyCFunction)core_stats, METH_NOARGS, "Counters for tests and diagnostics."},
    {"set_overflow", (PyCFunction)core_set_overflow, METH_VARARGS,
     "set_overflow(hook, rows): call hook() on the recording thread when rows are pending (None: never)."},
    {NULL},
};

static PyObject *
core_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    CoreObject *c = (CoreObject *)PyType_GenericNew(type, args, kw);
    if (c) c->overflow_rows = c->overflow_at = SIZE_MAX;   /* no overflow hook: the compare never passes */
    return (PyObject *)c;
}

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "flowtrace._crecorder.Core",
    .tp_basicsize = sizeof(CoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C recording core: monitoring callbacks and event buffers of one session.",
    .tp_new = core_new,
    .tp_init = (initproc)core_init,
    .tp_traverse = (traverseproc)core_traverse,
    .tp_clear = (inquiry)core_clear,
    .tp_dealloc = (destructor)core_dealloc,
    .tp_methods = core_methods,
};

/* ------------------------------------------------------------------------------------ */

static PyObject *
mod_now(PyObject *m, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(now_ns());
}

/* In a forked child only the forking thread exists: forget the other threads' stacks (their
 * states stay allocated: their capsules are freed with their thread states). */
static PyObject *
mod_after_fork(PyObject *m, PyObject *Py_UNUSED(ignored))
{
    for (ThreadState *ts = all_threads.next; ts != &all_threads; ts = ts->next)
        if (ts != tls_state) { ts->gen = 0; ts->depth = 0; ts->tstate = NULL; }
    Py_RETURN_NONE;
}

static PyMethodDef mod_methods[] = {
    {"now", (PyCFunction)mod_now, METH_NOARGS, "The recorder's clock in ns (CLOCK_MONOTONIC, as rows are after the drain)."},
    {"after_fork_child", (PyCFunction)mod_after_fork, METH_NOARGS, "Reset thread states in a forked child."},
    {NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "flowtrace._crecorder",
    "The C hot path of the flowtrace recorder (see flowtrace/recorder/c.py).", -1, mod_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__crecorder(void)
{
    if (PyType_Ready(&CoreType) < 0) return NULL;
    clock_init();
    if (extra_index < 0) {
        extra_index = PyUnstable_Eval_RequestCodeExtraIndex(NULL);
        if (extra_index < 0) return NULL;
    }
    PyObject *sys = PyImport_ImportModule("sys");
    if (!sys) return NULL;
    PyObject *monitoring = PyObject_GetAttrString(sys, "monitoring");
    Py_DECREF(sys);
    if (!monitoring) return NULL;
    DISABLE = PyObject_GetAttrString(monitoring, "DISABLE");
    Py_DECREF(monitoring);
    if (!DISABLE) return NULL;
    PyObject *str_types[N_BUILTIN_STR] = {   /* reprs._BUILTIN_STR */
        PyExc_BaseException, PyExc_KeyError, PyExc_UnicodeError, PyExc_UnicodeDecodeError,
        PyExc_UnicodeEncodeError, PyExc_UnicodeTranslateError, PyExc_OSError, PyExc_SyntaxError,
        PyExc_ImportError, PyExc_StopIteration, PyExc_SystemExit,
    };
    for (int i = 0; i < N_BUILTIN_STR; i++) builtin_str[i] = ((PyTypeObject *)str_types[i])->tp_str;
    PyObject *arraymod = PyImport_ImportModule("array");
    if (!arraymod) return NULL;
    array_type = PyObject_GetAttrString(arraymod, "array");
    Py_DECREF(arraymod);
    if (!array_type) return NULL;
    array_adopt_ok = check_array_layout();
    if (!(thread_key = PyUnicode_InternFromString("flowtrace._crecorder.thread"))) return NULL;
    if (!(str_name = PyUnicode_InternFromString("__name__"))) return NULL;
    if (!(str_module_key = PyUnicode_InternFromString("__module__"))) return NULL;
    if (!(str_asyncio = PyUnicode_InternFromString("asyncio"))) return NULL;
    if (!(str_events = PyUnicode_InternFromString("events"))) return NULL;
    if (!(str_get_running_loop = PyUnicode_InternFromString("_get_running_loop"))) return NULL;
    if (!(str_current_task = PyUnicode_InternFromString("current_task"))) return NULL;
    if (!(str_builtins = PyUnicode_InternFromString("builtins"))) return NULL;
    if (!(str_root = PyUnicode_InternFromString("root"))) return NULL;
    if (!(str_empty = PyUnicode_FromString(""))) return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "Core", (PyObject *)&CoreType) < 0) { Py_DECREF(m); return NULL; }
    /* which hot-path clock the callbacks read (tests, flowtrace --version) */
    if (PyModule_AddStringConstant(m, "CLOCK", use_tsc ? "tsc" : "monotonic") < 0) { Py_DECREF(m); return NULL; }
    return m;
}
