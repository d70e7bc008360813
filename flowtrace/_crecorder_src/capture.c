/* flowtrace._crecorder: capturing values at event time (arguments, results, exception texts). */
#include "crecorder.h"

/* ------------------------------------------------------------------------------------ */
/* ------------------------------------------------------------------------------------ */
/* Value capture (at event time). The capture goes to a caller-owned Slot first and is
 * appended to the session buffers only once no more Python code can run: a hook that runs
 * Python may release the GIL, and another thread (or a drain) may then move the buffers. */

/* A memo key is made slot by slot (memo_begin, memo_mix for each, memo_end) -- from
 * captured slots (memo_key_slots) or, on the hit path, straight from the values (args_id,
 * value_id: memo_value): both give the same key for the same values.
 * Only the first n tags/vals/types are ever read (memo_same: n is in the key), so nothing is
 * cleared (a memset of the key was a quarter of the event-time cost). The fixed part is one
 * word, compared at once (byte fields stored one by one and then read as a wider word
 * stalled store forwarding). */
static inline uint64_t
memo_begin(uint8_t kind, uint32_t code_idx, uint32_t n, uint64_t *head)
{
    *head = (uint64_t)(kind == S_ARGS ? code_idx : 0) | (uint64_t)kind << 32 | (uint64_t)n << 40;
    return 0x9E3779B97F4A7C15ULL;   /* (the head, tags and all, goes in at memo_end) */
}

/* slot k: its tag (memo_mix; memo_slot without it), value bits, and type (opaque values only,
 * else 0). One multiply a slot:
 * the hash only picks the slot and its tag, memo_same compares the key itself -- so the type
 * stays out of it (an address names one object, hence one type, nearly always) and the bits
 * are spread once, at memo_end (three multiplies a slot were a fifth of a hit's cost). */
static inline uint64_t
memo_slot(Memo *key, uint64_t h, uint32_t k, int64_t v, uintptr_t t)
{
    key->vals[k] = v; key->types[k] = t;
    return (h ^ (uint64_t)v) * 0xff51afd7ed558ccdULL;
}
static inline uint64_t
memo_mix(Memo *key, uint64_t h, uint64_t *head, uint32_t k, uint8_t tag, int64_t v, uintptr_t t)
{
    *head |= (uint64_t)(tag & 15) << (48 + 4 * k);   /* tags < 16 (V_* enum) */
    return memo_slot(key, h, k, v, t);
}

/* (the multiplies leave the low bits depending on the values' low bits only -- 0 for aligned
 * addresses -- and the slot index is taken from the low bits: the high ones are folded in) */
static inline void
memo_end(Memo *key, uint64_t h, uint64_t head)
{
    h = (h ^ head) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    key->hash = h | 1;
    key->head = head;
}

/* Fill `key` for an entry whose slots are all inline or (type, address); 0 if the entry
 * cannot be memoized. (type, address) is a sound key within a batch only: there the first
 * entry's slot holds the type, so its address cannot name another type meanwhile. */
static inline int
memo_key_slots(uint8_t kind, uint32_t code_idx, const Slot *slots, uint32_t n, Memo *key)
{
    if (kind == S_TEXT || n > MEMO_SLOTS) return 0;
    uint64_t head, h = memo_begin(kind, code_idx, n, &head);
    for (uint32_t k = 0; k < n; k++) {
        const Slot *sl = &slots[k];
        uint8_t tag = sl->tag;
        int64_t v = 0;
        uintptr_t t = 0;
        if (tag == V_INT) v = sl->u.i;
        else if (tag == V_FLOAT) memcpy(&v, &sl->u.d, 8);
        else if (tag == V_CLASS || tag == V_BUILTIN || (tag == V_OBJ && PyUnicode_CheckExact(sl->o))) {
            t = (uintptr_t)sl->o; v = (int64_t)(uintptr_t)sl->o;   /* (value_key_in's) */
        }
        else if (tag > V_FLOAT && tag != V_UNBOUND) {
            if (tag != V_OPAQUE && tag != V_DEFREPR && tag != V_FUNCTION) return 0;   /* (a function: its qualname's) */
            t = (uintptr_t)sl->o;
            v = (int64_t)sl->u.addr;
        }
        h = memo_mix(key, h, &head, k, tag, v, t);
    }
    memo_end(key, h, head);
    return 1;
}

/* An int of two digits (2^30 <= |v| < 2^60; one digit is PyUnstable_Long_IsCompact's): 1 with
 * its value in *x, read in place -- PyLong_AsLongLongAndOverflow is a call and ~55
 * instructions, and such ints (sums, products, ids) are most of the ints past the small ones.
 * The layout is the public longintrepr.h's (3.12, 3.13): digit count << 3 | sign (0 positive,
 * 1 zero, 2 negative). */
_Static_assert(PyLong_SHIFT == 30, "two 30-bit digits make an int64");
static inline int
long_two_digits(PyObject *v, int64_t *x)
{
    const PyLongObject *l = (const PyLongObject *)v;
    uintptr_t tag = l->long_value.lv_tag;
    if (tag >> 3 != 2) return 0;
    int64_t m = (int64_t)l->long_value.ob_digit[0] | (int64_t)l->long_value.ob_digit[1] << PyLong_SHIFT;
    *x = (tag & 3) == 2 ? -m : m;
    return 1;
}

/* A module's builtin function (`len`, made from its module's definition: m_module names it):
 * its text names nothing but itself, which its module holds anyway -- held to the drain and
 * keyed by its address (V_BUILTIN). One made at run time (no m_module: as
 * _testcapi.create_cfunction makes them, bound to the module but held by nobody else) or unbound
 * has its text made now (named_by_text), so that recording never extends its life (CPython's
 * test_weakref.test_cfunction failed under flowtrace run --include '*'). */
static inline int
module_builtin(PyTypeObject *tp, PyObject *v)
{
    if (tp != &PyCFunction_Type && tp != &PyCMethod_Type) return 0;
    PyCFunctionObject *f = (PyCFunctionObject *)v;
    return f->m_self && f->m_module && PyModule_Check(f->m_self);
}

/* Safe mode: builtin functions and methods, bound methods and modules (exact types: a
 * subclass is any object) read by their names (render.c's text_builtin, text_method,
 * text_module), not by (type, address): they are not memo-keyed. */
static inline int
named_by_text(PyTypeObject *tp)
{
    return tp == &PyCFunction_Type || tp == &PyCMethod_Type || tp == &PyMethod_Type || tp == &PyModule_Type;
}

/* Safe mode: value v's part of a memo key as capture_value would capture it and
 * memo_key_slots key it -- its slot tag, value bits, and the type of an opaque value (else 0);
 * 0 when its slot would not be memoized (a container, bytes, a big int -- those take the
 * capture path). No reference is taken: a hit needs none. */
static inline __attribute__((always_inline)) int
value_key_in(PyObject *v, uint8_t *tagp, int64_t *xp, uintptr_t *tp_, const int fast)
{
    uint8_t tag;
    int64_t x = 0;
    uintptr_t t = 0;
    if (!v) tag = V_UNBOUND;
    else {
        PyTypeObject *tp = Py_TYPE(v);
        /* first: most arguments are instances (of a class; a class itself is V_CLASS below) */
        if ((tp->tp_flags & (Py_TPFLAGS_HEAPTYPE | Py_TPFLAGS_TYPE_SUBCLASS)) == Py_TPFLAGS_HEAPTYPE) {
            tag = V_OPAQUE; t = (uintptr_t)tp; x = (int64_t)(uintptr_t)v;
        }
        else if (tp == &PyLong_Type) {
            tag = V_INT;
            if (PyUnstable_Long_IsCompact((PyLongObject *)v)) x = (int64_t)PyUnstable_Long_CompactValue((PyLongObject *)v);
            else if (!long_two_digits(v, &x)) return 0;
        }
        else if (tp == &PyFloat_Type) { tag = V_FLOAT; double d = PyFloat_AS_DOUBLE(v); memcpy(&x, &d, 8); }
        else if (v == Py_None) tag = V_NONE;   /* (after float: numeric code passes floats most) */
        else if (v == Py_True) tag = V_TRUE;
        else if (v == Py_False) tag = V_FALSE;
        else if (tp == &PyUnicode_Type) {
            /* an exact str (V_OBJ, held to the drain and rendered there, capture_value): keyed by
             * its address, as a class -- the first entry holds it for the batch, so the address
             * names no other object meanwhile. Names, keys, paths: mostly literals and interned
             * names, passed again and again, so a hit makes no entry and the drain renders the
             * entry once a batch. On the fast path too (after the tests above: their hits pay
             * nothing for it). */
            tag = V_OBJ; t = (uintptr_t)v; x = (int64_t)(uintptr_t)v;
        }
        else if (fast) return 0;   /* (args_keyed: the rest is args_id_rest's, with the full tests) */
        else if (tp->tp_flags & Py_TPFLAGS_TYPE_SUBCLASS) {
            /* a class (V_CLASS: a classmethod's cls, a factory's argument): keyed by its address,
             * and its slot holds the class itself (commit_key's reference from the "type") -- the
             * first entry holds it for the batch, so the address names no other class meanwhile,
             * and its text is made once a batch at the drain. (Not on the fast path: a test more
             * there cost oop's hits ~4 instructions a call, callgrind.) */
            tag = V_CLASS; t = (uintptr_t)v; x = (int64_t)(uintptr_t)v;
        }
        else if (module_builtin(tp, v)) { tag = V_BUILTIN; t = (uintptr_t)v; x = (int64_t)(uintptr_t)v; }   /* (as a class) */
        else if (named_kind(tp) != NAMED_NONE) {
            /* a function or a generator (V_FUNCTION: a callback, a decorator's argument, a
             * factory's result): its slot is its __qualname__ and address | kind (capture_value),
             * and so is its key -- the first entry holds the qualname for the batch, so the pointer
             * names no other str meanwhile; the text is those two and nothing else (another
             * function at the same address, of the same qualname, has the same text) */
            int kind = named_kind(tp);
            tag = V_FUNCTION; t = (uintptr_t)named_qualname(v, kind); x = (int64_t)((uintptr_t)v | (uintptr_t)kind);
        }
        else if (tp == &PyTuple_Type || tp == &PyBytes_Type || tp == &PyList_Type
                 || tp == &PyDict_Type || tp == &PySet_Type || tp == &PyFrozenSet_Type || tp == &PyByteArray_Type
                 || tp == &PyComplex_Type || v == Py_Ellipsis || v == Py_NotImplemented
                 || named_by_text(tp))   /* (held or made now: capture_value) */
            return 0;
        else { tag = V_OPAQUE; t = (uintptr_t)tp; x = (int64_t)(uintptr_t)v; }
    }
    *tagp = tag; *xp = x; *tp_ = t;
    return 1;
}

/* value_key: 0 when v's slot would not be memoized (a container, bytes, a big int). */
static inline __attribute__((always_inline)) int
value_key(PyObject *v, uint8_t *tagp, int64_t *xp, uintptr_t *tp_)
{
    return value_key_in(v, tagp, xp, tp_, 0);
}

/* Safe mode: mix value v into the key as slot k (value_key); 0 when it cannot be keyed. */
static inline __attribute__((always_inline)) int
memo_value(Memo *key, uint64_t *h, uint64_t *head, uint32_t k, PyObject *v)
{
    uint8_t tag;
    int64_t x;
    uintptr_t t;
    if (!value_key(v, &tag, &x, &t)) return 0;
    *h = memo_mix(key, *h, head, k, tag, x, t);
    return 1;
}

/* An exact int, str or float, None, True or False: a value whose text never changes (frozen_text's
 * tuple items, dict_state's keys and values). Type tests only, the commonest first. */
static inline int
immutable_scalar(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    return tp == &PyLong_Type || tp == &PyUnicode_Type || tp == &PyFloat_Type || o == Py_None || tp == &PyBool_Type;
}

/* An exact tuple of at most MAX_ITEMS immutable scalars: its text never changes either -- a dict's
 * value such as pluggy's location=(path, lineno, name), passed on with its keyword arguments from
 * frame to frame (dict_state, dict_objs). Type tests only. */
static inline int
scalar_tuple(PyObject *o)
{
    if (Py_TYPE(o) != &PyTuple_Type || PyTuple_GET_SIZE(o) > MAX_ITEMS) return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(o); i++)
        if (!immutable_scalar(PyTuple_GET_ITEM(o, i))) return 0;
    return 1;
}

/* An exact dict argument's state, for a memo key: its version tag (PEP 509) in *x, or 0 when it
 * cannot be keyed. CPython gives a dict a tag from one counter of the interpreter when it is made
 * and at every change of its items, so a tag names one dict in one state, never reused -- and when
 * the items its text shows (the first MAX_ITEMS) are all immutable builtin scalars (an exact str,
 * int, float, None, True, False), the state names the text. A config, a header table, a template's
 * context passed again and again unchanged: its text is made once a batch, not at every call (a
 * dict of six str items is twelve strs rendered, a text made, hashed and stored). Not a split
 * table (an instance's __dict__: 3.13 stores its values in place without a new tag, checked by
 * running), not a dict holding anything else (a list in it can change, its tag not) but tuples of
 * such scalars (scalar_tuple). Type tests and PyDict_Next only: no call of the program's code, no
 * allocation. */
#if PY_VERSION_HEX < 0x030E0000
/* The tags dict_state passed lately, by their counter's low bits: a tag names one state for good
 * (never reused, in any session), so a dict passed again unchanged -- the commonest case -- is
 * not scanned again (the scan, PyDict_Next an item, was ~390 instructions a dict of six items,
 * callgrind webapp). Only read and written with the GIL held, in a callback. */
#define DICT_PASSED 32
static uint64_t dict_passed[DICT_PASSED];

static int
dict_state_tagged(PyObject *v, int64_t *x)
{
    PyDictObject *d = (PyDictObject *)v;
    uint64_t tag = dict_tag(v);
    uint64_t *passed = &dict_passed[(tag >> 8) & (DICT_PASSED - 1)];   /* (the low 8 bits: watchers) */
    *x = (int64_t)tag;
    if (tag >> 8 == 0) return 0;   /* (no version: 0 is dict_state's empty dict) */
    if (*passed == tag) return 1;
    if (d->ma_values) return 0;
    Py_ssize_t pos = 0;
    PyObject *key, *val;
    for (int k = 0; k < MAX_ITEMS && PyDict_Next(v, &pos, &key, &val); k++) {
        if (!immutable_scalar(key) || !(immutable_scalar(val) || scalar_tuple(val))) return 0;
    }
    *passed = tag;
    return 1;
}
#else
static int dict_state_tagged(PyObject *v, int64_t *x) { (void)v; (void)x; return 0; }   /* (3.14 has no tag) */
#endif

/* dict_state_tagged, but an empty dict is state 0, whatever dict it is: its text is "{}" (the
 * `**kwargs` of most calls of a function that takes them -- a new dict at every call, whose fresh
 * tag missed the memo and whose text was rendered, ~1,800 instructions, each time: 28 k of flask's
 * test_basic's 78 k dict texts made at call time). */
static inline int
dict_state(PyObject *v, int64_t *x)
{
    if (!PyDict_GET_SIZE(v)) { *x = 0; return 1; }
    return dict_state_tagged(v, x);
}

/* Is exact dict v in state x (dict_state's) now? Reads only: no scan (a tag names one state). */
static inline int
dict_in_state(PyObject *v, int64_t x)
{
    return x == 0 ? !PyDict_GET_SIZE(v) : PyDict_GET_SIZE(v) && (int64_t)dict_tag(v) == x;
}

/* memo_value for args_id_rest's keyed path: an exact dict too (dict_state), as a V_TEXT slot of its
 * version tag -- its text is made now, at the miss (capture_value), and the entry remembered under
 * the key (commit_keyed): value_key_in does not key it (a result's entry is made from its key). */
static inline int
memo_arg(Memo *key, uint64_t *h, uint64_t *head, uint32_t k, PyObject *v)
{
    int64_t x;
    if (memo_value(key, h, head, k, v)) return 1;
    if (!v || Py_TYPE(v) != &PyDict_Type || !dict_state(v, &x)) return 0;
    *h = memo_mix(key, *h, head, k, V_TEXT, x, 0);
    return 1;
}

