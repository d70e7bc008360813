/* flowtrace._crecorder: the drain -- rows straight to the CALL / EXIT / MARK chunk payloads
 * (varint columns, docs/FORMAT.md 1.2), texts to the STRS payload -- and the varint decoder
 * that the readers use (flowtrace/ftr/format.py; it has a pure-Python twin). */
#include "crecorder.h"

void
free_calls(CallCols *k)
{
    col_free(k->par); col_free(k->fn); col_free(k->thr); col_free(k->args);   /* (buffers.c col_grow's) */
    col_free(k->task); col_free(k->t0); col_free(k->flag);
    memset(k, 0, sizeof *k);
}

void
free_exits(ExitCols *k)
{
    col_free(k->call); col_free(k->val); col_free(k->t1); col_free(k->how);
    memset(k, 0, sizeof *k);
}

/* ---- drain: swap the rows out, render and number the texts, encode the payloads ---- */

typedef struct {
    CallCols calls; size_t ncalls; uint32_t call_first_id; size_t capcalls;
    ExitCols exits; size_t nexits; size_t capexits;
    MarkRow *marks; size_t nmarks; size_t capmarks; size_t nheld;
    StrEntry *strs; size_t nstrs; size_t capstrs;
    Slot *slots; size_t nslots; size_t capslots;
    unsigned char *packed; size_t npacked; size_t cappacked;
    uint8_t exc_finals;
} Swapped;

/* The previous batch's call and exit buffers, for the next drain of any core to swap in:
 * fresh memory costs a page fault per 4 KiB page (~70 ns a call when every batch had new
 * buffers), and regrowing copies everything. Touched only under the GIL, by code that runs
 * no Python (so no other drain can interleave). */
static CallCols spare_calls; static size_t cap_spare_calls;
static ExitCols spare_exits; static size_t cap_spare_exits;
/* The same for the record dictionary numbered at call time (CoreObject.rec_items, rec_labs),
 * which every batch grew from nothing: two reallocs a batch, ~50 K instructions each of
 * copying and fresh pages (callgrind, oop: ~1 M of the drains' ~73 M). */
static RecItem *spare_items; static size_t cap_spare_items;
static char *spare_labs; static size_t cap_spare_labs;

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

/* put_le of 8 bytes in one store (the packed columns' loops: put_le's byte loop was ~3
 * instructions a byte) */
static inline void
store_le64(unsigned char *q, uint64_t v)
{
#if PY_BIG_ENDIAN
    v = __builtin_bswap64(v);
#endif
    memcpy(q, &v, 8);
}

/* One column to encode: `rows` values of `width` bytes (1 u8, 4 u32, 8 i64) at v; `parent`:
 * the CALL.par column, which may also be coded against the chunk's own calls (ENC_PARENT). */
typedef struct { int64_t lo, hi; size_t nonzero; } ColStats;   /* a column's range and rows not 0 */
/* (stats: counted already by a pass over the column -- renumber -- or NULL) */
/* (share, 1.9: 1 + the index of an earlier column whose rows not 0 are the ones this column's
 * `nvals` values -- s->v, i64, dense -- belong to: ENC_SHARED, shared_body) */
/* (at: the rows not 0, nat of them, in row order, and v their values, dense -- a u32 column: sparse_rows_body;
 * or, with nzv, their values are nzv and v the whole column: column_body) */
/* (forced: the encoding to write, not measured -- a column that the writer deflates: forced_body) */
typedef struct { const char *name; char tc; const void *v; uint8_t width, parent, want; const ColStats *stats;
                 uint8_t share; size_t nvals; const uint32_t *at; size_t nat; const uint32_t *nzv; uint8_t forced; } ColSpec;

/* The Golomb order is chosen from a sample of the values to code, ~1 in 4.5 at steps of 1-8
 * drawn from an LCG: as good a choice as from all of them for a quarter of the counting, and no
 * loop's period lines the sample up with one kind of row (every 4th row did: an asyncio
 * program's parent codes were judged by their escapes alone). format.golomb_order takes the
 * same sample. A column whose encoding the sample only sets the order of -- a time column
 * (always ENC_GOLOMB_RISE, or _DELTA when a step goes down) and CALL.par (ENC_GOLOMB_PARENT) --
 * is sampled at steps `stride` (1 + n / SAMPLE_SPAN) times as long: ~1,000-2,000 of a
 * backpressure batch's 20-30K rows, whose time steps and parent codes give the same order
 * (their histograms were ~40 instructions a call of raytrace's drain). The other columns keep
 * the whole sample: it also chooses between their encodings, and a sparser one chose worse
 * (oop's EXIT.val: +13% bytes). */
static inline size_t
sample_stride(size_t n)
{
    return 1 + n / SAMPLE_SPAN;
}

static inline size_t
sample_step(uint32_t *r, size_t stride)
{
    *r = *r * 1103515245u + 12345u;
    return stride * (1 + (*r >> 29));
}

/* sample_step's rows at stride 1 (from row 0, lcg 1), the first SAMPLE_ROWS of them, and the
 * lcg after the last: measure's sampled passes read the rows from here (at stride s: s times
 * each) and go on with sample_step past them -- the same rows, without the lcg's multiply, add,
 * shift and step (~5 instructions a sampled row of every column, ~4 passes a column). Made at
 * the first drain (under the GIL, as every drain runs). */
#ifndef SAMPLE_ROWS   /* (a test may make it small) */
#define SAMPLE_ROWS 16384   /* (rows up to ~73,000 at stride 1) */
#endif
static uint32_t sample_rows[SAMPLE_ROWS + 1], sample_rows_lcg;

static void
sample_rows_make(void)
{
    uint32_t lcg = 1;
    size_t i = 0;
    for (size_t j = 0; j <= SAMPLE_ROWS; j++) {
        sample_rows[j] = (uint32_t)i;
        if (j < SAMPLE_ROWS) i += sample_step(&lcg, 1);
    }
    sample_rows_lcg = lcg;
}

/* Row i of a column buffer of `width` bytes (1 u8, 4 u32, 8 i64) as i64. Every loop over a
 * column reads it through this, in a function inlined for each width (column_body_1/4/8): the
 * buffers are read where they are, not widened into a copy first (~9 instructions a value). */
#define AT(v, width, i) ((width) == 8 ? ((const int64_t *)(v))[i] \
    : (width) == 4 ? (int64_t)((const uint32_t *)(v))[i] : (int64_t)((const uint8_t *)(v))[i])

/* The smallest and largest value of a column, and (count_nonzero) its rows that are not 0. A constant one (the
 * thread of a one-thread program, `how` = return, `flag`) is told first by comparing 8 bytes
 * at a time with its first value (~1 instruction a value, against ~8 for the min/max loop);
 * any other leaves that test at its first change. */
/* How many of the first bytes at b, in whole 8-byte words, repeat `pattern` (a multiple of 8,
 * <= len): 64 bytes a step first, their XORs with the pattern ORed in two 16-byte vectors (one
 * test a step: ~2 instructions a word, against ~6 word by word), then word by word from the
 * step that differs. */
typedef uint64_t U64x2 __attribute__((vector_size(16)));
static inline __attribute__((always_inline)) size_t
words_equal(const unsigned char *b, size_t len, uint64_t pattern)
{
    size_t i = 0;
    U64x2 pat = {pattern, pattern};
    for (; i + 64 <= len; i += 64) {
        U64x2 w[4];
        memcpy(w, b + i, 64);
        U64x2 d = ((w[0] ^ pat) | (w[1] ^ pat)) | ((w[2] ^ pat) | (w[3] ^ pat));
        if (d[0] | d[1]) break;
    }
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        if (w != pattern) break;
    }
    return i;
}

/* The column's first bytes, 8 at a time, that are rows of value x (a multiple of 8). */
static inline __attribute__((always_inline)) size_t
bytes_equal_to(const void *v, int width, size_t n, int64_t x)
{
    uint64_t pattern = (uint64_t)x;
    if (width == 4) pattern = (uint32_t)pattern | pattern << 32;
    else if (width == 1) pattern = (uint8_t)pattern * 0x0101010101010101ull;
    return words_equal(v, n * (size_t)width, pattern);
}

/* value_range's rows from i of a u8 or u32 column, 16 bytes at a time: each lane's smallest and
 * largest value in two vectors (~1 instruction a row of u8, ~2 of u32, against ~8 a row one by
 * one: the exact range of oop's `fn` and the exceptions' `how` column), folded into *lo, *hi.
 * Returns the first row not read (the rest: fewer than a vector's). */
typedef uint8_t U8x16 __attribute__((vector_size(16)));
typedef uint32_t U32x4 __attribute__((vector_size(16)));
#define VEC_MIN_MAX(T, x, a, z) { T m_ = (T)((x) < (a)); (a) = ((x) & m_) | ((a) & ~m_); \
                                  m_ = (T)((x) > (z)); (z) = ((x) & m_) | ((z) & ~m_); }
static inline __attribute__((always_inline)) size_t
range_vectors(const void *v, int width, size_t i, size_t n, int64_t *lo, int64_t *hi)
{
    const unsigned char *b = v;
    size_t per = 16 / (size_t)width, end = i + (n - i) / per * per;
    if (end == i) return i;
    if (width == 1) {
        U8x16 a, z, x;
        memcpy(&a, b + i, 16);
        z = a;
        for (size_t j = i + per; j < end; j += per) { memcpy(&x, b + j, 16); VEC_MIN_MAX(U8x16, x, a, z) }
        for (int k = 0; k < 16; k++) { *lo = a[k] < *lo ? a[k] : *lo; *hi = z[k] > *hi ? z[k] : *hi; }
    } else {
        U32x4 a, z, x;
        memcpy(&a, b + 4 * i, 16);
        z = a;
        for (size_t j = i + per; j < end; j += per) { memcpy(&x, b + 4 * j, 16); VEC_MIN_MAX(U32x4, x, a, z) }
        for (int k = 0; k < 4; k++) { *lo = a[k] < *lo ? a[k] : *lo; *hi = z[k] > *hi ? z[k] : *hi; }
    }
    return end;
}
#undef VEC_MIN_MAX

static inline __attribute__((always_inline)) void
value_range(const void *v, int width, size_t n, ColStats *st, int count_nonzero)
{
    if (!n) { *st = (ColStats){INT64_MAX, INT64_MIN, 0}; return; }
    int64_t first = AT(v, width, 0);
    size_t i = bytes_equal_to(v, width, n, first) / (size_t)width;   /* the rows before i all equal the first */
    int64_t lo = first, hi = first;
    size_t nonzero = first ? i : 0;   /* (counted only when asked: ~2 instructions a value) */
#define MIN_MAX(x) { lo = (x) < lo ? (x) : lo; hi = (x) > hi ? (x) : hi; }
    if (count_nonzero) for (; i < n; i++) { int64_t x = AT(v, width, i); MIN_MAX(x); nonzero += x != 0; }
    else {
        if (width != 8 && n - i >= 64) i = range_vectors(v, width, i, n, &lo, &hi);
        for (; i < n; i++) { int64_t x = AT(v, width, i); MIN_MAX(x); }
    }
#undef MIN_MAX
    *st = (ColStats){lo, hi, nonzero};
}

/* (no branch on 0: measure's histograms count columns whose rows are 0 and not 0 in no
 * regular order -- CALL.args, EXIT.val -- where `v ? ... : 0` was a mispredicted branch a value,
 * ~1/4 of column_body_4's samples on flask's test_basic phase, perf annotate) */
static inline int
bit_len(uint64_t v)
{
    return 64 - __builtin_clzll(v | 1) - (v == 0);
}

static inline size_t
varint_len(uint64_t v)
{
    return (size_t)(64 - __builtin_clzll(v | 1) + 6) / 7;
}

/* ENC_PARENT (1.3): the parent of call `id` (= base + i) told from the chunk's earlier rows.
 * An even code 2k: walk k steps up the parent chain from the previous call (k = 0: the
 * previous call itself; 1: its parent, its sibling...), every step through a row of this
 * chunk; an odd code: zigzag(id - 1 - parent) << 1 | 1. The parent is the previous call or
 * one of its ancestors unless the thread changed, so the codes are small (the walks sum to at
 * most the rows: each step up is a level the previous rows went down). */
#define PARENT_WALK 64   /* longest walk the writer tries before it writes the parent outright */
static inline __attribute__((always_inline)) uint64_t
parent_code(const uint32_t *par, size_t i, uint64_t base)
{
    uint64_t id = base + i, p = (uint64_t)par[i], q = id - 1;
    for (uint64_t k = 0; k < PARENT_WALK; k++) {
        if (q == p) return k << 1;
        if (q - base >= i) break;   /* the chain leaves this chunk (q < base: wraps past i too) */
        q = (uint64_t)par[q - base];
    }
    return (zigzag((int64_t)(id - 1 - p)) << 1) | 1;
}

/* parent_code for rows 0, 1, 2... in turn, without its walk: a walk of varying length was a
 * mispredicted loop exit a row and a chain of dependent loads (~17 % of column_body_4's samples
 * on flask's test_basic phase, perf annotate). The chain parent_code walks -- the previous call,
 * its parent, ... while in this chunk, then the parent it leaves the chunk to -- is kept as an
 * array by depth: path[0..len) (path[d] the ancestor at depth d; depth[r]: row r's in-chunk
 * ancestors), root_par the id the chain leaves to. Parent p is found k steps up when it is on
 * it: row depth[p] of the path is p (k = len - 1 - depth[p]), or p is root_par (k = len) -- one
 * test, and the same code: 2k when k < PARENT_WALK, else the escape. A parent off the chain
 * (another thread's) has its chain written in, up to where the two meet. A parent id at or past
 * its child's (never seen: a parent starts first) leaves the rest of the column to parent_code,
 * whose chunk test is then not the chain's. */
typedef struct { uint32_t *depth, *path; size_t len; uint64_t root_par; int walk; } ParentChain;

/* The chain of in-chunk row pr written in, from pr up to where it meets w's chain (or leaves
 * the chunk): parent_next's parent off the chain. Returns the id the chain leaves to (w's, or
 * the new one). (w's fields by value: its struct stays in registers in parent_next's loops.) */
static uint64_t
parent_rejoin(uint32_t *depth, uint32_t *path, size_t len, uint64_t root_par, const uint32_t *par,
              uint64_t pr, uint64_t base)
{
    for (uint64_t q = pr;; ) {
        uint32_t dq = depth[q];
        if (dq < len && path[dq] == q) return root_par;
        path[dq] = (uint32_t)q;
        if (!dq) return par[q];
        q = par[q] - base;
    }
}

static inline __attribute__((always_inline)) uint64_t
parent_next(ParentChain *w, const uint32_t *par, size_t i, uint64_t base)
{
    uint64_t id = base + i, p = par[i], pr = p - base;
    if (__builtin_expect(w->walk || p >= id, 0)) { w->walk = 1; return parent_code(par, i, base); }
    if (__builtin_expect(pr < i, 1)) {   /* the parent is in the chunk */
        uint32_t d = w->depth[pr];
        uint64_t k = w->len - 1 - d;   /* (wraps past PARENT_WALK when d >= len: not on the chain) */
        w->depth[i] = d + 1;
        if (__builtin_expect(k < PARENT_WALK && w->path[d] == pr, 1)) {   /* on the chain, k steps up */
            w->path[d + 1] = (uint32_t)i; w->len = d + 2;
            return k << 1;
        }
        if (!(d < w->len && w->path[d] == pr))   /* (on it, k >= PARENT_WALK: as it is) */
            w->root_par = parent_rejoin(w->depth, w->path, w->len, w->root_par, par, pr, base);
        w->path[d + 1] = (uint32_t)i; w->len = d + 2;
    } else {   /* out of the chunk: the id the chain leaves to, or not on it */
        uint64_t k = w->len;
        int on = p == w->root_par;
        w->depth[i] = 0; w->path[0] = (uint32_t)i; w->len = 1; w->root_par = p;
        if (on && k < PARENT_WALK) return k << 1;
    }
    return (zigzag((int64_t)(id - 1 - p)) << 1) | 1;
}

/* The bit lengths of the sampled rows' codes (sample_step's rows). A code depends on the
 * column alone, so the sample is coded by itself, and the codes of all rows are made only
 * while they are written (put_golomb): no pass storing them and another reading them back
 * (~12 instructions a call, fib). */
