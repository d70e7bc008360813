/* flowtrace._crecorder: tuples and lists of scalars (and instances) packed at event time (value record slots). */
#include "crecorder.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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
 * kind). Packed values are not deduplicated by content: a memo keyed by an entry's packed bytes
 * (a hit reusing the batch's entry) was measured on the threaded workload at 12.5 M
 * instructions of keys for 6 M saved, and dropped; a tuple packed again is known by identity
 * instead (pack_known). */

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
    Py_ssize_t i = 0;
    /* the test and the copy in one pass (the bytes past the end are not the batch's until the
     * entry is: a str that says no leaves nothing behind; a call to memcpy was a third of a
     * short str's cost) -- 16 characters a step while 16 are left (SSE2, x86-64's baseline:
     * ~10 instructions a step where the table's loop took ~5 a character; a quarter of the
     * strs packed in flask's test_basic have 16 or more, and they hold most of the characters),
     * then one at a time. (ASCII: every byte < 128, so the signed compares order them right.) */
#ifdef __SSE2__
    for (; i + 16 <= shown; i += 16) {
        __m128i b = _mm_loadu_si128((const __m128i *)(u + i));
        __m128i bad = _mm_or_si128(_mm_cmplt_epi8(b, _mm_set1_epi8(0x20)), _mm_cmpgt_epi8(b, _mm_set1_epi8(0x7e)));
        bad = _mm_or_si128(bad, _mm_or_si128(_mm_cmpeq_epi8(b, _mm_set1_epi8('\'')), _mm_cmpeq_epi8(b, _mm_set1_epi8('"'))));
        bad = _mm_or_si128(bad, _mm_cmpeq_epi8(b, _mm_set1_epi8('\\')));
        if (_mm_movemask_epi8(bad)) return NULL;
        _mm_storeu_si128((__m128i *)(p + 3 + i), b);
    }
#endif
    for (; i < shown; i++) { plain &= plain_char[u[i]]; p[3 + i] = u[i]; }   /* (ASCII: u[i] < 128) */
    if (!plain) return NULL;
    size_t len = (size_t)shown + 2 + (n > MAX_STRING ? 3 : 0);
    p[0] = RS_LITERAL;
    p[1] = (unsigned char)len;   /* (len <= 65 < 128) */
    p[2] = '\'';
    p += 3 + shown;
    *p++ = '\'';
    if (n > MAX_STRING) { memcpy(p, "...", 3); p += 3; }
    *ch += len;
    return p;
}

/* An int's tag and varint at p, from its zigzag z (|v| < 8192: one or two bytes, one store
 * of the tag and them, no loop; the widest texts: 3 and 5 characters). */
static inline unsigned char *
pack_zigzag(unsigned char *p, uint64_t z, size_t *ch)
{
    if (z < 0x80) {
        uint16_t w = (uint16_t)(RS_INT | z << 8);
        memcpy(p, &w, 2);
        *ch += 3;
        return p + 2;
    }
    if (z < 0x4000) {   /* (the low 7 bits, the continuation bit, the high 7 bits) */
        uint32_t w = (uint32_t)(RS_INT | 0x8000 | (z + (z & ~(uint64_t)0x7f)) << 8);
        memcpy(p, &w, 4);   /* (a byte past the item: room for ITEM_ROOM is the callers') */
        *ch += 5;
        return p + 3;
    }
    unsigned char *q = p;
    *p++ = RS_INT;
    while (z >= 0x80) { *p++ = (unsigned char)(z | 0x80); z >>= 7; }
    *p++ = (unsigned char)z;
    /* the widest text of a value whose zigzag takes that many varint bytes: b bytes hold
     * |v| <= 2^(7b - 1), its digits and a sign (a table read: the bits' count and a multiply
     * were a quarter of an int's cost) */
    static const unsigned char widest[12] = {0, 0, 3, 5, 8, 10, 12, 14, 16, 18, 20, 20};
    *ch += widest[p - q];
    return p;
}

/* Exact int v (reprs._int: up to 64 bits; NULL past them). One digit: its zigzag straight from
 * the tag's sign bits and the digit -- 2d, or 2d - 1 when negative -- not the signed value's
 * multiply by the sign and the zigzag's shifts (PyUnstable_Long_CompactValue's layout,
 * cpython/longintrepr.h, 3.12 and 3.13). */
static inline __attribute__((always_inline)) unsigned char *
pack_int(unsigned char *p, PyObject *v, size_t *ch)
{
    uintptr_t tag = ((PyLongObject *)v)->long_value.lv_tag;
    if (tag < (2 << _PyLong_NON_SIZE_BITS))   /* PyUnstable_Long_IsCompact: one digit, no call */
        return pack_zigzag(p, ((uint64_t)((PyLongObject *)v)->long_value.ob_digit[0] << 1) - ((tag >> 1) & 1), ch);
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);   /* (an exact int: no error) */
    if (overflow) return NULL;   /* (past 64 bits: reprs._int's rules, elsewhere) */
    return pack_zigzag(p, ((uint64_t)x << 1) ^ (uint64_t)(x >> 63), ch);
}

/* A walk's state: the core (its batch's packed bytes and pack_ids); obj_type, where instances
 * may be packed (1.7, safe mode's slot path), the one class they must all be of (NULL: they may
 * not); objs, where instances are written as a call-time record's objects (safe mode's
 * args_record and value_record: any classes, capture.c rec_put_instance; NULL: they may not);
 * lit_objs, pack_value's second walk: instances of any classes labelled now (pack_labeled); and
 * what was seen since the last reset -- `thaw`: something whose text could change or that is not
 * to be held (a list, an instance, a tuple cut by MAX_ITEMS or MAX_DEPTH), `deepest`: the deepest
 * non-empty container, `named`: a class's or a function's text made now (pack_named), `mixed`:
 * instances of a second class (obj_type's walk). */
typedef struct { CoreObject *c; PyTypeObject **obj_type; RecObjs *objs; int thaw, deepest, named, mixed, lit_objs; } Walk;

static unsigned char *pack_items(unsigned char *p, const unsigned char *end, PyObject *o, int depth, size_t *chars,
                                 Walk *w);

/* pack_ids: a direct-mapped table by the tuple's address (objects are 16-byte aligned) */
#define PACK_ID_SLOT(o) ((((uintptr_t)(o) >> 4) ^ ((uintptr_t)(o) >> 10)) & (PACK_IDS - 1))

/* A tuple packed in this batch as an argument and packed again -- passed on inside another
 * tuple (f((n, meta)) after g(n, meta)), or a constant passed again: its bytes are copied, not
 * walked. The same bytes: it is the same object, alive (pack_ids holds it) and immutable, and
 * nested no deeper than its depth here shows. NULL when it is not known. */
