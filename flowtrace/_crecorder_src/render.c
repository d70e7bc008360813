/* flowtrace._crecorder: rendering captured values at drain time (reprs.py's text, in C). */
#include "crecorder.h"

/* ---- rendering at drain time: the reference's value_text / args_text, in C ---- */



/* Room for `more` bytes past t->len (the length stays): 0, or -1 with an error set. */
static int
text_grow(Text *t, size_t more)
{
    size_t ncap = t->cap ? t->cap : 256;
    while (ncap < t->len + more) ncap *= 2;
    char *p = PyMem_RawRealloc(t->p, ncap);
    if (!p) { PyErr_NoMemory(); return -1; }
    t->p = p;
    t->cap = ncap;
    return 0;
}

static inline int
text_room(Text *t, size_t more)
{
    return t->len + more <= t->cap ? 0 : text_grow(t, more);
}

/* inline: most calls add a constant piece (", ", "(", "None"), a store or two once inlined
 * (the call and memcpy were a tenth of a container's rendering) */
static inline int
text_add(Text *t, const char *s, size_t nbytes, size_t nchars)
{
    if (text_room(t, nbytes) < 0) return -1;
    memcpy(t->p + t->len, s, nbytes);
    t->len += nbytes;
    t->nchars += nchars;
    return 0;
}

/* An int in decimal, written in place two digits at a time (snprintf was a tenth of the
 * drain; a digit at a time, a tenth of a container's rendering). */
static int
text_int(Text *t, int64_t v)
{
    static const char pairs[201] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    size_t n = 1;
    for (uint64_t p = m; p >= 10; p /= 10) n++;
    n += v < 0;
    if (text_room(t, n) < 0) return -1;
    char *d = t->p + t->len + n;
    while (m >= 100) { d -= 2; memcpy(d, pairs + 2 * (m % 100), 2); m /= 100; }
    if (m >= 10) { d -= 2; memcpy(d, pairs + 2 * m, 2); }
    else *--d = (char)('0' + m);
    if (v < 0) *--d = '-';
    t->len += n;
    t->nchars += n;
    return 0;
}

static int
text_add_str(Text *t, PyObject *u)
{
    /* an ASCII str's characters are its UTF-8 (most names and texts): read in place, without
     * PyUnicode_AsUTF8AndSize's call and tests (~26 instructions; ~44 k strs in the drains
     * of flask's test_json, callgrind) */
    if (PyUnicode_IS_COMPACT_ASCII(u)) {
        size_t n = (size_t)PyUnicode_GET_LENGTH(u);
        return text_add(t, PyUnicode_DATA(u), n, n);
    }
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(u, &n);
    if (!s) return -1;
    return text_add(t, s, (size_t)n, (size_t)PyUnicode_GET_LENGTH(u));
}

static int text_label(Text *t, PyTypeObject *tp);
#define NOT_MINE 1
#define NO_LABEL 2

static int text_enum(Text *t, PyTypeObject *tp, uintptr_t addr, int depth);

/* The label of a type (recorder/c.py type_label's text), kept for the drain by the type's
 * address. Made here when text_label can say -- the names read as type_label reads them, no
 * call -- into the slot's own buffer; else by the hook (c.py type_label: a Python call and an
 * f-string, ~2,500 instructions, once per type per drain and per collision: ~60 M instructions
 * of the drains of flask's test_basic, callgrind). */
static Label *
label_for(RenderCtx *rc, PyObject *type)
{
    Label *lb = &rc->labels[ptr_hash(type) & (LABELS - 1)];
    if (lb->type == type) return lb;
    if (PyType_Check(type)) {
        Text t = {lb->buf, 0, lb->cap, 0};
        int r = text_label(&t, (PyTypeObject *)type);
        if (r == NO_LABEL) { t.len = t.nchars = 0; r = text_add(&t, "object", 6, 6); }   /* (type_label's "object") */
        lb->buf = t.p; lb->cap = t.cap;
        if (r == 0) {
            Py_CLEAR(lb->label);
            lb->type = type; lb->u = t.p; lb->len = t.len; lb->nchars = t.nchars;
            return lb;
        }
        if (r < 0) PyErr_Clear();   /* (the hook says what it can) */
    }
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

void
labels_clear(RenderCtx *rc)
{
    PyMem_RawFree(rc->lits);   /* (and render_slot's memo of texts: its objects go with the batch) */
    PyMem_RawFree(rc->lit_text.p);
    rc->lits = NULL;
    rc->lit_text = (Text){NULL, 0, 0, 0};
    for (int i = 0; i < LABELS; i++) {
        Py_CLEAR(rc->labels[i].label);
        rc->labels[i].type = NULL;
        PyMem_RawFree(rc->labels[i].buf);
        rc->labels[i].buf = NULL;
        rc->labels[i].cap = 0;
    }
}


/* reprs._cut on the part of `t` from byte b0 (char c0) on, which is longer than `limit`
 * characters: keep its first limit-3 characters and add "...". */
static int
text_cut(Text *t, size_t b0, size_t c0, size_t limit)
{
    size_t keep = limit - 3, seen = 0, i = b0;
    /* as many bytes as characters: all ASCII, the cut is at keep bytes -- no scan (the scan,
     * ~10 instructions a byte, was 3.3 M instructions of flask test_json's phase, callgrind) */
    if (t->len - b0 == t->nchars - c0) { seen = keep; i = b0 + keep; }
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
PyObject *
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

static int render_now(Text *t, PyObject *o, int depth, int safe);
static int text_builtin(Text *t, PyCFunctionObject *f);
static int text_class(Text *t, PyTypeObject *cls);
static int expand_slot(const unsigned char **pp, const unsigned char *end, const void *dict, const Label *own,
                       const RenderCtx *rc,
                       uint64_t *prev, Text *out, int depth);

/* The end of a placeholder, " object at 0x<address in hex>>" (`object`: 1), or of a
 * function's text, " at 0x<address in hex>>" (0). */
static int
text_at(Text *t, uintptr_t a, int object)
{
    char buf[40], *h = buf + sizeof buf;
    *--h = '>';
    do { *--h = "0123456789abcdef"[a & 15]; a >>= 4; } while (a);
    if (object) memcpy(h -= 13, " object at 0x", 13);
    else memcpy(h -= 6, " at 0x", 6);
    size_t hn = (size_t)(buf + sizeof buf - h);
    return text_add(t, h, hn, hn);
}

static inline int
text_object_at(Text *t, uintptr_t a)
{
    return text_at(t, a, 1);
}

/* reprs._text of a function (safe mode), "<function qualname at 0x...>", or of a generator,
 * "<generator object qualname at 0x...>" (coroutine, async_generator), as repr() shows them:
 * `a` is the address | its NAMED_* kind (capture.c). Its placeholder "<function object at
 * 0x...>" when the name is a str subclass (formatting one could run its code). */
static int
text_function(Text *t, PyObject *qualname, uintptr_t a)
{
    static const struct { const char *s; size_t n; } heads[] = {
        {"<function", 9}, {"<generator object", 17}, {"<coroutine object", 17}, {"<async_generator object", 23}};
    unsigned kind = (unsigned)(a & 3);
    a &= ~(uintptr_t)3;
    if (!PyUnicode_CheckExact(qualname))
        return text_add(t, heads[kind].s, heads[kind].n - (kind ? 7 : 0), heads[kind].n - (kind ? 7 : 0)) < 0
               ? -1 : text_object_at(t, a);
    return text_add(t, heads[kind].s, heads[kind].n, heads[kind].n) < 0 || text_add(t, " ", 1, 1) < 0
           || text_add_str(t, qualname) < 0 ? -1 : text_at(t, a, 0);
}

/* Where a V_OBJ's text would be in this drain's memo (crecorder.h LitMemo): its slot, or NULL
 * (no memory for the table: no memo, still correct). */
static inline LitMemo *
lit_find(RenderCtx *rc, PyObject *o)
{
    if (!rc->lits && !(rc->lits = PyMem_RawCalloc(LIT_MEMO, sizeof(LitMemo)))) return NULL;
    return &rc->lits[ptr_hash(o) & (LIT_MEMO - 1)];
}

/* n bytes from s to d, for the short copies of record_run (a record or two, most of them 4 to 16
 * bytes), record_objects' and slot_known's texts: two overlapping loads and stores of 16, 8, 4 or
 * 2 bytes, no call -- libc's memcpy was ~20-40 instructions a copy with its call (59.8 k copies
 * of oop's drains, callgrind), and ~47 k of flask test_json's drains' are of 17-32 bytes or 1-3. */
static inline void
copy_short(char *d, const unsigned char *s, size_t n)
{
    if (n > 16) {
        if (n > 32) { memcpy(d, s, n); return; }
        uint64_t a[2], b[2];
        memcpy(a, s, 16); memcpy(b, s + n - 16, 16);
        memcpy(d, a, 16); memcpy(d + n - 16, b, 16);
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8); memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8); memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4); memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4); memcpy(d + n - 4, &b, 4);
    } else if (n >= 2) {
        uint16_t a, b;
        memcpy(&a, s, 2); memcpy(&b, s + n - 2, 2);
        memcpy(d, &a, 2); memcpy(d + n - 2, &b, 2);
    } else if (n) *d = (char)*s;
}

/* A slot whose text is known without rendering: None, True, False, an ASCII str made at call
 * time (V_TEXT), or a str, bytes, tuple, int or class whose text this drain has made already
 * (render_slot's lit memo) -- its text in *u (len bytes, nchars characters): 1; else 0 (nothing
 * looked at changes). render_slot gives these the same bytes; the drain's records and texts take
 * them here without its call, its switch and a libc memcpy call (~110 instructions a slot: ~57 k
 * literal slots of the drains of flask's test_json phase went through render_slot). */
static inline int
slot_known(const RenderCtx *rc, const Slot *s, const char **u, size_t *len, size_t *nchars)
{
    /* (tests, not a switch: its jump table's indirect branch mispredicted more) */
    if (s->tag == V_OBJ || s->tag == V_CLASS) {
        /* (lit_put keeps only the texts render_slot made for these two tags -- and for Enum
         * members': member_known; a class is never a V_OBJ) */
        const LitMemo *m = rc->lits ? &rc->lits[ptr_hash(s->o) & (LIT_MEMO - 1)] : NULL;
        if (!m || m->o != s->o) return 0;
        *u = rc->lit_text.p + m->off;
        *len = m->len;
        *nchars = m->nchars;
        return 1;
    }
    if (s->tag - (unsigned)V_NONE < 3) {   /* V_NONE, V_TRUE, V_FALSE */
        static const char consts[3][6] = {"None", "True", "False"};
        *u = consts[s->tag - V_NONE];
        *len = *nchars = 4 + (s->tag == V_FALSE);
        return 1;
    }
    if (s->tag != V_TEXT || !PyUnicode_IS_COMPACT_ASCII(s->o)) return 0;
    *u = PyUnicode_DATA(s->o);
    *len = *nchars = (size_t)PyUnicode_GET_LENGTH(s->o);
    return 1;
}

/* slot_known for the slot of an Enum member (V_OPAQUE, enum_class: record_entry asks only for
 * those): its text made in this drain, kept by render_slot by the member's address (lit_put: the
 * member lives while its class, which the slot holds, does). Not asked of any other object's
 * slot, whose object may be gone and its address another's; nor in slot_known, which the text
 * path asks of every slot (the class's load there: +7.8 samples of flask's phase, perf). */
static inline int
member_known(const RenderCtx *rc, const Slot *s, const char **u, size_t *len, size_t *nchars)
{
    const LitMemo *m = rc->lits ? &rc->lits[ptr_hash((PyObject *)s->u.addr) & (LIT_MEMO - 1)] : NULL;
    if (!m || m->o != (PyObject *)s->u.addr) return 0;
    *u = rc->lit_text.p + m->off;
    *len = m->len;
    *nchars = m->nchars;
    return 1;
}

/* Keep o's text (len bytes at u, nchars characters) at its memo slot m (from lit_find). */
static void
lit_put(RenderCtx *rc, LitMemo *m, PyObject *o, const char *u, size_t len, size_t nchars)
{
    if (!m || rc->lit_text.len + len > UINT32_MAX) return;
    if (text_add(&rc->lit_text, u, len, 0) < 0) { PyErr_Clear(); return; }   /* (no memo: still correct) */
    m->o = o;
    m->off = (uint32_t)(rc->lit_text.len - len);
    m->len = (uint32_t)len;
    m->nchars = (uint32_t)nchars;
}

/* Append the text of one captured value. `star`: 1 for *args, 2 for **kwargs (their text
 * when unbound is the empty tuple / dict, as in reprs.args_text). */