static void
parent_hist(const uint32_t *par, size_t n, uint64_t base, size_t hist[65])
{
    memset(hist, 0, 65 * sizeof *hist);
    uint32_t lcg = 1;
    size_t stride = sample_stride(n);
    for (size_t i = 0; i < n; i += sample_step(&lcg, stride)) hist[bit_len(parent_code(par, i, base))]++;
}

/* Each candidate encoding's body size for the column, in one pass: the writer keeps
 * the smallest (docs/FORMAT.md, "Varint columns"). */
typedef struct {
    size_t bits; int64_t lo; int width;
    size_t hist_plain[65], hist_delta[65], hist_rise[65];   /* bit lengths of the values, the zigzagged steps, the steps */
    size_t hist_sparse[65], hist_sparse_delta[65];   /* the same over the rows that are not 0 */
    int k;   /* the Exp-Golomb order chosen */
    int runs;   /* most sampled codes of the encoding chosen are of 0 or 1: look for runs (put_golomb) */
    size_t nonzero;   /* rows that are not 0 (W_SPARSE) */
    unsigned want;   /* the candidates counted (W_*) */
} Sizes;

/* Exp-Golomb codes of order k (1.3, encodings 9-11): v is written as x = v + 2^k in binary,
 * after as many 0 bits as x has bits beyond k + 1; a value of b significant bits costs about
 * 2b - k + 1 bits, one of up to k bits k + 1. For the steps of a time column (~10-13 bits)
 * that is ~1.4 bytes against a varint's 2. The writer picks k from a histogram of the values'
 * bit lengths (counts[b]: values of b significant bits, b = 0 for 0). */
static int
golomb_k(const size_t counts[65], size_t n, size_t *bits)
{
    /* total(k) = sum over b of counts[b] * (b <= k ? k + 1 : 2b - k). From k to k + 1 a value
     * of up to k bits costs a bit more, one of k + 1 bits the same, a longer one a bit less:
     * total(k + 1) - total(k) = below - above (values of <= k bits, of > k + 1 bits), a step
     * that only grows with k. So the first k where the total stops falling is the smallest of
     * the best -- what trying every k up to the longest length (and under 40) finds -- in one
     * pass over the lengths and a few steps (this runs for every candidate of every column of
     * every chunk: ~1,000 instructions each trying them all, 35 a call of the exceptions
     * workload, whose drains are many and small). */
    size_t sampled = 0, total = 0;
    int top = 0;
    for (int b = 0; b <= 64; b++)
        if (counts[b]) { sampled += counts[b]; total += counts[b] * (size_t)(b ? 2 * b : 1); top = b; }
    size_t below = counts[0], above = sampled - counts[0] - counts[1];
    int k = 0, last = top < 39 ? top : 39;
    while (k < last && below < above) {
        total -= above - below;
        k++;
        below += counts[k];
        above -= counts[k + 1];
    }
    *bits = sampled ? total * n / sampled : 0;   /* (an estimate from the sample of n values) */
    return k;
}

/* Which candidates a column's measuring pass counts for (the others are not tried): times
 * only rise (steps, else zigzagged steps when one goes down), ids moving in steps their steps,
 * small ids their values; a column of any kind (string ids, fold figures) everything. */
enum { W_PLAIN = 1, W_DELTA = 2, W_RISE = 4, W_SPARSE = 8, W_ALL = 15 };

/* ENC_BITS' size for a column of range st (its minimum, its width in bits, and the body's
 * bytes: the minimum, the width byte, the rows' bits); 0 for a constant column. */
static inline int
bits_size(size_t n, const ColStats *st, Sizes *z)
{
    int64_t lo = n ? st->lo : 0, hi = n ? st->hi : 0;
    uint64_t range = (uint64_t)hi - (uint64_t)lo;
    z->width = range ? 64 - __builtin_clzll(range) : 0;
    z->lo = lo;
    z->bits = varint_len((uint64_t)lo) + 1 + (n * (size_t)z->width + 7) / 8;
    return range != 0;
}

static inline __attribute__((always_inline)) void
measure(const void *v, int width, size_t n, const ColStats *st, Sizes *z, unsigned want)
{
#define x(i) AT(v, width, i)
    z->want = want;
    if (!bits_size(n, st, z)) return;   /* a constant column */
    memset(z->hist_plain, 0, sizeof z->hist_plain);
    memset(z->hist_delta, 0, sizeof z->hist_delta);
    memset(z->hist_rise, 0, sizeof z->hist_rise);
    memset(z->hist_sparse, 0, sizeof z->hist_sparse);
    memset(z->hist_sparse_delta, 0, sizeof z->hist_sparse_delta);
    /* (the sample of sample_step: format.golomb_order's rule) */
    uint32_t lcg;
    size_t stride = width == 8 ? sample_stride(n) : 1;   /* (a time column: the order only) */
#define STEP(i) ((uint64_t)x(i) - (uint64_t)((i) ? x((i) - 1) : 0))
    if (!sample_rows_lcg) sample_rows_make();
#define SAMPLED(i, ...) { size_t i = 0, j_ = 0; \
        for (; j_ < SAMPLE_ROWS && (i = stride * sample_rows[j_]) < n; j_++) __VA_ARGS__ \
        if (j_ == SAMPLE_ROWS) \
            for (i = stride * sample_rows[SAMPLE_ROWS], lcg = sample_rows_lcg; i < n; i += sample_step(&lcg, stride)) __VA_ARGS__ }
    /* Two or three histograms of the same sample in one pass over it (a pass each drew the
     * sample again: the LCG, the loop and the row loads, ~8 instructions a row a pass; the
     * small-valued columns -- fn, how, kind, a mark's call -- want two, the optional ones three):
     * the same counts. (Tried: two copies of each histogram counted in turn, against the wait of
     * a bucket's count for the store of the sample before, which perf annotate points at --
     * column_body_4 +4.0 and +3.2 samples a run on flask's test_basic, 6 pairs at 20 kHz and 8 at
     * 4 kHz: not kept.) */
    unsigned todo = want;   /* the histograms still to count */
    if ((want & (W_PLAIN | W_DELTA | W_RISE)) == (W_PLAIN | W_DELTA)) {
        SAMPLED(i, {
            uint64_t xi = (uint64_t)x(i);
            z->hist_plain[bit_len(xi)]++;
            z->hist_delta[bit_len(zigzag((int64_t)STEP(i)))]++;
        })
        todo &= ~(W_PLAIN | W_DELTA);   /* (done: the passes below are skipped) */
    } else if ((want & (W_PLAIN | W_DELTA | W_RISE)) == (W_PLAIN | W_DELTA | W_RISE)) {
        SAMPLED(i, {
            uint64_t xi = (uint64_t)x(i), step = STEP(i);
            z->hist_plain[bit_len(xi)]++;
            z->hist_delta[bit_len(zigzag((int64_t)step))]++;
            z->hist_rise[bit_len(step)]++;
        })
        todo &= ~(W_PLAIN | W_DELTA | W_RISE);
    }
    if (todo & W_RISE) {
        SAMPLED(i, { z->hist_rise[bit_len(STEP(i))]++; })
        if (z->hist_rise[64]) z->want = want |= W_DELTA, todo |= W_DELTA;   /* a step down (64 bits as a rise) */
    }
    if (todo & W_DELTA)
        SAMPLED(i, { z->hist_delta[bit_len(zigzag((int64_t)STEP(i)))]++; })
    if (todo & W_PLAIN)
        SAMPLED(i, { z->hist_plain[bit_len((uint64_t)x(i))]++; })
#undef SAMPLED
#undef STEP
    z->nonzero = 0;
    if (st->nonzero == n) z->want = want &= ~W_SPARSE;   /* no 0 rows: a sparse coding only adds its bitmap */
    if (want & W_SPARSE) {
        int64_t prev = 0;
        size_t next = 0;
        lcg = 1;
        for (size_t i = 0; i < n; i++) {
            int64_t xi = x(i);
            if (!xi) continue;
            if (z->nonzero++ == next) {
                z->hist_sparse[bit_len((uint64_t)xi)]++;
                z->hist_sparse_delta[bit_len(zigzag((int64_t)((uint64_t)xi - (uint64_t)prev)))]++;
                next += sample_step(&lcg, 1);
            }
            prev = xi;
        }
    }
#undef x
}

/* A bit stream, first bit in the high bit of the first byte: `buf` holds the `used` (< 8) bits
 * not yet in a whole byte, from its high bit down. Each put stores 8 bytes at q (the payload has
 * room past the end) and moves q by the whole bytes it made: ~14 instructions, no branch
 * (a low-aligned accumulator, masked after each put, took ~2x: callgrind, fib). `used` is 64
 * bits wide: an int cost a sign extension a put. */
typedef struct { unsigned char *q; uint64_t buf, used; } BitOut;

static inline __attribute__((always_inline)) void
bits_put(BitOut *b, uint64_t v, uint64_t nbits)   /* 1 <= nbits <= 56, v < 2^nbits */
{
    uint64_t used = b->used + nbits;   /* <= 63: the shifts below stay under 64 */
    uint64_t buf = b->buf | (v << (64 - used));
#if PY_BIG_ENDIAN
    uint64_t w = buf;
#else
    uint64_t w = __builtin_bswap64(buf);
#endif
    memcpy(b->q, &w, 8);
    uint64_t whole = used >> 3;
    b->q += whole;
    b->buf = buf << (whole * 8);
    b->used = used & 7;
}

static inline unsigned char *
bits_end(BitOut *b)   /* the last, partial byte (0 bits after the stream) */
{
    if (b->used) *b->q++ = (unsigned char)(b->buf >> 56);
    return b->q;
}

/* An Exp-Golomb code's length: x = v + 2^k (x >= 1) after (bits of x) - k - 1 zeros. */
#define GOLOMB_LEN(x, k) (2 * (uint64_t)(63 ^ __builtin_clzll(x)) + 1 - (uint64_t)(k))

static inline __attribute__((always_inline)) void
golomb_put(BitOut *b, uint64_t v, int k)
{
    if (v < ((uint64_t)1 << 27)) {   /* the code, zeros and all, in one put: 2nb - k - 1 <= 55 bits */
        uint64_t x = v + ((uint64_t)1 << k);
        bits_put(b, x, GOLOMB_LEN(x, k));
        return;
    }
    unsigned __int128 x = (unsigned __int128)v + ((unsigned __int128)1 << k);
    int nb = x >> 64 ? 65 : bit_len((uint64_t)x);
    for (int zeros = nb - k - 1; zeros > 0; zeros -= 32) bits_put(b, 0, zeros < 32 ? zeros : 32);
    for (int left = nb; left > 0; ) {
        int take = left < 32 ? left : 32;
        left -= take;
        bits_put(b, (uint64_t)(x >> left) & ((1ull << take) - 1), take);
    }
}

/* Four rows' codes. Nearly always (every value < 2^27, and the four codes <= 56 bits: a time
 * step's ~13, an id step's or parent code's 1-5) they go out in one put, joined in a register:
 * ~12 instructions a code against ~32 for a put each (callgrind, fib: the drain's biggest
 * cost, 4 codes a call). The same bits either way. */
static inline __attribute__((always_inline)) void
golomb_put4(BitOut *b, uint64_t v0, uint64_t v1, uint64_t v2, uint64_t v3, int k)
{
    if (__builtin_expect(((v0 | v1 | v2 | v3) >> 27) == 0, 1)) {
        uint64_t one = (uint64_t)1 << k, x0 = v0 + one, x1 = v1 + one, x2 = v2 + one, x3 = v3 + one;
        uint64_t n0 = GOLOMB_LEN(x0, k), n1 = GOLOMB_LEN(x1, k), n2 = GOLOMB_LEN(x2, k), n3 = GOLOMB_LEN(x3, k);
        if (__builtin_expect(n0 + n1 + n2 + n3 <= 56, 1)) {
            bits_put(b, (((((x0 << n1) | x1) << n2) | x2) << n3) | x3, n0 + n1 + n2 + n3);
            return;
        }
        /* two codes a put when they fit: a time step's code (~15-17 bits at k ~10) comes here
         * four at a time (two puts, not four: ~4 instructions a code less) */
        if (__builtin_expect(n0 + n1 <= 56 && n2 + n3 <= 56, 1)) {
            bits_put(b, (x0 << n1) | x1, n0 + n1);
            bits_put(b, (x2 << n3) | x3, n2 + n3);
            return;
        }
        bits_put(b, x0, n0); bits_put(b, x1, n1); bits_put(b, x2, n2); bits_put(b, x3, n3);
        return;
    }
    golomb_put(b, v0, k); golomb_put(b, v1, k); golomb_put(b, v2, k); golomb_put(b, v3, k);
}

/* Eight rows' codes in one put when they fit (<= 56 bits: parent codes and call steps of
 * orders 0-2, ~1-5 bits each), else as two golomb_put4: one bits_put and one range test for
 * eight codes (~3 instructions a code less than golomb_put4's on fib's `par` and `call`). */
static inline __attribute__((always_inline)) void
golomb_put8(BitOut *b, const uint64_t v[8], int k)
{
    uint64_t any = 0;
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) any |= v[j];
    if (__builtin_expect((any >> 27) == 0, 1)) {
        uint64_t one = (uint64_t)1 << k, joined = 0, total = 0;
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            uint64_t x = v[j] + one, len = GOLOMB_LEN(x, k);
            joined = (joined << len) | x;   /* (len <= 55: the shift stays under 64) */
            total += len;
        }
        if (__builtin_expect(total <= 56, 1)) { bits_put(b, joined, total); return; }
    }
    golomb_put4(b, v[0], v[1], v[2], v[3], k);
    golomb_put4(b, v[4], v[5], v[6], v[7], k);
}

/* Runs of one step in a u32 column (threaded: a new record id a call in `args`, +1 a row; the
 * thread id in `thr`, +0 a row while a thread runs): eight rows a step whose steps all equal the
 * one before them have eight equal codes, put at once from the code made once a run (~3
 * instructions a row against ~20-25 for making each code). A block that is not such a run is
 * told by its first step (~0.5 instruction a row) nearly always, then by its eight (two vector
 * compares). Only the rows' codes are read this way: the same bits as code by code. */
typedef struct { int64_t step; uint64_t joined, len; } RunCode;   /* the run's eight codes, joined */
enum { RUN_WINDOW = 32, RUN_HITS = 2, RUN_REST = 224 };   /* (put_golomb: blocks tested, runs they must find, blocks then untested) */

/* Are rows i..i+7 (i >= 2) each `step` (= row i-1 minus row i-2) from the row before? Compared
 * as u32 lanes (steps mod 2^32), then row i+7 against row i-1 + 8 steps in i64: lanes that
 * wrapped would not sum to it (each wrapped step is 2^32 off), so the steps are exactly `step`. */
static inline __attribute__((always_inline)) int
uniform8(const uint32_t *v, size_t i, int64_t step)
{
    if ((int64_t)v[i] - (int64_t)v[i - 1] != step) return 0;   /* (most blocks that are no run end here) */
    U32x4 a, b, pa, pb, want = {(uint32_t)step, (uint32_t)step, (uint32_t)step, (uint32_t)step};
    memcpy(&a, v + i, 16); memcpy(&b, v + i + 4, 16); memcpy(&pa, v + i - 1, 16); memcpy(&pb, v + i + 3, 16);
    U32x4 d = ((a - pa) ^ want) | ((b - pb) ^ want);
    U64x2 w;
    memcpy(&w, &d, 16);
    return !(w[0] | w[1]) && (int64_t)v[i + 7] == (int64_t)v[i - 1] + 8 * step;
}

/* The code of a run's step (its value for ENC_GOLOMB, whose runs are of step 0), joined eight
 * times into rc, if eight fit one put (<= 56 bits); 0 if not (the rows go code by code). */
static inline __attribute__((always_inline)) int
run_code(RunCode *rc, int enc, int64_t step, uint64_t value, int k)
{
    uint64_t c = enc == ENC_GOLOMB_DELTA ? zigzag(step) : enc == ENC_GOLOMB_RISE ? (uint64_t)step : value;
    if (c >= ((uint64_t)1 << 27)) return 0;
    uint64_t x = c + ((uint64_t)1 << k), len = GOLOMB_LEN(x, k);
    if (8 * len > 56) return 0;
    uint64_t j = (x << len) | x;   /* 2, then 4, then 8 codes */
    j = (j << 2 * len) | j;
    rc->joined = (j << 4 * len) | j;
    rc->len = 8 * len;
    rc->step = step;
    return 1;
}