/* memo_value for start_keyed_any (args_key_probe_any): the same slot for an instance, an int, a
 * float, None, True, False or a str; 0 for anything else (the full tests are args_id_rest's: no
 * call here, so the path keeps to scratch registers). Its tag goes to `tags` (4 bits a slot),
 * which the caller puts in the head at once (<< 48): there memo_mix's 64-bit tag constant was
 * an extra instruction and a register a slot (callgrind oop: -2 instructions a call). */
static inline __attribute__((always_inline)) int
memo_value_tags(Memo *key, uint64_t *h, uint32_t *tags, uint32_t k, PyObject *v)
{
    uint8_t tag;
    int64_t x;
    uintptr_t t;
    if (!value_key_in(v, &tag, &x, &t, 1)) return 0;
    *tags |= (uint32_t)(tag & 15) << (4 * k);
    *h = memo_slot(key, *h, k, x, t);
    return 1;
}

/* memo_value_tags with the tag put in the head at once, for args_keyed's codes of a known n
 * (args_key_probe): there the tags' register cost its other ways more (callgrind webapp:
 * args_keyed_2 +8 instructions a call). */
static inline __attribute__((always_inline)) int
memo_value_fast(Memo *key, uint64_t *h, uint64_t *head, uint32_t k, PyObject *v)
{
    uint32_t tags = 0;
    if (!memo_value_tags(key, h, &tags, k, v)) return 0;
    *head |= (uint64_t)tags << 48;
    return 1;
}

static inline int
memo_same(const Memo *a, const Memo *b)
{
    if (a->hash != b->hash || a->head != b->head) return 0;
    uint32_t n = (uint32_t)(b->head >> 40) & 0xFF;
    for (uint32_t k = 0; k < n; k++)
        if (a->vals[k] != b->vals[k] || a->types[k] != b->types[k]) return 0;
    return 1;
}

void
slots_clear(Slot *s, size_t n)
{
    for (size_t i = 0; i < n; i++) Py_CLEAR(s[i].o);
    pack_drop();   /* (their packed values, if any, with them) */
}

/* object.__repr__ names the type "module.qualname" (tp_name for builtins) and the
 * placeholder's label (c.py type_label) reads the same -- unless __module__ is not a str or
 * is "builtins" on a heap type; those rare types take the hook. */
static int
default_repr_label_ok(PyTypeObject *tp)
{
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) return 1;
    PyObject *mod = NULL;   /* (borrowed) */
    if (!dict_str_item(tp->tp_dict, str_module_key, &mod)) return 0;   /* (a lookup that could run Python: the hook's) */
    if (!mod) { PyErr_Clear(); return 0; }
    return PyUnicode_CheckExact(mod) && PyUnicode_Compare(mod, str_builtins) != 0;
}

/* May tuple v be held until the drain and rendered there (reprs._text at `depth`, either
 * mode)? Only when everything it holds is an immutable builtin scalar (int, str, float, bool,
 * None, bytes, complex, Ellipsis, NotImplemented) or such a tuple: then its text cannot
 * change, and holding it is invisible to the program (none of these has a finalizer or takes
 * a weak reference). The whole of it is checked, not only what the text shows, so a tuple of
 * more than MAX_ITEMS items, or nested deeper than the text shows (MAX_DEPTH levels, then
 * "(...)"), is rendered now instead. A list, dict, set, frozenset, bytearray or any other
 * object says no (its text can change, or it could have a finalizer). Type tests only: no
 * call, no allocation; the commonest item types first. */
static int
frozen_text(PyObject *v, int depth)
{
    Py_ssize_t n = PyTuple_GET_SIZE(v);
    if (n > MAX_ITEMS) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PyTuple_GET_ITEM(v, i);
        PyTypeObject *tp = Py_TYPE(o);
        if (immutable_scalar(o)) continue;
        if (tp == &PyTuple_Type) {
            if (depth >= MAX_DEPTH || !frozen_text(o, depth + 1)) return 0;
            continue;
        }
        if (!(tp == &PyBytes_Type || tp == &PyComplex_Type || o == Py_Ellipsis || o == Py_NotImplemented)) return 0;
    }
    /* Nothing in it is tracked by the cycle collector, so it cannot be in a cycle: untracked
     * now, as the collector's own next pass would (_PyTuple_MaybeUntrack). Held until the
     * drain it would otherwise be traversed by every collection meanwhile and promoted to the
     * older generations (a tenth of the threaded workload's capture cost, callgrind). */
    if (PyObject_GC_IsTracked(v)) PyObject_GC_UnTrack(v);
    return 1;
}

/* The texts of the dicts dict_state passed lately, by tag (as dict_passed): a dict passed again
 * unchanged beside other values -- a template's context, with each name looked up in it -- misses
 * the memo (another argument list each time), but its text is made once. Bounded: DICT_TEXTS strs
 * of at most 2 * MAX_TEXT characters, held until replaced. */
#define DICT_TEXTS 16
static struct { uint64_t tag; PyObject *text; } dict_texts[DICT_TEXTS];

/* Dicts holding instances or functions beside scalars -- keyword arguments passed on from frame
 * to frame (pluggy's hook calls: HookCaller.__call__(**kwargs), _hookexec, _multicall each take the
 * same dict), a registry -- have their texts kept too, by tag: the same tag, the same keys and
 * value objects; such an object's text is its type's label and its address (reprs.placeholder) or
 * a function's __qualname__ and address, and what could change that without a new dict tag is
 * checked when the text is taken again (ShownObj: the object's type, and that type's __qualname__
 * and dict tag -- __module__ is in its dict; a function's __qualname__). A dict holding anything
 * else (a list, a class, a module...) is rendered each time. Bounded as dict_texts. The entry keeps
 * its objects' addresses (`obj`: not references -- a dict in the state its tag names holds them)
 * and a reference to each name (so that its address names no other str meanwhile). */
typedef struct { PyTypeObject *tp; PyObject *name; uint64_t ttag; } ShownObj;
typedef struct { uint64_t tag; PyObject *text; uint32_t n; PyObject *obj[2 * MAX_ITEMS]; ShownObj objs[2 * MAX_ITEMS]; } DictObjText;
static DictObjText dict_obj_texts[DICT_TEXTS];

/* o's ShownObj (1) when its text is a placeholder or a function's (it cannot change while o is
 * the same object but by what *so records); else 0. */
static inline int
shown_obj(PyObject *o, ShownObj *so)
{
    PyTypeObject *tp = Py_TYPE(o);
    if ((tp->tp_flags & (Py_TPFLAGS_HEAPTYPE | Py_TPFLAGS_TYPE_SUBCLASS)) == Py_TPFLAGS_HEAPTYPE) {
        so->tp = tp;   /* (render_now: a heap type's instance is its placeholder, whatever its bases) */
        so->name = ((PyHeapTypeObject *)tp)->ht_qualname;
        so->ttag = tp->tp_dict ? dict_tag(tp->tp_dict) : 0;
        return so->ttag >> 8 != 0;
    }
    if (tp == &PyFunction_Type) {
        so->tp = tp; so->name = ((PyFunctionObject *)o)->func_qualname; so->ttag = 0;
        return 1;
    }
    return 0;
}

/* The shown items of dict v (its first MAX_ITEMS): 1 with the objects among them in obj and their
 * ShownObj in objs (*n of them) when every key and value is an immutable scalar or a shown_obj
 * (a value may be a scalar_tuple too); else 0. */
static int
dict_objs(PyObject *v, PyObject **obj, ShownObj *objs, uint32_t *n)
{
    Py_ssize_t pos = 0;
    PyObject *key, *val;
    uint32_t m = 0;
    for (int k = 0; k < MAX_ITEMS && PyDict_Next(v, &pos, &key, &val); k++) {
        if (!immutable_scalar(key)) { obj[m] = key; if (!shown_obj(key, &objs[m++])) return 0; }
        if (!immutable_scalar(val) && !scalar_tuple(val)) { obj[m] = val; if (!shown_obj(val, &objs[m++])) return 0; }
    }
    *n = m;
    return 1;
}

/* Does entry e's text still show its dict, which is in the state e->tag names (the same keys and
 * values: its objects are alive)? Its objects' ShownObj read again -- not the dict walked again
 * (PyDict_Next an item, ~320 instructions a pluggy call's keyword arguments; ~5 k of them on flask
 * test_json, callgrind). */
static inline int
dict_objs_same(const DictObjText *e)
{
    ShownObj so;
    for (uint32_t k = 0; k < e->n; k++)
        if (!shown_obj(e->obj[k], &so) || memcmp(&so, &e->objs[k], sizeof so)) return 0;
    return 1;
}

/* dict_text_now for a dict dict_state does not pass: its text (a new reference) from
 * dict_obj_texts or made now and kept there, when dict_objs passes it; else NULL. */
static PyObject *
dict_obj_text_now(PyObject *v)
{
    uint64_t tag = dict_tag(v);
    if (tag >> 8 == 0 || ((PyDictObject *)v)->ma_values) return NULL;
    DictObjText *e = &dict_obj_texts[(tag >> 8) & (DICT_TEXTS - 1)];
    if (e->tag == tag && e->text && dict_objs_same(e)) return Py_NewRef(e->text);
    PyObject *obj[2 * MAX_ITEMS];
    ShownObj objs[2 * MAX_ITEMS];
    uint32_t n;
    if (!dict_objs(v, obj, objs, &n)) return NULL;
    PyObject *t = builtin_text_now(v, 1);
    if (t && PyUnicode_CheckExact(t)) {
        for (uint32_t k = 0; k < n; k++) Py_INCREF(objs[k].name);
        for (uint32_t k = 0; k < e->n; k++) Py_DECREF(e->objs[k].name);   /* (strs: freeing one runs no code) */
        Py_XSETREF(e->text, Py_NewRef(t));
        e->tag = tag;
        e->n = n;
        memcpy(e->obj, obj, n * sizeof(PyObject *));
        memcpy(e->objs, objs, n * sizeof(ShownObj));
    }
    return t;
}

/* Safe mode, an exact dict: its text (a new reference) from dict_texts or made now and kept
 * there, when dict_state passes it; from dict_obj_texts likewise when dict_objs does; else NULL
 * (builtin_text_now's way). */
static PyObject *
dict_text_now(PyObject *v)
{
    static PyObject *empty_text;   /* "{}" (immortal once made: never freed) */
    int64_t tag;
    if (!dict_state(v, &tag)) return dict_obj_text_now(v);
    if (!tag) return empty_text ? Py_NewRef(empty_text) : (empty_text = PyUnicode_InternFromString("{}")) ? Py_NewRef(empty_text) : NULL;
    size_t i = ((uint64_t)tag >> 8) & (DICT_TEXTS - 1);
    if (dict_texts[i].tag == (uint64_t)tag && dict_texts[i].text) return Py_NewRef(dict_texts[i].text);
    PyObject *t = builtin_text_now(v, 1);
    if (t && PyUnicode_CheckExact(t)) { Py_XSETREF(dict_texts[i].text, Py_NewRef(t)); dict_texts[i].tag = (uint64_t)tag; }
    return t;
}

/* Bound methods passed -- flask's Signal.send(_async_wrapper=app.ensure_sync), werkzeug's
 * ClosingIterator(callbacks=response.close): ~2.6 k of flask test_basic's arguments, three in four
 * of them a (function, object) pair passed before -- have their texts kept too. reprs.method_text's
 * "<bound method qualname of <the object's text>>" is made of the function's __qualname__ and of
 * what the object's ShownObj records (its address, its class's label): both checked when the text
 * is taken again, so another function or object at the same address, of the same names, has the
 * same text. Only a plain function bound to an instance or a function (shown_obj); bounded as
 * dict_texts, a reference to each name held (so that its address names no other str meanwhile). */
#define METHOD_TEXTS 16
static struct { PyObject *self, *qualname, *text; ShownObj so; } method_texts[METHOD_TEXTS];

/* Safe mode, an exact bound method: its text (a new reference) from method_texts or made now and
 * kept there; NULL with no error set for one it does not keep (builtin_text_now's way). */
static PyObject *
method_text_now(PyObject *v)
{
    PyObject *func = ((PyMethodObject *)v)->im_func, *self = ((PyMethodObject *)v)->im_self, *qualname;
    ShownObj so;
    if (Py_TYPE(func) != &PyFunction_Type || !PyUnicode_CheckExact(qualname = ((PyFunctionObject *)func)->func_qualname)
            || !shown_obj(self, &so))
        return NULL;
    size_t i = (((uintptr_t)self >> 4) ^ ((uintptr_t)qualname >> 4)) & (METHOD_TEXTS - 1);
    if (method_texts[i].text && method_texts[i].self == self && method_texts[i].qualname == qualname
            && !memcmp(&method_texts[i].so, &so, sizeof so))
        return Py_NewRef(method_texts[i].text);
    PyObject *t = builtin_text_now(v, 1);
    if (t && PyUnicode_CheckExact(t)) {   /* (strs: freeing one runs no code) */
        Py_XSETREF(method_texts[i].qualname, Py_NewRef(qualname));
        Py_INCREF(so.name);
        Py_XDECREF(method_texts[i].so.name);
        Py_XSETREF(method_texts[i].text, Py_NewRef(t));
        method_texts[i].self = self;
        method_texts[i].so = so;
    }
    return t;
}

/* capture_value's last way: the text made by the wrapper's hook (reprs.value_text: Python code).
 * Cold, out of line: what C cannot render is seldom (full mode's objects, a container C gives
 * up on), and its lines leave capture_value's. */
static COLD __attribute__((noinline)) int
capture_by_hook(CoreObject *c, Slot *s, PyObject *v)
{
    hook_runs_python(c);
    PyObject *t = call_in_callback(c->repr_now, &v, 1, NULL);
    if (!t) return -1;
    if (!PyUnicode_Check(t)) { Py_DECREF(t); PyErr_SetString(PyExc_TypeError, "repr hook returned a non-str"); return -1; }
    s->tag = V_TEXT; s->o = t;
    return 0;
}

/* capture_value past its common values (capture_value_rest): v is not NULL, None, True or False,
 * an int of one digit, a float, nor (safe mode) an instance of a class or an exact str. */
