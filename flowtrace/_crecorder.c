/*
 * flowtrace._crecorder -- the recording hot path in C.
 *
 * The sys.monitoring callbacks are METH_FASTCALL methods of one `Core` object. They keep
 * per-thread stacks and the session's event rows in plain C memory (no Python object is
 * created per call), read timestamps from CLOCK_MONOTONIC (the clock of
 * time.perf_counter_ns on Linux) and cache the per-code-object filter decision in the code
 * object's co_extra slot. Everything that needs Python (the filter decision, the function
 * table, thread names, exception texts, the repr of containers and of objects in "full"
 * mode, rendering values to text) is done by the Python wrapper (flowtrace/recorder/c.py)
 * through a few hooks, either once per code object / thread, or when the rows are drained.
 *
 * Concurrency: every callback and drain() runs with the GIL held (free-threaded builds are
 * refused at import), so the session buffers are shared by all threads and need no lock.
 * A hook that calls Python may release the GIL; code that calls a hook therefore re-reads
 * any buffer pointer afterwards.
 *
 * Values captured in "safe" mode (see capture_value): None, bools, ints that fit in 64 bits
 * and floats are stored inline; exact str / bytes / big int / complex are immutable, so a
 * reference to them is kept until the next drain and they are rendered then (exactly the
 * same text as rendering them at call time); containers of builtins are rendered to text at
 * call time by the Python reference rules (they can mutate); any other object is kept as
 * (type, address) -- the type referenced until the drain, the object itself not at all, so
 * recording never extends an object's life or calls its __repr__.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#ifdef Py_GIL_DISABLED
#error "flowtrace._crecorder needs the GIL (free-threaded builds use the Python recorder)"
#endif

/* The callee's arguments are read straight from its interpreter frame (no frame object, no
 * f_locals dict): that is what makes argument capture cheap. The frame layout is internal
 * and version specific, hence the internal header; setup.py builds per Python version. */
#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
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
/* Rows, in the units of docs/FORMAT.md. Times are absolute CLOCK_MONOTONIC ns.          */

typedef struct { int64_t t0; uint32_t par, fn, thr, args, task; uint8_t flag; } CallRow;
typedef struct { int64_t t1; uint32_t call, val; uint8_t how; } ExitRow;
typedef struct { int64_t t; uint32_t call, ref, othr; uint8_t kind; } MarkRow;

enum { END_RETURN = 1, END_RAISE = 2, END_UNFINISHED = 3 };
enum { MARK_SUSPEND = 1, MARK_RESUME = 2, MARK_THROW = 3, MARK_RAISE = 4, MARK_HANDLED = 5 };

/* A captured value (one argument, a result or a yielded value). */
enum {
    V_NONE = 1, V_TRUE, V_FALSE,
    V_INT,      /* u.i */
    V_FLOAT,    /* u.d */
    V_OBJ,      /* o: owned reference to an immutable builtin, rendered at drain */
    V_TEXT,     /* o: owned str already rendered */
    V_OPAQUE,   /* o: owned reference to the type, u.addr: the object's address */
    V_UNBOUND,  /* the frame slot was empty */
};
typedef struct { PyObject *o; union { int64_t i; double d; uintptr_t addr; } u; uint8_t tag; } Slot;

/* A string id handed out at event time; its text is produced at drain. */
enum { S_TEXT = 1, S_ARGS, S_VALUE };
typedef struct { PyObject *text; size_t slot_off; uint32_t nslots, code_idx; uint8_t kind; } StrEntry;

/* What the session knows about one code object (index stored in its co_extra). */
typedef struct {
    PyObject *names;   /* tuple, display order: "a", "*args", "kwonly", "**kw" */
    uint16_t *order;   /* display position -> localsplus index */
    uint8_t *star;     /* display position -> 0 plain, 1 *args, 2 **kwargs */
    uint32_t func;     /* FUNC id */
    uint16_t nargs;    /* number of leading localsplus slots that are arguments */
    uint8_t coro;      /* generator / coroutine / async generator code */
} CodeInfo;

/* An open call on a thread's stack. */
typedef struct { void *frame; uint32_t call, code_idx, task; } Entry;

/* A suspended generator / coroutine, keyed by its interpreter frame (which lives inside the
 * generator object, so its address is stable while the generator exists). */
typedef struct { void *frame; uint32_t call, code_idx, task; } Susp;

typedef struct ThreadState {
    struct ThreadState *prev, *next;  /* all live thread states (GIL-protected list) */
    PyThreadState *tstate;
    uint64_t gen;                     /* session generation this state belongs to */
    uint32_t thr;                     /* THRD id in that session */
    Entry *stack;
    size_t depth, cap;
    PyObject *exc_ptr;                /* borrowed: the last exception whose text was made */
    uint32_t exc_sid;                 /* and its string id */
    PyObject *unwound;                /* borrowed: exception that last left a frame here */
    void *unwound_to;                 /* and the frame it went to */
} ThreadState;

static ThreadState all_threads = {&all_threads, &all_threads};
static _Thread_local ThreadState *tls_state;
static uint64_t generation_counter;
static Py_ssize_t extra_index = -1;
static PyObject *DISABLE;
static PyObject *thread_key;         /* key of our capsule in each thread's state dict */
static PyObject *str_name;           /* "__name__" */
static struct CoreObject *active_core;

typedef struct CoreObject {
    PyObject_HEAD
    uint64_t gen;
    int active;
    int args_mode;                   /* 0 off, 1 safe, 2 full */
    /* hooks into the Python wrapper */
    PyObject *on_code, *on_thread, *exc_text, *repr_now, *on_full;
    /* rows */
    CallRow *calls; size_t ncalls, capcalls;
    ExitRow *exits; size_t nexits, capexits;
    MarkRow *marks; size_t nmarks, capmarks;
    uint32_t call_first_id, next_call_id;
    StrEntry *strs; size_t nstrs, capstrs;
    uint32_t str_first_id, next_str_id;
    Slot *slots; size_t nslots, capslots;
    CodeInfo *codes; size_t ncodes, capcodes;
    /* suspended generators: open addressing, linear probing, backward-shift deletion */
    Susp *susp; size_t nsusp, capsusp;
    size_t limit;                    /* rows (or strings) before asking for a flush */
    int flushing;
    uint64_t errors;                 /* internal errors swallowed (never raised into user code) */
    uint64_t flush_requests;
} CoreObject;