/* Eight rows' codes of a u32 column, u[0..7], each coded against the row before it (u[-1]
 * must be readable): the steps, their zigzag and the codes' lengths made four rows at a time in
 * vectors -- a code's bit length from its float's exponent (exact below 2^24) -- and only the
 * joining left to do row by row (~4 instructions a code, against ~13 for golomb_put8's steps,
 * zigzags, lengths and joins one row at a time: an id column's codes, e.g. EXIT.call, CALL.args).
 * 0 when a row is off this path (a value or step of 2^23 or more, a row >= 2^31 in a step
 * column, a RISE column's step down, k > 20): the caller codes the eight rows as before. The
 * same bits either way. */
typedef int32_t S32x4 __attribute__((vector_size(16)));
typedef float F32x4 __attribute__((vector_size(16)));
static inline __attribute__((always_inline)) int
golomb_block8_u32(BitOut *b, const uint32_t *u, int enc, int k)
{
    U32x4 a0, a1, c0, c1;
    memcpy(&a0, u, 16); memcpy(&a1, u + 4, 16);
    if (enc == ENC_GOLOMB) {
        c0 = a0; c1 = a1;
    } else {
        U32x4 p0, p1;
        memcpy(&p0, u - 1, 16); memcpy(&p1, u + 3, 16);
        U32x4 rows = a0 | a1 | p0;   /* (rows < 2^31: the i64 steps are these i32 ones) */
        U64x2 w;
        memcpy(&w, &rows, 16);
        if ((w[0] | w[1]) & 0x8000000080000000ull) return 0;
        S32x4 d0 = (S32x4)(a0 - p0), d1 = (S32x4)(a1 - p1);
        if (enc == ENC_GOLOMB_DELTA) {
            c0 = (U32x4)((d0 << 1) ^ (d0 >> 31)); c1 = (U32x4)((d1 << 1) ^ (d1 >> 31));   /* zigzag */
        } else {   /* RISE: a step down is a 64-bit code (its sign bit fails the test below) */
            c0 = (U32x4)d0; c1 = (U32x4)d1;
        }
    }
    U32x4 codes = c0 | c1;   /* (each code < 2^23) */
    U64x2 w;
    memcpy(&w, &codes, 16);
    if ((w[0] | w[1]) & 0xFF800000FF800000ull) return 0;
    if (k > 20) return 0;   /* (x = code + 2^k < 2^24: exact as a float) */
    U32x4 one = {1u << k, 1u << k, 1u << k, 1u << k};
    U32x4 x0 = c0 + one, x1 = c1 + one;
    F32x4 f0 = __builtin_convertvector((S32x4)x0, F32x4), f1 = __builtin_convertvector((S32x4)x1, F32x4);
    U32x4 e0, e1;   /* the floats' exponents: x's bit length - 1 + 127 */
    memcpy(&e0, &f0, 16); memcpy(&e1, &f1, 16);
    U32x4 adj = {253u + (uint32_t)k, 253u + (uint32_t)k, 253u + (uint32_t)k, 253u + (uint32_t)k};
    U32x4 n0 = ((e0 >> 23) << 1) - adj, n1 = ((e1 >> 23) << 1) - adj;   /* GOLOMB_LEN: 2 (bits - 1) + 1 - k */
    uint32_t xs[8], ns[8];
    memcpy(xs, &x0, 16); memcpy(xs + 4, &x1, 16); memcpy(ns, &n0, 16); memcpy(ns + 4, &n1, 16);
    uint64_t h0 = (uint64_t)ns[0] + ns[1] + ns[2] + ns[3], h1 = (uint64_t)ns[4] + ns[5] + ns[6] + ns[7], joined = 0;
    if (__builtin_expect(h0 + h1 <= 56, 1)) {   /* (golomb_put8's one put) */
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) joined = (joined << ns[j]) | xs[j];
        bits_put(b, joined, h0 + h1);
        return 1;
    }
    if (h0 > 56 || h1 > 56) return 0;   /* (longer codes: golomb_put4's pairs, or one by one) */
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) joined = (joined << ns[j]) | xs[j];
    bits_put(b, joined, h0);
    joined = 0;
#pragma GCC unroll 4
    for (int j = 4; j < 8; j++) joined = (joined << ns[j]) | xs[j];
    bits_put(b, joined, h1);
    return 1;
}

/* A row's code against the row before it, for each Golomb encoding (put_golomb's loops). */
#define RISE(a, before) ((a) - (before))
#define DELTA(a, before) zigzag((int64_t)((a) - (before)))
#define PLAIN(a, before) (a)

/* put_golomb's rows of a u32 column of short codes, eight a step, from row 0 to the last whole
 * block (returned; *prev: its last row): golomb_block8_u32 for most blocks, and in columns whose
 * sampled codes are mostly 0 or 1 (Sizes.runs) runs of one step at once (uniform8); a block off
 * those paths (row 0's, longer codes) goes code by code from registers (BLOCK). The same bits as
 * put_golomb's row loops. */
static inline __attribute__((always_inline)) size_t
golomb_blocks_u32(BitOut *b, int enc, const uint32_t *u, size_t n, int k, int runs, uint64_t *prev)
{
    RunCode rc = {0, 0, 0};
    int have = 0;   /* rc holds the code of rc.step's runs */
    uint64_t a[8], c[8], before = 0;
    size_t i = 0;
#define BLOCK(VALUE) { \
        _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) a[j] = (uint64_t)u[i + (size_t)j]; \
        c[0] = VALUE(a[0], before); \
        _Pragma("GCC unroll 7") for (int j = 1; j < 8; j++) c[j] = VALUE(a[j], a[j - 1]); \
        if (k <= 2) golomb_put8(b, c, k); \
        else { golomb_put4(b, c[0], c[1], c[2], c[3], k); golomb_put4(b, c[4], c[5], c[6], c[7], k); } }
    /* Blocks are tested RUN_WINDOW at a time; a window that found fewer than RUN_HITS runs
     * is followed by RUN_REST blocks coded untested (a column of mostly 0/1 codes that seldom
     * repeat eight times: raytrace's and the exceptions' ids, ~1 instruction a row of tests
     * finding nothing; a run saves ~100 instructions, a test costs ~6-8: 1 hit in 16 pays). */
    size_t tests = 0, hits = 0, test_from = runs ? 8 : SIZE_MAX;   /* (blocks are tested from row test_from on; >= 8: the step before) */
    for (; i + 8 <= n; i += 8) {
        if (i >= test_from) {
            int64_t step = (int64_t)u[i - 1] - (int64_t)u[i - 2];
            int hit = (enc != ENC_GOLOMB || step == 0) && uniform8(u, i, step)
                      && ((have && rc.step == step && enc != ENC_GOLOMB) || (have = run_code(&rc, enc, step, u[i - 1], k)));
            hits += (size_t)hit;
            if (++tests == RUN_WINDOW) {
                test_from = hits < RUN_HITS ? i + 8 * RUN_REST : 8;
                tests = hits = 0;
            }
            if (hit) {
                bits_put(b, rc.joined, rc.len);
                before = u[i + 7];
                continue;
            }
        }
        if (!i || k > 2 || !golomb_block8_u32(b, u + i, enc, k)) {   /* (row 0: no row before it to read) */
            if (enc == ENC_GOLOMB_RISE) BLOCK(RISE)
            else if (enc == ENC_GOLOMB_DELTA) BLOCK(DELTA)
            else BLOCK(PLAIN)
        }
        before = u[i + 7];
    }
#undef BLOCK
    *prev = before;
    return i;
}

/* A work block the drain keeps from one batch to the next (under the GIL: the encoder runs no
 * Python): one malloc'd and freed at every drain was faulted in again each time, page by page.
 * kept_room gives `need` bytes at least, the block made anew -- freed, not realloc'd: nothing in
 * it is kept -- with `slack` bytes more when it is smaller; NULL when there is no memory. */
typedef struct { void *p; size_t cap; } KeptBlock;

static void *
kept_room(KeptBlock *b, size_t need, size_t slack)
{
    if (b->cap < need) {
        PyMem_RawFree(b->p);
        b->cap = 0;
        if (!(b->p = PyMem_RawMalloc(need + slack))) return NULL;
        b->cap = need + slack;
    }
    return b->p;
}

/* The parent chain's memory for a par column of n rows (2 (n + 1) u32: ~8 bytes a call, ~200 KB
 * a backpressure batch; ~50 page faults a batch of benchmarks' threaded when it was made at
 * every drain, perf -e page-faults). NULL when there is no memory. */
static KeptBlock chain_block;
static uint32_t *
parent_chain_room(size_t n)
{
    return kept_room(&chain_block, 2 * (n + 1) * sizeof(uint32_t), 0);
}

/* A Golomb column's body: the order k, then a code a row (ENC_GOLOMB*), made while written.
 * One loop per encoding (no test per row): eight rows a step for short codes (golomb_put8;
 * a u32 column's through golomb_blocks_u32), four a step (golomb_put4), then the last rows. */
static inline __attribute__((always_inline)) unsigned char *
put_golomb(unsigned char *q, int enc, const void *v, int width, size_t n, int k, uint64_t base, int runs)
{
#define x(i) AT(v, width, i)
    *q++ = (unsigned char)k;
    BitOut b = {q, 0, 0};
    uint64_t prev = 0, xi;   /* (the steps: from 0 to the first value, then between rows) */
    size_t i = 0, n4 = n & ~(size_t)3, n8 = k <= 2 ? n & ~(size_t)7 : 0;   /* (short codes: 8 rows a step) */
    /* A u8 column's eight rows equal to the row before (EXIT.how: returns, most rows) are eight
     * equal codes, joined once a value (run_code) and put at once: one 8-byte compare, against
     * ~60 instructions for making the eight codes (~2 M instructions of flask test_json's drains). */
    RunCode run = {0, 0, 0};
    uint64_t run_of = UINT64_MAX;   /* (the row value whose codes `run` holds, if run.len) */
#define ROWS8(VALUE) for (; i < n8; i += 8) { \
        if (width == 1) { \
            uint64_t w8; \
            memcpy(&w8, (const uint8_t *)v + i, 8); \
            if (w8 == (prev & 0xFF) * 0x0101010101010101ull) { \
                if (run_of != prev && !run_code(&run, enc, 0, prev, k)) run.len = 0; \
                run_of = prev; \
                if (run.len) { bits_put(&b, run.joined, run.len); continue; } \
            } \
        } \
        uint64_t a[8], c[8]; \
        _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) a[j] = (uint64_t)x(i + (size_t)j); \
        c[0] = VALUE(a[0], prev); \
        _Pragma("GCC unroll 7") for (int j = 1; j < 8; j++) c[j] = VALUE(a[j], a[j - 1]); \
        golomb_put8(&b, c, k); \
        prev = a[7]; }
#define ROWS4(VALUE) for (; i < n4; i += 4) { \
        uint64_t a0 = (uint64_t)x(i), a1 = (uint64_t)x(i + 1), a2 = (uint64_t)x(i + 2), a3 = (uint64_t)x(i + 3); \
        golomb_put4(&b, VALUE(a0, prev), VALUE(a1, a0), VALUE(a2, a1), VALUE(a3, a2), k); \
        prev = a3; }
    if (width == 4 && enc != ENC_GOLOMB_PARENT && n >= 16 && (runs || k <= 2))
        i = golomb_blocks_u32(&b, enc, v, n, k, runs, &prev);   /* (longer codes: ROWS4's rows stay in registers) */
    if (enc == ENC_GOLOMB_RISE) {
        ROWS8(RISE)
        ROWS4(RISE)
        for (; i < n; i++) { xi = (uint64_t)x(i); golomb_put(&b, xi - prev, k); prev = xi; }
    } else if (enc == ENC_GOLOMB_DELTA) {
        ROWS8(DELTA)
        ROWS4(DELTA)
        for (; i < n; i++) { xi = (uint64_t)x(i); golomb_put(&b, zigzag((int64_t)(xi - prev)), k); prev = xi; }
    } else if (enc == ENC_GOLOMB) {
        ROWS8(PLAIN)
        ROWS4(PLAIN)
        for (; i < n; i++) golomb_put(&b, (uint64_t)x(i), k);
    } else if (width == 4) {
        const uint32_t *par = v;   /* (ENC_GOLOMB_PARENT: the par column, u32 -- no other width's code) */
        uint32_t *mem = parent_chain_room(n);   /* (none: parent_code's walks) */
        ParentChain w = {mem, mem + n + 1, 0, base - 1, !mem};   /* (row 0's previous call: base - 1) */
        for (; i < n8; i += 8) {
            uint64_t c[8];
            for (int j = 0; j < 8; j++) c[j] = parent_next(&w, par, i + (size_t)j, base);
            golomb_put8(&b, c, k);
        }
        for (; i < n4; i += 4) {
            uint64_t c0 = parent_next(&w, par, i, base), c1 = parent_next(&w, par, i + 1, base);
            uint64_t c2 = parent_next(&w, par, i + 2, base), c3 = parent_next(&w, par, i + 3, base);
            golomb_put4(&b, c0, c1, c2, c3, k);
        }
        for (; i < n; i++) golomb_put(&b, parent_next(&w, par, i, base), k);
    }
#undef ROWS4
#undef ROWS8
#undef x
    return bits_end(&b);
}
#undef PLAIN
#undef DELTA
#undef RISE

/* ENC_BITS's rows, `m` (8, 4 or 2: m * bits <= 56) a step: joined in a register first, put
 * after the < 8 bits left over, and stored as 8 bytes of which the whole ones count (the
 * payload has room past the end): ~4-6 instructions a row against ~10 one at a time (oop's
 * `fn`, the exceptions' `how`, the argument and result ids). The last rows one by one. */
static inline __attribute__((always_inline)) unsigned char *
put_packed_steps(unsigned char *q, const void *v, int width, size_t n, uint64_t lo, int bits, int m)
{
#define x(i) AT(v, width, i)
    uint64_t acc = 0, have = 0, step = (uint64_t)m * (uint64_t)bits;   /* (8 <= step <= 56) */
    size_t i = 0;
    for (; i + (size_t)m <= n; i += (size_t)m) {
        uint64_t joined = 0;
        if (width == 1 && m == 8) {   /* the eight bytes at once, each lane's bits moved down in 3 steps */
            uint64_t w;
            memcpy(&w, (const unsigned char *)v + i, 8);
#if PY_BIG_ENDIAN
            w = __builtin_bswap64(w);
#endif
            w -= (uint8_t)lo * 0x0101010101010101ull;   /* (every byte >= lo: no borrow) */
            w = (w & 0x00FF00FF00FF00FFull) | ((w >> 8) & 0x00FF00FF00FF00FFull) << bits;
            w = (w & 0x0000FFFF0000FFFFull) | ((w >> 16) & 0x0000FFFF0000FFFFull) << (2 * bits);
            joined = (w & 0xFFFFFFFFull) | (w >> 32) << (4 * bits);
        } else {
#pragma GCC unroll 8
            for (int j = m - 1; j >= 0; j--) joined = (joined << bits) | ((uint64_t)x(i + (size_t)j) - lo);
        }
        acc |= joined << have;   /* have + step <= 7 + 56 */
        store_le64(q, acc);
        uint64_t whole = (have + step) >> 3;   /* 1..7 */
        q += whole;
        acc >>= whole * 8;
        have = (have + step) & 7;
    }
    for (; i < n; i++) {
        acc |= ((uint64_t)x(i) - lo) << have;   /* have < 8, bits <= 28 */
        have += (uint64_t)bits;
        while (have >= 8) { *q++ = (unsigned char)acc; acc >>= 8; have -= 8; }
    }
    if (have) *q++ = (unsigned char)acc;
    return q;
#undef x
}

/* ENC_BITS's values: row i's `width` bits at bits i*width.. of the bytes read as one
 * little-endian number. Up to 28 bits a value (nearly every packed column: small ids, `how`,
 * `kind`) a few rows a step (put_packed_steps), wider values one by one, through a 128-bit
 * accumulator emptied byte by byte. */