static inline unsigned char *
pack_known(unsigned char *p, const unsigned char *end, PyObject *t, int depth, size_t *ch, Walk *w)
{
    if (Py_REFCNT(t) == 1) return NULL;   /* only its holder's: pack_ids holds a reference to each it knows */
    const PackId *pi = &w->c->pack_ids[PACK_ID_SLOT(t)];
    if (pi->o != t || pi->epoch != w->c->rec_epoch + 1 || depth + pi->height >= MAX_DEPTH || end - p < pi->len + 8)
        return NULL;
    const unsigned char *q = w->c->packed + pi->off;
    size_t len = pi->len;   /* (a local: the stores below may alias pi for the compiler) */
    int height = depth + pi->height;
    *ch += pi->chars;
    if ((size_t)pi->off + len + 8 <= w->c->cappacked)   /* 8 bytes at a time, when both ends have room past them */
        for (size_t i = 0; i < len; i += 8) memcpy(p + i, q + i, 8);
    else memcpy(p, q, len);
    if (height > w->deepest) w->deepest = height;
    return p + len;
}

/* Safe mode, an item that is a class, a function, a generator or a module -- (self, cls) pairs,
 * isinstance's class tuples, typing's cached (cls, params) keys, (func, args) pairs, pytest's lists
 * of conftest modules: ~11 k of flask test_basic's call-time container texts -- or, in pack_value's
 * second walk (lit_objs), an instance: its text now as a literal (render.c item_text_now: reads only, no Python), not the whole container's text
 * made now (builtin_text_now: a str made, then hashed and deduplicated at the drain, ~1,750
 * instructions a text). Its room: what the items after it leave (`rest`, pack_item's: theirs and
 * one item's more), at most a one-byte length. NULL when it cannot be (a text of another kind,
 * one too long: the container's text path, as before). The text could change (a class's
 * __qualname__ set): not a frozen tuple's (thaw). Out of line: the scalars' walk keeps its lines. */
static __attribute__((noinline)) unsigned char *
pack_named(unsigned char *p, const unsigned char *end, PyObject *it, size_t *ch, Walk *w, Py_ssize_t rest)
{
    ptrdiff_t room = (end - p) - 2 - (rest > ITEM_ROOM ? rest - ITEM_ROOM : 0);
    size_t n = room < 2 ? 0 : item_text_now(it, p + 2, room < 127 ? (size_t)room : 127);
    if (!n) return NULL;
    p[0] = RS_LITERAL;
    p[1] = (unsigned char)n;   /* (< 128: one varint byte) */
    *ch += n;   /* (ASCII: a character a byte) */
    w->thaw = w->named = 1;
    return p + 2 + n;
}

/* Instance `it` in pack_value's second walk (lit_objs: instances of two classes, or beside a class's
 * or a function's text): RS_PACKED_LABELED, its label numbered now in the batch's record dictionary
 * (rec_label_now) and its address; its text's characters, label included, added to *ch. NULL when its label is of another
 * kind (the text path). Out of line: rare. */
static __attribute__((noinline)) unsigned char *
pack_labeled(CoreObject *c, unsigned char *p, PyObject *it, size_t *ch)
{
    uint32_t li;
    size_t lc;
    const uint64_t a = (uint64_t)(uintptr_t)it, tp = (uint64_t)(uintptr_t)Py_TYPE(it);
    if (rec_label_now(c, Py_TYPE(it), &li, &lc) < 0) return NULL;
    *p = RS_PACKED_LABELED;
    memcpy(p + 1, &li, 4);
    memcpy(p + 5, &a, 8);
    memcpy(p + 13, &tp, 8);
    *ch += lc + OBJECT_CHARS(a);
    return p + PACKED_LABELED_BYTES;
}

/* One item `it` of a container at `depth` (or an argument, depth -1): its slot, its text's bound
 * added to *ch. Room for ITEM_ROOM bytes is the caller's to check; a nested container checks
 * its own, and that `rest` bytes are left after it (the items after it in its container: only
 * a container can use more than ITEM_ROOM, so only its branch tests). */
static inline __attribute__((always_inline)) unsigned char *
pack_item(unsigned char *p, const unsigned char *end, PyObject *it, int depth, size_t *ch, Walk *w, Py_ssize_t rest)
{
    PyTypeObject *tp = Py_TYPE(it);
    if (tp == &PyLong_Type) return pack_int(p, it, ch);
    if (tp == &PyUnicode_Type) return pack_str(p, it, ch);
    if (tp == &PyTuple_Type || tp == &PyList_Type) {
        unsigned char *q;
        if (tp == &PyTuple_Type && (q = pack_known(p, end, it, depth + 1, ch, w))) return end - q < rest ? NULL : q;
        size_t sub;
        if (!(p = pack_items(p, end, it, depth + 1, &sub, w))) return NULL;
        *ch += sub;
        return end - p < rest ? NULL : p;
    }
    if (it == Py_None) { *ch += 4; return put_literal(p, "None", 4); }
    if (it == Py_True) { *ch += 4; return put_literal(p, "True", 4); }
    if (it == Py_False) { *ch += 5; return put_literal(p, "False", 5); }
    if (tp == &PyFloat_Type) {   /* its 8 bytes; the reader makes repr() */
        *p++ = RS_FLOAT;
        *ch += FLOAT_CHARS;
        return put_f64le(p, PyFloat_AS_DOUBLE(it));
    }
    if ((tp->tp_flags & (Py_TPFLAGS_HEAPTYPE | Py_TPFLAGS_TYPE_SUBCLASS)) != Py_TPFLAGS_HEAPTYPE)
        return w->obj_type || w->objs || w->lit_objs ? pack_named(p, end, it, ch, w, rest) : NULL;   /* (safe mode: a class, a function) */
    w->thaw = 1;
    if (w->objs) return rec_put_instance(w->c, p, it, w->objs, ch);   /* (a record's object: its label now) */
    if (w->lit_objs) return pack_labeled(w->c, p, it, ch);   /* (pack_value's second walk: its label numbered now) */
    if (w->obj_type && (!*w->obj_type || *w->obj_type == tp)) {
        /* (1.7) safe mode, an instance (raytrace's `(obj, t)` results): its address; the
         * slot holds its type (pack_value), the drain writes the label (render.c) */
        if (!*w->obj_type && enum_class(tp)) return NULL;   /* (an Enum member's text is its own: text_enum) */
        *w->obj_type = tp;
        *p++ = RS_PACKED_OBJECT;
        uint64_t a = (uint64_t)(uintptr_t)it;
        memcpy(p, &a, 8);
        *ch += OBJECT_CHARS(a);   /* (and the label's characters: known at the drain) */
        return p + 8;
    }
    if (w->obj_type) w->mixed = 1;   /* (a second class: pack_value's second walk may take it) */
    return NULL;
}

/* An empty container, or one past MAX_DEPTH: its text (out of the loop's way: rare). */
static __attribute__((noinline)) unsigned char *
pack_as_literal(unsigned char *p, int tuple, Py_ssize_t n, size_t *chars, Walk *w)
{
    const char *lit = !n ? (tuple ? "()" : "[]") : !tuple ? "[...]" : n == 1 ? "(...,)" : "(...)";
    w->thaw |= !tuple || n;   /* (a list, or a tuple's items not walked) */
    size_t len = strlen(lit);
    *chars = len;
    return put_literal(p, lit, len);
}

/* A tuple or list at `depth` (reprs._text(o, depth)): RS_TUPLE / RS_LIST, its count and its
 * first MAX_ITEMS items (then "..."); past MAX_DEPTH, or empty, the text itself. `*chars`:
 * the bound of its text's length. */
