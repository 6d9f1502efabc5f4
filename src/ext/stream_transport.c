/*
 * stream_transport.c -- the stream transport base (transport.h), over the
 * core's el_stream_t: reading into the loop's spare, the write queue and
 * its coalescing, flow control, the close/abort/connection_lost() state
 * machine, error reporting, the generic methods and the GC slots.  The
 * socket transport (socket_transport.c, asyncio's
 * _SelectorSocketTransport) is this machinery plus a few socket-only
 * methods; the pipe transports (pipe.c) use the same object layout and
 * replace only what asyncio's pipe transports do differently.  What
 * follows describes the socket transport's behaviour; pipe.c says where
 * pipes differ (no write coalescing among others).
 *
 * The type subclasses asyncio.transports.Transport, so isinstance() checks
 * in user code pass.  BaseTransport's __slots__ = ('_extra',) places one
 * object pointer right after the object header; our struct reserves it
 * (TransportObject.extra, see transport.h), and transport_type_init()
 * (transport_loop.c) checks that the layout still matches before building
 * the type.
 *
 * Callback order is asyncio's.  Readiness does no I/O here: the stream's
 * notify_cb queues the transport's read or write handle on the ready ring,
 * exactly where asyncio's selector queues its reader and writer handles,
 * and the read, the write and the protocol callbacks happen when that
 * handle runs (el_stream_process), in the callback phase.
 *
 * Write coalescing.  asyncio's write() calls send() at once when its
 * buffer is empty: one syscall per write() call.  Here write() queues the
 * chunk (a bytes object by reference, anything else copied, since a
 * bytearray may change after write() returns) and links the transport on
 * loop->flushq; after the callback phase of the iteration, loop_run_once()
 * calls loop_flush_pending() (reactor.h), which sends each
 * transport's queue with one sendmsg() of up to IOV_MAX chunks.  A
 * protocol that writes a header, a body and a trailer, or answers ten
 * pipelined requests in one callback, costs one syscall instead of many.
 * Wherever asyncio's behaviour depends on what its immediate send would
 * have left buffered, we send first and decide after, so the outcome is
 * asyncio's:
 *   - write() sends at once when the queue exceeds the high-water mark, so
 *     pause_writing() is called exactly when asyncio calls it: when a send
 *     attempt leaves more than the high-water mark buffered;
 *   - close(), write_eof(), abort() and set_write_buffer_limits() flush
 *     first, so "is the buffer empty?" has asyncio's answer;
 *   - such an immediate send first flushes the transports that queued data
 *     earlier in the iteration, so peers become readable in asyncio's
 *     order (transport_flush_now);
 *   - outside a running loop, or from another thread, write() sends at once.
 * While the kernel refuses data (a write is under way), nothing is sent
 * early: asyncio would only append to its buffer too.  What differs, by
 * design: get_write_buffer_size() and repr() count bytes queued in this
 * iteration and not yet sent; a failed coalesced send closes the transport
 * at the end of the iteration, not inside write() (is_closing() turns True
 * and connection_lost() runs a step later); and a peer in the same loop
 * whose read runs later in the same iteration gets the bytes one iteration
 * later (data_received() boundaries differ; bytes and order do not).
 *
 * Ownership: while a transport is open, loop->transports[fd] holds it
 * (asyncio's _transports, but strong); a queued read/write handle and a
 * flushq entry each hold one more reference.  connection_lost() drops the
 * dict entry and the handles, which also breaks the transport -> handle ->
 * bound method -> transport cycle, so a closed transport is freed by
 * refcounting alone.
 */
#include "transport.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* Reads a pipe makes per readiness at most (see tr_read_ready); libuv
 * makes up to 32 per event, unconditionally. */
#define TR_READ_BATCH 16

/* ---- helpers ------------------------------------------------------------ */

static inline int
is_fatal(PyObject *exc)
{
    return PyErr_GivenExceptionMatches(exc, PyExc_SystemExit)
           || PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt);
}

/* OSError(err, strerror(err)): Python picks the subclass
 * (ConnectionResetError, BrokenPipeError, ...).  Shared (transport.h). */
PyObject *
transport_oserror(int err)
{
    return PyObject_CallFunction(PyExc_OSError, "is", err, strerror(err));
}

/* logger.debug(fmt, self[, message], exc_info=exc) in debug mode only.
 * Shared with udp.c (transport.h). */
int
transport_debug_log(LoopObject *loop, PyObject *self, const char *fmt,
                    const char *message, PyObject *exc)
{
    if (loop == NULL || !loop->debug) {
        return 0;
    }
    PyObject *meth = PyObject_GetAttrString(loop->st->logger, "debug");
    if (meth == NULL) {
        return -1;
    }
    PyObject *args = message ? Py_BuildValue("(sOs)", fmt, self, message)
                             : Py_BuildValue("(sO)", fmt, self);
    PyObject *kw = exc && args ? Py_BuildValue("{sO}", "exc_info", exc)
                               : NULL;
    PyObject *r = args && (kw || !exc) ? PyObject_Call(meth, args, kw)
                                       : NULL;
    Py_XDECREF(kw);
    Py_XDECREF(args);
    Py_DECREF(meth);
    return discard(r);
}

/* loop.call_exception_handler({'message', 'exception', 'transport',
 * 'protocol'}), the context every transport error in asyncio carries.
 * Shared with udp.c (transport.h). */
int
transport_report(LoopObject *loop, PyObject *self, PyObject *protocol,
                 const char *message, PyObject *exc)
{
    PyObject *ctx = Py_BuildValue(
        "{sssOsOsO}", "message", message, "exception", exc, "transport",
        self, "protocol", protocol ? protocol : Py_None);
    if (ctx == NULL) {
        return -1;
    }
    int rc = loop_call_exception_handler(loop, ctx);
    Py_DECREF(ctx);
    return rc;
}

/* The loop runs here and now, so work can wait for the end of the
 * iteration. */