static inline __attribute__((always_inline)) unsigned char *
put_packed(unsigned char *q, const void *v, int width, size_t n, uint64_t lo, int bits)
{
    if (bits < 1) return q;
    if (bits <= 7) return put_packed_steps(q, v, width, n, lo, bits, 8);
    if (bits <= 14) return put_packed_steps(q, v, width, n, lo, bits, 4);
    if (bits <= 28) return put_packed_steps(q, v, width, n, lo, bits, 2);
    unsigned __int128 acc = 0;
    int have = 0;
    for (size_t i = 0; i < n; i++) {
        acc |= (unsigned __int128)((uint64_t)AT(v, width, i) - lo) << have;
        have += bits;
        while (have >= 8) { *q++ = (unsigned char)acc; acc >>= 8; have -= 8; }
    }
    if (have) *q++ = (unsigned char)acc;
    return q;
}

static inline __attribute__((always_inline)) unsigned char *
put_body(unsigned char *q, int enc, const void *v, int width, size_t n, const Sizes *z, uint64_t base)
{
#define x(i) AT(v, width, i)
    if (enc >= ENC_GOLOMB_DELTA)
        return put_golomb(q, enc, v, width, n, z->k, base, z->runs);
    if (enc == ENC_PARENT) {
        for (size_t i = 0; i < n; i++) q = put_varint(q, parent_code(v, i, base));
    } else if (enc == ENC_VARINT) {
        for (size_t i = 0; i < n; i++) q = put_varint(q, (uint64_t)x(i));
    } else if (enc == ENC_VARINT_DELTA) {
        int64_t prev = 0;
        for (size_t i = 0; i < n; i++) { int64_t xi = x(i); q = put_varint(q, zigzag((int64_t)((uint64_t)xi - (uint64_t)prev))); prev = xi; }
    } else if (enc == ENC_SPARSE || enc == ENC_SPARSE_DELTA) {
        unsigned char *map = q;   /* bit i: row i is not 0; then the Golomb codes of those rows */
        memset(map, 0, (n + 7) / 8);
        q += (n + 7) / 8;
        *q++ = (unsigned char)z->k;
        BitOut b = {q, 0, 0};
        int64_t prev = 0;
        for (size_t i = 0; i < n; i++) {
            int64_t xi = x(i);
            if (!xi) continue;
            map[i >> 3] |= (unsigned char)(1u << (i & 7));
            golomb_put(&b, enc == ENC_SPARSE ? (uint64_t)xi : zigzag((int64_t)((uint64_t)xi - (uint64_t)prev)), z->k);
            prev = xi;
        }
        q = bits_end(&b);
    } else {   /* ENC_BITS: the minimum, the width, then each value - minimum in `width` bits */
        q = put_varint(q, (uint64_t)z->lo);
        *q++ = (unsigned char)z->width;
        q = put_packed(q, v, width, n, (uint64_t)z->lo, z->width);
    }
    return q;
#undef x
}

/* The smallest encoding of the column (ties: the simpler one) and its body size. */
static int
choose(const ColSpec *s, size_t n, uint64_t base, Sizes *z)
{
    if (z->width == 0) return ENC_CONST;
    size_t hist_parent[65], bits_delta = 0, bits_plain = 0, bits_parent = 0, bits_sparse = 0, bits_sparse_delta = 0, bits_rise = 0;
    int k_delta = 0, k_plain = 0, k_parent = 0, k_sparse = 0, k_rise = 0, k_sparse_delta = 0;
    /* (only the candidates measured: golomb_k's pass over 65 lengths, for every candidate of
     * every column of every chunk, was ~19 instructions a call of the exceptions workload,
     * whose drains are many and small) */
    if (s->parent) {
        parent_hist(s->v, n, base, hist_parent);   /* (par: u32) */
        k_parent = golomb_k(hist_parent, n, &bits_parent);
    }
    if (z->want & W_DELTA) k_delta = golomb_k(z->hist_delta, n, &bits_delta);
    if (z->want & W_PLAIN) k_plain = golomb_k(z->hist_plain, n, &bits_plain);
    if (z->want & W_RISE) k_rise = golomb_k(z->hist_rise, n, &bits_rise);
    if (z->want & W_SPARSE) {
        k_sparse = golomb_k(z->hist_sparse, z->nonzero, &bits_sparse);
        k_sparse_delta = golomb_k(z->hist_sparse_delta, z->nonzero, &bits_sparse_delta);
    }
    size_t map = (n + 7) / 8 + 1;
#define IF_WANT(w, size) ((z->want & (w)) ? (size) : SIZE_MAX)
    struct { int enc; size_t size; int k; } c[] = {
        {ENC_BITS, z->bits, 0},
        {ENC_SPARSE_DELTA, IF_WANT(W_SPARSE, map + (bits_sparse_delta + 7) / 8), k_sparse_delta},
        {ENC_SPARSE, IF_WANT(W_SPARSE, map + (bits_sparse + 7) / 8), k_sparse},
        {ENC_GOLOMB_DELTA, IF_WANT(W_DELTA, 1 + (bits_delta + 7) / 8), k_delta},
        {ENC_GOLOMB, IF_WANT(W_PLAIN, 1 + (bits_plain + 7) / 8), k_plain},
        {ENC_GOLOMB_PARENT, s->parent ? 1 + (bits_parent + 7) / 8 : SIZE_MAX, k_parent},
        {ENC_GOLOMB_RISE, IF_WANT(W_RISE, 1 + (bits_rise + 7) / 8), k_rise},
    };
#undef IF_WANT
    int best = 0;
    for (int i = 1; i < (int)(sizeof c / sizeof c[0]); i++) if (c[i].size < c[best].size) best = i;
    z->k = c[best].k;
    /* a column of runs of one step (uniform8) has most sampled codes 0 or 1: only such a column
     * is looked at for runs (~0.8 instruction a row of a test that finds none elsewhere) */
    const size_t *h = c[best].enc == ENC_GOLOMB_DELTA ? z->hist_delta : c[best].enc == ENC_GOLOMB_RISE ? z->hist_rise
                      : c[best].enc == ENC_GOLOMB ? z->hist_plain : NULL;
    z->runs = 0;
    if (h) {
        size_t sampled = 0;
        for (int b = 0; b <= 64; b++) sampled += h[b];
        z->runs = 2 * (h[0] + h[1]) >= sampled;
    }
    return c[best].enc;
}

/* measure's sample of a column's rows not 0 -- the same rows and the same steps from the row
 * before each -- from their values alone, dense (v, nonzero of them): only the sampled rows are
 * read, into hist (values' bit lengths) and hist_delta (zigzagged steps'), zeroed before. */
static void
sparse_hists(const uint32_t *v, size_t nonzero, size_t hist[65], size_t hist_delta[65])
{
    uint32_t lcg = 1;
    for (size_t j = 0; j < nonzero; j += sample_step(&lcg, 1)) {
        uint32_t x = v[j], before = j ? v[j - 1] : 0;
        hist[bit_len(x)]++;
        hist_delta[bit_len(zigzag((int64_t)x - (int64_t)before))]++;
    }
}

/* ENC_SPARSE (delta 0) or ENC_SPARSE_DELTA's body (put_body's bytes) from the rows not 0 alone:
 * their places `at` and values `v`, dense, `nonzero` of them, in row order. The bitmap first,
 * then the codes eight at a time: their values' or steps' codes made in vectors
 * (golomb_block8_u32, which reads the value before: not for the first eight steps), else one
 * put for the eight when they fit (golomb_put8) -- the same bits as a put a code: ~12
 * instructions a row not 0 against ~40 a code made and stored one at a time (callgrind,
 * generators' MARK othr). */
static unsigned char *
put_sparse_rows(unsigned char *q, size_t rows, const uint32_t *at, const uint32_t *v, size_t nonzero, int delta, int k)
{
    unsigned char *map = q;
    memset(map, 0, (rows + 7) / 8);
    /* (a byte's OR waits for the store of the row before in the same byte -- ~1/4 of this
     * function's samples -- but a word of 64 rows ORed in a register and stored when the word
     * changes measured +1.1 samples a run, 8 pairs at 20 kHz: not kept) */
    for (size_t j = 0; j < nonzero; j++) map[at[j] >> 3] |= (unsigned char)(1u << (at[j] & 7));
    q += (rows + 7) / 8;
    *q++ = (unsigned char)k;
    BitOut b = {q, 0, 0};
#define CODE(j) (delta ? zigzag((int64_t)v[j] - (int64_t)((j) ? v[(j) - 1] : 0)) : (uint64_t)v[j])
    size_t j = 0;
    for (; j + 8 <= nonzero; j += 8) {
        if ((j || !delta) && golomb_block8_u32(&b, v + j, delta ? ENC_GOLOMB_DELTA : ENC_GOLOMB, k)) continue;
        uint64_t codes[8];
#pragma GCC unroll 8
        for (size_t c = 0; c < 8; c++) codes[c] = CODE(j + c);
        golomb_put8(&b, codes, k);
    }
    for (; j < nonzero; j++) golomb_put(&b, CODE(j), k);
#undef CODE
    return bits_end(&b);
}

/* ENC_GOLOMB's body (put_golomb's bytes) from the rows not 0 alone (places `at`, values `v`,
 * dense, `nonzero` of them, in row order; k <= 20): the 0 rows between them are all the same
 * code -- a 1 and k 0s -- put many at once (56 bits a put), not made row by row: a MARK chunk's
 * `n`, 0 but on its fold rows (~1/5 of generators' rows), ~25 instructions a row -> ~1. */
static unsigned char *
put_golomb_rows(unsigned char *q, size_t rows, const uint32_t *at, const uint32_t *v, size_t nonzero, int k)
{
    *q++ = (unsigned char)k;
    BitOut b = {q, 0, 0};
    uint64_t zlen = (uint64_t)k + 1, per = 56 / zlen, many = 0;   /* (per >= 2: that many 0 codes in one put) */
    for (uint64_t c = 0; c < per; c++) many = (many << zlen) | ((uint64_t)1 << k);
    size_t row = 0;
    for (size_t j = 0; j <= nonzero; j++) {
        size_t next = j < nonzero ? at[j] : rows, gap = next - row;
        for (; gap >= per; gap -= per) bits_put(&b, many, per * zlen);
        if (gap) bits_put(&b, many >> ((per - gap) * zlen), gap * zlen);
        if (j < nonzero) golomb_put(&b, v[j], k);
        row = next + 1;
    }
    return bits_end(&b);
}

/* The rows of a column that are not constant, from the first row that differs: 1 when every row
 * equals the first (8 bytes at a time, as value_range), else 0 and *lo, *hi the smallest and
 * largest of the rows sample_step picks (a range inside the column's: the sample takes row 0). */
static inline __attribute__((always_inline)) int
constant_or_sampled(const void *v, int width, size_t n, int64_t *lo, int64_t *hi)
{
    ColStats st;
    value_range(v, width, n < 8 ? n : 8, &st, 0);   /* (the first rows: a short column is told here) */
    if (st.lo == st.hi) {
        const unsigned char *b = v;
        size_t len = n * (size_t)width, i = bytes_equal_to(v, width, n, st.lo);
        for (; i < len; i += (size_t)width) if (AT(b + i, width, 0) != st.lo) break;
        if (i >= len) { *lo = *hi = st.lo; return 1; }
    }
    int64_t a = INT64_MAX, z = INT64_MIN;
    uint32_t lcg = 1;
    size_t stride = sample_stride(n);
    for (size_t i = 0; i < n; i += sample_step(&lcg, stride)) {
        int64_t x = AT(v, width, i);
        a = x < a ? x : a;
        z = x > z ? x : z;
    }
    *lo = a; *hi = z;
    return 0;
}

/* The rows not 0 of a u32 column of n rows: their places into *at and their values into *nzv,
 * dense, in row order (buffers kept between drains: the encoder runs no Python, under the GIL).
 * Every row is stored at the next place and the place moves on only for a row not 0: no branch
 * a row. 0 when there is no memory (the caller then measures the rows as they are). */
static KeptBlock nonzero_block;
static int
nonzero_rows_u32(const uint32_t *v, size_t n, const uint32_t **at, const uint32_t **nzv)
{
    /* (n + 1 each: the last row's store may be one past the rows not 0) */
    uint32_t *a = kept_room(&nonzero_block, 2 * (n + 1) * sizeof(uint32_t), 0);
    if (!a) return 0;
    uint32_t *d = a + n + 1;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t x = v[i];
        a[j] = (uint32_t)i;
        d[j] = x;
        j += x != 0;
    }
    *at = a;
    *nzv = d;
    return 1;
}

/* One column's body at q, in the encoding chosen for it (*enc); returns its end. Inlined once
 * for each value width, so that every loop reads the column's buffer as it is.
 * A column whose 0 rows do not matter (no W_SPARSE) is not read whole for its range first
 * (value_range: ~8 instructions a row, ~15 a call of the drain on fib): its range is needed
 * only for ENC_BITS' size, and a lower bound of that size, from the sampled rows' range, tells
 * nearly always that another coding is smaller. Only when the bound wins are the rows read
 * for the exact size -- the same choice, and the same bytes, as reading them first. */
static inline __attribute__((always_inline)) unsigned char *
column_body(unsigned char *q, const ColSpec *s, int width, size_t rows, uint64_t base, int *enc)
{
    ColStats st = {INT64_MIN, INT64_MAX, 0};   /* times and parents: never constant or packed */
    int exact = 1;
    if (s->stats) st = *s->stats;
    else if ((width == 8 && s->want == W_RISE) || s->parent) ;
    else if (!rows || (s->want & W_SPARSE)) value_range(s->v, width, rows, &st, s->want & W_SPARSE);
    else if (!constant_or_sampled(s->v, width, rows, &st.lo, &st.hi)) {
        if (st.lo == st.hi) value_range(s->v, width, rows, &st, 0);   /* (a sample of one value: no bound) */
        else exact = 0;
    }
    Sizes z;
    /* (s->nzv: the rows not 0 given too, places s->at and values s->nzv -- a MARK chunk's othr
     * and n: the sparse candidates' sample and body from them, not from a pass over every row) */
    const uint32_t *at = s->at, *nzv = s->nzv;
    size_t nat = s->nat;
    int by_rows = nzv && (s->want & W_SPARSE), found = 0;
    /* A u32 column that may be sparse and has rows 0 among others (MARK.ref: a resume's row is
     * 0, a suspend's or an exception's not -- 38 % of flask's 526 k MARK rows, in no regular
     * order) has them found here in one pass with no branch a row (nonzero_rows_u32), for the
     * sparse candidates' sample and body (put_sparse_rows): measure's pass over every row tested
     * each for 0, a branch that mispredicted there (its hottest lines in column_body_4, ~7-10
     * samples a flask phase), and so did put_body's sparse loop */
    if (width == 4 && !by_rows && (s->want & W_SPARSE) && st.nonzero && st.nonzero < rows
            && nonzero_rows_u32(s->v, rows, &at, &nzv)) {
        nat = st.nonzero;
        by_rows = found = 1;
    }
    measure(s->v, width, rows, &st, &z, by_rows ? s->want & ~W_SPARSE : s->want);
    if (by_rows && z.width && st.nonzero != rows) {   /* (measure's rule: no row 0, no sparse candidate) */
        z.want |= W_SPARSE;
        z.nonzero = nat;
        sparse_hists(nzv, nat, z.hist_sparse, z.hist_sparse_delta);
    }
    if (!exact) z.bits = 2 + (rows * (size_t)z.width + 7) / 8;   /* (>= 1 byte of minimum, the width byte) */
    *enc = choose(s, rows, base, &z);
    if (!exact && *enc == ENC_BITS) {   /* the bound is the smallest: the exact size decides */
        /* (the histograms measured stand: they count values and steps, not the range; only
         * ENC_BITS' size changes -- measuring again sampled the column twice, oop's `fn`) */
        value_range(s->v, width, rows, &st, 0);
        bits_size(rows, &st, &z);
        *enc = choose(s, rows, base, &z);
    }
    if (by_rows && (*enc == ENC_SPARSE || *enc == ENC_SPARSE_DELTA))
        return put_sparse_rows(q, rows, at, nzv, nat, *enc == ENC_SPARSE_DELTA, z.k);
    /* (a column of few rows 0 -- found here -- is coded faster from all its rows: put_golomb's blocks) */
    if (by_rows && !found && *enc == ENC_GOLOMB && z.k <= 20) return put_golomb_rows(q, rows, at, nzv, nat, z.k);
    return *enc == ENC_CONST ? put_varint(q, (uint64_t)z.lo) : put_body(q, *enc, s->v, width, rows, &z, base);
}

