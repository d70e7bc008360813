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

/* A drain's payloads (STRS, CALL, EXIT, MARK) are bytes objects of up to a few hundred KB each:
 * made of fresh memory at every drain, they were faulted in page by page (the C library gives
 * such blocks back to the system when they are freed: ~3,100 of a threaded run's ~5,000 page
 * faults came from the STRS payload alone, perf -e page-faults). The last SPARE_PAYLOADS made are
 * kept here, and one that nothing else holds any more (written by the writer and dropped: no
 * reference, no view) is resized and handed out again. Memory stays bounded when the writer lags:
 * the payloads it holds are not taken, and at most SPARE_PAYLOADS are kept besides. (GIL) */
#define SPARE_PAYLOADS 8
static PyObject *spare_payloads[SPARE_PAYLOADS];

/* Each spare's room: the bytes its block holds (the largest size it was made or resized to).
 * A spare handed out for fewer bytes keeps its block and only says the smaller size (ob_size):
 * resized down, the C library gave its tail pages back to the system (mremap), and the next
 * larger payload faulted them in again, page by page. */
static size_t spare_room[SPARE_PAYLOADS];

/* The free spare that fits `size` best: the smallest room at least that large, else the
 * largest (grown within its block where it can), or -1. */
static int
spare_fit(size_t size)
{
    int best = -1;
    for (int k = 0; k < SPARE_PAYLOADS; k++) {
        PyObject *p = spare_payloads[k];
        if (!p || Py_REFCNT(p) != 1) continue;
        size_t n = spare_room[k], b = best < 0 ? 0 : spare_room[best];
        if (best < 0 || (n >= size ? b < size || n < b : b < size && n > b)) best = k;
    }
    return best;
}

/* Is tracemalloc tracing? Then no payload is kept: a bytes object is Python's memory, and a
 * program that measures its own with tracemalloc must not count ours (crecorder.h, the
 * recorder's own memory). (_tracemalloc.is_tracing, taken at the module's import -- an import
 * here could run importlib's code, or a program's __import__ hook, inside a drain: C, no Python
 * code runs.) */
PyObject *tracemalloc_is_tracing;
static int
tracing_memory(void)
{
    if (!tracemalloc_is_tracing) return 1;
    PyObject *r = PyObject_CallNoArgs(tracemalloc_is_tracing);
    int on = !r || r == Py_True;
    Py_XDECREF(r);
    if (!r) PyErr_Clear();
    return on;
}

/* A new bytes object of `size` bytes (contents to be written) for a drain's payload: a spare
 * resized, or a new one, which is kept as a spare in a free place or the oldest's (none while
 * tracemalloc traces). NULL with an error set. */
PyObject *
payload_bytes(size_t size)
{
    static unsigned next;   /* (the slot replaced when none is free: round robin) */
    if (tracing_memory()) {
        for (int k = 0; k < SPARE_PAYLOADS; k++) Py_CLEAR(spare_payloads[k]);
        return PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    }
    int k = spare_fit(size);
    PyObject *p = NULL;
    size_t room = size;
    if (k >= 0) {
        p = spare_payloads[k];
        spare_payloads[k] = NULL;
        if (size <= spare_room[k]) {   /* its block as it is, its size told (the NUL after it, as bytes have) */
            room = spare_room[k];
            Py_SET_SIZE(p, (Py_ssize_t)size);
            PyBytes_AS_STRING(p)[size] = '\0';
        } else if (_PyBytes_Resize(&p, (Py_ssize_t)size) < 0) { PyErr_Clear(); p = NULL; }   /* (p freed then) */
        if (p) {
_Pragma("GCC diagnostic push")
_Pragma("GCC diagnostic ignored \"-Wdeprecated-declarations\"")
            ((PyBytesObject *)p)->ob_shash = -1;   /* (a hash of the old bytes, if one was taken) */
_Pragma("GCC diagnostic pop")
        }
    }
    if (!p && !(p = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size))) return NULL;
    if (k < 0) {
        for (k = 0; k < SPARE_PAYLOADS && spare_payloads[k]; k++) {}
        if (k == SPARE_PAYLOADS) k = (int)(next++ % SPARE_PAYLOADS);
    }
    Py_XSETREF(spare_payloads[k], Py_NewRef(p));
    spare_room[k] = room;
    return p;
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

/* Where each row column starts in a 4 KB page: column number `slot` (the call columns 0..6, the
 * exit columns 7..10) at slot * COL_STAGGER. Each column is a block of its own, and blocks this
 * large are page-aligned (mmap) or whole pages apart: row i of every 4-byte column fell at one
 * offset in its page, so in one set of the L1 data cache (64 sets of 64 B lines: address bits
 * 6-11), and the five 4-byte call columns and two exit columns that every call and return
 * writes took 7 of that set's 8 ways beside everything else there -- callgrind --cache-sim
 * counted ~0.3-0.8 write misses a call per column where a line of 16 rows needs 1/16. Apart,
 * the 4-byte columns stay 5 sets from each other (they move on together). The block's own
 * address is kept in the 8 bytes before the column (col_free). */