static inline __attribute__((always_inline)) unsigned char *
pack_items_at(unsigned char *p, const unsigned char *end, PyObject *o, int depth, size_t *chars, Walk *w)
{
    int tuple = Py_TYPE(o) == &PyTuple_Type;
    Py_ssize_t n = Py_SIZE(o);   /* (a list's size cannot change meanwhile: no Python code runs) */
    if (__builtin_expect(!n || depth >= MAX_DEPTH, 0)) return pack_as_literal(p, tuple, n, chars, w);
    Py_ssize_t shown = n > MAX_ITEMS ? MAX_ITEMS : n;
    if (end - p < (shown + 2) * ITEM_ROOM) return NULL;
    if (!tuple || n > shown) w->thaw = 1;
    if (depth > w->deepest) w->deepest = depth;
    p[0] = tuple ? RS_TUPLE : RS_LIST;
    p[1] = (unsigned char)(shown + (n > shown));   /* (<= 7: one varint byte) */
    p += 2;
    size_t ch = 2 * (size_t)shown + (tuple && n == 1);   /* brackets and ", " between, "(x,)" */
    PyObject **items = tuple ? ((PyTupleObject *)o)->ob_item : ((PyListObject *)o)->ob_item;
    for (Py_ssize_t i = 0; i < shown; i++)   /* (room for the rest checked after a nested container) */
        if (!(p = pack_item(p, end, items[i], depth, &ch, w, (shown - i + 1) * ITEM_ROOM))) return NULL;
    if (n > shown) { p = put_literal(p, "...", 3); ch += 5; }
    *chars = ch;
    return p;
}

/* (out of line for the nested containers; an argument's own container is packed inline in
 * args_record: a call less per argument list) */
static unsigned char *
pack_items(unsigned char *p, const unsigned char *end, PyObject *o, int depth, size_t *chars, Walk *w)
{
    return pack_items_at(p, end, o, depth, chars, w);
}

/* Pack tuple or list v (exact types) into slot s as V_PACKED: 1, or 0 when it cannot be (the
 * caller takes another path; nothing is kept). `safe`: instances of classes may be packed too
 * (safe mode shows them as placeholders; full mode calls their __repr__) -- all of one class,
 * whose type the slot then holds (a reference until the drain, as V_OPAQUE's: its label is
 * read there, and the type's address cannot name another type meanwhile). */
int
pack_value(CoreObject *c, Slot *s, PyObject *v, int safe)
{
    ThreadState *ts = tls_state;   /* (the callback running this capture has set it) */
    if (!ts) return 0;
    unsigned char *start = ts->pack + ts->npack;
    size_t chars = 0;
    PyTypeObject *obj_type = NULL;
    Walk w = {c, safe ? &obj_type : NULL, NULL, 0, -1, 0, 0, 0};
    unsigned char *p = pack_items(start, ts->pack + PACK_MAX, v, 0, &chars, &w);
    if (p && obj_type && w.named) p = NULL, w.mixed = 1;   /* (see below) */
    if (!p && w.mixed) {
        /* instances of two classes, or beside a class's or a function's text (an instance's label
         * is the drain's, such a text is made now: a class renamed between would show two names):
         * walked again with every instance's placeholder made now too, as builtin_text_now would
         * make it (~6 k of flask test_basic's argument tuples: (self, cls), (obj, other)) */
        Walk w2 = {c, NULL, NULL, 0, -1, 0, 0, 1};
        obj_type = NULL;
        chars = 0;
        if (!(p = pack_items(start, ts->pack + PACK_MAX, v, 0, &chars, &w2)) || chars > MAX_TEXT) return 0;
        const uint32_t now = c->rec_epoch + 1;
        ts->pack_lab_epoch = !ts->pack_lab_epoch || ts->pack_lab_epoch == now ? now : UINT32_MAX;
        s->tag = V_PACKED;
        s->o = NULL;
        s->u.i = PACKED_AT(ts->npack, p - start, chars) | PACKED_LABELS;
        ts->npack += (size_t)(p - start);
        return 1;
    }
    if (!p || chars > MAX_TEXT) return 0;
    size_t len = (size_t)(p - start);
    s->tag = V_PACKED;
    s->o = obj_type ? Py_NewRef((PyObject *)obj_type) : NULL;
    s->u.i = PACKED_AT(ts->npack, len, chars);
    ts->npack += len;
    return 1;
}

/* Where value_record writes: REC_SIDE bytes past the end of the batch's packed bytes when the last
 * value record held an instance (raytrace's `(obj, t)` results, one after another), else at their
 * end (a generator's (key, value), a router's (name, args)); a wrong guess moves the record. */
static size_t value_side = REC_SIDE;

/* The S_REC entry of a value record just written at `start` (REC_MARK, REC_VALUE, the value's
 * slots) up to `end`, value_side bytes past the end of the batch's packed bytes: with instances in
 * it, its side bytes before it (rec_entry_objs' for an argument list), without, at the end of the
 * packed bytes (as packed_value_rec's) -- moved there when value_side said otherwise. Its string
 * id, or 0 (no memory; no error set). */
static uint32_t
value_rec_entry(CoreObject *c, unsigned char *start, const unsigned char *end, const RecObjs *r)
{
    uint32_t sid;
    StrEntry *e = str_entry(c, &sid);
    if (!e) { PyErr_Clear(); return 0; }
    size_t len = (size_t)(end - start);
    const size_t side = r->step_at ? REC_SIDE : 0;
    if (side != value_side) {   /* (the guess was wrong: the record moved, the next one guessed so) */
        unsigned char *to = c->packed + c->npacked + side;
        memmove(to, start, len);
        start = to;
        value_side = side;
    }
    e->kind = S_REC;   /* (code_idx 0: str_entry's) */
    e->rec_len = len;
    if (!side) {
        e->pack_off = (uint32_t)c->npacked;
    } else {
        uint16_t sa = (uint16_t)r->step_at;   /* (< PACK_MAX) */
        memcpy(start - REC_SIDE, &r->first, 8);
        memcpy(start - REC_SIDE + 8, &r->addr, 8);
        memcpy(start - REC_SIDE + 16, &sa, 2);
        c->rec_addr = r->addr;
        e->packed = 1;
        e->pack_off = (uint32_t)(start - c->packed);
    }
    c->npacked = e->pack_off + len;
    return sid;
}

/* A result or yielded value v, an exact tuple or list (safe mode), written now as a value record
 * straight into the batch's packed bytes: its instances, of any classes, as the record's objects
 * (their labels numbered now, rec_put_instance, as args_record's). Its string id, or 0 when it is
 * not one (nothing kept, no error set: value_id's way then). Before, a value holding instances of
 * one class was a slot whose type the drain labelled (commit_slots, render.c packed_objects), and
 * one holding two classes made its whole text now (builtin_text_now: ~4.9 k results a flask
 * test_basic run, ~1,750 instructions each, then hashed and deduplicated at the drain). No Python
 * code runs from the first byte to the entry (type tests, reads, labels: rec_label_new). */
