/* flowtrace._crecorder: a collection that could free a class the batch holds is preceded by the
 * class's release from the batch, so that recording never keeps a class alive.
 *
 * A batch holds a reference to the type of every instance it captured (V_OPAQUE, packed
 * instances, record labels) and to every class passed or returned (V_CLASS) until the drain
 * renders their texts. Classes are never freed by their reference count alone (a class is in a
 * cycle through its own __mro__), only by a collection; so if the batch lets go of a class
 * before any collection that could free it, the program sees its classes die exactly when they
 * would without us. Before session 26, a class made and dropped in a test lived until the next
 * drain (at most one flush interval): `weakref.ref(cls)()` was not None after gc.collect(), the
 * base's __subclasses__() still listed it (attrs' own tests failed two of 1,329 under
 * `flowtrace run --include '*'`).
 *
 * Which collections (before_collection, from gc_phase's "start"): the batch's entries are read
 * once each into the set of distinct classes they hold (held_sync, at the first collection
 * after they were written), each with the youngest generation it can be in; a collection looks
 * no further when no held class can be in a generation it collects (most of them), else the
 * held classes that can be and are not their module's attribute (sys.modules reaches those: no
 * collection frees them) are released (release_classes, through session.py's hook): only the
 * entries that reference them are rendered now and become texts, and what is keyed by their
 * addresses forgets them. The hook drains the whole batch instead when it cannot (a flush under
 * way on another thread, a failure). A batch that holds no value (--no-args) is never looked at.
 *
 * Session 26 walked the young generations' objects for heap types at every collection and
 * drained the batch when one was held (51 more flushes on flask 3.1.1's test_basic under
 * `flowtrace run --include '*'`): perf (ab.sh, 8 pairs each) put that at +329 samples a run
 * against main without the guard (1 sample = 0.25 ms; ~5 %); this at -64 (the same, within
 * the noise). The walk's ~45 samples were mostly the collection's own cache misses paid early
 * (the collection then took ~47 samples more without it).
 *
 * Not covered: a collection that starts inside our own work (an allocation in a callback, the
 * drain, the flusher's Python code: `tstate->tracing` is set) cannot release there; a class
 * freed by that very collection then lives until the next one. */
#define PY_SSIZE_T_CLEAN
#define Py_BUILD_CORE 1   /* (before Python.h: the interpreter's state, its gc generations) */
#include <Python.h>
#include "internal/pycore_interp.h"
#undef Py_BUILD_CORE
#include "crecorder.h"

static PyObject *collect_hook;   /* session.py: every recording session releases the classes, or drains (set_collect_hook) */
static PyObject *str_generation, *str_module;

/* ---- The classes the batch holds (the set), read as it grows ----
 * The batch's entries are read once each, at the first collection after they were written
 * (held_sync, from where the last one stopped), into the set of distinct heap types their slots
 * and the record dictionary hold -- a few hundred a batch on flask, where reading every slot at
 * every collection that found a young class (session 26's may_free_held) cost as much again.
 * Each held type carries the youngest generation it can be in (min_gen): a collection of
 * generation g looks further only when a held type may be in one it collects (min_gen <= g),
 * which is none most of the time; after it, each such type is in g + 1 or older (survivors
 * move up; none moves back). */
/* (tp NULL: empty; not a reference: the batch's. from_str: the batch's entries read before the
 * collection that found it -- none of them references it. blocks: the blocks of BLOCK entries
 * among which those that reference it through their slots are, the last block also all past
 * it: releasing it renders what is there) */
#define BLOCK_SHIFT 8
#define BLOCKS 256
typedef struct { PyObject *tp; uint32_t from_str; uint8_t min_gen; uint64_t blocks[BLOCKS / 64]; } Held;
static struct {
    const CoreObject *core; uint64_t gen; uint32_t epoch;   /* the batch it reads (reset when another) */
    size_t items, strs;       /* the batch's record items and entries read so far */
    Held *tab; size_t cap, n; /* open addressing by type_hash, linear probing; at most half full */
    size_t young[2];          /* held types that may be in generation 0, in 0 or 1 */
} held;