static inline int
running_here(LoopObject *loop)
{
    return loop->running && loop->thread_id == PyThread_get_thread_ident();
}

/* loop.call_soon(self.<meth>[, arg]) */
int
transport_call_soon(TransportObject *self, const char *meth, PyObject *arg)
{
    PyObject *cb = PyObject_GetAttrString((PyObject *)self, meth);
    if (cb == NULL) {
        return -1;
    }
    PyObject *a[3] = {NULL, cb, arg};
    int rc = loop_soon(self->loop, a + 1, arg ? 2 : 1);
    Py_DECREF(cb);
    return rc;
}

/* Drops loop->transports[fd] if it is owner.  Shared with udp.c. */
int
transport_unregister_fd(LoopObject *loop, int fd, PyObject *owner)
{
    PyObject *d = loop ? loop->transports : NULL;
    if (d == NULL || fd < 0) {
        return 0;
    }
    PyObject *key = PyLong_FromLong(fd);
    if (key == NULL) {
        return -1;
    }
    PyObject *cur = PyDict_GetItemWithError(d, key);    /* borrowed */
    int rc = 0;
    if (cur == owner) {
        rc = PyDict_DelItem(d, key);
    }
    else if (cur == NULL && PyErr_Occurred()) {
        rc = -1;
    }
    Py_DECREF(key);
    return rc;
}

int
transport_unregister(TransportObject *self)
{
    return transport_unregister_fd(self->loop, self->sock_fd,
                                   (PyObject *)self);
}

/* ---- closing ------------------------------------------------------------ */

/* asyncio's _call_connection_lost(): connection_lost(exc) exactly once,
 * then release the socket, the server and the loop's references. */
int
tr_call_connection_lost(TransportObject *self, PyObject *exc)
{
    if (self->lost) {
        return 0;
    }
    self->lost = 1;
    if (self->conn_lost == 0) {
        self->conn_lost = 1;    /* writes from now on are ignored */
    }
    PyObject *err = transport_lost_notify((TransportBase *)self, exc);
    /* `finally:` -- detach the watcher before the fd closes. */
    el_stream_close(&self->stream);
    /* asyncio sets _sock = None, but its extra['socket'] keeps the
     * socket alive as long as the transport: ours stays in self->sock. */
    PyObject *sock = self->sock_closed ? NULL : Py_XNewRef(self->sock);
    PyObject *server = self->server;
    self->sock_closed = 1;
    self->server = NULL;
    Py_CLEAR(self->protocol);
    Py_CLEAR(self->read_handle);
    Py_CLEAR(self->write_handle);
    Py_CLEAR(self->handle_ctx);
    PyObject *steps[3] = {NULL, sock, server};
    for (int i = 0; i < 3; i++) {
        int rc;
        if (i == 0) {
            rc = transport_unregister(self);
        }
        else if (steps[i] == NULL) {
            continue;
        }
        else {
            rc = discard(i == 1 ? call_method1(sock, "close", NULL)
                                : call_method1(server, "_detach",
                                               SERVER_ATTACH_ARG(self)));
        }
        if (rc < 0) {
            transport_finally_failed(&err);
        }
    }
    Py_XDECREF(sock);
    Py_XDECREF(server);
    if (err != NULL) {
        el_restore_exc(err);
        return -1;
    }
    /* _SelectorSocketTransport's override: a sendfile() waiting for the
     * buffer to drain learns that it never will. */
    if (self->empty_waiter != NULL) {
        PyObject *e = PyObject_CallFunction(PyExc_ConnectionError, "s",
                                            "Connection is closed by peer");
        int rc = e ? discard(call_method1(self->empty_waiter,
                                          "set_exception", e)) : -1;
        Py_XDECREF(e);
        return rc;
    }
    return 0;
}

static int
tr_force_close(TransportObject *self, PyObject *exc)
{
    if (self->conn_lost) {
        return 0;
    }
    el_stream_write_clear(&self->stream);
    if (!self->closing) {
        self->closing = 1;
        el_stream_read_stop(&self->stream);
    }
    self->conn_lost++;
    return transport_call_soon(self, "_call_connection_lost",
                               exc ? exc : Py_None);
}

/* asyncio's _fatal_error(): OSErrors are expected (a peer went away) and
 * only logged in debug mode; anything else is reported. */
static int
tr_fatal_error(TransportObject *self, PyObject *exc, const char *message)
{
    int rc;
    if (PyErr_GivenExceptionMatches(exc, PyExc_OSError)) {
        rc = tr_debug_log(self, "%r: %s", message, exc);
    }
    else {
        rc = tr_report(self, message, exc);
    }
    return rc < 0 ? -1 : tr_force_close(self, exc);
}

/* With a protocol callback's exception set: SystemExit and
 * KeyboardInterrupt stay set and escape (-1), as asyncio re-raises them;
 * any other error is fatal to the transport (0 once handled, -1 if
 * handling it failed). */
int
tr_callback_failed(TransportObject *self, const char *message)
{
    PyObject *exc = el_fetch_exc();
    if (is_fatal(exc)) {
        el_restore_exc(exc);
        return -1;
    }
    int rc = tr_fatal_error(self, exc, message);
    Py_DECREF(exc);
    return rc;
}

static int
tr_errno_fatal(TransportObject *self, int err, const char *message)
{
    PyObject *exc = transport_oserror(err);
    if (exc == NULL) {
        return -1;
    }
    int rc = tr_fatal_error(self, exc, message);
    Py_DECREF(exc);
    return rc;
}

/* ---- flow control ------------------------------------------------------- */


/* protocol.<meth>() for flow control; its failure is reported, as
 * _FlowControlMixin does.  Shared with udp.c (transport.h). */
