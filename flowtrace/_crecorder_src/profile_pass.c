/* flowtrace._crecorder: ProfilePass -- flowtrace/profile.py's `_Pass` (the times of `flowtrace
 * stats` and of the pstats and collapsed exports) in C, the same numbers.
 *
 * profile.py stays the definition and the fallback (no extension, or a value beyond 64 bits:
 * see OverflowError below); read its module docstring for the semantics. This file is that
 * pass with its Python objects made plain C: an open call is an OpenCall in a pool (indices,
 * not pointers: the pool grows), the calls still running are a hash map from call id to
 * their OpenCall, and the aggregates are arrays (one row a function, a caller pair, a call
 * path) found through hash maps. The chunks' columns come as the decoded buffers
 * (ftr/records.py's Column.data, little-endian) and are read into int64 scratch arrays a chunk
 * at a time: no Python int per row. Memory: as the Python pass, the calls still running (and
 * their parents that wait for them) and one row per function, pair and path.
 *
 * Exactness: Python's ints do not overflow; here every sum and difference is checked
 * (__builtin_*_overflow), and a value that does not fit 64 bits -- no real session has one,
 * but a crafted file may -- makes the chunk's method raise OverflowError: profile.py then
 * reads the session again with the Python pass. Every dict comes out in the order the Python
 * pass fills it (the order of first use), so that what is written from it is the same too.
 *
 * The order of the rows (profile.py's run_pass) and the sentinel of "not suspended" (-1) are
 * the Python pass's, quirks included: the numbers must be equal, not merely close. */
#include "crecorder.h"

#define NOT_SUSPENDED (-1)   /* profile.py's _NO_SUSPENSION */
#define NOT_ENDED (-1)       /* an OpenCall's run before its end (profile.py's e[_RUN] = -1) */
#define IN_PARENT (-1)       /* an OpenCall's runner while it runs in its parent (profile.py's _PARENT) */

/* An open call (profile.py's list of 17 fields): a call started and not yet settled -- still
 * running, or ended while a child (a generator it ran) still runs. */
typedef struct {
    int64_t cid, t0;
    int64_t kids;          /* the running time of its settled children, and of runs credited to it */
    int64_t runner;        /* the call id its current run runs in; IN_PARENT; 0: none recorded */
    int64_t run_t;         /* when its current run began */
    int64_t away;          /* its running time credited to calls other than its parent */
    int64_t susp, credit;  /* suspended since (NOT_SUSPENDED: running), minus `credit` ns of a fold's runs */
    int64_t gap;           /* time suspended so far */
    int64_t run;           /* its running time once ended, else NOT_ENDED */
    int64_t path;          /* its call path's id (0: no paths asked) */
    uint64_t anc;          /* the functions of its ancestors, hashed to one bit each (in_chain) */
    uint32_t fn;           /* its function's row (PassObject.fns) */
    uint32_t up;           /* its parent's pool index + 1 (0: none recorded, or ended before it) */
    uint32_t open;         /* children not settled yet */
    uint8_t outer;         /* no ancestor runs the same function */
    uint8_t raised;        /* left by an exception */
} OpenCall;

/* One function's aggregates (profile.py's FunctionTimes). */
typedef struct { int64_t fid, calls, outer, total, self, sum, max, raised; } FnRow;
/* One (caller, callee) pair's [cc, nc, tt, ct] (pstats' callers), the caller 0 for a root. */
typedef struct { int64_t caller, callee, cc, nc, tt, ct; } EdgeRow;
/* One call path: (its parent path, or -thread for a root; its function id), its self time. */
typedef struct { int64_t parent, fid, self, thread; uint8_t settled, root; } PathRow;

/* An open-addressing hash map from a pair of int64 to a uint32 (stored + 1: 0 is an empty
 * slot), linear probing, at most half full; deletion by backward shift (no tombstones: the
 * open calls come and go by the million). */
typedef struct { int64_t a, b; uint32_t v; } MapSlot;
typedef struct { MapSlot *slots; size_t cap, n; } Map;

typedef struct {
    PyObject_HEAD
    int want_edges, want_paths;
    int has_only;              /* --thread: only the calls of thread `only` */
    int64_t only;
    int failed;                /* an error left the state half-updated: no more use */
    int overflow;              /* sticky: a value or sum did not fit 64 bits (OverflowError) */
    OpenCall *pool;            /* open calls; free ones chained through `up` from free_head */
    size_t pool_cap, pool_n;
    uint32_t free_head;        /* index + 1 (0: none free) */
    Map open;                  /* call id -> pool index of the calls still running */
    FnRow *fns;
    size_t nfns;
    int32_t *fn_direct;        /* fid -> row, when the ids are small (fn_direct_n of them) */
    size_t fn_direct_n;
    Map fn_map;                /* fid -> row, otherwise */
    EdgeRow *edges;
    size_t nedges, edges_cap;
    Map edge_map;
    PathRow *paths;            /* path id - 1 */
    size_t npaths, paths_cap;
    Map path_map;
    uint32_t *settled_paths;   /* the paths in the order their first call settled (path_self's) */
    size_t nsettled, settled_cap;
    int64_t total;             /* running time of the root calls */
    int64_t *cols[5];          /* a chunk's columns, as int64 (scratch, cols_cap rows each) */
    size_t cols_cap;
} PassObject;