static int
render_slot(RenderCtx *rc, Text *t, Slot *s, int star)
{
    PyObject *u = NULL;
    switch (s->tag) {
    case V_NONE: return text_add(t, "None", 4, 4);
    case V_TRUE: return text_add(t, "True", 4, 4);
    case V_FALSE: return text_add(t, "False", 5, 5);
    case V_INT: return text_int(t, s->u.i);
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
    case V_OBJ: {
        /* str, bytes, frozen tuples (capture.c frozen_text) and ints past 64 bits
         * (big_int_text) straight into the text, as builtin_text_now does: no str made; an
         * int of the one bit length render_now leaves to the hook (NOT_MINE), or a failure,
         * asks the reference's hook. The same object again in this drain: its text copied
         * (lit_find: a name, a key, a path passed to many calls, rendered once) */
        PyTypeObject *tp = Py_TYPE(s->o);
        if (tp == &PyUnicode_Type || tp == &PyBytes_Type || tp == &PyTuple_Type || tp == &PyLong_Type) {
            LitMemo *m = lit_find(rc, s->o);
            if (m && m->o == s->o) return text_add(t, rc->lit_text.p + m->off, m->len, m->nchars);
            size_t b0 = t->len, c0 = t->nchars;
            int r = render_now(t, s->o, 0, 0);   /* (nothing in it is an object) */
            if (r == 0) {
                if (t->nchars - c0 > MAX_TEXT && text_cut(t, b0, c0, MAX_TEXT) < 0) return -1;
                lit_put(rc, m, s->o, t->p + b0, t->len - b0, t->nchars - c0);
                return 0;
            }
            if (r < 0) PyErr_Clear();
            t->len = b0; t->nchars = c0;
        }
        /* (the two singletons' reprs, without the hook: an __eq__'s NotImplemented was 3.2 k
         * Python calls in flask's test_basic, ~15 M instructions) */
        if (s->o == Py_NotImplemented) return text_add(t, "NotImplemented", 14, 14);
        if (s->o == Py_Ellipsis) return text_add(t, "Ellipsis", 8, 8);
        u = PyObject_CallOneArg(rc->render_obj, s->o);
        break;
    }
    case V_PACKED: {
        /* a value record's slot packed at event time (packed.c): its text, as the reader
         * makes it -- all ASCII (a character a byte) and never longer than MAX_TEXT, but for
         * the labels of the instances in it (the type s->o names them; value_text's cut) */
        const unsigned char *p = rc->pack_base + PACKED_OFF(s->u.i), *end = p + PACKED_LEN(s->u.i);
        size_t b0 = t->len, c0 = t->nchars;
        uint64_t prev = 0;
        Label *lb = s->o ? label_for(rc, s->o) : NULL;
        if (s->o && !lb) return -1;
        if (!packed_in(rc, rc->pack_base, s) || expand_slot(&p, end, NULL, lb, rc, &prev, t, 0) < 0 || p != end) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_SystemError, "a packed value does not parse");
            return -1;
        }
        if (!lb && !PACKED_LABELED(s->u.i)) { t->nchars = c0 + (t->len - b0); return 0; }
        size_t chars = 0;
        for (size_t i = b0; i < t->len; i++) chars += ((unsigned char)t->p[i] & 0xC0) != 0x80;
        t->nchars = c0 + chars;
        return chars > MAX_TEXT ? text_cut(t, b0, c0, MAX_TEXT) : 0;
    }
    case V_CLASS: {
        /* reprs.class_text; the hook when the class's names are not type's to read. The same
         * class again in this drain: its text copied (lit_find, as a V_OBJ's; as label_for keeps
         * a type's label for the drain) -- text_class was ~480 instructions a slot, 7.3 k slots
         * of flask test_json's drains (a classmethod's cls) */
        LitMemo *m = lit_find(rc, s->o);
        if (m && m->o == s->o) return text_add(t, rc->lit_text.p + m->off, m->len, m->nchars);
        size_t b0 = t->len, c0 = t->nchars;
        int r = text_class(t, (PyTypeObject *)s->o);
        if (r == 0) {
            if (t->nchars - c0 > MAX_TEXT && text_cut(t, b0, c0, MAX_TEXT) < 0) return -1;
            lit_put(rc, m, s->o, t->p + b0, t->len - b0, t->nchars - c0);
            return 0;
        }
        if (r < 0) return -1;
        u = PyObject_CallOneArg(rc->render_obj, s->o);
        break;
    }
    case V_BUILTIN: {   /* (capture.c module_builtin: "<built-in function len>") */
        size_t b0 = t->len, c0 = t->nchars;
        if (text_builtin(t, (PyCFunctionObject *)s->o) < 0) return -1;
        return t->nchars - c0 > MAX_TEXT ? text_cut(t, b0, c0, MAX_TEXT) : 0;
    }
    case V_FUNCTION: {
        size_t b0 = t->len, c0 = t->nchars;
        if (text_function(t, s->o, s->u.addr) < 0) return -1;
        return t->nchars - c0 > MAX_TEXT ? text_cut(t, b0, c0, MAX_TEXT) : 0;
    }
    case V_OPAQUE:
    case V_DEFREPR: {
        if (s->tag == V_OPAQUE && enum_class((PyTypeObject *)s->o)) {
            /* reprs.enum_text, by the member's address; kept for this drain by that address (the
             * member lives while its class, which the slot holds, does: slot_known) */
            PyObject *member = (PyObject *)s->u.addr;
            LitMemo *m = lit_find(rc, member);
            if (m && m->o == member) return text_add(t, rc->lit_text.p + m->off, m->len, m->nchars);
            size_t b0 = t->len, c0 = t->nchars;
            int r = text_enum(t, (PyTypeObject *)s->o, s->u.addr, 0);
            if (r < 0) return -1;
            if (r == 0) {
                if (t->nchars - c0 > MAX_TEXT && text_cut(t, b0, c0, MAX_TEXT) < 0) return -1;
                lit_put(rc, m, member, t->p + b0, t->len - b0, t->nchars - c0);
                return 0;
            }
        }
        /* reprs.placeholder, written straight into the text: no Python object per value */
        Label *lb = label_for(rc, s->o);
        if (!lb) return -1;
        size_t b0 = t->len, c0 = t->nchars;
        if (text_add(t, "<", 1, 1) < 0 || text_add(t, lb->u, lb->len, lb->nchars) < 0
                || text_object_at(t, s->u.addr) < 0)
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

/* render_slot, for the text path of the drain: a text slot_known knows is copied without its call. */
static inline int
render_known(RenderCtx *rc, Text *t, Slot *s, int star)
{
    const char *u;
    size_t len, nchars;
    if (!rc || !slot_known(rc, s, &u, &len, &nchars)) return render_slot(rc, t, s, star);
    if (text_room(t, len) < 0) return -1;
    copy_short(t->p + t->len, (const unsigned char *)u, len);
    t->len += len;
    t->nchars += nchars;
    return 0;
}

/* The UTF-8 text of one string entry (a value, or a whole argument list) into `t`. */
int
render_entry(CoreObject *c, RenderCtx *rc, StrEntry *e, Slot *slots, Text *t)
{
    t->len = t->nchars = 0;
    if (rc) rc->pack_base = rc->packed + e->pack_off;
    if (e->kind == S_VALUE) return render_known(rc, t, &slots[e->slot_off], 0);
    if (e->kind == S_EXC) {   /* "Type: int" or "Type" (capture.c's exc_entry; a builtin's name is ASCII) */
        const char *name = ((PyTypeObject *)e->text)->tp_name;
        size_t n = strlen(name);
        char digits[24], *d = e->nslots ? decimal(digits + sizeof digits, e->exc_int) : digits + sizeof digits;
        size_t nd = (size_t)(digits + sizeof digits - d);
        if (text_add(t, name, n, n) < 0) return -1;
        if (!nd) return 0;
        char tail[2 + sizeof digits] = ": ";
        memcpy(tail + 2, d, nd);
        return text_add(t, tail, 2 + nd, 2 + nd);
    }
    for (uint32_t k = 0; k < c->codes[e->code_idx].nshown; k++) {
        CodeInfo *ci = &c->codes[e->code_idx];   /* (rendering may run Python: c->codes may move) */
        if (k && text_add(t, ", ", 2, 2) < 0) return -1;
        if (text_add_str(t, PyTuple_GET_ITEM(ci->names, k)) < 0) return -1;
        if (text_add(t, "=", 1, 1) < 0) return -1;
        if (render_known(rc, t, &slots[e->slot_off + ci->order[k]], ci->star[k]) < 0) return -1;
    }
    return t->nchars > 2 * MAX_TEXT ? text_cut(t, 0, 0, 2 * MAX_TEXT) : 0;
}

/* ---- builtin containers at capture time: reprs._text in C ----
 * A container can mutate after the call, so its text is made at once. For the builtin
 * containers (list, tuple, dict, set, frozenset) and scalars (None, bools, ints, floats,
 * complex, str, bytes, bytearray, Ellipsis, NotImplemented) the text is built here, byte for
 * byte what reprs.value_text gives (tests/test_crecorder.py compares them on many values):
 * no Python call, no user code. Anything else inside (or an int of 200 bits: big_int_text)
 * answers NOT_MINE, and the wrapper's hook renders the whole value with the reference's rules. */

/* Do the 8 ASCII bytes in x (each < 0x80) hold one that repr() of a str would not show as itself
 * between single quotes -- a control character (< 0x20), DEL (0x7f), a quote or a backslash?
 * Eight at a time (bit tricks: a byte below 0x20, a byte equal to each of the three; DEL is the
 * one byte that +1 makes 0x80): the test a character at a time was ~8 instructions a
 * character, and the drain and the containers rendered at call time run it on every str
 * (~130 instructions a str of the webapp workload, callgrind). Exact: a borrow makes a false
 * hit only above a true one. */
static inline uint64_t
ascii_not_plain(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    const uint64_t q = x ^ (ones * '\''), d = x ^ (ones * '"'), b = x ^ (ones * '\\');
    return ((x - ones * 0x20) & ~x & highs) | ((q - ones) & ~q & highs) | ((d - ones) & ~d & highs)
           | ((b - ones) & ~b & highs) | ((x + ones) & highs);
}

/* repr() of n ASCII characters (or bytes, `b`: bytes_repr's b'...') that hold one it does not
 * show as itself: CPython's rules, written here -- the quote is ' unless there is a ' and no ",
 * that quote and the backslash are escaped, \t \n \r by name, any other byte below 0x20 or
 * from 0x7f on as \xhh. (PyObject_Repr made a str to copy and free: ~1,900 instructions a
 * str, ~1,100 a bytes, callgrind on flask's test_basic, where HTML bodies, headers and
 * messages hold newlines and quotes.) */
static int
text_escaped_repr(Text *t, const unsigned char *p, Py_ssize_t n, int b)
{
    int squote = 0, dquote = 0;
    for (Py_ssize_t i = 0; i < n; i++) { squote |= p[i] == '\''; dquote |= p[i] == '"'; }
    unsigned char quote = squote && !dquote ? '"' : '\'';
    if (text_room(t, (size_t)n * 4 + 3) < 0) return -1;
    char *q = t->p + t->len, *q0 = q;
    if (b) *q++ = 'b';
    *q++ = (char)quote;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char ch = p[i];
        if (ch == quote || ch == '\\') { *q++ = '\\'; *q++ = (char)ch; }
        else if (ch == '\t') { *q++ = '\\'; *q++ = 't'; }
        else if (ch == '\n') { *q++ = '\\'; *q++ = 'n'; }
        else if (ch == '\r') { *q++ = '\\'; *q++ = 'r'; }
        else if (ch < 0x20 || ch >= 0x7f) {
            q[0] = '\\'; q[1] = 'x'; q[2] = "0123456789abcdef"[ch >> 4]; q[3] = "0123456789abcdef"[ch & 15];
            q += 4;
        }
        else *q++ = (char)ch;
    }
    *q++ = (char)quote;
    t->len += (size_t)(q - q0);
    t->nchars += (size_t)(q - q0);   /* (all ASCII) */
    return 0;
}

/* repr() of n ASCII characters (the first n of an ASCII str). */
static int
text_ascii_repr(Text *t, const char *p, Py_ssize_t n)
{
    uint64_t bad = 0, x;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) { memcpy(&x, p + i, 8); bad |= ascii_not_plain(x); }
    if (i < n) {   /* the rest: the last 8 bytes again; of a shorter str, every byte in a word
                    * (overlapping loads; spaces above 1-3 bytes -- a memcpy of n bytes was a call) */
        if (n >= 8) memcpy(&x, p + n - 8, 8);
        else if (n >= 4) {
            uint32_t lo, hi;
            memcpy(&lo, p, 4);
            memcpy(&hi, p + n - 4, 4);
            x = (uint64_t)lo | (uint64_t)hi << 32;
        }
        else x = 0x2020202020000000ULL | (uint64_t)(unsigned char)p[0] | (uint64_t)(unsigned char)p[n >> 1] << 8
                 | (uint64_t)(unsigned char)p[n - 1] << 16;
        bad |= ascii_not_plain(x);
    }
    if (bad) return text_escaped_repr(t, (const unsigned char *)p, n, 0);
    /* printable ASCII without quotes or backslashes: '...', one room check, written in place */
    if (text_room(t, (size_t)n + 2) < 0) return -1;
    char *q = t->p + t->len;
    q[0] = '\'';
    memcpy(q + 1, p, (size_t)n);
    q[n + 1] = '\'';
    t->len += (size_t)n + 2;
    t->nchars += (size_t)n + 2;
    return 0;
}

/* repr(s) for an exact str (of at most MAX_STRING characters where the caller cuts). */
static int
text_str_repr(Text *t, PyObject *s)
{
    if (PyUnicode_IS_ASCII(s)) return text_ascii_repr(t, (const char *)PyUnicode_DATA(s), PyUnicode_GET_LENGTH(s));
    PyObject *r = PyObject_Repr(s);   /* unicode_repr: no user code */
    if (!r) return -1;
    int rc = text_add_str(t, r);
    Py_DECREF(r);
    return rc;
}

/* reprs._text's str / bytes / bytearray case: repr of the first MAX_STRING items, "..." if cut. */
static int
text_sequence_repr(Text *t, PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == &PyUnicode_Type) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(o);
        if (n <= MAX_STRING) return text_str_repr(t, o);
        int rc;
        if (PyUnicode_IS_ASCII(o)) rc = text_ascii_repr(t, (const char *)PyUnicode_DATA(o), MAX_STRING);   /* (no str made for the part) */
        else {
            PyObject *part = PyUnicode_Substring(o, 0, MAX_STRING);
            if (!part) return -1;
            rc = text_str_repr(t, part);
            Py_DECREF(part);
        }
        return rc < 0 ? -1 : text_add(t, "...", 3, 3);
    }
    Py_ssize_t n = tp == &PyBytes_Type ? PyBytes_GET_SIZE(o) : PyByteArray_GET_SIZE(o);
    if (tp == &PyBytes_Type) {   /* bytes_repr's rules, in place */
        if (text_escaped_repr(t, (const unsigned char *)PyBytes_AS_STRING(o), n > MAX_STRING ? MAX_STRING : n, 1) < 0)
            return -1;
        return n > MAX_STRING ? text_add(t, "...", 3, 3) : 0;
    }
    PyObject *part = o;
    if (n > MAX_STRING) {
        part = PyByteArray_FromStringAndSize(PyByteArray_AS_STRING(o), MAX_STRING);
        if (!part) return -1;
    }
    PyObject *r = PyObject_Repr(part);   /* bytearray repr: no user code */
    if (part != o) Py_DECREF(part);
    if (!r) return -1;
    int rc = text_add_str(t, r);
    Py_DECREF(r);
    if (rc == 0 && n > MAX_STRING) rc = text_add(t, "...", 3, 3);
    return rc;
}

/* The items of a list / tuple / set / frozenset between `left` and `right` (nl, nr bytes). */
static int
render_items(Text *t, PyObject *o, int depth, int safe, const char *left, size_t nl, const char *right, size_t nr)
{
    if (text_add(t, left, nl, nl) < 0) return -1;
    if (depth >= MAX_DEPTH) return text_add(t, "...", 3, 3) < 0 || text_add(t, right, nr, nr) < 0 ? -1 : 0;
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == &PyTuple_Type) {   /* immutable, and it holds its items: read in place */
        Py_ssize_t n = PyTuple_GET_SIZE(o);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (i && text_add(t, ", ", 2, 2) < 0) return -1;
            if (i >= MAX_ITEMS) { if (text_add(t, "...", 3, 3) < 0) return -1; break; }
            int rc = render_now(t, PyTuple_GET_ITEM(o, i), depth + 1, safe);
            if (rc) return rc;
        }
    } else if (tp == &PyList_Type) {
        /* a list is read item by item with its size re-read: nothing here runs user code,
         * but the item is held while rendered */
        for (Py_ssize_t i = 0; i < Py_SIZE(o); i++) {
            if (i && text_add(t, ", ", 2, 2) < 0) return -1;
            if (i >= MAX_ITEMS) { if (text_add(t, "...", 3, 3) < 0) return -1; break; }
            PyObject *item = Py_NewRef(PyList_GET_ITEM(o, i));
            int rc = render_now(t, item, depth + 1, safe);
            Py_DECREF(item);
            if (rc) return rc;
        }
    } else {   /* set, frozenset: iteration order, as Python's own */
        PyObject *it = PyObject_GetIter(o), *item;
        if (!it) return -1;
        int rc = 0;
        for (Py_ssize_t i = 0; rc == 0 && (item = PyIter_Next(it)); i++) {
            if (i && text_add(t, ", ", 2, 2) < 0) rc = -1;
            else if (i >= MAX_ITEMS) { rc = text_add(t, "...", 3, 3); Py_DECREF(item); break; }
            else rc = render_now(t, item, depth + 1, safe);
            Py_DECREF(item);
        }
        Py_DECREF(it);
        if (rc == 0 && PyErr_Occurred()) rc = -1;
        if (rc) return rc;
    }
    return text_add(t, right, nr, nr);
}

static int
render_dict(Text *t, PyObject *o, int depth, int safe)
{
    if (text_add(t, "{", 1, 1) < 0) return -1;
    if (depth >= MAX_DEPTH) return text_add(t, "...}", 4, 4);
    Py_ssize_t pos = 0, i = 0;
    PyObject *k, *v;
    while (PyDict_Next(o, &pos, &k, &v)) {   /* exact dict, builtin keys: no user code */
        if (i && text_add(t, ", ", 2, 2) < 0) return -1;
        if (i++ >= MAX_ITEMS) { if (text_add(t, "...", 3, 3) < 0) return -1; break; }
        Py_INCREF(k); Py_INCREF(v);
        int rc = render_now(t, k, depth + 1, safe);
        if (rc == 0) rc = text_add(t, ": ", 2, 2);
        if (rc == 0) rc = render_now(t, v, depth + 1, safe);
        Py_DECREF(k); Py_DECREF(v);
        if (rc) return rc;
    }
    return text_add(t, "}", 1, 1);
}

/* reprs.placeholder(o) in safe mode, as type_label (recorder/c.py) names the type: the
 * type's tp_name for a static type ("module.Name", or "Name" for builtins: what __module__
 * and __qualname__ read), __module__ (from its dict) "." __qualname__ for a heap type, "object"
 * when __module__ is missing or not a str. NOT_MINE when only the hook can say: a metaclass
 * that defines __module__ or __qualname__ itself, str subclasses in the names. */