/* Format 1.9, ENC_SHARED: a column whose values are 0 but on the rows where an earlier column
 * (s->share - 1) is not -- a MARK chunk's `run` and `span`, on its fold rows (those of `n`) --
 * as that column's index, then a Golomb stream of those rows' values (s->v: s->nvals of them,
 * dense). A sparse column without its own bitmap (~1 bit a MARK row each, ~0.5 B a call of
 * benchmarks' generators), and read by the coder once, for the folds only. */
static unsigned char *
shared_body(unsigned char *q, const ColSpec *s)
{
    const int64_t *v = s->v;
    size_t hist[65] = {0}, bits;
    uint32_t lcg = 1;   /* the order from measure's sample (format.golomb_order: the same bytes) */
    for (size_t i = 0; i < s->nvals; i += sample_step(&lcg, 1)) hist[bit_len((uint64_t)v[i])]++;
    int k = golomb_k(hist, s->nvals, &bits);
    *q++ = (unsigned char)(s->share - 1);
    return put_golomb(q, ENC_GOLOMB, v, 8, s->nvals, k, 0, 0);
}

/* A u32 column that is 0 but on the rows s->at (EXIT.val without argument capture: a raise's
 * exception text), written sparse from those rows alone: the bitmap, then Golomb codes of the
 * rows not 0 -- their values or their steps (ENC_SPARSE / ENC_SPARSE_DELTA), whichever the
 * sampled codes say is smaller. column_body read every row of the column three times for it
 * (range, histograms, codes: ~36 instructions a row of exceptions' EXIT chunks, most rows 0).
 * s->v holds the values of the rows s->at, dense and none 0 (renumber_at). */
static unsigned char *
sparse_rows_body(unsigned char *q, const ColSpec *s, size_t rows, int *enc)
{
    size_t hist[65] = {0}, hist_delta[65] = {0}, nonzero = s->nat, bits, bits_delta;
    sparse_hists(s->v, nonzero, hist, hist_delta);
    int k = golomb_k(hist, nonzero, &bits), k_delta = golomb_k(hist_delta, nonzero, &bits_delta);
    int delta = bits_delta < bits;
    *enc = delta ? ENC_SPARSE_DELTA : ENC_SPARSE;
    return put_sparse_rows(q, rows, s->at, s->v, nonzero, delta, delta ? k_delta : k);
}

/* A u32 column's varints: of its values, or (delta) of their zigzagged steps (from 0 to the
 * first row). Eight rows a step whose codes are all one byte (nearly every step: ids a few
 * rows apart, fold counts and 0s) are made in two vectors and stored as one word (~4
 * instructions a row against ~12 one varint at a time); a step with a longer code, or with a
 * row of 2^31 or more (whose step the 32-bit lanes would not hold), one row at a time. The
 * same bytes either way. */
static inline __attribute__((always_inline)) unsigned char *
put_varints_u32(unsigned char *q, const uint32_t *v, size_t n, int delta)
{
#define CODE(i) (delta ? zigzag((int64_t)v[i] - (int64_t)((i) ? v[(i) - 1] : 0)) : (uint64_t)v[i])
    size_t i = 0;
    if (n) { q = put_varint(q, CODE(0)); i = 1; }   /* (the blocks read the row before theirs) */
    for (; i + 8 <= n; i += 8) {
        U32x4 a0, a1, c0, c1;
        memcpy(&a0, v + i, 16); memcpy(&a1, v + i + 4, 16);
        if (delta) {
            U32x4 p0, p1;
            memcpy(&p0, v + i - 1, 16); memcpy(&p1, v + i + 3, 16);
            S32x4 d0 = (S32x4)(a0 - p0), d1 = (S32x4)(a1 - p1);
            c0 = (U32x4)((d0 << 1) ^ (d0 >> 31)); c1 = (U32x4)((d1 << 1) ^ (d1 >> 31));
            c0 |= (a0 | p0) & 0x80000000u; c1 |= (a1 | p1) & 0x80000000u;   /* (a row >= 2^31: not this way) */
        } else {
            c0 = a0; c1 = a1;
        }
        U32x4 any = c0 | c1;
        U64x2 w2;
        memcpy(&w2, &any, 16);
        if (__builtin_expect(((w2[0] | w2[1]) & 0xFFFFFF80FFFFFF80ull) == 0, 1)) {
#if defined(__SSE2__) && defined(__GNUC__)
            /* (the eight low bytes in order: two saturating packs, exact below 128) */
            __attribute__((vector_size(16))) short h = __builtin_ia32_packssdw128((S32x4)c0, (S32x4)c1);
            U64x2 b = (U64x2)__builtin_ia32_packuswb128(h, h);
            memcpy(q, &b, 8);
#else
            uint64_t w = 0;
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) w |= (uint64_t)c0[j] << (8 * j) | (uint64_t)c1[j] << (8 * j + 32);
            store_le64(q, w);
#endif
            q += 8;
            continue;
        }
        for (size_t j = i; j < i + 8; j++) q = put_varint(q, CODE(j));
    }
    for (; i < n; i++) q = put_varint(q, CODE(i));
#undef CODE
    return q;
}

/* A column of a chunk that its writer deflates (a MARK chunk of more than ZLIB_MIN_BYTES_PER_CALL
 * bytes a call: marks_payload's `dense`; and its batch's CALL and EXIT ids, deflated with it),
 * written in s->forced without measuring it: a u32 column as varints of its values
 * (ENC_VARINT), of their steps (ENC_VARINT_DELTA) or of its parent codes (ENC_PARENT), a u8 one
 * bit-packed (ENC_BITS; ENC_CONST when s->stats, its exact range, is one value). Golomb codes are smaller
 * stored as they are, but zlib finds the repeats of byte-aligned codes better than those of a
 * bit stream, whose repeats fall at any bit: a MARK chunk's `call` as varint steps deflates to
 * ~2/5 of its Golomb steps, `n` as varints to ~4/5 of its Golomb values, `kind` bit-packed to
 * ~4/3 of its Golomb steps (~0.01 byte a call), and measuring and coding them was ~20-27
 * instructions a row against ~2-7 (callgrind, benchmarks' generators --no-args). */
static unsigned char *
forced_body(unsigned char *q, const ColSpec *s, size_t rows, uint64_t base, int *enc)
{
    if (s->width == 1) {
        const ColStats *st = s->stats;
        *enc = st->lo == st->hi ? ENC_CONST : ENC_BITS;
        q = put_varint(q, (uint64_t)st->lo);
        if (*enc == ENC_CONST) return q;
        int bits = bit_len((uint64_t)(st->hi - st->lo));
        *q++ = (unsigned char)bits;
        return put_packed(q, s->v, 1, rows, (uint64_t)st->lo, bits);
    }
    *enc = s->forced;
    if (s->forced == ENC_PARENT) {
        for (size_t i = 0; i < rows; i++) {
            uint64_t c = parent_code(s->v, i, base);
            if (c < 0x80) *q++ = (unsigned char)c;   /* (nearly every row: a walk of < 64 steps) */
            else q = put_varint(q, c);
        }
        return q;
    }
    return s->forced == ENC_VARINT_DELTA ? put_varints_u32(q, s->v, rows, 1) : put_varints_u32(q, s->v, rows, 0);
}

#define COLUMN_BODY(W) static unsigned char * \
    column_body_##W(unsigned char *q, const ColSpec *s, size_t rows, uint64_t base, int *enc) \
    { return column_body(q, s, W, rows, base, enc); }
COLUMN_BODY(1)
COLUMN_BODY(4)
COLUMN_BODY(8)
#undef COLUMN_BODY

/* A CALL / EXIT / MARK payload: the columns header, the descriptors, then each column as
 * u32 byte count + its body. A new bytes object, or NULL with an exception set. */
static PyObject *
columns_payload(uint64_t base, size_t rows, const ColSpec *cols, int ncols)
{
    Out *o = &scratch;
    o->len = 0;
    if (out_reserve(o, 16 + (size_t)ncols * (8 + 4 + 17 * rows + 11)) < 0) return NULL;   /* (a Golomb code: <= 129 bits) */
    unsigned char *q = o->p;
    q = put_le(q, base, 8); q = put_le(q, rows, 4); q = put_le(q, (uint64_t)ncols, 2); q = put_le(q, 0, 2);
    unsigned char *desc = q;
    q += 8 * (size_t)ncols;
    for (int k = 0; k < ncols; k++) {
        const ColSpec *s = &cols[k];
        int enc;
        unsigned char *body = q + 4;
        if (s->share) {
            q = shared_body(body, s);
            enc = ENC_SHARED;
        } else if (s->at && !s->nzv) {
            q = sparse_rows_body(body, s, rows, &enc);
        } else if (s->forced) {
            q = forced_body(body, s, rows, base, &enc);
        } else {
            q = s->width == 8 ? column_body_8(body, s, rows, base, &enc)
                : s->width == 4 ? column_body_4(body, s, rows, base, &enc) : column_body_1(body, s, rows, base, &enc);
        }
        put_le(body - 4, (uint64_t)(q - body), 4);
        unsigned char *d = desc + 8 * k;
        memset(d, ' ', 4);
        memcpy(d, s->name, strlen(s->name));
        d[4] = (unsigned char)s->tc;
        d[5] = (unsigned char)enc;
        d[6] = d[7] = 0;
    }
    o->len = (size_t)(q - o->p);
    PyObject *r = payload_bytes(o->len);
    if (r) memcpy(PyBytes_AS_STRING(r), o->p, o->len);
    return r;
}

/* Is any of the column's bytes not 0? (words_equal's 64 bytes at a time: the optional columns
 * are read whole for every chunk, and are mostly all zeros) */
static int
any_nonzero(const void *v, size_t n, int width)
{
    const unsigned char *b = v;
    size_t len = n * (size_t)width, i = words_equal(b, len, 0);
    for (; i < len; i++) if (b[i]) return 1;
    return 0;
}

/* lo, hi and the rows not 0 of a u32 column (string ids, call ids), 16 bytes a step: each
 * lane's smallest and largest and its count of zeros in three vectors (~3 instructions a row,
 * against ~6 in renumber's loop), folded after; the last rows one by one. The lanes are
 * compared signed (one SSE2 compare each) with their top bit flipped, which orders them as
 * unsigned: a call id may reach 2^31. */
typedef int32_t I32x4 __attribute__((vector_size(16)));
static void
u32_stats(const uint32_t *v, size_t n, ColStats *st)
{
    uint32_t lo = UINT32_MAX, hi = 0;
    size_t zeros = 0, i = 0;
    if (n >= 8) {
        const I32x4 top = {INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN};
        I32x4 a, z, x, zc = {0, 0, 0, 0};
        memcpy(&a, v, 16);
        a ^= top;
        z = a;
        for (; i + 4 <= n; i += 4) {
            memcpy(&x, v + i, 16);
            x ^= top;   /* (0 is now INT32_MIN) */
            I32x4 m = a > x; a = (x & m) | (a & ~m);
            m = x > z; z = (x & m) | (z & ~m);
            zc += x == top;   /* (-1 in a lane that is 0; a lane counts <= 2^30 rows) */
        }
        a ^= top; z ^= top;
        for (int k = 0; k < 4; k++) {
            lo = (uint32_t)a[k] < lo ? (uint32_t)a[k] : lo;
            hi = (uint32_t)z[k] > hi ? (uint32_t)z[k] : hi;
            zeros += (size_t)-(int64_t)zc[k];
        }
    }
    for (; i < n; i++) {
        uint32_t x = v[i];
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
        zeros += x == 0;
    }
    *st = (ColStats){lo, hi, n - zeros};
}

/* A column of provisional string ids to final ones (0: none, or one out of range), in place,
 * and its stats counted after (the encoder then reads it once less). remap has a 0 before it
 * (remap[-1], core_drain), which id 0 and an id out of range read: one test a row, for a final
 * id (rare), ~9 instructions an id with u32_stats' ~3 (final_id's two tests and the stats in
 * the same loop were ~17). */
static inline uint32_t
renumber_one(uint32_t id, const uint32_t *by_id, uint32_t top)
{
    if (__builtin_expect(id & FINAL_ID, 0)) return id & ~FINAL_ID;
    return by_id[id <= top ? id : 0];
}

static void
renumber(uint32_t *ids, size_t n, size_t nstrs, const uint32_t *remap, int none, ColStats *st)
{
    *st = (ColStats){0, 0, 0};
    /* `none`: the column holds no id. Its rows are left as they are, not zeroed (~8
     * instructions a call of every --no-args drain, fib): a column whose rows are all 0 is left
     * out of the payload, and nothing else reads it (the callbacks write every row anew). */
    if (none || !n) return;
    const uint32_t *by_id = remap - 1;   /* (by_id[0]: the 0 before remap) */
    uint32_t top = (uint32_t)nstrs;   /* (nstrs < FINAL_ID: provisional ids are u32 below it) */
    size_t i = 0;
    /* Eight rows a step whose ids are all provisional and in range (nearly every step): told
     * by one vector compare (the lanes' top bit flipped: ordered as unsigned, a final id is
     * above top), then each id looked up with no test (~4.5 instructions a row, against ~10
     * with the two tests a row below: CALL.args and EXIT.val, oop and threaded). */
    const I32x4 flip = {INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN};
    const I32x4 lim = (I32x4){(int32_t)top, (int32_t)top, (int32_t)top, (int32_t)top} ^ flip;
    for (; i + 8 <= n; i += 8) {
        I32x4 a, b;
        memcpy(&a, ids + i, 16); memcpy(&b, ids + i + 4, 16);
        I32x4 out = ((a ^ flip) > lim) | ((b ^ flip) > lim);
        U64x2 w;
        memcpy(&w, &out, 16);
        if (__builtin_expect(w[0] | w[1], 0)) {   /* (a final id or one out of range: as below) */
            for (size_t j = i; j < i + 8; j++) ids[j] = renumber_one(ids[j], by_id, top);
            continue;
        }
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) ids[i + (size_t)j] = by_id[ids[i + (size_t)j]];
    }
#pragma GCC unroll 2
    for (; i < n; i++) ids[i] = renumber_one(ids[i], by_id, top);
    u32_stats(ids, n, st);
}

/* Without argument capture an EXIT row's val is 0 but on a raise's row (its exception's text:
 * a return's value is not captured, an unfinished call has none): the rows whose `how` is not
 * END_RETURN, 8 `how` bytes at a time (most rows are returns), into at; their count. Each word's
 * bytes that differ get their high bit set (a borrow-free test), and those rows are taken one
 * set bit at a time: ~4 instructions a raise row, against ~3 for each of the word's 8 rows
 * (~8 a row of exceptions' EXIT chunks, a raise every third row: callgrind). */
static size_t
raise_rows(const uint8_t *how, size_t n, uint32_t *at)
{
    const uint64_t returns = END_RETURN * 0x0101010101010101ull, low7 = 0x7f7f7f7f7f7f7f7full;
    size_t m = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, how + i, 8);
        w ^= returns;   /* (0 bytes: returns) */
#if PY_BIG_ENDIAN
        w = __builtin_bswap64(w);   /* (row i's byte the lowest) */
#endif
        uint64_t high = (((w & low7) + low7) | w) & ~low7;   /* a byte's high bit: that byte is not 0 */
        for (; high; high &= high - 1) at[m++] = (uint32_t)(i + ((size_t)__builtin_ctzll(high) >> 3));
    }
    for (; i < n; i++) if (how[i] != END_RETURN) at[m++] = (uint32_t)i;
    return m;
}

/* renumber for the rows at[0..nat) of a column that is 0 elsewhere (raise_rows), into `dense`:
 * the rows whose id is not 0 are kept -- at[j] and dense[j], j < the count returned, in row
 * order -- so that sparse_rows_body reads those rows' values one after another and tests none
 * for 0 (its sample pass then visits only the rows it samples). The column itself is left as
 * it was: nothing reads it after. */
static size_t
renumber_at(const uint32_t *ids, uint32_t *at, size_t nat, size_t nstrs, const uint32_t *remap, uint32_t *dense,
            ColStats *st)
{
    uint32_t hi = 0;
    size_t m = 0;
    for (size_t j = 0; j < nat; j++) {
        uint32_t row = at[j], id = final_id(ids[row], nstrs, remap);
        at[m] = row; dense[m] = id;   /* (kept, or written over by the next row: m moves only past an id) */
        hi = id > hi ? id : hi;
        m += id != 0;
    }
    *st = (ColStats){0, hi, m};   /* (lo: the other rows' 0 -- fewer rows than the column's) */
    return m;
}

