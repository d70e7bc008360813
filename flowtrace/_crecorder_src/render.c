/* flowtrace._crecorder: rendering captured values at drain time (reprs.py's text, in C). */
#include "crecorder.h"

/* ---- rendering at drain time: the reference's value_text / args_text, in C ---- */



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

void
labels_clear(RenderCtx *rc)
{
    for (int i = 0; i < LABELS; i++) { Py_CLEAR(rc->labels[i].label); rc->labels[i].type = NULL; }
}


int
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
int
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

/* ---- builtin containers at capture time: reprs._text in C ----
 * A container can mutate after the call, so its text is made at once. For the builtin
 * containers (list, tuple, dict, set, frozenset) and scalars (None, bools, ints, floats,
 * complex, str, bytes, bytearray, Ellipsis, NotImplemented) the text is built here, byte for
 * byte what reprs.value_text gives (tests/test_crecorder.py compares them on many values):
 * no Python call, no user code. Anything else inside (or a huge int) answers NOT_MINE, and the
 * wrapper's hook renders the whole value with the reference's rules. */
#define MAX_ITEMS 6   /* reprs.MAX_ITEMS */
#define MAX_DEPTH 3   /* reprs.MAX_DEPTH */
#define NOT_MINE 1

/* repr(s) for an exact str of at most MAX_STRING characters (a cut one gets "..." after). */
static int
text_str_repr(Text *t, PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (PyUnicode_IS_ASCII(s)) {   /* printable ASCII without quotes or backslashes: '...' */
        const char *p = (const char *)PyUnicode_DATA(s);
        Py_ssize_t i = 0;
        for (; i < n; i++) {
            char ch = p[i];
            if (ch < 0x20 || ch > 0x7e || ch == '\'' || ch == '"' || ch == '\\') break;
        }
        if (i == n)
            return text_add(t, "'", 1, 1) < 0 || text_add(t, p, (size_t)n, (size_t)n) < 0
                   || text_add(t, "'", 1, 1) < 0 ? -1 : 0;
    }
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
        if (PyUnicode_GET_LENGTH(o) <= MAX_STRING) return text_str_repr(t, o);
        PyObject *part = PyUnicode_Substring(o, 0, MAX_STRING);
        if (!part) return -1;
        int rc = text_str_repr(t, part);
        Py_DECREF(part);
        return rc < 0 ? -1 : text_add(t, "...", 3, 3);
    }
    Py_ssize_t n = tp == &PyBytes_Type ? PyBytes_GET_SIZE(o) : PyByteArray_GET_SIZE(o);
    PyObject *part = o;
    if (n > MAX_STRING) {
        part = tp == &PyBytes_Type ? PyBytes_FromStringAndSize(PyBytes_AS_STRING(o), MAX_STRING)
                                   : PyByteArray_FromStringAndSize(PyByteArray_AS_STRING(o), MAX_STRING);
        if (!part) return -1;
    }
    PyObject *r = PyObject_Repr(part);   /* bytes / bytearray repr: no user code */
    if (part != o) Py_DECREF(part);
    if (!r) return -1;
    int rc = text_add_str(t, r);
    Py_DECREF(r);
    if (rc == 0 && n > MAX_STRING) rc = text_add(t, "...", 3, 3);
    return rc;
}

static int render_now(Text *t, PyObject *o, int depth);

/* The items of a list / tuple / set / frozenset between `left` and `right`. */
static int
render_items(Text *t, PyObject *o, int depth, const char *left, const char *right)
{
    size_t nl = strlen(left), nr = strlen(right);
    if (text_add(t, left, nl, nl) < 0) return -1;
    if (depth >= MAX_DEPTH) return text_add(t, "...", 3, 3) < 0 || text_add(t, right, nr, nr) < 0 ? -1 : 0;
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == &PyList_Type || tp == &PyTuple_Type) {
        /* a list is read item by item with its size re-read: nothing here runs user code,
         * but the item is held while rendered */
        for (Py_ssize_t i = 0; i < Py_SIZE(o); i++) {
            if (i && text_add(t, ", ", 2, 2) < 0) return -1;
            if (i >= MAX_ITEMS) { if (text_add(t, "...", 3, 3) < 0) return -1; break; }
            PyObject *item = Py_NewRef(tp == &PyList_Type ? PyList_GET_ITEM(o, i) : PyTuple_GET_ITEM(o, i));
            int rc = render_now(t, item, depth + 1);
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
            else rc = render_now(t, item, depth + 1);
            Py_DECREF(item);
        }
        Py_DECREF(it);
        if (rc == 0 && PyErr_Occurred()) rc = -1;
        if (rc) return rc;
    }
    return text_add(t, right, nr, nr);
}