/* ---- little helpers ------------------------------------------------------------------------ */

/* a + b and a - b, noting an overflow (sticky) instead of wrapping */
static inline int64_t
add64(PassObject *p, int64_t a, int64_t b)
{
    int64_t r;
    p->overflow |= __builtin_add_overflow(a, b, &r);
    return r;
}

static inline int64_t
sub64(PassObject *p, int64_t a, int64_t b)
{
    int64_t r;
    p->overflow |= __builtin_sub_overflow(a, b, &r);
    return r;
}

static inline uint64_t
mix_key(int64_t a, int64_t b)
{
    uint64_t h = (uint64_t)a * 0x9E3779B97F4A7C15ull ^ (uint64_t)b * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 32;   /* (call ids are consecutive: the high bits of the product carry them) */
    return h * 0xD6E8FEB86659FD93ull >> 7;
}

/* The value of (a, b) + 1, or 0 when absent. */
static inline uint32_t
map_get(const Map *m, int64_t a, int64_t b)
{
    if (!m->n) return 0;
    size_t mask = m->cap - 1;
    for (size_t i = mix_key(a, b) & mask;; i = (i + 1) & mask) {   /* (never full: at most half) */
        const MapSlot *s = &m->slots[i];
        if (!s->v) return 0;
        if (s->a == a && s->b == b) return s->v;
    }
}

static COLD int
map_grow(Map *m)
{
    size_t cap = m->cap ? 2 * m->cap : 1024;
    MapSlot *slots = PyMem_RawCalloc(cap, sizeof(MapSlot));
    if (!slots) { PyErr_NoMemory(); return -1; }
    for (size_t j = 0; j < m->cap; j++) {
        const MapSlot *s = &m->slots[j];
        if (!s->v) continue;
        size_t i = mix_key(s->a, s->b) & (cap - 1);
        while (slots[i].v) i = (i + 1) & (cap - 1);
        slots[i] = *s;
    }
    PyMem_RawFree(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

/* Set (a, b) to v (a value + 1, not 0), added or replaced. */
static int
map_put(Map *m, int64_t a, int64_t b, uint32_t v)
{
    if (2 * (m->n + 1) > m->cap && map_grow(m) < 0) return -1;
    size_t mask = m->cap - 1, i = mix_key(a, b) & mask;
    for (; m->slots[i].v; i = (i + 1) & mask) {
        if (m->slots[i].a == a && m->slots[i].b == b) { m->slots[i].v = v; return 0; }
    }
    m->slots[i] = (MapSlot){a, b, v};
    m->n++;
    return 0;
}

/* Remove (a, b); its value + 1, or 0 when absent. The slots after it that would no longer be
 * found from their home slot move back (Knuth's deletion for linear probing). */
static uint32_t
map_pop(Map *m, int64_t a, int64_t b)
{
    if (!m->n) return 0;
    size_t mask = m->cap - 1, i = mix_key(a, b) & mask;
    for (;; i = (i + 1) & mask) {
        if (!m->slots[i].v) return 0;
        if (m->slots[i].a == a && m->slots[i].b == b) break;
    }
    uint32_t v = m->slots[i].v;
    for (size_t j = (i + 1) & mask; m->slots[j].v; j = (j + 1) & mask) {
        size_t home = mix_key(m->slots[j].a, m->slots[j].b) & mask;
        /* j's entry may move to the hole at i unless its home lies cyclically in (i, j] */
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j)) continue;
        m->slots[i] = m->slots[j];
        i = j;
    }
    m->slots[i].v = 0;
    m->n--;
    return v;
}

static void
map_free(Map *m)
{
    PyMem_RawFree(m->slots);
    *m = (Map){0};
}

/* Room for one more item in an array of *cap items (doubling). */
static COLD int
grow_array(void **buf, size_t *cap, size_t item)
{
    size_t n = *cap ? 2 * *cap : 256;
    void *b = PyMem_RawRealloc(*buf, n * item);
    if (!b) { PyErr_NoMemory(); return -1; }
    *buf = b;
    *cap = n;
    return 0;
}

/* ---- columns --------------------------------------------------------------------------------- */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define FROM_LE16(x) __builtin_bswap16(x)
#define FROM_LE32(x) __builtin_bswap32(x)
#define FROM_LE64(x) __builtin_bswap64(x)
#else
#define FROM_LE16(x) (x)
#define FROM_LE32(x) (x)
#define FROM_LE64(x) (x)
#endif

