/* flowtrace._crecorder: the native writer -- a thread that frames chunks (zlib, crc32: crc.c) and
 * appends them to the session file without the GIL.
 *
 * The Python writer (flowtrace/ftr/writer.py) encodes a batch's chunks and hands them over
 * with put(): a copy into one job, under the GIL, and nothing else. Compressing (zlib level
 * 1, kept only when smaller: format.frame_chunk's rule and bytes) and writing happen on this
 * thread, which never takes the GIL: the flusher (or a program thread flushing under
 * backpressure) does not wait for the GIL again after zlib and write, and the program runs
 * meanwhile on another core. Each job -- one batch's chunks -- goes out in one write (looped
 * over partial writes) on a file opened with O_APPEND, so a reader or a crash sees whole
 * chunks followed by at most one partial one, as before.
 *
 * Bounds: at most MAX_QUEUED jobs wait; put() blocks (GIL released) while they do, so memory
 * stays bounded and a kill -9 loses at most the batches of the last flushes. A forked child
 * has no writer thread: every method there acts on a closed writer (the parent's session is
 * not the child's to finish) and never touches the mutex, which may have been held at fork. */
#include "crecorder.h"

#ifdef FT_HAVE_ZLIB
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#ifndef IOV_MAX
#define IOV_MAX 1024   /* (Linux's UIO_MAXIOV) */
#endif
#define MAX_QUEUED 2
#define COMPRESS_MIN 64     /* format.frame_chunk: smaller payloads are stored as they are */
#define FLAG_ZLIB 0x01

/* A job: the chunks of one batch, each a Part: its kind, compress (0 stored, 1 zlib -- the
 * whole payload --, DEFLATE_COLUMNS -- its columns), and payload. The payload is not copied:
 * a bytes object (every payload the writer is given: immutable) is read where it is, the job
 * holding a reference to it (`owner`); any other buffer is copied into the job's `data`. A
 * put copied every payload into the job (~1 instruction a byte under callgrind: rep movsb,
 * 22 a call of the raytrace workload, 17 of oop). The references are released under the GIL
 * by the next put, flush or close (the writer thread never takes the GIL): written jobs wait
 * on `finished` until then. */
typedef struct { unsigned char kind[4]; int compress; uint32_t len; const unsigned char *p; PyObject *owner; } Part;
typedef struct Job { struct Job *next; size_t nparts; Part *parts; unsigned char data[]; } Job;

typedef struct {
    PyObject_HEAD
    int fd;
    pid_t pid;                   /* the process that owns the thread */
    int started, stopping, closed;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    Job *head, *tail;
    Job *finished;               /* written jobs, their payloads' references not released yet */
    int queued;                  /* jobs not written yet (also the one being written) */
    int err;                     /* errno of the first failed write (sticky) */
    unsigned long long bytes;    /* written to the file */
    /* Memory kept from one job to the next (freed when the writer stops): the framed chunks'
     * buffer (`out`, the thread's own). A buffer of a batch's size -- hundreds of KB with
     * arguments -- malloc'd and freed at every flush was given back to the system and faulted
     * in again page by page (~2,500 page faults of the raytrace workload's 6 runs). `iov`:
     * write_job's pieces. */
    unsigned char *out;
    size_t outcap;
    struct iovec *iov;
    size_t iovcap;
    /* The thread's one zlib stream (level 1, zlib's defaults: compress2's bytes), reset for
     * each payload or column. compress2 made and freed one per column: ~270 KB of zlib state
     * allocated, its 64 KB hash table cleared, and given back each time -- 2.8x the CPU time a
     * byte of reusing it (24.8 -> 8.9 ns a byte of generators' MARK/CALL/EXIT columns, 1-6 KB
     * each). Made on first use, ended when the thread ends. */
    z_stream zs;
    int zs_ready;
} WriterObject;