int
transport_protocol_flow(LoopObject *loop, PyObject *self, PyObject *protocol,
                        const char *meth, const char *msg)
{
    PyObject *r = protocol ? call_method1(protocol, meth, NULL) : NULL;
    if (r != NULL) {
        Py_DECREF(r);
        return 0;
    }
    if (protocol == NULL) {
        PyErr_Format(PyExc_AttributeError,
                     "'NoneType' object has no attribute '%s'", meth);
    }
    PyObject *exc = el_fetch_exc();
    if (is_fatal(exc)) {
        el_restore_exc(exc);
        return -1;
    }
    int rc = transport_report(loop, self, protocol, msg, exc);
    Py_DECREF(exc);
    return rc;
}

static inline int
tr_protocol_flow(TransportObject *self, const char *meth, const char *msg)
{
    return transport_protocol_flow(self->loop, (PyObject *)self,
                                   self->protocol, meth, msg);
}

int
tr_maybe_pause(TransportObject *self)
{
    if (tr_buffer_size(self) <= self->high_water || self->protocol_paused) {
        return 0;
    }
    self->protocol_paused = 1;
    return tr_protocol_flow(self, "pause_writing",
                            "protocol.pause_writing() failed");
}

int
tr_maybe_resume(TransportObject *self)
{
    if (!self->protocol_paused || tr_buffer_size(self) > self->low_water) {
        return 0;
    }
    self->protocol_paused = 0;
    return tr_protocol_flow(self, "resume_writing",
                            "protocol.resume_writing() failed");
}

/* ---- writing ------------------------------------------------------------ */

/* Sends the queue now, as asyncio's write() would have: a no-op while a
 * write is under way (asyncio would only buffer).  Returns -1 only with
 * an exception to raise; a failed send is handled as asyncio handles it
 * (_fatal_error, the transport closes). */
int
transport_flush_one(TransportObject *self)
{
    if (self->conn_lost || self->loop == NULL) {
        return 0;
    }
    int r = el_stream_flush(&self->stream);
    if (r == 0 && self->closing) {
        /* Drained data written while close() waited: as close() with an
         * empty buffer. */
        self->conn_lost++;
        return transport_call_soon(self, "_call_connection_lost", Py_None);
    }
    if (r >= 0) {
        return 0;
    }
    if (r == -ESHUTDOWN && self->loop->closed) {
        /* asyncio's _add_writer() -> _check_closed() */
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return tr_errno_fatal(self, -r, "Fatal write error on socket transport");
}

int
transport_flush_now(TransportObject *self)
{
    /* Transports that queued data earlier in this iteration go first:
     * asyncio sent their data when they wrote it, so the order in which
     * peers become readable (the order of their data_received() calls)
     * stays asyncio's. */
    if (!self->conn_lost && self->loop != NULL
        && el_stream_write_queue_len(&self->stream) > 0
        && !el_stream_is_writing(&self->stream)
        && el_ring_len(&self->loop->flushq) > 0 && running_here(self->loop)
        && loop_flush_pending(self->loop) < 0) {
        return -1;
    }
    return transport_flush_one(self);
}

void
tr_write_done(el_stream_t *s, void *token, int status)
{
    (void)s;
    (void)status;
    Py_DECREF((PyObject *)token);
}

/* After data was queued: send now or at the end of the iteration, then
 * asyncio's _maybe_pause_protocol(). */
static int
tr_after_queue(TransportObject *self)
{
    LoopObject *loop = self->loop;
    if (!el_stream_is_writing(&self->stream)) {
        if (!running_here(loop) || tr_buffer_size(self) > self->high_water) {
            if (transport_flush_now(self) < 0) {
                return -1;
            }
            if (self->conn_lost) {
                return 0;       /* the send failed: asyncio returns too */
            }
        }
        else if (loop_push_flush(loop, &self->item) < 0) {
            PyErr_Clear();      /* no room to wait: send now instead */
            return transport_flush_one(self);
        }
    }
    return tr_maybe_pause(self);
}

/* write(b''.join(objs)) without the join: each object becomes one queued
 * chunk, by reference if it is bytes, else as a bytes copy. */
static PyObject *
tr_write_objs(TransportObject *self, PyObject *const *objs, Py_ssize_t n)
{
    PyObject *small[8], **tokens = small;
    Py_ssize_t ntok = 0, total = 0;
    PyObject *res = NULL;

    if (self->eof) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Cannot call write() after write_eof()");
        return NULL;
    }
    if (self->empty_waiter != NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "unable to write; sendfile is in progress");
        return NULL;
    }
    if (n > (Py_ssize_t)(sizeof(small) / sizeof(small[0]))) {
        tokens = PyMem_New(PyObject *, n);
        if (tokens == NULL) {
            return PyErr_NoMemory();
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *tok;
        if (PyBytes_Check(objs[i])) {
            tok = Py_NewRef(objs[i]);
        }
        else {
            Py_buffer view;
            if (PyObject_GetBuffer(objs[i], &view, PyBUF_SIMPLE) < 0) {
                goto done;
            }
            tok = PyBytes_FromStringAndSize(view.buf, view.len);
            PyBuffer_Release(&view);
            if (tok == NULL) {
                goto done;
            }
        }
        if (PyBytes_GET_SIZE(tok) == 0) {
            Py_DECREF(tok);
            continue;
        }
        total += PyBytes_GET_SIZE(tok);
        tokens[ntok++] = tok;
    }
    if (total == 0) {
        res = Py_NewRef(Py_None);
        goto done;
    }
    if (self->conn_lost) {
        if (self->conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES
            && discard(PyObject_CallMethod(
                   self->st->logger, "warning", "s",
                   "socket.send() raised exception.")) < 0) {
            goto done;
        }
        self->conn_lost++;
        res = Py_NewRef(Py_None);
        goto done;
    }
    /* All of the data or none of it: room for every chunk first, so that
     * no el_stream_write() below fails half way with -ENOMEM.  Any other
     * error (closed, shut down) is the stream's state, the same for every
     * chunk: the first write fails, with nothing queued.  A single chunk
     * (write()) is all or nothing anyway. */
    int err = ntok > 1 ? el_stream_write_reserve(&self->stream, (size_t)ntok)
                       : 0;
    for (Py_ssize_t i = 0; i < ntok && err == 0; i++) {
        PyObject *tok = tokens[i];
        err = el_stream_write(&self->stream, PyBytes_AS_STRING(tok),
                              (size_t)PyBytes_GET_SIZE(tok), tok);
        if (err == 0) {
            tokens[i] = NULL;       /* the queue owns it now */
        }
    }
    if (err < 0) {
        if (err == -ENOMEM) {
            PyErr_NoMemory();
        }
        else {
            eloop_raise_errno(err);
        }
        goto done;
    }
    if (tr_after_queue(self) == 0) {
        res = Py_NewRef(Py_None);
    }
done:
    for (Py_ssize_t i = 0; i < ntok; i++) {
        Py_XDECREF(tokens[i]);
    }
    if (tokens != small) {
        PyMem_Free(tokens);
    }
    return res;
}

