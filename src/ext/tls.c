/*
 * tls.c -- SSLProtocolBase: the TLS record path in C under asyncio's own
 * SSLProtocol state machine.
 *
 * eloop/_loop.py combines this base with asyncio's class:
 *
 *     class SSLProtocol(_eloop.SSLProtocolBase, sslproto.SSLProtocol)
 *
 * The hot attributes asyncio's code reads and assigns (_state, _sslobj,
 * _incoming, the flow-control flags, ...) are slots of this C layout
 * (member descriptors, which win over the instance __dict__), so Python
 * and C see the same values without a dict lookup.  The per-record work
 * runs here, with no Python frame, whenever the state is WRAPPED and
 * nothing unusual is pending:
 *
 *   get_buffer/buffer_updated  ciphertext into the incoming MemoryBIO, then
 *                              asyncio's _do_read(): records decrypted into
 *                              a buffer reused for the connection's life
 *                              (data_received() gets one bytes object) or
 *                              straight into a BufferedProtocol's buffer;
 *                              the outgoing BIO flushed to the transport;
 *                              flow control checked;
 *   _write_appdata             asyncio's _do_write() for an empty backlog:
 *                              SSLObject.write per buffer, the outgoing BIO
 *                              to the transport, flow control checked.
 *
 * The application's transport is SSLTransport, asyncio's
 * _SSLProtocolTransport with write() and writelines() in C (same checks,
 * same messages), so a write goes from the application to the record
 * path with no Python frame either.
 *
 * A few of asyncio's methods that every connection runs are here too,
 * with asyncio's branches in asyncio's order, so that a new connection
 * runs fewer Python frames: _do_handshake, _process_outgoing, _do_read
 * (states WRAPPED and FLUSHING) and _on_handshake_complete (a success
 * outside debug mode; asyncio's method otherwise).
 *
 * Anything else -- the rest of the handshake and shutdown, a non-empty
 * write backlog, a threshold crossed, end of stream, an error -- calls
 * the very Python methods asyncio would call at that point, so behaviour
 * (callback order, exceptions, messages) is asyncio's.
 *
 * SSLObject and MemoryBIO are driven through their methods only.
 * ssl.SSLObject's read/write/pending are Python functions that forward to
 * the _ssl object it wraps (its `_sslobj`); when the object is exactly an
 * ssl.SSLObject (not a subclass from SSLContext.sslobject_class, which may
 * override them) we call that object's methods directly, saving a Python
 * frame per call.  Nothing reads a C struct of the ssl module.
 */
#include "state.h"

/* The slots: asyncio attribute name, C field. */
#define SP_FIELDS(X)                                                        \
    X(_state, state)                                                        \
    X(_sslobj, sslobj)                                                      \
    X(_incoming, incoming)                                                  \
    X(_outgoing, outgoing)                                                  \
    X(_transport, transport)                                                \
    X(_loop, loop)                                                          \
    X(_app_protocol, app_protocol)                                          \
    X(_app_protocol_is_buffer, app_is_buffer)                               \
    X(_app_protocol_get_buffer, app_get_buffer)                             \
    X(_app_protocol_buffer_updated, app_buffer_updated)                     \
    X(_write_backlog, write_backlog)                                        \
    X(_write_buffer_size, write_buffer_size)                                \
    X(_ssl_buffer, ssl_buffer)                                              \
    X(_ssl_buffer_view, ssl_buffer_view)                                    \
    X(_app_reading_paused, app_reading_paused)                              \
    X(_app_writing_paused, app_writing_paused)                              \
    X(_ssl_reading_paused, ssl_reading_paused)                              \
    X(_ssl_writing_paused, ssl_writing_paused)                              \
    X(_incoming_high_water, incoming_high)                                  \
    X(_incoming_low_water, incoming_low)                                    \
    X(_outgoing_high_water, outgoing_high)                                  \
    X(_outgoing_low_water, outgoing_low)

typedef struct {
    PyObject_HEAD
#define FIELD(name, f) PyObject *f;
    SP_FIELDS(FIELD)
#undef FIELD
    /* The _ssl object behind sslobj when sslobj is exactly an
     * ssl.SSLObject (see the header), and the sslobj it was taken from:
     * asyncio never replaces _sslobj, but if anything does, raw is
     * looked up again. */
    PyObject *raw;
    PyObject *raw_owner;
    /* Plaintext for data_received(): decrypted here, then copied into
     * the bytes object handed over.  Allocated on first use with room for
     * one record, grown (to PLAIN_CAP at most) only when more comes at
     * once: a short-lived or request/response connection then never
     * costs the mmap/munmap glibc gives a 256 KiB block. */
    char *plain;
    Py_ssize_t plain_cap;
    /* A read has filled the ciphertext buffer: from then on get_buffer()
     * gives max_size bytes; before, RBUF_START (see there). */
    int filled;
    eloop_state *st;    /* borrowed: our base type keeps the module alive */
    /* Record boundaries of the ciphertext we put in the incoming BIO,
     * from the 5-byte TLS record headers: whether a complete record is
     * there to read, without an SSL read that would raise
     * SSLWantReadError on a partial one (see may_read).  OpenSSL reads a
     * MemoryBIO exactly record by record (no read-ahead: Python never
     * turns it on), so what it consumed is `written - incoming.pending`. */
    long long written;          /* ciphertext bytes put in the BIO */
    long long complete_end;     /* stream offset after the last complete
                                   record */
    long long rec_end;          /* ... after the record being received */
    unsigned char hdr[5];       /* its header, hdr_have bytes of it */
    int hdr_have;
    int unparsed;               /* not TLS records as we know them (an
                                   SSLv2-style hello, say): always read */
} SSLProtoObject;

/* asyncio's max_size, what one read of the transport can bring */
#define PLAIN_CAP (256 * 1024)
/* a record's plaintext at most (2^14), and some */
#define PLAIN_MIN (17 * 1024)
/* The first ciphertext buffer: under glibc's mmap threshold, so a
 * connection that never reads more at once (a handshake and a few
 * messages) costs no mmap, page faults and munmap of 256 KiB. */
#define RBUF_START (64 * 1024)