#define COL_PAGE 4096
#define COL_STAGGER 320   /* (11 columns x 5 lines fit in a page) */

/* Column `col` (NULL: none yet) of old_bytes grown to hold `bytes`, starting at its slot's place
 * in a page (its rows moved when the block's new place puts it elsewhere); NULL if no memory
 * (col unchanged). */
static void *
col_grow(void *col, size_t old_bytes, size_t bytes, int slot)
{
    char *raw = col ? ((char **)col)[-1] : NULL;
    size_t old_off = col ? (size_t)((char *)col - raw) : 0;
    char *p = PyMem_RawRealloc(raw, bytes + sizeof(char *) + COL_PAGE);
    if (!p) return NULL;
    size_t off = sizeof(char *)
                 + (((uintptr_t)slot * COL_STAGGER - (uintptr_t)(p + sizeof(char *))) & (COL_PAGE - 1));
    if (col && off != old_off) memmove(p + off, p + old_off, old_bytes);
    ((char **)(p + off))[-1] = p;
    return p + off;
}

/* Free a column col_grow made (NULL: nothing). */
void
col_free(void *col)
{
    if (col) PyMem_RawFree(((char **)col)[-1]);
}

/* Double the capacity of a set of column buffers, column k at slot slot0 + k (col_grow): all or
 * nothing -- a failure keeps the old capacity, and a buffer already grown is merely larger than
 * needed. */
static int
grow_cols(void **cols[], const size_t sizes[], int ncols, int slot0, size_t *cap, size_t first)
{
    size_t ncap = *cap ? *cap * 2 : first;
    for (int k = 0; k < ncols; k++) {
        void *p = col_grow(*cols[k], *cap * sizes[k], ncap * sizes[k], slot0 + k);
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
    return grow_cols(cols, sizes, 4, 7, &c->capexits, first_cap(c));
}

/* A batch's texts (StrEntry), their slots and packed bytes, made with room for first_cap's rows
 * -- about an entry and a slot a row, PACKED_PER_ROW bytes -- where they are not made yet: at
 * start, and for the fresh set a drain swaps in (core_drain). Grown by doubling from 256 entries,
 * each realloc copied the buffer into a new block that faulted in its pages again (~130 of the
 * ~1,700 page faults of benchmarks' threaded first run(), perf -e page-faults), and the first
 * entries come before the batch's first call row (its arguments). The memory is only reserved:
 * a page costs when first written. Without memory, a buffer stays as it was (grown then). */
#define PACKED_PER_ROW 8
void
reserve_texts(CoreObject *c)
{
    size_t rows = first_cap(c);
    void *p;
    if (!c->capstrs && (p = PyMem_RawMalloc(rows * sizeof(StrEntry)))) { c->strs = p; c->capstrs = rows; }
    if (!c->capslots && (p = PyMem_RawMalloc(rows * sizeof(Slot)))) { c->slots = p; c->capslots = rows; }
    if (!c->cappacked && (p = PyMem_RawMalloc(rows * PACKED_PER_ROW))) { c->packed = p; c->cappacked = rows * PACKED_PER_ROW; }
}

int
grow_calls(CoreObject *c)
{
    CallCols *k = &c->calls;
    void **cols[] = {(void **)&k->par, (void **)&k->fn, (void **)&k->thr, (void **)&k->args, (void **)&k->task,
                     (void **)&k->t0, (void **)&k->flag};
    static const size_t sizes[] = {4, 4, 4, 4, 4, 8, 1};
    return grow_cols(cols, sizes, 7, 0, &c->capcalls, first_cap(c));
}

/* The mark rows' buffer grown to hold `need` rows: doubled (or first sized as the columns are,
 * first_cap) until it does. A block of col_grow's at MARK_SLOT's place in a page: 64-byte aligned,
 * so a 32-byte row never straddles two cache lines (malloc's large blocks start 16 bytes into a
 * page), and its lines apart from the call and exit columns'. Freed with col_free. */
int
grow_marks(CoreObject *c, size_t need)
{
    if (need <= c->capmarks) return 0;
    size_t ncap = c->capmarks ? c->capmarks * 2 : first_cap(c);
    while (ncap < need) ncap *= 2;
    void *p = col_grow(c->marks, c->capmarks * sizeof(MarkRow), ncap * sizeof(MarkRow), MARK_SLOT);
    if (!p) { PyErr_NoMemory(); return -1; }
    c->marks = p;
    c->capmarks = ncap;
    return 0;
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