PyObject *
tr_write(TransportObject *self, PyObject *data)
{
    if (!PyBytes_Check(data) && !PyByteArray_Check(data)
        && !PyMemoryView_Check(data)) {
        PyObject *name = PyType_GetName(Py_TYPE(data));
        if (name != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "data argument must be a bytes-like object, "
                         "not %R", name);
            Py_DECREF(name);
        }
        return NULL;
    }
    return tr_write_objs(self, &data, 1);
}

PyObject *
tr_writelines(TransportObject *self, PyObject *list)
{
#if PY_VERSION_HEX < 0x030C0000
    /* 3.11's writelines() is WriteTransport's: self.write(b''.join(x)),
     * which goes through a write() patched on the instance. */
    PyObject *patched = self->dict != NULL     /* borrowed */
        ? PyDict_GetItemString(self->dict, "write") : NULL;
    if (patched != NULL) {
        PyObject *empty = PyBytes_FromStringAndSize(NULL, 0);
        PyObject *data = empty ? PyObject_CallMethod(empty, "join", "O",
                                                     list) : NULL;
        Py_XDECREF(empty);
        if (data == NULL) {
            return NULL;
        }
        Py_INCREF(patched);     /* the call may change the dict */
        PyObject *r = PyObject_CallOneArg(patched, data);
        Py_DECREF(patched);
        Py_DECREF(data);
        return r;
    }
#endif
    /* The semantics of WriteTransport.writelines(): write(b''.join(x)),
     * with the errors of that join (3.11) or, from 3.12, of the
     * [memoryview(data) for data in x] that replaced it. */
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *seq = PySequence_Fast(list, "");
    if (seq == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Format(PyExc_TypeError, "'%.200s' object is not iterable",
                         Py_TYPE(list)->tp_name);
        }
        return NULL;
    }
#else
    PyObject *seq = PySequence_Fast(list, "can only join an iterable");
    if (seq == NULL) {
        return NULL;
    }
#endif
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *res = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyObject_CheckBuffer(items[i])) {
#if PY_VERSION_HEX >= 0x030C0000
            PyErr_Format(PyExc_TypeError,
                         "memoryview: a bytes-like object is required, "
                         "not '%.200s'", Py_TYPE(items[i])->tp_name);
#else
            PyErr_Format(PyExc_TypeError,
                         "sequence item %zd: expected a bytes-like object, "
                         "%.80s found", i, Py_TYPE(items[i])->tp_name);
#endif
            goto done;
        }
    }
    res = tr_write_objs(self, items, n);
done:
    Py_DECREF(seq);
    return res;
}

/* An asynchronous write pass (the write handle) finished: asyncio's
 * _write_ready() after its send. */
static int
tr_written_cb(el_stream_t *s, int status)
{
    TransportObject *self = el_container_of(s, TransportObject, stream);
    if (status < 0) {
        el_stream_write_clear(s);
        PyObject *exc = transport_oserror(-status);
        if (exc == NULL) {
            return -1;
        }
        int rc = tr_fatal_error(self, exc, "Fatal write error on socket "
                                           "transport");
        if (rc == 0 && self->empty_waiter != NULL) {
            rc = discard(call_method1(self->empty_waiter, "set_exception",
                                      exc));
        }
        Py_DECREF(exc);
        return rc;
    }
    if (tr_maybe_resume(self) < 0) {    /* may write more */
        return -1;
    }
    if (el_stream_write_queue_len(s) == 0) {
        if (self->empty_waiter != NULL
            && discard(call_method1(self->empty_waiter, "set_result",
                                    Py_None)) < 0) {
            return -1;
        }
        if (self->closing && !self->conn_lost) {
            return tr_call_connection_lost(self, NULL);
        }
        /* A pending write_eof() shutdown follows in the core. */
    }
    return 0;
}

static int
tr_shutdown_cb(el_stream_t *s, int status)
{
    (void)s;
    if (status < 0) {
        /* asyncio's sock.shutdown() raises out of _write_ready(). */
        return eloop_raise_errno(status);
    }
    return 0;
}

/* ---- reading ------------------------------------------------------------ */