/* The types the slots held_sync read last, by type_hash: o, its place in the set (NULL: not a
 * class a program made). A slot of a type seen lately costs a compare, where held_add's tests
 * and probe were ~48 instructions (~125 k slots of flask's test_basic: callgrind). Emptied
 * whenever places move (held_resize, held_remove) and with the set. */
#define RECENT 64
static struct { PyObject *o; Held *h; } recent[RECENT];

/* Youngest generations known across batches, by type address and its dict's version tag (unique
 * per dict state: a new class at a freed one's address has another): a type that has reached the
 * oldest generation is not released again in the next batches. Direct-mapped. */
#define KNOWN 1024
static struct { void *tp; uint64_t tag; uint8_t min_gen; } known[KNOWN];

/* A type's place in the tables here: its address's bits past the allocator's 16-byte alignment
 * (classes lie ~1 KB apart) -- two shifts, where ptr_hash's multiply-and-mix was ~9.7 M
 * instructions of flask's test_basic (~130 k lookups: callgrind). */
static inline size_t
type_hash(PyObject *tp)
{
    uintptr_t x = (uintptr_t)tp;
    return (size_t)((x >> 4) ^ (x >> 14));
}

static inline uint64_t
type_tag(PyObject *tp)
{
    PyObject *d = ((PyTypeObject *)tp)->tp_dict;
    return d && PyDict_CheckExact(d) ? dict_tag(d) : 0;   /* (0: no tag, nothing known) */
}

static void
known_put(PyObject *tp, uint8_t min_gen)
{
    uint64_t tag = type_tag(tp);
    if (!(tag >> 8)) return;
    size_t i = type_hash(tp) & (KNOWN - 1);
    known[i].tp = tp; known[i].tag = tag; known[i].min_gen = min_gen;
}

static uint8_t
known_min_gen(PyObject *tp)
{
    size_t i = type_hash(tp) & (KNOWN - 1);
    if (known[i].tp != tp) return 0;
    uint64_t tag = type_tag(tp);
    return tag >> 8 && known[i].tag == tag ? known[i].min_gen : 0;
}

static inline void
young_count(uint8_t min_gen, int by)
{
    if (min_gen == 0) held.young[0] += by;
    if (min_gen <= 1) held.young[1] += by;
}

static Held *
held_find(PyObject *tp)
{
    if (!held.cap) return NULL;
    for (size_t i = type_hash(tp) & (held.cap - 1);; i = (i + 1) & (held.cap - 1)) {
        if (held.tab[i].tp == tp) return &held.tab[i];
        if (!held.tab[i].tp) return NULL;
    }
}

static void
held_put(Held h)
{
    size_t i = type_hash(h.tp) & (held.cap - 1);
    while (held.tab[i].tp) i = (i + 1) & (held.cap - 1);
    held.tab[i] = h;
    held.n++;
    young_count(h.min_gen, 1);
}

/* Make the table hold `cap` slots (a power of two), its types put again. -1: no memory (the
 * table is as it was). */
static int
held_resize(size_t cap)
{
    Held *old = held.tab;
    size_t oldcap = held.cap;
    Held *tab = PyMem_RawCalloc(cap, sizeof(Held));
    if (!tab) return -1;
    held.tab = tab; held.cap = cap; held.n = 0; held.young[0] = held.young[1] = 0;
    memset(recent, 0, sizeof recent);
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].tp) held_put(old[i]);
    PyMem_RawFree(old);
    return 0;
}

/* o, which a slot or record item holds: its place in the set (put there now if new), or NULL
 * when it is not a class a program made, or (*nomem set) no memory -- the caller then treats the
 * batch as holding anything (held_sync). */