/* The `rows` values of a column (data, typecode, encoding) -- a Column's fields: its stored
 * little-endian bytes, 'B' 'H' 'I' 'i' 'q' 'Q', ENC_RAW or ENC_DELTA -- into out, as
 * Column.ints() gives them (a 'Q' value beyond int64, or a running sum that overflows, sets
 * p->overflow). */
static int
read_column(PassObject *p, PyObject *col, Py_ssize_t rows, int64_t *out)
{
    PyObject *data, *tc;
    int enc;
    if (!PyArg_ParseTuple(col, "OUi:column", &data, &tc, &enc)) return -1;
    if (PyUnicode_GET_LENGTH(tc) != 1 || (enc != 0 && enc != 1)) {
        PyErr_SetString(PyExc_ValueError, "a column of another type or encoding");
        return -1;
    }
    Py_UCS4 code = PyUnicode_READ_CHAR(tc, 0);
    size_t size = code == 'B' ? 1 : code == 'H' ? 2 : code == 'I' || code == 'i' ? 4 : code == 'q' || code == 'Q' ? 8 : 0;
    Py_buffer view;
    if (!size) { PyErr_SetString(PyExc_ValueError, "a column of another type"); return -1; }
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return -1;
    if ((size_t)view.len != size * (size_t)rows) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "a column does not hold its rows");
        return -1;
    }
    const unsigned char *b = view.buf;
    /* one loop per type (memcpy: the buffer may be unaligned) */
#define EACH_ROW(T, EXPR) for (Py_ssize_t i = 0; i < rows; i++, b += sizeof(T)) { T v; memcpy(&v, b, sizeof(T)); out[i] = (EXPR); }
    switch (code) {
    case 'B': EACH_ROW(uint8_t, v) break;
    case 'H': EACH_ROW(uint16_t, FROM_LE16(v)) break;
    case 'I': EACH_ROW(uint32_t, FROM_LE32(v)) break;
    case 'i': EACH_ROW(uint32_t, (int32_t)FROM_LE32(v)) break;
    case 'q': EACH_ROW(uint64_t, (int64_t)FROM_LE64(v)) break;
    default:   /* 'Q': a value beyond int64 is beyond this pass */
        EACH_ROW(uint64_t, (int64_t)FROM_LE64(v))
        for (Py_ssize_t i = 0; i < rows; i++) p->overflow |= out[i] < 0;
    }
#undef EACH_ROW
    PyBuffer_Release(&view);
    if (enc == 1) for (Py_ssize_t i = 1; i < rows; i++) out[i] = add64(p, out[i - 1], out[i]);   /* ENC_DELTA */
    return 0;
}

/* The columns of a chunk method's call (args from `first` on) into p->cols[0..n-1]. */
static int
read_columns(PassObject *p, PyObject *const *args, Py_ssize_t first, int n, Py_ssize_t rows)
{
    if (rows < 0) { PyErr_SetString(PyExc_ValueError, "rows < 0"); return -1; }
    if ((size_t)rows > p->cols_cap) {
        for (int k = 0; k < 5; k++) {
            int64_t *c = PyMem_RawRealloc(p->cols[k], (size_t)rows * sizeof(int64_t));
            if (!c) { PyErr_NoMemory(); return -1; }
            p->cols[k] = c;
        }
        p->cols_cap = (size_t)rows;
    }
    for (int k = 0; k < n; k++) {
        if (read_column(p, args[first + k], rows, p->cols[k]) < 0) return -1;
    }
    return 0;
}

/* ---- the pass --------------------------------------------------------------------------------- */

/* A function id's row, or -1 when the pass was not given it (the Python pass's KeyError). */
static inline int64_t
fn_row(PassObject *p, int64_t fid)
{
    if (p->fn_direct) return (uint64_t)fid < p->fn_direct_n ? p->fn_direct[fid] : -1;
    uint32_t v = map_get(&p->fn_map, fid, 0);
    return (int64_t)v - 1;
}

/* The bit of function row f in an OpenCall's `anc`. */
static inline uint64_t
fn_bit(uint32_t f)
{
    return 1ull << ((f * 0x9E3779B1u) >> 26);
}

/* Does function row f run in the chain of parents from pool index + 1 `up` (profile.py: the
 * `_ANC` set a call's parent shares with its siblings)? Each call's `anc` holds a bit for each
 * function of its ancestors: the walk up stops at the first call whose ancestors cannot hold f. */
static inline int
in_chain(const PassObject *p, uint32_t up, uint32_t f)
{
    uint64_t bit = fn_bit(f);
    while (up) {
        const OpenCall *e = &p->pool[up - 1];
        if (e->fn == f) return 1;
        if (!(e->anc & bit)) return 0;
        up = e->up;
    }
    return 0;
}

