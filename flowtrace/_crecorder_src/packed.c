/* flowtrace._crecorder: tuples and lists of scalars (and instances) packed at event time (value record slots). */
#include "crecorder.h"

/* A tuple or list of builtin scalars -- (n, ("job", (i, i + 1))), [x, y] -- is written at event
 * time straight into the slot of a value record (docs/FORMAT.md, "Value records", format 1.5):
 * a tag per item, ints as varints, strs as their repr's bytes, nested tuples and lists as a
 * count and their items. Nothing is referenced, rendered, hashed or interned: the drain copies
 * the bytes into the STRS payload and the reader makes the text, byte for byte reprs._text's
 * (bounded by MAX_ITEMS and MAX_DEPTH as it is; a value whose text could be cut at MAX_TEXT is
 * not packed). Before, a tuple was held until the drain (its items walked once to see it could
 * be, its references keeping the tuple free list empty), rendered to decimal text there, hashed
 * and looked up in the text table: ~1,500 instructions a call of the threaded workload.
 * Packing runs no Python code and allocates nothing (type tests and reads only), so a list's
 * items can be read in place and the bytes go to the thread's own buffer (ThreadState.pack)
 * until commit_slots copies them to the batch. In safe mode instances of one class are packed
 * too (1.7: raytrace's `(obj, t)` results, whose float's text cost ~7,500 instructions at call
 * time): their addresses, the slot holding the type until the drain writes its label. Anything
 * else -- a non-ASCII or quoted str, bytes, a big int, a dict, instances of a second class --
 * says no, and the value takes the capture's other paths (the whole value: a text is all one
 * kind). Packed values are not deduplicated: a memo
 * keyed by an entry's packed bytes (a hit reusing the batch's entry) was measured on the
 * threaded workload at 12.5 M instructions of keys for 6 M saved, and dropped. */

/* The bytes are written at `p` (the functions return where they end, NULL when the value cannot
 * be packed: kept in a register, not in a struct through a pointer); a container checks room
 * for ITEM_ROOM bytes an item before its items, and again after a nested container. `ch` adds
 * up an upper bound of the text's length (exact but for ints and floats: their widest text).
 * A bound is all the writers need -- a value or an argument list whose bound passes MAX_TEXT
 * takes the text path, which cuts it -- and an int's bound is a multiply, not a division per
 * digit. */
#define ITEM_ROOM 72   /* an item's most: a tag, a one-byte length and a cut str (1 + 1 + 62 + 3) */

static inline unsigned char *
put_literal(unsigned char *p, const char *s, size_t n)
{
    *p++ = RS_LITERAL;
    *p++ = (unsigned char)n;   /* (n < 128: one varint byte) */
    memcpy(p, s, n);
    return p + n;
}

/* Characters a str's repr shows as they are between single quotes: printable ASCII but quotes
 * and the backslash (a table: five tests a character were a fifth of packing). */
#define PLAIN_RANGE(c) ((c) >= 0x20 && (c) <= 0x7e && (c) != '\'' && (c) != '"' && (c) != '\\')
#define PLAIN16(c) PLAIN_RANGE(c), PLAIN_RANGE(c + 1), PLAIN_RANGE(c + 2), PLAIN_RANGE(c + 3), \
    PLAIN_RANGE(c + 4), PLAIN_RANGE(c + 5), PLAIN_RANGE(c + 6), PLAIN_RANGE(c + 7), PLAIN_RANGE(c + 8), \
    PLAIN_RANGE(c + 9), PLAIN_RANGE(c + 10), PLAIN_RANGE(c + 11), PLAIN_RANGE(c + 12), PLAIN_RANGE(c + 13), \
    PLAIN_RANGE(c + 14), PLAIN_RANGE(c + 15)
static const unsigned char plain_char[128] = {
    PLAIN16(0x00), PLAIN16(0x10), PLAIN16(0x20), PLAIN16(0x30), PLAIN16(0x40), PLAIN16(0x50), PLAIN16(0x60), PLAIN16(0x70),
};

