/* flowtrace._crecorder: the hot path's clock (see stamp() in crecorder.h) and its mapping to CLOCK_MONOTONIC ns. */
#include "crecorder.h"

int use_tsc;   /* set once at import (clock_init) */

/* A (ticks, ns) pair read as close together as the machine allows: the ns reading between
 * two rdtsc, the tightest of a few tries (a preemption in between makes one loose). */
static Anchor clock_origin;   /* read at import: a long segment for a batch that has none */
Anchor
anchor_now(void)
{
    Anchor best = {0, 0};
#ifdef HAVE_TSC
    if (use_tsc) {
        int64_t gap = INT64_MAX;
        for (int i = 0; i < 5; i++) {
            int64_t a = (int64_t)__rdtsc(), ns = now_ns(), b = (int64_t)__rdtsc();
            if (b - a < gap) { gap = b - a; best.tick = a + (b - a) / 2; best.ns = ns; }
        }
        return best;
    }
#endif
    best.ns = best.tick = now_ns();
    return best;
}


TickMap
tick_map(Anchor a, Anchor b)
{
    TickMap m = {a, 0, 0, !use_tsc};
    if (m.identity) return m;
    int64_t dt = b.tick - a.tick, dn = b.ns - a.ns;
    if (dt <= 0 || dn < 0) {   /* no usable segment (no tick passed): the rate since import */
        dt = b.tick - clock_origin.tick;
        dn = b.ns - clock_origin.ns;
        if (dt <= 0 || dn < 0) { dt = 1; dn = 1; }
    }
    m.mult = (((__int128)dn << TICK_SHIFT) + dt / 2) / dt;
    m.mult64 = m.mult <= UINT64_MAX ? (uint64_t)m.mult : 0;
    return m;
}

/* Ticks are the TSC only where that is CLOCK_MONOTONIC's own source and invariant (constant
 * rate in every P/C-state, "constant_tsc nonstop_tsc" in /proc/cpuinfo): cpuid's invariant-TSC
 * bit, and the kernel's current clocksource is "tsc" (it also checked the TSCs agree across
 * CPUs; it falls back to another clocksource when they do not). Should it switch later, the
 * map stays monotonic and exact at the anchors, off between them by the two clocks' drift
 * over one flush interval. */
void
clock_init(void)
{
    use_tsc = 0;
#ifdef HAVE_TSC
    const char *force = getenv("FLOWTRACE_CLOCK");
    if (force && !strcmp(force, "monotonic")) return;
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000007) return;
    if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8))) return;
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (!f) return;
    char name[32] = {0};
    int ok = fgets(name, sizeof name, f) != NULL && !strcmp(name, "tsc\n");
    fclose(f);
    if (!ok) return;
    use_tsc = 1;
    clock_origin = anchor_now();
#endif
}