int
tr_alloc_cb(el_stream_t *s, size_t suggested, el_buf_t *buf)
{
    TransportObject *self = el_container_of(s, TransportObject, stream);
    LoopObject *loop = self->loop;

    if (!self->buffered) {
        /* Into the loop's spare bytes object (see tr_read_cb). */
        if (loop->read_spare == NULL) {
            loop->read_spare = PyBytes_FromStringAndSize(
                NULL, (Py_ssize_t)suggested);
            if (loop->read_spare == NULL) {
                return tr_callback_failed(
                    self, "Fatal read error on socket transport");
            }
        }
        buf->base = PyBytes_AS_STRING(loop->read_spare);
        buf->len = (size_t)PyBytes_GET_SIZE(loop->read_spare);
        return 0;
    }
    /* asyncio's _read_ready__get_buffer() */
    PyObject *minus_one = PyLong_FromLong(-1);
    PyObject *b = minus_one && self->protocol
        ? PyObject_CallMethodOneArg(self->protocol, self->st->str_get_buffer,
                                    minus_one)
        : NULL;
    Py_XDECREF(minus_one);
    if (b == NULL) {
        goto get_buffer_failed;
    }
    Py_ssize_t len = PyObject_Length(b);
    if (len == 0) {
        PyErr_SetString(PyExc_RuntimeError,
                        "get_buffer() returned an empty buffer");
    }
    if (len <= 0) {
        Py_DECREF(b);
        goto get_buffer_failed;
    }
    /* recv_into()'s own failure (say, a read-only buffer) is a read
     * error in asyncio, not a get_buffer() one. */
    if (self->view == NULL) {
        self->view = PyMem_Malloc(sizeof(*self->view));
        if (self->view == NULL) {
            PyErr_NoMemory();
            Py_DECREF(b);
            return tr_callback_failed(self,
                                      "Fatal read error on socket transport");
        }
    }
    if (PyObject_GetBuffer(b, self->view, PyBUF_WRITABLE) < 0) {
        /* The TypeError of sock.recv_into()'s argument parsing. */
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError,
                     "recv_into() argument 1 must be read-write bytes-like "
                     "object, not %.50s",
                     b == Py_None ? "None" : Py_TYPE(b)->tp_name);
        Py_DECREF(b);
        return tr_callback_failed(self,
                                  "Fatal read error on socket transport");
    }
    Py_DECREF(b);
    self->has_view = 1;
    buf->base = self->view->buf;
    buf->len = (size_t)self->view->len;
    if (buf->len == 0) {
        self->has_view = 0;
        PyBuffer_Release(self->view);
    }
    return 0;
get_buffer_failed:
    return tr_callback_failed(self, "Fatal error: protocol.get_buffer() "
                                    "call failed.");
}

/* A bytes object about to be refilled forgets the hash data_received()
 * may have had computed and cached in it.  ob_shash is deprecated API
 * (3.11) but still that cache. */
static inline void
bytes_forget_hash(PyObject *b)
{
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
    ((PyBytesObject *)b)->ob_shash = -1;
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
}

/* protocol.data_received() with nread bytes read into buf (lent by
 * tr_alloc_cb, the spare or not).  -1 with the exception set, and
 * *called telling whether it is data_received()'s (else making the bytes
 * failed).  Shared by every stream transport (transport.h). */
static inline int
tr_data_received(TransportObject *self, PyObject *protocol,
                 const el_buf_t *buf, ssize_t nread, int *called)
{
    /* A read that filled the spare (a bulk flow) hands the spare itself
     * to data_received(), saving a 256 KiB copy.  If the protocol kept no
     * reference to it (it copied the data out, as a parser accumulating
     * into a bytearray does), nothing can see it any more, and it is the
     * spare again for the next read: a bulk flow then reads into the
     * same, already mapped pages instead of faulting in a fresh 256 KiB
     * per read.  Shrinking the spare for shorter reads would cost more
     * than their copy: glibc serves 256 KiB with mmap(), so every shrink
     * and free would be a syscall and fresh pages. */
    LoopObject *loop = self->loop;
    PyObject *spare = loop->read_spare;
    PyObject *data;
    int lent = spare != NULL && buf->base == PyBytes_AS_STRING(spare)
               && nread == PyBytes_GET_SIZE(spare);
    *called = 0;
    if (loop->read_fresh != NULL) {
        /* Read into bytes made for it (pipe.c): handed over as is, cut
         * to size in the rare case the pipe gave less than it said. */
        data = loop->read_fresh;
        loop->read_fresh = NULL;
        if (nread < PyBytes_GET_SIZE(data)
            && _PyBytes_Resize(&data, nread) < 0) {
            return -1;
        }
    }
    else if (lent) {
        data = spare;
        loop->read_spare = NULL;
    }
    else {
        data = PyBytes_FromStringAndSize(buf->base, nread);
    }
    if (data == NULL) {
        return -1;
    }
    *called = 1;
    PyObject *r = PyObject_CallMethodOneArg(protocol,
                                            self->st->str_data_received,
                                            data);
    if (lent && Py_REFCNT(data) == 1 && loop->read_spare == NULL
        && !loop->closed) {
        bytes_forget_hash(data);
        loop->read_spare = data;        /* our reference */
    }
    else {
        Py_DECREF(data);
    }
    return discard(r);
}

int
transport_data_received(TransportObject *self, PyObject *protocol,
                        const el_buf_t *buf, ssize_t nread, int *called)
{
    return tr_data_received(self, protocol, buf, nread, called);
}

/* asyncio's _read_ready__on_eof() */
static int
tr_on_eof(TransportObject *self)
{
    if (tr_debug_log(self, "%r received EOF", NULL, NULL) < 0) {
        return -1;
    }
    PyObject *r = self->protocol
        ? call_method1(self->protocol, "eof_received", NULL) : NULL;
    if (r == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_AttributeError,
                            "'NoneType' object has no attribute "
                            "'eof_received'");
        }
        return tr_callback_failed(self, "Fatal error: "
                                        "protocol.eof_received() call "
                                        "failed.");
    }
    int keep_open = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (keep_open < 0) {
        return -1;
    }
    if (keep_open > 0) {
        /* Keep the connection open for writing; nothing more to read, so
         * the reader goes (but _paused stays False, as in asyncio). */
        el_stream_read_stop(&self->stream);
    }
    else {
        return discard(tr_close(self, NULL));
    }
    return 0;
}

