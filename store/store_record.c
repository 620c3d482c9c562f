/* SPDX-License-Identifier: MIT */
/*
 * Block records: the 48-byte header (format, codec, filters, flags, payload offset,
 * stored and raw length, writing seq, XXH3-64 of the raw bytes, shuffle stride, and
 * a checksum of the header itself), the codecs (none, zstd 1..19 with reused
 * contexts), the Blosc-style byte shuffle done in independent 64 KiB chunks, and the
 * value-size policy: page-aligned raw payloads and size classes for compressed ones
 * (docs/format.md explains why). Decoding allocates nothing and formats nothing, so
 * it runs in fault context.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack: no allocation */
#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
#endif

#include "store_internal.h"

/* ---- checksums -------------------------------------------------------------------- */

uint64_t store_hash(const void *p, size_t n)
{
#if defined(__x86_64__)
    return XXH3_64bits_dispatch(p, n);
#else
    return XXH3_64bits(p, n);
#endif
}

static void store_hash_update(XXH3_state_t *s, const void *p, size_t n)
{
#if defined(__x86_64__)
    XXH3_64bits_update_dispatch(s, p, n);
#else
    XXH3_64bits_update(s, p, n);
#endif
}

/* Chunk for fused copy+hash: small enough that the hash reads from L2. */
#define STORE_COPY_CHUNK (128u << 10)

unsigned store_piece_shift(uint32_t raw_len, uint32_t payload_off)
{
    if (!raw_len || (raw_len & (raw_len - 1)))
        return 0;
    unsigned lg = 31u - (unsigned)__builtin_clz(raw_len);
    unsigned shift = lg > STORE_PIECE_MIN + 6 ? lg - 6 : STORE_PIECE_MIN; /* <= 64 pieces */
    if (lg <= shift || STORE_BLK_HDR + 8u * (raw_len >> shift) > payload_off)
        return 0;
    return shift;
}

/* XXH3-64 of n bytes at p, and with shift != 0 also of each 2^shift-byte piece into
 * sums (little-endian, as stored). The whole hash streams the same bytes while they are
 * in cache. When dst is not NULL the bytes are copied there first, piece by piece (or
 * in STORE_COPY_CHUNKs), and hashed from the copy. */
static uint64_t store_hash_pieces(void *dst, const void *src, size_t n, unsigned shift,
                                  unsigned char *sums)
{
    XXH3_state_t s;
    XXH3_INITSTATE(&s);
    XXH3_64bits_reset(&s);
    size_t chunk = shift ? (size_t)1 << shift : STORE_COPY_CHUNK;
    unsigned char *d = dst;
    const unsigned char *p = src;
    for (size_t at = 0, i = 0; at < n; i++) {
        size_t k = n - at < chunk ? n - at : chunk;
        const unsigned char *h = p + at;
        if (d) {
            memcpy(d + at, h, k);
            h = d + at;
        }
        store_hash_update(&s, h, k);
        if (shift)
            store_le64_put(sums + 8 * i, store_hash(h, k));
        at += k;
    }
    return XXH3_64bits_digest(&s);
}

int store_is_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n && ((uintptr_t)c & 7)) {
        if (*c)
            return 0;
        c++;
        n--;
    }
    const uint64_t *w = (const uint64_t *)(const void *)c;
    size_t nw = n / 8;
    size_t i = 0;
    for (; i + 8 <= nw; i += 8) {
        uint64_t x =
            w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7];
        if (x)
            return 0;
    }
    for (; i < nw; i++)
        if (w[i])
            return 0;
    c += nw * 8;
    for (size_t j = 0; j < n % 8; j++)
        if (c[j])
            return 0;
    return 1;
}

/* ---- header ----------------------------------------------------------------------- */

void store_blk_hdr_write(unsigned char *d, const struct store_blk_hdr *h)
{
    d[0] = h->format;
    d[1] = h->codec;
    d[2] = h->filters;
    d[3] = h->flags;
    store_le32_put(d + 4, h->payload_off);
    store_le32_put(d + 8, h->stored_len);
    store_le32_put(d + 12, h->raw_len);
    store_le64_put(d + 16, h->seq);
    store_le64_put(d + 24, h->checksum);
    store_le32_put(d + 32, h->stride);
    store_le32_put(d + 36, h->piece_shift);
    store_le64_put(d + 40, store_hash(d, 40));
}

void store_blk_hdr_set_seq(unsigned char *d, uint64_t seq)
{
    store_le64_put(d + 16, seq);
    store_le64_put(d + 40, store_hash(d, 40));
}