/* writev of n pieces (at most IOV_MAX at a time), over partial writes: 0, or an errno. */
static int
write_all(int fd, struct iovec *iov, size_t n)
{
    while (n) {
        ssize_t k = writev(fd, iov, (int)(n < IOV_MAX ? n : IOV_MAX));
        if (k < 0) {
            if (errno == EINTR) continue;
            return errno ? errno : EIO;
        }
        for (; n && (size_t)k >= iov->iov_len; iov++, n--) k -= (ssize_t)iov->iov_len;
        if (n) { iov->iov_base = (char *)iov->iov_base + k; iov->iov_len -= (size_t)k; }
    }
    return 0;
}

static void
put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}

static uint32_t
get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* compress2(dst, dlen, src, n, 1) on the writer thread's stream: the same bytes; Z_OK when the
 * stream fits in *dlen (then *dlen is its length), else not Z_OK. */
static int
zpack(WriterObject *w, unsigned char *dst, uLongf *dlen, const unsigned char *src, uLong n)
{
    int rc = w->zs_ready ? deflateReset(&w->zs) : deflateInit(&w->zs, 1);
    if (rc != Z_OK) return rc;
    w->zs_ready = 1;
    w->zs.next_in = (Bytef *)src; w->zs.avail_in = (uInt)n;
    w->zs.next_out = dst; w->zs.avail_out = (uInt)*dlen;
    rc = deflate(&w->zs, Z_FINISH);
    *dlen = w->zs.total_out;
    return rc == Z_STREAM_END ? Z_OK : Z_BUF_ERROR;
}

/* Is this column descriptor's name one of the columns kept as coded (times: their Golomb codes
 * are near their entropy, zlib gains 5-10% there for two thirds of its work: callgrind,
 * generators; argument and result ids: deflating them doubled the writer's zlib work on
 * generators with arguments, +11 M instructions a run of scale 3, where no goal asks for the
 * bytes)? format.KEPT_CODED */
static int
kept_coded(const unsigned char *desc)
{
    static const char names[][4] = {"t   ", "t0  ", "t1  ", "run ", "span", "args", "val "};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) if (!memcmp(desc, names[i], 4)) return 1;
    return 0;
}

/* Format 1.8, a chunk put with DEFLATE_COLUMNS: its columns payload with every column of
 * encodings 2-12 (14 stays as it is) not kept_coded, and longer than COMPRESS_MIN, deflated
 * where that is smaller (ENC_DEFLATE: the encoding's byte, then a zlib stream of the body), the rest as they were --
 * format.deflate_columns' rule and bytes. A MARK chunk's ids, kinds and fold counts repeat
 * from one walk of a program's structure to the next and shrink ~5x; its times do not, and
 * leaving them out takes ~60% of zlib's work away. Made at `out` (room: n bytes, never more:
 * a column is deflated only into less room than it had); its length, or 0 to store the
 * payload as it is (one that does not parse as columns of encodings 2-12 and 14: not the C
 * drain's). */
static size_t
deflate_columns(WriterObject *w, const unsigned char *p, uint32_t n, unsigned char *out)
{
    if (n < 16) return 0;
    size_t ncols = (size_t)p[12] | (size_t)p[13] << 8, head = 16 + 8 * ncols, pos = head, len = head;
    if (head > n) return 0;
    memcpy(out, p, head);
    for (size_t k = 0; k < ncols; k++) {
        unsigned char *desc = out + 16 + 8 * k;
        int enc = desc[5];
        if (enc < ENC_VARINT_DELTA || (enc > ENC_GOLOMB_RISE && enc != ENC_SHARED) || n - pos < 4) return 0;
        uint32_t size = get_u32(p + pos);
        if (size > n - pos - 4) return 0;
        const unsigned char *body = p + pos + 4;
        pos += 4 + (size_t)size;
        uLongf packed = size - 2;   /* (1 + packed < size, or it is not worth it) */
        if (size > COMPRESS_MIN && enc != ENC_SHARED && !kept_coded(desc)
                && zpack(w, out + len + 5, &packed, body, size) == Z_OK) {
            put_u32(out + len, (uint32_t)packed + 1);
            out[len + 4] = (unsigned char)enc;
            desc[5] = ENC_DEFLATE;
            len += 5 + packed;
        } else {
            put_u32(out + len, size);
            memcpy(out + len + 4, body, size);
            len += 4 + (size_t)size;
        }
    }
    return pos == n ? len : 0;
}