/* A column of ticks to ns since `origin`, in place: tick_to_ns's value, with its factor in 64
 * bits (any clock of 1 MHz or more): one unsigned 64x64->128 bit multiply, ~8 instructions a
 * value against ~17 for the signed 128-bit one. */
static void
ticks_to_ns(const TickMap *m, int64_t *t, size_t n, int64_t origin)
{
    if (m->identity) {
        for (size_t i = 0; i < n; i++) t[i] -= origin;
    } else if (m->mult64 && m->mult64 < (uint64_t)1 << TICK_SHIFT) {
        /* (a tick clock faster than 1 GHz: mult < 2^TICK_SHIFT) The same value from the product's
         * high word: with the factor shifted up by 64 - TICK_SHIFT, (d * mult + half) >> TICK_SHIFT
         * is (d * (mult << (64 - TICK_SHIFT)) + 2^63) >> 64 exactly -- the rounding add is on the low word
         * and a carry, and no 128-bit shift (~13 instructions a value -> ~10). */
        uint64_t mult = m->mult64 << (64 - TICK_SHIFT), before = 0;
        int64_t tick0 = m->a.tick, ns0 = m->a.ns - origin;
#pragma GCC unroll 2
        for (size_t i = 0; i < n; i++) {
            uint64_t d = (uint64_t)(t[i] - tick0);
            before |= d;   /* (top bit: a tick before the anchor, rare: done again below) */
            t[i] = ns0 + (int64_t)(uint64_t)(((unsigned __int128)d * mult + ((uint64_t)1 << 63)) >> 64);
        }
        if (__builtin_expect(before >> 63, 0)) {
            /* A row before the anchor (d < 0 as signed) took d + 2^64: its high word is mult
             * too large, and >= (mult + 1) / 2, which a tick less than 2^62 after the anchor
             * (~48 years at 3 GHz) never reaches: those rows are told by it and mended. */
            for (size_t i = 0; i < n; i++)
                if ((uint64_t)t[i] - (uint64_t)ns0 >= (mult >> 1) + (mult & 1)) t[i] -= (int64_t)mult;
        }
    } else if (m->mult64) {
        uint64_t mult = m->mult64;
        int64_t tick0 = m->a.tick, ns0 = m->a.ns - origin;
#pragma GCC unroll 2   /* (one loop test for two values: ~14 instructions a value -> ~12.5) */
        for (size_t i = 0; i < n; i++) {
            uint64_t d = (uint64_t)(t[i] - tick0);
            unsigned __int128 x = (unsigned __int128)d * mult;   /* one mul */
            if (__builtin_expect((int64_t)d < 0, 0)) x -= (unsigned __int128)mult << 64;   /* (a tick before the anchor, rare: the signed product; a branch, not ~4 instructions of selects) */
            x += (unsigned __int128)1 << (TICK_SHIFT - 1);
            t[i] = ns0 + (int64_t)((__int128)x >> TICK_SHIFT);
        }
    } else {
        for (size_t i = 0; i < n; i++) t[i] = tick_to_ns(m, t[i]) - origin;
    }
}

/* The rows of a batch's MARK chunk, in its order, into perm (their indices): the rows kept
 * (kind not 0) -- the held ones first as they are (ns already, older than every other: see
 * hold_handled), then the others by time, stably. The quiet runs' resume rows written late
 * (quiet_end_slow, callbacks.c) and the fold rows (written at their last yield, dated at their
 * first resume) come after rows written during their run: each is moved back past those, an
 * insertion sort of 4-byte indices (the rows themselves, then 56 bytes, moved: marks_by_time did,
 * ~1.6 M instructions of benchmarks' generators --no-args at scale 3, a third of whose rows are
 * late). A MARK chunk's times code as rising steps (ENC_GOLOMB_RISE) only when no step goes
 * down. The count kept is returned; *nheld_kept: how many of them are held rows. */
/* (Tried, flask's test_basic -- 523 K mark rows, 111 K of them late by 3.4 places on average,
 * 86 K folds: gathering the columns in this pass, the rows read once and a late row moving
 * every column: core_drain +3.5 and +5.1 samples a run, 8 and 6 pairs at 20 kHz; the rows
 * fetched 16 ahead in this pass and the gather's: +6.6; the gather's fold rows taken with no
 * branch (141 K changes between a fold row and another): +3.2. None kept: the rows' second read
 * is not what waits.) */
static size_t
rows_by_time(const MarkRow *m, size_t nrows, size_t nheld, uint32_t *perm, size_t *nheld_kept)
{
    size_t n = 0;
    for (size_t i = 0; i < nheld; i++) if (m[i].kind) perm[n++] = (uint32_t)i;
    size_t from = *nheld_kept = n;
    int64_t last = INT64_MIN;   /* (the latest time so far: the sorted rows' last) */
    for (size_t i = nheld; i < nrows; i++) {
        if (!m[i].kind) continue;
        int64_t t = m[i].t;
        if (t >= last) { perm[n++] = (uint32_t)i; last = t; continue; }
        size_t j = n++;
        do { perm[j] = perm[j - 1]; j--; } while (j > from && m[perm[j - 1]].t > t);
        perm[j] = (uint32_t)i;
    }
    return n;
}

/* A batch's MARK payload (None when it has no rows; NULL with an exception set). Marks are
 * rows: made into columns first (rows_by_time's order), in one pass; times converted to ns
 * relative to `origin` after, a column at a time (ticks_to_ns: ~10 instructions a value against
 * tick_to_ns' ~17 in the row loop), string ids made final. */
/* marks_payload's columns (61 bytes a row), a kept block (KeptBlock): made at every batch it
 * took ~180 page faults a backpressure batch of 24 K mark rows (flask's test_basic: getrusage
 * around the gather loop; 0-5 kept). */
static KeptBlock mark_cols_block;

static PyObject *
marks_payload(const Swapped *w, const TickMap *tmap, int64_t origin, const uint32_t *remap, size_t strs, int *dense)
{
    size_t nrows = w->nmarks, need = nrows * (3 * 8 + 9 * 4 + 1);
    if (!nrows) return Py_NewRef(Py_None);
    /* (a quarter more: backpressure's batches differ by a few rows, 23,966 then 23,974 -- each a
     * new block, faulted in again) */
    unsigned char *mem = kept_room(&mark_cols_block, need, need / 4);
    if (!mem) return PyErr_NoMemory();
    int64_t *mt = (int64_t *)mem, *frun = mt + nrows, *fspan = frun + nrows;
    uint32_t *mc = (uint32_t *)(fspan + nrows), *mr = mc + nrows, *mo = mr + nrows, *fn_ = mo + nrows;
    /* (fat, fnv: the fold rows' places and n; oat, ov: the places and othr of the rows whose
     * othr is not 0 -- those columns' rows not 0, for their sparse codings: column_body) */
    uint32_t *perm = fn_ + nrows, *fat = perm + nrows, *fnv = fat + nrows, *oat = fnv + nrows, *ov = oat + nrows;
    uint8_t *mk = (uint8_t *)(ov + nrows);
    size_t held;
    size_t n = rows_by_time(w->marks, nrows, w->nheld, perm, &held);
    if (!n) return Py_NewRef(Py_None);
    enum { S_CALL, S_KIND, S_REF, S_OTHR, S_N, NSTATS };
    ColStats st[NSTATS];
    memset(fn_, 0, n * sizeof *fn_);   /* (n: 0 but on the fold rows) */
    /* (kind: the kinds seen, one bit each -- 1..6, never 0 here; othr and ref: any row not 0,
     * their stats counted after only then -- nearly always 0 (othr: exceptions; ref: without
     * argument capture but for exceptions); n's stats from the folds alone) */
    uint64_t kinds = 0;
    uint32_t any_ref = 0, n_lo = UINT32_MAX, n_hi = 0;
    size_t nfolds = 0, n_nonzero = 0, nothr = 0;
    for (size_t j = 0; j < n; j++) {
        const MarkRow *r = &w->marks[perm[j]];
        mc[j] = r->call; mt[j] = r->t; mk[j] = r->kind; mo[j] = r->othr; mr[j] = r->ref;
        kinds |= (uint64_t)1 << (r->kind & 63);
        any_ref |= r->ref;
        oat[nothr] = (uint32_t)j; ov[nothr] = r->othr; nothr += r->othr != 0;   /* (no branch: ~60% of generators' rows) */
        if (r->kind == MARK_FOLD) {   /* run and span: the fold rows' only (ENC_SHARED, on n's rows: n >= 1) */
            const MarkRow *tail = r + 1;   /* (n, run, t2: MarkRow) */
            uint32_t fn = tail->n;
            fn_[j] = fnv[nfolds] = fn;
            n_lo = fn < n_lo ? fn : n_lo; n_hi = fn > n_hi ? fn : n_hi; n_nonzero += fn != 0;
            fat[nfolds] = (uint32_t)j;
            frun[nfolds] = r->t + tail->run;   /* (ticks: both ends through the same monotonic map */
            fspan[nfolds++] = tail->t2;        /* below, so 0 <= run <= span in ns too) */
        }
    }
    for (size_t j = 0; j < held; j++) mt[j] -= origin;   /* (held rows: ns already) */
    ticks_to_ns(tmap, mt + held, n - held, origin);
    ticks_to_ns(tmap, frun, nfolds, origin);
    ticks_to_ns(tmap, fspan, nfolds, origin);
    for (size_t f = 0; f < nfolds; f++) { frun[f] -= mt[fat[f]]; fspan[f] -= mt[fat[f]]; }
    st[S_KIND] = (ColStats){__builtin_ctzll(kinds), 63 - __builtin_clzll(kinds), n};
    u32_stats(mc, n, &st[S_CALL]);   /* (after the loop, four rows a step: ~5 instructions a row less) */
    if (any_ref) renumber(mr, n, w->nstrs, remap, 0, &st[S_REF]);   /* (final ids: final_id's) */
    else st[S_REF] = (ColStats){0, 0, 0};
    st[S_OTHR] = (ColStats){0, 0, 0};
    if (nothr) {   /* (u32_stats' figures: the other rows are 0) */
        u32_stats(ov, nothr, &st[S_OTHR]);
        if (nothr < n) st[S_OTHR].lo = 0;
    }
    st[S_N] = (ColStats){nfolds < n ? 0 : n_lo, n_hi, n_nonzero};   /* (u32_stats' figures: the rows not folds are 0) */
    ColSpec mark[8] = {{"call", 'I', mc, 4, 0, W_DELTA | W_PLAIN, &st[S_CALL]}, {"t", 'q', mt, 8, 0, W_RISE},
                       {"kind", 'B', mk, 1, 0, W_PLAIN | W_DELTA, &st[S_KIND]}};
    int k = 3;   /* ref and othr left out when every row is 0 (exceptions: othr), as the CALL columns */
    if (st[S_REF].nonzero) mark[k++] = (ColSpec){"ref", 'I', mr, 4, 0, W_ALL, &st[S_REF]};
    if (st[S_OTHR].nonzero) mark[k++] = (ColSpec){"othr", 'I', mo, 4, 0, W_ALL, &st[S_OTHR], .at = oat, .nat = nothr, .nzv = ov};
    if (st[S_N].nonzero) {   /* fold columns only with folds (1.1: n >= 1) */
        uint8_t n_col = (uint8_t)(k + 1);
        mark[k++] = (ColSpec){"n", 'I', fn_, 4, 0, W_ALL, &st[S_N]};
        if (n_nonzero == nfolds) mark[k - 1].at = fat, mark[k - 1].nat = nfolds, mark[k - 1].nzv = fnv;
        mark[k++] = (ColSpec){"run", 'q', frun, 8, 0, 0, NULL, n_col, nfolds};
        mark[k++] = (ColSpec){"span", 'q', fspan, 8, 0, 0, NULL, n_col, nfolds};
    }
    /* A chunk that its writer deflates for sure (writer.py's _worth_zlib: more than
     * ZLIB_MIN_BYTES_PER_CALL bytes a call of the batch, and the batch's `strs` bytes of STRS
     * payload at most ZLIB_MAX_STRS_PER_MARK times the chunk's) -- at least that many bytes with
     * a varint a row of `call` and of `n` alone -- has those and `kind` written byte-aligned
     * (forced_body): zlib's input, smaller deflated and cheaper to make. */
    size_t least = 16 + 12 * (size_t)k + n + (st[S_N].nonzero ? n : 0);
    *dense = least > ZLIB_MIN_BYTES_PER_CALL * w->ncalls && strs <= ZLIB_MAX_STRS_PER_MARK * least;
    if (*dense) {
        mark[0].forced = ENC_VARINT_DELTA;
        mark[2].forced = ENC_BITS;
        for (int j = 3; j < k; j++) if (!strcmp(mark[j].name, "n")) mark[j].forced = ENC_VARINT;
    }
    return columns_payload(0, n, mark, k);
}

/* The CALL, EXIT and MARK payloads of one batch (each None when it has no rows). Times are
 * converted to ns relative to `origin` and string ids renumbered, in place. */
static int
encode_rows(Swapped *w, const TickMap *tmap, int64_t origin, const uint32_t *remap, int args_mode, size_t strs,
            PyObject *out[3])
{
    /* (the MARK chunk first: when its writer deflates it, CALL's and EXIT's ids are deflated
     * too -- writer.py's _DEFLATED_WITH_MARKS -- and written byte-aligned as its own: forced_body) */
    int dense = 0;
    out[2] = marks_payload(w, tmap, origin, remap, strs, &dense);
    if (!out[2]) return -1;
    CallCols *cc = &w->calls;
    size_t n = w->ncalls;
    ColStats args;
    /* (--no-args: no argument texts, and no final ids: FINAL_ID is for captured values only) */
    renumber(cc->args, n, w->nstrs, remap, !args_mode, &args);
    ticks_to_ns(tmap, cc->t0, n, origin);
    ColSpec call[7] = {{"par", 'I', cc->par, 4, 1, 0}, {"fn", 'I', cc->fn, 4, 0, W_PLAIN | W_DELTA},
                       {"thr", 'I', cc->thr, 4, 0, W_PLAIN | W_DELTA}, {"t0", 'q', cc->t0, 8, 0, W_RISE}};
    if (dense) call[0].forced = ENC_PARENT, call[1].forced = ENC_VARINT_DELTA;
    int k = 4;   /* optional columns: left out when every row is 0 (readers default to 0) */
    if (args.nonzero) call[k++] = (ColSpec){"args", 'I', cc->args, 4, 0, W_ALL, &args};
    if (any_nonzero(cc->task, n, 4)) call[k++] = (ColSpec){"task", 'I', cc->task, 4, 0, W_ALL};
    if (any_nonzero(cc->flag, n, 1)) call[k++] = (ColSpec){"flag", 'B', cc->flag, 1, 0, W_ALL};
    out[0] = n ? columns_payload(w->call_first_id, n, call, k) : Py_NewRef(Py_None);
    if (!out[0]) return -1;

    ExitCols *ec = &w->exits;
    n = w->nexits;
    ColStats val;
    /* (exception texts even with --no-args, as entries or final ids) */
    uint32_t *raised = NULL;
    size_t nraised = 0;
    int none = !args_mode && !w->nstrs && !w->exc_finals;
    if (!args_mode && !none && n) {   /* the rows that may hold an id: raise_rows */
        /* (the raise rows, then their ids, dense: renumber_at) */
        if (!(raised = PyMem_RawMalloc(2 * n * sizeof(uint32_t)))) { PyErr_NoMemory(); return -1; }
        nraised = raise_rows(ec->how, n, raised);
        /* (more raises than returns: the usual coder, whose dense codings may beat a bitmap's
         * bit a row) */
        if (nraised > n / 2) { PyMem_RawFree(raised); raised = NULL; }
        else nraised = renumber_at(ec->val, raised, nraised, w->nstrs, remap, raised + n, &val);
    }
    if (!raised) renumber(ec->val, n, w->nstrs, remap, none, &val);
    ticks_to_ns(tmap, ec->t1, n, origin);
    ColSpec exit[4] = {{"call", 'I', ec->call, 4, 0, W_DELTA}, {"t1", 'q', ec->t1, 8, 0, W_RISE},
                       {"how", 'B', ec->how, 1, 0, W_PLAIN | W_DELTA}};
    if (dense) exit[0].forced = ENC_VARINT_DELTA;
    k = 3;
    if (val.nonzero) exit[k++] = (ColSpec){"val", 'I', raised ? raised + n : ec->val, 4, 0, W_ALL, &val,
                                           .at = raised, .nat = nraised};
    out[1] = n ? columns_payload(0, n, exit, k) : Py_NewRef(Py_None);
    PyMem_RawFree(raised);
    return out[1] ? 0 : -1;
}