uint32_t
value_record(CoreObject *c, PyObject *v)
{
    const size_t room = REC_SIDE + PACK_MAX;
    if (c->args_mode != 1 || c->npacked + room > UINT32_MAX) return 0;   /* (full mode: instances show their __repr__) */
    if (c->npacked + room > c->cappacked && grow((void **)&c->packed, &c->cappacked, c->npacked + room, 1) < 0) {
        PyErr_Clear();
        return 0;
    }
    unsigned char *start = c->packed + c->npacked + value_side;
    RecObjs objs = {start, c->rec_addr, 0, 0};
    Walk w = {c, NULL, &objs, 0, -1, 0, 0, 0};
    size_t chars = 0;
    start[0] = REC_MARK;
    start[1] = REC_VALUE;
    unsigned char *p = pack_items(start + 2, start + PACK_MAX, v, 0, &chars, &w);
    if (!p || chars > MAX_TEXT) return 0;   /* (a text that could be cut: the text path cuts it) */
    return value_rec_entry(c, start, p, &objs);
}

/* Forget every tuple pack_ids holds, every code's shape and the labels rec_label_now knows (the recording stops). */
void
pack_ids_clear(CoreObject *c)
{
    for (size_t i = 0; i < PACK_IDS; i++) Py_CLEAR(c->pack_ids[i].o);
    rec_labels_now_clear();
    for (size_t i = 0; i < c->ncodes; i++) shape_free(&c->codes[i]);   /* (and the strs shapes hold) */
}

/* Remember tuple t, packed as an argument at `off` in the batch's packed bytes (args_record). */
static void
pack_id_add(CoreObject *c, PyObject *t, size_t off, size_t len, size_t chars, int height)
{
    PackId *pi = &c->pack_ids[PACK_ID_SLOT(t)];
    if (pi->o != t) {
        PyObject *old = pi->o;
        pi->o = Py_NewRef(t);
        Py_XDECREF(old);   /* (a tuple of immutable scalars: freeing it runs no Python code) */
    }
    pi->epoch = c->rec_epoch + 1;
    pi->off = (uint32_t)off; pi->len = (uint16_t)len; pi->chars = (uint16_t)chars; pi->height = (uint8_t)height;
}

/* The labels of the RS_PACKED_LABELED instances in the packed bytes [p, end) numbered again in
 * this batch's record dictionary (pack_commit: a hook ran a drain after they were numbered). Their
 * types are alive: the capture's frame holds the instances. 0, or -1 (a label of another kind
 * now, no memory: error set). */
static COLD int
pack_relabel(CoreObject *c, unsigned char *p, const unsigned char *end)
{
    while (p < end) {
        unsigned char tag = *p++;
        if (tag == RS_PACKED_LABELED) {
            uint64_t tp;
            uint32_t li;
            size_t lc;
            memcpy(&tp, p + 12, 8);
            if (rec_label_now(c, (PyTypeObject *)(uintptr_t)tp, &li, &lc) < 0) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_SystemError, "a packed instance's label changed kind");
                return -1;
            }
            memcpy(p, &li, 4);
            p += PACKED_LABELED_BYTES - 1;
        } else if (tag == RS_LITERAL) p += 1 + *p;   /* (a one-byte length) */
        else if (tag == RS_FLOAT || tag == RS_PACKED_OBJECT) p += 8;
        else if (tag == RS_INT) { while (*p & 0x80) p++; p++; }
        else p++;   /* (RS_TUPLE, RS_LIST: a one-byte count) */
    }
    return 0;
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
    if (ts->pack_lab_epoch) {   /* (labels numbered in another batch: again in this one) */
        uint32_t was = ts->pack_lab_epoch;
        ts->pack_lab_epoch = 0;
        if (was != c->rec_epoch + 1 && pack_relabel(c, ts->pack, ts->pack + n) < 0) return -1;
    }
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
    if (ts) ts->npack = 0, ts->pack_lab_epoch = 0;
}

/* ---- whole argument lists as records at event time ----
 * An argument list that holds a tuple or list it packs (g(n, ("job", (n, n + 1)))) is always
 * written as a value record (render.c, record_entry: a packed slot is a record's slot already).
 * Its other arguments, when they are ints, strs, floats, None or bools, are slots that packing
 * writes too: so the whole record is written at once -- its header, then the slots in display
 * order -- straight into the batch's packed bytes: no Slot per argument, no copy from the
 * thread's buffer, no memo key, and the drain copies runs of such records as they are
 * (strings_batch). In safe mode its instances (a `self`, items of its tuples) are written too,
 * as rec_commit writes a keyed list's (capture.c: their labels numbered in the batch's
 * dictionary, their addresses stepped, side bytes before the record; the drain copies it and
 * mends its first step, record_objects).
 * The bytes and the text are those record_entry makes from the slots. No Python code runs
 * from the first byte to the entry (type tests and reads only; a label read from its class's
 * dict, rec_label_new), so no other thread writes the batch meanwhile. Anything else -- a class,
 * a function, a dict, a str it cannot pack, an unbound parameter, a text that could be cut, a
 * label made otherwise, a list without a container -- takes the slot path (args_id). */

/* Can code ci's argument lists be records (its names hold no NUL: dict_names's rule), and the
 * characters its names and separators add to a text ("name=" each, ", " between). COLD: once a
 * code (rec_commit's test of it then goes to its .cold part). */
COLD int
args_layout(CodeInfo *ci)
{
    size_t chars = ci->nshown ? 2 * (size_t)(ci->nshown - 1) : 0;
    ci->rec = ARGREC_NO;
    for (uint32_t k = 0; k < ci->nshown; k++) {
        PyObject *name = PyTuple_GET_ITEM(ci->names, k);
        Py_ssize_t n = PyUnicode_GET_LENGTH(name);
        if (PyUnicode_FindChar(name, 0, 0, n, 1) != -1) { PyErr_Clear(); return ARGREC_NO; }
        chars += (size_t)n + 1;
    }
    if (!ci->nshown || chars > 2 * MAX_TEXT) return ARGREC_NO;
    ci->rec_chars = (uint16_t)chars;
    return ci->rec = ARGREC_YES;
}

/* ---- a code's argument lists walked by the shape of its last one ----
 * A code is mostly called with lists of one shape again and again (threaded's g(n, ("job", (n,
 * n + 1)))): an int, then a tuple of the same str object and a tuple of two ints. After a record
 * the general walk made, the list's shape is compiled (shape_compile): its values' kinds in the
 * walk's order, each with where it is (a level and an index: level 0 the frame's arguments,
 * level d + 1 the items of the last container at level d), a container's count, a str's object
 * (a reference) and bytes. The next list is walked by that shape (start_shaped): each value's kind
 * checked as it is written -- the same str object: its bytes copied; another str: packed -- and
 * at the first difference the general walk writes the list again from the header (and its
 * record gives the code a new shape: SHAPE_TRIES a batch). The bytes are the general walk's: a
 * shape is made only of values that walk packs as they are (ints of 64 bits, strs, floats,
 * None, True, False, tuples and lists of 1..MAX_ITEMS items above MAX_DEPTH), and only when the
 * most that any list of that shape could write (SH_*_MOST) passes none of the walk's bounds
 * (MAX_TEXT an argument, 2 * MAX_TEXT a list, its room): so the walk's answer cannot depend on
 * the values, only on the kinds the shape checks. A new shape is checked once against the record
 * it came from. (Measured and dropped: f's inner tuple in f((n, meta)) copied by identity from the
 * bytes g(n, meta)'s shape had just written -- g's shape keeping its argument's tuple in pack_ids,
 * f's looking it up -- threaded, callgrind: f's walk -5 M, g's keeping (a reference taken and
 * one dropped, its slot) +5 M: net +0.2 M.) */
