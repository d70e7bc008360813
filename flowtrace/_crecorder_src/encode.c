/* flowtrace._crecorder: the drain -- rows straight to the CALL / EXIT / MARK chunk payloads
 * (varint columns, docs/FORMAT.md 1.2), texts to the STRS payload -- and the varint decoder
 * that the readers use (flowtrace/ftr/format.py; it has a pure-Python twin). */
#include "crecorder.h"

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

/* ---- drain: swap the rows out, render and number the texts, encode the payloads ---- */

typedef struct {
    CallCols calls; size_t ncalls; uint32_t call_first_id; size_t capcalls;
    ExitCols exits; size_t nexits; size_t capexits;
    MarkRow *marks; size_t nmarks; size_t capmarks;
    StrEntry *strs; size_t nstrs; size_t capstrs;
    Slot *slots; size_t nslots; size_t capslots;
} Swapped;

/* The previous batch's call and exit buffers, for the next drain of any core to swap in:
 * fresh memory costs a page fault per 4 KiB page (~70 ns a call when every batch had new
 * buffers), and regrowing copies everything. Touched only under the GIL, by code that runs
 * no Python (so no other drain can interleave). */
static CallCols spare_calls; static size_t cap_spare_calls;
static ExitCols spare_exits; static size_t cap_spare_exits;

/* ---- column chunk payloads (docs/FORMAT.md, "Column chunks": encodings 2-4, format 1.2) ----
 * Each column is LEB128 varints: of the zigzagged steps between neighbouring rows (2, for
 * ids and times that move in small steps), of the values themselves (3), or one value for
 * every row (4, a constant column: the thread of a one-thread program, how = return). A call
 * without arguments costs ~5-8 bytes this way, about what zlib level 1 made of the fixed-width
 * columns, at ~15 ns a call instead of zlib's ~90-150 (measured: the commit message), so the
 * column chunks are stored as they are. */
typedef struct { unsigned char *p; size_t len, cap; } Out;
static Out scratch;   /* the payload being built (one for the module: under the GIL, no Python) */

static int
out_reserve(Out *o, size_t more)
{
    if (o->len + more <= o->cap) return 0;
    size_t ncap = o->cap ? o->cap : 65536;
    while (ncap < o->len + more) ncap *= 2;
    unsigned char *p = PyMem_RawRealloc(o->p, ncap);
    if (!p) { PyErr_NoMemory(); return -1; }
    o->p = p;
    o->cap = ncap;
    return 0;
}

static inline unsigned char *
put_varint(unsigned char *q, uint64_t v)
{
    while (v >= 0x80) { *q++ = (unsigned char)(v | 0x80); v >>= 7; }
    *q++ = (unsigned char)v;
    return q;
}

static inline uint64_t
zigzag(int64_t d)
{
    return ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
}

static inline unsigned char *
put_le(unsigned char *q, uint64_t v, int nbytes)
{
    for (int i = 0; i < nbytes; i++) *q++ = (unsigned char)(v >> (8 * i));
    return q;
}

/* One column to encode: `rows` values of `width` bytes (1 u8, 4 u32, 8 i64) at v. */
typedef struct { const char *name; char tc; const void *v; uint8_t width, delta; } ColSpec;

#define ALL_SAME(T) do { const T *v_ = s->v; for (size_t i = 1; i < n; i++) if (v_[i] != v_[0]) return 0; \
                         *first = (int64_t)v_[0]; return 1; } while (0)
static int
all_same(const ColSpec *s, size_t n, int64_t *first)
{
    if (s->width == 8) ALL_SAME(int64_t);
    if (s->width == 4) ALL_SAME(uint32_t);
    ALL_SAME(uint8_t);
}
#undef ALL_SAME

#define VARINTS(T) do { const T *v_ = s->v; \
        if (s->delta) { int64_t prev = 0; \
            for (size_t i = 0; i < n; i++) { int64_t x = (int64_t)v_[i]; q = put_varint(q, zigzag((int64_t)((uint64_t)x - (uint64_t)prev))); prev = x; } \
        } else for (size_t i = 0; i < n; i++) q = put_varint(q, (uint64_t)(int64_t)v_[i]); } while (0)