/* A free OpenCall's pool index + 1 (0 with MemoryError). */
static uint32_t
new_open_call(PassObject *p)
{
    if (p->free_head) {
        uint32_t k = p->free_head;
        p->free_head = p->pool[k - 1].up;
        return k;
    }
    if (p->pool_n == p->pool_cap) {
        if (p->pool_cap >= UINT32_MAX / 2) { PyErr_NoMemory(); return 0; }
        if (grow_array((void **)&p->pool, &p->pool_cap, sizeof(OpenCall)) < 0) return 0;
    }
    return (uint32_t)++p->pool_n;
}

/* The id of the call path (parent path or -thread, fid), made when new (0 with MemoryError). */
static int64_t
path_of(PassObject *p, int64_t parent, int64_t fid, int root, int64_t thread)
{
    uint32_t v = map_get(&p->path_map, parent, fid);
    if (v) return v;
    if (p->npaths >= UINT32_MAX - 1) { PyErr_NoMemory(); return 0; }
    if (p->npaths == p->paths_cap && grow_array((void **)&p->paths, &p->paths_cap, sizeof(PathRow)) < 0) return 0;
    p->paths[p->npaths] = (PathRow){parent, fid, 0, thread, 0, (uint8_t)root};
    if (map_put(&p->path_map, parent, fid, (uint32_t)(p->npaths + 1)) < 0) return 0;
    return (int64_t)++p->npaths;
}

/* One CALL row (profile.py _Pass.calls' loop body): 0, or -1 with an exception. */
static int
call_row(PassObject *p, int64_t cid, int64_t parent, int64_t fid, int64_t thread, int64_t t0)
{
    uint32_t up = parent ? map_get(&p->open, parent, 0) : 0;   /* a parent that has ended makes a root */
    int64_t f = fn_row(p, fid);
    if (f < 0) {
        PyObject *key = PyLong_FromLongLong(fid);
        if (key) { PyErr_SetObject(PyExc_KeyError, key); Py_DECREF(key); }
        return -1;
    }
    int outer = !in_chain(p, up, (uint32_t)f);
    p->fns[f].calls++;
    int64_t path = 0;
    if (p->want_paths) {   /* (parent path, fid), or (-thread, fid) for a root */
        int64_t key = up ? p->pool[up - 1].path : sub64(p, 0, thread);
        if (!(path = path_of(p, key, fid, !up, thread))) return -1;
    }
    uint32_t k = new_open_call(p);   /* (may move the pool: entries by index from here) */
    if (!k) return -1;
    uint64_t anc = 0;
    if (up) {
        OpenCall *u = &p->pool[up - 1];
        u->open++;
        anc = u->anc | fn_bit(u->fn);
    }
    p->pool[k - 1] = (OpenCall){cid, t0, 0, IN_PARENT, t0, 0, NOT_SUSPENDED, 0, 0, NOT_ENDED, path, anc,
                                (uint32_t)f, up, 0, (uint8_t)outer, 0};
    return map_put(&p->open, cid, 0, k);
}

/* Count a settled call in the aggregates (profile.py _Pass.add): 0, or -1 with MemoryError. */
static int
count_call(PassObject *p, const OpenCall *e, const OpenCall *up, int64_t running, int64_t own)
{
    FnRow *ft = &p->fns[e->fn];
    ft->self = add64(p, ft->self, own);
    ft->sum = add64(p, ft->sum, running);
    if (running > ft->max) ft->max = running;
    ft->raised += e->raised;
    if (e->outer) {
        ft->outer++;
        ft->total = add64(p, ft->total, running);
    }
    if (p->want_edges) {
        int64_t caller = up ? p->fns[up->fn].fid : 0;
        uint32_t v = map_get(&p->edge_map, caller, ft->fid);
        if (!v) {   /* a new pair: its row, in the order of first use */
            if (p->nedges >= UINT32_MAX - 1) { PyErr_NoMemory(); return -1; }
            if (p->nedges == p->edges_cap && grow_array((void **)&p->edges, &p->edges_cap, sizeof(EdgeRow)) < 0)
                return -1;
            p->edges[p->nedges] = (EdgeRow){caller, ft->fid, 0, 0, 0, 0};
            v = (uint32_t)++p->nedges;
            if (map_put(&p->edge_map, caller, ft->fid, v) < 0) return -1;
        }
        EdgeRow *edge = &p->edges[v - 1];
        edge->nc++;
        edge->tt = add64(p, edge->tt, own);
        if (e->outer) {
            edge->cc++;
            edge->ct = add64(p, edge->ct, running);
        }
    }
    if (p->want_paths) {
        PathRow *path = &p->paths[e->path - 1];
        if (!path->settled) {   /* path_self's order: the first settled call of each path */
            if (p->nsettled == p->settled_cap
                && grow_array((void **)&p->settled_paths, &p->settled_cap, sizeof(uint32_t)) < 0) return -1;
            p->settled_paths[p->nsettled++] = (uint32_t)(e->path - 1);
            path->settled = 1;
        }
        path->self = add64(p, path->self, own);
    }
    return 0;
}