/* Does `cls.__module__` / `cls.__qualname__` read what type's own would for a heap class of
 * metaclass `meta` (EnumType, ABCMeta...: they do not redefine them, nor attribute lookup)?
 * The metaclass's own "__module__" (a str in its dict, as every class has) is no data
 * descriptor: the class's own "__module__" is then found first, as type's would read it. */
int
plain_names(PyTypeObject *meta)
{
    static PyObject *qualname_key, *module_descr, *qualname_descr;   /* (type's: immortal) */
    if (meta == &PyType_Type) return 1;
    if (meta->tp_getattro != PyType_Type.tp_getattro || !meta->tp_mro || !PyTuple_CheckExact(meta->tp_mro)) return 0;
    /* (_PyType_Lookup's walk looks names up in the dicts along the MRO: a class's holding a key
     * that is not a str could run its __eq__ -- at call time too, capture.c rec_label_new: no.
     * A static type's dict holds strs only -- and may not be in tp_dict, 3.12+) */
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(meta->tp_mro); i++) {
        PyObject *b = PyTuple_GET_ITEM(meta->tp_mro, i);
        if (!PyType_Check(b) || !(((PyTypeObject *)b)->tp_flags & Py_TPFLAGS_HEAPTYPE)) continue;
        PyObject *bd = ((PyTypeObject *)b)->tp_dict;
        if (!bd || dict_keys_general(bd)) return 0;
    }
    if (!qualname_key) {
        if (!(qualname_key = PyUnicode_InternFromString("__qualname__"))) { PyErr_Clear(); return 0; }
        module_descr = _PyType_Lookup(&PyType_Type, str_module_key);
        qualname_descr = _PyType_Lookup(&PyType_Type, qualname_key);
    }
    PyObject *module = _PyType_Lookup(meta, str_module_key);
    return module_descr && qualname_descr && _PyType_Lookup(meta, qualname_key) == qualname_descr
           && module && (module == module_descr || !Py_TYPE(module)->tp_descr_set);
}

/* The labels text_label made lately for classes of metaclass `type`, by the class's address: an
 * instance's placeholder in a container or dict rendered at call time (render_now) -- keyword
 * arguments holding objects, (obj, cls) tuples -- read its class's __module__ from the class dict
 * and wrote both names each time (~400 instructions a label, 12 k labels on flask test_json).
 * What the label is read from cannot change without the entry's key changing: the class dict's
 * version tag (dict_tag: any change to the dict, __module__'s included, gives it a new one, never
 * reused, so another class at the same address has another) and the __qualname__ str (a new one
 * when it is set; held, so its address names no other str). Labels of at most LABEL_NOW_MAX
 * bytes; only read and written with the GIL held. */
#define LABELS_NOW 64
#define LABEL_NOW_MAX 80
static struct { PyTypeObject *tp; PyObject *name; uint64_t ttag; uint32_t len, chars; char u[LABEL_NOW_MAX]; }
    labels_now[LABELS_NOW];

static int text_label_read(Text *t, PyTypeObject *tp);

/* reprs.type_label(tp) into the text: 0; NOT_MINE when only the hook can say (see above);
 * NO_LABEL with nothing added when __module__ is missing or not a str (the label is None). */
static int
text_label(Text *t, PyTypeObject *tp)
{
    if (Py_TYPE(tp) != &PyType_Type || !(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) || !tp->tp_dict) return text_label_read(t, tp);
    uint64_t ttag = dict_tag(tp->tp_dict);
    PyObject *name = ((PyHeapTypeObject *)tp)->ht_qualname;
    size_t i = ptr_hash(tp) & (LABELS_NOW - 1);
    if (labels_now[i].tp == tp && labels_now[i].ttag == ttag && labels_now[i].name == name && ttag >> 8)
        return text_add(t, labels_now[i].u, labels_now[i].len, labels_now[i].chars);
    size_t b0 = t->len, c0 = t->nchars;
    int r = text_label_read(t, tp);
    if (r == 0 && ttag >> 8 && t->len - b0 <= LABEL_NOW_MAX) {   /* (the tag read before the names: a change meanwhile gives another) */
        Py_XSETREF(labels_now[i].name, Py_NewRef(name));   /* (held: its address names no other str meanwhile; freeing a str runs no code) */
        labels_now[i].tp = tp; labels_now[i].ttag = ttag;
        labels_now[i].len = (uint32_t)(t->len - b0); labels_now[i].chars = (uint32_t)(t->nchars - c0);
        memcpy(labels_now[i].u, t->p + b0, t->len - b0);
    }
    return r;
}

/* text_label, read from the class */
static int
text_label_read(Text *t, PyTypeObject *tp)
{
    if (Py_TYPE(tp) != &PyType_Type && (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) || !plain_names(Py_TYPE(tp))))
        return NOT_MINE;
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        size_t n = strlen(tp->tp_name), chars = 0;
        for (size_t i = 0; i < n; i++) chars += ((unsigned char)tp->tp_name[i] & 0xC0) != 0x80;
        return text_add(t, tp->tp_name, n, chars);
    }
    PyObject *mod = PyDict_GetItemWithError(tp->tp_dict, str_module_key);   /* borrowed */
    PyObject *name = ((PyHeapTypeObject *)tp)->ht_qualname;
    if (!mod && PyErr_Occurred()) return -1;
    if ((mod && !PyUnicode_CheckExact(mod) && PyUnicode_Check(mod)) || !PyUnicode_CheckExact(name)) return NOT_MINE;
    if (!mod || !PyUnicode_CheckExact(mod)) return NO_LABEL;
    if (mod != str_builtins && PyUnicode_Compare(mod, str_builtins) != 0
            && (text_add_str(t, mod) < 0 || text_add(t, ".", 1, 1) < 0))
        return -1;
    return text_add_str(t, name);
}

static int
text_placeholder(Text *t, PyObject *o)
{
    size_t b0 = t->len, c0 = t->nchars;
    if (text_add(t, "<", 1, 1) < 0) return -1;
    int r = text_label(t, Py_TYPE(o));
    if (r == NO_LABEL) r = text_add(t, "object", 6, 6);
    if (r) { t->len = b0; t->nchars = c0; return r; }
    return text_object_at(t, (uintptr_t)o);
}

int
enum_class_slow(PyTypeObject *tp)
{
    static PyObject *enum_type;   /* enum.EnumType (held), once the enum module is imported */
    if (!enum_type) {
        PyObject *name = PyUnicode_FromString("enum");
        PyObject *mod = name ? PyImport_GetModule(name) : NULL;   /* (not imported: no Enum class exists) */
        Py_XDECREF(name);
        enum_type = mod ? PyObject_GetAttrString(mod, "EnumType") : NULL;
        Py_XDECREF(mod);
        if (!enum_type || !PyType_Check(enum_type)) { PyErr_Clear(); Py_CLEAR(enum_type); return 0; }
    }
    return PyType_IsSubtype(Py_TYPE(tp), (PyTypeObject *)enum_type);
}

/* The key d holds `addr` under (borrowed), or NULL: a walk of an exact dict, comparing addresses
 * only (no key is hashed or compared: no Python code runs). */
static PyObject *
dict_key_of(PyObject *d, uintptr_t addr)
{
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (d && PyDict_CheckExact(d) && PyDict_Next(d, &pos, &k, &v))
        if ((uintptr_t)v == addr) return k;
    return NULL;
}

/* reprs.enum_text: "<Color.RED: 1>" for the member at `addr` of Enum class tp (enum_class), from
 * the class's dicts only -- its name the key _member_map_ holds it under, its value (by its safe
 * text) the key _value2member_map_ holds it under, left out when not there. NOT_MINE for a member
 * neither names (a Flag's combination made on demand: its placeholder then) or odd names. The
 * member is found by its address: the drain holds its class, not the member, whose class's dict
 * holds it. */
static int
text_enum(Text *t, PyTypeObject *tp, uintptr_t addr, int depth)
{
    static PyObject *members_key, *values_key;
    if (!members_key && !(members_key = PyUnicode_InternFromString("_member_map_"))) { PyErr_Clear(); return NOT_MINE; }
    if (!values_key && !(values_key = PyUnicode_InternFromString("_value2member_map_"))) { PyErr_Clear(); return NOT_MINE; }
    PyObject *class_name = (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) ? ((PyHeapTypeObject *)tp)->ht_name : NULL;
    PyObject *members = NULL, *values = NULL;
    if (!class_name || !PyUnicode_CheckExact(class_name) || !tp->tp_dict
            || !dict_str_item(tp->tp_dict, members_key, &members) || !dict_str_item(tp->tp_dict, values_key, &values)) {
        PyErr_Clear();
        return NOT_MINE;
    }
    PyErr_Clear();   /* (a missing key: NULL, as reprs' .get) */
    PyObject *name = dict_key_of(members, addr), *value = dict_key_of(values, addr);
    if (!name || !PyUnicode_CheckExact(name)) return NOT_MINE;
    size_t b0 = t->len, c0 = t->nchars;
    int r = text_add(t, "<", 1, 1) < 0 || text_add_str(t, class_name) < 0 || text_add(t, ".", 1, 1) < 0
            || text_add_str(t, name) < 0 ? -1 : 0;
    if (r == 0 && value) {
        Py_INCREF(value);   /* (held while its text is made) */
        r = text_add(t, ": ", 2, 2) < 0 ? -1 : render_now(t, value, depth + 1, 1);
        Py_DECREF(value);
    }
    if (r == 0) r = text_add(t, ">", 1, 1);
    if (r) { t->len = b0; t->nchars = c0; }
    return r;
}

/* reprs.class_text(cls): "<class 'module.Class'>"; NOT_MINE when the hook must say (odd names,
 * or none: the hook's text is then cls's placeholder). */
static int
text_class(Text *t, PyTypeObject *cls)
{
    size_t b0 = t->len, c0 = t->nchars;
    if (text_add(t, "<class '", 8, 8) < 0) return -1;
    int r = text_label(t, cls);
    if (r == NO_LABEL) r = NOT_MINE;
    if (r == 0) r = text_add(t, "'>", 2, 2);
    if (r) { t->len = b0; t->nchars = c0; }
    return r;
}

/* A C string (UTF-8, a C name) into the text. */
static int
text_add_cstr(Text *t, const char *s)
{
    size_t n = strlen(s), chars = 0;
    for (size_t i = 0; i < n; i++) chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    return text_add(t, s, n, chars);
}

/* reprs.builtin_text: repr() of a builtin function or method, as its C code (meth_repr) makes
 * it -- "<built-in function name>" unbound or bound to a module (a type test, no __class__
 * read), else "<built-in method name of tp_name object at 0x...>". */
static int
text_builtin(Text *t, PyCFunctionObject *f)
{
    PyObject *self = f->m_self;
    if (!self || PyModule_Check(self))
        return text_add(t, "<built-in function ", 19, 19) < 0 || text_add_cstr(t, f->m_ml->ml_name) < 0
               ? -1 : text_add(t, ">", 1, 1);
    if (text_add(t, "<built-in method ", 17, 17) < 0 || text_add_cstr(t, f->m_ml->ml_name) < 0
            || text_add(t, " of ", 4, 4) < 0 || text_add_cstr(t, Py_TYPE(self)->tp_name) < 0)
        return -1;
    return text_object_at(t, (uintptr_t)self);
}

/* reprs.method_text: "<bound method qualname of <the object's safe text>>" ("..." for the
 * object past MAX_DEPTH levels); the placeholder when the callable is not a plain function or
 * its name not a plain str. NOT_MINE when the object's text is the hook's. */
static int
text_method(Text *t, PyMethodObject *m, int depth)
{
    PyObject *func = m->im_func;
    if (Py_TYPE(func) != &PyFunction_Type || !PyUnicode_CheckExact(((PyFunctionObject *)func)->func_qualname))
        return text_placeholder(t, (PyObject *)m);
    size_t b0 = t->len, c0 = t->nchars;
    int r = text_add(t, "<bound method ", 14, 14) < 0 || text_add_str(t, ((PyFunctionObject *)func)->func_qualname) < 0
            || text_add(t, " of ", 4, 4) < 0 ? -1
            : depth >= MAX_DEPTH ? text_add(t, "...", 3, 3) : render_now(t, m->im_self, depth + 1, 1);
    if (r == 0) return text_add(t, ">", 1, 1);
    if (r == NOT_MINE) { t->len = b0; t->nchars = c0; }
    return r;
}

/* d[key] (borrowed) if it is an exact str, else NULL (missing, or another object, or an
 * error: cleared -- the reference treats them alike). */
static PyObject *
dict_str(PyObject *d, PyObject *key)
{
    PyObject *v = PyDict_GetItemWithError(d, key);
    if (!v) PyErr_Clear();
    return v && PyUnicode_CheckExact(v) ? v : NULL;
}

/* What reprs.module_text reads of a module: its name and origin (exact strs or NULL), whether it is
 * located (" from 'origin'"), its loader when it has no origin, and its spec's dict (owned, for
 * the borrowed strs' sake, released by the caller). */
typedef struct { PyObject *name, *origin, *loader, *spec_dict; int located; } ModParts;
static PyObject *mod_keys[8], *spec_type, *namespace_loader;   /* (interned; importlib's types, held) */
enum { K_SPEC, K_NAME, K_ORIGIN, K_FILEATTR, K_LOADER, K_DNAME, K_FILE, K_DLOADER };

/* m's parts (module_text): 0, NOT_MINE (importlib not to be had without an import; with `plain`, a
 * dict it reads holding a key that is not a str, whose lookup could run that key's __eq__) or -1. */
static int
module_parts(PyObject *m, ModParts *p, int plain)
{
    static int ready;
    if (!ready) {   /* importlib's types from sys.modules (no import), once */
        static const char *names[8] = {"__spec__", "name", "origin", "_set_fileattr", "loader", "__name__",
                                       "__file__", "__loader__"};
        for (int i = 0; i < 8; i++)
            if (!mod_keys[i] && !(mod_keys[i] = PyUnicode_InternFromString(names[i]))) { PyErr_Clear(); return NOT_MINE; }
        PyObject *mods = PySys_GetObject("modules");   /* borrowed */
        PyObject *bootstrap = mods && PyDict_Check(mods) ? PyDict_GetItemString(mods, "_frozen_importlib") : NULL;
        PyObject *external = mods && PyDict_Check(mods) ? PyDict_GetItemString(mods, "_frozen_importlib_external") : NULL;
        if (!bootstrap || !external || !PyModule_CheckExact(bootstrap) || !PyModule_CheckExact(external)) return NOT_MINE;
        PyObject *st = PyDict_GetItemString(PyModule_GetDict(bootstrap), "ModuleSpec");
        PyObject *nl = PyDict_GetItemString(PyModule_GetDict(external), "NamespaceLoader");
        if (!st || !nl) return NOT_MINE;
        spec_type = Py_NewRef(st); namespace_loader = Py_NewRef(nl);
        ready = 1;
    }
    PyObject *d = PyModule_GetDict(m);   /* (borrowed) */
    p->spec_dict = NULL; p->origin = NULL; p->located = 0;
    if (plain && dict_keys_general(d)) return NOT_MINE;
    PyObject *spec = PyDict_GetItemWithError(d, mod_keys[K_SPEC]);
    if (!spec) PyErr_Clear();
    if (spec && (PyObject *)Py_TYPE(spec) == spec_type) {
        if (!(p->spec_dict = PyObject_GenericGetDict(spec, NULL))) return -1;
        if (plain && dict_keys_general(p->spec_dict)) return NOT_MINE;
        p->name = dict_str(p->spec_dict, mod_keys[K_NAME]);
        p->origin = dict_str(p->spec_dict, mod_keys[K_ORIGIN]);
        p->located = p->origin && PyDict_GetItemWithError(p->spec_dict, mod_keys[K_FILEATTR]) == Py_True;
        p->loader = p->origin ? NULL : PyDict_GetItemWithError(p->spec_dict, mod_keys[K_LOADER]);
    } else {
        p->name = dict_str(d, mod_keys[K_DNAME]);
        p->located = (p->origin = dict_str(d, mod_keys[K_FILE])) != NULL;
        p->loader = p->origin ? NULL : PyDict_GetItemWithError(d, mod_keys[K_DLOADER]);
    }
    PyErr_Clear();
    return 0;
}