int store_blk_hdr_parse(const void *val, size_t len, struct store_blk_hdr *h, const char **why)
{
    const unsigned char *d = val;
    if (len < STORE_BLK_HDR) {
        *why = "record shorter than its header";
        return BA_ECORRUPT;
    }
    if (store_le64_get(d + 40) != store_hash(d, 40)) {
        *why = "header checksum mismatch";
        return BA_ECORRUPT;
    }
    h->format = d[0];
    h->codec = d[1];
    h->filters = d[2];
    h->flags = d[3];
    h->payload_off = store_le32_get(d + 4);
    h->stored_len = store_le32_get(d + 8);
    h->raw_len = store_le32_get(d + 12);
    h->seq = store_le64_get(d + 16);
    h->checksum = store_le64_get(d + 24);
    h->stride = store_le32_get(d + 32);
    uint32_t ps = store_le32_get(d + 36);
    h->piece_shift = (uint8_t)ps;
    if (h->format != STORE_BLK_FORMAT) {
        *why = "unknown block record format";
        return BA_ECORRUPT;
    }
    if (h->flags & ~STORE_BLK_TOMBSTONE) {
        *why = "unknown flags in block header";
        return BA_ECORRUPT;
    }
    if (ps && (ps < STORE_PIECE_MIN || ps > 31 || (h->flags & STORE_BLK_TOMBSTONE) ||
               h->codec != STORE_CODEC_NONE || h->filters || h->raw_len % (1u << ps) ||
               h->raw_len >> ps < 2 || h->raw_len >> ps > STORE_PIECES_MAX ||
               h->payload_off < STORE_BLK_HDR + 8u * (h->raw_len >> ps))) {
        *why = "bad piece table in block header";
        return BA_ECORRUPT;
    }
    if (h->flags & STORE_BLK_TOMBSTONE) {
        if (h->stored_len || h->raw_len || len != STORE_BLK_HDR) {
            *why = "malformed tombstone";
            return BA_ECORRUPT;
        }
        return 0;
    }
    if (h->payload_off < STORE_BLK_HDR || h->payload_off > len ||
        h->stored_len > len - h->payload_off) {
        *why = "payload lies outside the record";
        return BA_ECORRUPT;
    }
    if (h->filters & ~(unsigned)STORE_FILTER_SHUFFLE) {
        *why = "unknown filter";
        return BA_ECORRUPT;
    }
    if ((h->filters & STORE_FILTER_SHUFFLE) &&
        (h->stride < 2 || h->stride > STORE_SHUFFLE_MAXSTRIDE)) {
        *why = "bad shuffle stride";
        return BA_ECORRUPT;
    }
    switch (h->codec) {
    case STORE_CODEC_NONE:
        if (h->stored_len != h->raw_len) {
            *why = "uncompressed payload length differs from block size";
            return BA_ECORRUPT;
        }
        break;
    case STORE_CODEC_ZSTD:
        if (!h->stored_len) {
            *why = "empty compressed payload";
            return BA_ECORRUPT;
        }
        break;
    default:
        *why = "unknown codec";
        return BA_ECORRUPT;
    }
    return 0;
}

/* ---- shuffle ------------------------------------------------------------------------ */

/* One chunk of m elements: byte j of element i goes to dst[j*m + i]. The constant
 * strides are separate instances so the compiler unrolls the inner loop. */
static inline void shuffle_chunk(unsigned char *restrict dst, const unsigned char *restrict src,
                                 size_t m, uint32_t stride)
{
    for (uint32_t j = 0; j < stride; j++) {
        unsigned char *o = dst + (size_t)j * m;
        const unsigned char *s = src + j;
        for (size_t i = 0; i < m; i++)
            o[i] = s[i * stride];
    }
}

static inline void unshuffle_chunk(unsigned char *restrict dst, const unsigned char *restrict src,
                                   size_t m, uint32_t stride)
{
    for (size_t i = 0; i < m; i++) {
        unsigned char *o = dst + i * stride;
        for (uint32_t j = 0; j < stride; j++)
            o[j] = src[(size_t)j * m + i];
    }
}

static void shuffle_dispatch(unsigned char *dst, const unsigned char *src, size_t m,
                             uint32_t stride, int inverse)
{
#define SHUF_CASE(k)                                                                               \
    case k:                                                                                        \
        if (inverse)                                                                               \
            unshuffle_chunk(dst, src, m, k);                                                       \
        else                                                                                       \
            shuffle_chunk(dst, src, m, k);                                                         \
        break;
    switch (stride) {
        SHUF_CASE(2)
        SHUF_CASE(4)
        SHUF_CASE(8)
        SHUF_CASE(16)
    default:
        if (inverse)
            unshuffle_chunk(dst, src, m, stride);
        else
            shuffle_chunk(dst, src, m, stride);
        break;
    }
#undef SHUF_CASE
}