/* Frame every chunk of a job and write them: 0, or an errno. A chunk's header, its CRC and a
 * compressed payload are made in `out`; a payload stored as it is (value records, most
 * chunks) is written from the job itself -- copying it into one buffer first was ~60% of the
 * writer thread's instructions (callgrind, raytrace). The pieces go out in one writev (looped
 * over partial writes) on the O_APPEND file, as one write did. */
static int
write_job(WriterObject *w, const Job *job, size_t *written)
{
    size_t cap = 0, npieces = 3 * job->nparts;
    for (size_t i = 0; i < job->nparts; i++) {   /* room: a header and CRC, and a payload compressed at its worst */
        const Part *pt = &job->parts[i];
        uint32_t n = pt->len;
        int how = pt->compress;
        cap += 16 + (how == DEFLATE_COLUMNS ? n : how && n > COMPRESS_MIN ? compressBound(n) : 0);
    }
    if (cap > w->outcap) {   /* (not realloc: nothing in `out` is kept from one job to the next,
                              * and a realloc that moved the block copied it all: ~0.18 M
                              * instructions in a generators phase, or none, as the heap's layout had it) */
        free(w->out);
        w->out = malloc(cap);
        w->outcap = w->out ? cap : 0;
        if (!w->out) return ENOMEM;
    }
    if (npieces > w->iovcap) {
        struct iovec *more = realloc(w->iov, npieces * sizeof(struct iovec));
        if (!more) return ENOMEM;
        w->iov = more;
        w->iovcap = npieces;
    }
    unsigned char *out = w->out;
    struct iovec *iov = w->iov;
    size_t k = 0, total = 0, len = 0;
    for (size_t i = 0; i < job->nparts; i++) {
        const Part *pt = &job->parts[i];
        int compress = pt->compress;
        uint32_t n = pt->len;
        const unsigned char *payload = pt->p, *body = payload;
        unsigned char *head = out + len;
        len += 12;
        uLongf packed = compress == 1 && n > COMPRESS_MIN ? (uLongf)compressBound(n) : 0;
        uint8_t flags = 0;
        uint32_t plen = n;
        size_t cols = compress == DEFLATE_COLUMNS ? deflate_columns(w, payload, n, out + len) : 0;
        if (cols) {   /* (0: stored as it is) */
            plen = (uint32_t)cols;
            body = out + len;
            len += plen;
        } else if (packed && zpack(w, out + len, &packed, payload, n) == Z_OK && packed < n) {
            flags = FLAG_ZLIB;
            plen = (uint32_t)packed;
            body = out + len;
            len += plen;
        }
        memcpy(head, pt->kind, 4);
        head[4] = flags; head[5] = head[6] = head[7] = 0;
        put_u32(head + 8, plen);
        uint32_t crc = chunk_crc32(chunk_crc32(0, head, 12), body, plen);   /* (crc.c: ~8x fewer instructions than zlib's) */
        unsigned char *tail = out + len;
        put_u32(tail, crc);
        len += 4;
        iov[k++] = (struct iovec){head, 12};
        iov[k++] = (struct iovec){(void *)body, plen};
        iov[k++] = (struct iovec){tail, 4};
        total += 16 + plen;
    }
    int err = write_all(w->fd, iov, k);
    *written = total;
    return err;
}

