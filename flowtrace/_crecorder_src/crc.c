/* flowtrace._crecorder: the chunks' CRC-32 (zlib's: reflected, polynomial 0xEDB88320), for
 * the native writer thread.
 *
 * zlib 1.2.13's crc32 takes ~3.9 instructions a byte (callgrind): 10 M instructions a run of
 * the oop workload in default mode, most of the writer thread's work. Where the CPU has
 * carry-less multiplication (PCLMULQDQ: every x86-64 CPU since ~2010) the bytes are folded
 * 16 at a time instead -- the method of Intel's white paper "Fast CRC Computation for Generic
 * Polynomials Using PCLMULQDQ Instruction" (Gopal et al., 2009): a 128-bit remainder is
 * carried forward by multiplying its halves by x^(128+64) and x^128 mod P, then reduced to 32
 * bits (two folds and a Barrett reduction) -- about 0.5 instructions a byte; from 128 bytes on
 * four remainders 64 bytes apart are carried at once (the white paper's fold by 4 x 128 bits),
 * each multiply no longer waiting for the one before it. The same value as zlib's crc32 for
 * every input (tests/test_native_writer.py compares them); the last len % 16 bytes, short
 * inputs and other CPUs go through zlib. Where the CPU has VPCLMULQDQ and AVX-512, inputs of
 * 256 bytes and more are folded 64 bytes a multiply (crc_fold_wide). */
#include "crecorder.h"

#ifdef FT_HAVE_ZLIB
#include <zlib.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_CLMUL 1

/* The white paper's constants for P, in the bit-reflected domain (each a 33-bit value, as
 * its method uses them): the two to fold 16 bytes onto the next 16, the one to fold 64 bits
 * onto 32, and P and floor(x^64 / P) for the Barrett reduction. */
#define K_FOLD_HI 0x0ccaa009eull
#define K_FOLD_LO 0x1751997d0ull
#define K_FOLD4_HI 0x1c6e41596ull   /* (the two to fold 16 bytes onto the 16 that are 64 bytes further) */
#define K_FOLD4_LO 0x154442bd4ull
#define K_64_32 0x163cd6124ull
#define K_POLY 0x1db710641ull
#define K_MU 0x1f7011641ull

static inline uint32_t crc_reduce(__m128i x);

/* The raw (not inverted) reflected CRC of n bytes, n a multiple of 16 and >= 16, from `crc`. */
__attribute__((target("pclmul,sse4.1")))
static uint32_t
crc_fold(uint32_t crc, const unsigned char *p, size_t n)
{
#define LOAD(at) _mm_loadu_si128((const __m128i *)(p + (at)))
#define FOLD(x, k) _mm_xor_si128(_mm_clmulepi64_si128((x), (k), 0x00), _mm_clmulepi64_si128((x), (k), 0x11))
    const __m128i fold = _mm_set_epi64x((long long)K_FOLD_HI, (long long)K_FOLD_LO);
    __m128i x = _mm_xor_si128(LOAD(0), _mm_cvtsi32_si128((int)crc));
    size_t at = 16;
    if (n >= 128) {
        /* Four remainders, of the 16-byte lanes 0-3 of each 64 bytes, each folded 64 bytes on
         * at a time, then into one 16 bytes at a time. One remainder waits for each multiply
         * before the next (the writer thread's crc_fold was ~1.5 % of oop's and raytrace's extra
         * CPU: perf); four go on side by side. 480 MB of chunks put to /dev/null: 0.078-0.080 s
         * CPU -> 0.046-0.057 (the writer's whole work); callgrind, oop: 2.28 -> 1.78 M
         * instructions a run. */
        const __m128i fold4 = _mm_set_epi64x((long long)K_FOLD4_HI, (long long)K_FOLD4_LO);
        __m128i x1 = LOAD(16), x2 = LOAD(32), x3 = LOAD(48);
        for (at = 64; at + 64 <= n; at += 64) {
            x = _mm_xor_si128(FOLD(x, fold4), LOAD(at));
            x1 = _mm_xor_si128(FOLD(x1, fold4), LOAD(at + 16));
            x2 = _mm_xor_si128(FOLD(x2, fold4), LOAD(at + 32));
            x3 = _mm_xor_si128(FOLD(x3, fold4), LOAD(at + 48));
        }
        x = _mm_xor_si128(FOLD(x, fold), x1);
        x = _mm_xor_si128(FOLD(x, fold), x2);
        x = _mm_xor_si128(FOLD(x, fold), x3);
    }
    for (; at < n; at += 16) x = _mm_xor_si128(FOLD(x, fold), LOAD(at));   /* x.lo * K_LO + x.hi * K_HI + next 16 bytes */
#undef FOLD
#undef LOAD
    return crc_reduce(x);
}

/* A 128-bit remainder reduced to the 32-bit CRC (crc_fold's and crc_fold_wide's last step). */
__attribute__((target("pclmul,sse4.1")))
static inline uint32_t
crc_reduce(__m128i x)
{
    const __m128i fold = _mm_set_epi64x((long long)K_FOLD_HI, (long long)K_FOLD_LO);
    /* 128 -> 64 bits: the low half, multiplied, onto the high half */
    x = _mm_xor_si128(_mm_clmulepi64_si128(x, fold, 0x10), _mm_srli_si128(x, 8));
    /* 64 -> 32 bits */
    const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);
    const __m128i k64 = _mm_set_epi64x(0, (long long)K_64_32);
    x = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x, mask32), k64, 0x00), _mm_srli_si128(x, 4));
    /* Barrett reduction to the 32-bit remainder */
    const __m128i poly = _mm_set_epi64x((long long)K_MU, (long long)K_POLY);
    __m128i t = _mm_clmulepi64_si128(_mm_and_si128(x, mask32), poly, 0x10);
    t = _mm_clmulepi64_si128(_mm_and_si128(t, mask32), poly, 0x00);
    return (uint32_t)_mm_extract_epi32(_mm_xor_si128(x, t), 1);
}

