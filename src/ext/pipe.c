/*
 * pipe.c -- the pipe transports: asyncio's unix_events._UnixReadPipeTransport
 * and _UnixWritePipeTransport (the same on 3.11, 3.12 and 3.13), over the
 * stream transport base (transport.h).  What they share with the socket
 * transport -- the stream, the write queue, flow control, reading into the
 * loop's spare bytes, connection_lost() and the release of the fd's object,
 * the finalizer, the GC slots, most methods -- is stream_transport.c's;
 * this file holds only what asyncio's pipe transports do differently:
 *   - construction: the fd must be a FIFO, a socket or (for writing) a
 *     character device, as asyncio checks; it is made non-blocking; extra
 *     is {'pipe': pipe};
 *   - read side: EOF closes the transport (eof_received() through
 *     call_soon, its result ignored), a read error is reported unless it
 *     is EIO (a PTY whose other side closed), a failing data_received()
 *     is an error of the callback, not of the transport;
 *   - write side: write() writes at once (no coalescing: asyncio's
 *     os.write() happens inside write()), asserts its argument's type,
 *     resumes the protocol only once the buffer drains, write_eof() and
 *     close() finish the writes and close, any OSError is expected (logged
 *     in debug mode only), and for a FIFO or a socket the write end is
 *     watched for readability, which means its reader went away.
 * Pipes are not in loop._transports, as in asyncio.
 */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

/* The smallest read worth bytes of its own (rp_alloc_cb). */
#define RP_FRESH_MIN 4096


/* ---- shared by both directions ----------------------------------------- */

/* While open, a pipe transport is in loop->owned (see state.h). */
static int
pipe_own(TransportObject *self)
{
    LoopObject *loop = self->loop;
    if (loop->owned == NULL && (loop->owned = PySet_New(NULL)) == NULL) {
        return -1;
    }
    return PySet_Add(loop->owned, (PyObject *)self);
}

static void
pipe_disown(TransportObject *self)
{
    LoopObject *loop = self->loop;
    if (loop != NULL && loop->owned != NULL) {
        PyObject *exc = el_fetch_exc();
        if (PySet_Discard(loop->owned, (PyObject *)self) < 0) {
            PyErr_WriteUnraisable((PyObject *)self);
        }
        el_restore_exc(exc);
    }
}

/* asyncio's _call_connection_lost(): the base's, then the loop lets go. */
static int
pipe_connection_lost(TransportObject *self, PyObject *exc)
{
    Py_INCREF(self);
    int rc = tr_call_connection_lost(self, exc);
    pipe_disown(self);
    Py_DECREF(self);
    return rc;
}

static PyObject *
pipe_connection_lost_meth(TransportObject *self, PyObject *exc)
{
    if (pipe_connection_lost(self, exc == Py_None ? NULL : exc) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* logger.info("%r was closed by peer", self) in debug mode. */
static int
pipe_log_closed_by_peer(TransportObject *self)
{
    if (!self->loop->debug) {
        return 0;
    }
    return discard(PyObject_CallMethod(self->st->logger, "info", "sO",
                                       "%r was closed by peer", self));
}

static PyObject *
pipe_set_protocol(TransportObject *self, PyObject *protocol)
{
    /* asyncio's pipe transports call data_received() whatever the
     * protocol is: never the BufferedProtocol path. */
    self->buffered = 0;
    Py_XSETREF(self->protocol, Py_NewRef(protocol));
    Py_RETURN_NONE;
}

static PyObject *
pipe_repr(TransportObject *self)
{
    int writer = Py_IS_TYPE(self, self->st->WritePipeType);
    PyObject *head = transport_repr_head((TransportBase *)self);
    if (head == NULL) {
        return NULL;
    }
    PyObject *r;
    if (self->sock_closed) {
        r = PyUnicode_FromFormat("%U closed>", head);
    }
    else if (self->loop == NULL || self->loop->closed) {
        /* asyncio's, once its loop has no selector */
        r = PyUnicode_FromFormat("%U open>", head);
    }
    else if (writer) {
        r = PyUnicode_FromFormat(
            "%U %s bufsize=%zd>", head,
            el_stream_is_writing(&self->stream) ? "polling" : "idle",
            (Py_ssize_t)el_stream_write_queue_size(&self->stream));
    }
    else {
        r = PyUnicode_FromFormat(
            "%U %s>", head,
            el_stream_is_reading(&self->stream) ? "polling" : "idle");
    }
    Py_DECREF(head);
    return r;
}

/* `_pipe = None` (tests do it to skip the finalizer's close): the pipe
 * is no longer ours to close. */
static int
pipe_set_attr_pipe(TransportObject *self, PyObject *value,
                   void *Py_UNUSED(c))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete _pipe");
        return -1;
    }
    if (value == Py_None) {
        self->sock_closed = 1;
        return 0;
    }
    Py_XSETREF(self->sock, Py_NewRef(value));
    self->sock_closed = 0;
    return 0;
}