static void *
writer_main(void *arg)
{
    WriterObject *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stopping) pthread_cond_wait(&w->work, &w->mu);
        if (!w->head) break;   /* stopping, and everything is written */
        Job *job = w->head;
        w->head = job->next;
        if (!w->head) w->tail = NULL;
        int failed = w->err;
        pthread_mutex_unlock(&w->mu);
        size_t n = 0;
        int err = failed ? 0 : write_job(w, job, &n);   /* after a failure, later jobs are dropped */
        pthread_mutex_lock(&w->mu);
        job->next = w->finished;   /* (its references: released under the GIL, release_finished) */
        w->finished = job;
        if (err && !w->err) w->err = err;
        w->bytes += n;
        w->queued--;
        pthread_cond_broadcast(&w->done);
    }
    pthread_mutex_unlock(&w->mu);
    if (w->zs_ready) { deflateEnd(&w->zs); w->zs_ready = 0; }
    return NULL;
}

static int
writer_init(WriterObject *w, PyObject *args, PyObject *kw)
{
    int fd;
    if (!PyArg_ParseTuple(args, "i", &fd)) return -1;
    if (w->started) { PyErr_SetString(PyExc_RuntimeError, "the writer is running"); return -1; }
    w->fd = fd;
    w->pid = getpid();
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->done, NULL);
    /* The thread is ours, not the program's: it starts with the program's signals blocked (a
     * new thread inherits its creator's mask), so a signal the program's main thread blocks
     * for a while waits for it instead of being taken here (flowtrace/sigmask.py does the same
     * for our Python threads). Faults stay deliverable. */
    sigset_t ours, before;
    sigfillset(&ours);
    sigdelset(&ours, SIGSEGV); sigdelset(&ours, SIGBUS); sigdelset(&ours, SIGFPE);
    sigdelset(&ours, SIGILL); sigdelset(&ours, SIGTRAP); sigdelset(&ours, SIGSYS);
    sigdelset(&ours, SIGABRT);
    int masked = pthread_sigmask(SIG_BLOCK, &ours, &before) == 0;
    int failed = pthread_create(&w->thread, NULL, writer_main, w) != 0;
    if (masked) pthread_sigmask(SIG_SETMASK, &before, NULL);
    if (failed) {
        PyErr_SetString(PyExc_RuntimeError, "cannot start the writer thread");
        return -1;
    }
    w->started = 1;
    return 0;
}

/* Usable here: started, not closed, and this is the process that started it. */
static int
writer_live(WriterObject *w)
{
    return w->started && !w->closed && w->pid == getpid();
}

static PyObject *
raise_err(int err)
{
    errno = err;
    return PyErr_SetFromErrno(PyExc_OSError);
}

/* With `mu` held: queue the job unless a write failed (*err: its errno, or 0). Returns 1. */
static int
enqueue(WriterObject *w, Job *job, int *err)
{
    *err = w->err;
    if (!*err) {
        if (w->tail) w->tail->next = job; else w->head = job;
        w->tail = job;
        w->queued++;
        pthread_cond_signal(&w->work);
    }
    return 1;
}

/* The references of written jobs (and their memory), under the GIL. */
static void
release_jobs(Job *j)
{
    while (j) {
        Job *next = j->next;
        for (size_t i = 0; i < j->nparts; i++) Py_XDECREF(j->parts[i].owner);
        free(j);
        j = next;
    }
}

static void
release_finished(WriterObject *w)
{
    pthread_mutex_lock(&w->mu);   /* (GIL held: see writer_put) */
    Job *j = w->finished;
    w->finished = NULL;
    pthread_mutex_unlock(&w->mu);
    release_jobs(j);
}