static __attribute__((noinline)) int
capture_value_rest(CoreObject *c, Slot *s, PyObject *v)
{
    PyTypeObject *tp = Py_TYPE(v);
    if (tp == &PyLong_Type) {
        if (long_two_digits(v, &s->u.i)) { s->tag = V_INT; return 0; }
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
    if (tp == &PyUnicode_Type || tp == &PyBytes_Type || tp == &PyComplex_Type
            || v == Py_Ellipsis || v == Py_NotImplemented) {
        /* immutable builtins: rendering them at drain gives the text they have now, and
         * holding them until then is invisible to the program (no __del__, no weakref) */
        s->tag = V_OBJ; s->o = Py_NewRef(v);
        return 0;
    }
    if (c->args_mode == 1 && !(tp == &PyList_Type || tp == &PyTuple_Type || tp == &PyDict_Type
            || tp == &PySet_Type || tp == &PyFrozenSet_Type || tp == &PyByteArray_Type)) {
        if (tp->tp_flags & Py_TPFLAGS_TYPE_SUBCLASS) {
            /* a class: its name at drain (reprs.class_text), held until then as V_OPAQUE's
             * types are; keyed by its address (value_key_in, memo_key_slots) */
            s->tag = V_CLASS;
            s->o = Py_NewRef(v);
            return 0;
        }
        int kind = named_kind(tp);
        if (kind != NAMED_NONE) {
            /* a function or a generator: its __qualname__ (a str: holding it is invisible to
             * the program, the object itself is not held) and address, as repr() shows them */
            s->tag = V_FUNCTION;
            s->o = Py_NewRef(named_qualname(v, kind));
            s->u.addr = (uintptr_t)v | (uintptr_t)kind;
            return 0;
        }
        if (module_builtin(tp, v)) {
            /* held, read "<built-in function len>" at drain; keyed by its address (value_key_in) */
            s->tag = V_BUILTIN; s->o = Py_NewRef(v);
            return 0;
        }
        if (!named_by_text(tp)) {
            /* safe mode, any other object: its type and address only (the placeholder text is
             * made from the type at drain; the object itself is not referenced) */
            s->tag = V_OPAQUE;
            s->o = Py_NewRef((PyObject *)tp);
            s->u.addr = (uintptr_t)v;
            return 0;
        }
        /* a builtin method bound to an object, a bound method, a module: its text now (it
         * names the object, which must not be held; a module's can change) */
    }
    if (c->args_mode == 2 && tp->tp_repr == PyBaseObject_Type.tp_repr && default_repr_label_ok(tp)) {
        /* full mode, but the type keeps object.__repr__: repr(v) is "<module.Qualname object
         * at 0x...>", the placeholder's text, so it is made at drain from type + address
         * like V_OPAQUE (no Python call now) */
        s->tag = V_DEFREPR;
        s->o = Py_NewRef((PyObject *)tp);
        s->u.addr = (uintptr_t)v;
        return 0;
    }
    if ((tp == &PyTuple_Type || tp == &PyList_Type) && pack_value(c, s, v, c->args_mode == 1))
        return 0;   /* of scalars (and instances of one class): packed as a value record's slot now (packed.c) */
    if (tp == &PyTuple_Type && frozen_text(v, 0)) {
        /* a tuple of immutable scalars (frozen_text): rendered at drain like a str -- no
         * text, buffer or str made on the program's thread now */
        s->tag = V_OBJ; s->o = Py_NewRef(v);
        return 0;
    }
    /* builtin containers (they can mutate) and, in full mode, other objects: the reference
     * rules make the text now (bounded; in safe mode they never call a user __repr__) --
     * in C when the container holds only builtin values, else by the wrapper's hook */
    PyObject *t = NULL;
    if (tp == &PyList_Type || tp == &PyTuple_Type || tp == &PyDict_Type || tp == &PySet_Type
            || tp == &PyFrozenSet_Type || tp == &PyByteArray_Type || (c->args_mode == 1 && named_by_text(tp))) {
        t = c->args_mode != 1 ? NULL : tp == &PyDict_Type ? dict_text_now(v)   /* (kept by its tag) */
            : tp == &PyModule_Type ? module_text_now(v)                          /* (kept by its parts) */
            : tp == &PyMethod_Type ? method_text_now(v) : NULL;                  /* (by its names) */
        if (!t && !PyErr_Occurred()) t = builtin_text_now(v, c->args_mode == 1);
        if (!t && PyErr_Occurred()) PyErr_Clear();   /* the hook gives the reference's answer */
    }
    if (!t) return capture_by_hook(c, s, v);
    s->tag = V_TEXT; s->o = t;
    return 0;
}

/* A value captured into slot s (see the header: what is kept, what is made now): 0, or -1 with
 * an error set. The values most arguments and results are -- in flask's test_json, instances
 * (~45 %), strs (~22 %), None, ints, bools -- in a few tests and no call, so no frame: the rest
 * (capture_value_rest) calls functions, and as one function every capture saved and restored its
 * registers (~16 instructions a capture, 135 k captures, callgrind). The instance first (its test
 * excludes every builtin type the others take), then the str (exact: a subclass is an instance). */
static int
capture_value(CoreObject *c, Slot *s, PyObject *v)
{
    s->o = NULL;
    if (v == NULL) { s->tag = V_UNBOUND; return 0; }
    PyTypeObject *tp = Py_TYPE(v);
    if (c->args_mode == 1) {
        if ((tp->tp_flags & (Py_TPFLAGS_HEAPTYPE | Py_TPFLAGS_TYPE_SUBCLASS)) == Py_TPFLAGS_HEAPTYPE) {
            /* safe mode, an instance of a class (the commonest object; never one of the builtin
             * types below): the type and address only, as for any other object (rest) */
            s->tag = V_OPAQUE;
            s->o = Py_NewRef((PyObject *)tp);
            s->u.addr = (uintptr_t)v;
            return 0;
        }
        if (tp == &PyUnicode_Type) {   /* immutable: rendered at drain (rest: bytes and the others) */
            s->tag = V_OBJ; s->o = Py_NewRef(v);
            return 0;
        }
    }
    if (v == Py_None) { s->tag = V_NONE; return 0; }
    if (v == Py_True) { s->tag = V_TRUE; return 0; }
    if (v == Py_False) { s->tag = V_FALSE; return 0; }
    if (tp == &PyLong_Type && PyUnstable_Long_IsCompact((PyLongObject *)v)) {   /* one digit: no call, no overflow test */
        s->tag = V_INT; s->u.i = (int64_t)PyUnstable_Long_CompactValue((PyLongObject *)v);
        return 0;
    }
    if (tp == &PyFloat_Type) { s->tag = V_FLOAT; s->u.d = PyFloat_AS_DOUBLE(v); return 0; }
    return capture_value_rest(c, s, v);   /* (a tail call: no frame here) */
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
    uint32_t sid = 0;
    StrEntry *e = dst ? str_entry(c, &sid) : NULL;
    if (!e || (tls_state && tls_state->npack && pack_commit(c, e) < 0)) {   /* (packed values: packed.c) */
        if (e) c->nstrs--;
        slots_clear(local, n);
        return 0;
    }
    memcpy(dst, local, n * sizeof(Slot));
    e->kind = kind; e->slot_off = c->nslots; e->nslots = n; e->code_idx = code_idx;
    c->nslots += n;
    return sid;
}

/* commit_slots, but values already captured in this batch -- ints, floats, None, bools and
 * (type, address) of opaque objects -- reuse that entry's id: fib(3) called a thousand times
 * stores one entry, and the drain renders it once. Provisional ids are per batch, hence the
 * batch check. */
/* Small non-negative ints -- indexes, counters, sizes -- are the commonest values there are,
 * and a program walks through thousands of them (f(i) for i in range(10000), on 4 threads):
 * more than the direct-mapped hot memo holds, so most would miss it and each be stored and
 * rendered again. A one-int argument list (per function) and a one-int result get a table
 * indexed by the value instead: one load, no hashing, no collisions. Tables grow (doubling)
 * to the largest value seen below SMALL_MAX, within SMALL_BUDGET bytes for the session. */
#define SMALL_MAX ((uint64_t)1 << 15)
#define SMALL_BUDGET ((size_t)16 << 20)
static COLD int   /* (COLD, as every growth: its callers' blocks for it go to their .cold parts) */
small_grow(CoreObject *c, SmallTab *st, uint64_t v)
{
    uint32_t n = st->n ? st->n : 64;
    while (n <= v) n *= 2;
    size_t more = (size_t)(n - st->n) * sizeof(SmallEntry);
    if (c->small_bytes + more > SMALL_BUDGET) return -1;
    SmallEntry *t = PyMem_RawRealloc(st->tab, n * sizeof(SmallEntry));
    if (!t) return -1;   /* (no error set: the hot memo takes the value instead) */
    memset(t + st->n, 0, more);
    st->tab = t; st->n = n;
    c->small_bytes += more;
    return 0;
}

/* An exception text's index in its type's small-int table: v + 1 for one int v >= 0, 0 for
 * no argument, SMALL_MAX (none) for a negative or large int. */
static inline uint64_t
exc_small_index(uint32_t nargs, int64_t v)
{
    return !nargs ? 0 : v >= 0 && (uint64_t)v < SMALL_MAX - 1 ? (uint64_t)v + 1 : SMALL_MAX;
}

/* The small-int table entry of the text of an exception of static type tp at index x (the
 * type's table made, and grown to hold x, when `grow`); NULL when there is none: x too large,
 * the budget spent, or EXC_TYPES other types have the tables. */
static SmallEntry *
exc_small_entry(CoreObject *c, PyTypeObject *tp, uint64_t x, int grow)
{
    if (x >= SMALL_MAX) return NULL;
    for (int i = 0; i < EXC_TYPES; i++) {
        if (c->exc_small[i].tp != tp) {
            if (c->exc_small[i].tp || !grow) continue;
            c->exc_small[i].tp = tp;   /* (static: immortal, its address a stable key) */
        }
        SmallTab *st = &c->exc_small[i].tab;
        if (x >= st->n && (!grow || small_grow(c, st, x) < 0)) return NULL;
        return &st->tab[x];
    }
    return NULL;
}

/* A small non-negative int v that small_hit did not find: a new entry for it in this batch,
 * remembered in its table st (grown to hold it) -- the capture path without the capture (no
 * type tests, no memo key, no local slot). 0 when st cannot hold it (the full path then). */
static uint32_t
small_commit(CoreObject *c, SmallTab *st, uint64_t v, uint8_t kind, uint32_t code_idx)
{
    if (v >= SMALL_MAX || (v >= st->n && small_grow(c, st, v) < 0)) return 0;
    Slot s = {NULL, {.i = (int64_t)v}, V_INT};
    uint32_t sid = commit_slots(c, &s, 1, kind, code_idx);
    if (sid) { st->tab[v].sid = sid; st->tab[v].batch = (uint32_t)c->batch; }
    return sid;
}

/* The drain's cache of final string ids for small ints: where the final id of an entry
 * whose text is a small int's ("n=5" for a one-int argument list, "5" for a value) is kept
 * -- the entry of the small-int table commit_memo used -- or NULL for any other entry. A final
 * id holds for the whole session (the text table may forget a text, the file never does):
 * a loop over range(20000) renders and looks up each "i=..." once per session, not once per
 * batch (a text table lookup is a cache miss; the small tables are read in order). The
 * pointer is valid until Python code runs (a callback may grow the table meanwhile). */
uint32_t *
small_final(CoreObject *c, const StrEntry *e, const Slot *slots)
{
    if (e->kind == S_EXC) {   /* an exception's text ("ValueError: 3"): its type's table */
        SmallEntry *se = exc_small_entry(c, (PyTypeObject *)e->text, exc_small_index(e->nslots, e->exc_int), 0);
        if (!se) return NULL;
        if (se->fgen != (uint32_t)c->gen) { se->final = 0; se->fgen = (uint32_t)c->gen; }
        return &se->final;
    }
    if (e->nslots != 1 || (e->kind != S_ARGS && e->kind != S_VALUE)) return NULL;
    const Slot *s = &slots[e->slot_off];
    if (s->tag != V_INT || (uint64_t)s->u.i >= SMALL_MAX) return NULL;
    const SmallTab *st = &c->small_vals;
    if (e->kind == S_ARGS) {
        int32_t k = c->codes[e->code_idx].small;
        if (k < 0) return NULL;
        st = &c->small_args[k];
    }
    uint64_t v = (uint64_t)s->u.i;
    if (v >= st->n) return NULL;
    SmallEntry *se = &st->tab[v];
    if (se->fgen != (uint32_t)c->gen) { se->final = 0; se->fgen = (uint32_t)c->gen; }   /* another session's */
    return &se->final;
}

/* The hot memo's entry of this batch whose tag is hash's: 1 with its index in *slot, or 0. The
 * set's first way, then its second (the tags, 4 bytes a slot, cached, side by side: most values
 * that miss -- fresh objects, growing counters -- then never read an 88-byte entry, which is
 * seldom in the cache). A hit in the first way costs nothing more than the direct-mapped memo's
 * probe did. The caller compares the key itself, its hash first (hot_tag). */
static inline __attribute__((always_inline)) uint32_t
hot_tag(const CoreObject *c, uint64_t hash)
{
    /* (crecorder.h hot_tag_of: the caller's compare of the whole key turns away an entry of
     * another key whose tag this is by chance -- an empty slot's 0 too) */
    return hot_tag_of(hash, c->batch);
}

static inline __attribute__((always_inline)) int
hot_find(const CoreObject *c, uint64_t hash, size_t *slot)
{
    size_t s = HOT_SET(hash);
    uint32_t tag = hot_tag(c, hash);
    const uint32_t *tags = HOT_TAGS(c) + s;
    *slot = s;
    if (tags[0] == tag) return 1;
    *slot = s + 1;
    return tags[1] == tag;
}

/* The hot memo's id for `key` in this batch, or 0. */
static inline uint32_t
memo_probe(CoreObject *c, const Memo *key)
{
    size_t slot;
    return hot_find(c, key->hash, &slot) && memo_same(&c->hot[slot], key) ? c->hot[slot].sid : 0;
}

/* Remember entry `sid` under `key` (of n slots) in the hot memo (a probe just missed). Field by
 * field, n slots only: copying the whole stack key read it back in 16-byte loads over 8-byte
 * stores (a store-forwarding stall) and copied unused slots; the loop stays a loop (GCC made it
 * a call of memcpy, ~10 instructions for a slot or two) -- or none, where n is a constant
 * (a record's n where known, a result's one value: memo_remember_n; the loop was ~7
 * instructions a slot and ~5 around it, callgrind oop). */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
static inline __attribute__((always_inline)) void
memo_remember_n(CoreObject *c, const Memo *key, uint32_t sid, const uint32_t n)
{
    /* the set's ways in turn (its byte in HOT_NEXT: not in an entry, whose line a miss would
     * read only for it): the older of its two entries goes. No record of use on a hit (a store
     * at every hit); a key just missed is the one most likely next. (The batch is the tag's.) */
    const uint64_t hash = key->hash;
    size_t set = HOT_SET(hash);
    uint8_t *next = &HOT_NEXT(c)[set >> 1];
    uint32_t way = *next;   /* (0 or 1: the block starts zeroed) */
    Memo *first = &c->hot[set];
    Memo *m = way ? first + 1 : first;   /* (a select, not a multiply by the entry's size) */
    *next = (uint8_t)!way;
    HOT_TAGS(c)[set + way] = hot_tag(c, hash);
    m->hash = hash; m->head = key->head; m->sid = sid;
    for (uint32_t k = 0; k < n; k++) { m->vals[k] = key->vals[k]; m->types[k] = key->types[k]; }
}

__attribute__((optimize("no-tree-loop-distribute-patterns")))
static inline __attribute__((always_inline)) void
memo_remember(CoreObject *c, const Memo *key, uint32_t sid)
{
    memo_remember_n(c, key, sid, (uint32_t)(key->head >> 40) & 0xFF);
}

/* commit_slots, and the entry's id remembered under `key` (a probe just missed). */
static uint32_t
commit_keyed(CoreObject *c, Slot *local, uint32_t n, uint8_t kind, uint32_t code_idx, const Memo *key)
{
    uint32_t sid = commit_slots(c, local, n, kind, code_idx);
    if (sid) memo_remember(c, key, sid);
    return sid;
}

/* commit_keyed for an entry whose every slot memo_value keyed (inline scalars and (type,
 * address) of opaque objects): the key holds all a slot holds -- tag, value bits, the type of
 * an opaque value -- so the slots are written from it straight into the batch. No second
 * round of type tests (capture_value), no local copy; no Python code runs. */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
static uint32_t
commit_key(CoreObject *c, const Memo *key, uint8_t kind, uint32_t code_idx)
{
    uint32_t n = (uint32_t)(key->head >> 40) & 0xFF, sid = 0;
    Slot *dst = slot_room(c, n);
    StrEntry *e = dst ? str_entry(c, &sid) : NULL;
    if (!e) return 0;
    for (uint32_t k = 0; k < n; k++) {
        dst[k].tag = (uint8_t)(key->head >> (48 + 4 * k) & 15);
        dst[k].u.i = key->vals[k];   /* (a float's bits, an object's address: the same union) */
        dst[k].o = key->types[k] ? Py_NewRef((PyObject *)key->types[k]) : NULL;
    }
    e->kind = kind; e->slot_off = c->nslots; e->nslots = n; e->code_idx = code_idx;
    c->nslots += n;
    memo_remember(c, key, sid);
    return sid;
}

static inline uint32_t
commit_memo(CoreObject *c, Slot *local, uint32_t n, uint8_t kind, uint32_t code_idx)
{
    Memo key;
    if (n == 1 && local[0].tag == V_INT && (uint64_t)local[0].u.i < SMALL_MAX) {
        int32_t k = kind == S_ARGS ? c->codes[code_idx].small : -1;
        SmallTab *st = kind == S_ARGS ? (k >= 0 ? &c->small_args[k] : NULL) : &c->small_vals;
        uint64_t v = (uint64_t)local[0].u.i;
        if (st && (v < st->n || small_grow(c, st, v) == 0)) {
            SmallEntry *e = &st->tab[v];
            if (e->batch == (uint32_t)c->batch && e->sid) return e->sid;   /* (an int holds no reference) */
            uint32_t sid = commit_slots(c, local, 1, kind, code_idx);
            if (sid) { e->sid = sid; e->batch = (uint32_t)c->batch; }
            return sid;
        }
    }
    if (!c->hot || (tls_state && tls_state->npack) || !memo_key_slots(kind, code_idx, local, n, &key))
        return commit_slots(c, local, n, kind, code_idx);   /* (packed values are not keyed: packed.c) */
    uint32_t hit = memo_probe(c, &key);
    if (hit) {
        slots_clear(local, n);   /* the entry it reuses holds its own type references */
        return hit;
    }
    return commit_keyed(c, local, n, kind, code_idx, &key);
}

/* ---- keyed argument lists and results as value records at call time ----
 * An argument list or result that the hot memo keyed and missed, holding a float, an object or
 * an int past the small-int tables (rarely_repeats: render.c would write it as a record), is
 * written now as that record -- straight into the batch's packed bytes as an S_REC entry --
 * instead of as slots the drain turns into the same record: no Slot, no type reference per
 * object, no second pass over the values at the drain, which copies the bytes (strings_batch).
 * (raytrace: ~160k such entries a run, ~340 instructions each at the drain.)
 * The record's names and labels are numbered in the batch's record dictionary now (rec_items),
 * and its object addresses stepped from the previous call-time record's (rec_addr); the drain
 * mends the first step when a record it made itself came in between (REC_SIDE). No Python code
 * runs from the first test to the entry. */

/* Append a record dictionary entry numbered now (index rec_next, then one more): a code's names
 * (type NULL) or a type's label of `len` bytes, returned to be filled. NULL (no memory) or the
 * label's bytes. */
static char *
rec_item_add(CoreObject *c, PyObject *type, uint32_t code_idx, size_t len)
{
    if ((c->nrec_items == c->caprec_items
            && grow((void **)&c->rec_items, &c->caprec_items, c->nrec_items + 1, sizeof(RecItem)) < 0)
            || (c->nrec_labs + len + 1 > c->caprec_labs
                && grow((void **)&c->rec_labs, &c->caprec_labs, c->nrec_labs + len + 1, 1) < 0)) {
        PyErr_Clear();
        return NULL;
    }
    RecItem *it = &c->rec_items[c->nrec_items++];
    it->type = Py_XNewRef(type);   /* (held until the drain, as a slot held it) */
    it->code_idx = code_idx;
    it->lab_off = (uint32_t)c->nrec_labs;
    it->lab_len = (uint32_t)len;
    c->nrec_labs += len;
    c->rec_next++;
    return c->rec_labs + it->lab_off;
}

void
rec_items_clear(RecItem *items, size_t n)
{
    for (size_t i = 0; i < n; i++) Py_CLEAR(items[i].type);
}

/* Number code code_idx's parameter names in this batch's record dictionary unless they are:
 * 0, or -1 (no memory: nothing numbered). Its index is then CodeInfo.rec_ni. COLD: once a code
 * and batch (its callers' blocks for it out of their hot lines). */
COLD int
rec_names_commit(CoreObject *c, uint32_t code_idx)
{
    CodeInfo *ci = &c->codes[code_idx];
    if (ci->rec_epoch == c->rec_epoch + 1) return 0;
    uint32_t ni = c->rec_next;
    if (!rec_item_add(c, NULL, code_idx, 0)) return -1;
    ci->rec_ni = ni;
    ci->rec_epoch = c->rec_epoch + 1;
    uint8_t n = ci->rec == ARGREC_YES && ci->nshown <= MEMO_SLOTS ? (uint8_t)ci->nshown : 0;
    c->crec[code_idx] = (CodeRec){ci->rec_epoch, ni, ci->rec_chars, ci->order4, n, ci->func};   /* (rec_args' copy) */
    return 0;
}

/* Type tp's label numbered in this batch's dictionary on its first use, made here as
 * recorder/c.py type_label makes it ("module.Qualname", "Qualname" in builtins) for a class
 * whose metaclass leaves __module__ and __qualname__ to type: reads only. 0 with its index and
 * characters, -1 when its objects take the slot path (another kind of type, a class dict that
 * only a lookup running Python could read, a label too long for any object's text to stay
 * uncut, no memory). COLD: once a type and batch. */
COLD int
rec_label_make(CoreObject *c, PyTypeObject *tp, uint32_t *idx_, size_t *chars_)
{
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) || (Py_TYPE(tp) != &PyType_Type && !plain_names(Py_TYPE(tp))))
        return -1;
    if (enum_class(tp)) return -1;   /* (an Enum's members have texts of their own: render.c text_enum) */
    /* (a class dict holding a key that is not a str: its label is made at the drain, by the
     * lookup that may run that key's __eq__, as reprs.type_label's would -- not here, where
     * the caller's state is live: dict_str_item) */
    PyObject *mod = NULL;   /* (borrowed) */
    if (!dict_str_item(tp->tp_dict, str_module_key, &mod)) return -1;
    PyObject *name = ((PyHeapTypeObject *)tp)->ht_qualname;
    if (!mod || !PyUnicode_CheckExact(mod) || !name || !PyUnicode_CheckExact(name)) { PyErr_Clear(); return -1; }
    int builtin = mod == str_builtins || PyUnicode_Compare(mod, str_builtins) == 0;
    Py_ssize_t nm = 0, nn = 0;
    const char *um = builtin ? "" : PyUnicode_AsUTF8AndSize(mod, &nm);
    const char *un = um ? PyUnicode_AsUTF8AndSize(name, &nn) : NULL;
    if (!un) { PyErr_Clear(); return -1; }
    size_t chars = (size_t)PyUnicode_GET_LENGTH(name) + (builtin ? 0 : (size_t)PyUnicode_GET_LENGTH(mod) + 1);
    if (chars + 16 + 15 > MAX_TEXT) return -1;   /* ("<", " object at 0x", 16 hex digits, ">") */
    uint32_t idx = c->rec_next;
    size_t len = (size_t)nn + (builtin ? 0 : (size_t)nm + 1);
    char *lab = rec_item_add(c, (PyObject *)tp, 0, len);
    if (!lab) return -1;
    if (!builtin) { memcpy(lab, um, (size_t)nm); lab[nm] = '.'; lab += nm + 1; }
    memcpy(lab, un, (size_t)nn);
    *idx_ = idx;
    *chars_ = chars;
    return 0;
}