/* repr(s) of an exact str, cut to MAX_STRING characters (+ "...") as reprs._text: only when it
 * is printable ASCII without quotes or backslashes (repr is then the characters in '...'). */
static inline unsigned char *
pack_str(unsigned char *p, PyObject *s, size_t *ch)
{
    if (!PyUnicode_IS_ASCII(s)) return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(s), shown = n > MAX_STRING ? MAX_STRING : n;
    const unsigned char *u = (const unsigned char *)PyUnicode_DATA(s);
    unsigned char plain = 1;
    for (Py_ssize_t i = 0; i < shown; i++) plain &= plain_char[u[i]];   /* (ASCII: u[i] < 128) */
    if (!plain) return NULL;
    size_t len = (size_t)shown + 2 + (n > MAX_STRING ? 3 : 0);
    p[0] = RS_LITERAL;
    p[1] = (unsigned char)len;   /* (len <= 65 < 128) */
    p[2] = '\'';
    memcpy(p + 3, u, (size_t)shown);
    p += 3 + shown;
    *p++ = '\'';
    if (n > MAX_STRING) { memcpy(p, "...", 3); p += 3; }
    *ch += len;
    return p;
}

static inline unsigned char *
pack_int(unsigned char *p, int64_t v, size_t *ch)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);   /* zigzag */
    *p++ = RS_INT;
    while (z >= 0x80) { *p++ = (unsigned char)(z | 0x80); z >>= 7; }
    *p++ = (unsigned char)z;
    /* at most bits * log10(2) + 1 digits, and a sign (1233 / 4096 > log10(2)) */
    uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    *ch += (((size_t)(64 - __builtin_clzll(m | 1)) * 1233) >> 12) + 1 + (v < 0);
    return p;
}

/* A tuple or list at `depth` (reprs._text(o, depth)): RS_TUPLE / RS_LIST, its count and its
 * first MAX_ITEMS items (then "..."); past MAX_DEPTH, or empty, the text itself. `*chars`:
 * the bound of its text's length. */
static unsigned char *
pack_items(unsigned char *p, const unsigned char *end, PyObject *o, int depth, size_t *chars, PyTypeObject **obj_type)
{
    int tuple = Py_TYPE(o) == &PyTuple_Type;
    Py_ssize_t n = Py_SIZE(o);   /* (a list's size cannot change meanwhile: no Python code runs) */
    const char *lit = NULL;
    if (!n) lit = tuple ? "()" : "[]";
    else if (depth >= MAX_DEPTH) lit = !tuple ? "[...]" : n == 1 ? "(...,)" : "(...)";
    if (lit) {
        size_t len = strlen(lit);
        *chars = len;
        return put_literal(p, lit, len);
    }
    Py_ssize_t shown = n > MAX_ITEMS ? MAX_ITEMS : n;
    if (end - p < (shown + 2) * ITEM_ROOM) return NULL;
    *p++ = tuple ? RS_TUPLE : RS_LIST;
    *p++ = (unsigned char)(shown + (n > shown));   /* (<= 7: one varint byte) */
    size_t ch = 2 * (size_t)shown + (tuple && n == 1);   /* brackets and ", " between, "(x,)" */
    PyObject **items = tuple ? ((PyTupleObject *)o)->ob_item : ((PyListObject *)o)->ob_item;
    for (Py_ssize_t i = 0; i < shown; i++) {
        PyObject *it = items[i];
        PyTypeObject *tp = Py_TYPE(it);
        if (tp == &PyLong_Type) {
            if (PyUnstable_Long_IsCompact((PyLongObject *)it)) {   /* one digit: no call */
                p = pack_int(p, (int64_t)PyUnstable_Long_CompactValue((PyLongObject *)it), &ch);
                continue;
            }
            int overflow = 0;
            long long x = PyLong_AsLongLongAndOverflow(it, &overflow);   /* (an exact int: no error) */
            if (overflow) return NULL;   /* (past 64 bits: reprs._int's rules, elsewhere) */
            p = pack_int(p, x, &ch);
        } else if (tp == &PyUnicode_Type) {
            if (!(p = pack_str(p, it, &ch))) return NULL;
        } else if (tp == &PyTuple_Type || tp == &PyList_Type) {
            size_t sub;
            if (!(p = pack_items(p, end, it, depth + 1, &sub, obj_type)) || end - p < (shown - i + 1) * ITEM_ROOM)
                return NULL;
            ch += sub;
        } else if (it == Py_None) {
            p = put_literal(p, "None", 4); ch += 4;
        } else if (it == Py_True) {
            p = put_literal(p, "True", 4); ch += 4;
        } else if (it == Py_False) {
            p = put_literal(p, "False", 5); ch += 5;
        } else if (tp == &PyFloat_Type) {   /* its 8 bytes; the reader makes repr() */
            *p++ = RS_FLOAT;
            p = put_f64le(p, PyFloat_AS_DOUBLE(it));
            ch += FLOAT_CHARS;
        } else if ((tp->tp_flags & Py_TPFLAGS_HEAPTYPE) && obj_type && (!*obj_type || *obj_type == tp)) {
            /* (1.7) safe mode, an instance (raytrace's `(obj, t)` results): its address; the
             * slot holds its type (pack_value), the drain writes the label (render.c) */
            *obj_type = tp;
            *p++ = RS_PACKED_OBJECT;
            uint64_t a = (uint64_t)(uintptr_t)it;
            memcpy(p, &a, 8);
            p += 8;
            ch += OBJECT_CHARS(a);   /* (and the label's characters: known at the drain) */
        } else return NULL;
    }
    if (n > shown) { p = put_literal(p, "...", 3); ch += 5; }
    *chars = ch;
    return p;
}