/* module_text's form for parts p: the text is made of the name and origin alone (MOD_LOCATED:
 * " from 'origin'", MOD_ORIGIN: " (origin)", MOD_BARE: nothing, MOD_NAMESPACE: " (namespace)"),
 * or MOD_LOADER: the loader's text too. */
enum { MOD_LOCATED = 1, MOD_ORIGIN, MOD_BARE, MOD_NAMESPACE, MOD_LOADER };
static inline int
module_form(const ModParts *p)
{
    return p->located ? MOD_LOCATED : p->origin ? MOD_ORIGIN : !p->loader || p->loader == Py_None ? MOD_BARE
           : (PyObject *)Py_TYPE(p->loader) == namespace_loader ? MOD_NAMESPACE : MOD_LOADER;
}

/* reprs.module_text: what repr() shows for a module, from its parts (module_parts; see there);
 * NOT_MINE when the hook must say (an origin that one_line would change). */
static int
module_text(Text *t, const ModParts *p, int depth)
{
    size_t b0 = t->len, c0 = t->nchars;
    int r = -1, form = module_form(p);
    if (form == MOD_ORIGIN) {   /* "(origin)" as one_line would leave it: printable ASCII only */
        Py_ssize_t n = PyUnicode_GET_LENGTH(p->origin);
        const char *q = PyUnicode_IS_ASCII(p->origin) ? (const char *)PyUnicode_DATA(p->origin) : NULL;
        for (Py_ssize_t i = 0; q && i < n; i++) if (q[i] < 0x20 || q[i] > 0x7e) q = NULL;
        if (!q) { r = NOT_MINE; goto done; }
    }
    if (text_add(t, "<module ", 8, 8) < 0 || (p->name ? text_str_repr(t, p->name) : text_add(t, "'?'", 3, 3)) < 0) goto done;
    if (form == MOD_LOCATED) r = text_add(t, " from ", 6, 6) < 0 || text_str_repr(t, p->origin) < 0 ? -1 : 0;
    else if (form == MOD_ORIGIN) r = text_add(t, " (", 2, 2) < 0 || text_add_str(t, p->origin) < 0 ? -1 : text_add(t, ")", 1, 1);
    else if (form == MOD_BARE) r = 0;
    else if (form == MOD_NAMESPACE) r = text_add(t, " (namespace)", 12, 12);
    else {
        r = text_add(t, " (", 2, 2) < 0 ? -1 : depth >= MAX_DEPTH ? text_add(t, "...", 3, 3)
            : render_now(t, p->loader, depth + 1, 1);
        if (r == 0) r = text_add(t, ")", 1, 1);
    }
    if (r == 0) r = text_add(t, ">", 1, 1);
done:
    if (r == NOT_MINE) { t->len = b0; t->nchars = c0; }
    return r;
}

static int
text_module(Text *t, PyObject *m, int depth)
{
    ModParts p;
    int r = module_parts(m, &p, 0);
    if (r == 0) r = module_text(t, &p, depth);
    Py_XDECREF(p.spec_dict);
    return r;
}

/* Safe mode, a module passed or returned (14 k of flask's test_basic's call-time texts, 365
 * modules): its text (a new reference) kept by what it is made of -- its name and origin (strs,
 * held here, so the same pointers are the same contents) and its form (module_form) -- and
 * taken again while a module's parts are those: the text is a function of them and nothing else,
 * whatever module it is; the parts are still read each time (a module's __spec__ or __file__
 * can change). A loader's text (MOD_LOADER) is not kept. NULL with no error set: the caller
 * renders (builtin_text_now). Bounded: MODULE_TEXTS texts of at most MAX_TEXT characters. With
 * `plain` (item_text_now's, inside a packing walk: no Python code may run there), NULL as well
 * for a module whose dict or spec's dict holds a key that is not a str (module_parts). */
#define MODULE_TEXTS 64
static struct { PyObject *name, *origin, *text; int form; } module_texts[MODULE_TEXTS];

static PyObject *
module_text_kept(PyObject *m, int plain)
{
    ModParts p;
    if (module_parts(m, &p, plain)) { Py_XDECREF(p.spec_dict); PyErr_Clear(); return NULL; }
    int form = module_form(&p);
    PyObject *r = NULL;
    if (form == MOD_LOADER) goto done;
    size_t i = (((uintptr_t)p.name ^ (uintptr_t)p.origin * 31) >> 4 ^ (size_t)form) & (MODULE_TEXTS - 1);
    if (module_texts[i].text && module_texts[i].name == p.name && module_texts[i].origin == p.origin
            && module_texts[i].form == form) {
        r = Py_NewRef(module_texts[i].text);
        goto done;
    }
    Text t = {NULL, 0, 0, 0};
    int rc = module_text(&t, &p, 0);
    if (rc == 0 && t.nchars > MAX_TEXT) rc = text_cut(&t, 0, 0, MAX_TEXT);   /* (builtin_text_now's) */
    r = rc ? NULL : PyUnicode_DecodeUTF8(t.p ? t.p : "", (Py_ssize_t)t.len, "surrogatepass");
    PyMem_RawFree(t.p);
    if (!r) { PyErr_Clear(); goto done; }
    Py_XSETREF(module_texts[i].name, Py_XNewRef(p.name));
    Py_XSETREF(module_texts[i].origin, Py_XNewRef(p.origin));
    Py_XSETREF(module_texts[i].text, Py_NewRef(r));
    module_texts[i].form = form;
done:
    Py_XDECREF(p.spec_dict);
    return r;
}

PyObject *
module_text_now(PyObject *m)
{
    return module_text_kept(m, 0);
}

/* reprs._int for an exact int past 64 bits: repr() below 10**MAX_INT_DIGITS (reprs.py's 60),
 * else "<int with N bits>" -- told by its bit length, the hook asked only for the one length
 * that straddles the bound (200 bits: 2**199 < 10**60 < 2**200). The hook was a Python call,
 * ~13 k instructions a value: 3.1 k results of 128 bits (ipaddress's IPv6 constants) in a
 * recording of flask's test_json, callgrind. */
static int
big_int_text(Text *t, PyObject *o)
{
    size_t bits = _PyLong_NumBits(o);
    if (bits == (size_t)-1) return -1;
    if (bits >= 201) {
        return text_add(t, "<int with ", 10, 10) < 0 || text_int(t, (int64_t)bits) < 0 ? -1
               : text_add(t, " bits>", 6, 6);
    }
    if (bits == 200) return NOT_MINE;
    PyObject *r = PyObject_Repr(o);   /* (an exact int's: no code of the program's) */
    if (!r) return -1;
    int rc = text_add_str(t, r);
    Py_DECREF(r);
    return rc;
}

/* reprs._text(o, depth) for builtin values, and in safe mode other objects' placeholders: 0,
 * NOT_MINE, or -1 with an error set. The commonest types are tested first (a container's
 * items are mostly ints, strs, tuples). */
static int
render_now(Text *t, PyObject *o, int depth, int safe)
{
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == &PyLong_Type) {
        if (PyUnstable_Long_IsCompact((PyLongObject *)o))   /* one digit: no call */
            return text_int(t, (int64_t)PyUnstable_Long_CompactValue((PyLongObject *)o));
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (overflow) return big_int_text(t, o);
        if (x == -1 && PyErr_Occurred()) return -1;
        return text_int(t, x);
    }
    if (tp == &PyUnicode_Type) {
        if (PyUnicode_GET_LENGTH(o) <= MAX_STRING) return text_str_repr(t, o);
        return text_sequence_repr(t, o);
    }
    if (tp == &PyTuple_Type) {
        Py_ssize_t n = PyTuple_GET_SIZE(o);
        if (!n) return text_add(t, "()", 2, 2);
        return n == 1 ? render_items(t, o, depth, safe, "(", 1, ",)", 2) : render_items(t, o, depth, safe, "(", 1, ")", 1);
    }
    if (o == Py_None) return text_add(t, "None", 4, 4);
    if (o == Py_True) return text_add(t, "True", 4, 4);
    if (o == Py_False) return text_add(t, "False", 5, 5);
    if (tp == &PyFloat_Type) {
        Slot s = {NULL, {.d = PyFloat_AS_DOUBLE(o)}, V_FLOAT};
        return render_slot(NULL, t, &s, 0);
    }
    if (tp == &PyBytes_Type || tp == &PyByteArray_Type) return text_sequence_repr(t, o);
    if (tp == &PyComplex_Type || o == Py_Ellipsis || o == Py_NotImplemented) {
        PyObject *r = PyObject_Repr(o);
        if (!r) return -1;
        int rc = text_add_str(t, r);
        Py_DECREF(r);
        return rc;
    }
    if (tp == &PyList_Type)
        return PyList_GET_SIZE(o) ? render_items(t, o, depth, safe, "[", 1, "]", 1) : text_add(t, "[]", 2, 2);
    if (tp == &PyDict_Type) return PyDict_GET_SIZE(o) ? render_dict(t, o, depth, safe) : text_add(t, "{}", 2, 2);
    if (tp == &PySet_Type)
        return PySet_GET_SIZE(o) ? render_items(t, o, depth, safe, "{", 1, "}", 1) : text_add(t, "set()", 5, 5);
    if (tp == &PyFrozenSet_Type)
        return PySet_GET_SIZE(o) ? render_items(t, o, depth, safe, "frozenset({", 11, "})", 2) : text_add(t, "frozenset()", 11, 11);
    if (!safe) return NOT_MINE;
    /* (the type's flag, not PyObject_TypeCheck: no __class__ is read, as reprs' issubclass) */
    int kind = named_kind(tp);
    if (kind != NAMED_NONE) return text_function(t, named_qualname(o, kind), (uintptr_t)o | (uintptr_t)kind);
    if (tp == &PyCFunction_Type || tp == &PyCMethod_Type) return text_builtin(t, (PyCFunctionObject *)o);
    if (tp == &PyMethod_Type) return text_method(t, (PyMethodObject *)o, depth);
    if (tp == &PyModule_Type) return text_module(t, o, depth);
    if (PyType_FastSubclass(tp, Py_TPFLAGS_TYPE_SUBCLASS)) return text_class(t, (PyTypeObject *)o);
    if (enum_class(tp)) {   /* reprs.enum_text, else the placeholder */
        int r = text_enum(t, tp, (uintptr_t)o, depth);
        if (r != NOT_MINE) return r;
    }
    return text_placeholder(t, o);
}

/* packed.c's item (safe mode) that is a class, a function, a generator or a module, or an instance
 * whose class is not the one its packed value holds (pack_named): its text as render_now makes it
 * inside a container -- reprs._text: "<class 'mod.Name'>", "<function f at 0x...>", the
 * placeholder, "<module 'm' from '...'>" -- written at q as its ASCII bytes, at most `room` of
 * them: their count, else 0 (another text, a longer one, a lookup that could run Python: the
 * container takes the text path, as before). No Python code runs: a class's label comes from
 * labels_now or from its dict, a module's text from module_texts or from its parts, only when no
 * lookup there can call a key's __eq__ (dict_str_item's rule); the rest are reads.
 * The buffer is this function's own (kept: a malloc a text was ~140 instructions). */