/* rec_label_make, the label kept in rec_label's table (entry h) for the batch. */
static COLD int
rec_label_new(CoreObject *c, PyTypeObject *tp, size_t h)
{
    c->rec_types[h].tp = tp;
    c->rec_types[h].epoch = c->rec_epoch + 1;
    c->rec_types[h].ok = 0;
    uint32_t idx;
    size_t chars;
    if (rec_label_make(c, tp, &idx, &chars) < 0) return -1;
    c->rec_types[h].idx = idx;
    c->rec_types[h].chars = (uint16_t)chars;
    c->rec_types[h].ok = 1;
    return 0;
}

/* A label found (or just made) at rec_types[h]: its index and characters, and it is the type
 * asked last (rec_last); -1 when its objects take the slot path. */
static inline __attribute__((always_inline)) int
rec_label_take(CoreObject *c, size_t h, PyTypeObject *tp, uint32_t *idx, size_t *chars)
{
    if (!c->rec_types[h].ok) return -1;
    *idx = c->rec_types[h].idx;
    *chars = c->rec_types[h].chars;
    c->rec_last.tp = tp; c->rec_last.epoch = c->rec_epoch + 1;   /* (only a type that has a label) */
    c->rec_last.idx = *idx; c->rec_last.chars = (uint16_t)*chars;
    return 0;
}

/* rec_label_find's type on its first use in this batch: its label made at entry h. Out of line
 * (a tail call), so that rec_label_find saves no register for it. */
static COLD __attribute__((noinline)) int
rec_label_first(CoreObject *c, PyTypeObject *tp, uint32_t *idx, size_t *chars, size_t h)
{
    if (rec_label_new(c, tp, h) < 0) return -1;
    return rec_label_take(c, h, tp, idx, chars);
}

/* rec_label past the type asked last: the table's lookup (and a label made on a type's first
 * use). Out of line: the records' writers keep to the one compare. Two ways (entries h and h ^ 1):
 * a label made again is numbered again in the batch's dictionary, and direct-mapped, two classes
 * of one program whose addresses fell on one entry took turns there at every record (deltablue, as
 * one build's layout placed its classes: ~5 k labels made a run against ~90, callgrind);
 * a new label goes to the entry of the two that is not this batch's, else to h ^ 1. Found, it
 * saves no register (270 k calls a flask test_basic run: with rec_label_new inline in its cold
 * part it saved six and 0x38 bytes of stack at each, ~57 instructions a call, callgrind). */
static __attribute__((noinline)) int
rec_label_find(CoreObject *c, PyTypeObject *tp, uint32_t *idx, size_t *chars)
{
    const uint32_t now = c->rec_epoch + 1;
    size_t h = ptr_hash(tp) & (REC_TYPES - 1);
    if (c->rec_types[h].tp != tp || c->rec_types[h].epoch != now) {
        size_t o = h ^ 1;
        if (c->rec_types[o].tp != tp || c->rec_types[o].epoch != now)
            return rec_label_first(c, tp, idx, chars, c->rec_types[h].epoch == now ? o : h);
        h = o;
    }
    return rec_label_take(c, h, tp, idx, chars);
}

static inline __attribute__((always_inline)) int
rec_label(CoreObject *c, PyTypeObject *tp, uint32_t *idx, size_t *chars)
{
    /* the last type asked first: one compare (most records hold instances of one or two
     * classes -- raytrace's Vec -- and the table's lookup is a hash and three compares) */
    if (c->rec_last.tp == tp && c->rec_last.epoch == c->rec_epoch + 1) {
        *idx = c->rec_last.idx;
        *chars = c->rec_last.chars;
        return 0;
    }
    return rec_label_find(c, tp, idx, chars);
}

_Static_assert(MEMO_SLOTS == 4, "rec_commit tests the four tag nibbles of a key's head at once");
_Static_assert(MEMO_SLOTS == 4, "args_id keys the (at most four) arguments unrolled");
#define REC_SLOT_MAX 16   /* a slot's most bytes: an object's tag and two varints (5 + 10) */

/* A varint (7 bits a byte, low first, the top bit set on all but the last). Unrolled to five
 * bytes: the records' values are mostly one byte (a label's index) or three to five (an address's
 * step, a counter, a sum: oop's __init__(self, x, y) and dot's results), and the loop took ~8
 * instructions a byte (callgrind oop: ~4.5 M of the records' ~33 M). */
static inline __attribute__((always_inline)) unsigned char *
rec_varint(unsigned char *q, uint64_t v)
{
    if (v < 0x80) { *q = (unsigned char)v; return q + 1; }   /* (the common case: one byte) */
    q[0] = (unsigned char)(v | 0x80);
    if (v < 1u << 14) { q[1] = (unsigned char)(v >> 7); return q + 2; }
    q[1] = (unsigned char)(v >> 7 | 0x80);
    if (v < 1u << 21) { q[2] = (unsigned char)(v >> 14); return q + 3; }
    q[2] = (unsigned char)(v >> 14 | 0x80);
    if (v < 1u << 28) { q[3] = (unsigned char)(v >> 21); return q + 4; }
    q[3] = (unsigned char)(v >> 21 | 0x80);
    q += 4;
    v >>= 28;
    while (v >= 0x80) { *q++ = (unsigned char)(v | 0x80); v >>= 7; }
    *q++ = (unsigned char)v;
    return q;
}

/* Room for a value record of at most `most` bytes past the batch's packed bytes, and its entry
 * (rec_float, rec_int): where to write it, or NULL (no memory; no error set). */
static inline __attribute__((always_inline)) unsigned char *
rec_value_room(CoreObject *c, size_t most, StrEntry **e, uint32_t *sid)
{
    size_t at = c->npacked;
    if (at + most > UINT32_MAX || (at + most > c->cappacked && grow((void **)&c->packed, &c->cappacked, at + most, 1) < 0)
            || !(*e = str_entry(c, sid))) {
        PyErr_Clear();
        return NULL;
    }
    return c->packed + at;
}

/* The value record written at rec_value_room's place, ending at `end`, taken as entry e: sid. */
static inline __attribute__((always_inline)) uint32_t
rec_value_end(CoreObject *c, StrEntry *e, uint32_t sid, const unsigned char *end)
{
    e->pack_off = (uint32_t)c->npacked;
    e->kind = S_REC;
    e->rec_len = (size_t)(end - (c->packed + c->npacked));   /* (code_idx 0, packed 0: str_entry's) */
    c->npacked += e->rec_len;
    return sid;
}

/* rec_value_end, the record then remembered under `key`. */
static inline __attribute__((always_inline)) uint32_t
rec_value_take(CoreObject *c, StrEntry *e, uint32_t sid, const unsigned char *end, const Memo *key)
{
    rec_value_end(c, e, sid, end);
    memo_remember_n(c, key, sid, 1);   /* (a result: one value) */
    return sid;
}

/* rec_commit for a result that is one float (a dot product, a length: most of the results of
 * numeric code, and each a miss): its record is always REC_MARK, REC_VALUE, RS_FLOAT and the
 * 8 bytes, and always one (a float is worth a record; 24 characters at most) -- none of the
 * general loop's tests apply. The same bytes and entry as rec_commit's. */
static inline __attribute__((always_inline)) uint32_t
rec_float(CoreObject *c, const Memo *key)
{
    uint32_t sid;
    StrEntry *e;
    unsigned char *q = rec_value_room(c, 3 + 8, &e, &sid);
    if (!q) return 0;
    double d;
    memcpy(&d, &key->vals[0], 8);
    q[0] = REC_MARK; q[1] = REC_VALUE; q[2] = RS_FLOAT;
    return rec_value_take(c, e, sid, put_f64le(q + 3, d), key);
}

/* rec_commit for a result that is one int past the small-int tables (a sum, a product, a
 * count: oop's norm2, each a new value and a miss): REC_MARK, REC_VALUE, RS_INT and its zigzag
 * varint -- render.c int_record's bytes, and the general loop's -- with none of that loop's
 * tests (an int's text is <= 20 characters, never cut). 0 for an int the tables take (not a
 * record: commit_key then, as the general loop says). */
static inline __attribute__((always_inline)) uint32_t
rec_int(CoreObject *c, const Memo *key)
{
    int64_t v = key->vals[0];
    if (v < (int64_t)SMALL_MAX && v > -(int64_t)SMALL_MAX) return 0;
    uint32_t sid;
    StrEntry *e;
    unsigned char *q = rec_value_room(c, 3 + 10, &e, &sid);
    if (!q) return 0;
    q[0] = REC_MARK; q[1] = REC_VALUE; q[2] = RS_INT;
    return rec_value_take(c, e, sid, rec_varint(q + 3, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63)), key);   /* zigzag */
}

/* The pieces of a record's slots, rec_commit's and rec_args' alike. An object: RS_OBJECT, its
 * type's label index li, its address's zigzag step from the one before (*addr; the first one's
 * address and where its step is kept for the side bytes: *first, *step_at). */
static inline __attribute__((always_inline)) unsigned char *
rec_put_object(unsigned char *__restrict q, const unsigned char *start, uint32_t li, int64_t v, uint64_t *addr,
               uint64_t *first, size_t *step_at)
{
    *q++ = RS_OBJECT;
    q = rec_varint(q, li);
    if (!*step_at) { *first = (uint64_t)v; *step_at = (size_t)(q - start); }   /* (> 0: past the header) */
    int64_t step = (int64_t)((uint64_t)v - *addr);
    *addr = (uint64_t)v;
    return rec_varint(q, ((uint64_t)step << 1) ^ (uint64_t)(step >> 63));
}

/* The labels the walks number in a batch for instances in packed values and in call-time records
 * of them (packed.c pack_labeled, rec_put_instance), by type (direct-mapped), each with what it was
 * read from: the class dict's version tag (any change to the dict, __module__'s included, gives a
 * new one, never reused) and the __qualname__ str (held: its address names no other str
 * meanwhile). A class renamed since its label was made gets it made again -- the text the call
 * saw, as the reference's, and as a class's own text beside it in the value (packed.c pack_named,
 * made now) shows it; rec_label's table, for the keyed records, keeps a type's first label for the
 * batch. gen and epoch: the batch of this session's core. Only read and written with the GIL held. */