#define SHAPE_LEVELS (MAX_DEPTH + 1)
#define SHAPE_OPS 64     /* a shape's values at most (and its end) */
#define SHAPE_POOL 512   /* bytes of its strs and constants at most (16 of them read past its last) */
#define SHAPE_TRIES 4    /* shapes a code may compile in one batch */
/* the most bytes any list of a shape may write: its header's (7) and the general walk's largest
 * room test (a container of MAX_ITEMS: (MAX_ITEMS + 2) * ITEM_ROOM) past them still fit PACK_MAX */
#define SHAPE_MAX_BYTES (PACK_MAX - (MAX_ITEMS + 2) * ITEM_ROOM - 8)
#define SH_INT_MOST 11, 20                     /* bytes, characters: a tag and a 10-byte varint, 20 digits and a sign */
#define SH_STR_MOST 2 + 2 + MAX_STRING + 3, 2 + MAX_STRING + 3   /* pack_str's: quotes and "..." */
#define SH_FLOAT_MOST 9, FLOAT_CHARS

/* SH_INTS: a tuple of ints (shape_merge_ints); SH_ARG: or'ed, an argument's */
enum { SH_INT, SH_STR, SH_CONST, SH_EMPTY, SH_FLOAT, SH_TUPLE, SH_LIST, SH_INTS, SH_END, SH_ARG = 16 };
typedef struct {
    uint8_t kind, lvl, n, len;   /* n: a container's items; len: an SH_STR, SH_CONST or SH_EMPTY's bytes */
    uint16_t idx, off;           /* its index in its level; its bytes' offset in the pool */
    PyObject *obj;               /* SH_STR: the str (a reference); SH_CONST: None, True or False;
                                  * SH_EMPTY: the type of the empty tuple or list ("()", "[]") */
    const void *go;              /* start_shaped's code for its kind (set by its first walk, `at`) */
} ShapeOp;
/* `ready`: every op's `go` set -- by the shape's first walk, shape_learn's check, before any
 * PY_START walks it (a shape is only ever made there) */
struct ArgShape { const unsigned char *pool; int ready; ShapeOp ops[]; };

typedef struct {
    ShapeOp ops[SHAPE_OPS];
    unsigned char pool[SHAPE_POOL];
    uint32_t nops, npool;
    size_t bytes, chars;   /* the most any list of this shape writes; the most characters of this argument */
} ShapeBuild;

static inline void
shape_most(ShapeBuild *b, size_t bytes, size_t chars)
{
    b->bytes += bytes;
    b->chars += chars;
}

/* Value v, at index idx of level lvl, and its items: the shape's ops. 0 when the general walk
 * could write it otherwise than its kind says (or the shape would be too big). */
static int
shape_value(ShapeBuild *b, PyObject *v, int lvl, Py_ssize_t idx)
{
    if (b->nops >= SHAPE_OPS - 1 || idx > UINT16_MAX || b->npool + 2 + 2 + MAX_STRING + 3 + 16 > SHAPE_POOL)
        return 0;   /* (room left for SH_END; for a str's bytes and the 16 read past the last) */
    ShapeOp *op = &b->ops[b->nops++];
    memset(op, 0, sizeof *op);
    op->lvl = (uint8_t)lvl;
    op->idx = (uint16_t)idx;
    PyTypeObject *tp = Py_TYPE(v);
    unsigned char *q = b->pool + b->npool;
    size_t ch = 0;
    if (tp == &PyLong_Type) {
        op->kind = SH_INT;
        shape_most(b, SH_INT_MOST);
    } else if (tp == &PyUnicode_Type || v == Py_None || v == Py_True || v == Py_False) {
        unsigned char *e = tp == &PyUnicode_Type ? pack_str(q, v, &ch)
            : v == Py_None ? put_literal(q, "None", 4) : v == Py_True ? put_literal(q, "True", 4) : put_literal(q, "False", 5);
        if (!e) return 0;
        op->kind = tp == &PyUnicode_Type ? SH_STR : SH_CONST;
        op->obj = v;
        op->len = (uint8_t)(e - q);
        op->off = (uint16_t)b->npool;
        b->npool += op->len;
        if (op->kind == SH_STR) shape_most(b, SH_STR_MOST);
        else shape_most(b, op->len, op->len - 2);
    } else if (tp == &PyFloat_Type) {
        op->kind = SH_FLOAT;
        shape_most(b, SH_FLOAT_MOST);
    } else if ((tp == &PyTuple_Type || tp == &PyList_Type) && !Py_SIZE(v)) {   /* (pack_as_literal's) */
        op->kind = SH_EMPTY;
        op->obj = (PyObject *)tp;
        op->len = 4;
        op->off = (uint16_t)b->npool;
        put_literal(q, tp == &PyTuple_Type ? "()" : "[]", 2);
        b->npool += op->len;
        shape_most(b, 4, 2);
    } else if (tp == &PyTuple_Type || tp == &PyList_Type) {
        Py_ssize_t n = Py_SIZE(v);
        if (n > MAX_ITEMS || lvl >= MAX_DEPTH) return 0;   /* (its text: pack_as_literal's) */
        int tuple = tp == &PyTuple_Type;
        op->kind = tuple ? SH_TUPLE : SH_LIST;
        op->n = (uint8_t)n;
        shape_most(b, 2, 2 * (size_t)n + (tuple && n == 1));
        PyObject **items = tuple ? ((PyTupleObject *)v)->ob_item : ((PyListObject *)v)->ob_item;
        for (Py_ssize_t i = 0; i < n; i++)
            if (!shape_value(b, items[i], lvl + 1, i)) return 0;
    } else {
        return 0;
    }
    return 1;
}

static void
shape_release(struct ArgShape *s)
{
    for (const ShapeOp *op = s->ops; op->kind != SH_END; op++)
        if ((op->kind & ~SH_ARG) == SH_STR) Py_DECREF(op->obj);   /* (a str: freeing it runs no Python code) */
    PyMem_RawFree(s);
}

/* Forget code ci's shape. */
void
shape_free(CodeInfo *ci)
{
    if (ci->shape) shape_release(ci->shape);
    ci->shape = NULL;
}

/* A tuple whose items are all ints -- threaded's (n, n + 1) -- made one op, SH_INTS, that walks
 * them itself: a jump from op to op less an item (the tuple's op is followed by its items' in
 * the walk's order, so they are the next n ops; nothing else reads their level). */