static unsigned char *
put_varints(unsigned char *q, const ColSpec *s, size_t n)
{
    if (s->width == 8) VARINTS(int64_t);
    else if (s->width == 4) VARINTS(uint32_t);
    else VARINTS(uint8_t);
    return q;
}
#undef VARINTS

/* A CALL / EXIT / MARK payload: the columns header, the descriptors, then each column as
 * u32 byte count + its varints. A new bytes object, or NULL with an exception set. */
static PyObject *
columns_payload(uint64_t base, size_t rows, const ColSpec *cols, int ncols)
{
    Out *o = &scratch;
    o->len = 0;
    if (out_reserve(o, 16 + (size_t)ncols * (8 + 4 + 10 * rows)) < 0) return NULL;
    unsigned char *q = o->p;
    q = put_le(q, base, 8); q = put_le(q, rows, 4); q = put_le(q, (uint64_t)ncols, 2); q = put_le(q, 0, 2);
    unsigned char *desc = q;
    q += 8 * (size_t)ncols;
    for (int k = 0; k < ncols; k++) {
        const ColSpec *s = &cols[k];
        int64_t one = 0;
        int constant = all_same(s, rows, &one);
        unsigned char *d = desc + 8 * k;
        memset(d, ' ', 4);
        memcpy(d, s->name, strlen(s->name));
        d[4] = (unsigned char)s->tc;
        d[5] = constant ? ENC_CONST : (s->delta ? ENC_VARINT_DELTA : ENC_VARINT);
        d[6] = d[7] = 0;
        unsigned char *body = q + 4;
        q = constant ? put_varint(body, (uint64_t)one) : put_varints(body, s, rows);
        put_le(body - 4, (uint64_t)(q - body), 4);
    }
    o->len = (size_t)(q - o->p);
    return PyBytes_FromStringAndSize((const char *)o->p, (Py_ssize_t)o->len);
}

static int
any_nonzero(const void *v, size_t n, int width)
{
    const unsigned char *b = v;
    for (size_t i = 0; i < n * (size_t)width; i++) if (b[i]) return 1;
    return 0;
}

/* The CALL, EXIT and MARK payloads of one batch (each None when it has no rows). Times are
 * converted to ns relative to `origin` and string ids renumbered, in place. */