/* ------------------------------------------------------------------------------------ */
/* Small helpers                                                                         */

static inline int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
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

/* ------------------------------------------------------------------------------------ */
/* Per-thread state. The state is owned by a capsule stored in the thread's state dict, so it
 * is freed when the thread ends (PyThreadState_Clear, GIL held); a thread-local pointer
 * caches it for the hot path. It is reused across sessions and reset when the generation
 * differs.                                                                               */

static void end_open_calls(CoreObject *c, ThreadState *ts, int64_t t);

static void
thread_capsule_destructor(PyObject *capsule)
{
    ThreadState *ts = (ThreadState *)PyCapsule_GetPointer(capsule, "flowtrace.thread");
    if (!ts) { PyErr_Clear(); return; }
    if (active_core && active_core->active && ts->gen == active_core->gen && ts->depth)
        end_open_calls(active_core, ts, now_ns());
    ts->prev->next = ts->next;
    ts->next->prev = ts->prev;
    if (tls_state == ts) tls_state = NULL;
    PyMem_RawFree(ts->stack);
    PyMem_RawFree(ts);
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
        /* First event of this thread in this session: ask the wrapper for its THRD id. */
        PyObject *r = PyObject_CallNoArgs(c->on_thread);
        if (!r) return NULL;
        unsigned long thr = PyLong_AsUnsignedLong(r);
        Py_DECREF(r);
        if (thr == (unsigned long)-1 && PyErr_Occurred()) return NULL;
        ts->thr = (uint32_t)thr;
        ts->depth = 0;
        ts->exc_ptr = NULL;
        ts->unwound = NULL;
        ts->unwound_to = NULL;
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

static inline int
push(ThreadState *ts, void *frame, uint32_t call, uint32_t code_idx, uint32_t task)
{
    if (ts->depth == ts->cap && grow((void **)&ts->stack, &ts->cap, ts->depth + 1, sizeof(Entry)) < 0)
        return -1;
    Entry *e = &ts->stack[ts->depth++];
    e->frame = frame; e->call = call; e->code_idx = code_idx; e->task = task;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Code objects: the filter decision, once per code object and session.                  */

/* co_extra holds (generation << 40) | (code index + 1) << 1 | excluded-bit; zero = unseen. */
#define EXTRA_GEN(v) ((uint64_t)(v) >> 40)
#define GEN_BITS(g) ((uint64_t)(g) & 0xFFFFFF)

static int
fill_code_info(CodeInfo *ci, PyCodeObject *co)
{
    /* localsplus order is: positional, keyword-only, *args, **kwargs; the text shows
     * positional, *args, keyword-only, **kwargs (the reference's args_text order). */
    int flags = co->co_flags;
    int npos = co->co_argcount, nkw = co->co_kwonlyargcount;
    int nvar = (flags & CO_VARARGS) ? 1 : 0, nkwd = (flags & CO_VARKEYWORDS) ? 1 : 0;
    int total = npos + nkw + nvar + nkwd;
    PyObject *varnames = PyCode_GetVarnames(co);
    if (!varnames) return -1;
    if (PyTuple_GET_SIZE(varnames) < total) { Py_DECREF(varnames); total = npos = nkw = nvar = nkwd = 0; varnames = PyTuple_New(0); if (!varnames) return -1; }
    PyObject *names = PyTuple_New(total);
    ci->order = PyMem_RawMalloc(sizeof(uint16_t) * (total + 1));
    ci->star = PyMem_RawMalloc(total + 1);
    if (!names || !ci->order || !ci->star) { Py_XDECREF(names); Py_DECREF(varnames); PyErr_NoMemory(); return -1; }
    int pos = 0;
    for (int i = 0; i < total; i++) {
        int src, kind = 0;
        if (i < npos) src = i;
        else if (i == npos && nvar) { src = npos + nkw; kind = 1; }
        else if (i < npos + nvar + nkw) src = i - nvar;
        else { src = npos + nkw + nvar; kind = 2; }
        PyObject *name = PyTuple_GET_ITEM(varnames, src);
        PyObject *shown = kind == 1 ? PyUnicode_FromFormat("*%U", name)
                        : kind == 2 ? PyUnicode_FromFormat("**%U", name) : Py_NewRef(name);
        if (!shown) { Py_DECREF(varnames); Py_DECREF(names); return -1; }
        PyTuple_SET_ITEM(names, pos, shown);
        ci->order[pos] = (uint16_t)src;
        ci->star[pos] = (uint8_t)kind;
        pos++;
    }
    Py_DECREF(varnames);
    ci->names = names;
    ci->nargs = (uint16_t)total;
    ci->coro = (flags & (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR | CO_ITERABLE_COROUTINE)) != 0;
    return 0;
}

/* Returns the code index (>= 0), -1 for an excluded code object, -2 on error. */
static Py_ssize_t
code_slow(CoreObject *c, PyCodeObject *co, PyObject *globals)
{
    /* the module the code runs in (filters match module names): globals' __name__ */
    PyObject *module = NULL;
    if (globals && PyDict_Check(globals)) {
        module = PyDict_GetItemWithError(globals, str_name);
        if (!module && PyErr_Occurred()) return -2;
    }
    PyObject *r = PyObject_CallFunctionObjArgs(c->on_code, (PyObject *)co, module ? module : Py_None, NULL);
    if (!r) return -2;
    long func = PyLong_AsLong(r);
    Py_DECREF(r);
    if (func == -1 && PyErr_Occurred()) return -2;
    uintptr_t v;
    Py_ssize_t idx = -1;
    if (func <= 0) {
        v = (uintptr_t)((GEN_BITS(c->gen) << 40) | 1);
    } else {
        if (grow((void **)&c->codes, &c->capcodes, c->ncodes + 1, sizeof(CodeInfo)) < 0) return -2;
        CodeInfo *ci = &c->codes[c->ncodes];
        memset(ci, 0, sizeof(*ci));
        if (fill_code_info(ci, co) < 0) return -2;
        ci->func = (uint32_t)func;
        idx = (Py_ssize_t)c->ncodes++;
        v = (uintptr_t)((GEN_BITS(c->gen) << 40) | ((uint64_t)(idx + 1) << 1));
    }
    if (PyUnstable_Code_SetExtra((PyObject *)co, extra_index, (void *)v) < 0) return -2;
    return idx;
}

static inline Py_ssize_t
code_index(CoreObject *c, PyCodeObject *co, PyThreadState *tstate)
{
    void *p = NULL;
    /* PyUnstable_Code_GetExtra only reads an array; it cannot fail for a valid index. */
    PyUnstable_Code_GetExtra((PyObject *)co, extra_index, &p);
    uintptr_t v = (uintptr_t)p;
    if (v && EXTRA_GEN(v) == GEN_BITS(c->gen))
        return (v & 1) ? -1 : (Py_ssize_t)((v >> 1) & 0x7FFFFFFFFFULL) - 1;
    _PyInterpreterFrame *f = CURRENT_FRAME(tstate);
    return code_slow(c, co, (f && FRAME_CODE(f) == (PyObject *)co) ? f->f_globals : NULL);
}

/* Like code_index, but never makes a decision: for events that cannot be disabled (raise,
 * unwind, throw, handled), which also fire for code nobody asked to record. A code object
 * that has not been seen in this session has no recorded call on any stack. */
static inline Py_ssize_t
code_index_known(CoreObject *c, PyCodeObject *co)
{
    void *p = NULL;
    PyUnstable_Code_GetExtra((PyObject *)co, extra_index, &p);
    uintptr_t v = (uintptr_t)p;
    if (v && EXTRA_GEN(v) == GEN_BITS(c->gen) && !(v & 1))
        return (Py_ssize_t)((v >> 1) & 0x7FFFFFFFFFULL) - 1;
    return -1;
}

/* ------------------------------------------------------------------------------------ */
/* Buffers. When a buffer reaches the limit the wrapper's flush hook is called (it drains
 * and writes); if that is not possible right now the buffer grows: nothing is dropped.   */

static void
maybe_flush(CoreObject *c)
{
    if (c->flushing || !c->on_full || c->on_full == Py_None) return;
    c->flushing = 1;
    c->flush_requests++;
    PyObject *r = PyObject_CallNoArgs(c->on_full);
    c->flushing = 0;
    if (r) Py_DECREF(r);
    else { c->errors++; PyErr_Clear(); }
}

static inline int
need_room(CoreObject *c)
{
    if (c->ncalls >= c->limit || c->nexits >= c->limit || c->nmarks >= c->limit
            || c->nstrs >= c->limit || c->nslots >= 4 * c->limit)
        maybe_flush(c);
    return 0;
}

static inline CallRow *
call_row(CoreObject *c)
{
    if (c->ncalls == c->capcalls && grow((void **)&c->calls, &c->capcalls, c->ncalls + 1, sizeof(CallRow)) < 0)
        return NULL;
    return &c->calls[c->ncalls++];
}

static inline int
add_exit(CoreObject *c, uint32_t call, int64_t t, uint8_t how, uint32_t val)
{
    if (c->nexits == c->capexits && grow((void **)&c->exits, &c->capexits, c->nexits + 1, sizeof(ExitRow)) < 0)
        return -1;
    ExitRow *r = &c->exits[c->nexits++];
    r->t1 = t; r->call = call; r->val = val; r->how = how;
    return 0;
}

static inline int
add_mark(CoreObject *c, uint32_t call, int64_t t, uint8_t kind, uint32_t ref, uint32_t othr)
{
    if (c->nmarks == c->capmarks && grow((void **)&c->marks, &c->capmarks, c->nmarks + 1, sizeof(MarkRow)) < 0)
        return -1;
    MarkRow *r = &c->marks[c->nmarks++];
    r->t = t; r->call = call; r->ref = ref; r->othr = othr; r->kind = kind;
    return 0;
}

static inline StrEntry *
str_entry(CoreObject *c)
{
    if (c->nstrs == c->capstrs && grow((void **)&c->strs, &c->capstrs, c->nstrs + 1, sizeof(StrEntry)) < 0)
        return NULL;
    StrEntry *e = &c->strs[c->nstrs++];
    memset(e, 0, sizeof(*e));
    return e;
}

/* A string id for a text made now (steals `text`). */
static uint32_t
add_text(CoreObject *c, PyObject *text)
{
    StrEntry *e = str_entry(c);
    if (!e) { Py_DECREF(text); return 0; }
    e->kind = S_TEXT;
    e->text = text;
    return c->next_str_id++;
}

/* ------------------------------------------------------------------------------------ */
/* Value capture (at event time). The capture goes to a caller-owned Slot first and is
 * appended to the session buffers only once no more Python code can run: a hook that runs
 * Python may release the GIL, and another thread (or a drain) may then move the buffers. */

static void
slots_clear(Slot *s, size_t n)
{
    for (size_t i = 0; i < n; i++) Py_CLEAR(s[i].o);
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

/* Append captured slots and a string entry for them; returns the string id (0 on failure,
 * with the slots released). No Python code runs in here. */
static uint32_t
commit_slots(CoreObject *c, Slot *local, uint32_t n, uint8_t kind, uint32_t code_idx)
{
    Slot *dst = slot_room(c, n);
    StrEntry *e = dst ? str_entry(c) : NULL;
    if (!e) { slots_clear(local, n); return 0; }
    memcpy(dst, local, n * sizeof(Slot));
    e->kind = kind; e->slot_off = c->nslots; e->nslots = n; e->code_idx = code_idx;
    c->nslots += n;
    return c->next_str_id++;
}

/* String id for a single value (result, yielded value); 0 when capture is off. */
static uint32_t
value_id(CoreObject *c, PyObject *v)
{
    if (!c->args_mode) return 0;
    Slot s;
    if (capture_value(c, &s, v) < 0) return 0;
    return commit_slots(c, &s, 1, S_VALUE, 0);
}

/* String id for the arguments of the call whose frame is running now. */
static uint32_t
args_id(CoreObject *c, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx)
{
    uint32_t n = c->codes[idx].nargs;
    if (!n || !frame || FRAME_CODE(frame) != (PyObject *)co) return 0;
    Slot small[8];
    Slot *local = n <= 8 ? small : PyMem_RawMalloc(n * sizeof(Slot));
    if (!local) { PyErr_NoMemory(); return 0; }
    const char *kinds = PyBytes_AS_STRING(co->co_localspluskinds);
    uint32_t sid = 0;
    for (uint32_t i = 0; i < n; i++) {
        PyObject *v = frame->localsplus[i];
        /* an argument captured by an inner function is already a cell at PY_START */
        if (v && (kinds[i] & CO_FAST_CELL) && PyCell_Check(v)) v = PyCell_GET(v);
        if (capture_value(c, &local[i], v) < 0) { slots_clear(local, i); goto done; }
    }
    /* (c->codes may have moved while a hook ran; idx is still valid) */
    sid = commit_slots(c, local, n, S_ARGS, (uint32_t)idx);
done:
    if (local != small) PyMem_RawFree(local);
    return sid;
}

/* String id for an exception's text, made now (exceptions mutate and die); one text per
 * exception object while it travels through the frames of one thread. */
static uint32_t
exc_id(CoreObject *c, ThreadState *ts, PyObject *exc)
{
    if (exc == ts->exc_ptr && ts->exc_sid) return ts->exc_sid;
    PyObject *t = PyObject_CallOneArg(c->exc_text, exc);
    if (!t) return 0;
    uint32_t sid = add_text(c, t);
    ts->exc_ptr = exc;
    ts->exc_sid = sid;
    return sid;
}

/* ------------------------------------------------------------------------------------ */
/* Stack matching                                                                         */

/* Index of the entry for `frame` on the stack (searching down from the top), or -1. */
static inline Py_ssize_t
find_frame(ThreadState *ts, void *frame)
{
    for (Py_ssize_t i = (Py_ssize_t)ts->depth - 1; i >= 0; i--)
        if (ts->stack[i].frame == frame) return i;
    return -1;
}

/* Calls above index i on the stack lost their end event (it cannot happen with a correct
 * interpreter, but a tree must balance): end them as unfinished at time t. */
static void
drop_above(CoreObject *c, ThreadState *ts, size_t i, int64_t t)
{
    while (ts->depth > i + 1) {
        Entry *e = &ts->stack[--ts->depth];
        add_exit(c, e->call, t, END_UNFINISHED, 0);
    }
}

static void
end_open_calls(CoreObject *c, ThreadState *ts, int64_t t)
{
    while (ts->depth) {
        Entry *e = &ts->stack[--ts->depth];
        add_exit(c, e->call, t, END_UNFINISHED, 0);
    }
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
/* The callbacks                                                                          */

#define CODE_ARG(args) ((PyCodeObject *)(args)[0])

/* The thread state if this thread already has one in this session (no Python call). */
static inline ThreadState *
thread_state_known(CoreObject *c, PyThreadState *tstate)
{
    ThreadState *ts = tls_state;
    return (ts && ts->gen == c->gen && ts->tstate == tstate) ? ts : NULL;
}

static PyObject *
cb_py_start(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    if (!c->active || nargs < 1) Py_RETURN_NONE;
    PyCodeObject *co = CODE_ARG(args);
    PyThreadState *tstate = PyThreadState_Get();
    Py_ssize_t idx = code_index(c, co, tstate);
    if (idx == -1) return Py_NewRef(DISABLE);   /* excluded: never called again here */
    if (idx < 0) return callback_failed(c);
    ThreadState *ts = thread_state(c, tstate);
    if (!ts) return callback_failed(c);
    int64_t t = now_ns();
    need_room(c);
    _PyInterpreterFrame *frame = CURRENT_FRAME(tstate);
    uint32_t a = 0;
    if (c->args_mode) {
        a = args_id(c, frame, co, idx);
        if (!a && PyErr_Occurred()) return callback_failed(c);
    }
    uint32_t parent = 0, task = 0;
    if (ts->depth) { parent = ts->stack[ts->depth - 1].call; task = ts->stack[ts->depth - 1].task; }
    CallRow *r = call_row(c);
    if (!r) return callback_failed(c);
    uint32_t id = c->next_call_id++;
    r->t0 = t; r->par = parent; r->fn = c->codes[idx].func; r->thr = ts->thr;
    r->args = a; r->task = task; r->flag = 0;
    if (push(ts, frame, id, (uint32_t)idx, task) < 0) return callback_failed(c);
    Py_RETURN_NONE;
}

/* Common part of PY_RETURN / PY_YIELD / PY_UNWIND: the index of this frame's entry. */
static inline Py_ssize_t
pop_target(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, int64_t t)
{
    if (ts->depth && ts->stack[ts->depth - 1].frame == frame) return (Py_ssize_t)ts->depth - 1;
    Py_ssize_t i = find_frame(ts, frame);
    if (i >= 0) drop_above(c, ts, (size_t)i, t);
    return i;   /* -1: a call that was running before recording started: left out */
}

static PyObject *
cb_py_return(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    if (!c->active || nargs < 3) Py_RETURN_NONE;
    PyCodeObject *co = CODE_ARG(args);
    PyThreadState *tstate = PyThreadState_Get();
    Py_ssize_t idx = code_index(c, co, tstate);
    if (idx == -1) return Py_NewRef(DISABLE);
    if (idx < 0) return callback_failed(c);
    ThreadState *ts = thread_state(c, tstate);
    if (!ts) return callback_failed(c);
    int64_t t = now_ns();
    Py_ssize_t i = pop_target(c, ts, CURRENT_FRAME(tstate), t);
    if (i < 0) Py_RETURN_NONE;
    need_room(c);
    uint32_t v = value_id(c, args[2]);
    if (!v && PyErr_Occurred()) callback_failed(c);
    /* (the stack may have been read by nobody else meanwhile: it is this thread's) */
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
    Py_ssize_t idx = code_index(c, co, tstate);
    if (idx == -1) return Py_NewRef(DISABLE);
    if (idx < 0) return callback_failed(c);
    ThreadState *ts = thread_state(c, tstate);
    if (!ts) return callback_failed(c);
    int64_t t = now_ns();
    _PyInterpreterFrame *frame = CURRENT_FRAME(tstate);
    Py_ssize_t i = pop_target(c, ts, frame, t);
    if (i < 0) Py_RETURN_NONE;
    need_room(c);
    uint32_t v = value_id(c, args[2]);
    if (!v && PyErr_Occurred()) callback_failed(c);
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
    /* PY_THROW cannot be disabled, so it never makes a filter decision */
    Py_ssize_t idx = throw ? code_index_known(c, co) : code_index(c, co, tstate);
    if (idx == -1) return throw ? Py_NewRef(Py_None) : Py_NewRef(DISABLE);
    if (idx < 0) return callback_failed(c);
    ThreadState *ts = thread_state(c, tstate);
    if (!ts) return callback_failed(c);
    int64_t t = now_ns();
    _PyInterpreterFrame *frame = CURRENT_FRAME(tstate);
    Susp s;
    if (!susp_take(c, frame, &s)) Py_RETURN_NONE;   /* suspended before recording started */
    need_room(c);
    uint32_t ref = 0;
    if (throw) {
        ts->exc_ptr = NULL;   /* a new exception enters here: make its text afresh */
        ref = exc_id(c, ts, args[2]);
        if (!ref && PyErr_Occurred()) callback_failed(c);
    }
    uint32_t resumer = ts->depth ? ts->stack[ts->depth - 1].call : 0;
    if (add_mark(c, s.call, t, throw ? MARK_THROW : MARK_RESUME, ref, resumer) < 0) return callback_failed(c);
    if (push(ts, frame, s.call, s.code_idx, s.task) < 0) return callback_failed(c);
    Py_RETURN_NONE;
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

/* An exception leaving a frame. Remembered (for any code) so that the RAISE it then fires
 * in the caller's frame is recognised as the same exception travelling, not a new one. */
static PyObject *
cb_py_unwind(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    if (!c->active || nargs < 3) Py_RETURN_NONE;
    PyCodeObject *co = CODE_ARG(args);
    PyThreadState *tstate = PyThreadState_Get();
    _PyInterpreterFrame *frame = CURRENT_FRAME(tstate);
    Py_ssize_t idx = code_index_known(c, co);
    ThreadState *ts = idx < 0 ? thread_state_known(c, tstate) : thread_state(c, tstate);
    if (!ts) return idx < 0 ? Py_NewRef(Py_None) : callback_failed(c);
    ts->unwound = args[2];
    ts->unwound_to = frame ? frame->previous : NULL;
    if (idx < 0) Py_RETURN_NONE;
    int64_t t = now_ns();
    Py_ssize_t i = pop_target(c, ts, frame, t);
    if (i < 0) Py_RETURN_NONE;
    need_room(c);
    uint32_t v = exc_id(c, ts, args[2]);
    if (!v && PyErr_Occurred()) callback_failed(c);
    uint32_t call = ts->stack[i].call;
    ts->depth = (size_t)i;
    if (add_exit(c, call, t, END_RAISE, v) < 0) return callback_failed(c);
    Py_RETURN_NONE;
}

/* RAISE / RERAISE / EXCEPTION_HANDLED (they fire for every frame and cannot be disabled). */
static PyObject *
exc_event(CoreObject *c, PyObject *const *args, Py_ssize_t nargs, int kind)
{
    if (!c->active || nargs < 3) Py_RETURN_NONE;
    PyCodeObject *co = CODE_ARG(args);
    PyObject *exc = args[2];
    PyThreadState *tstate = PyThreadState_Get();
    _PyInterpreterFrame *frame = CURRENT_FRAME(tstate);
    Py_ssize_t idx = code_index_known(c, co);
    ThreadState *ts = idx < 0 ? thread_state_known(c, tstate) : thread_state(c, tstate);
    if (!ts) return idx < 0 ? Py_NewRef(Py_None) : callback_failed(c);
    int travelling = 0;
    if (kind == MARK_RAISE) {
        /* A RAISE right after the exception left this frame's callee is the same exception
         * travelling up; any other RAISE is a (re)raise here: its text is made afresh, as
         * the cached one may belong to a dead exception that had the same address. */
        travelling = exc == ts->unwound && frame == ts->unwound_to;
        if (!travelling) ts->exc_ptr = NULL;
    }
    ts->unwound = NULL;
    if (idx < 0 || kind == 0) Py_RETURN_NONE;   /* not recorded, or RERAISE */
    if (!ts->depth || ts->stack[ts->depth - 1].frame != frame) Py_RETURN_NONE;
    if (travelling) Py_RETURN_NONE;
    int64_t t = now_ns();
    need_room(c);
    uint32_t ref = exc_id(c, ts, exc);
    if (!ref && PyErr_Occurred()) callback_failed(c);
    if (add_mark(c, ts->stack[ts->depth - 1].call, t, (uint8_t)kind, ref, 0) < 0) return callback_failed(c);
    Py_RETURN_NONE;
}

static PyObject *
cb_raise(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return exc_event((CoreObject *)self, args, nargs, MARK_RAISE);
}

static PyObject *
cb_reraise(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return exc_event((CoreObject *)self, args, nargs, 0);
}

static PyObject *
cb_exception_handled(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return exc_event((CoreObject *)self, args, nargs, MARK_HANDLED);
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
}

static PyObject *
core_start(CoreObject *c, PyObject *Py_UNUSED(ignored))
{
    if (active_core && active_core != c && active_core->active) {
        PyErr_SetString(PyExc_RuntimeError, "another C recorder is already recording in this process");
        return NULL;
    }
    clear_pending(c);
    clear_codes(c);
    c->nsusp = 0;
    if (c->susp) memset(c->susp, 0, c->capsusp * sizeof(Susp));
    /* a new generation invalidates every cached code decision and thread state at once */
    c->gen = ++generation_counter;
    if (GEN_BITS(c->gen) == 0) c->gen = ++generation_counter;
    c->call_first_id = c->next_call_id = 1;
    c->str_first_id = c->next_str_id = 1;
    c->errors = 0;
    c->active = 1;
    Py_XSETREF(active_core, (CoreObject *)Py_NewRef(c));
    Py_RETURN_NONE;
}

/* End every open call (on every thread, and every suspended generator) as unfinished. */
static PyObject *
core_stop(CoreObject *c, PyObject *Py_UNUSED(ignored))
{
    if (!c->active) Py_RETURN_NONE;
    int64_t t = now_ns();
    for (ThreadState *ts = all_threads.next; ts != &all_threads; ts = ts->next)
        if (ts->gen == c->gen) { end_open_calls(c, ts, t); ts->gen = 0; }
    for (size_t i = 0; i < c->capsusp; i++)
        if (c->susp[i].frame) {
            add_exit(c, c->susp[i].call, t, END_UNFINISHED, 0);
            c->susp[i].frame = NULL;
        }
    c->nsusp = 0;
    c->active = 0;
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* ---- drain: swap the rows out, then build column bytes and texts ---- */

static PyObject *
col_u32(const void *rows, size_t n, size_t stride, size_t off)
{
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 4));
    if (!b) return NULL;
    uint32_t *out = (uint32_t *)PyBytes_AS_STRING(b);
    const char *p = (const char *)rows + off;
    for (size_t i = 0; i < n; i++, p += stride) memcpy(&out[i], p, 4);
    return b;
}

static PyObject *
col_i64(const void *rows, size_t n, size_t stride, size_t off)
{
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 8));
    if (!b) return NULL;
    int64_t *out = (int64_t *)PyBytes_AS_STRING(b);
    const char *p = (const char *)rows + off;
    for (size_t i = 0; i < n; i++, p += stride) memcpy(&out[i], p, 8);
    return b;
}

static PyObject *
col_u8(const void *rows, size_t n, size_t stride, size_t off)
{
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (!b) return NULL;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(b);
    const char *p = (const char *)rows + off;
    for (size_t i = 0; i < n; i++, p += stride) out[i] = (uint8_t)*p;
    return b;
}

/* ---- rendering at drain time: the reference's value_text / args_text, in C ---- */

#define MAX_STRING 60     /* reprs.MAX_STRING */
#define MAX_TEXT 240      /* reprs.MAX_TEXT */

typedef struct {
    PyObject *render_obj;   /* reprs.value_text for the rare immutables (big int, complex...) */
    PyObject *type_label;   /* cls -> "module.Class" (the placeholder's name) */
    PyObject *labels;       /* dict type -> label, for this drain */
} RenderCtx;

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
    case V_INT:
        n = snprintf(buf, sizeof buf, "%lld", (long long)s->u.i);
        return text_add(t, buf, (size_t)n, (size_t)n);
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
    case V_OPAQUE: {
        PyObject *label = PyDict_GetItemWithError(rc->labels, s->o);   /* borrowed */
        if (!label) {
            if (PyErr_Occurred()) return -1;
            label = PyObject_CallOneArg(rc->type_label, s->o);
            if (!label) return -1;
            int r = PyDict_SetItem(rc->labels, s->o, label);
            Py_DECREF(label);   /* the dict holds it */
            if (r < 0) return -1;
        }
        snprintf(buf, sizeof buf, "%llx", (unsigned long long)s->u.addr);
        u = cut_text(PyUnicode_FromFormat("<%U object at 0x%s>", label, buf), MAX_TEXT);
        break;
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

/* The text of one string entry (a value, or a whole argument list). */
static PyObject *
render_entry(CoreObject *c, RenderCtx *rc, StrEntry *e, Slot *slots, Text *t)
{
    t->len = t->nchars = 0;
    if (e->kind == S_VALUE) {
        if (render_slot(rc, t, &slots[e->slot_off], 0) < 0) return NULL;
        return PyUnicode_DecodeUTF8(t->p ? t->p : "", (Py_ssize_t)t->len, "surrogatepass");
    }
    CodeInfo *ci = &c->codes[e->code_idx];
    for (uint32_t k = 0; k < e->nslots; k++) {
        if (k && text_add(t, ", ", 2, 2) < 0) return NULL;
        if (text_add_str(t, PyTuple_GET_ITEM(ci->names, k)) < 0) return NULL;
        if (text_add(t, "=", 1, 1) < 0) return NULL;
        if (render_slot(rc, t, &slots[e->slot_off + ci->order[k]], ci->star[k]) < 0) return NULL;
    }
    PyObject *u = PyUnicode_DecodeUTF8(t->p ? t->p : "", (Py_ssize_t)t->len, "surrogatepass");
    return t->nchars > 2 * MAX_TEXT ? cut_text(u, 2 * MAX_TEXT) : u;
}

typedef struct {
    CallRow *calls; size_t ncalls; uint32_t call_first_id;
    ExitRow *exits; size_t nexits;
    MarkRow *marks; size_t nmarks;
    StrEntry *strs; size_t nstrs; uint32_t str_first_id;
    Slot *slots; size_t nslots;
} Swapped;

static PyObject *
core_drain(CoreObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "drain(render_obj, type_label)"); return NULL; }
    /* Swap everything out first (no Python code runs until this is done), so that callbacks
     * on other threads, which may run while rendering below releases the GIL, start on
     * fresh buffers. */
    Swapped w = {
        c->calls, c->ncalls, c->call_first_id, c->exits, c->nexits, c->marks, c->nmarks,
        c->strs, c->nstrs, c->str_first_id, c->slots, c->nslots,
    };
    c->calls = NULL; c->ncalls = c->capcalls = 0; c->call_first_id = c->next_call_id;
    c->exits = NULL; c->nexits = c->capexits = 0;
    c->marks = NULL; c->nmarks = c->capmarks = 0;
    c->strs = NULL; c->nstrs = c->capstrs = 0; c->str_first_id = c->next_str_id;
    c->slots = NULL; c->nslots = c->capslots = 0;
    PyObject *result = NULL, *texts = NULL;
    RenderCtx rc = {args[0], args[1], PyDict_New()};
    Text tb = {NULL, 0, 0, 0};
    if (!rc.labels) goto done;
    texts = PyList_New((Py_ssize_t)w.nstrs);
    if (!texts) goto done;
    for (size_t i = 0; i < w.nstrs; i++) {
        StrEntry *e = &w.strs[i];
        PyObject *t = e->kind == S_TEXT ? Py_NewRef(e->text) : render_entry(c, &rc, e, w.slots, &tb);
        if (!t) {
            /* one unreadable value must not lose the batch: say so in its place */
            PyErr_Clear();
            t = PyUnicode_FromString("<unreadable>");
            if (!t) goto done;
        }
        PyList_SET_ITEM(texts, (Py_ssize_t)i, t);
    }
    result = PyDict_New();
    if (!result) goto done;
    struct { const char *name; PyObject *value; } items[] = {
        {"call_first_id", PyLong_FromUnsignedLong(w.call_first_id)},
        {"strings_first_id", PyLong_FromUnsignedLong(w.str_first_id)},
        {"call_parent", col_u32(w.calls, w.ncalls, sizeof(CallRow), offsetof(CallRow, par))},
        {"call_func", col_u32(w.calls, w.ncalls, sizeof(CallRow), offsetof(CallRow, fn))},
        {"call_thread", col_u32(w.calls, w.ncalls, sizeof(CallRow), offsetof(CallRow, thr))},
        {"call_t0", col_i64(w.calls, w.ncalls, sizeof(CallRow), offsetof(CallRow, t0))},
        {"call_args", col_u32(w.calls, w.ncalls, sizeof(CallRow), offsetof(CallRow, args))},
        {"call_task", col_u32(w.calls, w.ncalls, sizeof(CallRow), offsetof(CallRow, task))},
        {"call_flag", col_u8(w.calls, w.ncalls, sizeof(CallRow), offsetof(CallRow, flag))},
        {"exit_call", col_u32(w.exits, w.nexits, sizeof(ExitRow), offsetof(ExitRow, call))},
        {"exit_t1", col_i64(w.exits, w.nexits, sizeof(ExitRow), offsetof(ExitRow, t1))},
        {"exit_how", col_u8(w.exits, w.nexits, sizeof(ExitRow), offsetof(ExitRow, how))},
        {"exit_val", col_u32(w.exits, w.nexits, sizeof(ExitRow), offsetof(ExitRow, val))},
        {"mark_call", col_u32(w.marks, w.nmarks, sizeof(MarkRow), offsetof(MarkRow, call))},
        {"mark_t", col_i64(w.marks, w.nmarks, sizeof(MarkRow), offsetof(MarkRow, t))},
        {"mark_kind", col_u8(w.marks, w.nmarks, sizeof(MarkRow), offsetof(MarkRow, kind))},
        {"mark_ref", col_u32(w.marks, w.nmarks, sizeof(MarkRow), offsetof(MarkRow, ref))},
        {"mark_other", col_u32(w.marks, w.nmarks, sizeof(MarkRow), offsetof(MarkRow, othr))},
        {"strings", Py_NewRef(texts)},
    };
    int failed = 0;
    for (size_t k = 0; k < sizeof items / sizeof items[0]; k++) {
        if (!items[k].value || PyDict_SetItemString(result, items[k].name, items[k].value) < 0) failed = 1;
        Py_XDECREF(items[k].value);
    }
    if (failed) Py_CLEAR(result);
done:
    Py_XDECREF(texts);
    Py_XDECREF(rc.labels);
    PyMem_RawFree(tb.p);
    for (size_t i = 0; i < w.nstrs; i++) Py_XDECREF(w.strs[i].text);
    for (size_t i = 0; i < w.nslots; i++) Py_XDECREF(w.slots[i].o);
    PyMem_RawFree(w.calls); PyMem_RawFree(w.exits); PyMem_RawFree(w.marks);
    PyMem_RawFree(w.strs); PyMem_RawFree(w.slots);
    return result;
}

static PyObject *
core_pending(CoreObject *c, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(nnnnn)", (Py_ssize_t)c->ncalls, (Py_ssize_t)c->nexits,
                         (Py_ssize_t)c->nmarks, (Py_ssize_t)c->nstrs, (Py_ssize_t)c->nsusp);
}