size_t
item_text_now(PyObject *o, unsigned char *q, size_t room)
{
    static Text t;
    PyTypeObject *tp = Py_TYPE(o);
    t.len = t.nchars = 0;
    int r;
    if (tp->tp_flags & Py_TPFLAGS_TYPE_SUBCLASS) {
        PyTypeObject *cls = (PyTypeObject *)o;
        if (cls->tp_dict && dict_keys_general(cls->tp_dict)) return 0;
        r = text_class(&t, cls);
    } else if ((tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        if (tp->tp_dict && dict_keys_general(tp->tp_dict)) return 0;
        r = text_placeholder(&t, o);
    } else if (tp == &PyModule_Type) {
        /* a module (pytest's lists of conftest modules, ~3 k results of flask test_basic): its text
         * as module_text_now keeps it by its parts -- whatever its depth, unless its loader's text
         * is in it (not kept: NULL) -- not the whole list's text made now (builtin_text_now) */
        PyObject *text = module_text_kept(o, 1);   /* (plain: no lookup that could run Python) */
        if (!text) return 0;
        size_t n = PyUnicode_IS_ASCII(text) ? (size_t)PyUnicode_GET_LENGTH(text) : 0;   /* (a byte a character) */
        if (n > room) n = 0;
        memcpy(q, PyUnicode_DATA(text), n);
        Py_DECREF(text);   /* (module_texts holds it) */
        return n;
    } else {
        int kind = named_kind(tp);
        if (kind == NAMED_NONE) return 0;
        r = text_function(&t, named_qualname(o, kind), (uintptr_t)o | (uintptr_t)kind);
    }
    if (r) { if (r < 0) PyErr_Clear(); return 0; }
    if (t.nchars != t.len || t.len > room) return 0;   /* (not ASCII: its characters are not its bytes) */
    memcpy(q, t.p, t.len);
    return t.len;
}

/* builtin_text_now's buffer between calls (NULL while one holds it), kept up to SPARE_TEXT_MAX
 * bytes: a buffer malloc'd and freed for each text was ~140 instructions and ~12 instruction-cache
 * misses of each (10 k texts on flask test_json, callgrind). */
#define SPARE_TEXT_MAX 4096
static Text spare_text;

/* reprs.value_text(v) for a builtin value, now, as a str; NULL with no error set when the
 * value holds anything else (the caller asks the hook), NULL with an error on failure. */
PyObject *
builtin_text_now(PyObject *v, int safe)
{
    /* (the spare buffer taken, not shared: a finalizer run by an allocation in here may release
     * the GIL, and another thread's callback may then render too -- into a buffer of its own) */
    Text t = {spare_text.p, 0, spare_text.cap, 0};
    spare_text = (Text){NULL, 0, 0, 0};
    int rc = render_now(&t, v, 0, safe);
    if (rc == 0 && t.nchars > MAX_TEXT) rc = text_cut(&t, 0, 0, MAX_TEXT);
    PyObject *r = NULL;
    if (rc == 0 && t.nchars == t.len) {
        /* a character a byte: ASCII (a character past it is two bytes or more), copied into
         * the str as it is -- the UTF-8 decoder's way was ~340 instructions and ~17
         * instruction-cache misses a text (same callgrind) */
        if ((r = PyUnicode_New((Py_ssize_t)t.len, 127)) && t.len) memcpy(PyUnicode_DATA(r), t.p, t.len);
    } else if (rc == 0) r = PyUnicode_DecodeUTF8(t.p, (Py_ssize_t)t.len, "surrogatepass");
    if (!spare_text.p && t.cap <= SPARE_TEXT_MAX) spare_text = (Text){t.p, 0, t.cap, 0};
    else PyMem_RawFree(t.p);
    return r;
}

/* ---- value records (format 1.4; docs/FORMAT.md, "Value records") ----
 * A text with an object placeholder, a float or a large int in it is nearly always new:
 * addresses, float values and ints past the small-int tables hardly repeat. Rendering it (a
 * float's repr is ~0.4 us), hashing it, looking it up in the text table (a cache miss or
 * two), copying and compressing ~50-80 bytes cost ~1 us per text: more than the call itself.
 * Such an entry goes into the STRS payload as a record instead -- its parameter names and
 * type labels as indexes into the chunk's own dictionary, a float as its 8 bytes, an int or
 * the step from the previous object address as a varint, any other value as its text -- and
 * the reader makes the text from it: the same text, byte for byte (expand_strings below, and
 * its Python twin in ftr/format.py). A record is made only when its text cannot be cut, so
 * the reader never cuts. Records are not deduplicated across batches (the hot memo still
 * shares one entry between equal values within a batch), and the writer stores a chunk with
 * records uncompressed (ftr/writer.py: measured in the commit that made them). */
#define REC_INT_MIN ((int64_t)1 << 15)   /* capture.c's SMALL_MAX: smaller ints have their own tables */
#define DICT_LABELS 512   /* (64 thrashed on flask: every miss a duplicate label in the chunk) */
#define DICT_TEXTS 1024   /* (dict_text: two-way by the slot's object, DICT_TEXTS / 2 sets) */

/* The chunk's dictionary: type labels and parameter-name lists, each once per chunk. */
typedef struct { PyObject *type; uint32_t idx, nchars; } DictLabel;
typedef struct {
    Text blob, ends;
    uint32_t n;
    DictLabel labels[DICT_LABELS];   /* (types live until the drain ends) */
    struct { uint32_t idx1, nchars; } *names;   /* code index -> dictionary index + 1 (0: not yet), and
                                                 * the characters its names add ("name=" each) */
    uint64_t addr;     /* the last object address written (each is stored as the step from it) */
    PyObject *last_type;                /* the type of the last object slot, and its label's */
    uint32_t last_idx; size_t last_chars;   /* dictionary index and characters (most object
                                             * slots of a chunk are of the type just seen) */
    struct { const void *key; uint32_t idx1; } texts[DICT_TEXTS];   /* dict_text's (idx1: index + 1, 0: seen once) */
    uint8_t texts_way[DICT_TEXTS / 2];   /* dict_text's: the way of a set its next key takes (0 or 1) */
} RecDict;

/* (inline, stored in place: a call through text_add was ~18 instructions an entry's end) */
static inline int
put_u32le(Text *t, uint32_t v)
{
    if (text_room(t, 4) < 0) return -1;
    unsigned char *q = (unsigned char *)t->p + t->len;
    q[0] = (unsigned char)v; q[1] = (unsigned char)(v >> 8); q[2] = (unsigned char)(v >> 16); q[3] = (unsigned char)(v >> 24);
    t->len += 4;
    return 0;
}

static int
dict_add(RecDict *d, const char *u, size_t n, uint32_t *idx)
{
    if (text_add(&d->blob, u, n, 0) < 0 || put_u32le(&d->ends, (uint32_t)d->blob.len) < 0) return -1;
    *idx = d->n++;
    return 0;
}

/* dict_label's work for a type not in the chunk's table: its label (label_for: may run Python)
 * added to the dictionary, at the type's place in the table. */
static int
dict_label_add(RecDict *d, RenderCtx *rc, PyObject *type, uint32_t *idx, size_t *nchars)
{
    DictLabel *l = &d->labels[ptr_hash(type) & (DICT_LABELS - 1)];
    Label *lb = label_for(rc, type);
    uint32_t at;
    if (!lb || dict_add(d, lb->u, lb->len, &at) < 0) return -1;
    *l = (DictLabel){type, at, (uint32_t)lb->nchars};
    *idx = at;
    *nchars = lb->nchars;
    d->last_type = type; d->last_idx = at; d->last_chars = lb->nchars;
    return 0;
}

/* The dictionary index of a type's label, and the label's length in characters. A type in the
 * table already (nearly every object slot: the type of the slot before, 2 in 5 of flask
 * test_json's ~39 k, or another) is answered inline: the call, its registers saved and
 * restored, was ~25 of its ~39 instructions. */
static inline int
dict_label(RecDict *d, RenderCtx *rc, PyObject *type, uint32_t *idx, size_t *nchars)
{
    if (type == d->last_type) { *idx = d->last_idx; *nchars = d->last_chars; return 0; }
    const DictLabel *l = &d->labels[ptr_hash(type) & (DICT_LABELS - 1)];
    if (l->type != type) return dict_label_add(d, rc, type, idx, nchars);
    *idx = l->idx;
    *nchars = l->nchars;
    d->last_type = type; d->last_idx = *idx; d->last_chars = *nchars;
    return 0;
}

/* A literal slot's text (slot_known's: a str, a class, a text made at call time, None, True,
 * False) as an entry of the chunk's dictionary (1.10, RS_TEXT_AT), once it is seen again in the
 * chunk: 1 with its index, 0 for a literal (seen the first time, or its entry's place in the
 * table taken by another's), -1 with an error set. Keyed by the slot's object -- held by its slot
 * until the drain ends, so within it one address is one object and one text -- or, for the three
 * constants, by their text's address. Before, a record's literal was its text again at every
 * slot: in flask test_basic's file 584 k of the records' 620 k literals repeated one earlier in
 * their chunk, 11.2 of its 38.8 MB -- a dictionary of keyword arguments ({'fixturedef': <...>}),
 * a path, a class, 'None'. Two-way, its set's ways side by side, the older one replaced (as
 * capture.c's hot memo): direct-mapped, a str whose place was its class's (or None's) took
 * turns with it, and each text was written again at every record of the chunk. */
static inline int
dict_text(RecDict *d, const Slot *s, const char *u, size_t len, uint32_t *idx)
{
    const void *key = s->tag == V_OBJ || s->tag == V_CLASS || s->tag == V_TEXT ? (const void *)s->o : (const void *)u;
    size_t set = ptr_hash((void *)key) & (DICT_TEXTS - 2), h = set;
    if (d->texts[h].key != key && d->texts[++h].key != key) {   /* (the set's first way, then its second) */
        uint8_t *way = &d->texts_way[set >> 1];
        h = set + *way;   /* (the older of the two: filled in turn) */
        *way ^= 1;
        d->texts[h].key = key;
        /* (a str's or a class's text found in the drain's lit memo was made by an earlier slot
         * already: its second sight) */
        d->texts[h].idx1 = 0;
        if (s->tag != V_OBJ && s->tag != V_CLASS) return 0;
    }
    if (!d->texts[h].idx1) {
        uint32_t at;
        if (dict_add(d, u, len, &at) < 0) return -1;
        d->texts[h].idx1 = at + 1;
    }
    *idx = d->texts[h].idx1 - 1;
    return 1;
}

/* The dictionary index of a code's parameter names (joined by NUL: names are identifiers,
 * "*args" or "**kw"), and the characters they add to the text ("name=" each): 0, 1 when a
 * name holds a NUL (a code object made by hand: its entries stay texts), -1 with an error. */
static int
dict_names_add(RecDict *d, CoreObject *c, uint32_t code_idx, uint32_t *idx, size_t *nchars)
{
    CodeInfo *ci = &c->codes[code_idx];
    if (!d->names) {
        d->names = PyMem_RawCalloc(c->ncodes + 1, sizeof *d->names);
        if (!d->names) { PyErr_NoMemory(); return -1; }
    }
    if (d->names[code_idx].idx1) { *idx = d->names[code_idx].idx1 - 1; *nchars = d->names[code_idx].nchars; return 0; }
    /* each name's UTF-8 straight into the dictionary's blob, looked at for a NUL there (a
     * pass over the names for their lengths, one asking PyUnicode_FindChar for a NUL, and a
     * copy through a Text of its own made each code's first record of a drain cost ~3 times
     * as much) */
    size_t b0 = d->blob.len, n = 0;
    for (uint32_t k = 0; k < ci->nshown; k++) {
        PyObject *name = PyTuple_GET_ITEM(ci->names, k);
        Py_ssize_t len;
        const char *u = PyUnicode_AsUTF8AndSize(name, &len);
        if (!u || (k && text_add(&d->blob, "", 1, 0) < 0) || text_add(&d->blob, u, (size_t)len, 0) < 0) goto fail;
        if (memchr(u, 0, (size_t)len)) { d->blob.len = b0; return 1; }
        n += (size_t)PyUnicode_GET_LENGTH(name) + 1;   /* "name=" */
    }
    if (put_u32le(&d->ends, (uint32_t)d->blob.len) < 0) goto fail;
    *idx = d->n++;
    *nchars = n;
    d->names[code_idx].idx1 = *idx + 1;
    d->names[code_idx].nchars = (uint32_t)n;
    return 0;
fail:
    d->blob.len = b0;
    return -1;
}

/* dict_names, a code already in the dictionary answered inline (nearly every record of a
 * drain: the call was ~30 of its ~47 instructions, ~31 k records of flask test_json's drains). */
static inline int
dict_names(RecDict *d, CoreObject *c, uint32_t code_idx, uint32_t *idx, size_t *nchars)
{
    if (d->names && d->names[code_idx].idx1) { *idx = d->names[code_idx].idx1 - 1; *nchars = d->names[code_idx].nchars; return 0; }
    return dict_names_add(d, c, code_idx, idx, nchars);
}

static inline unsigned char *
varint_at(unsigned char *q, uint64_t v)
{
    while (v >= 0x80) { *q++ = (unsigned char)(v | 0x80); v >>= 7; }
    *q++ = (unsigned char)v;
    return q;
}

/* A packed value holding instances of `type` (packed.c, RS_PACKED_OBJECT), or (type NULL) of
 * classes whose labels were numbered at call time (RS_PACKED_LABELED), `len` bytes at `src`,
 * appended to `out` as a record's slot (1.7): each instance as RS_OBJECT, its label's dictionary
 * index and its address's step from the chunk's previous one; the rest copied as it is (a linear
 * scan: a packed value is its nodes in prefix order). *chars: the text's characters but for the
 * labels of `type`, on return with them. 0; 1 when the text could be cut at MAX_TEXT (nothing written: the
 * text path cuts it); -1 with an error set. */
static int
packed_objects(RecDict *d, RenderCtx *rc, PyObject *type, const unsigned char *src, size_t len, Text *out,
               size_t *chars)
{
    uint32_t li = 0;
    size_t lc = 0;
    if (type && dict_label(d, rc, type, &li, &lc) < 0) return -1;   /* (may run Python: before the pointers) */
    if (text_room(out, 2 * len + 16) < 0) return -1;   /* (an instance's 9 bytes become 16 at most) */
    unsigned char *q = (unsigned char *)out->p + out->len;
    const unsigned char *p = src, *end = src + len;
    size_t objects = 0;
    while (p < end) {
        unsigned char tag = *p;
        const unsigned char *next = p + 1;
        if (tag == RS_PACKED_OBJECT) {
            uint64_t a;
            if (end - next < 8) break;
            memcpy(&a, next, 8);
            *q++ = RS_OBJECT;
            q = varint_at(q, li);
            int64_t step = (int64_t)(a - d->addr);
            q = varint_at(q, ((uint64_t)step << 1) ^ (uint64_t)(step >> 63));
            d->addr = a;
            objects++;
            p = next + 8;
            continue;
        }
        if (tag == RS_PACKED_LABELED) {   /* (its label numbered at call time, its characters counted then) */
            uint32_t l;
            uint64_t a;
            if (end - next < PACKED_LABELED_BYTES - 1) break;
            memcpy(&l, next, 4);
            memcpy(&a, next + 4, 8);
            if (l >= rc->nitems) break;
            *q++ = RS_OBJECT;
            q = varint_at(q, l);
            int64_t step = (int64_t)(a - d->addr);
            q = varint_at(q, ((uint64_t)step << 1) ^ (uint64_t)(step >> 63));
            d->addr = a;
            p = next + PACKED_LABELED_BYTES - 1;
            continue;
        }
        if (tag == RS_LITERAL) next += 1 + (next < end ? *next : 0);   /* (packed.c: a one-byte length) */
        else if (tag == RS_FLOAT) next += 8;
        else if (tag == RS_INT) { while (next < end && *next & 0x80) next++; next++; }
        else if (tag == RS_TUPLE || tag == RS_LIST) next++;   /* (a one-byte count) */
        else break;
        if (next > end) break;
        memcpy(q, p, (size_t)(next - p));
        q += next - p;
        p = next;
    }
    if (p != end) { PyErr_SetString(PyExc_SystemError, "a packed value does not parse"); return -1; }
    *chars += objects * lc;
    if (*chars > MAX_TEXT) return 1;
    out->len = (size_t)((char *)q - out->p);
    return 0;
}

/* Does the slot's text seldom repeat (a float, an object, an int past the small-int tables), or
 * is it a record's slot already (a packed tuple or list)? */
static inline int
rarely_repeats(const Slot *s)
{
    return s->tag == V_FLOAT || s->tag == V_OPAQUE || s->tag == V_DEFREPR || s->tag == V_PACKED
           || (s->tag == V_INT && (s->u.i >= REC_INT_MIN || s->u.i <= -REC_INT_MIN));
}

/* Is entry e worth a record -- does it hold a slot whose text seldom repeats, or a packed one?
 * (record_entry is asked only then) */
static inline int
record_worth(const CoreObject *c, const StrEntry *e, const Slot *slots)
{
    const CodeInfo *ci = NULL;
    uint32_t n = 1;
    if (e->kind == S_ARGS) { ci = &c->codes[e->code_idx]; n = ci->nshown; }
    else if (e->kind != S_VALUE) return 0;
    int worth = e->packed;   /* (a packed slot is a record's slot already) */
    for (uint32_t k = 0; k < n && !worth; k++) worth |= rarely_repeats(&slots[e->slot_off + (ci ? ci->order[k] : 0)]);
    return worth;
}

/* Append entry e -- worth a record (record_worth) -- as a record to `out`: 0, 1 when it is not
 * one (its text could be cut: `out` is then as it was), -1 with an error set. */
static int
record_entry(CoreObject *c, RenderCtx *rc, const StrEntry *e, Slot *slots, RecDict *d, Text *out)
{
    const CodeInfo *ci = NULL;
    uint32_t n = 1;
    if (e->kind == S_ARGS) { ci = &c->codes[e->code_idx]; n = ci->nshown; }
    else if (e->kind != S_VALUE) return 1;
    size_t at = out->len, chars = 0, llen, lchars;
    const char *lu;
    uint64_t addr0 = d->addr;
    uint32_t ni = 0;
    int named = ci ? dict_names(d, c, e->code_idx, &ni, &chars) : 0;
    if (named) return named;
    chars += ci ? 2 * (n - 1) : 0;   /* "name=" each (dict_names), ", " between */
    /* written in place: 2 + a varint, then per slot at most a tag and two varints */
    if (text_room(out, 12 + (size_t)n * 21) < 0) return -1;
    unsigned char *q = (unsigned char *)out->p + at;
    *q++ = REC_MARK;
    *q++ = ci ? REC_ARGS : REC_VALUE;
    if (ci) q = varint_at(q, ni);
    for (uint32_t k = 0; k < n; k++) {
        /* (the commonest tags first: ints and objects) */
        Slot *s = &slots[e->slot_off + (ci ? ci->order[k] : 0)];
        if (s->tag == V_INT) {
            *q++ = RS_INT;
            q = varint_at(q, ((uint64_t)s->u.i << 1) ^ (uint64_t)(s->u.i >> 63));   /* zigzag */
            chars += 20;
        } else if ((s->tag == V_OPAQUE && !enum_class((PyTypeObject *)s->o)) || s->tag == V_DEFREPR) {
            /* (an Enum member's text is its own, not a label and an address: a literal below) */
            uint32_t li;
            size_t lc, hex = 0;
            out->len = (size_t)((char *)q - out->p);
            if (dict_label(d, rc, s->o, &li, &lc) < 0) goto fail;   /* (may run Python: no pointer into out is kept) */
            if (ci) ci = &c->codes[e->code_idx];   /* (... and c->codes may have moved) */
            q = (unsigned char *)out->p + out->len;
            hex = (size_t)(67 - __builtin_clzll((unsigned long long)s->u.addr | 1)) / 4;   /* its hex digits */
            size_t oc = lc + hex + 15;   /* "<" label " object at 0x" hex ">" */
            if (oc > (s->tag == V_DEFREPR ? 2 * MAX_STRING : MAX_TEXT)) { out->len = at; d->addr = addr0; return 1; }
            *q++ = s->tag == V_DEFREPR ? RS_DEFREPR : RS_OBJECT;
            q = varint_at(q, li);
            /* the zigzagged step from the chunk's previous address: objects made near each
             * other (most of them) take 1-3 bytes instead of 6 */
            int64_t step = (int64_t)((uint64_t)s->u.addr - d->addr);
            q = varint_at(q, ((uint64_t)step << 1) ^ (uint64_t)(step >> 63));
            d->addr = (uint64_t)s->u.addr;
            chars += oc;
        } else if (s->tag == V_FLOAT) {
            *q++ = RS_FLOAT;
            q = put_f64le(q, s->u.d);
            chars += FLOAT_CHARS;
        } else if (s->tag == V_PACKED) {   /* already a slot (packed.c): copied as it is */
            size_t len = PACKED_LEN(s->u.i);
            out->len = (size_t)((char *)q - out->p);
            if (!packed_in(rc, rc->packed + e->pack_off, s)) {
                PyErr_SetString(PyExc_SystemError, "a packed value is not in its batch");
                goto fail;
            }
            const unsigned char *src = rc->packed + e->pack_off + PACKED_OFF(s->u.i);
            if (s->o || PACKED_LABELED(s->u.i)) {   /* instances in it: their label and address step written (packed_objects) */
                size_t vc = PACKED_CHARS(s->u.i);
                int r = packed_objects(d, rc, s->o, src, len, out, &vc);   /* (may run Python: c->codes may move) */
                if (ci) ci = &c->codes[e->code_idx];
                if (r) { out->len = at; d->addr = addr0; return r; }
                chars += vc;
                if (text_room(out, (size_t)(n - k) * 21) < 0) goto fail;
                q = (unsigned char *)out->p + out->len;
                continue;
            }
            if (text_room(out, len + (size_t)(n - k) * 21) < 0) goto fail;
            q = (unsigned char *)out->p + out->len;
            copy_short((char *)q, src, len);   /* (most are a few ints or names: no libc call) */
            q += len;
            chars += PACKED_CHARS(s->u.i);
        } else if (s->tag == V_OPAQUE ? member_known(rc, s, &lu, &llen, &lchars) : slot_known(rc, s, &lu, &llen, &lchars)) {
            /* its text known: an entry of the chunk's dictionary when seen before (dict_text), or
             * tag, length and text written at once (21 bytes a slot are there: a longer text asks
             * for its room) */
            uint32_t ti;
            int r = llen > 2 ? dict_text(d, s, lu, llen, &ti) : 0;   /* ("''", "()": as short as a reference) */
            if (r < 0) goto fail;
            if (r) {
                *q++ = RS_TEXT_AT;
                q = varint_at(q, ti);
                chars += lchars;
                continue;
            }
            if (llen > 19) {
                out->len = (size_t)((char *)q - out->p);
                if (text_room(out, 11 + llen + (size_t)(n - k) * 21) < 0) goto fail;
                q = (unsigned char *)out->p + out->len;
            }
            *q++ = RS_LITERAL;
            q = varint_at(q, llen);
            copy_short((char *)q, (const unsigned char *)lu, llen);
            q += llen;
            chars += lchars;
        } else {
            /* the text rendered in place, after its tag and a one-byte length (the room is
             * there: 21 a slot), moved up on the rare text of 128 bytes or more -- rendered
             * into a buffer of its own, each was copied once more (~30 instructions a literal
             * slot, ~49 k of them in flask test_json's drains) */
            size_t b0 = (size_t)((char *)q - out->p) + 2, c0 = out->nchars;
            out->len = b0;
            if (render_slot(rc, out, s, ci ? ci->star[k] : 0) < 0) goto fail;
            if (ci) ci = &c->codes[e->code_idx];   /* (render_slot may run Python: c->codes may move) */
            size_t len = out->len - b0, more = 0;
            for (size_t v = len; v >= 0x80; v >>= 7) more++;   /* (the length's varint bytes past one) */
            if (text_room(out, more + (size_t)(n - k) * 21) < 0) goto fail;
            if (more) memmove(out->p + b0 + more, out->p + b0, len);
            q = (unsigned char *)out->p + b0 - 2;
            *q++ = RS_LITERAL;
            q = varint_at(q, len) + len;
            chars += out->nchars - c0;
        }
    }
    if (chars > (ci ? 2 * MAX_TEXT : MAX_TEXT)) { out->len = at; d->addr = addr0; return 1; }
    out->len = (size_t)((char *)q - out->p);
    return 0;
fail:
    out->len = at;
    d->addr = addr0;
    return -1;
}

/* record_entry's record for a value that is one int past the small-int tables (a sum, a
 * product, an id: most results that are new), written straight: 0, 1 when the value is not
 * one (nothing written), -1 with an error set. (An int's text is never cut: <= 20 characters.) */
static inline int
int_record(const Slot *s, Text *out)
{
    if (s->tag != V_INT || (s->u.i < REC_INT_MIN && s->u.i > -REC_INT_MIN)) return 1;
    if (text_room(out, 3 + 10) < 0) return -1;
    unsigned char *q = (unsigned char *)out->p + out->len;
    *q++ = REC_MARK; *q++ = REC_VALUE; *q++ = RS_INT;
    q = varint_at(q, ((uint64_t)s->u.i << 1) ^ (uint64_t)(s->u.i >> 63));   /* zigzag */
    out->len = (size_t)((char *)q - out->p);
    return 0;
}

/* The batch's record dictionary as the call-time records numbered it (rec_items: capture.c
 * rec_label, rec_names_commit), first and in that order -- codes' names and types' labels --
 * checked entry by entry. 0, or -1 with an error set. */
static int
record_dictionary(CoreObject *c, const RenderCtx *rc, RecDict *d)
{
    for (size_t j = 0; j < rc->nitems; j++) {
        const RecItem *it = &rc->items[j];
        uint32_t idx;
        size_t nchars;
        if (it->type) {
            if (dict_add(d, rc->labs + it->lab_off, it->lab_len, &idx) < 0) return -1;
        } else if (it->code_idx >= c->ncodes || dict_names(d, c, it->code_idx, &idx, &nchars) != 0)   /* (1 cannot be: args_layout) */
            goto bad;
        if (idx != j) goto bad;
    }
    return 0;
bad:
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_SystemError, "a record written at call time does not match its batch");
    return -1;
}