static int
encode_rows(Swapped *w, const TickMap *tmap, int64_t origin, const uint32_t *remap, size_t nfold, PyObject *out[3])
{
    CallCols *cc = &w->calls;
    size_t n = w->ncalls;
    for (size_t i = 0; i < n; i++) {
        cc->args[i] = (cc->args[i] && cc->args[i] <= w->nstrs) ? remap[cc->args[i] - 1] : 0;
        cc->t0[i] = tick_to_ns(tmap, cc->t0[i]) - origin;
    }
    ColSpec call[7] = {{"par", 'I', cc->par, 4, 1}, {"fn", 'I', cc->fn, 4, 0}, {"thr", 'I', cc->thr, 4, 0},
                       {"t0", 'q', cc->t0, 8, 1}};
    int k = 4;   /* optional columns: left out when every row is 0 (readers default to 0) */
    if (any_nonzero(cc->args, n, 4)) call[k++] = (ColSpec){"args", 'I', cc->args, 4, 0};
    if (any_nonzero(cc->task, n, 4)) call[k++] = (ColSpec){"task", 'I', cc->task, 4, 0};
    if (any_nonzero(cc->flag, n, 1)) call[k++] = (ColSpec){"flag", 'B', cc->flag, 1, 0};
    out[0] = n ? columns_payload(w->call_first_id, n, call, k) : Py_NewRef(Py_None);
    if (!out[0]) return -1;

    ExitCols *ec = &w->exits;
    n = w->nexits;
    for (size_t i = 0; i < n; i++) {
        ec->val[i] = (ec->val[i] && ec->val[i] <= w->nstrs) ? remap[ec->val[i] - 1] : 0;
        ec->t1[i] = tick_to_ns(tmap, ec->t1[i]) - origin;
    }
    ColSpec exit[4] = {{"call", 'I', ec->call, 4, 1}, {"t1", 'q', ec->t1, 8, 1}, {"how", 'B', ec->how, 1, 0}};
    k = 3;
    if (any_nonzero(ec->val, n, 4)) exit[k++] = (ColSpec){"val", 'I', ec->val, 4, 0};
    out[1] = n ? columns_payload(0, n, exit, k) : Py_NewRef(Py_None);
    if (!out[1]) return -1;

    /* marks (few) are rows: made into columns first */
    n = w->nmarks;
    if (!n) { out[2] = Py_NewRef(Py_None); return 0; }
    unsigned char *mem = PyMem_RawMalloc(n * (4 + 8 + 1 + 4 + 4 + 4 + 8 + 8));
    if (!mem) { PyErr_NoMemory(); return -1; }
    int64_t *mt = (int64_t *)mem, *frun = mt + n, *fspan = frun + n;
    uint32_t *mc = (uint32_t *)(fspan + n), *mr = mc + n, *mo = mr + n, *fn_ = mo + n;
    uint8_t *mk = (uint8_t *)(fn_ + n);
    for (size_t i = 0; i < n; i++) {
        const MarkRow *r = &w->marks[i];
        int64_t t = tick_to_ns(tmap, r->t);
        mc[i] = r->call; mt[i] = t - origin; mk[i] = r->kind; mo[i] = r->othr;
        mr[i] = (r->ref && r->ref <= w->nstrs) ? remap[r->ref - 1] : 0;
        int fold = r->kind == MARK_FOLD;
        fn_[i] = fold ? r->n : 0;
        /* both ends through the same monotonic map: 0 <= run <= span in ns too */
        frun[i] = fold ? tick_to_ns(tmap, r->t + r->run) - t : 0;
        fspan[i] = fold ? tick_to_ns(tmap, r->t2) - t : 0;
    }
    ColSpec mark[8] = {{"call", 'I', mc, 4, 1}, {"t", 'q', mt, 8, 1}, {"kind", 'B', mk, 1, 0},
                       {"ref", 'I', mr, 4, 0}, {"othr", 'I', mo, 4, 0},
                       {"n", 'I', fn_, 4, 0}, {"run", 'q', frun, 8, 0}, {"span", 'q', fspan, 8, 0}};
    out[2] = columns_payload(0, n, mark, nfold ? 8 : 5);   /* fold columns only with folds (1.1) */
    PyMem_RawFree(mem);
    return out[2] ? 0 : -1;
}