#define LABS_SEEN 256   /* (as REC_TYPES: flask's batches label more classes than 64 entries keep) */
static struct { PyTypeObject *tp; PyObject *name; uint64_t ttag, gen; uint32_t epoch, idx; size_t chars; } labs_seen[LABS_SEEN];

/* rec_label_now past its table: the label made (rec_label_make) and kept at entry i. COLD: once a
 * class and batch, and again when it is renamed. */
static COLD __attribute__((noinline)) int
rec_label_now_new(CoreObject *c, PyTypeObject *tp, size_t i, uint64_t ttag, uint32_t *idx, size_t *chars)
{
    if (rec_label_make(c, tp, idx, chars) < 0) return -1;
    Py_XSETREF(labs_seen[i].name, Py_XNewRef(((PyHeapTypeObject *)tp)->ht_qualname));   /* (a str: freeing one runs no code) */
    labs_seen[i].tp = tp; labs_seen[i].ttag = ttag; labs_seen[i].epoch = c->rec_epoch + 1; labs_seen[i].gen = c->gen;
    labs_seen[i].idx = *idx; labs_seen[i].chars = *chars;
    return 0;
}

/* Heap type tp's label as a call made now shows it, numbered in this batch's record dictionary: 0
 * with its index and characters, -1 when its instances take the text path (rec_label_make's). */
static inline __attribute__((always_inline)) int
rec_label_now_in(CoreObject *c, PyTypeObject *tp, uint32_t *idx, size_t *chars)
{
    const uint64_t ttag = tp->tp_dict ? dict_tag(tp->tp_dict) : 0;
    const size_t i = ptr_hash(tp) & (LABS_SEEN - 1);
    if (labs_seen[i].tp != tp || labs_seen[i].epoch != c->rec_epoch + 1 || labs_seen[i].gen != c->gen
            || labs_seen[i].ttag != ttag || !(ttag >> 8) || labs_seen[i].name != ((PyHeapTypeObject *)tp)->ht_qualname)
        return rec_label_now_new(c, tp, i, ttag, idx, chars);
    *idx = labs_seen[i].idx;
    *chars = labs_seen[i].chars;
    return 0;
}

int
rec_label_now(CoreObject *c, PyTypeObject *tp, uint32_t *idx, size_t *chars)
{
    return rec_label_now_in(c, tp, idx, chars);
}

void
rec_labels_now_clear(void)
{
    for (size_t i = 0; i < LABS_SEEN; i++) { Py_CLEAR(labs_seen[i].name); labs_seen[i].tp = NULL; }
}

/* Instance o (of a heap type, not a class) as a slot of the call-time record that packed.c's
 * args_record or value_record writes at q (its tuples' and lists' items too): RS_OBJECT, its
 * label's index (numbered now: rec_label_now -- a class renamed since its label was made in this
 * batch is labelled as it is now) and its address's step (r). Where it ends, its text's
 * characters added to *ch; NULL when it cannot be one (a label of another kind, a text that could
 * be cut: the list takes the slot path). Out of line: args_record's walk meets an instance seldom
 * (a `self` with a packed `*args`). */
unsigned char *
rec_put_instance(CoreObject *c, unsigned char *q, PyObject *o, RecObjs *r, size_t *ch)
{
    uint32_t li;
    size_t lc;
    const uint64_t a = (uint64_t)(uintptr_t)o;
    if (rec_label_now_in(c, Py_TYPE(o), &li, &lc) < 0 || (lc += OBJECT_CHARS(a)) > MAX_TEXT) return NULL;
    *ch += lc;   /* (record_entry's and packed_objects' count: the label, the address's digits, 15) */
    return rec_put_object(q, r->start, li, (int64_t)a, &r->addr, &r->first, &r->step_at);
}

/* An int: RS_INT and its zigzag varint; *worth set when it is past the small-int tables. */
static inline __attribute__((always_inline)) unsigned char *
rec_put_int(unsigned char *__restrict q, int64_t v, int *worth)
{
    *q++ = RS_INT;
    *worth |= v >= (int64_t)SMALL_MAX || v <= -(int64_t)SMALL_MAX;
    return rec_varint(q, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));   /* zigzag */
}

/* The record written from `start` to q (after REC_SIDE side bytes at `side` when it holds
 * objects: their first and last address, where the first step is) taken as an S_REC entry and
 * remembered under `key` (n slots): its id, or 0 (no memory). */
__attribute__((optimize("no-tree-loop-distribute-patterns")))   /* (memo_remember's loop stays a loop) */
static inline __attribute__((always_inline)) uint32_t
rec_take(CoreObject *c, const Memo *key, uint32_t code_idx, unsigned char *side, const unsigned char *start,
         const unsigned char *q, int objects, uint64_t first, uint64_t addr, size_t step_at, const uint32_t n)
{
    uint32_t sid;
    StrEntry *e = str_entry(c, &sid);
    if (!e) { PyErr_Clear(); return 0; }
    size_t len = (size_t)(q - start);
    if (objects) {
        uint16_t sa = (uint16_t)step_at;
        memcpy(side, &first, 8);
        memcpy(side + 8, &addr, 8);
        memcpy(side + 16, &sa, 2);
        c->rec_addr = addr;
    }
    e->pack_off = (uint32_t)(start - c->packed);
    e->kind = S_REC;
    e->code_idx = code_idx;
    e->packed = (uint8_t)objects;
    e->rec_len = len;
    c->npacked = e->pack_off + len;
    memo_remember_n(c, key, sid, n);
    return sid;
}

/* Does a key's head hold a slot of tag `tag` (a tag nibble; the unused ones are 0)? One test for
 * the four nibbles: x has a 0 nibble where a tag is `tag`, and the borrow trick finds any (a false
 * hit only above a true one). */
static inline int
key_holds(uint64_t head, uint8_t tag)
{
    const uint64_t x = (head >> 48) ^ (tag * 0x1111ull);
    return ((x - 0x1111ull) & ~x & 0x8888ull) != 0;
}

/* Does a key's head hold an object (V_OPAQUE)? Then its record comes after the side bytes. */
static inline int
rec_objects(uint64_t head)
{
    return key_holds(head, V_OPAQUE);
}

/* The record of the values `key` holds (memo_value's: localsplus order for S_ARGS, shown in
 * the code's display order) as an S_REC entry of this batch: its string id, or 0 when it is not
 * one (nothing in it rarely repeats, a text that could be cut, a label of another kind, no
 * memory) -- commit_key then. One pass: the bytes are written past the batch's packed bytes
 * while the text's bound is added up, and taken (an entry) only if it is a record. (`restrict`:
 * bytes written through a char pointer may alias anything, and the key's fields were read again
 * after every store.) A result of one float or int: value_rec's rec_float, rec_int first.
 * The key holds no class, builtin, str or function (rec_commit's test; value_rec's: one value,
 * an object). */
__attribute__((optimize("no-tree-loop-distribute-patterns")))   /* (memo_remember's loop stays a loop) */
static __attribute__((noinline)) uint32_t
rec_commit_any(CoreObject *c, const Memo *__restrict key, uint8_t kind, uint32_t code_idx)
{
    CodeInfo *ci = kind == S_ARGS ? &c->codes[code_idx] : NULL;
    if (ci && ci->rec != ARGREC_YES && (ci->rec == ARGREC_NO || args_layout(ci) != ARGREC_YES)) return 0;
    const uint64_t head = key->head;
    const uint32_t nshown = ci ? ci->nshown : 1, n = (uint32_t)(head >> 40) & 0xFF;
    size_t at = c->npacked, need = REC_SIDE + 8 + (size_t)nshown * REC_SLOT_MAX;
    if (nshown > n || at + need > UINT32_MAX
            || (at + need > c->cappacked && grow((void **)&c->packed, &c->cappacked, at + need, 1) < 0)
            || (ci && ci->rec_epoch != c->rec_epoch + 1 && rec_names_commit(c, code_idx) < 0)) {   /* (numbered: no call) */
        PyErr_Clear();
        return 0;
    }
    const uint16_t *order = ci ? ci->order : NULL;
    const uint8_t *star = ci ? ci->star : NULL;
    const int objects = rec_objects(head);
    unsigned char *const side = c->packed + at, *const start = objects ? side + REC_SIDE : side;
    unsigned char *__restrict q = start;
    uint64_t addr = c->rec_addr, first = 0;
    size_t chars = ci ? ci->rec_chars : 0, step_at = 0;
    int worth = 0;
    *q++ = REC_MARK;
    *q++ = ci ? REC_ARGS : REC_VALUE;
    if (ci) q = rec_varint(q, ci->rec_ni);
    for (uint32_t k = 0; k < nshown; k++) {
        uint32_t i = order ? order[k] : 0;
        uint8_t tag = (uint8_t)(head >> (48 + 4 * i) & 15);
        int64_t v = key->vals[i];
        if (tag == V_OPAQUE) {
            uint32_t li;
            size_t lc;
            if (rec_label(c, (PyTypeObject *)key->types[i], &li, &lc) < 0) return 0;
            chars += lc + (size_t)(67 - __builtin_clzll((unsigned long long)v | 1)) / 4 + 15;
            q = rec_put_object(q, start, li, v, &addr, &first, &step_at);
        } else if (tag == V_FLOAT) {
            double d;
            memcpy(&d, &v, 8);
            *q++ = RS_FLOAT;
            q = put_f64le(q, d);
            chars += FLOAT_CHARS;
            worth = 1;
        } else if (tag == V_INT) {
            q = rec_put_int(q, v, &worth);
            chars += 20;
        } else {   /* (a literal: a tag, its length, its bytes -- stored whole, no call) */
            int st = star ? star[k] : 0;
            static const unsigned char lits[6][7] = {
                {RS_LITERAL, 4, 'N', 'o', 'n', 'e'}, {RS_LITERAL, 4, 'T', 'r', 'u', 'e'},
                {RS_LITERAL, 5, 'F', 'a', 'l', 's', 'e'}, {RS_LITERAL, 2, '(', ')'}, {RS_LITERAL, 2, '{', '}'},
                {RS_LITERAL, 1, '?'}};
            const unsigned char *lit = lits[tag == V_NONE ? 0 : tag == V_TRUE ? 1 : tag == V_FALSE ? 2
                                            : st == 1 ? 3 : st == 2 ? 4 : 5];
            memcpy(q, lit, 7);   /* (room: REC_SLOT_MAX a slot) */
            q += 2 + lit[1];
            chars += lit[1];
        }
    }
    if (!(worth | objects) || chars > (ci ? 2 * MAX_TEXT : MAX_TEXT)) return 0;
    return rec_take(c, key, code_idx, side, start, q, objects, first, addr, step_at, n);
}

/* rec_commit_any, but 0 at once for a key holding a class, a builtin, a str or a function: no
 * record (their texts are the drain's: slots, commit_key). Most of flask's argument lists that
 * miss hold a str (a name, a key, a path), and learning that inside rec_commit_any ran its
 * prologue and first lines, ~3 instruction-cache misses a call (cold again by the next miss):
 * here it is a few instructions on two lines, and a tail call for the others. Out of line: as
 * a test inline in start_keyed_miss (rec_args' two ways here) it cost that function a register,
 * ~1.7 instructions at every miss of the oop workload (callgrind). */
static __attribute__((noinline)) uint32_t
rec_commit(CoreObject *c, const Memo *__restrict key, uint8_t kind, uint32_t code_idx)
{
    const uint64_t head = key->head;
    if (key_holds(head, V_CLASS) || key_holds(head, V_BUILTIN) || key_holds(head, V_OBJ) || key_holds(head, V_FUNCTION))
        return 0;
    return rec_commit_any(c, key, kind, code_idx);
}

/* rec_commit for the argument list of a code of n keyed arguments (1..MEMO_SLOTS:
 * start_keyed_miss) in its usual case -- its names numbered in this batch, room for the
 * record, all n shown, every value an object, an int or a float (__init__(self, x, y), each
 * call a new object and new values: a miss) -- one short loop over the slots, with no frame
 * between the callback and it (rec_commit's general loop and its frame were ~390 instructions
 * a record of the oop workload's __init__, callgrind). The same bytes and entry as rec_commit's, which
 * takes every other case; 0 as it gives 0 (commit_key then). */
static inline __attribute__((always_inline)) uint32_t
rec_args(CoreObject *c, const Memo *__restrict key, uint32_t code_idx, const uint32_t n)
{
    const CodeRec *cr = &c->crec[code_idx];   /* (not CodeInfo: its line was a cache miss here) */
    const uint64_t head = key->head;
    const size_t at = c->npacked, need = REC_SIDE + 8 + (size_t)n * REC_SLOT_MAX;
    if (cr->n != n || cr->epoch != c->rec_epoch + 1   /* (n: rec ARGREC_YES and n names shown) */
            || at + need > c->cappacked || at + need > UINT32_MAX)
        return rec_commit(c, key, S_ARGS, code_idx);
    const uint32_t order = cr->order4;   /* (its n <= 4 indexes, 2 bits each: no load of ci->order) */
    const int objects = rec_objects(head);
    unsigned char *const side = c->packed + at, *const start = objects ? side + REC_SIDE : side;
    unsigned char *__restrict q = start;
    uint64_t addr = c->rec_addr, first = 0;
    size_t chars = cr->chars, step_at = 0;
    int worth = 0;
    q[0] = REC_MARK;
    q[1] = REC_ARGS;
    q = rec_varint(q + 2, cr->ni);
#pragma GCC unroll 4
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = order >> (2 * k) & 3;
        uint8_t tag = (uint8_t)(head >> (48 + 4 * i) & 15);
        int64_t v = key->vals[i];
        if (tag == V_OPAQUE) {
            uint32_t li;
            size_t lc;
            if (rec_label(c, (PyTypeObject *)key->types[i], &li, &lc) < 0) return 0;
            chars += lc + (size_t)(67 - __builtin_clzll((unsigned long long)v | 1)) / 4 + 15;
            q = rec_put_object(q, start, li, v, &addr, &first, &step_at);
        } else if (tag == V_INT) {
            q = rec_put_int(q, v, &worth);
            chars += 20;
        } else if (tag == V_FLOAT) {
            double d;
            memcpy(&d, &v, 8);
            *q++ = RS_FLOAT;
            q = put_f64le(q, d);
            chars += FLOAT_CHARS;
            worth = 1;
        } else   /* (a literal: None, True, False; a class, a str: rec_commit gives 0) */
            return rec_commit(c, key, S_ARGS, code_idx);
    }
    if (!(worth | objects) || chars > 2 * MAX_TEXT) return 0;
    return rec_take(c, key, code_idx, side, start, q, objects, first, addr, step_at, n);
}

/* rec_commit for a result that is one object (an instance: a new request, a response, a
 * node -- on flask most of the results that miss, each a new object): REC_MARK, REC_VALUE and
 * the object's slot after the side bytes -- the general loop's bytes and entry, without its
 * loop, its tests for argument lists and its frame (rec_commit_any ran ~265 instructions and
 * missed the instruction cache ~19 times a call on flask's test_json: it runs seldom and cold,
 * callgrind --cache-sim). 0 as the general loop gives 0 (a label of another kind, a text that
 * could be cut, no memory): commit_key then. Out of line: inline in value_miss it cost its two
 * callers registers, and the oop workload's int and float results ~0.14 M instructions (callgrind). */
static __attribute__((noinline)) uint32_t
rec_object(CoreObject *c, const Memo *key)
{
    const size_t at = c->npacked, need = REC_SIDE + 8 + REC_SLOT_MAX;
    if (at + need > UINT32_MAX || (at + need > c->cappacked && grow((void **)&c->packed, &c->cappacked, at + need, 1) < 0)) {
        PyErr_Clear();
        return 0;
    }
    const int64_t v = key->vals[0];
    uint32_t li;
    size_t lc;
    if (rec_label(c, (PyTypeObject *)key->types[0], &li, &lc) < 0
            || lc + (size_t)(67 - __builtin_clzll((unsigned long long)v | 1)) / 4 + 15 > MAX_TEXT)
        return 0;
    unsigned char *const side = c->packed + at, *const start = side + REC_SIDE;
    uint64_t addr = c->rec_addr, first = 0;
    size_t step_at = 0;
    start[0] = REC_MARK;
    start[1] = REC_VALUE;
    unsigned char *q = rec_put_object(start + 2, start, li, v, &addr, &first, &step_at);
    return rec_take(c, key, 0, side, start, q, 1, first, addr, step_at, 1);
}