static Held *
held_add(PyObject *o, int *nomem)
{
    if (!PyType_Check(o) || !PyType_HasFeature((PyTypeObject *)o, Py_TPFLAGS_HEAPTYPE)) return NULL;
    Held *h = held_find(o);
    if (h) return h;
    if (2 * (held.n + 1) > held.cap && held_resize(held.cap ? 2 * held.cap : 64) < 0) { *nomem = 1; return NULL; }
    held_put((Held){o, (uint32_t)held.strs, known_min_gen(o), {0}});
    return held_find(o);
}

static inline void
held_mark(Held *h, size_t entry)
{
    size_t b = entry >> BLOCK_SHIFT;
    if (b >= BLOCKS) b = BLOCKS - 1;
    h->blocks[b >> 6] |= 1ull << (b & 63);
}

/* Does slot s hold a type (the type of an instance, or a class)? Its tag says: no object is read.
 * (One test of a mask: four compares were ~7 instructions a slot of held_sync's.) */
#define TYPE_TAGS (1u << V_OPAQUE | 1u << V_DEFREPR | 1u << V_PACKED | 1u << V_CLASS)
static inline int
slot_holds_type(const Slot *s)
{
    return (TYPE_TAGS >> s->tag & 1) && s->o;
}
_Static_assert(S_VALUE == S_ARGS + 1, "held_sync tests the two kinds with slots at once");

/* The set, for core c's batch as it is now: what was written since the last call read. 0, or -1
 * when the set could not hold it (no memory). */
static int
held_sync(const CoreObject *c)
{
    if (held.core != c || held.gen != c->gen || held.epoch != c->rec_epoch) {   /* another batch */
        if (held.tab) memset(held.tab, 0, held.cap * sizeof(Held));
        held.n = held.young[0] = held.young[1] = 0;
        held.core = c; held.gen = c->gen; held.epoch = c->rec_epoch;
        held.items = held.strs = 0;
        memset(recent, 0, sizeof recent);
    }
    PyObject *last = NULL;   /* (runs of one type: a method's self, call after call) */
    Held *lasth = NULL;
    int nomem = 0;
    for (size_t i = held.strs; i < c->nstrs; i++) {
        const StrEntry *e = &c->strs[i];
        if ((unsigned)(e->kind - S_ARGS) > 1) continue;   /* (only S_ARGS and S_VALUE have slots) */
        for (const Slot *s = c->slots + e->slot_off, *end = s + e->nslots; s < end; s++) {
            if (!slot_holds_type(s)) continue;
            if (s->o != last) {
                last = s->o;
                size_t r = type_hash(last) & (RECENT - 1);
                if (recent[r].o == last) lasth = recent[r].h;
                else {
                    lasth = held_add(last, &nomem);   /* (a resize moves the set, and empties recent) */
                    if (nomem) return -1;
                    recent[r].o = last; recent[r].h = lasth;
                }
            }
            if (lasth) held_mark(lasth, i);
        }
    }
    for (size_t i = held.items; i < c->nrec_items; i++)   /* (call-time records: not released, their labels kept) */
        if (c->rec_items[i].type && (held_add(c->rec_items[i].type, &nomem), nomem)) return -1;
    held.items = c->nrec_items;
    held.strs = c->nstrs;   /* (the types added above keep where the batch was before) */
    return 0;
}

/* Is class o its module's attribute of its own name, the module in sys.modules (a class defined
 * at a module's top level: socket.SocketKind, a module's named tuple, a test module's class)?
 * The interpreter then reaches it through sys.modules: no collection frees it now, and its
 * being held by the batch changes nothing. Asked at each collection that could free it (a class
 * being defined is not bound yet). Dict lookups by str only: no code of the program
 * runs (not PyImport_GetModule, which may wait for a module being imported). */