PyObject *
core_drain(CoreObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) { PyErr_SetString(PyExc_TypeError, "drain(render_obj, type_label, origin_ns)"); return NULL; }
    int64_t origin = PyLong_AsLongLong(args[2]);
    if (origin == -1 && PyErr_Occurred()) return NULL;
    /* Swap everything out first (no Python code runs until this is done): callbacks on other
     * threads, which may run while rendering releases the GIL, start on fresh buffers. */
    Swapped w = {
        c->calls, c->ncalls, c->call_first_id, c->capcalls, c->exits, c->nexits, c->capexits,
        c->marks, c->nmarks, c->capmarks, c->strs, c->nstrs, c->capstrs, c->slots, c->nslots, c->capslots,
    };
    c->calls = spare_calls; c->capcalls = cap_spare_calls; memset(&spare_calls, 0, sizeof spare_calls); cap_spare_calls = 0;
    c->exits = spare_exits; c->capexits = cap_spare_exits; memset(&spare_exits, 0, sizeof spare_exits); cap_spare_exits = 0;
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
        PyObject *payloads[3] = {NULL, NULL, NULL};
        int failed = encode_rows(&w, &tmap, origin, remap, nfold, payloads) < 0;
        /* format.encode_strings' payload, built from the UTF-8 already at hand: <II header
         * (first id, count), count + 1 u32 offsets (little-endian), the texts */
        PyObject *strs_payload = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(8 + offs.len + blob.len));
        if (strs_payload) {
            unsigned char *q = (unsigned char *)PyBytes_AS_STRING(strs_payload);
            q = put_le(q, first_sid, 4);
            q = put_le(q, (uint64_t)PyList_GET_SIZE(texts), 4);
            for (size_t i = 0; i < offs.len; i += 4) {   /* (offs holds native u32s) */
                uint32_t v;
                memcpy(&v, offs.p + i, 4);
                q = put_le(q, v, 4);
            }
            if (blob.len) memcpy(q, blob.p, blob.len);
        }
        struct { const char *name; PyObject *value; } items[] = {
            {"call_payload", payloads[0]}, {"exit_payload", payloads[1]}, {"mark_payload", payloads[2]},
            {"calls", PyLong_FromSize_t(w.ncalls)},
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
    if (!spare_calls.par) { spare_calls = w.calls; cap_spare_calls = w.capcalls; } else free_calls(&w.calls);
    if (!spare_exits.call) { spare_exits = w.exits; cap_spare_exits = w.capexits; } else free_exits(&w.exits);
    KEEP_SPARE(w.marks, w.capmarks, c->spare_marks, c->cap_spare_marks);
    KEEP_SPARE(w.strs, w.capstrs, c->spare_strs, c->cap_spare_strs);
    KEEP_SPARE(w.slots, w.capslots, c->spare_slots, c->cap_spare_slots);
    return result;
}

/* ---- the readers' side: decode_varints(body, rows, encoding) -> bytes of rows i64 values ----
 * (flowtrace/ftr/format.py calls it when the extension is built; its pure-Python twin gives
 * the same values). ValueError when the body does not hold exactly `rows` values. */
static int
get_varint(const unsigned char **pp, const unsigned char *end, uint64_t *out)
{
    const unsigned char *p = *pp;
    uint64_t v = 0;
    for (int shift = 0; p < end && shift < 64; shift += 7) {
        unsigned char b = *p++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) { *pp = p; *out = v; return 0; }
    }
    return -1;   /* cut short, or longer than 64 bits */
}

PyObject *
mod_decode_varints(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) { PyErr_SetString(PyExc_TypeError, "decode_varints(body, rows, encoding)"); return NULL; }
    Py_ssize_t rows = PyLong_AsSsize_t(args[1]);
    long enc = PyLong_AsLong(args[2]);
    if (PyErr_Occurred()) return NULL;
    if (rows < 0 || rows > PY_SSIZE_T_MAX / 8 || (enc != ENC_VARINT_DELTA && enc != ENC_VARINT && enc != ENC_CONST)) {
        PyErr_SetString(PyExc_ValueError, "bad row count or encoding");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *p = view.buf, *end = p + view.len;
    PyObject *out = PyBytes_FromStringAndSize(NULL, rows * 8);
    int ok = out != NULL;
    if (ok) {
        unsigned char *q = (unsigned char *)PyBytes_AS_STRING(out);
        uint64_t v = 0, acc = 0;
        if (enc == ENC_CONST) {
            ok = get_varint(&p, end, &v) == 0;
            for (Py_ssize_t i = 0; ok && i < rows; i++) put_le(q + 8 * i, v, 8);
        } else {
            for (Py_ssize_t i = 0; ok && i < rows; i++) {
                ok = get_varint(&p, end, &v) == 0;
                acc = enc == ENC_VARINT_DELTA ? acc + ((v >> 1) ^ (0 - (v & 1))) : v;   /* zigzag back, summed */
                put_le(q + 8 * i, acc, 8);
            }
        }
        ok = ok && p == end;
        if (!ok) {
            Py_CLEAR(out);
            PyErr_SetString(PyExc_ValueError, "a varint column does not hold its rows");
        }
    }
    PyBuffer_Release(&view);
    return out;
}