static PyObject *
core_stats(CoreObject *c, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("{sKsKsnsn}", "errors", (unsigned long long)c->errors,
                         "flush_requests", (unsigned long long)c->flush_requests,
                         "codes", (Py_ssize_t)c->ncodes, "suspended", (Py_ssize_t)c->nsusp);
}

/* ------------------------------------------------------------------------------------ */
/* The Core type                                                                          */

static int
core_init(CoreObject *c, PyObject *args, PyObject *kw)
{
    static char *names[] = {"args_mode", "on_code", "on_thread", "exc_text", "repr_now", "on_full", "limit", NULL};
    int mode = 1;
    Py_ssize_t limit = 1 << 16;
    PyObject *on_code, *on_thread, *exc_text, *repr_now, *on_full = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iOOOO|On", names, &mode, &on_code, &on_thread,
                                     &exc_text, &repr_now, &on_full, &limit))
        return -1;
    if (c->active) { PyErr_SetString(PyExc_RuntimeError, "recorder is running"); return -1; }
    c->args_mode = mode;
    Py_XSETREF(c->on_code, Py_NewRef(on_code));
    Py_XSETREF(c->on_thread, Py_NewRef(on_thread));
    Py_XSETREF(c->exc_text, Py_NewRef(exc_text));
    Py_XSETREF(c->repr_now, Py_NewRef(repr_now));
    Py_XSETREF(c->on_full, Py_NewRef(on_full));
    c->limit = limit > 16 ? (size_t)limit : 16;
    return 0;
}