static void
shape_merge_ints(ShapeBuild *b)
{
    for (uint32_t k = 0; k < b->nops; k++) {
        ShapeOp *op = &b->ops[k];
        uint32_t n = op->n;
        if ((op->kind & ~SH_ARG) != SH_TUPLE || k + n >= b->nops) continue;
        uint32_t i = 1;
        while (i <= n && b->ops[k + i].kind == SH_INT) i++;
        if (i <= n) continue;
        op->kind = SH_INTS | (op->kind & SH_ARG);
        memmove(op + 1, op + 1 + n, (b->nops - k - 1 - n) * sizeof *op);
        b->nops -= n;
    }
}

/* The shape of the argument list of the frame running code ci (no cell among its arguments),
 * or NULL (no error set) when it cannot have one. */
static struct ArgShape *
shape_compile(const CodeInfo *ci, _PyInterpreterFrame *frame)
{
    ShapeBuild b;
    b.nops = b.npool = 0;
    b.bytes = 0;
    size_t chars = ci->rec_chars;
    for (uint32_t k = 0; k < ci->nshown; k++) {
        PyObject *v = frame->localsplus[ci->order[k]];
        uint32_t at = b.nops;
        b.chars = 0;
        if (!v || !shape_value(&b, v, 0, ci->order[k]) || b.chars > MAX_TEXT) return NULL;
        b.ops[at].kind |= SH_ARG;
        chars += b.chars;
    }
    if (chars > 2 * MAX_TEXT || b.bytes > SHAPE_MAX_BYTES) return NULL;
    shape_merge_ints(&b);
    memset(&b.ops[b.nops], 0, sizeof b.ops[0]);
    b.ops[b.nops++].kind = SH_END;
    size_t ops = b.nops * sizeof(ShapeOp);
    struct ArgShape *s = PyMem_RawMalloc(sizeof(struct ArgShape) + ops + b.npool + 16);
    if (!s) return NULL;
    memcpy(s->ops, b.ops, ops);
    unsigned char *pool = (unsigned char *)s->ops + ops;
    memcpy(pool, b.pool, b.npool);
    memset(pool + b.npool, 0, 16);
    s->pool = pool;
    s->ready = 0;
    for (uint32_t i = 0; i < b.nops; i++)
        if ((s->ops[i].kind & ~SH_ARG) == SH_STR) Py_INCREF(s->ops[i].obj);
    return s;
}

/* Room for a walk by a shape without growing the packed bytes (args_record grows them). */
static inline __attribute__((always_inline)) int
shape_room(const CoreObject *c)
{
    return c->npacked + PACK_MAX <= c->cappacked && c->npacked + PACK_MAX <= UINT32_MAX;
}

/* A record's header at p, where it ends: its names' index in the batch's dictionary, the next one
 * for a code not seen in this batch yet (*known 0: strings_batch gives its dictionary the codes
 * in the order of their first records, and checks). */
static inline __attribute__((always_inline)) unsigned char *
rec_header(const CoreObject *c, const CodeInfo *ci, unsigned char *p, int *known)
{
    *known = ci->rec_epoch == c->rec_epoch + 1;
    uint32_t ni = *known ? ci->rec_ni : c->rec_next;
    *p++ = REC_MARK;
    *p++ = REC_ARGS;
    while (ni >= 0x80) { *p++ = (unsigned char)(ni | 0x80); ni >>= 7; }
    *p++ = (unsigned char)ni;
    return p;
}

/* The S_REC entry of the record [start, end) just written at the batch's packed bytes' end for
 * code idx: its string id, or 0 (no memory; nothing kept, no error set). */
static inline __attribute__((always_inline)) uint32_t
rec_entry(CoreObject *c, CodeInfo *ci, Py_ssize_t idx, const unsigned char *start, const unsigned char *end, int known)
{
    uint32_t sid;
    StrEntry *e = str_entry(c, &sid);
    if (!e) { PyErr_Clear(); return 0; }
    if (!known && rec_names_commit(c, (uint32_t)idx) < 0) { c->nstrs--; PyErr_Clear(); return 0; }   /* (its index: ni) */
    e->kind = S_REC;
    e->code_idx = (uint32_t)idx;
    ci->recd = (uint32_t)c->batch + 1;   /* (args_id: tried first from now on in this batch) */
    e->pack_off = (uint32_t)c->npacked;
    e->rec_len = (size_t)(end - start);
    c->npacked += e->rec_len;
    return sid;
}

/* The arguments of the frame running code idx written by the code's shape (ci->shape); the
 * bytes are the general walk's (see above). Two uses, one function:
 * - PY_START's fast path (crecorder.h start_keyed, by capture.c start_unkeyed), `at` NULL, for a
 *   call of a code that has a shape: the record's header, its values, its entry, then the call's
 *   row (start_fast) -- not start_args_out, args_id and args_record, each a frame (threaded, whole
 *   process: our functions 164.0 -> 154.1 M, callgrind, 4d550d8). A list of another shape (the
 *   shape is dropped), or no room reserved: start_args_out, from the start.
 * - the values alone (`ts` and `co` NULL) written at *at: *at set to where they end, or NULL at the
 *   first value the shape does not fit (args_record's shape_record, shape_learn's check).
 * Each op ends by jumping to the next one's code (labels as values, a GNU C extension: a loop's
 * test and a switch's bounded, relative jump were ~8 instructions of each value), whose address
 * the op holds (ShapeOp.go: a table read by its kind was two loads more an op), each from a jump
 * of its own (setup.py gcc_flags; a compact int's apart from the others': its pack cannot fail);
 * an argument's op (SH_ARG) checks first that it is bound, an item's need not. A
 * function holding its labels' addresses is never inlined (GCC: "contains a computed goto"), so
 * the call's header, entry and row are made here around the walk, not by a caller of it: the
 * walk's own call -- its registers saved and restored, its arguments moved -- was ~12
 * instructions of each list (threaded: -2.2 M, callgrind). */