/* The `handled` rows that a re-raise may still take back -- each the latest mark of a call
 * still running, its entry's hmark (cb_reraise) -- are held back from this batch: moved to the
 * start of the fresh buffer (older than every row to come), their time in ns now (this batch's
 * map), their text's id made final after strings_batch; the entry follows its row. So whether a
 * re-raise takes a mark back does not depend on where a drain fell (python.py's
 * _keep_marks_back). A held row whose call is still running is held again. Runs no Python. */
static void
hold_handled(CoreObject *c, Swapped *w, const TickMap *tmap)
{
    uint32_t old = (uint32_t)(c->batch - 1), now = (uint32_t)c->batch;   /* (batch was counted up) */
    for (ThreadState *ts = all_threads.next; ts != &all_threads; ts = ts->next) {
        if (ts->gen != c->gen) continue;
        for (size_t i = 0; i < ts->depth; i++) {
            Entry *e = &ts->stack[i];
            if (!e->hmark) continue;
            MarkRow *r = e->qbatch == old && e->hmark <= w->nmarks ? &w->marks[e->hmark - 1] : NULL;
            e->hmark = 0;
            if (!r || r->kind != MARK_HANDLED || r->call != e->call) continue;
            if (c->nmarks == c->capmarks && grow_marks(c, c->nmarks + 1) < 0) {
                PyErr_Clear();   /* no memory: this row stays in this batch (as before holding) */
                c->nheld = c->nmarks;
                return;
            }
            MarkRow *h = &c->marks[c->nmarks++];
            *h = *r;
            if ((size_t)(r - w->marks) >= w->nheld) h->t = tick_to_ns(tmap, r->t);
            r->kind = 0;   /* not in this batch */
            e->hmark = (uint32_t)c->nmarks; e->qbatch = now;
        }
    }
    c->nheld = c->nmarks;
}

/* The drained buffers, emptied, back to the batch that the drain began on fresh ones -- each
 * that no callback wrote to meanwhile (none ran: the usual case, unless rendering let another
 * thread run), the `handled` rows hold_handled moved aside taken along -- and the fresh ones,
 * still unwritten (or never made), into the swap-out: the spares then. So one set of buffers
 * takes every batch while the drains run alone, and the other costs no page: the second batch
 * started on a set of its own, faulted in page by page (benchmarks' threaded: its first run()
 * is ~2.4 batches, ~2,460 page faults, ~720 fewer this way). */
static void
reuse_drained(CoreObject *c, Swapped *w, RecItem **items, size_t *capitems, char **labs, size_t *caplabs)
{
#define REUSE(cur, cap, old, oldcap) do { void *p_ = (cur); size_t k_ = (cap); \
        (cur) = (old); (cap) = (oldcap); (old) = p_; (oldcap) = k_; } while (0)
    if (!c->ncalls) {
        CallCols k = c->calls;
        c->calls = w->calls; w->calls = k;
        size_t cap = c->capcalls; c->capcalls = w->capcalls; w->capcalls = cap;
    }
    if (!c->nexits) {
        ExitCols k = c->exits;
        c->exits = w->exits; w->exits = k;
        size_t cap = c->capexits; c->capexits = w->capexits; w->capexits = cap;
    }
    if (c->nmarks == c->nheld && w->capmarks >= c->nheld) {   /* (the held rows, at their places: Entry.hmark) */
        if (c->nheld) memcpy(w->marks, c->marks, c->nheld * sizeof(MarkRow));
        REUSE(c->marks, c->capmarks, w->marks, w->capmarks);
    }
    if (!c->nstrs) REUSE(c->strs, c->capstrs, w->strs, w->capstrs);
    if (!c->nslots) REUSE(c->slots, c->capslots, w->slots, w->capslots);
    if (!c->npacked) REUSE(c->packed, c->cappacked, w->packed, w->cappacked);
    if (!c->nrec_items && !c->nrec_labs) {
        REUSE(c->rec_items, c->caprec_items, *items, *capitems);
        REUSE(c->rec_labs, c->caprec_labs, *labs, *caplabs);
    }
#undef REUSE
}

PyObject *
core_drain(CoreObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) { PyErr_SetString(PyExc_TypeError, "drain(render_obj, type_label, origin_ns)"); return NULL; }
    int64_t origin = PyLong_AsLongLong(args[2]);
    if (origin == -1 && PyErr_Occurred()) return NULL;
    quiet_end_all(c);   /* the running generators' held-back resume rows into this batch (callbacks.c) */
    /* Swap everything out first (no Python code runs until this is done): callbacks on other
     * threads, which may run while rendering releases the GIL, start on fresh buffers. */
    Swapped w = {
        c->calls, c->ncalls, c->call_first_id, c->capcalls, c->exits, c->nexits, c->capexits,
        c->marks, c->nmarks, c->capmarks, c->nheld, c->strs, c->nstrs, c->capstrs, c->slots, c->nslots, c->capslots,
        c->packed, c->npacked, c->cappacked, c->exc_finals,
    };
    c->exc_finals = 0;
    c->rec_epoch++; c->rec_next = 0;   /* a new record dictionary for the new batch's entries (args_record) */
    c->calls = spare_calls; c->capcalls = cap_spare_calls; memset(&spare_calls, 0, sizeof spare_calls); cap_spare_calls = 0;
    c->exits = spare_exits; c->capexits = cap_spare_exits; memset(&spare_exits, 0, sizeof spare_exits); cap_spare_exits = 0;
    c->marks = c->spare_marks; c->capmarks = c->cap_spare_marks; c->spare_marks = NULL; c->cap_spare_marks = 0;
    c->ncalls = c->nexits = c->nmarks = c->nheld = 0;
    c->call_first_id = c->next_call_id;
    c->strs = c->spare_strs; c->capstrs = c->cap_spare_strs; c->spare_strs = NULL; c->cap_spare_strs = 0;
    c->slots = c->spare_slots; c->capslots = c->cap_spare_slots; c->spare_slots = NULL; c->cap_spare_slots = 0;
    c->packed = c->spare_packed; c->cappacked = c->cap_spare_packed; c->spare_packed = NULL; c->cap_spare_packed = 0;
    c->nstrs = c->nslots = c->npacked = 0;
    reserve_texts(c);   /* (the first drain's fresh set: buffers.c) */
    RecItem *items = c->rec_items;   /* (the record dictionary numbered at call time goes with its entries) */
    size_t nitems = c->nrec_items, capitems = c->caprec_items, caplabs = c->caprec_labs;
    char *labs = c->rec_labs;
    c->rec_items = spare_items; c->caprec_items = cap_spare_items; spare_items = NULL; cap_spare_items = 0;
    c->rec_labs = spare_labs; c->caprec_labs = cap_spare_labs; spare_labs = NULL; cap_spare_labs = 0;
    c->nrec_items = c->nrec_labs = 0;
    c->rec_addr = 0;
    c->overflow_at = c->overflow_rows;   /* rows are gone: back to the cap */
    c->batch++;   /* provisional string ids start again: drop the exception-text caches */
    /* this batch's ticks -> ns: the line from the previous anchor to one read now (every row
     * swapped out was written before it; the next batch starts from it) */
    Anchor here = anchor_now();
    TickMap tmap = tick_map(c->anchor, here);
    c->anchor = here;
    hold_handled(c, &w, &tmap);

    PyObject *result = NULL, *strs_payload = NULL;
    size_t nnew = 0;
    int texts = 0;   /* remap holds this batch's final ids */
    uint32_t first_sid = c->next_final_sid;
    RenderCtx rc = {args[0], args[1], {{NULL}}, w.packed, w.npacked, w.packed, items, nitems, labs};
    /* (remap[-1]: a 0 that renumber reads for id 0 and ids out of range) */
    uint32_t *remap_mem = PyMem_RawMalloc((w.nstrs + 2) * sizeof(uint32_t)), *remap = remap_mem ? remap_mem + 1 : NULL;
    if (!remap) { PyErr_NoMemory(); goto done; }
    remap_mem[0] = 0;
    /* the texts: rendered, deduplicated, new ones into the STRS payload (render.c) */
    texts = strings_batch(c, &rc, w.strs, w.nstrs, w.slots, remap, &strs_payload, &nnew) == 0;
    if (!texts) goto done;
    result = PyDict_New();
    if (!result) goto done;
    {
        PyObject *payloads[3] = {NULL, NULL, NULL};
        size_t strs = strs_payload ? (size_t)PyBytes_GET_SIZE(strs_payload) : 0;   /* (the writer's zlib rule) */
        int failed = encode_rows(&w, &tmap, origin, remap, c->args_mode, strs, payloads) < 0;
        PyObject *sp = strs_payload ? strs_payload : Py_NewRef(Py_None);
        strs_payload = NULL;   /* (the loop below releases it) */
        struct { const char *name; PyObject *value; } items[] = {
            {"call_payload", payloads[0]}, {"exit_payload", payloads[1]}, {"mark_payload", payloads[2]},
            {"calls", PyLong_FromSize_t(w.ncalls)},
            {"strings_payload", sp},
            {"call_first_id", PyLong_FromUnsignedLong(w.call_first_id)},
            {"strings_first_id", PyLong_FromUnsignedLong(first_sid)},
            {"strings", PyLong_FromSize_t(nnew)},
        };
        for (size_t k = 0; k < sizeof items / sizeof items[0]; k++) {
            if (!items[k].value || PyDict_SetItemString(result, items[k].name, items[k].value) < 0) failed = 1;
            Py_XDECREF(items[k].value);
        }
        if (failed) Py_CLEAR(result);
    }
done:
    /* the held rows' texts are this batch's entries: their final ids (in this batch's STRS,
     * so before the next batch's MARK chunk), or none if the texts failed */
    for (size_t i = 0; i < c->nheld; i++) {
        MarkRow *r = &c->marks[i];
        uint32_t f = texts || (r->ref & FINAL_ID) ? final_id(r->ref, w.nstrs, remap) : 0;
        r->ref = f ? f | FINAL_ID : 0;
    }
    Py_XDECREF(strs_payload);
    labels_clear(&rc);
    PyMem_RawFree(remap_mem);
    /* The batch's references let go, each object's line fetched DROP_AHEAD entries before its
     * DECREF: most were last read when captured, up to a batch ago, and each DECREF waited on
     * its line -- about half of core_drain's own time in flask's test_basic (perf annotate).
     * (A NULL fetched is dropped by the processor: no test for it.) */
    size_t i = 0;
    for (; i + DROP_AHEAD < w.nstrs; i++) {
        __builtin_prefetch(w.strs[i + DROP_AHEAD].text, 1);
        Py_XDECREF(w.strs[i].text);
    }
    for (; i < w.nstrs; i++) Py_XDECREF(w.strs[i].text);
    for (i = 0; i + DROP_AHEAD < w.nslots; i++) {
        __builtin_prefetch(w.slots[i + DROP_AHEAD].o, 1);
        Py_XDECREF(w.slots[i].o);
    }
    for (; i < w.nslots; i++) Py_XDECREF(w.slots[i].o);
    tmemo_release();   /* (the objects the text memo let go of: render.c) */
    rec_items_clear(items, nitems);
    reuse_drained(c, &w, &items, &capitems, &labs, &caplabs);
#define KEEP_SPARE(buf, cap, spare, spare_cap) \
    if (!(spare)) { (spare) = (buf); (spare_cap) = (cap); } else PyMem_RawFree(buf)
    KEEP_SPARE(items, capitems, spare_items, cap_spare_items);
    KEEP_SPARE(labs, caplabs, spare_labs, cap_spare_labs);
    if (!spare_calls.par) { spare_calls = w.calls; cap_spare_calls = w.capcalls; } else free_calls(&w.calls);
    if (!spare_exits.call) { spare_exits = w.exits; cap_spare_exits = w.capexits; } else free_exits(&w.exits);
    if (!c->spare_marks) { c->spare_marks = w.marks; c->cap_spare_marks = w.capmarks; } else col_free(w.marks);
    KEEP_SPARE(w.strs, w.capstrs, c->spare_strs, c->cap_spare_strs);
    KEEP_SPARE(w.slots, w.capslots, c->spare_slots, c->cap_spare_slots);
    KEEP_SPARE(w.packed, w.cappacked, c->spare_packed, c->cap_spare_packed);
    return result;
}

/* ---- the readers' side: decode_varints(body, rows, encoding[, base]) -> rows i64 values ----
 * (flowtrace/ftr/format.py calls it when the extension is built; its pure-Python twin gives
 * the same values). ValueError when the body does not hold exactly `rows` values. */
int
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

static inline uint64_t
unzigzag(uint64_t v)
{
    return (v >> 1) ^ (0 - (v & 1));
}

/* Row i's parent from its ENC_PARENT code (rows before i decoded in out). */
static int
parent_of(const uint64_t *out, size_t i, uint64_t base, uint64_t code, uint64_t *parent)
{
    uint64_t id = base + i, q = id - 1;
    if (code & 1) q = id - 1 - unzigzag(code >> 1);
    else for (uint64_t k = code >> 1; k; k--) {   /* up the chain, through this chunk's rows */
        if (q < base || q - base >= i || out[q - base] >= q) return -1;   /* (parents come first) */
        q = out[q - base];
    }
    *parent = q;
    return 0;
}

/* A bit stream being read (put_golomb's): `pos` bits of `len` bytes read so far. */
typedef struct { const unsigned char *p; size_t len, pos; } BitIn;

static inline uint64_t
bits_window(const BitIn *b)   /* the next 57+ bits, first one in the high bit (0s past the end) */
{
    size_t at = b->pos >> 3;
    uint64_t w = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (at + 8 <= b->len) {   /* all but the stream's last bytes: one load, not 8 checked ones */
        memcpy(&w, b->p + at, 8);
        return __builtin_bswap64(w) << (b->pos & 7);
    }
#endif
    for (int i = 0; i < 8; i++) w = (w << 8) | (at + (size_t)i < b->len ? b->p[at + (size_t)i] : 0);
    return w << (b->pos & 7);
}

/* golomb_get's rare case: a code that does not fit one 57-bit window (or the stream's end). */
static int
golomb_get_long(BitIn *b, int k, uint64_t *out)
{
    int zeros = 0;
    for (;;) {   /* the 0s before the first 1 (at most 64) */
        if (b->pos >= 8 * b->len) return -1;
        uint64_t w = bits_window(b);
        int z = w ? __builtin_clzll(w) : 56;
        if (z > 56) z = 56;
        zeros += z;
        b->pos += (size_t)z;
        if (zeros > 64) return -1;
        if (z < 56) break;
    }
    int nb = zeros + k + 1;   /* x's bits, the leading 1 first */
    if (b->pos + (size_t)nb > 8 * b->len || nb > 65) return -1;
    unsigned __int128 x = 0;
    for (int left = nb; left > 0; ) {
        int take = left < 32 ? left : 32;
        x = (x << take) | (bits_window(b) >> (64 - take));
        b->pos += (size_t)take;
        left -= take;
    }
    x -= (unsigned __int128)1 << k;
    if (x >> 64) return -1;
    *out = (uint64_t)x;
    return 0;
}

static inline __attribute__((always_inline)) int
golomb_get(BitIn *b, int k, uint64_t *out)
{
    /* (The sparse columns' reader; whole Golomb columns go through code_get.) Nearly every
     * code (zeros, the leading 1, k bits: <= 57 bits in all) is in one window: read it from
     * there; the rest goes the long way. */
    uint64_t w = bits_window(b);
    if (__builtin_expect(w != 0, 1)) {
        int z = __builtin_clzll(w), nb = z + k + 1;
        if (__builtin_expect(z + nb <= 57 && b->pos + (size_t)(z + nb) <= 8 * b->len, 1)) {
            b->pos += (size_t)(z + nb);
            *out = ((w << z) >> (64 - nb)) - ((uint64_t)1 << k);
            return 0;
        }
    }
    return golomb_get_long(b, k, out);
}

/* A bit stream read code after code: `w` holds the next `have` bits (>= 57 after a refill;
 * 0s past the stream's end), first one in the high bit; `b.pos` counts the bits taken. Codes
 * come out of `w` by shifts: the stream is loaded again only when `w` runs short, not once
 * a code (the loader decodes ~10 codes a call). */