/* A result's record (rec_commit's, one float's, one int's or one object's the shorter way), or 0. */
static inline __attribute__((always_inline)) uint32_t
value_rec(CoreObject *c, const Memo *key)
{
    uint8_t tag = (uint8_t)(key->head >> 48 & 15);   /* (n is 1) */
    if (tag == V_FLOAT) return rec_float(c, key);
    if (tag == V_INT) return rec_int(c, key);
    /* (one value: a record only when it is an object -- None, True, False are not worth one, a
     * class's, a str's, a function's text is the drain's -- so nothing for the others) */
    return tag == V_OPAQUE ? rec_object(c, key) : 0;
}

/* Is the key one small non-negative int (n == 1)? Those go to the small-int tables
 * (commit_memo), whose final ids outlive the batch (small_final): not to the hot memo. */
static inline int
small_int_key(const Memo *key, const uint64_t *head)
{
    return (*head >> 40 & 0xFF) == 1 && (*head >> 48 & 15) == V_INT && (uint64_t)key->vals[0] < SMALL_MAX;
}

/* A value packed just now (slot s, V_PACKED, no instances in it: a generator's (key, value), a
 * result's tuple of strs) as the S_REC entry render.c's record_entry would make of its entry at
 * the drain -- REC_MARK, REC_VALUE and the packed bytes, whose characters pack_value kept within
 * MAX_TEXT (always a record: a packed slot is worth one) -- written now, past the batch's packed
 * bytes: no slot, no second copy (pack_commit's) nor per-slot pass at the drain, which copies runs
 * of such records as they are (strings_batch). (commit_memo keys no packed value either.) Its
 * id, or 0 (no memory; no error set). */
static __attribute__((noinline)) uint32_t
packed_value_rec(CoreObject *c, const Slot *s)
{
    ThreadState *ts = tls_state;   /* (pack_value's: the bytes are in its buffer) */
    const size_t len = PACKED_LEN(s->u.i);
    uint32_t sid;
    StrEntry *e;
    unsigned char *q = rec_value_room(c, 2 + len, &e, &sid);
    if (q) {
        q[0] = REC_MARK;
        q[1] = REC_VALUE;
        memcpy(q + 2, ts->pack + PACKED_OFF(s->u.i), len);
    }
    ts->npack = 0;   /* (taken, or dropped with the value) */
    return q ? rec_value_end(c, e, sid, q + 2 + len) : 0;
}

/* value_id's values that are neither an instance, a float nor an int past the small-int tables:
 * None, True, False (one entry each per batch), small ints (their table), and what the memo does
 * not key (a container, bytes: captured). Out of line: value_id's own path stays short. */
static __attribute__((noinline)) uint32_t
value_id_other(CoreObject *c, PyObject *v)
{
    if (v == Py_None || v == Py_True || v == Py_False) {
        /* the commonest results (procedures, __init__, tests): one entry each per batch, found
         * by two compares -- not keyed, probed and compared in the hot memo */
        int k = v == Py_None ? 0 : v == Py_True ? 1 : 2;
        if (c->single_batch[k] == c->batch && c->single_sid[k]) return c->single_sid[k];
        Slot s = {NULL, {.i = 0}, (uint8_t)(k == 0 ? V_NONE : k == 1 ? V_TRUE : V_FALSE)};
        uint32_t sid = commit_slots(c, &s, 1, S_VALUE, 0);
        c->single_sid[k] = sid;
        c->single_batch[k] = c->batch;
        return sid;
    }
    uint32_t hit = small_hit(c, &c->small_vals, v);
    if (hit) return hit;
    if (small_int(v) && (hit = small_commit(c, &c->small_vals, small_int_value(v), S_VALUE, 0))) return hit;
    Slot s;
    if (capture_value(c, &s, v) < 0) return 0;
    if (s.tag == V_PACKED && !s.o && !PACKED_LABELED(s.u.i)) return packed_value_rec(c, &s);   /* (a tuple or list of scalars) */
    return commit_memo(c, &s, 1, S_VALUE, 0);
}

/* value_id's value before the next: `key`'s one slot and its entry sid */
static inline void
value_last(CoreObject *c, const Memo *key, uint32_t sid)
{
    c->last_val.x = key->vals[0]; c->last_val.t = key->types[0]; c->last_val.tag = (uint8_t)(key->head >> 48 & 15);
    c->last_val.batch = (uint32_t)c->batch; c->last_val.sid = sid;
}

/* value_id's miss: the entry made now (a record, or a slot from the key), and remembered as the
 * value before the next. */
__attribute__((optimize("no-tree-loop-distribute-patterns")))   /* (memo_remember's loop stays a loop) */
static inline __attribute__((always_inline)) uint32_t
value_miss(CoreObject *c, const Memo *key)
{
    uint32_t sid = value_rec(c, key);
    if (!sid) sid = commit_key(c, key, S_VALUE, 0);
    if (sid) value_last(c, key, sid);
    return sid;
}

/* value_id's miss out of line: value_id's hit path saves no register. */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
static __attribute__((noinline)) uint32_t
value_id_miss(CoreObject *c, const Memo *key)
{
    return value_miss(c, key);
}

/* value_id's keyed path: 1 with the entry's id in *sid (the value before, c->last_val, or found
 * in the hot memo), 0 with the key made (a miss: value_id_miss makes the entry), -1 for what
 * value_id_other does (None, True, False, small ints, what the memo does not key, full mode);
 * with `fast` (value_key_in's fast tests only), -2 for a value those do not take. */
static inline __attribute__((always_inline)) int
value_probe_in(CoreObject *c, PyObject *v, Memo *key, uint32_t *sid, const int fast)
{
    uint8_t tag;
    int64_t x;
    uintptr_t t;
    if (c->args_mode != 1 || !c->hot) return -1;
    if (!value_key_in(v, &tag, &x, &t, fast)) return fast ? -2 : -1;   /* (-2: value_key's full tests may key it) */
    if (tag == V_NONE || tag == V_TRUE || tag == V_FALSE || (tag == V_INT && (uint64_t)x < SMALL_MAX))
        return -1;
    if (x == c->last_val.x && t == c->last_val.t && tag == c->last_val.tag && c->last_val.batch == (uint32_t)c->batch
            && c->last_val.sid) {
        *sid = c->last_val.sid;
        return 1;
    }
    uint64_t head, h = memo_begin(S_VALUE, 0, 1, &head);
    h = memo_mix(key, h, &head, 0, tag, x, t);
    memo_end(key, h, head);
    if (!(*sid = memo_probe(c, key))) return 0;
    value_last(c, key, *sid);
    return 1;
}
static inline __attribute__((always_inline)) int
value_probe(CoreObject *c, PyObject *v, Memo *key, uint32_t *sid)
{
    return value_probe_in(c, v, key, sid, 0);
}

/* String id for a single value (result, yielded value); 0 when capture is off.
 * Safe mode: an instance, a float or an int past the small-int tables -- most results that are
 * not None -- is keyed at once (value_key) and found in, or added to, the hot memo; the value
 * before it first (c->last_val: one compare of its key), as a function returning what the one it
 * called returned -- a property, a wrapper, a delegating method -- gives the same value twice in
 * a row. Anything else: value_id_other. */
uint32_t
value_id(CoreObject *c, PyObject *v)
{
    if (!c->args_mode) return 0;
    Memo key;
    uint32_t sid = 0;
    int found = value_probe(c, v, &key, &sid);
    if (found > 0) return sid;
    if (!found) return value_id_miss(c, &key);   /* (a tail call: nothing live past it) */
    return value_id_other(c, v);
}

/* value_id_other's entry for True or False when this batch has it (its two compares), else 0:
 * for value_probe_in's -1 (None, bools, small ints), where a bool stops -- not in
 * vc_cb_py_return's inline test (value_small_hit), which every result not None goes past: a type
 * compare more there cost raytrace's float and object results +1.8 M instructions, callgrind. */
static inline uint32_t
bool_hit(const CoreObject *c, PyObject *v)
{
    const int k = v == Py_True ? 1 : v == Py_False ? 2 : 0;
    return k && c->single_batch[k] == c->batch ? c->single_sid[k] : 0;
}

/* value_id_other's way for an exact tuple or list (value_probe_in's -2 in safe mode), straight:
 * packed now (pack_value, no Python) -- a record of scalars (packed_value_rec), or with
 * instances of one class a slot (commit_memo's way for a packed value: commit_slots) -- without
 * value_id's second round of type tests (value_key_in's full tests) and value_id_other's and
 * capture_value's before capture_value_rest reaches the same pack_value. The same entry as
 * value_id's. 0 for any other value, when it is not packed (nothing kept: value_id's whole way
 * then) or no memory (no error left set: that way tries again and reports it). */
static __attribute__((noinline)) uint32_t
value_packed(CoreObject *c, PyObject *v)
{
    if (Py_TYPE(v) != &PyTuple_Type && Py_TYPE(v) != &PyList_Type) return 0;
    return value_record(c, v);   /* (a record now, its instances of any classes: packed.c) */
}

/* A value's id when it takes no Python code to make (a yield's fast path, callbacks.c
 * yield_row_out; end_keyed's way for a tuple or list): found by value_probe_in's fast key (the
 * value before, the hot memo), made from that key on a miss (value_miss: a record or a slot,
 * no Python), or with `seq` a tuple or list packed now (value_packed). 0 for the rest -- what
 * value_id_other takes (the small ints and singletons missing this batch's entry, containers,
 * classes, functions: their texts may need Python), and no memory (no error left set) -- for
 * value_id's whole way. The key goes to c->hit_key (end_keyed's: nothing runs between). */
__attribute__((optimize("no-tree-loop-distribute-patterns")))   /* (memo_remember's loop stays a loop) */
uint32_t
value_id_now(CoreObject *c, PyObject *v, int seq)
{
    uint32_t sid = 0;
    int found = value_probe_in(c, v, &c->hit_key, &sid, 1);
    if (found > 0) return sid;
    if (!found) {
        if (!(sid = value_miss(c, &c->hit_key))) PyErr_Clear();
        return sid;
    }
    if (found == -1) return bool_hit(c, v);
    return seq ? value_packed(c, v) : 0;   /* (-2: a tuple or list is packed now) */
}

/* end_keyed's miss: the entry made now from its key (c->hit_key; value_miss: a float's or an
 * int's record written here, no frame between), then the exit row -- its time read first, as
 * end_return reads it before the value's text. */
__attribute__((optimize("no-tree-loop-distribute-patterns")))   /* (memo_remember's loop stays a loop) */
static __attribute__((noinline)) PyObject *
end_keyed_miss(CoreObject *c)
{
    int64_t t = fast_stamp();
    uint32_t v = value_miss(c, &c->hit_key);
    if (!v) soft_fail(c);
    return end_fast(c, tls_state, t, v);
}

/* end_keyed's values that value_id_other takes (None, True, False, small ints: `full` 0), or
 * that its fast key does not take (value_key_in's `fast`: a class, a function, a container...:
 * `full` 1, value_id's whole way). value_id_other's hook may run Python: the row after it, the
 * thread's state and the time taken before it. */
static __attribute__((noinline)) PyObject *
end_keyed_other(CoreObject *c, PyObject *value, int full)
{
    ThreadState *ts = tls_state;
    int64_t t = fast_stamp();
    uint32_t v = 0;
    /* (a tuple or list: packed straight, value_packed, ~53 k results of flask's test_basic) */
    if (full) v = value_packed(c, value);
    if (!v) v = full ? value_id(c, value) : value_id_other(c, value);
    if (!v) soft_fail(c);
    return end_fast(c, ts, t, v);
}

/* PY_RETURN's fast path (vc_cb_py_return) for the call on top of the stack (not a generator's)
 * returning a value value_small_hit did not find: value_id's keyed path and the exit row in one
 * function -- found, it calls nothing (as end_value_out and value_id, each a frame, it took ~40
 * instructions more a return of the oop workload, callgrind). A miss makes its entry first
 * (end_keyed_miss); the rest goes by value_id (end_keyed_other). It has no frame of its own
 * (six registers saved and restored at every return of an instance or an int, ~18
 * instructions): the key goes to c->hit_key, not to its stack (its miss took its address: a
 * call, not a tail call), it keys only what value_key_in's fast tests take (the others' tests
 * call functions), the thread's state comes from tls_state (vc_cb_py_return's running_state
 * found it there) and the clock is read after the lookup (no value lives across it). */
PyObject *
end_keyed(CoreObject *c, PyObject *value)
{
    uint32_t v = 0;
    int found = value_probe_in(c, value, &c->hit_key, &v, 1);
    if (found > 0) return end_fast(c, tls_state, fast_stamp(), v);
    if (!found) return end_keyed_miss(c);
    /* (a bool found by two compares: not by end_keyed_other and value_id_other, two calls --
     * ~68 k of flask test_basic's results are True or False) */
    if (found == -1 && (v = bool_hit(c, value))) return end_fast(c, tls_state, fast_stamp(), v);
    return end_keyed_other(c, value, found == -2);
}

/* Are the dicts among a code's n arguments still in the state `key` names (dict_state's tags)?
 * A dict's text failing in C (no memory) runs the reference's hook, Python code that could change
 * it: then its entry is not remembered under the key. */
static int
dicts_as_keyed(_PyInterpreterFrame *frame, const char *kinds, uint32_t n, const Memo *key)
{
    for (uint32_t k = 0; k < n; k++) {
        PyObject *v = arg_value(frame, kinds, k);
        if ((key->head >> (48 + 4 * k) & 15) == V_TEXT
                && (!v || Py_TYPE(v) != &PyDict_Type || !dict_in_state(v, key->vals[k])))
            return 0;   /* (the same tag: the same state, which dict_state passed) */
    }
    return 1;
}

/* Code idx (the code co) could not be keyed in this batch (CodeInfo.unkeyed), and its co_extra
 * slot says that such a batch came (XF_UNKEYED: crecorder.h start_keyed reads unkeyed then). */
static void
unkeyed_now(CoreObject *c, PyCodeObject *co, Py_ssize_t idx)
{
    c->codes[idx].unkeyed = (uint32_t)c->batch + 1;
    CodeExtra *ex = extra_inline ? (CodeExtra *)co->co_extra : NULL;   /* (else no fast path reads it) */
    if (!ex || extra_index >= ex->ce_size) return;
    uintptr_t v = (uintptr_t)ex->ce_extras[extra_index];
    if (EXTRA_GEN(v) == GEN_BITS(c->gen) && !(v & 1) && EXTRA_IDX(v) == idx)   /* (this session's, as it must be) */
        ex->ce_extras[extra_index] = (void *)(v | XF_UNKEYED);
}

/* args_id past its keyed path: no arguments, one small int (its table), safe mode's keyed path
 * for a code with a cell among its arguments, the records of lists holding containers, and the
 * capture of what cannot be keyed. Out of line: args_id's own frame and path stay small. */