/* A run of the call at pool index k - 1 took `ns` in the call `runner`, not in its parent
 * (profile.py _Pass._credit): child time of that call if it is open and not ended, and time the
 * parent does not get; runner 0: nobody's. */
static void
credit(PassObject *p, uint32_t k, int64_t runner, int64_t ns)
{
    if (ns <= 0) return;
    if (runner) {
        uint32_t r = map_get(&p->open, runner, 0);
        if (!r || p->pool[r - 1].run != NOT_ENDED) return;   /* ended: the run stays its parent's */
        p->pool[r - 1].kids = add64(p, p->pool[r - 1].kids, ns);
    }
    p->pool[k - 1].away = add64(p, p->pool[k - 1].away, ns);
}

/* A call ended at t1 (profile.py _Pass.end): its running time; then it and each parent whose
 * children have all settled since are settled in turn (_count), their entries freed. */
static int
end_call(PassObject *p, uint32_t k, int64_t t1, int raised)
{
    OpenCall *e = &p->pool[k - 1];
    if (e->susp != NOT_SUSPENDED) {   /* suspended until its end */
        int64_t d = sub64(p, sub64(p, t1, e->susp), e->credit);
        e->gap = add64(p, e->gap, d > 0 ? d : 0);
    }
    else if (e->runner != IN_PARENT) credit(p, k, e->runner, sub64(p, t1, e->run_t));   /* its last run, elsewhere */
    int64_t run = sub64(p, sub64(p, t1, e->t0), e->gap);
    e->run = run > 0 ? run : 0;
    e->raised = (uint8_t)raised;
    while (k && !p->pool[k - 1].open && p->pool[k - 1].run >= 0) {   /* settled: its time goes to its parent */
        e = &p->pool[k - 1];
        int64_t running = e->run, own = sub64(p, running, e->kids);
        if (own < 0) own = 0;
        OpenCall *up = e->up ? &p->pool[e->up - 1] : NULL;
        if (up) {   /* its running time, but for the runs credited elsewhere */
            int64_t here = sub64(p, running, e->away);
            if (here > 0) up->kids = add64(p, up->kids, here);
            up->open--;
        }
        else p->total = add64(p, p->total, running);
        if (count_call(p, e, up, running, own) < 0) return -1;
        uint32_t next = e->up;
        e->up = p->free_head;   /* (freed: no child refers to it any more) */
        p->free_head = k;
        k = next;
    }
    return 0;
}

/* ---- the methods ------------------------------------------------------------------------------ */

static int
usable(PassObject *p)
{
    if (!p->failed) return 0;
    PyErr_SetString(PyExc_RuntimeError, "ProfilePass: an earlier error left it unusable");
    return -1;
}

/* After a method's rows: its result, or the error that stops the pass for good. */
static PyObject *
done(PassObject *p, int r)
{
    if (r == 0 && p->overflow) {
        PyErr_SetString(PyExc_OverflowError, "a value of the session does not fit 64 bits");
        r = -1;
    }
    if (r < 0) { p->failed = 1; return NULL; }
    Py_RETURN_NONE;
}

/* calls(base, rows, parent, function, thread, t0): a CALL chunk's rows, each column (data,
 * typecode, encoding) -- ftr/records.py Column's fields. */
static PyObject *
pass_calls(PassObject *p, PyObject *const *args, Py_ssize_t nargs)
{
    if (usable(p) < 0) return NULL;
    if (nargs != 6) { PyErr_SetString(PyExc_TypeError, "calls(base, rows, parent, function, thread, t0)"); return NULL; }
    long long base = PyLong_AsLongLong(args[0]);
    Py_ssize_t rows = PyLong_AsSsize_t(args[1]);
    if ((base == -1 || rows == -1) && PyErr_Occurred()) return done(p, -1);
    int64_t last;
    if (__builtin_add_overflow(base, (long long)rows, &last)) p->overflow = 1;
    if (read_columns(p, args, 2, 4, rows) < 0) return done(p, -1);
    if (p->overflow) return done(p, 0);
    const int64_t *par = p->cols[0], *fn = p->cols[1], *thr = p->cols[2], *t0 = p->cols[3];
    for (Py_ssize_t i = 0; i < rows; i++) {
        if (p->has_only && thr[i] != p->only) continue;   /* --thread: another thread's call */
        if (call_row(p, base + i, par[i], fn[i], thr[i], t0[i]) < 0) return done(p, -1);
    }
    return done(p, 0);
}