/* Chunk size in bytes: the largest multiple of stride <= STORE_SHUFFLE_CHUNK. */
static size_t shuffle_chunk_bytes(uint32_t stride)
{
    return (STORE_SHUFFLE_CHUNK / stride) * stride;
}

void store_shuffle(unsigned char *dst, const unsigned char *src, size_t n, uint32_t stride)
{
    size_t cb = shuffle_chunk_bytes(stride);
    size_t off = 0;
    while (n - off >= stride) {
        size_t k = n - off < cb ? n - off : cb;
        size_t m = k / stride;
        shuffle_dispatch(dst + off, src + off, m, stride, 0);
        off += m * stride;
    }
    if (off < n)
        memcpy(dst + off, src + off, n - off); /* trailing partial element */
}

void store_unshuffle_inplace(unsigned char *buf, size_t n, uint32_t stride, unsigned char *scratch)
{
    size_t cb = shuffle_chunk_bytes(stride);
    size_t off = 0;
    while (n - off >= stride) {
        size_t k = n - off < cb ? n - off : cb;
        size_t m = k / stride;
        memcpy(scratch, buf + off, m * stride);
        shuffle_dispatch(buf + off, scratch, m, stride, 1);
        off += m * stride;
    }
}

/* ---- encoding ----------------------------------------------------------------------- */

void store_cctx_free(struct store_cctx *c)
{
    if (!c)
        return;
    ZSTD_freeCCtx(c->z);
    free(c->shuf);
    c->z = NULL;
    c->shuf = NULL;
    c->shuf_cap = 0;
}

static int grow_buf(unsigned char **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return 0;
    unsigned char *p = ba_realloc(*buf, need);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = need;
    return 0;
}

int store_block_encode(struct store_cctx *c, const struct store_array *a, const void *raw,
                       unsigned char **out_buf, size_t *out_cap, struct store_enc *enc, int quiet)
{
    size_t bs = a->block_size;
    memset(enc, 0, sizeof *enc);
    enc->raw_len = a->block_size;
    if (store_is_zero(raw, bs)) {
        enc->zero = 1;
        return 0;
    }
    enc->stride = 1;
    if (a->codec == STORE_CODEC_NONE) {
        enc->codec = STORE_CODEC_NONE;
        enc->payload = raw;
        enc->stored_len = a->block_size;
        enc->checksum = 0; /* computed while copying into place (store_enc_fill) */
        return 0;
    }
    enc->checksum = store_hash(raw, bs);
    const void *src = raw;
    if ((a->filters & STORE_FILTER_SHUFFLE) && a->itemsize >= 2 &&
        a->itemsize <= STORE_SHUFFLE_MAXSTRIDE) {
        if (grow_buf(&c->shuf, &c->shuf_cap, bs))
            return quiet ? -ENOMEM : ba_error_set(-ENOMEM, "no memory for a shuffle buffer");
        store_shuffle(c->shuf, raw, bs, a->itemsize);
        src = c->shuf;
        enc->filters = STORE_FILTER_SHUFFLE;
        enc->stride = a->itemsize;
    }
    size_t bound = ZSTD_compressBound(bs);
    if (grow_buf(out_buf, out_cap, bound))
        return quiet ? -ENOMEM : ba_error_set(-ENOMEM, "no memory for a compression buffer");
    if (!c->z) {
        c->z = ZSTD_createCCtx();
        if (!c->z)
            return quiet ? -ENOMEM : ba_error_set(-ENOMEM, "no memory for a zstd context");
    }
    /* A block is compressed alone, so a match window covering the whole block costs no
     * memory (one-shot compression and decompression work in the caller's buffers) and
     * lets level 1 find matches across it: 4 GiB of smooth float64 in 2 MiB blocks stored
     * 12% smaller at level 1 with a 2 MiB window than with level 1's own 512 KiB, at the
     * same speed (2,300 against 2,170 MB/s). No level gets a smaller window than its
     * own: zstd shrinks any window to the block's size anyway. Capped at zstd's default
     * decoder limit (2^27), so every decoder accepts the frames. */
    unsigned wlog = 63u - (unsigned)__builtin_clzll((unsigned long long)bs); /* a power of 2 */
    wlog = wlog < 10u ? 10u : wlog > 27u ? 27u : wlog;
    ZSTD_CCtx_reset(c->z, ZSTD_reset_session_and_parameters);
    size_t r = ZSTD_CCtx_setParameter(c->z, ZSTD_c_compressionLevel, a->level ? a->level : 1);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(c->z, ZSTD_c_windowLog, (int)wlog);
    if (!ZSTD_isError(r))
        r = ZSTD_compress2(c->z, *out_buf, bound, src, bs);
    if (ZSTD_isError(r))
        return quiet ? BA_EINVAL
                     : ba_error_set(BA_EINVAL, "zstd compression failed: %s", ZSTD_getErrorName(r));
    enc->codec = STORE_CODEC_ZSTD;
    enc->payload = *out_buf;
    enc->stored_len = (uint32_t)r;
    return 0;
}