static int
render_dict(Text *t, PyObject *o, int depth)
{
    if (text_add(t, "{", 1, 1) < 0) return -1;
    if (depth >= MAX_DEPTH) return text_add(t, "...}", 4, 4);
    Py_ssize_t pos = 0, i = 0;
    PyObject *k, *v;
    while (PyDict_Next(o, &pos, &k, &v)) {   /* exact dict, builtin keys: no user code */
        if (i && text_add(t, ", ", 2, 2) < 0) return -1;
        if (i++ >= MAX_ITEMS) { if (text_add(t, "...", 3, 3) < 0) return -1; break; }
        Py_INCREF(k); Py_INCREF(v);
        int rc = render_now(t, k, depth + 1);
        if (rc == 0) rc = text_add(t, ": ", 2, 2);
        if (rc == 0) rc = render_now(t, v, depth + 1);
        Py_DECREF(k); Py_DECREF(v);
        if (rc) return rc;
    }
    return text_add(t, "}", 1, 1);
}

/* reprs._text(o, depth) for builtin values: 0, NOT_MINE, or -1 with an error set. */
static int
render_now(Text *t, PyObject *o, int depth)
{
    PyTypeObject *tp = Py_TYPE(o);
    if (o == Py_None) return text_add(t, "None", 4, 4);
    if (o == Py_True) return text_add(t, "True", 4, 4);
    if (o == Py_False) return text_add(t, "False", 5, 5);
    if (tp == &PyLong_Type) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (overflow) return NOT_MINE;   /* reprs._int's digit bound: the hook */
        if (x == -1 && PyErr_Occurred()) return -1;
        Slot s = {NULL, {.i = x}, V_INT};
        return render_slot(NULL, t, &s, 0);
    }
    if (tp == &PyFloat_Type) {
        Slot s = {NULL, {.d = PyFloat_AS_DOUBLE(o)}, V_FLOAT};
        return render_slot(NULL, t, &s, 0);
    }
    if (tp == &PyUnicode_Type || tp == &PyBytes_Type || tp == &PyByteArray_Type) return text_sequence_repr(t, o);
    if (tp == &PyComplex_Type || o == Py_Ellipsis || o == Py_NotImplemented) {
        PyObject *r = PyObject_Repr(o);
        if (!r) return -1;
        int rc = text_add_str(t, r);
        Py_DECREF(r);
        return rc;
    }
    if (tp == &PyList_Type || tp == &PyTuple_Type || tp == &PySet_Type || tp == &PyFrozenSet_Type) {
        if (PyObject_Length(o) == 0)
            return tp == &PyList_Type ? text_add(t, "[]", 2, 2) : tp == &PyTuple_Type ? text_add(t, "()", 2, 2)
                 : tp == &PySet_Type ? text_add(t, "set()", 5, 5) : text_add(t, "frozenset()", 11, 11);
        if (tp == &PyList_Type) return render_items(t, o, depth, "[", "]");
        if (tp == &PyTuple_Type) return render_items(t, o, depth, "(", PyTuple_GET_SIZE(o) == 1 ? ",)" : ")");
        if (tp == &PySet_Type) return render_items(t, o, depth, "{", "}");
        return render_items(t, o, depth, "frozenset({", "})");
    }
    if (tp == &PyDict_Type) return PyDict_GET_SIZE(o) ? render_dict(t, o, depth) : text_add(t, "{}", 2, 2);
    return NOT_MINE;
}

/* reprs.value_text(v) for a builtin value, now, as a str; NULL with no error set when the
 * value holds anything else (the caller asks the hook), NULL with an error on failure. */
PyObject *
builtin_text_now(PyObject *v)
{
    /* (a buffer per call, not a shared one: a finalizer run by an allocation in here may
     * release the GIL, and another thread's callback may then render too) */
    Text t = {NULL, 0, 0, 0};
    int rc = render_now(&t, v, 0);
    if (rc == 0 && t.nchars > MAX_TEXT) rc = text_cut(&t, 0, 0, MAX_TEXT);
    PyObject *r = rc ? NULL : PyUnicode_DecodeUTF8(t.p ? t.p : "", (Py_ssize_t)t.len, "surrogatepass");
    PyMem_RawFree(t.p);
    return r;
}