/* marks(rows, call, t, kind, run, other): a MARK chunk's rows (profile.py _Pass.marks). */
static PyObject *
pass_marks(PassObject *p, PyObject *const *args, Py_ssize_t nargs)
{
    if (usable(p) < 0) return NULL;
    if (nargs != 6) { PyErr_SetString(PyExc_TypeError, "marks(rows, call, t, kind, run, other)"); return NULL; }
    Py_ssize_t rows = PyLong_AsSsize_t(args[0]);
    if (rows == -1 && PyErr_Occurred()) return done(p, -1);
    if (read_columns(p, args, 1, 5, rows) < 0) return done(p, -1);
    const int64_t *call = p->cols[0], *t = p->cols[1], *kind = p->cols[2], *run = p->cols[3], *by = p->cols[4];
    for (Py_ssize_t i = 0; i < rows; i++) {
        int64_t kd = kind[i];
        if (kd != MARK_SUSPEND && kd != MARK_RESUME && kd != MARK_THROW && kd != MARK_FOLD) continue;   /* (_WAKE) */
        uint32_t k = map_get(&p->open, call[i], 0);
        if (!k) continue;   /* a call that has ended, or another thread's */
        OpenCall *e = &p->pool[k - 1];
        if (e->susp != NOT_SUSPENDED) {   /* a suspension ends here */
            e->gap = add64(p, e->gap, sub64(p, sub64(p, t[i], e->susp), e->credit));
            e->susp = NOT_SUSPENDED;
        }
        else if (e->runner != IN_PARENT) credit(p, k, e->runner, sub64(p, t[i], e->run_t));   /* a run elsewhere ends */
        uint32_t by_k = by[i] ? map_get(&p->open, by[i], 0) : 0;   /* (is `by` its parent?) */
        if (kd == MARK_SUSPEND) { e->susp = t[i]; e->credit = 0; }
        else if (kd == MARK_FOLD) {   /* runs `run` ns of what follows, in the call `by` */
            e->susp = t[i]; e->credit = run[i];
            if (by_k != e->up) credit(p, k, by[i], run[i]);
        }
        else {   /* resumed (or thrown into) by the call `by` (0: none recorded) */
            e->runner = by_k == e->up ? IN_PARENT : by[i];
            e->run_t = t[i];
        }
    }
    return done(p, 0);
}

/* exits(rows, call, t1, how): an EXIT chunk's rows (profile.py _Pass.exits). */
static PyObject *
pass_exits(PassObject *p, PyObject *const *args, Py_ssize_t nargs)
{
    if (usable(p) < 0) return NULL;
    if (nargs != 4) { PyErr_SetString(PyExc_TypeError, "exits(rows, call, t1, how)"); return NULL; }
    Py_ssize_t rows = PyLong_AsSsize_t(args[0]);
    if (rows == -1 && PyErr_Occurred()) return done(p, -1);
    if (read_columns(p, args, 1, 3, rows) < 0) return done(p, -1);
    const int64_t *call = p->cols[0], *t1 = p->cols[1], *how = p->cols[2];
    for (Py_ssize_t i = 0; i < rows; i++) {
        uint32_t k = map_pop(&p->open, call[i], 0);
        if (!k) continue;   /* another thread's, or a repeated EXIT row */
        if (end_call(p, k, t1[i], how[i] == END_RAISE || how[i] == END_RAISE_HERE) < 0) return done(p, -1);
    }
    return done(p, 0);
}

