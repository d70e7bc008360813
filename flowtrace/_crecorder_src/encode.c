/* flowtrace._crecorder: the drain -- rows to the Batch's columns, texts to the STRS payload. */
#include "crecorder.h"

/* An array.array of `n` zeros with typecode `tc` (array('I', [0]) * n: one allocation and a
 * fill, no Python int per item); the drain writes the values into its buffer. */
PyObject *array_type;
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
int array_adopt_ok;

static size_t
typecode_size(char tc)
{
    return tc == 'q' ? 8 : (tc == 'B' ? 1 : 4);
}

PyObject *
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
PyObject *
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
int
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

void
free_calls(CallCols *k)
{
    PyMem_Free(k->par); PyMem_Free(k->fn); PyMem_Free(k->thr); PyMem_Free(k->args);
    PyMem_Free(k->task); PyMem_Free(k->t0); PyMem_Free(k->flag);
    memset(k, 0, sizeof *k);
}

void
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

/* The steps between neighbouring ids (item 0: the first id itself) as a new 'i' column;
 * *wide is set when a step does not fit in 32 bits (the column is then left unused). */
static PyObject *
id_steps(const uint32_t *ids, size_t n, int *wide)
{
    int32_t *d = NULL;
    PyObject *col = new_column('i', n, (void **)&d);
    int64_t prev = 0;
    for (size_t i = 0; col && i < n; i++) {
        int64_t step = (int64_t)ids[i] - prev;
        prev = ids[i];
        if (step < INT32_MIN || step > INT32_MAX) *wide = 1;
        d[i] = (int32_t)step;
    }
    return col;
}

PyObject *
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
    size_t kept = 0, nfold = 0;   /* marks dropped by a re-raise or a fold go */
    for (size_t i = 0; i < w.nmarks; i++) {
        if (w.marks[i].kind) w.marks[kept++] = w.marks[i];
        nfold += w.marks[i].kind == MARK_FOLD;
    }
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
        uint32_t *fin = small_final(c, e, w.slots);   /* a small int's text seen before: its id */
        if (fin && *fin) { remap[i] = *fin; continue; }
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
        if ((fin = small_final(c, e, w.slots))) *fin = sid;   /* (re-read: rendering may run Python) */
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
        if ((fin = small_final(c, e, w.slots))) *fin = sid;
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
#define NCOLS 24
        static const char *cn[NCOLS] = {"call_parent", "call_func", "call_thread", "call_t0", "call_args",
                                   "call_task", "call_flag", "exit_call", "exit_t1", "exit_how", "exit_val",
                                   "mark_call", "mark_t", "mark_kind", "mark_ref", "mark_other",
                                   "call_t0_deltas", "exit_t1_deltas", "mark_t_deltas",
                                   "call_parent_deltas", "exit_call_deltas",
                                   "mark_n", "mark_run", "mark_span"};   /* (the last three: only with folds) */
        static const char tcs[] = "IIIqIIBIqBI";   /* the adopted call and exit buffers */
        PyObject *arr[NCOLS] = {NULL};
        int failed = 0, wide[5] = {0, 0, 0, 0, 0};   /* the 5 step columns (16-20): too wide */
        int64_t prev = 0;
#define DELTA(d, i, t, k) do { \
                int64_t step_ = (t) - prev; prev = (t); \
                if (i && (step_ < INT32_MIN || step_ > INT32_MAX)) wide[k] = 1; \
                d[i] = i ? (int32_t)step_ : 0; } while (0)
        CallCols *cc = &w.calls;
        int32_t *d0 = NULL, *d1 = NULL, *d2 = NULL;
        /* The parent and exit-call id columns as deltas too (item 0 stored as is): steps
         * between neighbouring rows are small, so zlib -- on the writer thread -- gets
         * low-entropy bytes: ~2.3x less output and ~2.4x less time for a recursive workload. */
        arr[19] = id_steps(cc->par, w.ncalls, &wide[3]);
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
        arr[20] = id_steps(ec->call, w.nexits, &wide[4]);
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
        uint32_t *fn_ = NULL;
        int64_t *frun = NULL, *fspan = NULL;
        int ncols = nfold ? NCOLS : NCOLS - 3;
        if (nfold) {
            arr[21] = new_column('I', w.nmarks, (void **)&fn_);
            arr[22] = new_column('q', w.nmarks, (void **)&frun);
            arr[23] = new_column('q', w.nmarks, (void **)&fspan);
        }
        for (int k = 0; k < ncols; k++) if (!arr[k]) failed = 1;
        if (!failed) {
            for (size_t i = 0; i < w.nmarks; i++) {
                const MarkRow *r = &w.marks[i];
                int64_t t = tick_to_ns(&tmap, r->t);
                mc[i] = r->call; mt[i] = t; mk[i] = r->kind; mo[i] = r->othr;
                mr[i] = (r->ref && r->ref <= w.nstrs) ? remap[r->ref - 1] : 0;
                DELTA(d2, i, t, 2);
                if (!nfold) continue;
                int fold = r->kind == MARK_FOLD;
                fn_[i] = fold ? r->n : 0;
                /* both ends through the same monotonic map: 0 <= run <= span in ns too */
                frun[i] = fold ? tick_to_ns(&tmap, r->t + r->run) - t : 0;
                fspan[i] = fold ? tick_to_ns(&tmap, r->t2) - t : 0;
            }
        }
#undef DELTA
        for (int k = 0; k < ncols; k++) {
            PyObject *v = (k >= 16 && k < 21 && wide[k - 16]) ? Py_None : arr[k];   /* (a step too wide: None) */
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