static int
module_level(PyObject *o)
{
    PyObject *qualname = ((PyHeapTypeObject *)o)->ht_qualname, *dict = ((PyTypeObject *)o)->tp_dict;
    if (!qualname || !PyUnicode_CheckExact(qualname) || !dict || !PyDict_Check(dict)) return 0;
    if (PyUnicode_FindChar(qualname, '.', 0, PyUnicode_GET_LENGTH(qualname), 1) != -1) return 0;   /* (-2: an error) */
    PyObject *modname = PyDict_GetItemWithError(dict, str_module);
    PyObject *modules = modname && PyUnicode_CheckExact(modname) ? PyImport_GetModuleDict() : NULL;
    PyObject *mod = modules ? PyDict_GetItemWithError(modules, modname) : NULL;
    PyObject *attr = mod && PyModule_Check(mod) ? PyDict_GetItemWithError(PyModule_GetDict(mod), qualname) : NULL;
    PyErr_Clear();
    return attr == o;
}

/* ---- The classes a collection could free (the dying list), for release_classes ---- */
static const CoreObject *dying_core;
static PyObject **dying;   /* (not references: the batch holds them) */
static size_t ndying, capdying;
static uint32_t dying_str;   /* the first entry that can reference one (Held.from_str) */
static uint64_t dying_blocks[BLOCKS / 64];   /* the blocks of entries that do (Held.blocks) */
static uint64_t dying_filter[4];   /* a 256-bit filter of them: a type not in it is none */

static inline unsigned
filter_bit(PyObject *p)
{
    return (unsigned)(type_hash(p) & 255);
}

static inline int
is_dying(PyObject *o)
{
    if (ndying == 1) return o == dying[0];   /* (most collections: one class) */
    unsigned b = filter_bit(o);
    if (!(dying_filter[b >> 6] >> (b & 63) & 1)) return 0;
    for (size_t k = 0; k < ndying; k++)
        if (dying[k] == o) return 1;
    return 0;
}

/* Held class tp could be freed by the collection: onto the list unless a module reaches it.
 * -1: no memory. */
static int
dying_add(const Held *h)
{
    PyObject *tp = h->tp;
    if (module_level(tp)) return 0;
    if (!ndying || h->from_str < dying_str) dying_str = h->from_str;
    for (size_t w = 0; w < BLOCKS / 64; w++) dying_blocks[w] = (ndying ? dying_blocks[w] : 0) | h->blocks[w];
    if (ndying == capdying && grow((void **)&dying, &capdying, ndying + 1, sizeof(PyObject *)) < 0) {
        PyErr_Clear();
        return -1;
    }
    dying[ndying++] = tp;
    unsigned b = filter_bit(tp);
    dying_filter[b >> 6] |= 1ull << (b & 63);
    return 0;
}

/* The held classes the collection of `generation` could free, onto the dying list: every held
 * one that may be in a generation it collects (min_gen <= generation; for the oldest, every
 * one) and is not its module's attribute. Not looked for among the collected objects: walking
 * the young generations for heap types read each object's header (~50 samples of flask's
 * test_basic a run, perf: a cache miss an object) to spare a class that turned out older a
 * release -- and each is released at most twice (then it is known to be in the oldest
 * generation, also for the next batches: known_put) or every time it could die. Then every
 * held type that may have been collected is known older. -1: no memory (the caller drains). */
static int
find_dying(long generation)
{
    ndying = 0;
    memset(dying_filter, 0, sizeof dying_filter);
    int oldest = generation >= NUM_GENERATIONS - 1;
    uint8_t older = (uint8_t)(generation + 1);   /* (survivors of the collection move there) */
    for (size_t i = 0; i < held.cap; i++) {
        Held *h = &held.tab[i];
        if (!h->tp || (!oldest && h->min_gen > generation)) continue;
        if (dying_add(h) < 0) return -1;
        if (oldest) continue;
        young_count(h->min_gen, -1);
        h->min_gen = older;
        young_count(older, 1);
        known_put(h->tp, older);
    }
    return 0;
}

/* gc_phase's "start" outside our own work: when the collection could free a class the batch
 * holds, the hook (session.py) has it released from the batch first (release_classes), or
 * drains the batch. The hook runs with this thread's events off (our work, as suspend_events
 * does); it never raises into the collector (a failure is cleared: the batch then stays as it
 * was). */