static int
core_traverse(CoreObject *c, visitproc visit, void *arg)
{
    Py_VISIT(c->on_code); Py_VISIT(c->on_thread); Py_VISIT(c->exc_text);
    Py_VISIT(c->repr_now); Py_VISIT(c->on_full);
    return 0;
}

static int
core_clear(CoreObject *c)
{
    Py_CLEAR(c->on_code); Py_CLEAR(c->on_thread); Py_CLEAR(c->exc_text);
    Py_CLEAR(c->repr_now); Py_CLEAR(c->on_full);
    return 0;
}

static void
core_dealloc(CoreObject *c)
{
    PyObject_GC_UnTrack(c);
    c->active = 0;
    clear_pending(c);
    clear_codes(c);
    core_clear(c);
    PyMem_RawFree(c->calls); PyMem_RawFree(c->exits); PyMem_RawFree(c->marks);
    PyMem_RawFree(c->strs); PyMem_RawFree(c->slots); PyMem_RawFree(c->codes);
    PyMem_RawFree(c->susp);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyObject *
core_release(CoreObject *c, PyObject *Py_UNUSED(ignored))
{
    /* forget this core as the process's active one (after stop) */
    if (active_core == c) Py_CLEAR(active_core);
    Py_RETURN_NONE;
}

static PyMethodDef core_methods[] = {
    {"py_start", (PyCFunction)(void (*)(void))cb_py_start, METH_FASTCALL, "PY_START callback"},
    {"py_resume", (PyCFunction)(void (*)(void))cb_py_resume, METH_FASTCALL, "PY_RESUME callback"},
    {"py_throw", (PyCFunction)(void (*)(void))cb_py_throw, METH_FASTCALL, "PY_THROW callback"},
    {"py_return", (PyCFunction)(void (*)(void))cb_py_return, METH_FASTCALL, "PY_RETURN callback"},
    {"py_yield", (PyCFunction)(void (*)(void))cb_py_yield, METH_FASTCALL, "PY_YIELD callback"},
    {"py_unwind", (PyCFunction)(void (*)(void))cb_py_unwind, METH_FASTCALL, "PY_UNWIND callback"},
    {"raise_", (PyCFunction)(void (*)(void))cb_raise, METH_FASTCALL, "RAISE callback"},
    {"reraise", (PyCFunction)(void (*)(void))cb_reraise, METH_FASTCALL, "RERAISE callback"},
    {"exception_handled", (PyCFunction)(void (*)(void))cb_exception_handled, METH_FASTCALL, "EXCEPTION_HANDLED callback"},
    {"start", (PyCFunction)core_start, METH_NOARGS, "Begin a session (new ids, new generation)."},
    {"stop", (PyCFunction)core_stop, METH_NOARGS, "End every open call as unfinished; stop recording."},
    {"release", (PyCFunction)core_release, METH_NOARGS, "Forget this core as the active one."},
    {"drain", (PyCFunction)(void (*)(void))core_drain, METH_FASTCALL, "drain(render_obj, type_label) -> dict of column bytes and texts."},
    {"pending", (PyCFunction)core_pending, METH_NOARGS, "(calls, exits, marks, strings, suspended) buffered."},
    {"stats", (PyCFunction)core_stats, METH_NOARGS, "Counters for tests and diagnostics."},
    {NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "flowtrace._crecorder.Core",
    .tp_basicsize = sizeof(CoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C recording core: monitoring callbacks and event buffers of one session.",
    .tp_new = PyType_GenericNew,
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

/* After fork() only the forking thread exists in the child: forget the others' states
 * (their thread-state dicts are cleared by CPython; this also covers a child that never
 * runs that). The states stay allocated: their capsules may still be freed later. */
static PyObject *
mod_after_fork(PyObject *m, PyObject *Py_UNUSED(ignored))
{
    for (ThreadState *ts = all_threads.next; ts != &all_threads; ts = ts->next)
        if (ts != tls_state) { ts->gen = 0; ts->depth = 0; ts->tstate = NULL; }
    Py_RETURN_NONE;
}

static PyMethodDef mod_methods[] = {
    {"now", (PyCFunction)mod_now, METH_NOARGS, "The recorder's clock (CLOCK_MONOTONIC ns)."},
    {"after_fork_child", (PyCFunction)mod_after_fork, METH_NOARGS, "Reset thread states in a forked child."},
    {NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "flowtrace._crecorder",
    "The C hot path of the flowtrace recorder (see flowtrace/recorder/c.py).", -1, mod_methods,
};

PyMODINIT_FUNC
PyInit__crecorder(void)
{
    if (PyType_Ready(&CoreType) < 0) return NULL;
    if (extra_index < 0) {
        extra_index = PyUnstable_Eval_RequestCodeExtraIndex(NULL);
        if (extra_index < 0) return NULL;
    }
    PyObject *mon = PyImport_ImportModule("sys");
    if (!mon) return NULL;
    PyObject *monitoring = PyObject_GetAttrString(mon, "monitoring");
    Py_DECREF(mon);
    if (!monitoring) return NULL;
    DISABLE = PyObject_GetAttrString(monitoring, "DISABLE");
    Py_DECREF(monitoring);
    if (!DISABLE) return NULL;
    thread_key = PyUnicode_InternFromString("flowtrace._crecorder.thread");
    if (!thread_key) return NULL;
    str_name = PyUnicode_InternFromString("__name__");
    if (!str_name) return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "Core", (PyObject *)&CoreType) < 0) { Py_DECREF(m); return NULL; }
    return m;
}