static int
by_call_id_descending(const void *a, const void *b)
{
    int64_t x = ((const MapSlot *)a)->a, y = ((const MapSlot *)b)->a;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The calls still running end at the session's end (profile.py _Pass.finish: the newest first,
 * so that a child's time is its parent's children's time). */
static int
end_running(PassObject *p, int64_t t_end)
{
    size_t n = p->open.n, m = 0;
    MapSlot *running = PyMem_RawMalloc((n ? n : 1) * sizeof(MapSlot));
    if (!running) { PyErr_NoMemory(); return -1; }
    for (size_t j = 0; j < p->open.cap; j++) {
        if (p->open.slots[j].v) running[m++] = p->open.slots[j];
    }
    qsort(running, m, sizeof(MapSlot), by_call_id_descending);   /* (call ids start in the order of the rows) */
    for (size_t j = 0; j < m; j++) {   /* runs in progress stop with the session, each in its call
                                          * (before any call ends, through the map of open calls) */
        uint32_t k = running[j].v;
        OpenCall *e = &p->pool[k - 1];
        if (e->susp != NOT_SUSPENDED || e->runner == IN_PARENT) continue;
        credit(p, k, e->runner, sub64(p, t_end > e->t0 ? t_end : e->t0, e->run_t));
        p->pool[k - 1].runner = IN_PARENT;   /* (its time elsewhere is counted: none left for end_call) */
    }
    int r = 0;
    for (size_t j = 0; j < m && r == 0; j++) {   /* (no run elsewhere is left to credit here) */
        uint32_t k = running[j].v;
        int64_t t0 = p->pool[k - 1].t0;
        r = end_call(p, k, t_end > t0 ? t_end : t0, 0);
    }
    map_free(&p->open);
    PyMem_RawFree(running);
    return r;
}

/* The paths' dicts (see finish), each path id one int object in all three, as in the Python
 * pass (an int apiece in each dict was ~20 MB more of jinja2's whole suite's 336 k paths). The
 * paths' rows are freed before path_self is made: its self times are kept in its order first. */
static int
path_dicts(PassObject *p, PyObject *paths, PyObject *path_self, PyObject *path_thread)
{
    size_t n = p->npaths;
    PyObject **ids = PyMem_RawCalloc(n ? n : 1, sizeof(PyObject *));
    int64_t *selfs = PyMem_RawMalloc((p->nsettled ? p->nsettled : 1) * sizeof(int64_t));
    int r = ids && selfs ? 0 : -1;
    if (r < 0) PyErr_NoMemory();
    for (size_t i = 0; i < n && r == 0; i++) {   /* (ids in the order the paths were made) */
        const PathRow *row = &p->paths[i];
        PyObject *key = Py_BuildValue("(LL)", (long long)row->parent, (long long)row->fid);
        PyObject *th = row->root ? PyLong_FromLongLong(row->thread) : NULL;
        ids[i] = PyLong_FromSize_t(i + 1);
        r = !key || !ids[i] || (row->root && !th) || PyDict_SetItem(paths, key, ids[i]) < 0
            || (row->root && PyDict_SetItem(path_thread, ids[i], th) < 0) ? -1 : 0;
        Py_XDECREF(key);
        Py_XDECREF(th);
    }
    for (size_t i = 0; i < p->nsettled && r == 0; i++) selfs[i] = p->paths[p->settled_paths[i]].self;
    PyMem_RawFree(p->paths);
    p->paths = NULL;
    for (size_t i = 0; i < p->nsettled && r == 0; i++) {
        PyObject *self = PyLong_FromLongLong(selfs[i]);
        r = self ? PyDict_SetItem(path_self, ids[p->settled_paths[i]], self) : -1;
        Py_XDECREF(self);
    }
    for (size_t i = 0; ids && i < n; i++) Py_XDECREF(ids[i]);
    PyMem_RawFree(ids);
    PyMem_RawFree(selfs);
    return r;
}

/* The result (see finish). */
static PyObject *
result_dicts(PassObject *p)
{
    PyObject *fns = PyList_New((Py_ssize_t)p->nfns), *edges = PyDict_New(), *paths = PyDict_New();
    PyObject *path_self = PyDict_New(), *path_thread = PyDict_New(), *out = NULL;
    if (!fns || !edges || !paths || !path_self || !path_thread) goto fail;
    for (size_t i = 0; i < p->nfns; i++) {
        const FnRow *f = &p->fns[i];
        PyObject *row = Py_BuildValue("(LLLLLLL)", (long long)f->calls, (long long)f->outer, (long long)f->total,
                                      (long long)f->self, (long long)f->sum, (long long)f->max, (long long)f->raised);
        if (!row) goto fail;
        PyList_SET_ITEM(fns, (Py_ssize_t)i, row);
    }
    for (size_t i = 0; i < p->nedges; i++) {
        const EdgeRow *e = &p->edges[i];
        PyObject *key = Py_BuildValue("(LL)", (long long)e->caller, (long long)e->callee);
        PyObject *val = Py_BuildValue("[LLLL]", (long long)e->cc, (long long)e->nc, (long long)e->tt, (long long)e->ct);
        int r = key && val ? PyDict_SetItem(edges, key, val) : -1;
        Py_XDECREF(key);
        Py_XDECREF(val);
        if (r < 0) goto fail;
    }
    if (path_dicts(p, paths, path_self, path_thread) < 0) goto fail;
    out = Py_BuildValue("(OOOOOL)", fns, edges, paths, path_self, path_thread, (long long)p->total);
fail:
    Py_XDECREF(fns); Py_XDECREF(edges); Py_XDECREF(paths); Py_XDECREF(path_self); Py_XDECREF(path_thread);
    return out;
}

/* finish(t_end) -> (functions, edges, paths, path_self, path_thread, total): the calls still
 * running end at t_end (or at their start, if later); `functions` is one tuple (calls, outer,
 * total, self, sum, max, raised) per function id given to the constructor, in its order; the
 * dicts are profile.Profile's. */
static PyObject *
pass_finish(PassObject *p, PyObject *arg)
{
    if (usable(p) < 0) return NULL;
    long long t_end = PyLong_AsLongLong(arg);
    if (t_end == -1 && PyErr_Occurred()) return done(p, -1);
    if (end_running(p, t_end) < 0) return done(p, -1);
    if (p->overflow) return done(p, 0);   /* (OverflowError) */
    /* what the result is not made from goes first: the hash maps of a session's paths (~100 MB
     * for a million) are not held with the dicts made from them */
    map_free(&p->path_map);
    map_free(&p->edge_map);
    map_free(&p->fn_map);
    PyMem_RawFree(p->pool);
    p->pool = NULL;
    PyObject *out = result_dicts(p);
    p->failed = 1;   /* (the pass is over) */
    return out;
}

static PyMethodDef pass_methods[] = {
    {"calls", (PyCFunction)(void (*)(void))pass_calls, METH_FASTCALL,
     "calls(base, rows, parent, function, thread, t0): a CALL chunk; each column (data, typecode, encoding)."},
    {"marks", (PyCFunction)(void (*)(void))pass_marks, METH_FASTCALL,
     "marks(rows, call, t, kind, run, other): a MARK chunk."},
    {"exits", (PyCFunction)(void (*)(void))pass_exits, METH_FASTCALL,
     "exits(rows, call, t1, how): an EXIT chunk."},
    {"finish", (PyCFunction)pass_finish, METH_O,
     "finish(t_end) -> (functions, edges, paths, path_self, path_thread, total)."},
    {NULL},
};

/* The function rows and how a function id finds its row: directly when the ids are small. */
static int
set_functions(PassObject *p, PyObject *functions)
{
    PyObject *seq = PySequence_Fast(functions, "functions: a sequence of function ids");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    int64_t top = -1, low = 0;
    if (n > INT32_MAX) { Py_DECREF(seq); PyErr_SetString(PyExc_ValueError, "too many functions"); return -1; }
    p->fns = PyMem_RawCalloc((size_t)n, sizeof(FnRow));
    if (!p->fns) { Py_DECREF(seq); PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        long long fid = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));
        if (fid == -1 && PyErr_Occurred()) { Py_DECREF(seq); return -1; }
        p->fns[i].fid = fid;
        if (fid > top) top = fid;
        if (fid < low) low = fid;
    }
    Py_DECREF(seq);
    p->nfns = (size_t)n;
    if (low >= 0 && top < 4 * (int64_t)n + 65536) {   /* (the recorders number functions from 1) */
        p->fn_direct_n = (size_t)top + 1;
        if (!(p->fn_direct = PyMem_RawMalloc(p->fn_direct_n * sizeof(int32_t)))) { PyErr_NoMemory(); return -1; }
        memset(p->fn_direct, 0xff, p->fn_direct_n * sizeof(int32_t));   /* -1: not a function */
        for (size_t i = n; i-- > 0;) p->fn_direct[p->fns[i].fid] = (int32_t)i;   /* (the first of a repeated id) */
        return 0;
    }
    for (size_t i = n; i-- > 0;) {
        if (map_put(&p->fn_map, p->fns[i].fid, 0, (uint32_t)(i + 1)) < 0) return -1;
    }
    return 0;
}