/* Pack tuple or list v (exact types) into slot s as V_PACKED: 1, or 0 when it cannot be (the
 * caller takes another path; nothing is kept). `safe`: instances of classes may be packed too
 * (safe mode shows them as placeholders; full mode calls their __repr__) -- all of one class,
 * whose type the slot then holds (a reference until the drain, as V_OPAQUE's: its label is
 * read there, and the type's address cannot name another type meanwhile). */
int
pack_value(Slot *s, PyObject *v, int safe)
{
    ThreadState *ts = tls_state;   /* (the callback running this capture has set it) */
    if (!ts) return 0;
    unsigned char *start = ts->pack + ts->npack;
    size_t chars = 0;
    PyTypeObject *obj_type = NULL;
    unsigned char *p = pack_items(start, ts->pack + PACK_MAX, v, 0, &chars, safe ? &obj_type : NULL);
    if (!p || chars > MAX_TEXT) return 0;
    size_t len = (size_t)(p - start);
    s->tag = V_PACKED;
    s->o = obj_type ? Py_NewRef((PyObject *)obj_type) : NULL;
    s->u.i = PACKED_AT(ts->npack, len, chars);
    ts->npack += len;
    return 1;
}

/* commit_slots, when the capture just made packed values (tls_state->npack): they go to the
 * batch, for entry e (its slots' offsets are from e->pack_off). 0, or -1 with an error set. */
int
pack_commit(CoreObject *c, StrEntry *e)
{
    ThreadState *ts = tls_state;
    e->pack_off = (uint32_t)c->npacked;
    size_t n = ts->npack;
    ts->npack = 0;
    e->packed = 1;
    if (c->npacked + n > UINT32_MAX) { PyErr_NoMemory(); return -1; }
    if (c->npacked + n > c->cappacked && grow((void **)&c->packed, &c->cappacked, c->npacked + n, 1) < 0) return -1;
    memcpy(c->packed + c->npacked, ts->pack, n);
    c->npacked += n;
    return 0;
}

/* A capture given up (or reusing an entry): its packed values are dropped. */
void
pack_drop(void)
{
    ThreadState *ts = tls_state;
    if (ts) ts->npack = 0;
}