static PyMemberDef SSLProto_members[] = {
#define MEMBER(name, f)                                                     \
    {#name, EL_T_OBJECT_EX, offsetof(SSLProtoObject, f), 0, NULL},
    SP_FIELDS(MEMBER)
#undef MEMBER
    {NULL, 0, 0, 0, NULL},
};

static PyObject *
SSLProto_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    (void)args;
    (void)kw;
    eloop_state *st = eloop_state_of_type(tp);
    if (st == NULL) {
        return NULL;
    }
    SSLProtoObject *self = (SSLProtoObject *)tp->tp_alloc(tp, 0);
    if (self != NULL) {
        self->st = st;
    }
    return (PyObject *)self;
}

static int
SSLProto_traverse(SSLProtoObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
#define VISIT(name, f) Py_VISIT(self->f);
    SP_FIELDS(VISIT)
#undef VISIT
    Py_VISIT(self->raw);
    Py_VISIT(self->raw_owner);
    return 0;
}

static int
SSLProto_clear(SSLProtoObject *self)
{
#define CLEAR(name, f) Py_CLEAR(self->f);
    SP_FIELDS(CLEAR)
#undef CLEAR
    Py_CLEAR(self->raw);
    Py_CLEAR(self->raw_owner);
    return 0;
}

static void
SSLProto_dealloc(SSLProtoObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    SSLProto_clear(self);
    PyMem_Free(self->plain);
    self->plain = NULL;
    self->plain_cap = 0;
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* --------------------------------------------------------------------- */
/* helpers                                                                */

/* A slot asyncio has set by now; AttributeError as Python would give. */
static inline PyObject *
need(SSLProtoObject *self, PyObject *v, const char *name)
{
    if (v == NULL) {
        PyErr_Format(PyExc_AttributeError,
                     "'%.100s' object has no attribute '%s'",
                     Py_TYPE(self)->tp_name, name);
    }
    return v;
}

/* self.<name>() */
static int
call0(SSLProtoObject *self, PyObject *name)
{
    return discard(PyObject_CallMethodNoArgs((PyObject *)self, name));
}

/* What to call read/write/pending on: the _ssl object, or sslobj. */
static PyObject *
ssl_target(SSLProtoObject *self)
{
    PyObject *sslobj = need(self, self->sslobj, "_sslobj");
    if (sslobj == NULL) {
        return NULL;
    }
    if (self->raw_owner == sslobj) {
        return self->raw;
    }
    Py_CLEAR(self->raw);
    Py_CLEAR(self->raw_owner);
    PyObject *raw = NULL;
    if ((PyObject *)Py_TYPE(sslobj) == self->st->tl.SSLObject) {
        raw = PyObject_GetAttr(sslobj, self->st->tl.str__sslobj);
        if (raw == NULL) {
            PyErr_Clear();
        }
    }
    self->raw = raw ? raw : Py_NewRef(sslobj);
    self->raw_owner = Py_NewRef(sslobj);
    return self->raw;
}

/* A call's int result as a Py_ssize_t (-1 with the error if it failed);
 * takes the reference. */
static Py_ssize_t
take_size(PyObject *v)
{
    if (v == NULL) {
        return -1;
    }
    Py_ssize_t n = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    return n;
}

/* obj.<name> as a Py_ssize_t (MemoryBIO.pending and the like) */
static inline Py_ssize_t
attr_size(PyObject *obj, PyObject *name)
{
    return take_size(PyObject_GetAttr(obj, name));
}

/* obj.<name>() as a Py_ssize_t */
static inline Py_ssize_t
call_size(PyObject *obj, PyObject *name)
{
    return take_size(PyObject_CallMethodNoArgs(obj, name));
}

static Py_ssize_t
slot_size(SSLProtoObject *self, PyObject *v, const char *name)
{
    if (need(self, v, name) == NULL) {
        return -1;
    }
    return PyLong_AsSsize_t(v);
}

/* Python truth of a slot (asyncio keeps bools there) */
static int
slot_true(SSLProtoObject *self, PyObject *v, const char *name)
{
    if (need(self, v, name) == NULL) {
        return -1;
    }
    return v == Py_True ? 1 : v == Py_False ? 0 : PyObject_IsTrue(v);
}

/* Follows the record headers in n more ciphertext bytes. */
static void
track_records(SSLProtoObject *self, const unsigned char *p, Py_ssize_t n)
{
    long long pos = self->written;
    Py_ssize_t i = 0;
    self->written += n;
    while (!self->unparsed && i < n) {
        if (self->hdr_have < 5) {
            while (self->hdr_have < 5 && i < n) {
                self->hdr[self->hdr_have++] = p[i++];
            }
            if (self->hdr_have < 5) {
                break;
            }
            /* content type 20-24, version 3.x, length up to 2^14 plus
             * the expansion TLS allows */
            unsigned len = ((unsigned)self->hdr[3] << 8) | self->hdr[4];
            if (self->hdr[0] < 20 || self->hdr[0] > 24 || self->hdr[1] != 3
                || len > 16384 + 2048) {
                self->unparsed = 1;
                break;
            }
            self->rec_end = pos + i + len;
        }
        long long left = self->rec_end - (pos + i);
        Py_ssize_t take = left < (long long)(n - i) ? (Py_ssize_t)left
                                                    : n - i;
        i += take;
        if (pos + i == self->rec_end) {
            self->complete_end = self->rec_end;
            self->hdr_have = 0;
        }
    }
}

/* 1 if a read may give something: a complete record in the incoming BIO
 * or plaintext left in the SSL object.  Asking first spares the
 * SSLWantReadError an empty read raises (an exception object with a
 * formatted message, per read event and per partial record). */
static int
may_read(SSLProtoObject *self, PyObject *target)
{
    Py_ssize_t n = attr_size(self->incoming, self->st->tl.str_pending);
    if (n < 0) {
        return -1;
    }
    if (self->unparsed ? n > 0 : self->complete_end > self->written - n) {
        return 1;
    }
    n = call_size(target, self->st->tl.str_pending);
    return n < 0 ? -1 : n > 0;
}

/* After a failed SSL read or write: 0 if it was one of asyncio's
 * SSLAgainErrors (cleared), -1 otherwise (left set). */
static int
again_error(eloop_state *st)
{
    if (PyErr_ExceptionMatches(st->tl.SSLAgainErrors)) {
        PyErr_Clear();
        return 0;
    }
    return -1;
}

/* asyncio's _control_app_writing(), called only when it would act */
static int
control_app_writing(SSLProtoObject *self)
{
    eloop_state *st = self->st;
    Py_ssize_t pend = attr_size(self->outgoing, st->tl.str_pending);
    Py_ssize_t size = pend < 0 ? -1
        : slot_size(self, self->write_buffer_size, "_write_buffer_size");
    if (size < 0 && PyErr_Occurred()) {
        return -1;
    }
    size += pend;
    int paused = slot_true(self, self->app_writing_paused,
                           "_app_writing_paused");
    Py_ssize_t high = slot_size(self, self->outgoing_high,
                                "_outgoing_high_water");
    Py_ssize_t low = slot_size(self, self->outgoing_low,
                               "_outgoing_low_water");
    if (paused < 0 || PyErr_Occurred()) {
        return -1;
    }
    if ((size >= high && !paused) || (size <= low && paused)) {
        return call0(self, st->tl.str_control_app_writing);
    }
    return 0;
}

/* asyncio's _process_outgoing() */
static int
process_outgoing(SSLProtoObject *self)
{
    eloop_state *st = self->st;
    int paused = slot_true(self, self->ssl_writing_paused,
                           "_ssl_writing_paused");
    if (paused < 0) {
        return -1;
    }
    if (!paused) {
        /* read() of an empty BIO gives b'', which asyncio skips. */
        Py_ssize_t n = attr_size(self->outgoing, st->tl.str_pending);
        if (n < 0) {
            return -1;
        }
        if (n > 0) {
            PyObject *data = PyObject_CallMethodNoArgs(self->outgoing,
                                                       st->tl.str_read);
            if (data == NULL) {
                return -1;
            }
            PyObject *tr = need(self, self->transport, "_transport");
            PyObject *r = tr ? PyObject_CallMethodOneArg(tr, st->tl.str_write,
                                                         data)
                             : NULL;
            Py_DECREF(data);
            if (discard(r) < 0) {
                return -1;
            }
        }
    }
    return control_app_writing(self);
}

/* asyncio's _control_ssl_reading(), called only when it would act */
static int
control_ssl_reading(SSLProtoObject *self)
{
    Py_ssize_t size = attr_size(self->incoming, self->st->tl.str_pending);
    if (size < 0) {
        return -1;
    }
    int paused = slot_true(self, self->ssl_reading_paused,
                           "_ssl_reading_paused");
    Py_ssize_t high = slot_size(self, self->incoming_high,
                                "_incoming_high_water");
    Py_ssize_t low = slot_size(self, self->incoming_low,
                               "_incoming_low_water");
    if (paused < 0 || PyErr_Occurred()) {
        return -1;
    }
    if ((size >= high && !paused) || (size <= low && paused)) {
        return call0(self, self->st->tl.str_control_ssl_reading);
    }
    return 0;
}

/* target.read(n, memoryview over buf): the count, 0 at close_notify, -1
 * with an exception set */
static Py_ssize_t
read_into(SSLProtoObject *self, PyObject *target, PyObject *bufobj,
          Py_ssize_t n)
{
    PyObject *len = PyLong_FromSsize_t(n);
    if (len == NULL) {
        return -1;
    }
    PyObject *args[3] = {target, len, bufobj};
    PyObject *r = PyObject_VectorcallMethod(
        self->st->tl.str_read, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET,
        NULL);
    Py_DECREF(len);
    return take_size(r);
}

/* asyncio's _do_read__copied(), decrypting into self->plain.  Returns 1
 * at close_notify, 0 otherwise, -1 on error. */
static int
read_copied(SSLProtoObject *self, PyObject *target)
{
    eloop_state *st = self->st;
    Py_ssize_t total = 0;
    int eof = 0;
    for (;;) {
        int more = may_read(self, target);
        if (more <= 0) {
            if (more < 0) {
                return -1;
            }
            break;
        }
        if (self->plain_cap - total < PLAIN_MIN
            && self->plain_cap < PLAIN_CAP) {
            Py_ssize_t cap = self->plain_cap ? self->plain_cap * 4
                                             : PLAIN_MIN;
            char *p = PyMem_Realloc(self->plain,
                                    cap < PLAIN_CAP ? cap : PLAIN_CAP);
            if (p == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            self->plain = p;
            self->plain_cap = cap < PLAIN_CAP ? cap : PLAIN_CAP;
        }
        Py_ssize_t space = self->plain_cap - total;
        PyObject *mv = PyMemoryView_FromMemory(self->plain + total, space,
                                               PyBUF_WRITE);
        Py_ssize_t count = mv ? read_into(self, target, mv, space) : -1;
        Py_XDECREF(mv);
        if (count < 0) {
            if (again_error(st) < 0) {
                return -1;
            }
            break;
        }
        if (count == 0) {
            eof = 1;
            break;
        }
        total += count;
        if (total == PLAIN_CAP) {
            /* Full: hand it over and go on (asyncio would join more into
             * one bytes object; only a backlog over 256 KiB gets here). */
            PyObject *data = PyBytes_FromStringAndSize(self->plain, total);
            PyObject *proto = need(self, self->app_protocol, "_app_protocol");
            PyObject *r = data && proto
                ? PyObject_CallMethodOneArg(proto, st->str_data_received,
                                            data)
                : NULL;
            Py_XDECREF(data);
            if (discard(r) < 0) {
                return -1;
            }
            total = 0;
        }
    }
    if (total > 0) {
        PyObject *data = PyBytes_FromStringAndSize(self->plain, total);
        PyObject *proto = need(self, self->app_protocol, "_app_protocol");
        PyObject *r = data && proto
            ? PyObject_CallMethodOneArg(proto, st->str_data_received, data)
            : NULL;
        Py_XDECREF(data);
        if (discard(r) < 0) {
            return -1;
        }
    }
    return eof;
}

/* asyncio's _do_read__buffered(): straight into the app's buffer.
 * Returns 1 at close_notify, 0 otherwise, -1 on error. */
static int
read_buffered(SSLProtoObject *self, PyObject *target)
{
    eloop_state *st = self->st;
    Py_ssize_t pend = attr_size(self->incoming, st->tl.str_pending);
    if (pend < 0) {
        return -1;
    }
    PyObject *get = need(self, self->app_get_buffer,
                         "_app_protocol_get_buffer");
    PyObject *n = get ? PyLong_FromSsize_t(pend) : NULL;
    PyObject *buf = n ? PyObject_CallOneArg(get, n) : NULL;
    Py_XDECREF(n);
    if (buf == NULL) {
        return -1;
    }
    Py_ssize_t wants = PyObject_Size(buf);
    Py_ssize_t offset = 0, count = 1;
    int rc = -1;
    if (wants < 0) {
        goto done;
    }
    int more = may_read(self, target);
    if (more < 0) {
        goto done;
    }
    if (more) {
        count = read_into(self, target, buf, wants);
        if (count < 0) {
            if (again_error(st) < 0) {
                goto done;
            }
            count = 1;
            goto deliver;
        }
    }
    if (more && count > 0) {
        offset = count;
        while (offset < wants) {
            more = may_read(self, target);
            if (more <= 0) {
                if (more < 0) {
                    goto done;
                }
                goto deliver;   /* where asyncio's read would raise */
            }
            PyObject *start = PyLong_FromSsize_t(offset);
            PyObject *sl = start ? PySlice_New(start, NULL, NULL) : NULL;
            PyObject *rest = sl ? PyObject_GetItem(buf, sl) : NULL;
            Py_XDECREF(start);
            Py_XDECREF(sl);
            count = rest ? read_into(self, target, rest, wants - offset) : -1;
            Py_XDECREF(rest);
            if (count < 0) {
                if (again_error(st) < 0) {
                    goto done;
                }
                count = 1;
                goto deliver;
            }
            if (count > 0) {
                offset += count;
            }
            else {
                break;
            }
        }
        if (offset >= wants) {
            /* The buffer is full: the rest on the next iteration, as
             * asyncio's call_soon(self._do_read). */
            PyObject *loop = need(self, self->loop, "_loop");
            PyObject *cb = loop ? PyObject_GetAttr((PyObject *)self,
                                                   st->tl.str_do_read)
                                : NULL;
            PyObject *r = cb ? PyObject_CallMethodOneArg(
                                   loop, st->tl.str_call_soon, cb)
                             : NULL;
            Py_XDECREF(cb);
            if (discard(r) < 0) {
                goto done;
            }
        }
    }
deliver:
    if (offset > 0) {
        PyObject *upd = need(self, self->app_buffer_updated,
                             "_app_protocol_buffer_updated");
        PyObject *o = upd ? PyLong_FromSsize_t(offset) : NULL;
        PyObject *r = o ? PyObject_CallOneArg(upd, o) : NULL;
        Py_XDECREF(o);
        if (discard(r) < 0) {
            goto done;
        }
    }
    rc = count == 0;
done:
    Py_DECREF(buf);
    return rc;
}

/* An Exception from the record path goes to asyncio's _fatal_error(), as
 * its try/except in _do_read/_write_appdata does; BaseExceptions
 * propagate.  Returns 0 if handled, -1 to propagate. */
static int
fatal_on_exception(SSLProtoObject *self)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyObject *exc = el_fetch_exc();
    PyObject *args[3] = {(PyObject *)self, exc, self->st->tl.msg_fatal};
    PyObject *r = PyObject_VectorcallMethod(
        self->st->tl.str_fatal_error, args,
        3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_XDECREF(exc);
    return discard(r);
}

/* asyncio's _do_read() in state WRAPPED or FLUSHING (the same body) */
static int
do_read_wrapped(SSLProtoObject *self)
{
    eloop_state *st = self->st;
    int paused = slot_true(self, self->app_reading_paused,
                           "_app_reading_paused");
    if (paused < 0) {
        return -1;
    }
    if (!paused) {
        PyObject *target = ssl_target(self);
        int is_buf = target ? slot_true(self, self->app_is_buffer,
                                        "_app_protocol_is_buffer")
                            : -1;
        int eof = is_buf < 0 ? -1
            : is_buf ? read_buffered(self, target)
                     : read_copied(self, target);
        if (eof > 0) {
            if (call0(self, st->tl.str_call_eof_received) < 0
                || call0(self, st->tl.str_start_shutdown) < 0) {
                eof = -1;
            }
        }
        if (eof >= 0) {
            PyObject *bl = need(self, self->write_backlog, "_write_backlog");
            int backlog = bl ? PyObject_IsTrue(bl) : -1;
            eof = backlog < 0 ? -1
                : backlog ? call0(self, st->tl.str_do_write)
                          : process_outgoing(self);
        }
        if (eof < 0) {
            return fatal_on_exception(self);
        }
    }
    if (control_ssl_reading(self) < 0) {
        return fatal_on_exception(self);
    }
    return 0;
}

/* --------------------------------------------------------------------- */
/* methods                                                                */

/* asyncio's get_buffer(), except that the buffer starts at RBUF_START
 * bytes and has max_size only once a read has filled it */
static PyObject *
SSLProto_get_buffer(SSLProtoObject *self, PyObject *arg)
{
    Py_ssize_t want = PyLong_AsSsize_t(arg);
    if (want == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t max = attr_size((PyObject *)self, self->st->tl.str_max_size);
    if (max < 0 && PyErr_Occurred()) {
        return NULL;
    }
    if (want <= 0 || want > max) {
        want = max;
    }
    PyObject *buf = need(self, self->ssl_buffer, "_ssl_buffer");
    Py_ssize_t have = buf ? PyObject_Size(buf) : -1;
    if (have < 0) {
        return NULL;
    }
    if (have < want && !self->filled && want > RBUF_START) {
        want = have > RBUF_START ? have : RBUF_START;
    }
    if (have < want) {
        /* Not zeroed: recv() writes it before anything reads it. */
        PyObject *nb = PyByteArray_FromStringAndSize(NULL, want);
        PyObject *nv = nb ? PyMemoryView_FromObject(nb) : NULL;
        if (nv == NULL) {
            Py_XDECREF(nb);
            return NULL;
        }
        Py_XSETREF(self->ssl_buffer, nb);
        Py_XSETREF(self->ssl_buffer_view, nv);
    }
    PyObject *view = need(self, self->ssl_buffer_view, "_ssl_buffer_view");
    return view ? Py_NewRef(view) : NULL;
}

/* asyncio's buffer_updated() */
static PyObject *
SSLProto_buffer_updated(SSLProtoObject *self, PyObject *arg)
{
    eloop_state *st = self->st;
    Py_ssize_t nbytes = PyLong_AsSsize_t(arg);
    if (nbytes == -1 && PyErr_Occurred()) {
        return NULL;
    }
    /* self._incoming.write(self._ssl_buffer_view[:nbytes]): the BIO
     * copies, so a memoryview over the same memory stands in for the
     * slice (clamped as a slice is). */
    PyObject *view = need(self, self->ssl_buffer_view, "_ssl_buffer_view");
    PyObject *bio = view ? need(self, self->incoming, "_incoming") : NULL;
    Py_buffer pb;
    if (bio == NULL || PyObject_GetBuffer(view, &pb, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (nbytes < 0) {
        nbytes = pb.len + nbytes > 0 ? pb.len + nbytes : 0;
    }
    if (nbytes > pb.len) {
        nbytes = pb.len;
    }
    if (nbytes == pb.len) {
        self->filled = 1;
    }
    PyObject *mv = PyMemoryView_FromMemory(pb.buf, nbytes, PyBUF_READ);
    PyObject *r = mv ? PyObject_CallMethodOneArg(bio, st->tl.str_write, mv)
                     : NULL;
    Py_XDECREF(mv);
    if (r != NULL) {
        track_records(self, pb.buf, nbytes);
    }
    PyBuffer_Release(&pb);
    if (discard(r) < 0) {
        return NULL;
    }
    PyObject *state = self->state;
    int rc = 0;
    if (state == st->tl.DO_HANDSHAKE) {
        rc = call0(self, st->tl.str_do_handshake);
    }
    else if (state == st->tl.WRAPPED) {
        rc = do_read_wrapped(self);
    }
    else if (state == st->tl.FLUSHING) {
        rc = call0(self, st->tl.str_do_flush);
    }
    else if (state == st->tl.SHUTDOWN) {
        rc = call0(self, st->tl.str_do_shutdown);
    }
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* asyncio's _write_appdata(); the C path covers state WRAPPED with an
 * empty backlog and a list or tuple of non-empty buffers, where
 * asyncio's loop in _do_write() writes each buffer whole. */
static PyObject *
SSLProto_write_appdata(SSLProtoObject *self, PyObject *list_of_data)
{
    /* Reached from Python (asyncio code, the tests) and from
     * SSLTransport_write, which checked the type first. */
    eloop_state *st = self->st;
    PyObject *bl = self->write_backlog;
    int fast = self->state == st->tl.WRAPPED && bl != NULL
        && (PyTuple_CheckExact(list_of_data)
            || PyList_CheckExact(list_of_data));
    if (fast) {
        int backlog = PyObject_IsTrue(bl);
        if (backlog < 0) {
            return NULL;
        }
        fast = !backlog;
    }
    PyObject *seq = fast ? PySequence_Fast(list_of_data, "") : NULL;
    Py_ssize_t n = seq ? PySequence_Fast_GET_SIZE(seq) : 0;
    for (Py_ssize_t i = 0; fast && i < n; i++) {
        Py_ssize_t len = PyObject_Size(PySequence_Fast_ITEMS(seq)[i]);
        if (len <= 0) {
            PyErr_Clear();
            fast = 0;
        }
    }
    if (!fast) {
        Py_XDECREF(seq);
        PyObject *args[2] = {(PyObject *)self, list_of_data};
        return PyObject_Vectorcall(st->tl.py_write_appdata, args, 2, NULL);
    }
    PyObject *target = ssl_target(self);
    Py_ssize_t i = 0;
    int rc = target ? 0 : -1;
    for (; rc == 0 && i < n; i++) {
        PyObject *data = PySequence_Fast_ITEMS(seq)[i];
        Py_ssize_t len = PyObject_Size(data);
        PyObject *r = PyObject_CallMethodOneArg(target, st->tl.str_write,
                                                data);
        Py_ssize_t count = r ? PyLong_AsSsize_t(r) : -1;
        Py_XDECREF(r);
        if (count < 0) {
            rc = -1;
            break;
        }
        if (count < len) {
            /* A short write (not seen with a MemoryBIO): the rest is
             * asyncio's, from its backlog. */
            rc = 1;
            break;
        }
    }
    if (rc != 0) {
        /* What is not written goes to the backlog as asyncio has it at
         * that point, then asyncio's own code goes on. */
        PyObject *exc = rc < 0 ? el_fetch_exc() : NULL;
        int again = exc && PyErr_GivenExceptionMatches(exc,
                                                       st->tl.SSLAgainErrors);
        for (Py_ssize_t j = i; j < n && bl; j++) {
            PyObject *data = PySequence_Fast_ITEMS(seq)[j];
            PyObject *r = PyObject_CallMethodOneArg(bl, st->tl.str_append,
                                                    data);
            Py_ssize_t len = r ? PyObject_Size(data) : -1;
            PyObject *sz = len >= 0 ? PyLong_FromSsize_t(len) : NULL;
            PyObject *tot = sz && need(self, self->write_buffer_size,
                                       "_write_buffer_size")
                ? PyNumber_Add(self->write_buffer_size, sz) : NULL;
            Py_XDECREF(r);
            Py_XDECREF(sz);
            if (tot == NULL) {
                Py_XDECREF(exc);
                Py_DECREF(seq);
                return NULL;
            }
            Py_XSETREF(self->write_buffer_size, tot);
        }
        Py_DECREF(seq);
        if (rc > 0) {
            /* asyncio's _do_write() resumes with the partial buffer */
            if (call0(self, st->tl.str_do_write) < 0
                && fatal_on_exception(self) < 0) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
        if (exc == NULL) {
            return NULL;
        }
        if (!again) {
            el_restore_exc(exc);
            if (fatal_on_exception(self) < 0) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
        Py_DECREF(exc);
    }
    else {
        Py_DECREF(seq);
    }
    if (process_outgoing(self) < 0 && fatal_on_exception(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* --------------------------------------------------------------------- */
/* SSLTransport: asyncio's _SSLProtocolTransport, write paths in C         */

/* self._ssl_protocol._write_appdata(list_of_data) */
static PyObject *
forward_appdata(PyObject *self, PyObject *list_of_data, eloop_state *st)
{
    if (st == NULL) {
        return NULL;
    }
    PyObject *proto = PyObject_GetAttr(self, st->tl.str_ssl_protocol);
    if (proto == NULL) {
        return NULL;
    }
    PyObject *r;
    if (PyObject_TypeCheck(proto, st->tl.SSLProtocolBaseType)) {
        /* Ours: call the C function unless the class overrides it (an
         * override set on a single instance is not looked for). */
        PyObject *m = PyObject_GetAttr((PyObject *)Py_TYPE(proto),
                                       st->tl.str_write_appdata);
        if (m == NULL) {
            Py_DECREF(proto);
            return NULL;
        }
        r = m == st->tl.c_write_appdata
            ? SSLProto_write_appdata((SSLProtoObject *)proto, list_of_data)
            : PyObject_CallMethodOneArg(proto, st->tl.str_write_appdata,
                                        list_of_data);
        Py_DECREF(m);
    }
    else {
        r = PyObject_CallMethodOneArg(proto, st->tl.str_write_appdata,
                                      list_of_data);
    }
    Py_DECREF(proto);
    return r;
}

static PyObject *
SSLTransport_write(PyObject *self, PyObject *data)
{
    if (!PyBytes_Check(data) && !PyByteArray_Check(data)
        && !PyMemoryView_Check(data)) {
        PyErr_Format(PyExc_TypeError,
                     "data: expecting a bytes-like instance, got %s",
                     Py_TYPE(data)->tp_name);
        return NULL;
    }
    int nonempty = PyObject_IsTrue(data);
    if (nonempty <= 0) {
        return nonempty < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *one = PyTuple_Pack(1, data);
    if (one == NULL) {
        return NULL;
    }
    PyObject *r = forward_appdata(self, one,
                                  eloop_state_of_type(Py_TYPE(self)));
    Py_DECREF(one);
    return r;
}

static PyObject *
SSLTransport_writelines(PyObject *self, PyObject *list_of_data)
{
    return forward_appdata(self, list_of_data,
                           eloop_state_of_type(Py_TYPE(self)));
}

static PyMethodDef SSLTransport_methods[] = {
    {"write", SSLTransport_write, METH_O,
     "Write some data bytes to the transport (asyncio's)."},
    {"writelines", SSLTransport_writelines, METH_O,
     "Write a list (or any iterable) of data bytes to the transport."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot SSLTransport_slots[] = {
    {Py_tp_doc, "asyncio's _SSLProtocolTransport with write() and "
                "writelines() in C."},
    {Py_tp_methods, SSLTransport_methods},
    {0, NULL},
};

/* No fields of its own: the layout (and __dict__) is asyncio's class's. */
static PyType_Spec SSLTransport_spec = {
    .name = "eloop._eloop.SSLTransport",
    .basicsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = SSLTransport_slots,
};

/* asyncio's _do_handshake(): a TLS 1.3 server calls it three times per
 * connection (at connection_made, on the ClientHello, on the Finished),
 * and each time asyncio's runs two Python frames (its own and
 * SSLObject.do_handshake) plus _process_outgoing's. */
static PyObject *
SSLProto_do_handshake(SSLProtoObject *self, PyObject *Py_UNUSED(ignored))
{
    eloop_state *st = self->st;
    PyObject *target = ssl_target(self);
    if (target == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_CallMethodNoArgs(target,
                                            st->tl.str_do_handshake_pub);
    PyObject *exc = NULL;
    if (r != NULL) {
        Py_DECREF(r);
    }
    else if (again_error(st) == 0) {
        if (process_outgoing(self) < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    else if (PyErr_ExceptionMatches(st->tl.SSLError)) {
        exc = el_fetch_exc();
    }
    else {
        return NULL;
    }
    /* (asyncio's call is inside its `except` block; its
     * _on_handshake_complete re-raises exc, so the debug log's exc_info
     * is the same either way.) */
    PyObject *args[2] = {(PyObject *)self, exc ? exc : Py_None};
    r = PyObject_VectorcallMethod(st->tl.str_on_handshake_complete, args,
                                  2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_XDECREF(exc);
    return r;
}

/* asyncio's _on_handshake_complete() for a handshake that succeeded, with
 * the loop not in debug mode, the usual case; asyncio's own method
 * otherwise (a failure, the debug log, a state it would refuse).  What
 * it does, in its order: cancel the timeout, state WRAPPED, the extra
 * info (peercert, cipher, compression, ssl_object), connection_made(),
 * the waiter, the first read. */
static PyObject *
SSLProto_on_handshake_complete(SSLProtoObject *self, PyObject *exc)
{
    eloop_state *st = self->st;
    PyObject *loop = need(self, self->loop, "_loop");
    int debug = 1;
    if (loop != NULL && exc == Py_None
        && self->state == st->tl.DO_HANDSHAKE) {
        PyObject *d = PyObject_CallMethodNoArgs(loop, st->tl.str_get_debug);
        debug = d ? PyObject_IsTrue(d) : -1;
        Py_XDECREF(d);
        if (debug < 0) {
            return NULL;
        }
    }
    if (debug) {
        PyObject *args[2] = {(PyObject *)self, exc};
        return PyObject_Vectorcall(st->tl.py_on_handshake_complete, args, 2,
                                   NULL);
    }
    PyObject *h = PyObject_GetAttr((PyObject *)self,
                                   st->tl.str_handshake_timeout_handle);
    if (h == NULL) {
        return NULL;
    }
    if (h != Py_None) {
        PyObject *r = PyObject_CallMethodNoArgs(h, st->tl.str_cancel);
        Py_DECREF(h);
        if (discard(r) < 0
            || PyObject_SetAttr((PyObject *)self,
                                st->tl.str_handshake_timeout_handle,
                                Py_None) < 0) {
            return NULL;
        }
    }
    else {
        Py_DECREF(h);
    }
    PyObject *sslobj = need(self, self->sslobj, "_sslobj");
    PyObject *target = sslobj ? ssl_target(self) : NULL;
    if (target == NULL) {
        return NULL;
    }
    Py_INCREF(sslobj);
    Py_INCREF(target);
    Py_SETREF(self->state, Py_NewRef(st->tl.WRAPPED));
    /* ssl.SSLObject's getpeercert() is _sslobj.getpeercert(False) */
    PyObject *peercert = target != sslobj
        ? PyObject_CallMethodOneArg(target, st->tl.str_getpeercert, Py_False)
        : PyObject_CallMethodNoArgs(target, st->tl.str_getpeercert);
    PyObject *res = NULL;
    if (peercert == NULL) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) {
            /* asyncio's except branch: its own method, from the state it
             * found (it calls getpeercert() again, which fails again) */
            PyErr_Clear();
            Py_SETREF(self->state, Py_NewRef(st->tl.DO_HANDSHAKE));
            PyObject *args[2] = {(PyObject *)self, Py_None};
            res = PyObject_Vectorcall(st->tl.py_on_handshake_complete, args,
                                      2, NULL);
        }
        goto done;
    }
    PyObject *cipher = PyObject_CallMethodNoArgs(target, st->tl.str_cipher);
    PyObject *comp = cipher ? PyObject_CallMethodNoArgs(
                                  target, st->tl.str_compression)
                            : NULL;
    PyObject *extra = comp ? PyObject_GetAttr((PyObject *)self,
                                              st->tl.str_extra)
                           : NULL;
    int rc = -1;
    if (extra != NULL) {
        PyObject *args[5] = {extra, peercert, cipher, comp, sslobj};
        PyObject *r = PyObject_VectorcallMethod(
            st->tl.str_update, args, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET,
            st->tl.extra_kwnames);
        rc = discard(r);
    }
    Py_XDECREF(extra);
    Py_XDECREF(comp);
    Py_XDECREF(cipher);
    Py_DECREF(peercert);
    if (rc < 0) {
        goto done;
    }
    PyObject *app_state = PyObject_GetAttr((PyObject *)self,
                                           st->tl.str_app_state);
    if (app_state == NULL) {
        goto done;
    }
    int init = PyObject_RichCompareBool(app_state, st->tl.STATE_INIT, Py_EQ);
    Py_DECREF(app_state);
    if (init < 0) {
        goto done;
    }
    if (init) {
        if (PyObject_SetAttr((PyObject *)self, st->tl.str_app_state,
                             st->tl.STATE_CON_MADE) < 0) {
            goto done;
        }
        /* self._app_protocol.connection_made(self._get_app_transport()):
         * the method first, as Python evaluates it */
        PyObject *app = need(self, self->app_protocol, "_app_protocol");
        PyObject *meth = app ? PyObject_GetAttr(app,
                                                st->tl.str_connection_made)
                             : NULL;
        PyObject *tr = meth ? PyObject_CallMethodNoArgs(
                                  (PyObject *)self,
                                  st->tl.str_get_app_transport)
                            : NULL;
        PyObject *r = tr ? PyObject_CallOneArg(meth, tr) : NULL;
        Py_XDECREF(tr);
        Py_XDECREF(meth);
        if (discard(r) < 0) {
            goto done;
        }
    }
    if (call0(self, st->tl.str_wakeup_waiter) < 0
        || call0(self, st->tl.str_do_read) < 0) {
        goto done;
    }
    res = Py_NewRef(Py_None);
done:
    Py_DECREF(target);
    Py_DECREF(sslobj);
    return res;
}

/* asyncio's _process_outgoing(): after every handshake and shutdown step */
static PyObject *
SSLProto_process_outgoing(SSLProtoObject *self, PyObject *Py_UNUSED(ignored))
{
    if (process_outgoing(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* asyncio's _do_read(): after the handshake and when a shutdown starts
 * (_do_flush, state FLUSHING); it does nothing in the other states. */
static PyObject *
SSLProto_do_read(SSLProtoObject *self, PyObject *Py_UNUSED(ignored))
{
    if ((self->state == self->st->tl.WRAPPED
         || self->state == self->st->tl.FLUSHING)
        && do_read_wrapped(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef SSLProto_methods[] = {
    {"get_buffer", (PyCFunction)SSLProto_get_buffer, METH_O, NULL},
    {"buffer_updated", (PyCFunction)SSLProto_buffer_updated, METH_O, NULL},
    {"_write_appdata", (PyCFunction)SSLProto_write_appdata, METH_O, NULL},
    {"_do_handshake", (PyCFunction)SSLProto_do_handshake, METH_NOARGS, NULL},
    {"_process_outgoing", (PyCFunction)SSLProto_process_outgoing, METH_NOARGS,
     NULL},
    {"_do_read", (PyCFunction)SSLProto_do_read, METH_NOARGS, NULL},
    {"_on_handshake_complete", (PyCFunction)SSLProto_on_handshake_complete,
     METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot SSLProto_slots[] = {
    {Py_tp_doc, "The C record path of eloop's TLS protocol: combined with "
                "asyncio.sslproto.SSLProtocol in eloop._loop."},
    {Py_tp_new, SSLProto_new},
    {Py_tp_dealloc, SSLProto_dealloc},
    {Py_tp_traverse, SSLProto_traverse},
    {Py_tp_clear, SSLProto_clear},
    {Py_tp_methods, SSLProto_methods},
    {Py_tp_members, SSLProto_members},
    {0, NULL},
};

static PyType_Spec SSLProto_spec = {
    .name = "eloop._eloop.SSLProtocolBase",
    .basicsize = sizeof(SSLProtoObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = SSLProto_slots,
};

/* --------------------------------------------------------------------- */
/* module state                                                           */

#define TL_STRINGS(X)                                                       \
    X(str_pending, "pending") X(str_read, "read") X(str_write, "write")     \
    X(str_append, "append") X(str_call_soon, "call_soon")                   \
    X(str__sslobj, "_sslobj") X(str_max_size, "max_size")                   \
    X(str_do_read, "_do_read") X(str_do_write, "_do_write")                 \
    X(str_do_handshake, "_do_handshake") X(str_do_flush, "_do_flush")       \
    X(str_do_shutdown, "_do_shutdown")                                      \
    X(str_control_app_writing, "_control_app_writing")                      \
    X(str_control_ssl_reading, "_control_ssl_reading")                      \
    X(str_call_eof_received, "_call_eof_received")                          \
    X(str_start_shutdown, "_start_shutdown")                                \
    X(str_fatal_error, "_fatal_error")                                      \
    X(str_ssl_protocol, "_ssl_protocol")                                    \
    X(str_write_appdata, "_write_appdata")                                  \
    X(str_do_handshake_pub, "do_handshake")                                 \
    X(str_on_handshake_complete, "_on_handshake_complete")                  \
    X(str_get_debug, "get_debug") X(str_cancel, "cancel")                   \
    X(str_handshake_timeout_handle, "_handshake_timeout_handle")            \
    X(str_getpeercert, "getpeercert") X(str_cipher, "cipher")               \
    X(str_compression, "compression") X(str_extra, "_extra")                \
    X(str_update, "update") X(str_app_state, "_app_state")                  \
    X(str_get_app_transport, "_get_app_transport")                          \
    X(str_connection_made, "connection_made")                               \
    X(str_wakeup_waiter, "_wakeup_waiter")                                  \
    X(msg_fatal, "Fatal error on SSL protocol")

int
tls_state_init(PyObject *mod, eloop_state *st)
{
#define INTERN(f, s)                                                        \
    if ((st->tl.f = PyUnicode_InternFromString(s)) == NULL) {               \
        return -1;                                                          \
    }
    TL_STRINGS(INTERN)
#undef INTERN
    st->tl.SSLProtocolBaseType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &SSLProto_spec, NULL);
    if (st->tl.SSLProtocolBaseType == NULL
        || PyModule_AddType(mod, st->tl.SSLProtocolBaseType) < 0) {
        return -1;
    }
    /* Python without ssl: the type exists, _loop.py does not use it. */
    PyObject *ssl = NULL;
    if (eloop_import_attr(&ssl, "asyncio.sslproto", "ssl") < 0) {
        return -1;
    }
    int no_ssl = ssl == Py_None;
    if (!no_ssl) {
        st->tl.SSLObject = PyObject_GetAttrString(ssl, "SSLObject");
        st->tl.SSLError = st->tl.SSLObject
                              ? PyObject_GetAttrString(ssl, "SSLError")
                              : NULL;
    }
    Py_DECREF(ssl);
    if (no_ssl) {
        return 0;
    }
    PyObject *states = NULL, *proto = NULL, *base = NULL, *bases = NULL;
    int rc = -1;
    PyObject *app_states = NULL;
    if (st->tl.SSLObject == NULL || st->tl.SSLError == NULL
        || eloop_import_attr(&states, "asyncio.sslproto",
                             "SSLProtocolState") < 0
        || eloop_import_attr(&proto, "asyncio.sslproto", "SSLProtocol") < 0
        || eloop_import_attr(&st->tl.SSLAgainErrors, "asyncio.sslproto",
                             "SSLAgainErrors") < 0
        || (st->tl.WRAPPED = PyObject_GetAttrString(states, "WRAPPED"))
               == NULL
        || (st->tl.DO_HANDSHAKE = PyObject_GetAttrString(
                states, "DO_HANDSHAKE")) == NULL
        || (st->tl.FLUSHING = PyObject_GetAttrString(states, "FLUSHING"))
               == NULL
        || (st->tl.SHUTDOWN = PyObject_GetAttrString(states, "SHUTDOWN"))
               == NULL
        || (st->tl.py_write_appdata = PyObject_GetAttrString(
                proto, "_write_appdata")) == NULL
        || (st->tl.py_on_handshake_complete = PyObject_GetAttrString(
                proto, "_on_handshake_complete")) == NULL
        || eloop_import_attr(&app_states, "asyncio.sslproto",
                             "AppProtocolState") < 0
        || (st->tl.STATE_INIT = PyObject_GetAttrString(
                app_states, "STATE_INIT")) == NULL
        || (st->tl.STATE_CON_MADE = PyObject_GetAttrString(
                app_states, "STATE_CON_MADE")) == NULL
        || (st->tl.extra_kwnames = Py_BuildValue(
                "(ssss)", "peercert", "cipher", "compression",
                "ssl_object")) == NULL
        || eloop_import_attr(&base, "asyncio.sslproto",
                             "_SSLProtocolTransport") < 0
        || (bases = PyTuple_Pack(1, base)) == NULL
        || (st->tl.SSLTransportType = (PyTypeObject *)
                PyType_FromModuleAndSpec(mod, &SSLTransport_spec, bases))
               == NULL
        || PyModule_AddType(mod, st->tl.SSLTransportType) < 0) {
        goto done;
    }
    /* The method descriptor of our _write_appdata, to recognise it. */
    st->tl.c_write_appdata = PyDict_GetItemWithError(
        st->tl.SSLProtocolBaseType->tp_dict, st->tl.str_write_appdata);
    if (st->tl.c_write_appdata == NULL) {
        goto done;
    }
    Py_INCREF(st->tl.c_write_appdata);
    rc = 0;
done:
    Py_XDECREF(states);
    Py_XDECREF(app_states);
    Py_XDECREF(proto);
    Py_XDECREF(base);
    Py_XDECREF(bases);
    return rc;
}

#define TL_OBJECTS(X)                                                       \
    X(SSLProtocolBaseType) X(SSLObject) X(SSLAgainErrors) X(WRAPPED)        \
    X(DO_HANDSHAKE) X(FLUSHING) X(SHUTDOWN) X(py_write_appdata)            \
    X(SSLTransportType) X(c_write_appdata) X(SSLError)                 \
    X(py_on_handshake_complete) X(STATE_INIT) X(STATE_CON_MADE)            \
    X(extra_kwnames)

int
tls_state_traverse(eloop_state *st, visitproc visit, void *arg)
{
#define VISIT(f, ...) Py_VISIT(st->tl.f);
    TL_OBJECTS(VISIT)
    TL_STRINGS(VISIT)
#undef VISIT
    return 0;
}

void
tls_state_clear(eloop_state *st)
{
#define CLEAR(f, ...) Py_CLEAR(st->tl.f);
    TL_OBJECTS(CLEAR)
    TL_STRINGS(CLEAR)
#undef CLEAR
}