/* A call-time record holding objects (S_REC, e->packed): copied, its first address step made
 * again from the chunk's previous object address when a record the drain made came between
 * (REC_SIDE: the record's first and last address and where that step is). 0, or -1 with an
 * error set. */
static int
record_objects(const RenderCtx *rc, const StrEntry *e, RecDict *d, uint64_t *ct_prev, Text *blob)
{
    const unsigned char *rec = rc->packed + e->pack_off, *end = rec + e->rec_len;
    uint64_t first, last;
    uint16_t at;
    if (e->pack_off < REC_SIDE || (size_t)e->pack_off + e->rec_len > rc->npacked) goto bad;
    memcpy(&first, rec - REC_SIDE, 8);
    memcpy(&last, rec - REC_SIDE + 8, 8);
    memcpy(&at, rec - REC_SIDE + 16, 2);
    if (at == 0 || at >= e->rec_len || text_room(blob, e->rec_len + 10) < 0) goto bad;
    unsigned char *q = (unsigned char *)blob->p + blob->len;
    /* (copy_short: most records are 6 to 16 bytes, and libc's memcpy was ~40 instructions a copy
     * with its call -- ~60 k copies of oop's drains, ~36 k of flask test_json's) */
    if (d->addr == *ct_prev) {   /* the steps hold as written */
        copy_short((char *)q, rec, e->rec_len);
        q += e->rec_len;
    } else {
        const unsigned char *p = rec + at;
        uint64_t old;
        if (get_varint(&p, end, &old) < 0) goto bad;
        copy_short((char *)q, rec, at);
        int64_t step = (int64_t)(first - d->addr);
        q = varint_at(q + at, ((uint64_t)step << 1) ^ (uint64_t)(step >> 63));
        copy_short((char *)q, p, (size_t)(end - p));
        q += end - p;
    }
    blob->len = (size_t)((char *)q - blob->p);
    d->addr = *ct_prev = last;
    return 0;
bad:
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_SystemError, "a record written at call time does not match its batch");
    return -1;
}

/* The run of call-time records with objects (S_REC, packed) from strs[i]: each copied into the
 * blob (record_objects), its end and its final id written in one pass -- the loop over the
 * entries, their ends' room tests and the counters' stores once a run rather than once a
 * record (~460 k records of flask's test_basic drains, most of its entries). How many (0 with an
 * error set). */
static size_t
objects_run(CoreObject *c, const RenderCtx *rc, const StrEntry *strs, size_t i, size_t nstrs, RecDict *d,
            uint64_t *ct_prev, Text *blob, size_t spliced, Text *ends, uint32_t *remap)
{
    if (text_room(ends, 4 * (nstrs - i)) < 0) return 0;   /* (the most the batch's entries from i could take) */
    unsigned char *q = (unsigned char *)ends->p + ends->len;
    uint32_t sid = c->next_final_sid;
    size_t j = i;
    do {
        if (record_objects(rc, &strs[j], d, ct_prev, blob) < 0) return 0;
        uint32_t v = (uint32_t)(blob->len + spliced);
        q[0] = (unsigned char)v; q[1] = (unsigned char)(v >> 8); q[2] = (unsigned char)(v >> 16); q[3] = (unsigned char)(v >> 24);
        q += 4;
        remap[j++] = sid++;
    } while (j < nstrs && strs[j].kind == S_REC && strs[j].packed);
    ends->len = (size_t)((char *)q - ends->p);
    c->next_final_sid = sid;
    c->rendered += j - i;
    return j - i;
}

/* A run of call-time records left where they are, in the batch's packed bytes, until the
 * payload is made: its bytes go in at offset `at` of the texts' blob (strings_batch). Copied
 * into the blob first, they were copied twice -- ~22 instructions a call of the threaded
 * workload's rep movsb, for bytes that are most of its STRS payload. A short run is copied
 * into the blob all the same (SPLICE_MIN): a splice costs its entry and a memcpy call each of
 * its own and of the blob's bytes before it -- oop's runs, one or two records between its
 * other entries, cost +2.5 M instructions spliced. */
typedef struct { size_t at, off, len; } Splice;
#define SPLICE_MIN 256   /* bytes */

/* The run of S_REC entries from strs[i] whose records lie one after another in the batch's
 * packed bytes: one splice into *runs (at the blob's end; *spliced: the bytes spliced so far),
 * or copied into the blob when short (*tail: the last copy, where it is in the blob and in the
 * packed bytes), their ends, their final ids into remap. How many (0 with an error set). */
static size_t
record_run(CoreObject *c, const RenderCtx *rc, const StrEntry *strs, size_t i, size_t nstrs, Text *blob,
           Text *runs, size_t *spliced, Splice *tail, Text *ends, uint32_t *remap)
{
    if (text_room(runs, sizeof(Splice)) < 0 || text_room(ends, 4 * (nstrs - i)) < 0) return 0;
    /* one pass: each entry's end and final id while the run goes on (the ends' room: the most
     * the batch's entries from i could take) */
    size_t off = strs[i].pack_off, stop = off, at = blob->len + *spliced, j = i;
    unsigned char *q = (unsigned char *)ends->p + ends->len;
    uint32_t sid = c->next_final_sid;
    do {
        stop += strs[j].rec_len;
        at += strs[j].rec_len;
        uint32_t v = (uint32_t)at;
        q[0] = (unsigned char)v; q[1] = (unsigned char)(v >> 8); q[2] = (unsigned char)(v >> 16); q[3] = (unsigned char)(v >> 24);
        q += 4;
        remap[j++] = sid++;
    } while (j < nstrs && strs[j].kind == S_REC && !strs[j].packed && strs[j].pack_off == stop);
    if (stop > rc->npacked) { PyErr_SetString(PyExc_SystemError, "a record is not in its batch"); return 0; }
    size_t len = stop - off;
    Splice *last = runs->len ? (Splice *)(runs->p + runs->len) - 1 : NULL;
    int joined = last && last->at == blob->len && last->off + last->len == off;   /* (nothing between) */
    /* right after a copied run, its bytes ending where this one's start (an entry of no bytes
     * between: a small int's text seen before): one run with it, spliced once long enough */
    int after_copy = !joined && tail->len && tail->at + tail->len == blob->len && tail->off + tail->len == off;
    if (after_copy && tail->len + len >= SPLICE_MIN) {
        blob->len = tail->at;   /* (its bytes: at the same place in the payload, spliced now) */
        off = tail->off;
        len += tail->len;
        tail->len = 0;
        after_copy = 0;
    }
    if (!joined && len < SPLICE_MIN && text_room(blob, len) < 0) return 0;
    ends->len = (size_t)((char *)q - ends->p);
    c->next_final_sid = sid;
    if (joined) {
        last->len += len;
        *spliced += len;
    } else if (len < SPLICE_MIN) {   /* (at the same place in the payload: blob->len + *spliced) */
        if (!after_copy) *tail = (Splice){blob->len, off, 0};
        copy_short(blob->p + blob->len, rc->packed + off, len);
        blob->len += len;
        tail->len += len;
    } else {
        memcpy(runs->p + runs->len, &(Splice){blob->len, off, len}, sizeof(Splice));
        runs->len += sizeof(Splice);
        *spliced += len;
    }
    c->rendered += j - i;
    return j - i;
}

/* The blob's bytes with the runs spliced in, at q. */
static char *
put_spliced(char *q, const Text *blob, const Text *runs, const unsigned char *packed)
{
    const Splice *sp = (const Splice *)runs->p;
    size_t from = 0;
    for (size_t k = 0; k < runs->len / sizeof(Splice); k++) {
        if (sp[k].at > from) { memcpy(q, blob->p + from, sp[k].at - from); q += sp[k].at - from; }
        from = sp[k].at;
        memcpy(q, packed + sp[k].off, sp[k].len);
        q += sp[k].len;
    }
    if (blob->len > from) { memcpy(q, blob->p + from, blob->len - from); q += blob->len - from; }
    return q;
}

/* The UTF-8 of an S_TEXT entry's str (lone surrogates as the writer stores them: `*enc` then
 * owns the bytes), or NULL (no error set) when it has none. */
static const char *
text_utf8(PyObject *t, Py_ssize_t *len, PyObject **enc)
{
    const char *u = PyUnicode_AsUTF8AndSize(t, len);
    if (u) return u;
    PyErr_Clear();
    *enc = PyUnicode_AsEncodedString(t, "utf-8", "surrogatepass");
    if (!*enc) { PyErr_Clear(); return NULL; }
    *len = PyBytes_GET_SIZE(*enc);
    return PyBytes_AS_STRING(*enc);
}

/* ---- the text memo (crecorder.h TextMemo): an entry of the text path whose text was made in
 * an earlier batch of this session takes its final id without being rendered, hashed and
 * looked up again. Most argument lists of a real program repeat from batch to batch -- a
 * name, a key, a path, a flag -- and each cost ~1,000 instructions in render_entry and
 * ~170 in bytes_hash and stab_find to find the text already written (flask's test_basic:
 * 140 K of 196 K such texts, callgrind). ---- */
#define TMEMO_STR_MAX 256   /* characters: a longer str is not held (its text is cut anyway) */