PyObject *
start_shaped(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx,
             unsigned char **at)
{
    static const void *const code[2 * SH_ARG] = {
        [SH_INT] = &&int_, [SH_STR] = &&str_, [SH_CONST] = &&const_, [SH_EMPTY] = &&empty_, [SH_FLOAT] = &&float_,
        [SH_TUPLE] = &&tuple_, [SH_LIST] = &&list_, [SH_INTS] = &&ints_, [SH_END] = &&end_,
        [SH_ARG | SH_INT] = &&arg_int, [SH_ARG | SH_STR] = &&arg_str, [SH_ARG | SH_CONST] = &&arg_const,
        [SH_ARG | SH_EMPTY] = &&arg_empty, [SH_ARG | SH_FLOAT] = &&arg_float, [SH_ARG | SH_TUPLE] = &&arg_tuple,
        [SH_ARG | SH_LIST] = &&arg_list, [SH_ARG | SH_INTS] = &&arg_ints,
    };
    CodeInfo *ci = &c->codes[idx];
    unsigned char *start = NULL, *p;
    int known = 0;
    if (at) {
        p = *at;
        struct ArgShape *sh = ci->shape;
        if (!sh->ready) {   /* (each op's code found once: NEXT jumps straight to it) */
            for (ShapeOp *o = sh->ops; ; o++) {
                o->go = code[o->kind];
                if (o->kind == SH_END) break;
            }
            sh->ready = 1;
        }
    } else {
        if (!shape_room(c)) return start_args_out(c, ts, frame, co, idx);   /* (args_record grows) */
        start = c->packed + c->npacked;
        p = rec_header(c, ci, start, &known);
    }
    const struct ArgShape *s = ci->shape;
    PyObject *const *lv[SHAPE_LEVELS];   /* (lv[d]: set before a level-d op reads it) */
    lv[0] = frame->localsplus;
    size_t ch = 0;   /* (pack_int's and pack_str's count: unused, the shape's most stands for it) */
    const ShapeOp *op = s->ops;
    PyObject *v, **items;
#define NEXT() do { v = lv[op->lvl][op->idx]; goto *op->go; } while (0)   /* (SH_END: lv[0][0], read only) */
    NEXT();
arg_int:
    if (!v) goto fail;
int_:
    if (Py_TYPE(v) != &PyLong_Type) goto fail;
    if (PyUnstable_Long_IsCompact((PyLongObject *)v)) {   /* (pack_int's way, which cannot fail: no test of p) */
        p = pack_int(p, v, &ch);
        op++;
        NEXT();
    }
    if (!(p = pack_int(p, v, &ch))) goto fail;
    op++;
    NEXT();
arg_str:
    if (!v) goto fail;
str_:
    if (v != op->obj) {
        if (Py_TYPE(v) != &PyUnicode_Type || !(p = pack_str(p, v, &ch))) goto fail;
        op++;
        NEXT();
    }
    goto copy;   /* the same str: its bytes */
arg_const:
const_:
    if (v != op->obj) goto fail;
copy:
    if (op->len <= 16) memcpy(p, s->pool + op->off, 16);   /* (a constant size: two moves) */
    else memcpy(p, s->pool + op->off, op->len);
    p += op->len;
    op++;
    NEXT();
arg_empty:
    if (!v) goto fail;
empty_:
    if (Py_TYPE(v) != (PyTypeObject *)op->obj || Py_SIZE(v)) goto fail;
    goto copy;
arg_float:
    if (!v) goto fail;
float_:
    if (Py_TYPE(v) != &PyFloat_Type) goto fail;
    *p++ = RS_FLOAT;
    p = put_f64le(p, PyFloat_AS_DOUBLE(v));
    op++;
    NEXT();
arg_ints:
    if (!v) goto fail;
ints_:   /* (a tuple of ints: its items here, one after the other) */
    if (Py_TYPE(v) != &PyTuple_Type || Py_SIZE(v) != op->n) goto fail;
    p[0] = RS_TUPLE;
    p[1] = op->n;
    p += 2;
    items = ((PyTupleObject *)v)->ob_item;
    for (uint32_t i = 0; i < op->n; i++)
        if (Py_TYPE(items[i]) != &PyLong_Type || !(p = pack_int(p, items[i], &ch))) goto fail;
    op++;
    NEXT();
arg_list:
    if (!v) goto fail;
list_:
    if (Py_TYPE(v) != &PyList_Type) goto fail;
    items = ((PyListObject *)v)->ob_item;   /* (a pointer to them) */
    *p = RS_LIST;
    goto items;
arg_tuple:
    if (!v) goto fail;
tuple_:   /* (the commoner: no jump to the code they share) */
    if (Py_TYPE(v) != &PyTuple_Type) goto fail;
    items = ((PyTupleObject *)v)->ob_item;   /* (its items in place) */
    *p = RS_TUPLE;
items:   /* (a tuple's or a list's count, and its items the next level's) */
    if (Py_SIZE(v) != op->n) goto fail;
    p[1] = op->n;
    p += 2;
    lv[op->lvl + 1] = items;
    op++;
    NEXT();
end_:
    if (at) { *at = p; return NULL; }
    uint32_t a = rec_entry(c, ci, idx, start, p, known);
    return a ? start_fast_out(c, ts, frame, idx, a) : start_args_out(c, ts, frame, co, idx);
fail:
    if (at) { *at = NULL; return NULL; }
    shape_free(ci);   /* (another shape: the general walk, and its record a new shape) */
    return start_args_out(c, ts, frame, co, idx);
#undef NEXT
}

/* After the general walk wrote the record's values [made, end) for the frame running code ci: a
 * shape for its next lists, checked against them (written past them: PACK_MAX holds both). */
static void
shape_learn(CoreObject *c, CodeInfo *ci, _PyInterpreterFrame *frame, const unsigned char *made, unsigned char *end)
{
    uint32_t now = (uint32_t)c->batch + 1;
    if (ci->shape_batch != now) { ci->shape_batch = now; ci->shape_tries = 0; }
    if (ci->shape || ci->cells || ci->shape_tries >= SHAPE_TRIES) return;   /* (a shape: kept, the walk had no room) */
    ci->shape_tries++;
    if (!(ci->shape = shape_compile(ci, frame))) return;
    unsigned char *q = end;   /* (the new shape's walk, checked against the record it came from) */
    start_shaped(c, NULL, frame, NULL, ci - c->codes, &q);
    if (!q || q - end != end - made || memcmp(end, made, (size_t)(end - made))) shape_free(ci);
}

/* The record of the arguments of the frame running code ci (idx), walked by the code's shape:
 * its string id, or 0 (no room reserved, or a list of another shape: the shape is dropped). */
static uint32_t
shape_record(CoreObject *c, CodeInfo *ci, _PyInterpreterFrame *frame, Py_ssize_t idx)
{
    if (!shape_room(c)) return 0;   /* (args_record grows) */
    unsigned char *start = c->packed + c->npacked;
    int known;
    unsigned char *p = rec_header(c, ci, start, &known);
    start_shaped(c, NULL, frame, NULL, idx, &p);
    if (!p) { shape_free(ci); return 0; }   /* (another shape: the general walk, and its record a new shape) */
    return rec_entry(c, ci, idx, start, p, known);
}

/* args_record's answer when the list is not a record: 0, or with `rest` args_id_rest's (a tail
 * call: args_id sends a code whose lists were records in this batch straight to args_record) */
#define NOT_RECORD() (rest ? args_id_rest(c, frame, co, idx) : 0)

/* rec_entry for a record holding instances (args_record, safe mode) written at `start`, REC_SIDE
 * bytes past where the batch's packed bytes end: its side bytes (the first and last address, where
 * the first step is: render.c record_objects), then its entry (StrEntry.packed). Its code's names
 * are numbered (args_record did it before the walk numbered labels). Out of line, as rec_move: the
 * lines args_record runs for a list of scalars and tuples stay as few as they were. */
static __attribute__((noinline)) uint32_t
rec_entry_objs(CoreObject *c, CodeInfo *ci, Py_ssize_t idx, unsigned char *start, const unsigned char *end,
               const RecObjs *r)
{
    uint32_t sid;
    StrEntry *e = str_entry(c, &sid);
    if (!e) { PyErr_Clear(); return 0; }
    uint16_t sa = (uint16_t)r->step_at;   /* (< PACK_MAX) */
    memcpy(start - REC_SIDE, &r->first, 8);
    memcpy(start - REC_SIDE + 8, &r->addr, 8);
    memcpy(start - REC_SIDE + 16, &sa, 2);
    c->rec_addr = r->addr;
    e->kind = S_REC;
    e->code_idx = (uint32_t)idx;
    e->packed = 1;
    ci->recd = (uint32_t)c->batch + 1;
    e->pack_off = (uint32_t)(start - c->packed);
    e->rec_len = (size_t)(end - start);
    c->npacked = e->pack_off + e->rec_len;
    return sid;
}

