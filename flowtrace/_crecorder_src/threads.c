/* flowtrace._crecorder: per-thread state (stacks, caches) and backpressure. */
#include "crecorder.h"

ThreadState all_threads = {.prev = &all_threads, .next = &all_threads};
_Thread_local ThreadState *tls_state __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------------------------------ */
/* Per-thread state. It is owned by a capsule stored in the thread's state dict, so it is
 * freed when the thread ends (PyThreadState_Clear, GIL held); a thread-local pointer caches
 * it for the hot path. It is reused across sessions and reset when the generation differs. */

void
end_stack(CoreObject *c, Entry *stack, size_t *depth, int64_t t)
{
    while (*depth) {
        Entry *e = &stack[--*depth];
        if (quiet_end(c, e) < 0) PyErr_Clear();   /* (no memory: that resume is lost, not the end) */
        add_exit(c, e->call, t, END_UNFINISHED, 0);
    }
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
    PyMem_RawFree(ts->stack ? ts->stack - 1 : NULL);
    PyMem_RawFree(ts);
}

/* Room for n entries on the thread's stack. Below its first entry, stack[-1], is a sentinel:
 * an entry of call 0, task 0, not quiet, that stands for "no recorded caller" -- the resumer
 * at depth 0 (callbacks.c vc_cb_py_resume reads stack[depth - 1] without testing depth). */
int
stack_reserve(ThreadState *ts, size_t n)
{
    if (n <= ts->cap) return 0;
    size_t ncap = ts->cap ? ts->cap + 1 : 256;   /* (entries with the sentinel) */
    while (ncap < n + 1) ncap *= 2;
    Entry *base = ts->stack ? ts->stack - 1 : NULL;
    Entry *p = PyMem_RawRealloc(base, ncap * sizeof(Entry));
    if (!p) { PyErr_NoMemory(); return -1; }
    if (!base) memset(p, 0, sizeof(Entry));
    ts->stack = p + 1;
    ts->cap = ncap - 1;
    return 0;
}

ThreadState *
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
        /* the sentinel below the stack (stack_reserve), its guess not a record of another session */
        if (stack_reserve(ts, 1) < 0) return NULL;
        ts->stack[-1].pred = NULL;
        ts->exc_ptr = NULL;
        ts->known = NULL;
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
            hook_runs_python(c);
            PyObject *none = Py_None;
            PyObject *r = call_in_callback(c->on_thread, &none, 1, NULL);
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


/* Backpressure (issue 3: buffers are bounded and flushed, never dropped). A program that
 * makes calls nonstop can out-run the flusher thread, which needs the GIL for the drain and
 * the writer; the rows would then pile up without bound. Past `overflow_rows` pending rows,
 * a call start or resume calls the session's overflow hook on the recording thread itself,
 * which drains and writes synchronously: the program waits for its own trace. Called last in
 * a callback, when its row and stack entry are complete (the hook runs Python: a drain may
 * swap the buffers). The thread's own events are not delivered while a monitoring callback
 * runs, so the flush is not traced; `in_overflow` guards against re-entry anyway.
 * A collection that starts in the flush (3.12 runs a due one at the hook's first eval-breaker
 * check, the collector disabled or not) runs the program's finalizers: the callback's level of
 * the tracing switch counts as our own for the hook (own_tracing), so that core.c's gc_phase
 * turns the events on for the collection and they are recorded, under the call on top of the
 * stack, as where the program runs one itself. (Before, 3.12: 20,000 cycles, collector every 10
 * allocations, a cap of 1,000 rows: 233 __del__ calls lost, all run in the hook; at the real
 * cap, 50,000, reached when load keeps the flusher from its turn, 14-16.) */
PyObject *
overflow_slow(CoreObject *c, ThreadState *ts)
{
    if (!c->overflow || ts->in_overflow) Py_RETURN_NONE;
    PyObject *hook = Py_NewRef(c->overflow);   /* release() may drop c->overflow meanwhile */
    uint64_t batch = c->batch;
    int own = own_tracing;
    own_tracing = PyThreadState_Get()->tracing;   /* (the hook's suspended() blocks pair up) */
    ts->in_overflow = 1;
    hook_runs_python(c);
    PyObject *r = call_in_callback(hook, NULL, 0, NULL);   /* (a handler run inside the flush broke it: sighold.c) */
    ts->in_overflow = 0;
    own_tracing = own;
    Py_DECREF(hook);
    /* A hook during which nothing was drained (writer closed, this thread already inside a
     * flush) must not be called again at every event: the next test is one cap further. (A
     * drain, by this thread or another, has set overflow_at back to the cap.) */
    if (c->batch == batch) c->overflow_at = c->ncalls + c->nexits + c->nmarks + c->overflow_rows;
    if (!r) return callback_failed(c);
    Py_DECREF(r);
    Py_RETURN_NONE;
}