/* Tried in session 33 and not kept (flask test_basic's phase, real_profile.py against the
 * session's start, pairs taking turns). A drain of that run reads ~178 k str slots (V_OBJ; 165
 * characters on average, some very long) and ~102 k call-time texts (V_TEXT); the memo probes
 * ~205 k entries (69 k hits, 15 k of them the same objects; 89 k not keyable); strings_batch's
 * samples by line (perf annotate): the key's first read of a str 12 %, a V_TEXT's header in
 * slot_known 7 %, the memo's tag 6 % and place 3 %, record_worth's CodeInfo 5.5 %, the stalls
 * behind stab_prefetch 7 %.
 * - A str's key taken at call time into its slot's u.i (commit_key and capture_value, while
 *   the str is in the cache), the memo comparing keys before contents: with bytes_hash, 8 pairs:
 *   strings_batch -5.8, bytes_hash +6.2, commit_key +4.1; with a key of three words (no loop),
 *   16 and 24 pairs: strings_batch -5.8 / -7.2, bytes_hash -3.9 / -5.1, commit_key and
 *   start_keyed_miss / capture_value +8 / +7, memcmp +3.9 / under 1.8, our code -11 / -1. The first
 *   read only moves: a miss renders the str, a hit with another object compares its
 *   characters, and core_drain's DECREF reads each held str anyway.
 * - With it, the memo's tag and place fetched 4 entries ahead (keys known without an object):
 *   GCC then left record_entry, or record_objects, out of line; 16 pairs against the above:
 *   our code +10.
 * - Only the drain's key made of three words, not bytes_hash over the whole str: 24 pairs,
 *   bytes_hash -6.8, strings_batch +4.8, memcmp +2.1, our code +6.
 * - The text table's tags (strtab.c: 512 KB in flask's run, 128 small pages) mapped in a huge
 *   page as its keys are (TABLE_HUGE_MIN 512 KB): three runs of 24, 24 and 20 pairs,
 *   strings_batch -6.0, within +-1.6, +4.9; clear_page_erms +5.3, +9.9, +2.1 (a 2 MB page).
 * What would remove the read: a str's characters copied at call time and no reference held --
 * which the hot memo's keying of strs by address (capture.c value_key_in) needs. */

static inline uint64_t
tmemo_mix(uint64_t h, uint64_t x)
{
    h = (h ^ x) * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 29);
}

/* An exact str's or bytes' contents hashed (bytes_hash: PyObject_Hash's siphash of a str made
 * since -- most are -- was ~160 instructions a slot). */
static inline uint64_t
tmemo_obj_hash(PyObject *o)
{
    if (Py_TYPE(o) == &PyBytes_Type) return bytes_hash(PyBytes_AS_STRING(o), (size_t)PyBytes_GET_SIZE(o));
    int kind = PyUnicode_KIND(o);
    return bytes_hash(PyUnicode_DATA(o), (size_t)PyUnicode_GET_LENGTH(o) * (size_t)kind) ^ (uint64_t)kind;
}

/* A slot's contribution to the key: 1 with *x set when its text is a function of what the
 * memo compares (tmemo_slot_same), else 0. str and bytes by their contents, a function by its
 * qualname's contents and its address. */
static inline int
tmemo_slot_key(const Slot *s, uint64_t *x)
{
    switch (s->tag) {
    case V_NONE: case V_TRUE: case V_FALSE: case V_UNBOUND:
        *x = s->tag;
        return 1;
    case V_INT:
        if (s->u.i >= REC_INT_MIN || s->u.i <= -REC_INT_MIN) return 0;   /* (a record's slot) */
        *x = (uint64_t)s->u.i * 31 + V_INT;
        return 1;
    case V_OBJ: case V_TEXT: {
        PyTypeObject *tp = Py_TYPE(s->o);
        if (tp == &PyUnicode_Type) {
            if (PyUnicode_GET_LENGTH(s->o) > TMEMO_STR_MAX) return 0;
        } else if (tp == &PyBytes_Type) {
            if (PyBytes_GET_SIZE(s->o) > TMEMO_STR_MAX) return 0;
        } else return 0;   /* (a frozen tuple: not held -- what it holds could be any size) */
        *x = tmemo_obj_hash(s->o) * 3 + s->tag;
        return 1;
    }
    case V_FUNCTION:
        if (!PyUnicode_CheckExact(s->o) || PyUnicode_GET_LENGTH(s->o) > TMEMO_STR_MAX) return 0;
        *x = tmemo_obj_hash(s->o) ^ (uint64_t)s->u.addr;
        return 1;
    default:
        return 0;
    }
}

/* Is the memo's slot m the same as s for the text (see tmemo_slot_key)? */
static inline int
tmemo_slot_same(const Slot *m, const Slot *s)
{
    if (m->tag != s->tag) return 0;
    if (m->tag == V_INT) return m->u.i == s->u.i;
    if (m->tag == V_FUNCTION && m->u.addr != s->u.addr) return 0;
    if (m->o == s->o) return 1;
    if (!m->o || !s->o || Py_TYPE(m->o) != Py_TYPE(s->o)) return 0;
    if (Py_TYPE(m->o) == &PyUnicode_Type) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(m->o);
        return n == PyUnicode_GET_LENGTH(s->o) && PyUnicode_KIND(m->o) == PyUnicode_KIND(s->o)
               && !memcmp(PyUnicode_DATA(m->o), PyUnicode_DATA(s->o), (size_t)n * PyUnicode_KIND(m->o));
    }
    if (Py_TYPE(m->o) == &PyBytes_Type)
        return PyBytes_GET_SIZE(m->o) == PyBytes_GET_SIZE(s->o)
               && !memcmp(PyBytes_AS_STRING(m->o), PyBytes_AS_STRING(s->o), (size_t)PyBytes_GET_SIZE(m->o));
    return 0;
}

/* The memo's tags: a u32 a place, after its TMEMO_SIZE places in the same block (c->tmemo), the
 * hash's high half of the key a place holds (0: none). A probe reads its tag first, 16 KB for
 * the whole memo against 384 KB of places: a place's line -- after the program ran between two
 * drains nearly always from memory, ~15 of strings_batch's ~110 samples a flask run at its
 * first load -- is read on a probe only when its tag matches, and an entry not there has its
 * place's lines fetched for the text it will leave there (tmemo_put: after its rendering). */
static inline uint32_t *
tmemo_tags(const CoreObject *c)
{
    return (uint32_t *)(c->tmemo + TMEMO_SIZE);
}

static inline uint32_t
tmemo_tag(uint64_t h)
{
    return (uint32_t)(h >> 32) | 1;
}

/* Entry e's place in the memo (NULL when its text is not a function of its keyed slots: then
 * it is not memoized) and, when that place holds e's text of this session, its final id in
 * *sid (else 0). */
static TextMemo *
tmemo_find(CoreObject *c, const StrEntry *e, const Slot *slots, uint64_t *hash, uint32_t *sid)
{
    *sid = 0;
    if (e->packed || (e->kind != S_ARGS && e->kind != S_VALUE) || !e->nslots || e->nslots > TMEMO_SLOTS) return NULL;
    if (!c->tmemo && !(c->tmemo = PyMem_RawCalloc(TMEMO_SIZE, sizeof(TextMemo) + sizeof(uint32_t))))   /* (places, tags) */
        return NULL;   /* (none: still correct) */
    uint64_t h = tmemo_mix(e->kind, e->kind == S_ARGS ? e->code_idx : 0);
    const Slot *s = &slots[e->slot_off];
    for (uint32_t k = 0; k < e->nslots; k++) {
        uint64_t x;
        if (!tmemo_slot_key(&s[k], &x)) return NULL;
        h = tmemo_mix(h, x);
    }
    h |= 1;
    *hash = h;
    size_t at = HSLOT(h) & (TMEMO_SIZE - 1);
    TextMemo *m = &c->tmemo[at];
    if (tmemo_tags(c)[at] != tmemo_tag(h)) {   /* (not there: its lines wanted by tmemo_put) */
        fetch_line(m);
        fetch_line((const char *)m + sizeof *m - 1);
        return m;
    }
    if (m->hash != h || m->kind != e->kind || m->nslots != e->nslots   /* (emptied at every start: tmemo_clear) */
            || (e->kind == S_ARGS && m->code_idx != e->code_idx))
        return m;
    for (uint32_t k = 0; k < e->nslots; k++)
        if (!tmemo_slot_same(&m->slots[k], &s[k])) return m;
    *sid = m->sid;
    return m;
}

/* The objects that memo places let go of in this drain (tmemo_put), released after it with the
 * batch's own (tmemo_release, core_drain): most were put there a batch or more ago, and each
 * DECREF (and the prefetch of its line that came before it) waited on a miss and a page walk,
 * one entry at a time -- ~6 samples of strings_batch a flask phase, at ~30 ns an object, where
 * the drain's loop over the batch's objects, each fetched DROP_AHEAD ahead, takes ~5 ns. Kept
 * from drain to drain (GIL). */
static PyObject **memo_gone;
static size_t nmemo_gone, cap_memo_gone;

/* Keep e's final id at its place m (found by tmemo_find, the hash h), holding its objects. */
static void
tmemo_put(CoreObject *c, TextMemo *m, uint64_t h, const StrEntry *e, const Slot *slots, uint32_t sid)
{
    tmemo_tags(c)[m - c->tmemo] = tmemo_tag(h);
    Slot old[TMEMO_SLOTS];
    uint8_t nold = m->nslots;
    memcpy(old, m->slots, sizeof old);
    const Slot *s = &slots[e->slot_off];
    for (uint32_t k = 0; k < e->nslots; k++) { m->slots[k] = s[k]; Py_XINCREF(s[k].o); }
    m->hash = h; m->sid = sid; m->code_idx = e->code_idx;
    m->kind = e->kind; m->nslots = (uint8_t)e->nslots;
    if (nmemo_gone + TMEMO_SLOTS > cap_memo_gone && grow((void **)&memo_gone, &cap_memo_gone, nmemo_gone + TMEMO_SLOTS, sizeof(PyObject *)) < 0) {
        PyErr_Clear();   /* (no memory: let go of them here) */
        for (uint8_t k = 0; k < nold; k++) Py_XDECREF(old[k].o);   /* (strs and bytes -- no code runs) */
        return;
    }
    for (uint8_t k = 0; k < nold; k++) memo_gone[nmemo_gone] = old[k].o, nmemo_gone += old[k].o != NULL;
}

/* Release what the memo let go of in this drain (memo_gone), each object's line fetched
 * DROP_AHEAD objects before its DECREF (core_drain's loops: strs and bytes, no code runs). */
void
tmemo_release(void)
{
    size_t i = 0, n = nmemo_gone;
    for (; i + DROP_AHEAD < n; i++) {
        __builtin_prefetch(memo_gone[i + DROP_AHEAD], 1);
        Py_DECREF(memo_gone[i]);
    }
    for (; i < n; i++) Py_DECREF(memo_gone[i]);
    nmemo_gone = 0;
}

void
tmemo_clear(CoreObject *c)
{
    if (!c->tmemo) return;
    for (size_t i = 0; i < TMEMO_SIZE; i++) {
        TextMemo *m = &c->tmemo[i];
        for (uint8_t k = 0; k < m->nslots; k++) Py_CLEAR(m->slots[k].o);
        m->nslots = 0;
        m->hash = 0;
    }
    memset(tmemo_tags(c), 0, TMEMO_SIZE * sizeof(uint32_t));
}

static Text spare_blob, spare_ends;   /* strings_batch's buffers, kept between drains (GIL) */
static const char unreadable[] = "<unreadable>";

/* ---- a text's lookup waits for the next entry's work. The text table is read at random, and
 * after the program ran between two drains its line nearly always comes from memory: the
 * lookup right after the hash waited ~100 ns on it (stab_find's first load: ~80 % of its time,
 * flask's test_basic, perf). So a text rendered and hashed has its table lines fetched, and is
 * looked up (and written, given its final id) when the next entry needs the blob or an id --
 * after that entry's memo probe, rendering and hash, or after the record it made (the text
 * then goes in before it): stab_find 38 -> 10 samples a run -- the move alone: the fetch was
 * compiled to nothing until crecorder.h's fetch_line (then 19 -> 8.5 in flask's timed phase).
 * The ids and the blob take their texts and records in the entries' order all the same: the
 * same bytes. (The memo learns a text at its lookup: an entry right after it with the same key
 * renders it and finds it in the table -- the same id.) ---- */
typedef struct {
    int on;               /* a text waits */
    size_t i;             /* its entry */
    const char *u;        /* its UTF-8 (in a render buffer, its str, `enc` or `unreadable`) */
    size_t len;
    uint64_t h;           /* bytes_hash */
    PyObject *enc;        /* owns u's bytes, or NULL (text_utf8) */
    TextMemo *memo;       /* where it goes into the memo (tmemo_find), or NULL */
    uint64_t mh;
} TextWait;

/* The waiting text (if any) looked up and, when new, written -- at offset `at` of the blob: its
 * end, or where the record just written after it starts (moved up: a record is a few bytes) --
 * its final id into remap, the memo or small-int table told. 0, or -1 with an error set. */
static int
text_wait_end(CoreObject *c, TextWait *w, StrEntry *strs, const Slot *slots, Text *blob, size_t at, Text *ends,
              size_t spliced, uint32_t *remap, size_t *count, uint64_t gen0)
{
    if (!w->on) return 0;
    w->on = 0;
    uint32_t sid = stab_find(&c->stab, w->u, w->len, w->h);
    if (!sid) {
        sid = c->next_final_sid;
        if (stab_add(&c->stab, w->u, w->len, w->h, sid) < 0 || text_room(blob, w->len) < 0
                || put_u32le(ends, (uint32_t)(at + w->len + spliced)) < 0) {
            Py_CLEAR(w->enc);
            return -1;
        }
        /* (the record after it moved up, and the text copied, without libc's calls for the few
         * bytes most are: copy_short reads all its n <= 32 bytes before it stores any -- a record
         * made while a text waited, ~190 k a flask run, each moved by a memmove call: ~5 samples
         * of the phase) */
        size_t rest = blob->len - at;
        if (rest > 32) memmove(blob->p + at + w->len, blob->p + at, rest);
        else copy_short(blob->p + at + w->len, (const unsigned char *)blob->p + at, rest);
        copy_short(blob->p + at, (const unsigned char *)w->u, w->len);
        blob->len += w->len;
        c->next_final_sid++;
        (*count)++;
    }
    Py_CLEAR(w->enc);
    remap[w->i] = sid;
    uint32_t *fin = small_final(c, &strs[w->i], slots);   /* (re-read: rendering may run Python) */
    if (fin) *fin = sid;
    else if (w->memo && w->u != unreadable && c->gen == gen0) tmemo_put(c, w->memo, w->mh, &strs[w->i], slots, sid);   /* (gen0: no restart meanwhile) */
    return 0;
}

/* The drain's texts: final ids for the batch's `nstrs` entries into remap[0..nstrs) (a text
 * seen before keeps its id: strtab.c), and the STRS payload of what is new -- texts, and
 * records (above) -- into *payload (NULL when nothing is new; *count: how many). No Python
 * str is made per text (making one, a list of them, and freeing them cost about as much as
 * rendering; recorder/c.py reads a batch's texts back from the payload when asked).
 * -1 with an error set on failure. (Over 80 lines: one loop over the entries in their order,
 * which the ids and the blob follow -- records, memo hits, texts and the text waiting.) */