uint32_t store_value_class(uint32_t len, unsigned psize, unsigned class_steps)
{
    if (len <= STORE_SMALL_VALUE)
        return len;
    uint64_t npages = ((uint64_t)len + STORE_OVERFLOW_HDR + psize - 1) / psize;
    if (class_steps) {
        /* Above 2*class_steps pages, round up to class_steps classes per doubling. */
        uint64_t lim = 2ull * class_steps;
        if (npages > lim) {
            unsigned lg = 63u - (unsigned)__builtin_clzll(npages);
            uint64_t step = (1ull << lg) / class_steps;
            npages = (npages + step - 1) / step * step;
        }
    }
    uint64_t v = npages * psize - STORE_OVERFLOW_HDR;
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Layout of an uncompressed record: big blocks get a prefix that puts the payload on
 * a page boundary of data.mdb (overflow data starts 16 bytes into its first page). */
static void layout_raw(struct store_enc *enc, const void *raw, unsigned psize)
{
    enc->codec = STORE_CODEC_NONE;
    enc->filters = 0;
    enc->stride = 1;
    enc->payload = raw;
    enc->stored_len = enc->raw_len;
    enc->checksum = 0;
    enc->payload_off = enc->raw_len >= STORE_ALIGN_MIN ? psize - STORE_OVERFLOW_HDR : STORE_BLK_HDR;
    enc->value_len = enc->payload_off + enc->raw_len;
    enc->piece_shift = (uint8_t)store_piece_shift(enc->raw_len, enc->payload_off);
}

void store_enc_layout(struct store_enc *enc, const void *raw, unsigned psize, unsigned class_steps)
{
    if (enc->zero) {
        enc->payload_off = STORE_BLK_HDR;
        enc->value_len = STORE_BLK_HDR;
        return;
    }
    if (enc->codec == STORE_CODEC_NONE) {
        layout_raw(enc, raw, psize);
        return;
    }
    uint64_t need = (uint64_t)STORE_BLK_HDR + enc->stored_len;
    uint32_t raw_value =
        (enc->raw_len >= STORE_ALIGN_MIN ? psize - STORE_OVERFLOW_HDR : STORE_BLK_HDR) +
        enc->raw_len;
    uint32_t v =
        need > UINT32_MAX ? UINT32_MAX : store_value_class((uint32_t)need, psize, class_steps);
    if (v >= raw_value) {
        /* Compression did not pay for its size class: store the block raw (faster to
         * read, and the raw value size is the array's uniform run). */
        layout_raw(enc, raw, psize);
        return;
    }
    enc->payload_off = STORE_BLK_HDR;
    enc->value_len = v;
}

/* The header of the record store_enc_fill() and store_enc_pwrite() write (checksum of a
 * raw payload: filled in by the caller). */
static struct store_blk_hdr enc_hdr(const struct store_enc *enc, uint64_t seq)
{
    return (struct store_blk_hdr){
        .format = STORE_BLK_FORMAT,
        .codec = enc->codec,
        .filters = enc->filters,
        .flags = enc->zero ? STORE_BLK_TOMBSTONE : 0,
        .payload_off = enc->payload_off,
        .stored_len = enc->zero ? 0 : enc->stored_len,
        .raw_len = enc->zero ? 0 : enc->raw_len,
        .seq = seq,
        .checksum = enc->checksum,
        .stride = enc->stride,
        .piece_shift = enc->zero || enc->codec != STORE_CODEC_NONE ? 0 : enc->piece_shift,
    };
}

void store_enc_fill(unsigned char *dst, const struct store_enc *enc, uint64_t seq)
{
    struct store_blk_hdr h = enc_hdr(enc, seq);
    if (!enc->zero) {
        memset(dst + STORE_BLK_HDR, 0, enc->payload_off - STORE_BLK_HDR);
        if (enc->codec == STORE_CODEC_NONE)
            h.checksum = store_hash_pieces(dst + enc->payload_off, enc->payload, enc->raw_len,
                                           h.piece_shift, dst + STORE_BLK_HDR);
        else
            memcpy(dst + enc->payload_off, enc->payload, enc->stored_len);
        size_t end = (size_t)enc->payload_off + enc->stored_len;
        memset(dst + end, 0, enc->value_len - end);
    }
    store_blk_hdr_write(dst, &h);
}

const unsigned char store_zeros[1u << 16];

/* pwritev() all of iov[0..n), resuming after short writes. Returns 0 or -errno. */
static int pwritev_all(int fd, struct iovec *iov, int n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwritev(fd, iov, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        off += (uint64_t)w;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (unsigned char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

int store_write_zeros(int fd, uint64_t from, uint64_t to)
{
    int rc = 0;
    for (uint64_t at = from; !rc && at < to;) {
        size_t take = to - at < sizeof store_zeros ? (size_t)(to - at) : sizeof store_zeros;
        struct iovec z = {(void *)(uintptr_t)store_zeros, take};
        rc = pwritev_all(fd, &z, 1, at);
        at += take;
    }
    return rc;
}

int store_enc_pwrite(int fd, uint64_t off, const struct store_enc *enc, uint64_t seq,
                     unsigned psize)
{
    unsigned char head[16384];
    if (enc->zero || enc->payload_off > sizeof head)
        return 1;
    struct store_blk_hdr h = enc_hdr(enc, seq);
    memset(head + STORE_BLK_HDR, 0, enc->payload_off - STORE_BLK_HDR);
    if (enc->codec == STORE_CODEC_NONE)
        h.checksum = store_hash_pieces(NULL, enc->payload, enc->raw_len, h.piece_shift,
                                       head + STORE_BLK_HDR);
    store_blk_hdr_write(head, &h);
    /* Zeros from the payload's end to the value's end and on to its last page's end, so
     * that the kernel never reads a page it is about to overwrite (the overflow run is
     * the value's): as many as fit in the first pwritev(), the rest after it. */
    uint64_t at = off + enc->payload_off + enc->stored_len;
    uint64_t end = (off + enc->value_len + psize - 1) / psize * psize;
    struct iovec iov[2 + 16];
    int n = 0;
    iov[n++] = (struct iovec){head, enc->payload_off};
    iov[n++] = (struct iovec){(void *)(uintptr_t)enc->payload, enc->stored_len};
    for (; at < end && n < (int)(sizeof iov / sizeof iov[0]); n++) {
        size_t take = end - at < sizeof store_zeros ? (size_t)(end - at) : sizeof store_zeros;
        iov[n] = (struct iovec){(void *)(uintptr_t)store_zeros, take};
        at += take;
    }
    int rc = pwritev_all(fd, iov, n, off);
    return rc ? rc : store_write_zeros(fd, at, end);
}

/* ---- decoding ----------------------------------------------------------------------- */

int store_block_decode(struct store_dslot *ds, const struct store_blk_hdr *h, const void *payload,
                       void *buf, const char **why)
{
    uint64_t sum;
    if (h->codec == STORE_CODEC_NONE) {
        sum = store_hash_pieces(buf, payload, h->raw_len, 0, NULL);
    } else {
        size_t r = ZSTD_decompressDCtx(ds->z, buf, h->raw_len, payload, h->stored_len);
        if (ZSTD_isError(r)) {
            *why = "zstd cannot decode the payload";
            return BA_ECORRUPT;
        }
        if (r != h->raw_len) {
            *why = "payload decodes to the wrong length";
            return BA_ECORRUPT;
        }
        if (h->filters & STORE_FILTER_SHUFFLE)
            store_unshuffle_inplace(buf, h->raw_len, h->stride, ds->scratch);
        sum = store_hash(buf, h->raw_len);
    }
    if (sum != h->checksum) {
        *why = "checksum mismatch";
        return BA_ECORRUPT;
    }
    return 0;
}

int store_pieces_check(const struct store_blk_hdr *h, const void *val, const void *raw,
                       const char **why)
{
    if (!h->piece_shift)
        return 0;
    const unsigned char *sums = (const unsigned char *)val + STORE_BLK_HDR;
    size_t piece = (size_t)1 << h->piece_shift;
    for (uint32_t i = 0; i < h->raw_len >> h->piece_shift; i++)
        if (store_le64_get(sums + 8 * i) !=
            store_hash((const unsigned char *)raw + i * piece, piece)) {
            *why = "piece checksum mismatch";
            return BA_ECORRUPT;
        }
    return 0;
}