int
gc_collecting(void)
{
    return PyInterpreterState_Get()->gc.collecting;
}

void
before_collection(PyThreadState *tstate, PyObject *info)
{
    if (!collect_hook || tstate->tracing || !info || !PyDict_Check(info)) return;
    const CoreObject *c = active_core;   /* (the C recorder's; none for the Python recorder) */
    if (!c || (!c->nslots && !c->nrec_items)) return;   /* (no value held: --no-args, a fresh batch) */
    PyObject *g = PyDict_GetItemWithError(info, str_generation);
    long generation = g && PyLong_Check(g) ? PyLong_AsLong(g) : -1;
    if (generation < 0) { PyErr_Clear(); return; }
    int whole = held_sync(c) < 0;   /* (no memory for the set: drain, as if a class could die) */
    if (!whole) {
        if (!held.n) return;
        /* (the common case: every held type is known older than what this collection collects) */
        if (generation < NUM_GENERATIONS - 1 && !held.young[generation > 0]) return;
        whole = find_dying(generation) < 0;
        if (!whole && !ndying) return;
    }
    dying_core = whole ? NULL : c;   /* (NULL: release_classes says no, the hook drains) */
    PyObject *hook = Py_NewRef(collect_hook);   /* (set_collect_hook may run meanwhile) */
    PyThreadState_EnterTracing(tstate);
    own_tracing++;
    PyObject *r = PyObject_CallNoArgs(hook);
    own_tracing--;
    PyThreadState_LeaveTracing(tstate);
    Py_DECREF(hook);
    if (r) Py_DECREF(r);
    else PyErr_Clear();
    dying_core = NULL;
    ndying = 0;
}

/* ---- Releasing the dying classes in place ----
 * Each entry of the batch that references one (its slots: an instance's type, a class, a
 * packed value's instances' type) is rendered now, as the drain would (render_entry), and
 * becomes a text (S_TEXT): its slots' references to the dying classes are dropped (the others
 * it holds stay until the drain, as the memos keyed by their addresses need). A record label
 * (rec_items) keeps its bytes; its type's reference is dropped (None in its place: still a
 * label to record_dictionary). Then what is keyed by a dying class's address forgets it, so a
 * new class at that address gets its own text: the hot memo's entries whose key has it (their
 * tags zeroed), value_id's last key, rec_label's table and last label. Not keyed by it: the
 * drain's memo TextMemo (holds no class: tmemo_slot_key), pack_ids (tuples of scalars),
 * render.c's call-time label cache and capture.c's dict texts (checked by the class dict's
 * version tag, which a new class does not share). */

/* Does entry e (S_ARGS / S_VALUE) reference a dying class? */
static int
entry_dying(const CoreObject *c, const StrEntry *e)
{
    for (uint32_t k = 0; k < e->nslots; k++) {
        const Slot *s = &c->slots[e->slot_off + k];
        if (slot_holds_type(s) && is_dying(s->o)) return 1;
    }
    return 0;
}

/* Entry i's text, rendered from copies of its slots and packed bytes (rendering may run Python:
 * a type's label by the hook, a rare immutable's text; other threads may grow the batch
 * meanwhile), or NULL with an error set. */