/* put(parts): parts = [(kind: bytes of 4, payload: bytes-like, compress: bool or DEFLATE_COLUMNS), ...] */
static PyObject *
writer_put(WriterObject *w, PyObject *parts)
{
    if (!PyList_Check(parts)) { PyErr_SetString(PyExc_TypeError, "put() takes a list"); return NULL; }
    if (w->started && w->pid != getpid()) Py_RETURN_NONE;   /* a forked child: not its file to write */
    if (!writer_live(w)) { PyErr_SetString(PyExc_ValueError, "the writer is closed"); return NULL; }
    release_finished(w);
    Py_ssize_t n = PyList_GET_SIZE(parts);
    Py_buffer *views = PyMem_Calloc((size_t)n + 1, sizeof(Py_buffer));   /* (payloads that are not bytes) */
    if (!views) return PyErr_NoMemory();
    size_t copied = 0;   /* bytes of those, copied into the job */
    Py_ssize_t got = 0;
    PyObject *result = NULL;
    for (; got < n; got++) {
        PyObject *item = PyList_GET_ITEM(parts, got), *kind, *payload;
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3 || !PyBytes_Check(kind = PyTuple_GET_ITEM(item, 0))
                || PyBytes_GET_SIZE(kind) != 4) {
            PyErr_SetString(PyExc_TypeError, "a part is (kind: 4 bytes, payload, compress)");
            goto done;
        }
        payload = PyTuple_GET_ITEM(item, 1);
        if (PyBytes_CheckExact(payload)) {
            if ((size_t)PyBytes_GET_SIZE(payload) > UINT32_MAX) { PyErr_SetString(PyExc_ValueError, "chunk too large"); goto done; }
            continue;
        }
        if (PyObject_GetBuffer(payload, &views[got], PyBUF_SIMPLE) < 0) goto done;
        if ((size_t)views[got].len > UINT32_MAX) { got++; PyErr_SetString(PyExc_ValueError, "chunk too large"); goto done; }
        copied += (size_t)views[got].len;
    }
    Job *job = malloc(sizeof(Job) + (size_t)n * sizeof(Part) + copied);
    if (!job) { PyErr_NoMemory(); goto done; }
    job->next = NULL;
    job->nparts = (size_t)n;
    job->parts = (Part *)job->data;   /* (data: malloc's alignment, fit for a Part) */
    unsigned char *copy = job->data + (size_t)n * sizeof(Part);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(parts, i), *payload = PyTuple_GET_ITEM(item, 1);
        PyObject *how = PyTuple_GET_ITEM(item, 2);   /* (a bool, or DEFLATE_COLUMNS) */
        Part *pt = &job->parts[i];
        pt->compress = PyLong_CheckExact(how) && PyLong_AsLong(how) == DEFLATE_COLUMNS ? DEFLATE_COLUMNS
            : PyObject_IsTrue(how) == 1;
        memcpy(pt->kind, PyBytes_AS_STRING(PyTuple_GET_ITEM(item, 0)), 4);
        if (PyBytes_CheckExact(payload)) {   /* read where it is: immutable, kept alive by the job */
            pt->len = (uint32_t)PyBytes_GET_SIZE(payload);
            pt->p = (const unsigned char *)PyBytes_AS_STRING(payload);
            pt->owner = Py_NewRef(payload);
        } else {
            pt->len = (uint32_t)views[i].len;
            memcpy(copy, views[i].buf, pt->len);
            pt->p = copy;
            pt->owner = NULL;
            copy += pt->len;
        }
    }
    /* With room in the queue (nearly always) the job goes in without releasing the GIL:
     * releasing it hands it to a waiting program thread, and this thread then waits for it
     * again -- up to a switch interval (5 ms) -- to finish the flush (GIL ping-pong at every
     * flush). Locking `mu` with the GIL held cannot deadlock: whoever holds `mu` (the writer
     * thread, or a put/flush waiting below) holds it briefly and never waits for the GIL. */
    int err, queued = 0;
    pthread_mutex_lock(&w->mu);
    if (w->queued < MAX_QUEUED || w->err) queued = enqueue(w, job, &err);
    pthread_mutex_unlock(&w->mu);
    if (!queued) {   /* the writer is behind: wait for room without the GIL (bounded memory) */
        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(&w->mu);
        while (w->queued >= MAX_QUEUED && !w->err) pthread_cond_wait(&w->done, &w->mu);
        enqueue(w, job, &err);
        pthread_mutex_unlock(&w->mu);
        Py_END_ALLOW_THREADS
    }
    if (err) { release_jobs(job); raise_err(err); goto done; }
    result = Py_NewRef(Py_None);