int
strings_batch(CoreObject *c, RenderCtx *rc, StrEntry *strs, size_t nstrs, Slot *slots, uint32_t *remap,
              PyObject **payload, size_t *count)
{
    /* the payload's two big parts are built in buffers kept from the last drain (spare_blob,
     * spare_ends: taken now, so that a drain on another thread while a hook runs Python makes
     * its own): a batch's texts grown from nothing and freed at every drain were given back
     * to the system and faulted in again, page by page */
    Text tbs[2] = {{NULL, 0, 0, 0}, {NULL, 0, 0, 0}}, runs = {NULL, 0, 0, 0}, blob = spare_blob, ends = spare_ends;
    TextWait wait = {0};   /* (a text rendered, its lookup not done yet: text_wait_end) */
    size_t spliced = 0;   /* the bytes of the runs (record_run): the blob's offsets are past them */
    Splice tail = {0, 0, 0};   /* (record_run's last copied run) */
    blob.len = blob.nchars = ends.len = ends.nchars = 0;
    spare_blob.p = spare_ends.p = NULL;
    spare_blob.cap = spare_ends.cap = 0;
    RecDict d;
    memset(&d, 0, sizeof d);
    uint32_t first_sid = c->next_final_sid;
    uint64_t gen0 = c->gen;
    int rc_ = -1, records = 0;
    *payload = NULL;
    *count = 0;
    uint64_t ct_prev = 0;   /* the last object address of the call-time records so far */
    if (put_u32le(&ends, 0) < 0 || put_u32le(&d.ends, 0) < 0 || record_dictionary(c, rc, &d) < 0) goto done;
    for (size_t i = 0; i < nstrs; i++) {
        StrEntry *e = &strs[i];
        if (e->kind == S_REC && wait.on && text_wait_end(c, &wait, strs, slots, &blob, blob.len, &ends, spliced, remap, count, gen0) < 0)
            goto done;   /* (records take the blob's end and ids: the text waiting first) */
        if (e->kind == S_REC && e->packed) {   /* call-time records with objects (capture.c rec_commit) */
            size_t run = objects_run(c, rc, strs, i, nstrs, &d, &ct_prev, &blob, spliced, &ends, remap);
            if (!run) goto done;
            *count += run;
            records = 1;
            i += run - 1;
            continue;
        }
        if (e->kind == S_REC) {   /* records already (packed.c, args_record; rec_commit): copied as they are */
            size_t run = record_run(c, rc, strs, i, nstrs, &blob, &runs, &spliced, &tail, &ends, remap);
            if (!run) goto done;
            *count += run;
            records = 1;
            i += run - 1;
            continue;
        }
        uint32_t *fin = e->packed || e->nslots != 1 ? NULL : small_final(c, e, slots);   /* a small int's text seen before: its id */
        if (fin && *fin) { remap[i] = *fin; continue; }
        uint64_t mh = 0;
        uint32_t msid = 0;
        TextMemo *memo = fin ? NULL : tmemo_find(c, e, slots, &mh, &msid);
        if (msid) { remap[i] = msid; continue; }   /* (an earlier batch wrote its text) */
        c->rendered++;
        /* (an entry with a memo place has every slot keyed -- none a float, an object, a big int
         * or packed: tmemo_slot_key -- so it is never worth a record: its code's CodeInfo and
         * order, ~10 samples of record_worth a flask phase, not read for it) */
        if (!memo && record_worth(c, e, slots)) {
            size_t at = blob.len;
            int r = e->kind == S_VALUE && e->nslots == 1 && !e->packed ? int_record(&slots[e->slot_off], &blob) : 1;
            if (r > 0) r = record_entry(c, rc, e, slots, &d, &blob);
            if (r == 0) {   /* (the text waiting goes first, before the record: its id and its place) */
                if ((wait.on && text_wait_end(c, &wait, strs, slots, &blob, at, &ends, spliced, remap, count, gen0) < 0)
                        || put_u32le(&ends, (uint32_t)(blob.len + spliced)) < 0)
                    goto done;
                remap[i] = c->next_final_sid++;
                (*count)++;
                records = 1;
                continue;
            }
            if (r < 0) PyErr_Clear();   /* the text path says what it can */
        }
        Text *tb = &tbs[wait.on && wait.u == tbs[0].p ? 1 : 0];   /* (not the waiting text's buffer) */
        const char *u = NULL;
        Py_ssize_t ulen = 0;
        PyObject *enc = NULL;
        if (e->kind == S_TEXT) u = text_utf8(e->text, &ulen, &enc);
        else if (render_entry(c, rc, e, slots, tb) == 0) { u = tb->p ? tb->p : ""; ulen = (Py_ssize_t)tb->len; }
        if (!u) {   /* one unreadable value must not lose the batch: say so in its place */
            PyErr_Clear();
            u = unreadable;
            ulen = 12;
        }
        if (fin) {
            /* A small int's or an exception's text seen the first time in this session (fin: its
             * small-int table keeps the final id from now on) is new without a lookup: the text
             * table would only ever find it through that table's entry (the odd text that another
             * path makes the same -- "n=5" of a parameter held in a cell -- is then written twice,
             * as a text the table forgot is) */
            if ((wait.on && text_wait_end(c, &wait, strs, slots, &blob, blob.len, &ends, spliced, remap, count, gen0) < 0)
                    || text_add(&blob, u, (size_t)ulen, 0) < 0 || put_u32le(&ends, (uint32_t)(blob.len + spliced)) < 0) {
                Py_XDECREF(enc);
                goto done;
            }
            Py_XDECREF(enc);
            uint32_t sid = c->next_final_sid++;
            (*count)++;
            remap[i] = sid;
            if ((fin = small_final(c, e, slots))) *fin = sid;   /* (re-read: rendering may run Python) */
            continue;
        }
        uint64_t h = bytes_hash(u, (size_t)ulen);
        stab_prefetch(&c->stab, h);   /* (looked up at the next entry: text_wait_end) */
        if (wait.on && text_wait_end(c, &wait, strs, slots, &blob, blob.len, &ends, spliced, remap, count, gen0) < 0) {
            Py_XDECREF(enc);
            goto done;
        }
        wait = (TextWait){1, i, u, (size_t)ulen, h, enc, memo, mh};
    }
    if (text_wait_end(c, &wait, strs, slots, &blob, blob.len, &ends, spliced, remap, count, gen0) < 0) goto done;
    if (*count) {
        /* <II first id, count (| STRS_RECORDS)>, [with records: u32 n, n + 1 ends, the
         * dictionary's texts], count + 1 ends, the entries -- u32s little-endian */
        size_t size = 8 + ends.len + blob.len + spliced + (records ? 4 + d.ends.len + d.blob.len : 0);
        Text h = {NULL, 0, 0, 0};
        if (put_u32le(&h, first_sid) < 0 || put_u32le(&h, (uint32_t)*count | (records ? STRS_RECORDS : 0)) < 0
                || (records && put_u32le(&h, d.n) < 0)) { PyMem_RawFree(h.p); goto done; }
        *payload = payload_bytes(size);
        if (!*payload) { PyMem_RawFree(h.p); goto done; }
        char *q = PyBytes_AS_STRING(*payload);
        memcpy(q, h.p, h.len); q += h.len;
        PyMem_RawFree(h.p);
        if (records) {
            memcpy(q, d.ends.p, d.ends.len); q += d.ends.len;
            if (d.blob.len) { memcpy(q, d.blob.p, d.blob.len); q += d.blob.len; }
        }
        memcpy(q, ends.p, ends.len); q += ends.len;
        put_spliced(q, &blob, &runs, rc->packed);
    }
    rc_ = 0;
done:
    Py_XDECREF(wait.enc);
    PyMem_RawFree(tbs[0].p); PyMem_RawFree(tbs[1].p); PyMem_RawFree(runs.p);
    if (!spare_blob.p) spare_blob = blob; else PyMem_RawFree(blob.p);
    if (!spare_ends.p) spare_ends = ends; else PyMem_RawFree(ends.p);
    PyMem_RawFree(d.blob.p); PyMem_RawFree(d.ends.p); PyMem_RawFree(d.names);
    return rc_;
}

/* ---- the readers' side: expand_strings(payload) -> the same STRS payload with every record
 * made into its text (flowtrace/ftr/format.py calls it when the extension is built; its
 * pure-Python twin gives the same bytes). ValueError when the payload does not parse. ---- */
static uint32_t
get_u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A table of texts: n + 1 little-endian u32 ends (the first 0) at `ends`, the texts at `blob`. */
typedef struct { const unsigned char *ends, *blob; uint32_t n, size; } TextTab;

static int
tab_get(const TextTab *t, uint64_t i, const unsigned char **p, size_t *len)
{
    if (i >= t->n) return -1;
    uint32_t a = get_u32le(t->ends + 4 * i), b = get_u32le(t->ends + 4 * (i + 1));
    if (a > b || b > t->size) return -1;
    *p = t->blob + a;
    *len = b - a;
    return 0;
}

/* One slot's text into `out`, *pp moved past it; -1 when it does not parse (an error set on
 * memory errors only). `dict`: the chunk's dictionary (NULL: a packed value, which has no
 * objects); `depth`: tuples and lists within tuples and lists (a writer nests them at most
 * MAX_DEPTH deep; a reader refuses what no writer makes). */
#define EXPAND_DEPTH 16
static int
expand_slot(const unsigned char **pp, const unsigned char *end, const void *dict_, const Label *own,
            const RenderCtx *rc, uint64_t *prev, Text *out, int depth)
{
    const TextTab *dict = dict_;
    const unsigned char *p = *pp;
    if (p >= end) return -1;
    unsigned char tag = *p++;
    if (tag == RS_LITERAL) {
        uint64_t n;
        if (get_varint(&p, end, &n) < 0 || n > (uint64_t)(end - p) || text_add(out, (const char *)p, n, 0) < 0) return -1;
        p += n;
    } else if (tag == RS_INT) {
        uint64_t z;
        if (get_varint(&p, end, &z) < 0) return -1;
        if (text_int(out, (int64_t)((z >> 1) ^ (0 - (z & 1)))) < 0) return -1;   /* zigzag back */
    } else if (tag == RS_FLOAT) {
        if (end - p < 8) return -1;
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits |= (uint64_t)p[i] << (8 * i);
        p += 8;
        Slot s = {NULL, {.i = 0}, V_FLOAT};
        memcpy(&s.u.d, &bits, 8);
        if (render_slot(NULL, out, &s, 0) < 0) return -1;
    } else if ((tag == RS_OBJECT || tag == RS_DEFREPR) && dict) {
        uint64_t li, z;
        const unsigned char *label;
        size_t len;
        if (get_varint(&p, end, &li) < 0 || tab_get(dict, li, &label, &len) < 0 || get_varint(&p, end, &z) < 0)
            return -1;
        uint64_t addr = *prev += (z >> 1) ^ (0 - (z & 1));   /* the step from the previous address */
        char hex[32], *h = hex + sizeof hex;
        *--h = '>';
        do { *--h = "0123456789abcdef"[addr & 15]; addr >>= 4; } while (addr);
        if (text_add(out, "<", 1, 0) < 0 || text_add(out, (const char *)label, len, 0) < 0
                || text_add(out, " object at 0x", 13, 0) < 0 || text_add(out, h, (size_t)(hex + sizeof hex - h), 0) < 0)
            return -1;
    } else if (tag == RS_TEXT_AT && dict) {   /* (1.10) a dictionary entry */
        uint64_t i;
        const unsigned char *u;
        size_t len;
        if (get_varint(&p, end, &i) < 0 || tab_get(dict, i, &u, &len) < 0 || text_add(out, (const char *)u, len, 0) < 0)
            return -1;
    } else if (tag == RS_PACKED_OBJECT && own) {   /* the writer's own packed bytes (render_slot) */
        uint64_t a;
        if (end - p < 8) return -1;
        memcpy(&a, p, 8);
        p += 8;
        if (text_add(out, "<", 1, 0) < 0 || text_add(out, own->u, own->len, 0) < 0 || text_object_at(out, (uintptr_t)a) < 0)
            return -1;
    } else if (tag == RS_PACKED_LABELED && rc) {   /* (the writer's own: its label numbered at call time) */
        uint32_t li;
        uint64_t a;
        if (end - p < PACKED_LABELED_BYTES - 1) return -1;
        memcpy(&li, p, 4);
        memcpy(&a, p + 4, 8);
        p += PACKED_LABELED_BYTES - 1;
        if (li >= rc->nitems) return -1;
        const RecItem *it = &rc->items[li];
        if (text_add(out, "<", 1, 0) < 0 || text_add(out, rc->labs + it->lab_off, it->lab_len, 0) < 0
                || text_object_at(out, (uintptr_t)a) < 0)
            return -1;
    } else if (tag == RS_TUPLE || tag == RS_LIST) {   /* (1.5) a count, then that many slots */
        uint64_t n;
        if (depth >= EXPAND_DEPTH || get_varint(&p, end, &n) < 0 || n > (uint64_t)(end - p)) return -1;
        if (text_add(out, tag == RS_TUPLE ? "(" : "[", 1, 0) < 0) return -1;
        for (uint64_t i = 0; i < n; i++)
            if ((i && text_add(out, ", ", 2, 0) < 0) || expand_slot(&p, end, dict, own, rc, prev, out, depth + 1) < 0) return -1;
        const char *close = tag == RS_LIST ? "]" : n == 1 ? ",)" : ")";
        if (text_add(out, close, strlen(close), 0) < 0) return -1;
    } else return -1;
    *pp = p;
    return 0;
}

/* One record's text into `out`; -1 when it does not parse (an error set on memory errors only). */
static int
expand_record(const unsigned char *p, const unsigned char *end, const TextTab *dict, uint64_t *prev, Text *out)
{
    if (end - p < 2) return -1;
    int args = p[1] == REC_ARGS;
    if (!args && p[1] != REC_VALUE) return -1;
    p += 2;
    const unsigned char *names = NULL, *names_end = NULL;
    if (args) {
        uint64_t ni;
        size_t len;
        if (get_varint(&p, end, &ni) < 0 || tab_get(dict, ni, &names, &len) < 0) return -1;
        names_end = names + len;
    }
    for (int k = 0; ; k++) {
        if (args) {   /* "name=": the next name of the list (one slot per name) */
            if (names > names_end) break;
            const unsigned char *stop = memchr(names, 0, (size_t)(names_end - names));
            if (!stop) stop = names_end;
            if ((k && text_add(out, ", ", 2, 0) < 0) || text_add(out, (const char *)names, (size_t)(stop - names), 0) < 0
                    || text_add(out, "=", 1, 0) < 0)
                return -1;
            names = stop + 1;
        } else if (k) break;
        if (expand_slot(&p, end, dict, NULL, NULL, prev, out, 0) < 0) return -1;
    }
    return p == end ? 0 : -1;
}

PyObject *
mod_expand_strings(PyObject *m, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *p = view.buf, *end = p + view.len;
    PyObject *result = NULL;
    Text ends = {NULL, 0, 0, 0}, out = {NULL, 0, 0, 0};
    TextTab dict = {NULL, NULL, 0, 0}, tab;
    if (end - p < 8) goto bad;
    uint32_t first = get_u32le(p), count = get_u32le(p + 4);
    if (!(count & STRS_RECORDS)) { result = PyBytes_FromStringAndSize((const char *)p, end - p); goto done; }
    count &= ~STRS_RECORDS;
    if (end - p < 12) goto bad;
    dict.n = get_u32le(p + 8);
    p += 12;
    if ((uint64_t)(end - p) < 4 * ((uint64_t)dict.n + 1)) goto bad;
    dict.ends = p;
    dict.blob = p + 4 * ((size_t)dict.n + 1);
    dict.size = get_u32le(p + 4 * (size_t)dict.n);
    if ((uint64_t)(end - dict.blob) < dict.size) goto bad;
    p = dict.blob + dict.size;
    if ((uint64_t)(end - p) < 4 * ((uint64_t)count + 1)) goto bad;
    tab.n = count;
    tab.ends = p;
    tab.blob = p + 4 * ((size_t)count + 1);
    tab.size = (uint32_t)(end - tab.blob);
    uint64_t prev = 0;   /* the previous record's object address (addresses are stored as steps) */
    if (put_u32le(&ends, first) < 0 || put_u32le(&ends, count) < 0 || put_u32le(&ends, 0) < 0) goto done;
    for (uint32_t i = 0; i < count; i++) {
        const unsigned char *e;
        size_t len;
        if (tab_get(&tab, i, &e, &len) < 0) goto bad;
        if (len && e[0] == REC_MARK) {
            if (expand_record(e, e + len, &dict, &prev, &out) < 0) { if (PyErr_Occurred()) goto done; goto bad; }
        } else if (text_add(&out, (const char *)e, len, 0) < 0) goto done;
        if (out.len > UINT32_MAX || put_u32le(&ends, (uint32_t)out.len) < 0) goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(ends.len + out.len));
    if (result) {
        memcpy(PyBytes_AS_STRING(result), ends.p, ends.len);
        if (out.len) memcpy(PyBytes_AS_STRING(result) + ends.len, out.p, out.len);
    }
    goto done;
bad:
    PyErr_SetString(PyExc_ValueError, "a STRS chunk's records do not parse");
done:
    PyMem_RawFree(ends.p);
    PyMem_RawFree(out.p);
    PyBuffer_Release(&view);
    return result;
}