__attribute__((noinline)) uint32_t
args_id_rest(CoreObject *c, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx)
{
    uint32_t n = c->codes[idx].nargs;
    if (!frame || FRAME_CODE(frame) != (PyObject *)co) return 0;
    if (!n) {   /* reprs.args_text gives "": one entry per batch for all such calls */
        if (c->empty_batch != c->batch || !c->empty_sid) {
            c->empty_sid = add_text(c, Py_NewRef(str_empty));
            c->empty_batch = c->batch;
        }
        return c->empty_sid;
    }
    const char *kinds = arg_kinds(&c->codes[idx], co);
    Memo key;
    const Memo *keyed = NULL;   /* a key holding a dict's state that missed: the captured entry goes under it */
    if (n == 1) {   /* f(i): the small-int table first, before anything is captured */
        PyObject *v = arg_value(frame, kinds, 0);
        int32_t k = c->codes[idx].small;
        uint32_t hit = k >= 0 ? small_hit(c, &c->small_args[k], v) : 0;
        if (hit) return hit;
        if (k >= 0 && small_int(v) && (hit = small_commit(c, &c->small_args[k], small_int_value(v), S_ARGS, (uint32_t)idx)))
            return hit;
    }
    if (c->args_mode == 1 && n <= MEMO_SLOTS && c->hot && c->codes[idx].unkeyed != (uint32_t)c->batch + 1) {
        /* Safe mode: the memo key straight from the frame. On a hit -- most calls of most
         * programs pass the same objects and small values again within a batch -- nothing is
         * captured: no slots, no type references taken and dropped, no second key. A
         * function whose arguments cannot be keyed (a container, bytes) is not tried again
         * in this batch: the capture path below memoizes what it can. */
        uint64_t head, h = memo_begin(S_ARGS, (uint32_t)idx, n, &head);
        /* in slot order (memo_key_slots' key); the frame's slots read as they are unless one is
         * a cell (CodeInfo.cells: seldom). A loop: written out for each slot (eight uses, with
         * and without cells), memo_arg -- value_key_in's every test -- was a function of its own
         * (1 KB) called for each argument, a call and a frame each; in the loop it is inline
         * once (args_id_rest 2.4 + 1.0 KB -> 2.9 KB; callgrind webapp -3.9 M instructions, flask
         * test_json -0.42 M). i: the first argument that could not be keyed, or n. */
        PyObject *const *args = frame->localsplus;
        uint32_t i = 0;
        while (i < n && memo_arg(&key, &h, &head, i, kinds ? arg_value(frame, kinds, i) : args[i])) i++;
        if (i < n) unkeyed_now(c, co, idx);
        else if (!small_int_key(&key, &head)) {
            memo_end(&key, h, head);
            uint32_t hit = memo_probe(c, &key);
            if (hit) return hit;
            if (key_holds(head, V_TEXT)) keyed = &key;   /* a dict's text: made now, below (memo_arg) */
            else return (hit = rec_commit(c, &key, S_ARGS, (uint32_t)idx)) ? hit : commit_key(c, &key, S_ARGS, (uint32_t)idx);
        }
    }
    if (!keyed && c->codes[idx].rec != ARGREC_NO && c->codes[idx].unrec != (uint32_t)c->batch + 1) {
        /* a list with a tuple or list in it: the whole of it written as a record now (packed.c) */
        uint32_t sid = args_record(c, frame, co, idx, 0);
        if (sid) return sid;
    }
    Slot small[8];
    Slot *local = n <= 8 ? small : PyMem_RawMalloc(n * sizeof(Slot));
    if (!local) { PyErr_NoMemory(); return 0; }
    uint32_t sid = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (capture_value(c, &local[i], arg_value(frame, kinds, i)) < 0) { slots_clear(local, i); goto done; }
    }
    /* (c->codes may have moved while a hook ran; idx is still valid) */
    sid = keyed && dicts_as_keyed(frame, kinds, n, keyed) ? commit_keyed(c, local, n, S_ARGS, (uint32_t)idx, keyed)
                                                          : commit_memo(c, local, n, S_ARGS, (uint32_t)idx);
done:
    if (local != small) PyMem_RawFree(local);
    return sid;
}

/* args_keyed's miss: the entry made now, a record or else slots from the key (no Python code
 * runs). Out of line: nothing of args_keyed's is live across it, so its hit path keeps to
 * scratch registers (no register saved and restored a call). */
static __attribute__((noinline)) uint32_t
args_keyed_miss(CoreObject *c, const Memo *key, uint32_t idx)
{
    uint32_t sid = rec_commit(c, key, S_ARGS, idx);
    return sid ? sid : commit_key(c, key, S_ARGS, idx);
}

/* args_id's keyed path for a code of n (1..MEMO_SLOTS, a constant in each copy) arguments, none
 * a cell: the memo key straight from the frame's slots -- memo_key_slots' key, as the general
 * path makes it -- and its entry looked up (most calls of most programs pass the same objects
 * and small values again within a batch: nothing is captured). 1 with the entry's id in *sid
 * (found), 0 with the key made (a miss: the entry is made by args_keyed_miss), -1 when an
 * argument memo_value_fast does not key (a container, a class, a builtin object: args_id_rest
 * keys it or marks the code `unkeyed` for the batch) or the list is one small int (its table):
 * args_id_rest's. With n constant the key's slots and its compare are straight-line code. */
static inline __attribute__((always_inline)) int
args_key_probe(CoreObject *c, PyObject *const *args, Py_ssize_t idx, const uint32_t n, Memo *key, uint32_t *sid)
{
    uint64_t head, h = memo_begin(S_ARGS, (uint32_t)idx, n, &head);
#pragma GCC unroll 4
    for (uint32_t k = 0; k < n; k++) {
        if (!memo_value_fast(key, &h, &head, k, args[k])) return -1;
    }
    if (n == 1 && small_int_key(key, &head)) return -1;
    memo_end(key, h, head);
    size_t slot;
    if (!hot_find(c, key->hash, &slot)) return 0;
    const Memo *m = &c->hot[slot];
    if (m->hash == key->hash && m->head == key->head) {   /* (memo_probe, memo_same: n known) */
        int same = 1;
#pragma GCC unroll 4
        for (uint32_t k = 0; k < n; k++) same &= m->vals[k] == key->vals[k] && m->types[k] == key->types[k];
        if (same) { *sid = m->sid; return 1; }
    }
    return 0;
}

/* args_id's keyed path (args_key_probe): the entry's id, found or made now, or args_id_rest's. */
static inline __attribute__((always_inline)) uint32_t
args_keyed(CoreObject *c, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx, const uint32_t n)
{
    Memo key;
    uint32_t sid = 0;
    int found = args_key_probe(c, frame->localsplus, idx, n, &key, &sid);
    if (found > 0) return sid;
    if (!found) return args_keyed_miss(c, &key, (uint32_t)idx);   /* (nothing live past it: a frame of no saved registers) */
    return args_id_rest(c, frame, co, idx);
}

#define ARGS_KEYED(N) static __attribute__((noinline)) uint32_t \
    args_keyed_##N(CoreObject *c, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx) \
    { return args_keyed(c, frame, co, idx, N); }
ARGS_KEYED(1)
ARGS_KEYED(2)
ARGS_KEYED(3)
ARGS_KEYED(4)
#undef ARGS_KEYED

/* start_keyed_any's miss: the entry made now -- the record written here (rec_args: no frame
 * between), else slots from the key -- then the call's row (start_fast_out), or (no memory) the
 * whole of it again by start_args_out. Its key is c->hit_key (start_keyed_any's, reached by a
 * tail call): no Python code runs between the probe and here, nor in rec_args / commit_key (they
 * read the key, the code and the type's dict only: commit_key's comment), so no other thread can
 * have made a key of its own there meanwhile. The code's index comes back from the key's head,
 * the thread's state from tls_state (vc_cb_py_start's running_state found it), the code from
 * the frame (its test there). One copy for every n (the key's): a copy for each n,
 * unrolled, was ~70 instructions a miss fewer but 2.2-5.1 KB of code each, and a program
 * calling codes of several argument counts ran through as many copies -- they missed the
 * instruction cache at nearly every line (callgrind --cache-sim, workload phase, scale 3, I1
 * misses at three placements of the code: raytrace 9.29/8.09/7.71 M against 11.28/11.48/10.14 M,
 * richards 1.01/0.71/0.60 against 0.89/1.30/1.05, oop 5.25/4.44/5.35 against 5.40/6.14/3.60). */
__attribute__((optimize("no-tree-loop-distribute-patterns")))   /* (memo_remember's loop stays a loop) */
static __attribute__((noinline)) PyObject *
start_keyed_miss(CoreObject *c, _PyInterpreterFrame *frame)
{
    const Memo *key = &c->hit_key;
    Py_ssize_t idx = (Py_ssize_t)(uint32_t)key->head;   /* (memo_begin's head: the code's index) */
    ThreadState *ts = tls_state;
    uint32_t a = rec_args(c, key, (uint32_t)idx, (uint32_t)(key->head >> 40) & 0xFF);
    if (!a) a = commit_key(c, key, S_ARGS, (uint32_t)idx);
    return a ? start_fast_out(c, ts, frame, idx, a) : start_args_out(c, ts, frame, (PyCodeObject *)FRAME_CODE(frame), idx);
}

/* args_key_probe for a code of any n (1..MEMO_SLOTS) keyed arguments, n read at run time: the
 * same key, the same probe, for start_keyed_any -- one copy for every n. Its loops are unrolled
 * MEMO_SLOTS times, each slot's code with its own constant k and a test of n before it (k == n:
 * done), so the n = 1 list runs slot 0's code, n = 2 slots 0 and 1's, and so on: every argument
 * count shares the same lines. As loops (k a register, the tag's shift a variable, a jump back
 * at each slot) they cost ~14 instructions more a call of the oop workload (callgrind).
 * key->head is set on every way out (-1 too): the caller takes the code's index back from it. */
static inline __attribute__((always_inline)) int
args_key_probe_any(CoreObject *c, PyObject *const *args, Py_ssize_t idx, uint32_t n, Memo *key, uint32_t *sid)
{
    uint64_t head, h = memo_begin(S_ARGS, (uint32_t)idx, n, &head);
    uint32_t tags = 0;
#pragma GCC unroll 4
    for (uint32_t k = 0; k < MEMO_SLOTS; k++) {
        if (k && k == n) break;   /* (n >= 1: no test before slot 0) */
        if (!memo_value_tags(key, &h, &tags, k, args[k])) { key->head = head; return -1; }
    }
    head |= (uint64_t)tags << 48;
    memo_end(key, h, head);
    if (small_int_key(key, &head)) return -1;   /* (tests n == 1 itself) */
    /* the set's two entries asked for now, beside their tags' load: a hit reads one of them next,
     * a miss writes one (start_keyed_miss: memo_remember_n) -- not each after the tags' compare,
     * a cache miss in turn (its branch, taken either way about as often, is mispredicted often) */
    __builtin_prefetch(&c->hot[HOT_SET(key->hash)]);
    __builtin_prefetch(&c->hot[HOT_SET(key->hash) + 1]);
    size_t slot;
    if (!hot_find(c, key->hash, &slot)) return 0;
    const Memo *m = &c->hot[slot];
    if (m->hash != key->hash || m->head != key->head) return 0;   /* (memo_probe, memo_same) */
#pragma GCC unroll 4
    for (uint32_t k = 0; k < MEMO_SLOTS; k++) {
        if (k && k == n) break;
        if (m->vals[k] != key->vals[k] || m->types[k] != key->types[k]) return 0;
    }
    *sid = m->sid;
    return 1;
}

/* PY_START's fast path (vc_cb_py_start, crecorder.h start_keyed) for a call of a code of 1 to
 * MEMO_SLOTS keyed arguments: the key, its entry and the call's row in one function -- found,
 * the commonest case, it calls nothing (as start_args_out, args_id and args_keyed_N, each a
 * frame, ~80 instructions a call of the oop workload went to getting there, callgrind). No
 * Python code runs before the row: the id is the row's batch's. What it cannot key:
 * start_args_out, from the start.
 * One copy for every argument count (args_key_probe_any): a copy for each n (start_keyed_1..4,
 * 1.2-2.9 KB each, 8 KB in all) made a program calling codes of several argument counts run
 * through as many copies, and they and the interpreter's own code evicted each other from the
 * instruction cache (callgrind --cache-sim, see the commit). Its key goes to c->hit_key, not
 * to its stack (its miss took the key's address: a call, not a tail call, and five registers
 * and a 0x60-byte stack area were saved and restored at every call; now three registers, for
 * the probe's own values, objdump), and every way out is a tail call that finds what it needs
 * again -- the code's index in the key's head, the thread's state in tls_state
 * (vc_cb_py_start's running_state), the code in the frame (its test there). */
__attribute__((noinline)) PyObject *
start_keyed_any(CoreObject *c, _PyInterpreterFrame *frame, Py_ssize_t idx, uint32_t n)
{
    uint32_t a = 0;
    /* what a miss reads of its code (start_keyed_miss: rec_args) and a hit's row (start_fast: its
     * func), asked for now: its line came in only there, a cache miss at ~20 % of that function's
     * samples (flask's phase, perf annotate); now it comes while the key is made (most calls of
     * flask's test_basic miss: ~59 %) */
    __builtin_prefetch(&c->crec[idx]);
    int found = args_key_probe_any(c, frame->localsplus, idx, n, &c->hit_key, &a);   /* (n: CodeInfo.keyed) */
    idx = (Py_ssize_t)(uint32_t)c->hit_key.head;   /* (memo_begin's head: the code's index, low 32 bits) */
    if (found > 0) return start_fast(c, tls_state, frame, idx, a);
    if (!found) return start_keyed_miss(c, frame);
    return start_args_out(c, tls_state, frame, (PyCodeObject *)FRAME_CODE(frame), idx);
}

/* crecorder.h start_keyed's other way, a code not keyed in this batch: its argument lists by
 * the code's shape (packed.c start_shaped) when it has one, else start_args_out. */
__attribute__((noinline)) PyObject *
start_unkeyed(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx)
{
    if (c->codes[idx].shape) return start_shaped(c, ts, frame, co, idx, NULL);   /* (packed.c: a record by the code's shape) */
    return start_args_out(c, ts, frame, co, idx);
}

/* String id for the arguments of the call whose frame is running now. Safe mode, a code of 1 to
 * MEMO_SLOTS arguments and no cell among them: args_keyed_<n> (the commonest calls; each a tail
 * call); a code whose lists were records in this batch: args_record; everything else:
 * args_id_rest. */
uint32_t
args_id(CoreObject *c, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx)
{
    const CodeInfo *ci = &c->codes[idx];
    if (c->args_mode == 1 && ci->keyed && ci->unkeyed != (uint32_t)c->batch + 1
            && c->hot && frame && FRAME_CODE(frame) == (PyObject *)co) {
        switch (ci->keyed) {
        case 1: return args_keyed_1(c, frame, co, idx);
        case 2: return args_keyed_2(c, frame, co, idx);
        case 3: return args_keyed_3(c, frame, co, idx);
        default: return args_keyed_4(c, frame, co, idx);
        }
    }
    return args_id_unkeyed(c, frame, co, idx);
}

/* args_id past its keyed path (args_keyed_N), for the callers that know it cannot pay:
 * callbacks.c start_args_out, reached from crecorder.h start_keyed's ways -- start_unkeyed (the
 * keyed path's own test failed there) or start_keyed_any's -1 (a value its fast key does not take,
 * or one small int: args_keyed_N's fast key gives -1 for the same values, then goes here). On
 * flask's test_json ~8 k calls a run went through args_id and args_keyed_N's key for nothing. */
uint32_t
args_id_unkeyed(CoreObject *c, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx)
{
    const CodeInfo *ci = &c->codes[idx];
    uint32_t now = (uint32_t)c->batch + 1;
    if (ci->recd == now && ci->unrec != now && frame && FRAME_CODE(frame) == (PyObject *)co)
        /* a code whose argument list was a record in this batch (g(n, ("job", (n, n + 1)))): its
         * next one very likely is too -- straight there, not through args_id_rest's small-int
         * table first and its large frame; one that is not a record goes on to args_id_rest
         * from there (rest: a tail call of args_record's, no frame of a caller's kept for it) */
        return args_record(c, frame, co, idx, 1);   /* (a tail call: this function keeps no frame) */
    return args_id_rest(c, frame, co, idx);
}

/* Provisional string id for an exception's text, made now (exceptions mutate and die).
 * One text per exception object while it travels through the frames of one thread: the
 * cache is dropped at every new raise (a dead exception's address may be reused) and at
 * every drain (provisional ids are per batch). */
/* reprs.exception_text without a Python call, for the common case: a builtin exception
 * type (static, in builtins: its name is tp_name) whose __str__ is one of the builtin ones
 * reprs._BUILTIN_STR lists and whose args are all exact str/int/float/bool/None/bytes -- then
 * both modes use str(exc), which runs no user code. NULL (no error set) otherwise: the
 * wrapper's hook does it, with the reference's rules for every other case. */