static PyObject *
entry_text(CoreObject *c, size_t i, RenderCtx *rc)
{
    StrEntry e = c->strs[i];
    Slot *slots = PyMem_RawMalloc(e.nslots * sizeof(Slot));
    size_t plen = 0;
    for (uint32_t k = 0; slots && k < e.nslots; k++) {
        slots[k] = c->slots[e.slot_off + k];
        Py_XINCREF(slots[k].o);
        if (slots[k].tag == V_PACKED && PACKED_OFF(slots[k].u.i) + PACKED_LEN(slots[k].u.i) > plen)
            plen = PACKED_OFF(slots[k].u.i) + PACKED_LEN(slots[k].u.i);
    }
    unsigned char *packed = plen ? PyMem_RawMalloc(plen) : NULL;
    PyObject *text = NULL;
    if (!slots || (plen && !packed) || e.pack_off + plen > c->npacked) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    if (plen) memcpy(packed, c->packed + e.pack_off, plen);
    e.slot_off = 0; e.pack_off = 0;
    rc->packed = rc->pack_base = packed; rc->npacked = plen;
    Text t = {NULL, 0, 0, 0};
    if (render_entry(c, rc, &e, slots, &t) == 0) text = PyUnicode_DecodeUTF8(t.p ? t.p : "", (Py_ssize_t)t.len, NULL);
    PyMem_RawFree(t.p);
    rc->packed = rc->pack_base = NULL; rc->npacked = 0;
done:
    for (uint32_t k = 0; slots && k < e.nslots; k++) Py_XDECREF(slots[k].o);
    PyMem_RawFree(slots);
    PyMem_RawFree(packed);
    return text;
}

/* The slots of the entries made texts (offset, count), for forget_dying: they keep their
 * references until the drain, but for those to the dying classes. */
static uint32_t *made;
static size_t nmade, capmade;

/* Entry i becomes `text` (stolen). 0, or -1 (no memory: nothing changed). */
static int
entry_to_text(CoreObject *c, size_t i, PyObject *text)
{
    StrEntry *e = &c->strs[i];
    if (nmade + 2 > capmade && grow((void **)&made, &capmade, nmade + 2, sizeof(uint32_t)) < 0) return -1;
    made[nmade++] = (uint32_t)e->slot_off;
    made[nmade++] = e->nslots;
    e->kind = S_TEXT; e->text = text; e->nslots = 0; e->slot_off = 0; e->packed = 0; e->pack_off = 0; e->code_idx = 0;
    return 0;
}

/* Entries [lo, hi) that reference a dying class made into their texts (hi: at most the batch's
 * entries now -- rendering may run Python, and other threads add entries meanwhile). 0, or -1
 * (a failure, or the batch went meanwhile). */
static int
release_range(CoreObject *c, RenderCtx *rc, size_t lo, size_t hi, uint32_t epoch)
{
    for (size_t i = lo; i < hi && i < c->nstrs; i++) {
        const StrEntry *e = &c->strs[i];
        if ((e->kind != S_ARGS && e->kind != S_VALUE) || !entry_dying(c, e)) continue;
        PyObject *text = entry_text(c, i, rc);
        if (!text || c->rec_epoch != epoch || entry_to_text(c, i, text) < 0) {
            Py_XDECREF(text);
            return -1;
        }
    }
    return 0;
}

/* What is keyed by a dying class's address forgets it (see above). */
static void
forget_dying(CoreObject *c)
{
    if (c->hot) {
        uint32_t *tags = HOT_TAGS(c);
        for (size_t j = 0; j < HOT_SIZE; j++) {
            Memo *m = &c->hot[j];
            /* (this batch's entries only, made since a dying class could be held: sid is the
             * entry's index + 1 -- an entry keyed by a class holds it, or its label) */
            if (!tags[j] || tags[j] != hot_tag_of(m->hash, c->batch) || m->sid <= dying_str) continue;
            uint32_t n = (uint32_t)(m->head >> 40 & 0xFF);
            for (uint32_t k = 0; k < n && k < MEMO_SLOTS; k++)
                if (m->types[k] && is_dying((PyObject *)m->types[k])) {
                    tags[j] = 0;
                    m->hash = 0;   /* (no key's: a probe whose tag is 0 by chance finds nothing here) */
                    break;
                }
        }
    }
    if (c->last_val.t && is_dying((PyObject *)c->last_val.t)) c->last_val.sid = 0;
    for (size_t j = 0; j < REC_TYPES; j++)
        if (c->rec_types[j].tp && is_dying(c->rec_types[j].tp)) { c->rec_types[j].tp = NULL; c->rec_types[j].epoch = 0; }
    if (c->rec_last.tp && is_dying(c->rec_last.tp)) { c->rec_last.tp = NULL; c->rec_last.epoch = 0; }
    /* last, the references (every entry holding one is a text now): a class dropped here is not
     * freed (its __mro__ holds it: only a collection frees it) -- none was before every text was
     * made, so no address the renders' label cache keyed named another type meanwhile */
    for (size_t j = 0; j < c->nrec_items; j++)
        if (c->rec_items[j].type && is_dying(c->rec_items[j].type)) Py_SETREF(c->rec_items[j].type, Py_NewRef(Py_None));
    for (size_t m = 0; m < nmade; m += 2)
        for (size_t j = made[m]; j < (size_t)made[m] + made[m + 1]; j++)
            if (slot_holds_type(&c->slots[j]) && is_dying(c->slots[j].o)) Py_CLEAR(c->slots[j].o);
}

