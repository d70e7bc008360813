/* flowtrace._crecorder: final string ids by UTF-8 bytes (deduplication across the session). */
#include "crecorder.h"

#define STR_IDS_MAX 65536   /* python.py: the dedup table is bounded; a text may repeat */

/* ---- final string ids by UTF-8 bytes (deduplication across the session, in C) ----
 * Repeated texts (the same placeholder, "n=3", an exception raised in a loop) get the id of
 * their first occurrence without a Python str or dict lookup. Bounded like python.py's
 * table: past STR_IDS_MAX texts it starts afresh (a text may then repeat in the file). */

uint64_t
bytes_hash(const char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
        p += 8; n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    return h | 1;
}

void
stab_clear(StrTab *st)
{
    if (st->tab) memset(st->tab, 0, st->cap * sizeof(StrKey));
    st->n = 0;
    st->alen = 0;
}

void
stab_free(StrTab *st)
{
    PyMem_RawFree(st->tab); PyMem_RawFree(st->arena);
    memset(st, 0, sizeof *st);
}

uint32_t
stab_find(StrTab *st, const char *p, size_t n, uint64_t h)
{
    if (!st->n) return 0;
    size_t mask = st->cap - 1;
    for (size_t j = HSLOT(h) & mask; st->tab[j].hash; j = (j + 1) & mask) {
        StrKey *k = &st->tab[j];
        if (k->hash == h && k->len == n && !memcmp(st->arena + k->off, p, n)) return k->sid;
    }
    return 0;
}

int
stab_add(StrTab *st, const char *p, size_t n, uint64_t h, uint32_t sid)
{
    if (st->n >= STR_IDS_MAX) stab_clear(st);
    if ((st->n + 1) * 2 > st->cap) {
        size_t ncap = st->cap ? st->cap * 2 : 1024;
        StrKey *nt = PyMem_RawCalloc(ncap, sizeof(StrKey));
        if (!nt) { PyErr_NoMemory(); return -1; }
        for (size_t i = 0; i < st->cap; i++) {
            if (!st->tab[i].hash) continue;
            size_t j = HSLOT(st->tab[i].hash) & (ncap - 1);
            while (nt[j].hash) j = (j + 1) & (ncap - 1);
            nt[j] = st->tab[i];
        }
        PyMem_RawFree(st->tab);
        st->tab = nt; st->cap = ncap;
    }
    if (grow((void **)&st->arena, &st->acap, st->alen + n + 1, 1) < 0) return -1;
    memcpy(st->arena + st->alen, p, n);
    size_t mask = st->cap - 1, j = HSLOT(h) & mask;
    while (st->tab[j].hash) j = (j + 1) & mask;
    st->tab[j].hash = h; st->tab[j].off = st->alen; st->tab[j].len = (uint32_t)n; st->tab[j].sid = sid;
    st->alen += n;
    st->n++;
    return 0;
}