/* crc_fold on 64-byte vectors (VPCLMULQDQ with AVX-512: AMD Zen 4, Intel Ice Lake and later),
 * n a multiple of 16 and >= 256: four 64-byte remainders 256 bytes apart -- each vector's four
 * 16-byte lanes are crc_fold's four remainders, sixteen in all -- folded 256 bytes on at a time
 * (x^(2048 -+ 32) mod P), then onto each other 64 bytes at a time (crc_fold's fold by 4 x 128
 * bits), then their lanes as crc_fold folds its four. The same value: the same remainders,
 * carried by the same method over the same bytes (tests/test_native_writer.py compares it with
 * zlib's). crc_fold took ~12 samples of flask's test_basic phase (the writer thread's CRC of
 * every chunk, perf), 8 multiplies on 16-byte lanes a 64 bytes against 2 on 64-byte vectors here. */
#define K_FOLD16_HI 0x1322d1430ull   /* (x^2016 and x^2080 mod P, reflected, as the others) */
#define K_FOLD16_LO 0x11542778aull

__attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.1")))
static uint32_t
crc_fold_wide(uint32_t crc, const unsigned char *p, size_t n)
{
#define LOAD64(at) _mm512_loadu_si512((const void *)(p + (at)))
#define FOLD64(x, k) _mm512_xor_si512(_mm512_clmulepi64_epi128((x), (k), 0x00), _mm512_clmulepi64_epi128((x), (k), 0x11))
    const __m512i fold16 = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)K_FOLD16_HI, (long long)K_FOLD16_LO));
    const __m512i fold4 = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)K_FOLD4_HI, (long long)K_FOLD4_LO));
    __m512i x0 = _mm512_xor_si512(LOAD64(0), _mm512_castsi128_si512(_mm_cvtsi32_si128((int)crc)));
    __m512i x1 = LOAD64(64), x2 = LOAD64(128), x3 = LOAD64(192);
    size_t at = 256;
    for (; at + 256 <= n; at += 256) {
        x0 = _mm512_xor_si512(FOLD64(x0, fold16), LOAD64(at));
        x1 = _mm512_xor_si512(FOLD64(x1, fold16), LOAD64(at + 64));
        x2 = _mm512_xor_si512(FOLD64(x2, fold16), LOAD64(at + 128));
        x3 = _mm512_xor_si512(FOLD64(x3, fold16), LOAD64(at + 192));
    }
    x1 = _mm512_xor_si512(FOLD64(x0, fold4), x1);
    x2 = _mm512_xor_si512(FOLD64(x1, fold4), x2);
    x3 = _mm512_xor_si512(FOLD64(x2, fold4), x3);
    for (; at + 64 <= n; at += 64) x3 = _mm512_xor_si512(FOLD64(x3, fold4), LOAD64(at));
#undef FOLD64
#undef LOAD64
    /* the four lanes, 16 bytes apart, into one (crc_fold's last folds), then its last 16-byte
     * blocks and its reduction: crc_fold from here, on the 64 bytes the lanes stand for */
    const __m128i fold = _mm_set_epi64x((long long)K_FOLD_HI, (long long)K_FOLD_LO);
#define FOLD(x, k) _mm_xor_si128(_mm_clmulepi64_si128((x), (k), 0x00), _mm_clmulepi64_si128((x), (k), 0x11))
    __m128i x = _mm512_castsi512_si128(x3);
    x = _mm_xor_si128(FOLD(x, fold), _mm512_extracti32x4_epi32(x3, 1));
    x = _mm_xor_si128(FOLD(x, fold), _mm512_extracti32x4_epi32(x3, 2));
    x = _mm_xor_si128(FOLD(x, fold), _mm512_extracti32x4_epi32(x3, 3));
    for (; at < n; at += 16) x = _mm_xor_si128(FOLD(x, fold), _mm_loadu_si128((const __m128i *)(p + at)));
#undef FOLD
    return crc_reduce(x);
}

static int have_clmul = -1, have_wide = 0;   /* not asked yet; then 0 or 1 (the answers never change) */
#endif

/* zlib's crc32(crc, p, n): the CRC of p[0..n) continuing from crc (0 to start). */
uint32_t
chunk_crc32(uint32_t crc, const unsigned char *p, size_t n)
{
#ifdef HAVE_CLMUL
    if (have_clmul < 0) {
        __builtin_cpu_init();
        have_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
        have_wide = have_clmul && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq");
    }
    if (have_clmul && n >= 64) {   /* (below that zlib is as quick) */
        size_t whole = n & ~(size_t)15;
        crc = ~(have_wide && whole >= 256 ? crc_fold_wide(~crc, p, whole) : crc_fold(~crc, p, whole));
        p += whole;
        n -= whole;
    }
#endif
    return (uint32_t)crc32(crc, p, (uInt)n);
}
#endif