done:
    for (Py_ssize_t i = 0; i < got; i++) if (views[i].obj) PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    return result;
}

/* Wait (GIL released) until every job put so far is written; the errno of a failure, or 0. */
static int
wait_written(WriterObject *w)
{
    int err;
    pthread_mutex_lock(&w->mu);   /* (GIL held: see writer_put) */
    int idle = !w->queued || w->err;
    err = w->err;
    pthread_mutex_unlock(&w->mu);
    if (idle) return err;   /* nothing to wait for: the GIL stays with this thread */
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&w->mu);
    while (w->queued && !w->err) pthread_cond_wait(&w->done, &w->mu);
    err = w->err;
    pthread_mutex_unlock(&w->mu);
    Py_END_ALLOW_THREADS
    return err;
}

static PyObject *
writer_flush(WriterObject *w, PyObject *Py_UNUSED(ignored))
{
    if (!writer_live(w)) Py_RETURN_NONE;
    int err = wait_written(w);
    release_finished(w);
    return err ? raise_err(err) : Py_NewRef(Py_None);
}

/* Write what is queued, stop the thread. The file stays open (the caller owns the fd). */
static int
writer_stop(WriterObject *w)
{
    if (!writer_live(w)) { w->closed = 1; return 0; }
    int err = wait_written(w);
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    Py_END_ALLOW_THREADS
    w->closed = 1;
    release_jobs(w->head);   /* (after a failure) */
    w->head = w->tail = NULL;
    release_jobs(w->finished);
    w->finished = NULL;
    free(w->out); w->out = NULL; w->outcap = 0;
    free(w->iov); w->iov = NULL; w->iovcap = 0;
    return err;
}

static PyObject *
writer_close(WriterObject *w, PyObject *Py_UNUSED(ignored))
{
    int err = writer_stop(w);
    return err ? raise_err(err) : Py_NewRef(Py_None);
}

static PyObject *
writer_bytes(WriterObject *w, void *Py_UNUSED(closure))
{
    unsigned long long n = 0;
    if (writer_live(w)) { pthread_mutex_lock(&w->mu); n = w->bytes; pthread_mutex_unlock(&w->mu); }
    else n = w->bytes;
    return PyLong_FromUnsignedLongLong(n);
}

static void
writer_dealloc(WriterObject *w)
{
    writer_stop(w);
    if (w->started && w->pid == getpid()) {
        pthread_mutex_destroy(&w->mu); pthread_cond_destroy(&w->work); pthread_cond_destroy(&w->done);
    }
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyMethodDef writer_methods[] = {
    {"put", (PyCFunction)writer_put, METH_O, "put(parts): queue one batch's chunks [(kind, payload, compress)]."},
    {"flush", (PyCFunction)writer_flush, METH_NOARGS, "Wait until everything put is in the file (OSError if a write failed)."},
    {"close", (PyCFunction)writer_close, METH_NOARGS, "flush() and stop the thread (the fd stays open)."},
    {NULL},
};

static PyGetSetDef writer_getset[] = {
    {"bytes_written", (getter)writer_bytes, NULL, "bytes appended to the file by this writer", NULL},
    {NULL},
};

PyTypeObject NativeWriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "flowtrace._crecorder.NativeWriter",
    .tp_basicsize = sizeof(WriterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "NativeWriter(fd): frames and appends chunks to fd on its own thread, without the GIL.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)writer_init,
    .tp_dealloc = (destructor)writer_dealloc,
    .tp_methods = writer_methods,
    .tp_getset = writer_getset,
};

int
add_native_writer(PyObject *m)
{
    if (PyType_Ready(&NativeWriterType) < 0) return -1;
    return PyModule_AddObjectRef(m, "NativeWriter", (PyObject *)&NativeWriterType);
}

#else   /* no zlib headers at build time: no native writer (the Python writer is used) */

int
add_native_writer(PyObject *m)
{
    return 0;
}

#endif