/* Take the set's slot i out (backward-shift deletion: the entries after it in its run move up
 * unless their own place is past it). */
static void
held_remove(size_t i)
{
    const size_t mask = held.cap - 1;
    young_count(held.tab[i].min_gen, -1);
    held.n--;
    for (size_t j = (i + 1) & mask; held.tab[j].tp; j = (j + 1) & mask) {
        size_t k = type_hash(held.tab[j].tp) & mask;   /* (its place: it stays if that is in (i, j]) */
        if (i < j ? (k > i && k <= j) : (k > i || k <= j)) continue;
        held.tab[i] = held.tab[j];
        i = j;
    }
    held.tab[i].tp = NULL;
    memset(recent, 0, sizeof recent);
}

/* The set without the released classes. */
static void
held_drop_dying(void)
{
    for (size_t k = 0; k < ndying; k++) {
        Held *h = held_find(dying[k]);
        if (h) held_remove((size_t)(h - held.tab));
    }
}

/* release_classes(render_obj, type_label) -> bool: the classes before_collection found the
 * collection could free are released from this core's batch in place (above). False when it
 * cannot (no list for this core: the hook drains instead, or a failure: an error cleared). */
PyObject *
core_release_classes(CoreObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "release_classes(render_obj, type_label)"); return NULL; }
    if (dying_core != c || held.core != c || held.epoch != c->rec_epoch) Py_RETURN_FALSE;   /* (another batch since) */
    uint32_t epoch = c->rec_epoch;
    RenderCtx rc = {args[0], args[1], {{NULL}}, NULL, 0, NULL, NULL, 0, NULL};   /* (one for all: its label cache) */
    int ok = 1;
    nmade = 0;
    /* the blocks of entries the set says reference one, then the entries added since it read
     * the batch (another thread's, while the hook ran) */
    const size_t synced = held.strs;
    for (size_t b = 0; ok && b < BLOCKS; b++)
        if (dying_blocks[b >> 6] >> (b & 63) & 1)
            ok = release_range(c, &rc, b << BLOCK_SHIFT, b == BLOCKS - 1 ? synced : (b + 1) << BLOCK_SHIFT, epoch) == 0;
    if (ok) ok = release_range(c, &rc, synced, SIZE_MAX, epoch) == 0;
    labels_clear(&rc);
    if (!ok) {   /* (the entries made texts stay texts: the same as their drain would make) */
        PyErr_Clear();
        dying_core = NULL;
        Py_RETURN_FALSE;
    }
    forget_dying(c);
    held_drop_dying();
    dying_core = NULL;
    Py_RETURN_TRUE;
}

PyObject *
mod_set_collect_hook(PyObject *Py_UNUSED(m), PyObject *hook)
{
    if (hook != Py_None && !PyCallable_Check(hook)) {
        PyErr_SetString(PyExc_TypeError, "the collect hook must be callable or None");
        return NULL;
    }
    if (!str_generation && !(str_generation = PyUnicode_InternFromString("generation"))) return NULL;
    if (!str_module && !(str_module = PyUnicode_InternFromString("__module__"))) return NULL;
    Py_XSETREF(collect_hook, hook == Py_None ? NULL : Py_NewRef(hook));
    Py_RETURN_NONE;
}