static PyObject *
pipe_attr_fileno(TransportObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromLong(self->sock_fd);
}

/* asyncio's _close(exc): closing, nothing more to read or write, and
 * connection_lost(exc) soon.  After connection_lost() there is nothing
 * left to close (asyncio would fail on its loop being None). */
static int
pipe_close(TransportObject *self, PyObject *exc)
{
    if (self->lost) {
        return 0;
    }
    self->closing = 1;
    el_stream_write_clear(&self->stream);
    el_stream_read_stop(&self->stream);
    return transport_call_soon(self, "_call_connection_lost",
                               exc ? exc : Py_None);
}

/* asyncio's _fatal_error(): expected errors -- EIO for a read pipe, any
 * OSError for a write pipe -- are logged in debug mode; others are
 * reported.  Then _close(exc). */
static int
pipe_fatal_error(TransportObject *self, PyObject *exc, const char *message)
{
    int expected = PyErr_GivenExceptionMatches(exc, PyExc_OSError);
    if (expected && !Py_IS_TYPE(self, self->st->WritePipeType)) {
        PyObject *e = PyObject_GetAttrString(exc, "errno");
        expected = e != NULL && PyLong_Check(e) && PyLong_AsLong(e) == EIO;
        Py_XDECREF(e);
        PyErr_Clear();
    }
    int rc = expected ? tr_debug_log(self, "%r: %s", message, exc)
                      : tr_report(self, message, exc);
    return rc < 0 ? -1 : pipe_close(self, exc);
}

static int
pipe_errno_fatal(TransportObject *self, int err, const char *message)
{
    PyObject *exc = transport_oserror(err);
    if (exc == NULL) {
        return -1;
    }
    int rc = pipe_fatal_error(self, exc, message);
    Py_DECREF(exc);
    return rc;
}