reprfunc builtin_str[N_BUILTIN_STR];

/* "Name: " for a static builtin exception type (immortal: the address is a stable key) */
#define EXC_PREFIXES 32
static struct { PyTypeObject *tp; PyObject *head; } exc_prefixes[EXC_PREFIXES];
static PyObject *
exc_prefix(PyTypeObject *tp)
{
    size_t i = (((uintptr_t)tp) >> 4) & (EXC_PREFIXES - 1);
    if (exc_prefixes[i].tp == tp) return exc_prefixes[i].head;
    PyObject *head = PyUnicode_FromFormat("%s: ", tp->tp_name);
    if (!head) return NULL;
    Py_XSETREF(exc_prefixes[i].head, head);
    exc_prefixes[i].tp = tp;
    return head;
}

/* Is `u` one line: none of the characters reprs.one_line escapes (C0 controls, DEL, U+0085,
 * U+2028, U+2029)? An ASCII str eight characters at a time (ascii_not_plain's tests for a byte
 * below 0x20 and for DEL): a character at a time through PyUnicode_READ this was ~10
 * instructions a character, ~6.7 M a flask test_basic run (10 k messages, callgrind). */
static int
one_line(PyObject *u)
{
    const void *data = PyUnicode_DATA(u);
    Py_ssize_t n = PyUnicode_GET_LENGTH(u), i = 0;
    if (PyUnicode_IS_ASCII(u)) {
        const unsigned char *p = data;
        const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
        uint64_t x;
        for (; i + 8 <= n; i += 8) {
            memcpy(&x, p + i, 8);
            if (((x - ones * 0x20) & ~x & highs) | ((x + ones) & highs)) return 0;
        }
        for (; i < n; i++) if (p[i] < 0x20 || p[i] == 0x7F) return 0;
        return 1;
    }
    int kind = PyUnicode_KIND(u);
    for (; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch < 0x20 || ch == 0x7F || ch == 0x85 || ch == 0x2028 || ch == 0x2029) return 0;
    }
    return 1;
}

/* reprs.one_line(u) (steals u; NULL with an error set): u itself when it is one line, else a new
 * str with those characters escaped as reprs._ESCAPES writes them -- \t \n \r, \u2028 \u2029,
 * the others \xhh. Before, a message of more than one line took the text hook (a Python call:
 * reprs.exception_text, ~16 us an exception under a recording): flask's "Working outside of
 * application context.\n\n..." RuntimeError, ~140 a test_basic run. */
static PyObject *
one_line_text(PyObject *u)
{
    if (!u || one_line(u)) return u;
    int kind = PyUnicode_KIND(u);
    const void *data = PyUnicode_DATA(u);
    Py_ssize_t n = PyUnicode_GET_LENGTH(u), m = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        m += ch == '\t' || ch == '\n' || ch == '\r' ? 2 : ch < 0x20 || ch == 0x7F || ch == 0x85 ? 4
             : ch == 0x2028 || ch == 0x2029 ? 6 : 1;
    }
    Py_UCS4 *buf = PyMem_Malloc((size_t)m * sizeof(Py_UCS4)), *q = buf;
    if (!buf) { Py_DECREF(u); return PyErr_NoMemory(); }
    static const char hex[] = "0123456789abcdef";
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch == '\t' || ch == '\n' || ch == '\r') { *q++ = '\\'; *q++ = ch == '\t' ? 't' : ch == '\n' ? 'n' : 'r'; }
        else if (ch < 0x20 || ch == 0x7F || ch == 0x85) { *q++ = '\\'; *q++ = 'x'; *q++ = hex[ch >> 4]; *q++ = hex[ch & 15]; }
        else if (ch == 0x2028 || ch == 0x2029) {
            *q++ = '\\'; *q++ = 'u'; *q++ = '2'; *q++ = '0'; *q++ = '2'; *q++ = ch == 0x2028 ? '8' : '9';
        }
        else *q++ = ch;
    }
    PyObject *r = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, m);   /* (its narrowest kind) */
    PyMem_Free(buf);
    Py_DECREF(u);
    return r;
}

static PyObject *
exc_text_fast(PyObject *exc)
{
    PyTypeObject *tp = Py_TYPE(exc);
    if ((tp->tp_flags & Py_TPFLAGS_HEAPTYPE) || !PyExceptionInstance_Check(exc) || strchr(tp->tp_name, '.'))
        return NULL;
    int known = 0;
    for (int i = 0; i < N_BUILTIN_STR; i++) known |= tp->tp_str == builtin_str[i];
    if (!known) return NULL;
    PyObject *args = ((PyBaseExceptionObject *)exc)->args;
    if (!args || !PyTuple_CheckExact(args)) return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
        PyTypeObject *at = Py_TYPE(PyTuple_GET_ITEM(args, i));
        if (!(at == &PyUnicode_Type || at == &PyLong_Type || at == &PyFloat_Type || at == &PyBool_Type
              || at == Py_TYPE(Py_None) || at == &PyBytes_Type))
            return NULL;
    }
    PyObject *msg = PyObject_Str(exc);
    if (!msg) { PyErr_Clear(); return NULL; }   /* the hook reports it as the reference does */
    if (!PyUnicode_CheckExact(msg)) { Py_DECREF(msg); return NULL; }   /* (the hook's) */
    msg = cut_text(one_line_text(msg), MAX_TEXT);   /* reprs: _cut(one_line(msg)) */
    if (!msg) { PyErr_Clear(); return NULL; }
    /* "Name: msg" by concatenation with the type's cached "Name: " (PyUnicode_FromFormat
     * parsed the format every time: most of this function's cost) */
    PyObject *head = exc_prefix(tp), *r;
    if (!head) r = NULL;
    else if (!PyUnicode_GET_LENGTH(msg)) r = PyUnicode_Substring(head, 0, PyUnicode_GET_LENGTH(head) - 2);
    else r = PyUnicode_Concat(head, msg);
    Py_DECREF(msg);
    if (!r) PyErr_Clear();
    return r;
}

/* reprs.exception_text's other branch, safe mode (and `off`: its texts are safe mode's), without
 * the hook: an exception whose message is the safe text of its args (value_text) -- args not all
 * simple values (StopIteration(obj), KeyError(obj), LookupError(ContextVar)) or a class with its
 * own Python __str__ (werkzeug's BadRequestKeyError("k")), which safe mode never calls. The hook,
 * a Python call of ~36,000 instructions an exception (flask's test_basic: 3,378 exceptions, 124 M
 * instructions in either mode, callgrind), stays for what this cannot answer as the reference
 * would: full mode, a class whose metaclass is not `type` (it may answer __qualname__,
 * __module__ or __str__ itself), a class that reads its attributes its own way (tp_getattro) or
 * gives `args` another meaning, a __module__ that is not an exact str, simple args under a
 * builtin __str__ (str(exc): exc_text_fast's, or the hook's for a class), and a message that
 * is not one line or not C's to make (builtin_text_now). NULL (no error set) for the hook. */
static PyObject *str_dunder_str, *str_args, *base_args;   /* ("__str__", "args", BaseException's getset) */
/* reprs._BUILTIN_STR and _SAME_AS_BASE_STR: the __str__ descriptors of builtin_str_types and of
 * AttributeError, NameError, UnboundLocalError (held for good) */
static PyObject *str_descrs[N_BUILTIN_STR + 3];

/* Is `own_str` (a class's __str__, found along its MRO) one of reprs' builtin ones? Then reprs
 * calls str(exc) for simple args -- by identity, as reprs' sets compare them. */
static int
builtin_str_descr(PyObject *own_str)
{
    for (int i = 0; i < N_BUILTIN_STR + 3; i++) if (own_str == str_descrs[i]) return own_str != NULL;
    return 0;
}

static PyObject *
exc_text_args(CoreObject *c, PyObject *exc)
{
    PyTypeObject *tp = Py_TYPE(exc);
    if (c->args_mode == 2 || !PyExceptionInstance_Check(exc)) return NULL;
    if (!str_dunder_str) {   /* (once; interned, held for good) */
        if (!(str_dunder_str = PyUnicode_InternFromString("__str__")) || !(str_args = PyUnicode_InternFromString("args"))
                || !(base_args = _PyType_Lookup((PyTypeObject *)PyExc_BaseException, str_args))) {
            Py_CLEAR(str_dunder_str);
            PyErr_Clear();
            return NULL;
        }
        Py_INCREF(base_args);
        PyObject *same[3] = {PyExc_AttributeError, PyExc_NameError, PyExc_UnboundLocalError};
        for (int i = 0; i < N_BUILTIN_STR + 3; i++) {
            PyTypeObject *bt = (PyTypeObject *)(i < N_BUILTIN_STR ? *builtin_str_types[i] : same[i - N_BUILTIN_STR]);
            str_descrs[i] = Py_XNewRef(_PyType_Lookup(bt, str_dunder_str));
        }
    }
    PyObject *args = ((PyBaseExceptionObject *)exc)->args;
    if (!args || !PyTuple_CheckExact(args)) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    int simple = 1;   /* reprs._safe_args */
    for (Py_ssize_t i = 0; i < n && simple; i++) {
        PyTypeObject *at = Py_TYPE(PyTuple_GET_ITEM(args, i));
        simple = at == &PyUnicode_Type || at == &PyLong_Type || at == &PyFloat_Type || at == &PyBool_Type
                 || at == Py_TYPE(Py_None) || at == &PyBytes_Type;
    }
    PyObject *mod = NULL, *qual;   /* (borrowed) the name's parts; mod NULL: a builtin type's */
    int by_str = 0;   /* the message is str(exc), not the args' safe text */
    if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
        /* type(exc).__qualname__, .__module__, .__str__ and exc.args read as `type` and
         * object.__getattribute__ read them: the heap type's qualname, its own dict's __module__,
         * the first __str__ along its MRO (a function: the class's own, never in _BUILTIN_STR),
         * BaseException's args descriptor (a data descriptor: the instance dict cannot hide it) */
        if (Py_TYPE(tp) != &PyType_Type || tp->tp_getattro != PyObject_GenericGetAttr
                || _PyType_Lookup(tp, str_args) != base_args)
            return NULL;
        PyObject *own_str = _PyType_Lookup(tp, str_dunder_str);
        if (simple && !(own_str && PyFunction_Check(own_str))) {
            /* reprs' str(exc) for a builtin __str__ (zipimport's ZipImportError(msg), werkzeug's
             * routing exceptions: ~40 a flask test_basic run took the hook); another: the hook's */
            if (!builtin_str_descr(own_str)) return NULL;
            by_str = 1;
        }
        qual = ((PyHeapTypeObject *)tp)->ht_qualname;
        mod = tp->tp_dict ? PyDict_GetItemWithError(tp->tp_dict, str_module_key) : NULL;
        if (!mod || !PyUnicode_CheckExact(mod) || !PyUnicode_CheckExact(qual)) { PyErr_Clear(); return NULL; }
        if (PyUnicode_Compare(mod, str_builtins) == 0 || PyUnicode_CompareWithASCIIString(mod, "__main__") == 0)
            mod = NULL;
    } else {
        /* a static type: its name and "builtins" (no dot in tp_name), its attributes its own */
        if (simple || strchr(tp->tp_name, '.')) return NULL;   /* (simple args: exc_text_fast's str(exc)) */
        qual = NULL;
    }
    PyObject *msg = by_str ? PyObject_Str(exc)   /* (a builtin __str__ of simple args: no code of the program's) */
                  : n == 0 ? NULL : builtin_text_now(n == 1 ? PyTuple_GET_ITEM(args, 0) : args, 1);   /* value_text */
    if ((by_str || n) && (!msg || !PyUnicode_CheckExact(msg))) {   /* (the hook says what it can) */
        Py_XDECREF(msg);
        PyErr_Clear();
        return NULL;
    }
    msg = cut_text(one_line_text(msg), MAX_TEXT);   /* reprs: _cut(one_line(msg)) */
    PyObject *r = NULL;
    if ((by_str || n) && !msg) { PyErr_Clear(); return NULL; }
    const int shown = msg && PyUnicode_GET_LENGTH(msg);
    if (!qual) r = shown ? PyUnicode_FromFormat("%s: %U", tp->tp_name, msg) : PyUnicode_FromString(tp->tp_name);
    else if (mod) r = shown ? PyUnicode_FromFormat("%U.%U: %U", mod, qual, msg) : PyUnicode_FromFormat("%U.%U", mod, qual);
    else r = shown ? PyUnicode_FromFormat("%U: %U", qual, msg) : Py_NewRef(qual);
    Py_XDECREF(msg);
    if (!r) PyErr_Clear();
    return r;
}

/* The commonest exceptions -- a builtin type that keeps BaseException's __str__, raised with
 * one int (ValueError(i), IndexError(n)) or nothing -- as an S_EXC entry: the type and the
 * int, made into the reference's text ("ValueError: 3", "ValueError") at drain (render.c).
 * No Python str per exception: str(exc) made the int's decimal text through long_to_decimal
 * (which checks for signals), then a concatenation -- ~700 instructions of each exception
 * (callgrind, benchmarks/workloads/exceptions.py). 0 when exc is not one of them. */
static uint32_t
exc_entry(CoreObject *c, PyObject *exc)
{
    /* (the type's tests answer for good once passed: a static type never changes -- the last
     * type that passed is remembered, as an exception type tends to be raised again) */
    static PyTypeObject *passed;
    PyTypeObject *tp = Py_TYPE(exc);
    if (tp != passed) {
        if (tp->tp_str != ((PyTypeObject *)PyExc_BaseException)->tp_str || (tp->tp_flags & Py_TPFLAGS_HEAPTYPE)
                || !PyExceptionInstance_Check(exc) || strchr(tp->tp_name, '.'))
            return 0;
        passed = tp;
    }
    PyObject *args = ((PyBaseExceptionObject *)exc)->args;
    if (!args || !PyTuple_CheckExact(args) || PyTuple_GET_SIZE(args) > 1) return 0;
    long long v = 0;
    if (PyTuple_GET_SIZE(args)) {
        PyObject *a = PyTuple_GET_ITEM(args, 0);
        int overflow = 0;
        if (!PyLong_CheckExact(a)) return 0;
        if (PyUnstable_Long_IsCompact((PyLongObject *)a))   /* (one digit: read in place) */
            v = PyUnstable_Long_CompactValue((PyLongObject *)a);
        else {
            v = PyLong_AsLongLongAndOverflow(a, &overflow);
            if (overflow || (v == -1 && PyErr_Occurred())) { PyErr_Clear(); return 0; }
        }
    }
    /* the same text already in this batch (another exception object), or written by an
     * earlier batch of this session (its final id: no entry; small_final keeps it) */
    SmallEntry *se = exc_small_entry(c, tp, exc_small_index((uint32_t)PyTuple_GET_SIZE(args), v), 1);
    if (se && se->batch == (uint32_t)c->batch && se->sid) return se->sid;
    if (se && se->fgen == (uint32_t)c->gen && se->final && se->final < FINAL_ID) {
        c->exc_finals = 1;
        return se->final | FINAL_ID;
    }
    uint32_t sid;
    StrEntry *e = str_entry(c, &sid);
    if (!e) { PyErr_Clear(); return 0; }
    e->kind = S_EXC;
    e->text = Py_NewRef((PyObject *)tp);
    e->exc_int = v;
    e->nslots = (uint32_t)PyTuple_GET_SIZE(args);
    if (se) { se->sid = sid; se->batch = (uint32_t)c->batch; }
    return sid;
}

/* exc_id past its cache (crecorder.h): the text of an exception not seen in this batch yet */
uint32_t
exc_id_slow(CoreObject *c, ThreadState *ts, PyObject *exc)
{
    uint32_t sid = exc_entry(c, exc);
    if (!sid) {
        PyObject *t = exc_text_fast(exc);
        if (!t) t = exc_text_args(c, exc);   /* (the hook's safe branch, in C) */
        if (!t) {
            hook_runs_python(c);
            t = call_in_callback(c->exc_text, &exc, 1, NULL);
        }
        if (!t) return 0;
        sid = add_text(c, t);
    }
    ts->exc_ptr = exc;
    ts->exc_sid = sid;
    ts->exc_batch = c->batch;
    return sid;
}