static int
tr_read_cb(el_stream_t *s, ssize_t nread, const el_buf_t *buf)
{
    TransportObject *self = el_container_of(s, TransportObject, stream);
    int buffered = self->has_view;
    PyObject *r;

    if (buffered) {
        self->has_view = 0;
        PyBuffer_Release(self->view);
    }
    if (nread == -EAGAIN || nread == -ECANCELED) {
        return 0;
    }
    if (nread < 0) {
        return tr_errno_fatal(self, (int)-nread,
                              "Fatal read error on socket transport");
    }
    if (nread == 0) {
        return tr_on_eof(self);
    }
    PyObject *protocol = self->protocol;
    if (protocol == NULL) {
        return 0;
    }
    if (buffered) {
        PyObject *n = PyLong_FromSsize_t(nread);
        r = n ? PyObject_CallMethodOneArg(protocol,
                                          self->st->str_buffer_updated, n)
              : NULL;
        Py_XDECREF(n);
        if (r == NULL) {
            return tr_callback_failed(self, "Fatal error: "
                                            "protocol.buffer_updated() "
                                            "call failed.");
        }
    }
    else {
        int called;
        if (tr_data_received(self, protocol, buf, nread, &called) < 0) {
            return tr_callback_failed(
                self, called ? "Fatal error: protocol.data_received() call "
                               "failed."
                             : "Fatal read error on socket transport");
        }
        return 0;
    }
    Py_DECREF(r);
    return 0;
}

/* Queues *handle (made now if there is none) on the ready ring. */
static int
tr_queue_handle(TransportObject *self, PyObject **handle, PyObject *meth)
{
    if (*handle == NULL
        && (*handle = transport_make_handle(self, meth)) == NULL) {
        return -1;
    }
    return loop_push_ready(self->loop, (HandleObject *)*handle);
}

/* Readiness, during dispatch: queue the handle asyncio's selector would
 * queue.  No Python code runs here.  -1 with MemoryError if a handle
 * cannot be queued (the dispatch stops; the event stays pending and the
 * next readiness queues it). */
static int
tr_notify_cb(el_stream_t *s, unsigned events)
{
    TransportObject *self = el_container_of(s, TransportObject, stream);
    LoopObject *loop = self->loop;

    if ((events & EL_READABLE) && !self->read_queued
        && self->handle_ctx != NULL) {
        /* Outside debug mode no Handle: tr_run_read_ready() runs
         * it.  Debug mode queues a real one, kept like asyncio's, so that
         * slow-callback warnings name it. */
        int rc = loop->debug
                     ? tr_queue_handle(self, &self->read_handle,
                                       self->st->str_read_ready)
                     : loop_push_ready_item(loop, &self->item);
        if (rc < 0) {
            return -1;
        }
        self->read_queued = 1;
    }
    if ((events & EL_WRITABLE) && !self->write_queued
        && self->handle_ctx != NULL) {
        if (tr_queue_handle(self, &self->write_handle,
                            self->st->str_write_ready) < 0) {
            return -1;
        }
        self->write_queued = 1;
    }
    return 0;
}

/* asyncio's _SelectorTransport._add_reader(): only while is_reading(). */
static int
tr_add_reader(TransportObject *self)
{
    if (self->closing || self->paused) {
        return 0;
    }
    if (loop_check_closed(self->loop) < 0) {
        return -1;
    }
    int err = el_stream_read_start(&self->stream, self->on_alloc,
                                   self->on_read);
    if (err == -EBADF && el_io_stale(&self->stream.io)) {
        /* The socket was closed behind our back: asyncio's reader, if it
         * ever ran, would get EBADF from recv() on the closed socket. */
        tr_errno_fatal(self, EBADF, "Fatal read error on socket transport");
        return PyErr_Occurred() ? -1 : 0;
    }
    if (err < 0) {
        return eloop_raise_errno(err);
    }
    return 0;
}

/* ---- methods ------------------------------------------------------------ */

/* Drops a readiness handle that is not queued: the next readiness makes
 * a new one (from the handle freelist), which is cheaper than keeping a
 * Handle and a bound method for every idle connection.  The running
 * handle stays alive until its call returns (handle_run holds it).
 * Debug mode keeps it: each handle records a traceback when made.  (A
 * read handle exists outside debug mode only if debug was turned off.) */
static void
tr_release_handle(TransportObject *self, PyObject **handle, char queued)
{
    if (!queued && !self->loop->debug) {
        Py_CLEAR(*handle);
    }
}

/* A pipe that got data reads on at once while asyncio could not tell
 * (loop_only_reader): a bulk flow then costs no poll per read.  Out of
 * line: sockets never come here. */
static int
tr_read_on(TransportObject *self, int rc)
{
    for (int n = 1; rc == 0 && self->read_again && n < TR_READ_BATCH
                    && !self->lost && loop_only_reader(self->loop);
         n++) {
        self->read_again = 0;
        rc = el_stream_read_now(&self->stream);
    }
    self->read_again = 0;
    return rc;
}

/* _read_ready(): inline in tr_run_read_ready(), every read's path. */
static inline int
tr_do_read_ready(TransportObject *self)
{
    self->read_queued = 0;
    /* Not conn_lost: a write pipe counts writes it dropped while closing
     * there, and still writes out its buffer (after a socket's close or
     * abort the stream has nothing left to do either way). */
    int rc = self->lost
                 ? 0 : el_stream_process(&self->stream, EL_READABLE);
    if (self->read_again) {
        rc = tr_read_on(self, rc);
    }
    tr_release_handle(self, &self->read_handle, self->read_queued);
    return rc;
}