/* The pack_ids that args_record's walk just added (past the batch's packed bytes) moved by `by`
 * bytes with their record (by 0: forgotten, the bytes are not the batch's). */
static void
pack_ids_moved(CoreObject *c, ptrdiff_t by)
{
    for (size_t i = 0; i < PACK_IDS; i++)
        if (c->pack_ids[i].epoch == c->rec_epoch + 1 && c->pack_ids[i].off >= c->npacked) {
            if (by) c->pack_ids[i].off = (uint32_t)((ptrdiff_t)c->pack_ids[i].off + by);
            else c->pack_ids[i].epoch = 0;
        }
}

/* args_record's record [start, start + len) moved to where it goes -- REC_SIDE bytes past the end
 * of the batch's packed bytes when it holds instances (side), else at their end -- when the code's
 * last record said otherwise (ci->rec_side, set for the next one): its new start. Rare (a code
 * whose lists hold instances now and then), and out of line. */
static __attribute__((noinline)) unsigned char *
rec_move(CoreObject *c, CodeInfo *ci, unsigned char *start, size_t len, size_t side)
{
    unsigned char *to = c->packed + c->npacked + side;
    memmove(to, start, len);
    pack_ids_moved(c, to - start);
    ci->rec_side = (uint8_t)side;
    return to;
}

/* The string id of an S_REC entry for the arguments of the frame running code idx (its code
 * `co`), or when they are not written so (nothing is kept; no error set) NOT_RECORD().
 * Safe mode: instances in it (a `self`, (self, *args), an item of a tuple) are the record's
 * objects -- their labels numbered in the batch's dictionary now, their addresses stepped from
 * the last call-time record's (rec_put_instance) -- and the record is written after REC_SIDE
 * side bytes (rec_entry_objs; where it goes is guessed from the code's last record, ci->rec_side,
 * and the bytes moved when the guess was wrong). Before, such a list was refused here, and its
 * code's other lists with it for the batch (unrec): each was captured slot by slot (a type
 * reference, the container packed again), keyed and made into the same record at the drain. */
uint32_t
args_record(CoreObject *c, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx, int rest)
{
    CodeInfo *ci = &c->codes[idx];
    if (ci->shape) {   /* the list walked by the shape of the last one */
        uint32_t sid = shape_record(c, ci, frame, idx);
        if (sid) return sid;
    }
    if (ci->rec != ARGREC_YES && (ci->rec == ARGREC_NO || args_layout(ci) != ARGREC_YES)) return NOT_RECORD();
    if (ci->unrec == (uint32_t)c->batch + 1) return NOT_RECORD();
    const size_t room = REC_SIDE + PACK_MAX;
    if (c->npacked + room > UINT32_MAX) return NOT_RECORD();
    if (c->npacked + room > c->cappacked && grow((void **)&c->packed, &c->cappacked, c->npacked + room, 1) < 0) {
        PyErr_Clear();
        return NOT_RECORD();
    }
    const char *kinds = arg_kinds(ci, co);
    const int safe = c->args_mode == 1;
    if (safe && ci->rec_epoch != c->rec_epoch + 1) {
        /* safe mode: the code's names numbered before the walk numbers any label (the header's
         * index) -- not for a list without a tuple or list (not a record here: its names would go
         * into the batch's dictionary for nothing, deltablue's five-argument constructors' at
         * every batch) */
        uint32_t k = 0;
        for (PyObject *v; k < ci->nshown; k++)
            if ((v = arg_value(frame, kinds, arg_order(ci, k))) && (Py_TYPE(v) == &PyTuple_Type || Py_TYPE(v) == &PyList_Type))
                break;
        if (k == ci->nshown) goto no;
        if (rec_names_commit(c, (uint32_t)idx) < 0) {
            PyErr_Clear();
            return NOT_RECORD();
        }
    }
    unsigned char *start = c->packed + c->npacked + (safe ? ci->rec_side : 0), *end = start + PACK_MAX;
    size_t chars = ci->rec_chars;
    int containers = 0, known;
    unsigned char *p = rec_header(c, ci, start, &known), *made = p;
    RecObjs objs = {start, c->rec_addr, 0, 0};
    Walk w = {c, NULL, safe ? &objs : NULL, 0, -1, 0, 0, 0};   /* (full mode: no instances, their text is their __repr__) */
    for (uint32_t k = 0; k < ci->nshown; k++) {
        PyObject *v = arg_value(frame, kinds, arg_order(ci, k));
        if (!v || end - p < ITEM_ROOM) goto no;
        size_t ch = 0;
        unsigned char *at = p;
        w.thaw = 0; w.deepest = -1;
        PyTypeObject *tp = Py_TYPE(v);
        if (tp == &PyTuple_Type || tp == &PyList_Type) {   /* (pack_item's container branch, inline) */
            unsigned char *q = tp == &PyTuple_Type ? pack_known(p, end, v, 0, &ch, &w) : NULL;
            if (!q) q = pack_items_at(p, end, v, 0, &ch, &w);
            if (!(p = q) || ch > MAX_TEXT) goto no;
        } else if (!(p = pack_item(p, end, v, -1, &ch, &w, 0)) || ch > MAX_TEXT) goto no;   /* (a value's text is cut at MAX_TEXT) */
        chars += ch;
        if (tp == &PyTuple_Type || tp == &PyList_Type) {
            containers = 1;
            if (!w.thaw && w.deepest >= 0)   /* a frozen tuple: known by identity from now on */
                pack_id_add(c, v, (size_t)(at - c->packed), (size_t)(p - at), ch, w.deepest);
        }
    }
    if (!containers || chars > 2 * MAX_TEXT) goto no;
    /* where the record goes: after side bytes when it holds an instance, else at the end of the
     * batch's packed bytes (the drain copies runs of such records as they lie) */
    const size_t side = objs.step_at ? REC_SIDE : 0;
    if (side != (size_t)(start - (c->packed + c->npacked))) {   /* (the code's last record said otherwise) */
        unsigned char *to = rec_move(c, ci, start, (size_t)(p - start), side);
        made += to - start; p += to - start; start = to;
    }
    uint32_t sid;
    if (side) sid = rec_entry_objs(c, ci, idx, start, p, &objs);
    else {
        shape_learn(c, ci, frame, made, p);   /* (a shape holds no instance) */
        sid = rec_entry(c, ci, idx, start, p, known);
    }
    if (sid) return sid;
no:   /* (the bytes are not the batch's: pack_ids forgets where they were) */
    pack_ids_moved(c, 0);
    ci->unrec = (uint32_t)c->batch + 1;
    return NOT_RECORD();
}
#undef NOT_RECORD
