/* flowtrace._crecorder: final string ids by UTF-8 bytes (deduplication across the session). */
#include "crecorder.h"
#include <sys/mman.h>

#define STR_IDS_MAX 65536   /* python.py: the dedup table is bounded; a text may repeat */

/* ---- final string ids by UTF-8 bytes (deduplication across the session, in C) ----
 * Repeated texts (the same placeholder, "n=3", an exception raised in a loop) get the id of
 * their first occurrence without a Python str or dict lookup. Bounded like python.py's
 * table: past STR_IDS_MAX texts it starts afresh (a text may then repeat in the file). */

/* The bytes' 8-byte words two at a time into two lanes (independent multiplies), then their last
 * 8 bytes as one word (a load that may take bytes hashed already: no copy of a variable length,
 * whose tests mispredicted); only a text of under 8 bytes is copied. ~1.6 instructions a byte
 * less than a word at a time into one lane (~100 instructions a text of flask test_json's
 * drains: 48 k texts and memo keys). Any function of the bytes does: the text table compares
 * the bytes themselves, and the text memo its keys' contents (tmemo_slot_same). */
uint64_t
bytes_hash(const char *p, size_t n)
{
    const uint64_t k1 = 0xff51afd7ed558ccdULL, k2 = 0xc4ceb9fe1a85ec53ULL;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n, g = 0x2545F4914F6CDD1DULL, a, b;
    if (n < 8) {
        a = 0;
        memcpy(&a, p, n);
        h = (h ^ a) * k1;
    } else {
        const char *last = p + n - 8;
        for (; p + 8 < last; p += 16) {   /* (the words that start before the last one, in pairs) */
            memcpy(&a, p, 8); memcpy(&b, p + 8, 8);
            h = (h ^ a) * k1; g = (g ^ b) * k2;
            h ^= h >> 32; g ^= g >> 32;
        }
        if (p < last) { memcpy(&a, p, 8); h = (h ^ a) * k1; h ^= h >> 32; }   /* (an odd one; p + 8 >= last) */
        memcpy(&b, last, 8);
        g = (g ^ b) * k2;
    }
    h = (h ^ g ^ (g >> 29)) * k2;
    h ^= h >> 29;
    return h | 1;
}

/* The table is probed on every text of a drain, nearly always in a part of it that is not
 * in the cache (texts are spread by their hash). The probe reads only `tags` -- 4 bytes a
 * slot, a sixth of the keys' size, so far more of it stays cached -- and a key (and the
 * arena) only where the tag matches. */
static inline uint32_t
tag_of(uint64_t h)
{
    return (uint32_t)(h >> 32) | 1;
}

/* The tags and keys of a large table (from 1 MB: flask's keys reach 3 MB) are mapped in
 * transparent huge pages where the system gives them on request (madvise mode). Its lookups
 * are spread by hash over MBs that the program evicted between two drains: each missed the TLB
 * too, and under a hypervisor a page walk is itself a chain of misses (strings_batch's prefetch
 * of a key -- stab_prefetch -- retired behind its walk: ~9 samples a flask phase, 2 with huge
 * pages). Mapped, not from malloc: a huge-page range that malloc hands on to other uses after
 * the table grew had its pages faulted and cleared whole again (+22 samples of clear_page). */
#define HUGE_PAGE ((size_t)2 << 20)
#define TABLE_HUGE_MIN ((size_t)1 << 20)

static inline size_t
table_mapped(size_t bytes)   /* the bytes mapped for a table of `bytes`, or 0: from malloc */
{
    return bytes >= TABLE_HUGE_MIN ? (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1) : 0;
}

/* A zeroed table of `bytes` (NULL: no memory), freed by table_free with the same size. */
static void *
table_new(size_t bytes)
{
    size_t size = table_mapped(bytes);
    if (!size) return PyMem_RawCalloc(bytes, 1);
    size_t span = size + HUGE_PAGE;   /* (room to start it on a huge page's boundary) */
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    char *a = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (a > p) munmap(p, (size_t)(a - p));
    if (p + span > a + size) munmap(a + size, (size_t)(p + span - (a + size)));
#ifdef MADV_HUGEPAGE
    madvise(a, size, MADV_HUGEPAGE);   /* (refused: small pages, zeroed as well) */
#endif
    return a;
}

static void
table_free(void *p, size_t bytes)
{
    size_t size = table_mapped(bytes);
    if (!p) return;
    if (size) munmap(p, size);
    else PyMem_RawFree(p);
}

void
stab_clear(StrTab *st)
{
    if (st->tags) memset(st->tags, 0, st->cap * sizeof(uint32_t));
    st->n = 0;
    st->alen = 0;
}

void
stab_free(StrTab *st)
{
    table_free(st->tags, st->cap * sizeof(uint32_t)); table_free(st->keys, st->cap * sizeof(StrKey));
    PyMem_RawFree(st->arena);
    memset(st, 0, sizeof *st);
}

uint32_t
stab_find(StrTab *st, const char *p, size_t n, uint64_t h)
{
    if (!st->n) return 0;
    size_t mask = st->cap - 1;
    uint32_t tag = tag_of(h);
    for (size_t j = stab_home(st, h); st->tags[j]; j = (j + 1) & mask) {
        if (st->tags[j] != tag) continue;
        StrKey *k = &st->keys[j];
        if (k->hash == h && k->len == n && !memcmp(st->arena + k->off, p, n)) return k->sid;
    }
    return 0;
}

/* Room for one more text (load at most 1/2): 0, or -1 with an error set. */
static int
stab_room(StrTab *st)
{
    if ((st->n + 1) * 2 <= st->cap) return 0;
    size_t ncap = st->cap ? st->cap * 2 : 1024;
    uint32_t *nt = table_new(ncap * sizeof(uint32_t));
    StrKey *nk = table_new(ncap * sizeof(StrKey));
    if (!nt || !nk) {
        table_free(nt, ncap * sizeof(uint32_t)); table_free(nk, ncap * sizeof(StrKey));
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < st->cap; i++) {
        if (!st->tags[i]) continue;
        size_t j = HSLOT(st->keys[i].hash) & (ncap - 1);
        while (nt[j]) j = (j + 1) & (ncap - 1);
        nt[j] = st->tags[i];
        nk[j] = st->keys[i];
    }
    table_free(st->tags, st->cap * sizeof(uint32_t)); table_free(st->keys, st->cap * sizeof(StrKey));
    st->tags = nt; st->keys = nk; st->cap = ncap;
    return 0;
}

int
stab_add(StrTab *st, const char *p, size_t n, uint64_t h, uint32_t sid)
{
    if (st->n >= STR_IDS_MAX) stab_clear(st);
    if (stab_room(st) < 0) return -1;
    if (grow((void **)&st->arena, &st->acap, st->alen + n + 1, 1) < 0) return -1;
    memcpy(st->arena + st->alen, p, n);
    size_t mask = st->cap - 1, j = stab_home(st, h);
    while (st->tags[j]) j = (j + 1) & mask;
    st->tags[j] = tag_of(h);
    st->keys[j].hash = h; st->keys[j].off = st->alen; st->keys[j].len = (uint32_t)n; st->keys[j].sid = sid;
    st->alen += n;
    st->n++;
    return 0;
}