/* ProfilePass(functions, thread, edges, paths): `functions` every function id the rows may
 * name, `thread` the only thread to count (None: all), `edges` and `paths` as profile()'s. */
static int
pass_init(PassObject *p, PyObject *args, PyObject *kwds)
{
    PyObject *functions, *thread;
    int edges, paths;
    static char *kwlist[] = {"functions", "thread", "edges", "paths", NULL};
    if (p->fns) { PyErr_SetString(PyExc_TypeError, "ProfilePass is initialised once"); return -1; }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOpp:ProfilePass", kwlist, &functions, &thread, &edges, &paths))
        return -1;
    p->want_edges = edges;
    p->want_paths = paths;
    if (thread != Py_None) {
        p->has_only = 1;
        p->only = PyLong_AsLongLong(thread);
        if (p->only == -1 && PyErr_Occurred()) return -1;
    }
    return set_functions(p, functions);
}

static void
pass_dealloc(PassObject *p)
{
    PyMem_RawFree(p->pool);
    map_free(&p->open);
    PyMem_RawFree(p->fns);
    PyMem_RawFree(p->fn_direct);
    map_free(&p->fn_map);
    PyMem_RawFree(p->edges);
    map_free(&p->edge_map);
    PyMem_RawFree(p->paths);
    map_free(&p->path_map);
    PyMem_RawFree(p->settled_paths);
    for (int k = 0; k < 5; k++) PyMem_RawFree(p->cols[k]);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

static PyTypeObject ProfilePassType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "flowtrace._crecorder.ProfilePass",
    .tp_basicsize = sizeof(PassObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ProfilePass(functions, thread, edges, paths): flowtrace/profile.py's pass in C (the same numbers).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)pass_init,
    .tp_dealloc = (destructor)pass_dealloc,
    .tp_methods = pass_methods,
};

int
add_profile_pass(PyObject *m)
{
    if (PyType_Ready(&ProfilePassType) < 0) return -1;
    /* 2: marks take the resumer column, and a run counts in the call it ran in (profile.py
     * uses no other version: an older build's numbers would differ) */
    if (PyModule_AddIntConstant(m, "PROFILE_PASS_VERSION", 2) < 0) return -1;
    return PyModule_AddObjectRef(m, "ProfilePass", (PyObject *)&ProfilePassType);
}
