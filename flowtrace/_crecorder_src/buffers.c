/* flowtrace._crecorder: growing the row buffers, provisional texts, and what a failing callback does. */
#include "crecorder.h"

int
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

/* The first capacity of a batch's call or exit columns: with a backpressure cap, enough for a
 * batch of that many rows at once (its power of two, up to 2^20), else 1024. Growing by doubling
 * from 1024 copied each column at every step (realloc: ~2.8 M instructions on benchmarks' fib
 * at scale 3, ~16 a call; ~2% of the --no-args overhead), for each of the two sets that
 * alternate (encode.c's spares). The memory is only reserved: a page costs when first written,
 * as it did when a copy wrote it. */
static size_t
first_cap(const CoreObject *c)
{
    if (c->overflow_rows == SIZE_MAX) return 1024;
    size_t cap = 1024;
    while (cap < c->overflow_rows && cap < ((size_t)1 << 20)) cap *= 2;
    return cap;
}

/* Double the capacity of a set of column buffers (all or nothing: a failure keeps the old
 * capacity, and a buffer already grown is merely larger than needed). */
static int
grow_cols(void **cols[], const size_t sizes[], int ncols, size_t *cap, size_t first)
{
    size_t ncap = *cap ? *cap * 2 : first;
    for (int k = 0; k < ncols; k++) {
        void *p = PyMem_RawRealloc(*cols[k], ncap * sizes[k]);
        if (!p) { PyErr_NoMemory(); return -1; }
        *cols[k] = p;
    }
    *cap = ncap;
    return 0;
}

int
grow_exits(CoreObject *c)
{
    void **cols[] = {(void **)&c->exits.call, (void **)&c->exits.val, (void **)&c->exits.t1, (void **)&c->exits.how};
    static const size_t sizes[] = {4, 4, 8, 1};
    return grow_cols(cols, sizes, 4, &c->capexits, first_cap(c));
}

int
grow_calls(CoreObject *c)
{
    CallCols *k = &c->calls;
    void **cols[] = {(void **)&k->par, (void **)&k->fn, (void **)&k->thr, (void **)&k->args, (void **)&k->task,
                     (void **)&k->t0, (void **)&k->flag};
    static const size_t sizes[] = {4, 4, 4, 4, 4, 8, 1};
    return grow_cols(cols, sizes, 7, &c->capcalls, first_cap(c));
}

/* The mark rows' buffer, full: doubled, or first sized as the columns are (first_cap). */
int
grow_marks(CoreObject *c)
{
    size_t need = c->capmarks ? c->capmarks * 2 : first_cap(c);
    return grow((void **)&c->marks, &c->capmarks, need, sizeof(MarkRow));
}

/* A provisional string id for a text made now (steals `text`; 0 if NULL). */
uint32_t
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

/* A failure inside a callback must never reach the traced program: count it and clear it.
 * BaseExceptions that are not Exceptions (KeyboardInterrupt, SystemExit raised by a signal
 * handler that ran inside a hook) are let through, so Ctrl-C still works. */
PyObject *
callback_failed(CoreObject *c)
{
    c->errors++;
    PyObject *exc = PyErr_GetRaisedException();
    if (exc && !PyErr_GivenExceptionMatches(exc, PyExc_Exception)) {
        hook_traceback_cut(exc);   /* (the program's: raised at the monitored instruction) */
        PyErr_SetRaisedException(exc);
        return NULL;
    }
    Py_XDECREF(exc);
    Py_RETURN_NONE;
}

/* Same, for a failure whose event row is still worth writing (e.g. a value text failed); an
 * exception of the program's that a hook's Python code met (a signal handler's KeyboardInterrupt)
 * goes back to it, at its next check (guard.c). */
void
soft_fail(CoreObject *c)
{
    if (PyErr_Occurred() && !hook_exception_to_program()) { c->errors++; PyErr_Clear(); }
}