typedef struct { BitIn b; uint64_t w; int have; } CodeIn;

static inline void
code_refill(CodeIn *c)
{
    c->w = bits_window(&c->b);
    c->have = 64 - (int)(c->b.pos & 7);
}

static inline __attribute__((always_inline)) int
code_get(CodeIn *c, int k, uint64_t *out)
{
    int z, nb;
    if (__builtin_expect(c->w != 0, 1)) {
        z = __builtin_clzll(c->w);
        nb = z + k + 1;
        if (__builtin_expect(z + nb <= c->have && c->b.pos + (size_t)(z + nb) <= 8 * c->b.len, 1))
            goto take;
    }
    code_refill(c);
    if (c->w != 0) {
        z = __builtin_clzll(c->w);
        nb = z + k + 1;
        if (z + nb <= c->have && c->b.pos + (size_t)(z + nb) <= 8 * c->b.len) goto take;
    }
    if (golomb_get_long(&c->b, k, out) < 0) return -1;   /* longer than a window, or the end */
    code_refill(c);
    return 0;
take:
    *out = ((c->w << z) >> (64 - nb)) - ((uint64_t)1 << k);
    c->b.pos += (size_t)(z + nb);
    c->have -= z + nb;
    c->w = z + nb < 64 ? c->w << (z + nb) : 0;
    return 0;
}

/* ENC_GOLOMB*: the order k, then a code a row; the body ends within the last code's byte.
 * One loop per encoding: the choice is made once a column, not once a row. */
static int
decode_golomb(const unsigned char *p, const unsigned char *end, size_t rows, long enc, uint64_t base, uint64_t *out)
{
    if (p >= end || *p > 63) return -1;
    int k = *p++;
    CodeIn c = {{p, (size_t)(end - p), 0}, 0, 0};
    code_refill(&c);
    uint64_t v, acc = 0;
    size_t i;
    if (enc == ENC_GOLOMB_DELTA) {
        for (i = 0; i < rows; i++) {
            if (code_get(&c, k, &v) < 0) return -1;
            out[i] = acc = acc + unzigzag(v);
        }
    } else if (enc == ENC_GOLOMB_RISE) {
        for (i = 0; i < rows; i++) {
            if (code_get(&c, k, &v) < 0) return -1;
            out[i] = acc = acc + v;
        }
    } else if (enc == ENC_GOLOMB) {
        for (i = 0; i < rows; i++) {
            if (code_get(&c, k, &v) < 0) return -1;
            out[i] = v;
        }
    } else {
        for (i = 0; i < rows; i++)
            if (code_get(&c, k, &v) < 0 || parent_of(out, i, base, v, &out[i]) < 0) return -1;
    }
    return (c.b.pos + 7) / 8 == c.b.len ? 0 : -1;
}

/* ENC_BITS' rows after the minimum and the width: `width` bits a row from `p` (n bytes). */
static void
decode_bits(const unsigned char *p, size_t n, size_t rows, unsigned width, uint64_t lo, uint64_t *out)
{
    uint64_t mask = width == 64 ? ~(uint64_t)0 : (((uint64_t)1 << width) - 1);
    size_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (width <= 56)   /* a row's bits are inside the 8 bytes from its first: one load a row */
        for (; i < rows && (i * width >> 3) + 8 <= n; i++) {
            size_t bit = i * width;
            uint64_t w;
            memcpy(&w, p + (bit >> 3), 8);
            out[i] = lo + ((w >> (bit & 7)) & mask);
        }
#endif
    for (; i < rows; i++) {   /* the last rows (or wide ones): byte by byte, never past the end */
        size_t bit = i * width, at = bit >> 3;
        unsigned __int128 w = 0;
        for (size_t b = 0; b < 9 && at + b < n; b++) w |= (unsigned __int128)p[at + b] << (8 * b);
        out[i] = lo + ((uint64_t)(w >> (bit & 7)) & mask);
    }
}

/* The body's rows into out[0..rows): 0, or -1 when it does not hold exactly its rows. */
static int
decode_body(const unsigned char *p, const unsigned char *end, size_t rows, long enc, uint64_t base, uint64_t *out)
{
    uint64_t v = 0, acc = 0;
    if (enc == ENC_CONST) {
        if (get_varint(&p, end, &v) < 0) return -1;
        for (size_t i = 0; i < rows; i++) out[i] = v;
    } else if (enc == ENC_VARINT_DELTA || enc == ENC_VARINT) {
        for (size_t i = 0; i < rows; i++) {
            if (get_varint(&p, end, &v) < 0) return -1;
            out[i] = acc = enc == ENC_VARINT_DELTA ? acc + unzigzag(v) : v;   /* zigzag back, summed */
        }
    } else if (enc == ENC_PARENT) {
        for (size_t i = 0; i < rows; i++)
            if (get_varint(&p, end, &v) < 0 || parent_of(out, i, base, v, &out[i]) < 0) return -1;
    } else if (enc >= ENC_GOLOMB_DELTA) {
        return decode_golomb(p, end, rows, enc, base, out);
    } else if (enc == ENC_SPARSE || enc == ENC_SPARSE_DELTA) {
        size_t nmap = (rows + 7) / 8;
        if ((size_t)(end - p) < nmap + 1 || p[nmap] > 63) return -1;
        const unsigned char *map = p;
        int k = p[nmap];
        BitIn b = {p + nmap + 1, (size_t)(end - p) - nmap - 1, 0};
        for (size_t i = 0; i < rows; i++) {
            if (!(map[i >> 3] >> (i & 7) & 1)) { out[i] = 0; continue; }
            if (golomb_get(&b, k, &v) < 0) return -1;
            out[i] = acc = enc == ENC_SPARSE_DELTA ? acc + unzigzag(v) : v;
        }
        return (b.pos + 7) / 8 == b.len ? 0 : -1;
    } else {   /* ENC_BITS */
        uint64_t lo;
        if (get_varint(&p, end, &lo) < 0 || p >= end) return -1;
        unsigned width = *p++;
        if (width > 64 || (size_t)(end - p) != (rows * width + 7) / 8) return -1;
        decode_bits(p, (size_t)(end - p), rows, width, lo, out);
        return 0;
    }
    return p == end ? 0 : -1;
}

PyObject *
mod_decode_varints(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 && nargs != 4) { PyErr_SetString(PyExc_TypeError, "decode_varints(body, rows, encoding[, base])"); return NULL; }
    Py_ssize_t rows = PyLong_AsSsize_t(args[1]);
    long enc = PyLong_AsLong(args[2]);
    unsigned long long base = nargs == 4 ? PyLong_AsUnsignedLongLong(args[3]) : 0;
    if (PyErr_Occurred()) return NULL;
    if (rows < 0 || rows > PY_SSIZE_T_MAX / 8 || enc < ENC_VARINT_DELTA || enc > ENC_GOLOMB_RISE) {
        PyErr_SetString(PyExc_ValueError, "bad row count or encoding");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, rows * 8);
    if (out) {
        uint64_t *vals = (uint64_t *)PyBytes_AS_STRING(out);   /* (bytes data is 8-aligned) */
        const unsigned char *p = view.buf;
        if (decode_body(p, p + view.len, (size_t)rows, enc, base, vals) < 0) {
            Py_CLEAR(out);
            PyErr_SetString(PyExc_ValueError, "a varint column does not hold its rows");
        } else if (PY_BIG_ENDIAN) {
            for (Py_ssize_t i = 0; i < rows; i++) put_le((unsigned char *)&vals[i], vals[i], 8);
        }
    }
    PyBuffer_Release(&view);
    return out;
}

/* decode_shared(stream, rows, earlier) -> bytes (1.9, ENC_SHARED): `stream` a Golomb stream
 * (an order byte k, then codes) of one value for each row where `earlier` (rows little-endian
 * 8-byte values: the column the shared one names) is not 0, in row order; the rows as
 * little-endian i64, 0 where `earlier` is 0. ValueError when the stream does not hold exactly
 * those values. format.decode_shared's fast path: its Python twin makes ENC_SPARSE's bitmap
 * from `earlier` in whole-buffer steps (~100 ms for generators' 450K MARK rows at scale 20,
 * most of that chunk's decode), this reads the codes off `earlier` directly. */
PyObject *
mod_decode_shared(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) { PyErr_SetString(PyExc_TypeError, "decode_shared(stream, rows, earlier)"); return NULL; }
    Py_ssize_t rows = PyLong_AsSsize_t(args[1]);
    if (rows == -1 && PyErr_Occurred()) return NULL;
    Py_buffer stream, earlier;
    if (PyObject_GetBuffer(args[0], &stream, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(args[2], &earlier, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&stream); return NULL; }
    PyObject *out = NULL;
    const unsigned char *p = stream.buf, *e = earlier.buf;
    if (rows < 0 || rows > PY_SSIZE_T_MAX / 8 || earlier.len != rows * 8 || stream.len < 1 || p[0] > 63) {
        PyErr_SetString(PyExc_ValueError, "a column on another's rows does not hold its rows");
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, rows * 8);
    if (!out) goto done;
    uint64_t *vals = (uint64_t *)PyBytes_AS_STRING(out), v;   /* (bytes data is 8-aligned) */
    int k = p[0];
    CodeIn c = {{p + 1, (size_t)stream.len - 1, 0}, 0, 0};
    code_refill(&c);
    for (Py_ssize_t i = 0; i < rows; i++) {
        uint64_t x;
        memcpy(&x, e + 8 * i, 8);   /* (not 0 in either byte order) */
        if (!x) { vals[i] = 0; continue; }
        if (code_get(&c, k, &v) < 0) goto bad;
        vals[i] = v;
        if (PY_BIG_ENDIAN) put_le((unsigned char *)&vals[i], v, 8);
    }
    if ((c.b.pos + 7) / 8 == c.b.len) goto done;
bad:
    Py_CLEAR(out);
    PyErr_SetString(PyExc_ValueError, "a column on another's rows does not hold its rows");
done:
    PyBuffer_Release(&earlier);
    PyBuffer_Release(&stream);
    return out;
}

/* ---- FUNC definitions: format.func_payload's fast path ----
 * json.dumps(functions, separators=(",", ":"), ensure_ascii=False).encode() (format.json_payload)
 * for the FUNC entries the recorders make (common.func_entry: a dict of exactly "id", "qualname",
 * "module", "file", "line", "kind" in that order, exact ints and strs), else None: the same bytes.
 * json.dumps took ~13,000 instructions an entry (its C encoder escapes every key and value
 * through a new str, ~170 bytes an entry): ~53 M for the ~4,000 code objects of flask's
 * test_basic in both modes. Here ~1,500 (callgrind, that session's 4,037 entries: 52.4 -> 6.0 M;
 * json_str ~450, PyDict_Next ~300, the bytes object's copy ~180). Runs no Python (the GIL held). */

/* An ASCII str as a JSON string the way json's encoder writes it with ensure_ascii=False: '"' and
 * '\\' escaped, \b \f \n \r \t as such, other controls below 0x20 as \u00xx (lowercase hex),
 * every other character as it is. Room: 2 + 6 * n bytes at q. Eight bytes at a time while none
 * of them needs an escape (names and file names next to never do): ~3 instructions a byte with
 * the byte-by-byte tail, against ~8 byte by byte (callgrind, flask's FUNC entries). */
#define BYTES8(b) (0x0101010101010101ull * (b))
static unsigned char *
json_str(unsigned char *q, const unsigned char *s, Py_ssize_t n)
{
    static const char hex[] = "0123456789abcdef";
    *q++ = '"';
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w, quote, slash;
        memcpy(&w, s + i, 8);
        quote = w ^ BYTES8('"'), slash = w ^ BYTES8('\\');
        /* (a byte below 0x20, or equal to '"' or '\\': each byte < 0x80, so exact) */
        if (((w - BYTES8(0x20)) | (quote - BYTES8(1)) | (slash - BYTES8(1))) & BYTES8(0x80)) break;
        memcpy(q, &w, 8);
        q += 8;
    }
    for (; i < n; i++) {
        unsigned char ch = s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') { *q++ = ch; continue; }
        *q++ = '\\';
        switch (ch) {
        case '"': case '\\': *q++ = ch; break;
        case '\b': *q++ = 'b'; break;
        case '\f': *q++ = 'f'; break;
        case '\n': *q++ = 'n'; break;
        case '\r': *q++ = 'r'; break;
        case '\t': *q++ = 't'; break;
        default: *q++ = 'u'; *q++ = '0'; *q++ = '0'; *q++ = hex[ch >> 4]; *q++ = hex[ch & 15];
        }
    }
    *q++ = '"';
    return q;
}
#undef BYTES8

/* v in decimal at q (crecorder.h decimal); returns its end */
static unsigned char *
json_int(unsigned char *q, long long v)
{
    char digits[24], *d = decimal(digits + sizeof digits, (int64_t)v);
    size_t n = (size_t)(digits + sizeof digits - d);
    memcpy(q, d, n);
    return q + n;
}

/* One entry's values if it has func_entry's shape (0), else 1 */
static int
func_values(PyObject *e, PyObject **keys, long long ints[2], const char *strs[4], Py_ssize_t lens[4])
{
    if (!PyDict_CheckExact(e) || PyDict_GET_SIZE(e) != 6) return 1;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    for (int i = 0, ni = 0, ns = 0; PyDict_Next(e, &pos, &k, &v); i++) {
        if (k != keys[i] && (!PyUnicode_CheckExact(k) || PyUnicode_Compare(k, keys[i]) != 0))
            return 1;   /* (interned both: the same object, but for an entry made elsewhere) */
        if (i == 0 || i == 4) {
            if (!PyLong_CheckExact(v)) return 1;
            int overflow;
            ints[ni++] = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow) return 1;   /* (json.dumps writes any int: left to it) */
        } else {
            /* ASCII only: read in place (a UTF-8 copy would stay cached on the program's str, which
             * sys.getsizeof shows); a name with other characters is rare: json.dumps' */
            if (!PyUnicode_CheckExact(v) || !PyUnicode_IS_ASCII(v)) return 1;
            strs[ns] = PyUnicode_DATA(v);
            lens[ns++] = PyUnicode_GET_LENGTH(v);
        }
    }
    return 0;
}

PyObject *
mod_func_json(PyObject *m, PyObject *functions)
{
    PyObject **keys = func_entry_keys();   /* (codes.c: func_entry's) */
    if (!keys) return NULL;
    if (!PyList_CheckExact(functions)) Py_RETURN_NONE;
    Out o = {0};
    PyObject *res = NULL;
    Py_ssize_t n = PyList_GET_SIZE(functions);
    if (out_reserve(&o, 2) < 0) return NULL;
    o.p[o.len++] = '[';
    for (Py_ssize_t j = 0; j < n; j++) {
        long long ints[2];
        const char *strs[4];
        Py_ssize_t lens[4];
        if (func_values(PyList_GET_ITEM(functions, j), keys, ints, strs, lens)) { res = Py_NewRef(Py_None); goto done; }
        size_t room = 128 + 6 * (size_t)(lens[0] + lens[1] + lens[2] + lens[3]);   /* (keys, ints, quotes, escapes) */
        if (out_reserve(&o, room) < 0) goto done;
        unsigned char *q = o.p + o.len;
        if (j) *q++ = ',';
        memcpy(q, "{\"id\":", 6); q += 6;
        q = json_int(q, ints[0]);
        memcpy(q, ",\"qualname\":", 12); q += 12;
        q = json_str(q, (const unsigned char *)strs[0], lens[0]);
        memcpy(q, ",\"module\":", 10); q += 10;
        q = json_str(q, (const unsigned char *)strs[1], lens[1]);
        memcpy(q, ",\"file\":", 8); q += 8;
        q = json_str(q, (const unsigned char *)strs[2], lens[2]);
        memcpy(q, ",\"line\":", 8); q += 8;
        q = json_int(q, ints[1]);
        memcpy(q, ",\"kind\":", 8); q += 8;
        q = json_str(q, (const unsigned char *)strs[3], lens[3]);
        *q++ = '}';
        o.len = (size_t)(q - o.p);
    }
    o.p[o.len++] = ']';   /* (reserved: 2 at first, then 128 an entry) */
    res = PyBytes_FromStringAndSize((const char *)o.p, (Py_ssize_t)o.len);
done:
    PyMem_RawFree(o.p);
    return res;
}