PyObject *
tr_read_ready(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (tr_do_read_ready(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* A readable transport queued without a Handle: runs _read_ready() as
 * its reader Handle would (in handle_ctx, see transport_make_handle()),
 * and reports a failure the same way, naming a Handle made for it. */
static int
tr_run_read_ready(PyObject *obj)
{
    TransportObject *self = (TransportObject *)obj;
    if (self->handle_ctx == NULL) {     /* the connection is gone */
        self->read_queued = 0;
        return 0;
    }
    PyObject *ctx = Py_NewRef(self->handle_ctx);
    int rc = -1;
    if (PyContext_Enter(ctx) == 0) {
        rc = tr_do_read_ready(self);
        if (PyContext_Exit(ctx) < 0) {
            rc = -1;
        }
    }
    if (rc == 0) {
        Py_DECREF(ctx);
        return 0;
    }
    PyObject *exc = el_fetch_exc();
    PyObject *cb = PyObject_GetAttr(obj, self->st->str_read_ready);
    HandleObject *h = cb ? handle_new(self->loop, cb, NULL, 0, ctx) : NULL;
    Py_XDECREF(cb);
    Py_DECREF(ctx);
    if (h == NULL) {
        Py_DECREF(exc);
        return -1;
    }
    el_restore_exc(exc);
    rc = handle_report(h, h->callback, h->args);
    Py_DECREF(h);
    return rc;
}

PyObject *
tr_write_ready(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    self->write_queued = 0;
    int rc = self->lost
                 ? 0 : el_stream_process(&self->stream, EL_WRITABLE);
    if (!el_stream_is_writing(&self->stream)) {
        tr_release_handle(self, &self->write_handle, self->write_queued);
    }
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Scheduled by the constructor: reading starts after connection_made(). */
PyObject *
tr_start_reading(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->loop != NULL && tr_add_reader(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The arguments of _fatal_error(exc, message=...); *message holds the
 * default on entry.  Shared (transport.h). */
int
transport_fatal_error_args(PyObject *args, PyObject *kwds, PyObject **exc,
                           const char **message)
{
    static char *kwlist[] = {"exc", "message", NULL};
    return PyArg_ParseTupleAndKeywords(args, kwds, "O|s:_fatal_error",
                                       kwlist, exc, message) ? 0 : -1;
}

PyObject *
tr_close(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->closing) {
        Py_RETURN_NONE;
    }
    /* What this iteration wrote, asyncio would have sent already. */
    if (transport_flush_now(self) < 0) {
        return NULL;
    }
    if (self->closing) {
        Py_RETURN_NONE;         /* that send failed and closed us */
    }
    self->closing = 1;
    el_stream_read_stop(&self->stream);
    if (el_stream_write_queue_len(&self->stream) == 0) {
        self->conn_lost++;
        if (transport_call_soon(self, "_call_connection_lost", Py_None) < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

PyObject *
tr_abort(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->loop == NULL) {
        Py_RETURN_NONE;
    }
    /* Only data asyncio would still hold in its buffer is lost. */
    if (transport_flush_now(self) < 0 || tr_force_close(self, NULL) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
tr_can_write_eof(TransportObject *Py_UNUSED(self),
                 PyObject *Py_UNUSED(ignored))
{
    Py_RETURN_TRUE;
}

PyObject *
transport_set_protocol(TransportObject *self, PyObject *protocol)
{
    int buffered = PyObject_IsInstance(protocol, self->st->BufferedProtocol);
    if (buffered < 0) {
        return NULL;
    }
    self->buffered = (char)buffered;
    Py_XSETREF(self->protocol, Py_NewRef(protocol));
    self->protocol_connected = 1;
    Py_RETURN_NONE;
}

/* floor(v) as a size: for an integer size n, n > v <=> n > floor(v), so
 * float limits compare as asyncio compares them.  v >= 0 is known. */
static int
water_mark(PyObject *v, Py_ssize_t *out)
{
    if (PyLong_Check(v)) {
        *out = PyLong_AsSsize_t(v);
        if (*out == -1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
                return -1;
            }
            PyErr_Clear();
            *out = PY_SSIZE_T_MAX;
        }
        return 0;
    }
    double d = PyFloat_AsDouble(v);
    if (d == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    d = floor(d);
    *out = d >= 9.2e18 ? PY_SSIZE_T_MAX : (Py_ssize_t)d;
    return 0;
}

/* _FlowControlMixin._set_write_buffer_limits(), same defaults and
 * errors: values are kept as given (*high_obj, *low_obj), and their
 * floors as sizes.  Shared with udp.c (transport.h). */
int
transport_limits_parse(PyObject *high, PyObject *low, PyObject **high_obj,
                       PyObject **low_obj, Py_ssize_t *high_water,
                       Py_ssize_t *low_water)
{
    PyObject *four = PyLong_FromLong(4), *zero = PyLong_FromLong(0);
    Py_ssize_t hw, lw;
    int rc = -1;

    if (four == NULL || zero == NULL) {
        goto done;
    }
    if (high == Py_None) {
        high = low == Py_None ? PyLong_FromLong(64 * 1024)
                              : PyNumber_Multiply(four, low);
    }
    else {
        Py_INCREF(high);
    }
    if (high == NULL) {
        goto done;
    }
    low = low == Py_None ? PyNumber_FloorDivide(high, four)
                         : Py_NewRef(low);
    if (low == NULL) {
        Py_DECREF(high);
        goto done;
    }
    int ok = PyObject_RichCompareBool(high, low, Py_GE);
    if (ok == 1) {
        ok = PyObject_RichCompareBool(low, zero, Py_GE);
    }
    if (ok == 0) {
        PyErr_Format(PyExc_ValueError,
                     "high (%R) must be >= low (%R) must be >= 0", high, low);
    }
    if (ok == 1 && water_mark(high, &hw) == 0 && water_mark(low, &lw) == 0) {
        Py_XSETREF(*high_obj, high);
        Py_XSETREF(*low_obj, low);
        *high_water = hw;
        *low_water = lw;
        rc = 0;
    }
    else {
        Py_DECREF(high);
        Py_DECREF(low);
    }
done:
    Py_XDECREF(four);
    Py_XDECREF(zero);
    return rc;
}

int
transport_set_limits(TransportObject *self, PyObject *high, PyObject *low)
{
    return transport_limits_parse(high, low, &self->high_obj, &self->low_obj,
                                  &self->high_water, &self->low_water);
}

/* ---- type slots --------------------------------------------------------- */

int
Transport_traverse(TransportObject *self, visitproc visit, void *arg)
{
    int r = transport_base_traverse((TransportBase *)self, visit, arg);
    if (r != 0) {
        return r;
    }
    Py_VISIT(self->server);
    Py_VISIT(self->handle_ctx);
    Py_VISIT(self->empty_waiter);
    Py_VISIT(self->dict);
    for (size_t i = 0; i < el_stream_write_queue_len(&self->stream); i++) {
        Py_VISIT((PyObject *)el_stream_write_queue_token(&self->stream, i));
    }
    return 0;
}

int
Transport_clear(TransportObject *self)
{
    /* Out of the reactor first: the watcher lives in the loop's core,
     * which the loop reference below may be the last to keep. */
    if (self->loop != NULL) {
        el_stream_close(&self->stream);
    }
    if (self->has_view) {
        self->has_view = 0;
        PyBuffer_Release(self->view);
    }
    PyMem_Free(self->view);
    self->view = NULL;
    self->stream.io.fd_src = NULL;      /* points into sock */
    transport_base_clear((TransportBase *)self);
    Py_CLEAR(self->server);
    Py_CLEAR(self->handle_ctx);
    Py_CLEAR(self->empty_waiter);
    Py_CLEAR(self->dict);
    Py_CLEAR(self->loop);
    return 0;
}

void
Transport_dealloc(TransportObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (tb_dealloc_begin((TransportBase *)self) < 0) {
        return;     /* resurrected */
    }
    /* Closes the stream (freeing its queue) while the loop is still held:
     * the loop reference is set right after allocation and only
     * Transport_clear drops it, after closing. */
    Transport_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* ---- attributes tests and asyncio internals peek at --------------------- */

/* Getters by field offset, shared with udp.c: an object field (None for
 * NULL), a char flag as a bool. */
PyObject *
transport_get_obj(PyObject *self, void *offset)
{
    PyObject *v = *(PyObject **)((char *)self + (Py_ssize_t)offset);
    return Py_NewRef(v ? v : Py_None);
}

PyObject *
transport_get_flag(PyObject *self, void *offset)
{
    return PyBool_FromLong(*((char *)self + (Py_ssize_t)offset));
}

/* ---- the stream --------------------------------------------------------- */

static int
tr_flush_item(PyObject *obj)
{
    return transport_flush_one((TransportObject *)obj);
}

static const eloop_item_ops tr_item_ops = {
    .offset = offsetof(TransportObject, item),
    .run = tr_run_read_ready,
    .flush = tr_flush_item,
};

/* What the generic methods (transport_base.c) do on a stream. */
static void
tr_kind_read_pause(TransportBase *self)
{
    el_stream_read_pause(&((TransportObject *)self)->stream);
}

static int
tr_kind_read_resume(TransportBase *self)
{
    return tr_add_reader((TransportObject *)self);
}

static Py_ssize_t
tr_kind_buffer_size(TransportBase *self)
{
    return tr_buffer_size((TransportObject *)self);
}

static int
tr_kind_limits_changed(TransportBase *base)
{
    TransportObject *self = (TransportObject *)base;
    /* asyncio's buffer would hold only what its sends left behind. */
    if (tr_buffer_size(self) > self->high_water
        && transport_flush_now(self) < 0) {
        return -1;
    }
    return tr_maybe_pause(self);
}

static int
tr_kind_connection_lost(TransportBase *self, PyObject *exc)
{
    return tr_call_connection_lost((TransportObject *)self, exc);
}

/* After tp_clear (no loop) the next two do nothing. */
static int
tr_kind_force_close(TransportBase *self, PyObject *exc)
{
    return self->loop != NULL ? tr_force_close((TransportObject *)self, exc)
                              : 0;
}

static int
tr_kind_fatal_error(TransportBase *self, PyObject *exc, const char *message)
{
    return self->loop != NULL
               ? tr_fatal_error((TransportObject *)self, exc, message)
               : 0;
}

static unsigned
tr_kind_polling(TransportBase *base)
{
    TransportObject *self = (TransportObject *)base;
    return (el_stream_is_reading(&self->stream) ? EL_READABLE : 0)
           | (el_stream_is_writing(&self->stream) ? EL_WRITABLE : 0);
}

/* Out of the reactor, for the finalizer. */
static void
tr_kind_detach(TransportBase *self)
{
    if (self->loop != NULL) {
        el_stream_close(&((TransportObject *)self)->stream);
    }
}

static const transport_kind tr_stream_kind = {
    .read_pause = tr_kind_read_pause,
    .read_resume = tr_kind_read_resume,
    .buffer_size = tr_kind_buffer_size,
    .limits_changed = tr_kind_limits_changed,
    .connection_lost = tr_kind_connection_lost,
    .force_close = tr_kind_force_close,
    .fatal_error = tr_kind_fatal_error,
    .polling = tr_kind_polling,
    .detach = tr_kind_detach,
};

void
transport_init_stream(TransportObject *self, LoopObject *loop)
{
    self->kind = &tr_stream_kind;
    eloop_item_init(&self->item, &tr_item_ops);
    self->on_alloc = tr_alloc_cb;
    self->on_read = tr_read_cb;
    el_stream_init(&self->stream, &loop->core, -1);
    self->stream.write_cb = tr_write_done;
    self->stream.written_cb = tr_written_cb;
    self->stream.shutdown_cb = tr_shutdown_cb;
    self->stream.notify_cb = tr_notify_cb;
}

TransportObject *
transport_alloc(LoopObject *loop, PyTypeObject *type)
{
    TransportObject *self = (TransportObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->st = loop->st;
    self->loop = (LoopObject *)Py_NewRef((PyObject *)loop);
    self->sock_fd = -1;
    transport_init_stream(self, loop);
    return self;
}