static PyObject *
pipe_fatal_error_meth(TransportObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *exc;
    const char *message = "Fatal error on pipe transport";
    if (transport_fatal_error_args(args, kwds, &exc, &message) < 0) {
        return NULL;
    }
    if (pipe_fatal_error(self, exc, message) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- read pipe ---------------------------------------------------------- */

/* A pipe says how much it holds (FIONREAD): a read of less than the
 * spare goes straight into bytes of that size, which data_received() then
 * gets without the copy out of the spare.  A pipe's reads are rarely
 * larger than its 64 KiB buffer, so without this nearly every read would
 * be copied; the ioctl costs less than copying 64 KiB.  Small reads gain
 * nothing and keep the spare. */
static int
rp_alloc_cb(el_stream_t *s, size_t suggested, el_buf_t *buf)
{
    TransportObject *self = el_container_of(s, TransportObject, stream);
    int avail = 0;
    if (ioctl(s->io.fd, FIONREAD, &avail) == 0 && avail >= RP_FRESH_MIN
        && (size_t)avail < suggested) {
        LoopObject *loop = self->loop;
        Py_XSETREF(loop->read_fresh, PyBytes_FromStringAndSize(NULL, avail));
        if (loop->read_fresh == NULL) {
            return tr_callback_failed(self,
                                      "Fatal read error on pipe transport");
        }
        buf->base = PyBytes_AS_STRING(loop->read_fresh);
        buf->len = (size_t)avail;
        return 0;
    }
    return tr_alloc_cb(s, suggested, buf);
}

static int
rp_read_cb(el_stream_t *s, ssize_t nread, const el_buf_t *buf)
{
    TransportObject *self = el_container_of(s, TransportObject, stream);

    if (nread <= 0) {
        Py_CLEAR(self->loop->read_fresh);
    }
    if (nread == -EAGAIN || nread == -ECANCELED) {
        return 0;
    }
    if (nread < 0) {
        return pipe_errno_fatal(self, (int)-nread,
                                "Fatal read error on pipe transport");
    }
    if (self->protocol == NULL) {
        return 0;
    }
    if (nread == 0) {
        if (pipe_log_closed_by_peer(self) < 0) {
            return -1;
        }
        self->closing = 1;
        el_stream_read_stop(s);
        PyObject *eof = PyObject_GetAttrString(self->protocol,
                                               "eof_received");
        PyObject *a[2] = {NULL, eof};
        int rc = eof ? loop_soon(self->loop, a + 1, 1) : -1;
        Py_XDECREF(eof);
        return rc < 0 ? -1
                      : transport_call_soon(self, "_call_connection_lost",
                                            Py_None);
    }
    /* A failing data_received() fails the reader callback, as asyncio's
     * _read_ready() raises: the loop reports it and reading goes on. */
    int called;
    if (transport_data_received(self, self->protocol, buf, nread, &called)
        < 0) {
        return -1;
    }
    self->read_again = !self->closing && !self->paused;
    return 0;
}

static PyObject *
rp_close(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->closing && pipe_close(self, NULL) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- write pipe --------------------------------------------------------- */

/* The write end became readable: its reader went away (asyncio's
 * _read_ready()).  Declines the read: there is nothing to read. */
static int
wp_reader_gone(el_stream_t *s, size_t suggested, el_buf_t *buf)
{
    TransportObject *self = el_container_of(s, TransportObject, stream);
    (void)suggested;
    buf->len = 0;
    if (pipe_log_closed_by_peer(self) < 0) {
        return -1;
    }
    if (el_stream_write_queue_size(s) == 0) {
        return pipe_close(self, NULL);
    }
    PyObject *exc = PyObject_CallNoArgs(PyExc_BrokenPipeError);
    int rc = exc ? pipe_close(self, exc) : -1;
    Py_XDECREF(exc);
    return rc;
}

static int
wp_no_read(el_stream_t *s, ssize_t nread, const el_buf_t *buf)
{
    (void)s;
    (void)nread;
    (void)buf;
    return 0;
}

/* A write error, at once or later: asyncio drops the buffer, counts a
 * lost write and closes. */
static int
wp_write_failed(TransportObject *self, int err)
{
    el_stream_write_clear(&self->stream);
    self->conn_lost++;
    return pipe_errno_fatal(self, err, "Fatal write error on pipe transport");
}

/* asyncio's _write_ready() after its os.write(). */
static int
wp_written_cb(el_stream_t *s, int status)
{
    TransportObject *self = el_container_of(s, TransportObject, stream);
    if (status < 0) {
        return wp_write_failed(self, -status);
    }
    if (el_stream_write_queue_size(s) > 0) {
        return 0;       /* asyncio resumes only once its buffer is empty */
    }
    if (tr_maybe_resume(self) < 0) {    /* may write more */
        return -1;
    }
    if (self->closing) {
        el_stream_read_stop(s);
        return pipe_connection_lost(self, NULL);
    }
    return 0;
}

static PyObject *
wp_write(TransportObject *self, PyObject *data)
{
    if (!PyBytes_Check(data) && !PyByteArray_Check(data)
        && !PyMemoryView_Check(data)) {
        PyObject *r = PyObject_Repr(data);
        if (r != NULL) {
            PyErr_SetObject(PyExc_AssertionError, r);
            Py_DECREF(r);
        }
        return NULL;
    }
    PyObject *tok;
    if (PyBytes_Check(data)) {
        tok = Py_NewRef(data);
    }
    else {
        /* A copy: a bytearray or what a memoryview shows may change once
         * write() returns. */
        Py_buffer view;
        if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        tok = PyBytes_FromStringAndSize(view.buf, view.len);
        PyBuffer_Release(&view);
        if (tok == NULL) {
            return NULL;
        }
    }
    Py_ssize_t len = PyBytes_GET_SIZE(tok);
    if (len == 0) {
        Py_DECREF(tok);
        Py_RETURN_NONE;
    }
    if (self->conn_lost || self->closing) {
        Py_DECREF(tok);
        if (self->conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES
            && discard(PyObject_CallMethod(
                   self->st->logger, "warning", "s",
                   "pipe closed by peer or os.write(pipe, data) raised "
                   "exception.")) < 0) {
            return NULL;
        }
        self->conn_lost++;
        Py_RETURN_NONE;
    }
    int err = el_stream_write(&self->stream, PyBytes_AS_STRING(tok),
                              (size_t)len, tok);
    if (err < 0) {
        Py_DECREF(tok);
        if (err == -ENOMEM) {
            return PyErr_NoMemory();
        }
        eloop_raise_errno(err);
        return NULL;
    }
    /* The queue owns tok now.  An empty buffer is written at once, as
     * asyncio's write() does; otherwise a write is under way and the
     * chunk waits behind it. */
    int r = el_stream_flush(&self->stream);
    if (r == -ESHUTDOWN) {
        /* Writing should go on, but asyncio's _add_writer() refuses. */
        el_stream_write_clear(&self->stream);
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return NULL;
    }
    if (r < 0) {
        return wp_write_failed(self, -r) < 0 ? NULL : Py_NewRef(Py_None);
    }
    if (r == 1 && tr_maybe_pause(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
wp_write_eof(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->closing) {
        Py_RETURN_NONE;
    }
    self->closing = 1;
    if (el_stream_write_queue_len(&self->stream) == 0) {
        el_stream_read_stop(&self->stream);
        if (transport_call_soon(self, "_call_connection_lost", Py_None)
            < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
wp_close(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->sock_closed || self->closing) {
        Py_RETURN_NONE;
    }
    return wp_write_eof(self, NULL);
}

static PyObject *
wp_abort(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pipe_close(self, NULL) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Scheduled after connection_made(): watch for the reader going away,
 * for a FIFO or a socket (a character device has no such signal). */
static PyObject *
wp_start_reading(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->on_alloc == NULL) {
        Py_RETURN_NONE;
    }
    return tr_start_reading(self, NULL);
}

/* ---- construction -------------------------------------------------------- */

/* The __init__ of asyncio's pipe transports, in its order. */
static PyObject *
pipe_new(LoopObject *loop, PyTypeObject *type, PyObject *pipe,
         PyObject *protocol, PyObject *waiter, PyObject *extra)
{
    int writer = type == loop->st->WritePipeType;
    TransportObject *self = transport_alloc(loop, type);
    if (self == NULL) {
        return NULL;
    }
    self->protocol_connected = 1;   /* asyncio calls connection_lost()
                                       whatever happened before */
    if (writer) {
        self->on_alloc = wp_reader_gone;
        self->on_read = wp_no_read;
        self->stream.written_cb = wp_written_cb;
    }
    else {
        self->on_alloc = rp_alloc_cb;
        self->on_read = rp_read_cb;
    }
    self->stream.shutdown_cb = NULL;
    if (transport_set_limits(self, Py_None, Py_None) < 0) {
        goto fail;
    }
    self->extra = extra == Py_None ? PyDict_New() : Py_NewRef(extra);
    if (self->extra == NULL
        || PyMapping_SetItemString(self->extra, "pipe", pipe) < 0) {
        goto fail;
    }
    PyObject *fdobj = PyObject_CallMethod(pipe, "fileno", NULL);
    long fd = fdobj ? PyLong_AsLong(fdobj) : -1;
    Py_XDECREF(fdobj);
    if (fd == -1 && PyErr_Occurred()) {
        goto fail;
    }
    if (fd < 0 || fd > INT32_MAX) {
        eloop_raise_errno(-EBADF);
        goto fail;
    }
    struct stat sb;
    if (fstat((int)fd, &sb) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    int fifo_or_sock = S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode);
    if (!fifo_or_sock && !(S_ISCHR(sb.st_mode))) {
        PyErr_SetString(PyExc_ValueError,
                        writer ? "Pipe transport is only for pipes, sockets "
                                 "and character devices"
                               : "Pipe transport is for pipes/sockets only.");
        goto fail;
    }
    if (writer && !fifo_or_sock) {
        self->on_alloc = NULL;      /* no reader to watch */
    }
    self->sock_fd = (int)fd;
    self->sock = Py_NewRef(pipe);
    self->stream.io.fd = self->sock_fd;
    int fl = fcntl(self->sock_fd, F_GETFL);
    if (fl < 0 || fcntl(self->sock_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    self->protocol = Py_NewRef(protocol);
    self->handle_ctx = PyContext_CopyCurrent();
    if (self->handle_ctx == NULL || pipe_own(self) < 0) {
        goto fail;
    }
    if (transport_schedule_start(loop, (PyObject *)self, protocol, waiter)
        < 0) {
        pipe_disown(self);
        goto fail;
    }
    return (PyObject *)self;

fail:
    Py_DECREF(self);
    return NULL;
}

/* loop._make_read_pipe_transport(pipe, protocol, waiter=None, extra=None)
 * and _make_write_pipe_transport(): what connect_read_pipe() and
 * connect_write_pipe() call. */
static PyObject *
pipe_make(LoopObject *loop, PyObject *args, PyObject *kwds, int writer)
{
    static char *kwlist[] = {"pipe", "protocol", "waiter", "extra", NULL};
    PyObject *pipe, *protocol, *waiter = Py_None, *extra = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|OO", kwlist, &pipe,
                                     &protocol, &waiter, &extra)) {
        return NULL;
    }
    return pipe_new(loop,
                    writer ? loop->st->WritePipeType
                           : loop->st->ReadPipeType,
                    pipe, protocol, waiter, extra);
}

static PyObject *
loop_make_read_pipe_transport(LoopObject *loop, PyObject *args,
                              PyObject *kwds)
{
    return pipe_make(loop, args, kwds, 0);
}

static PyObject *
loop_make_write_pipe_transport(LoopObject *loop, PyObject *args,
                               PyObject *kwds)
{
    return pipe_make(loop, args, kwds, 1);
}

PyMethodDef Loop_pipe_methods[] = {
    {"_make_read_pipe_transport",
     (PyCFunction)(void (*)(void))loop_make_read_pipe_transport,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"_make_write_pipe_transport",
     (PyCFunction)(void (*)(void))loop_make_write_pipe_transport,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {NULL, NULL, 0, NULL},
};

/* ---- types --------------------------------------------------------------- */

#define COMMON_ATTRS                                                        \
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL,    \
     NULL},                                                                 \
    {"_pipe", (getter)tb_attr_sock, (setter)pipe_set_attr_pipe, NULL,       \
     NULL},                                                                 \
    {"_extra", (getter)tb_attr_extra, (setter)tb_set_attr_extra, NULL,      \
     NULL},                                                                 \
    {"_loop", (getter)tb_attr_loop, NULL, NULL, NULL},                      \
    {"_fileno", (getter)pipe_attr_fileno, NULL, NULL, NULL},                \
    OBJ_GETTER("_protocol", protocol),                                        \
    FLAG_GETTER("_closing", closing)

static PyGetSetDef ReadPipe_getset[] = {
    COMMON_ATTRS,
    FLAG_GETTER("_paused", paused),
    {NULL, NULL, NULL, NULL, NULL},
};

static PyGetSetDef WritePipe_getset[] = {
    COMMON_ATTRS,
    {"_conn_lost", (getter)tb_attr_conn_lost, NULL, NULL, NULL},
    OBJ_GETTER("_high_water", high_obj),
    OBJ_GETTER("_low_water", low_obj),
    FLAG_GETTER("_protocol_paused", protocol_paused),
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Pipe_members[] = {
    {"__weaklistoffset__", EL_T_PYSSIZET,
     offsetof(TransportObject, weakreflist), EL_READONLY, NULL},
    {"__dictoffset__", EL_T_PYSSIZET, offsetof(TransportObject, dict),
     EL_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

#define COMMON_METHODS                                                      \
    TRANSPORT_BASE_METHODS,                                                 \
    ONEARG("set_protocol", pipe_set_protocol),                              \
    NOARGS("_read_ready", tr_read_ready),                                   \
    ONEARG("_call_connection_lost", pipe_connection_lost_meth),             \
    KWARGS("_fatal_error", pipe_fatal_error_meth)

static PyMethodDef ReadPipe_methods[] = {
    COMMON_METHODS,
    NOARGS("close", rp_close),
    TRANSPORT_READ_METHODS,
    NOARGS("_start_reading", tr_start_reading),
    {NULL, NULL, 0, NULL},
};

static PyMethodDef WritePipe_methods[] = {
    COMMON_METHODS,
    ONEARG("write", wp_write),
    NOARGS("write_eof", wp_write_eof),
    NOARGS("can_write_eof", tr_can_write_eof),
    NOARGS("close", wp_close),
    NOARGS("abort", wp_abort),
    TRANSPORT_WRITE_METHODS,
    NOARGS("_write_ready", tr_write_ready),
    NOARGS("_start_reading", wp_start_reading),
    {NULL, NULL, 0, NULL},
};

#define PIPE_SLOTS(methods, getset, doc)                                    \
    {Py_tp_dealloc, Transport_dealloc},                                     \
    {Py_tp_finalize, tb_finalize},                                   \
    {Py_tp_traverse, Transport_traverse},                                   \
    {Py_tp_clear, Transport_clear},                                         \
    {Py_tp_repr, pipe_repr},                                                \
    {Py_tp_methods, methods},                                               \
    {Py_tp_getset, getset},                                                 \
    {Py_tp_members, Pipe_members},                                          \
    {Py_tp_doc, doc},                                                       \
    {0, NULL}

static PyType_Slot ReadPipe_slots[] = {
    PIPE_SLOTS(ReadPipe_methods, ReadPipe_getset,
               "A read pipe transport (asyncio's _UnixReadPipeTransport), "
               "made by loop.connect_read_pipe()."),
};

static PyType_Slot WritePipe_slots[] = {
    PIPE_SLOTS(WritePipe_methods, WritePipe_getset,
               "A write pipe transport (asyncio's _UnixWritePipeTransport), "
               "made by loop.connect_write_pipe()."),
};

static PyType_Spec ReadPipe_spec = {
    .name = "eloop._eloop.ReadPipeTransport",
    .basicsize = sizeof(TransportObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
             | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = ReadPipe_slots,
};

static PyType_Spec WritePipe_spec = {
    .name = "eloop._eloop.WritePipeTransport",
    .basicsize = sizeof(TransportObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
             | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = WritePipe_slots,
};

/* Subclasses of asyncio.ReadTransport and asyncio.Transport (asyncio's
 * write pipe is a _FlowControlMixin, itself a Transport, so it is a
 * ReadTransport too, with Transport's reading methods), whose layout is
 * BaseTransport's one `_extra` slot, as for the socket transport
 * (transport_type_init checks the same). */
static PyTypeObject *
pipe_type(PyObject *mod, PyObject *tmod, const char *base_name,
          PyType_Spec *spec)
{
    PyObject *base = PyObject_GetAttrString(tmod, base_name);
    if (base == NULL) {
        return NULL;
    }
    if (!PyType_Check(base)
        || ((PyTypeObject *)base)->tp_basicsize
               != (Py_ssize_t)(offsetof(TransportObject, extra)
                               + sizeof(PyObject *))) {
        PyErr_Format(PyExc_ImportError,
                     "eloop: the layout of asyncio.transports.%s is not the "
                     "expected one; this Python's asyncio is not supported",
                     base_name);
        Py_DECREF(base);
        return NULL;
    }
    PyObject *bases = PyTuple_Pack(1, base);
    Py_DECREF(base);
    if (bases == NULL) {
        return NULL;
    }
    PyTypeObject *tp = (PyTypeObject *)PyType_FromModuleAndSpec(mod, spec,
                                                                bases);
    Py_DECREF(bases);
    if (tp != NULL && PyModule_AddType(mod, tp) < 0) {
        Py_CLEAR(tp);
    }
    return tp;
}

int
pipe_type_init(PyObject *mod, eloop_state *st)
{
    PyObject *tmod = PyImport_ImportModule("asyncio.transports");
    if (tmod == NULL) {
        return -1;
    }
    st->ReadPipeType = pipe_type(mod, tmod, "ReadTransport", &ReadPipe_spec);
    st->WritePipeType = st->ReadPipeType
        ? pipe_type(mod, tmod, "Transport", &WritePipe_spec) : NULL;
    Py_DECREF(tmod);
    if (st->WritePipeType == NULL) {
        return -1;
    }
    /* asyncio's class attribute: the read size. */
    PyObject *max_size = PyLong_FromLong(EL_STREAM_READ_SIZE);
    int rc = max_size ? PyObject_SetAttrString((PyObject *)st->ReadPipeType,
                                               "max_size", max_size)
                      : -1;
    Py_XDECREF(max_size);
    return rc;
}
