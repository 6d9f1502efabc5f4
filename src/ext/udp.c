/*
 * udp.c -- datagram transports in C: asyncio's _SelectorDatagramTransport
 * (selector_events.py) for UDP over IPv4/IPv6 and AF_UNIX datagram
 * sockets, and Loop._make_datagram_transport() that builds one.
 *
 * asyncio's own create_datagram_endpoint() (base_events.py) makes, binds
 * and connects the socket and calls loop._make_datagram_transport(), so
 * every argument check and message is asyncio's (eloop/_loop.py assigns
 * it to the class).  This file is what runs per datagram.
 *
 * The type subclasses asyncio.transports.Transport and DatagramTransport
 * (BaseTransport's `_extra` slot is our `extra`, as for SocketTransport,
 * see transport_type_init()).  Semantics are asyncio's, line by line:
 *   - reading happens in the callback phase: the watcher queues a Handle
 *     of _read_ready, as asyncio's selector queues its reader handle, and
 *     asyncio's _read_ready reads one datagram.  Ours reads another one
 *     (up to DG_READ_BATCH) only when asyncio could not tell the
 *     difference (dg_read_more): when nothing else is ready to run in
 *     this iteration and no timer is due.  Asyncio's next iteration would
 *     then poll and run this reader before anything else (other ready
 *     fds in an order the kernel picks), so the next datagram reaches
 *     datagram_received() in the same order relative to every callback;
 *     what is saved is an epoll_wait() per datagram.
 *     recvmmsg() is not used: datagrams read ahead would have to wait in
 *     the transport when a callback becomes ready, and be delivered with
 *     no readiness from the poller, which needs a hook in the loop.  The
 *     last read of a batch that finds the socket empty is one
 *     recvfrom() returning EAGAIN, as a plain C server pays;
 *   - sendto() sends at once when nothing is buffered (no coalescing: a
 *     datagram is one syscall whatever we do), buffers (bytes, addr) when
 *     the kernel says EAGAIN, and flushes the buffer when writable;
 *   - an OSError from recvfrom()/sendto() goes to error_received() and the
 *     transport stays open (ICMP errors, ECONNREFUSED on a connected
 *     socket, EMSGSIZE for a datagram larger than the socket buffer);
 *   - close() waits for the buffer to drain; abort() drops it.
 *
 * Syscalls are made here on the fd of an exact socket.socket of a family
 * the socket module would handle the same way (sk_direct_family); other
 * socket objects get the method calls asyncio makes.  The fd is read from
 * the socket object at every operation (as socket.recvfrom() reads its
 * sock_fd), so a socket closed behind our back gives EBADF, never another
 * file's data.
 *
 * Ownership: while the transport is open, loop->transports[fd] holds it
 * (asyncio's _transports, but strong, and visited by Loop_traverse); the
 * watcher is linked in the core only while that entry exists (it is
 * detached in _call_connection_lost() before the entry goes, and in
 * tp_clear).  A Handle on the ready ring holds its own reference through
 * its bound method.  connection_lost() drops the entry and the handles.
 */
#include "sock.h"
#include "transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* selector_events._SelectorTransport.max_size: the recvfrom() size. */
#define DG_MAX_SIZE (256 * 1024)

/* asyncio.constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES */
#define DG_CONNLOST_LOG_THRESHOLD 5

/* Datagrams read in one readable callback at most (see the top): a
 * bound on how long a flood keeps the loop from polling its other fds,
 * libuv's figure for the same loop (uv__udp_io). */
#define DG_READ_BATCH 32

/* What a buffered datagram counts for besides its bytes: 3.13's
 * _header_size ("include header bytes").  3.13.0 added it in sendto() but
 * not back in _sendto_ready(), so the size grew by 8 for every datagram
 * ever buffered and a paused protocol could stay paused; CPython fixed
 * that (gh-135444) and we count it both ways, as the fix does. */
#if PY_VERSION_HEX >= 0x030D0000
#define DG_HEADER_SIZE 8
#else
#define DG_HEADER_SIZE 0
#endif

/* One buffered datagram: asyncio's (bytes(data), addr). */
typedef struct {
    PyObject *data;             /* bytes; strong */
    PyObject *addr;             /* strong; None for "no address" */
} dg_item;

typedef struct {
    TRANSPORT_BASE_FIELDS       /* write_handle: _sendto_ready's; read_handle
                                   is made while reading, as asyncio's
                                   selector keeps its reader */
    el_io_t io;                 /* linked into loop->core while io.mask */
    PyObject *address;          /* asyncio's _address (remote_addr) if
                                   true, else NULL */
    PyObject *last_addr;        /* the sender tuple last built, reused
                                   while datagrams keep coming from the
                                   same address (an equal tuple, which is
                                   all asyncio promises), and recognised
                                   by sendto() without parsing */
    dg_item *buf;               /* ring of buf_cap (a power of two) */
    size_t buf_cap;
    size_t buf_head;
    size_t buf_len;
    char *rbuf;                 /* DG_MAX_SIZE bytes for recvfrom(),
                                   allocated at the first direct read;
                                   its pages are touched only as far as
                                   datagrams reach */
    struct sockaddr_storage last_ss;    /* what last_addr stands for */
    socklen_t last_len;
    Py_ssize_t buffer_size;     /* asyncio's _buffer_size */
    const int *fd_src;          /* the socket's own fd field, or NULL
                                   (transport_fd_field); into sock */
    int family;                 /* syscalls made here for this family; -1:
                                   the socket object's methods */
    char connected;             /* extra['peername'] is true: send() */
} DgramObject;

static int dg_io_cb(el_loop_t *core, el_io_t *io, unsigned revents);

/* ---- helpers ------------------------------------------------------------ */

/* The watcher's mask; only ever widened while the loop's core is open. */
static int
dg_set_mask(DgramObject *self, unsigned mask)
{
    if (self->io.mask == mask) {
        return 0;
    }
    if (mask != 0 && loop_check_closed(self->loop) < 0) {
        return -1;
    }
    int err = el_io_set(&self->loop->core, &self->io, mask);
    if (err < 0) {
        return eloop_raise_errno(err);
    }
    return 0;
}

/* Cancels and drops a readiness handle (asyncio's remove_reader/writer). */
static void
dg_drop_handle(PyObject **handle, char *queued)
{
    *queued = 0;
    if (*handle != NULL) {
        handle_cancel((HandleObject *)*handle);
        Py_CLEAR(*handle);
    }
}

/* loop._remove_reader(fd) / loop._remove_writer(fd) */
static void
dg_remove(DgramObject *self, unsigned which)
{
    if (which == EL_READABLE) {
        dg_drop_handle(&self->read_handle, &self->read_queued);
    }
    else {
        dg_drop_handle(&self->write_handle, &self->write_queued);
    }
    if (self->loop != NULL && (self->io.mask & which)) {
        /* Narrowing never fails: the kernel update is deferred. */
        (void)el_io_set(&self->loop->core, &self->io, self->io.mask & ~which);
    }
}

/* loop._add_reader(fd, self._read_ready) / _add_writer(fd,
 * self._sendto_ready): a Handle made now, in a copy of the current
 * context, as asyncio's add_reader() makes one. */
static int
dg_add(DgramObject *self, unsigned which)
{
    PyObject **slot = which == EL_READABLE ? &self->read_handle
                                           : &self->write_handle;
    if (loop_check_closed(self->loop) < 0) {
        return -1;
    }
    PyObject *cb = PyObject_GetAttrString(
        (PyObject *)self,
        which == EL_READABLE ? "_read_ready" : "_sendto_ready");
    PyObject *h = cb ? (PyObject *)handle_new(self->loop, cb, NULL, 0, NULL)
                     : NULL;
    Py_XDECREF(cb);
    if (h == NULL) {
        return -1;
    }
    if (dg_set_mask(self, self->io.mask | which) < 0) {
        handle_cancel((HandleObject *)h);
        Py_DECREF(h);
        return -1;
    }
    if (which == EL_READABLE) {
        dg_drop_handle(slot, &self->read_queued);
    }
    else {
        dg_drop_handle(slot, &self->write_queued);
    }
    *slot = h;
    return 0;
}

/* Readiness, during dispatch: queue the handles asyncio's selector would
 * queue.  No Python code runs here.  -1 with MemoryError set stops the
 * dispatch (the loop raises it); the event is reported again. */
static int
dg_io_cb(el_loop_t *core, el_io_t *io, unsigned revents)
{
    (void)core;
    DgramObject *self = el_container_of(io, DgramObject, io);
    if ((revents & EL_READABLE) && self->read_handle != NULL
        && !self->read_queued) {
        if (loop_push_ready(self->loop, (HandleObject *)self->read_handle)
            < 0) {
            return -1;
        }
        self->read_queued = 1;
    }
    if ((revents & EL_WRITABLE) && self->write_handle != NULL
        && !self->write_queued) {
        if (loop_push_ready(self->loop, (HandleObject *)self->write_handle)
            < 0) {
            return -1;
        }
        self->write_queued = 1;
    }
    return 0;
}

/* The socket's fd as its methods would use it now (-1 once closed): read
 * from the socket object's own field where we can, else from fileno(). */
static int
dg_fd(DgramObject *self, int *fd)
{
    if (self->fd_src != NULL) {
        *fd = *self->fd_src;
        return 0;
    }
    PyObject *o = sk_fileno(self->st, self->sock);
    if (o == NULL) {
        return -1;
    }
    long v = PyLong_AsLong(o);
    Py_DECREF(o);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    *fd = (v < 0 || v > INT32_MAX) ? -1 : (int)v;
    return 0;
}

static inline int
would_block(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK;
}

/* ---- closing ------------------------------------------------------------ */

/* asyncio's _call_connection_lost(): connection_lost(exc) once (if the
 * protocol is connected), then close the socket and let go. */
static int
dg_call_connection_lost(DgramObject *self, PyObject *exc)
{
    if (self->lost) {
        return 0;
    }
    self->lost = 1;
    PyObject *err = transport_lost_notify((TransportBase *)self, exc);
    /* `finally:` -- out of the reactor before the fd closes. */
    dg_remove(self, EL_READABLE);
    dg_remove(self, EL_WRITABLE);
    PyObject *sock = self->sock_closed ? NULL : Py_XNewRef(self->sock);
    self->sock_closed = 1;
    Py_CLEAR(self->protocol);
    int rc = transport_unregister_fd(self->loop, self->sock_fd,
                                     (PyObject *)self);
    if (rc == 0 && sock != NULL) {
        rc = discard(call_method1(sock, "close", NULL));
    }
    Py_XDECREF(sock);
    if (rc < 0) {
        transport_finally_failed(&err);
    }
    if (err != NULL) {
        el_restore_exc(err);
        return -1;
    }
    return 0;
}

static int
dg_call_soon_lost(DgramObject *self, PyObject *exc)
{
    PyObject *cb = PyObject_GetAttrString((PyObject *)self,
                                          "_call_connection_lost");
    if (cb == NULL) {
        return -1;
    }
    PyObject *a[3] = {NULL, cb, exc ? exc : Py_None};
    int rc = loop_soon(self->loop, a + 1, 2);
    Py_DECREF(cb);
    return rc;
}

static void
dg_buffer_clear(DgramObject *self)
{
    while (self->buf_len > 0) {
        dg_item it = self->buf[self->buf_head];
        self->buf_head = (self->buf_head + 1) & (self->buf_cap - 1);
        self->buf_len--;
        Py_DECREF(it.data);
        Py_DECREF(it.addr);
    }
    self->buf_head = 0;
}

static int
dg_force_close(DgramObject *self, PyObject *exc)
{
    if (self->conn_lost) {
        return 0;
    }
    if (self->buf_len > 0) {
        /* asyncio clears its deque but not _buffer_size. */
        dg_buffer_clear(self);
        dg_remove(self, EL_WRITABLE);
    }
    if (!self->closing) {
        self->closing = 1;
        dg_remove(self, EL_READABLE);
    }
    self->conn_lost++;
    return dg_call_soon_lost(self, exc);
}

/* asyncio's _fatal_error(): an OSError is only logged in debug mode;
 * anything else goes to the exception handler.  Once connection_lost()
 * ran, asyncio's _loop is None and this step raises AttributeError. */
static int
dg_fatal_error(DgramObject *self, PyObject *exc, const char *message)
{
    if (self->lost) {
        PyErr_SetString(PyExc_AttributeError,
                        PyErr_GivenExceptionMatches(exc, PyExc_OSError)
                            ? "'NoneType' object has no attribute "
                              "'get_debug'"
                            : "'NoneType' object has no attribute "
                              "'call_exception_handler'");
        return -1;
    }
    int rc = PyErr_GivenExceptionMatches(exc, PyExc_OSError)
                 ? transport_debug_log(self->loop, (PyObject *)self,
                                       "%r: %s", message, exc)
                 : transport_report(self->loop, (PyObject *)self,
                                    self->protocol, message, exc);
    return rc < 0 ? -1 : dg_force_close(self, exc);
}

/* An exception is set by a failed send or receive: OSError goes to
 * protocol.error_received(); SystemExit and KeyboardInterrupt stay set;
 * anything else is fatal.  Returns -1 with an exception to raise. */
static int
dg_io_failed(DgramObject *self, const char *message)
{
    if (sk_is_fatal_pending()) {
        return -1;
    }
    PyObject *exc = el_fetch_exc();
    int rc;
    if (PyErr_GivenExceptionMatches(exc, PyExc_OSError)) {
        /* After connection_lost() asyncio's _protocol is None. */
        rc = self->protocol
                 ? discard(call_method1(self->protocol, "error_received",
                                        exc))
                 : (PyErr_SetString(PyExc_AttributeError,
                                    "'NoneType' object has no attribute "
                                    "'error_received'"),
                    -1);
        if (rc < 0) {
            /* Raised inside asyncio's `except OSError:` block. */
            PyObject *e = el_fetch_exc();
            PyException_SetContext(e, Py_NewRef(exc));
            el_restore_exc(e);
        }
    }
    else {
        rc = dg_fatal_error(self, exc, message);
    }
    Py_DECREF(exc);
    return rc;
}

/* ---- flow control ------------------------------------------------------- */

static int
dg_maybe_pause(DgramObject *self)
{
    if (self->buffer_size <= self->high_water || self->protocol_paused) {
        return 0;
    }
    self->protocol_paused = 1;
    return transport_protocol_flow(self->loop, (PyObject *)self,
                                   self->protocol, "pause_writing",
                                   "protocol.pause_writing() failed");
}

static int
dg_maybe_resume(DgramObject *self)
{
    if (!self->protocol_paused || self->buffer_size > self->low_water) {
        return 0;
    }
    self->protocol_paused = 0;
    return transport_protocol_flow(self->loop, (PyObject *)self,
                                   self->protocol, "resume_writing",
                                   "protocol.resume_writing() failed");
}

/* ---- receiving ---------------------------------------------------------- */

/* The sender's address as the socket module builds it; the last one is
 * reused while it does not change. */
static PyObject *
dg_sender(DgramObject *self, const struct sockaddr_storage *ss,
          socklen_t len)
{
    if (self->last_addr != NULL && len == self->last_len
        && memcmp(ss, &self->last_ss, len) == 0) {
        return Py_NewRef(self->last_addr);
    }
    PyObject *addr = sk_make_sockaddr(ss, len);
    if (addr == NULL || len == 0 || len > sizeof(self->last_ss)) {
        return addr;
    }
    memcpy(&self->last_ss, ss, len);
    self->last_len = len;
    Py_XSETREF(self->last_addr, Py_NewRef(addr));
    return addr;
}

/* data, addr = sock.recvfrom(max_size), on the fd.  NULL with *again set
 * when there was nothing to read after all. */
static PyObject *
dg_recv_direct(DgramObject *self, PyObject **addr, int *again)
{
    int fd;
    if (dg_fd(self, &fd) < 0) {
        return NULL;
    }
    if (self->rbuf == NULL) {
        self->rbuf = PyMem_RawMalloc(DG_MAX_SIZE);
        if (self->rbuf == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
    }
    struct sockaddr_storage ss;
    socklen_t len;
    ssize_t got;
    for (;;) {
        memset(&ss, 0, sizeof(ss));
        len = sk_addrlen_for(self->family);
        got = recvfrom(fd, self->rbuf, DG_MAX_SIZE, MSG_DONTWAIT,
                       (struct sockaddr *)&ss, &len);
        if (got >= 0) {
            break;
        }
        if (would_block(errno)) {
            *again = 1;
            return NULL;
        }
        if (errno != EINTR) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (PyErr_CheckSignals() < 0) {   /* PEP 475, as the socket module */
            return NULL;
        }
    }
    PyObject *data = PyBytes_FromStringAndSize(self->rbuf, got);
    if (data == NULL) {
        return NULL;
    }
    *addr = dg_sender(self, &ss, len);
    if (*addr == NULL) {
        Py_CLEAR(data);
    }
    return data;
}

/* The same through sock.recvfrom(self.max_size). */
static PyObject *
dg_recv_method(DgramObject *self, PyObject **addr, int *again)
{
    PyObject *r = PyObject_CallMethod(self->sock, "recvfrom", "i",
                                      DG_MAX_SIZE);
    if (r == NULL) {
        if (sk_exc_would_block()) {
            *again = 1;
        }
        return NULL;
    }
    PyObject *data = NULL;
    if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2) {
        /* asyncio's unpacking would fail the same way, as a non-OSError */
        PyErr_Format(PyExc_ValueError, "expected 2 values to unpack");
    }
    else {
        data = Py_NewRef(PyTuple_GET_ITEM(r, 0));
        *addr = Py_NewRef(PyTuple_GET_ITEM(r, 1));
    }
    Py_DECREF(r);
    return data;
}

/* After a datagram, whether the next one may be read in the same callback
 * (see the top of the file): nothing else is ready to run in this
 * iteration (so no callback that asyncio would run between the two
 * datagrams, whether queued before or by datagram_received(): a future's
 * done callbacks, call_soon(), call_soon_threadsafe()), the loop is not
 * stopping, no coalesced stream write waits, and the transport still
 * reads from the socket itself.  Asyncio would poll next and queue this
 * reader first among what the poll finds (the kernel's order is not
 * specified). */
static int
dg_read_more(DgramObject *self)
{
    return self->family >= 0 && self->read_handle != NULL && !self->conn_lost
           && !self->closing && !self->paused && self->protocol != NULL
           && loop_only_reader(self->loop);
}

static PyObject *
dg_read_ready(DgramObject *self, PyObject *Py_UNUSED(ignored))
{
    self->read_queued = 0;
    for (int n = 0; n < DG_READ_BATCH; n++) {
        /* No protocol: lost after a close() that drained the buffer,
         * with no reader left to call us (kept as a guard). */
        if (self->conn_lost || self->protocol == NULL
            || (n > 0 && !dg_read_more(self))) {
            break;
        }
        PyObject *addr = NULL;
        int again = 0;
        PyObject *data = self->family >= 0
                             ? dg_recv_direct(self, &addr, &again)
                             : dg_recv_method(self, &addr, &again);
        if (data == NULL) {
            if (again || PyErr_Occurred() == NULL) {
                break;
            }
            if (dg_io_failed(self, "Fatal read error on datagram transport")
                < 0) {
                return NULL;
            }
            break;      /* asyncio's callback ends after error_received() */
        }
        PyObject *protocol = Py_NewRef(self->protocol);
        PyObject *args[3] = {protocol, data, addr};
        PyObject *r = PyObject_VectorcallMethod(
            self->st->str_datagram_received, args,
            3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_DECREF(protocol);
        Py_DECREF(data);
        Py_DECREF(addr);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
    }
    Py_RETURN_NONE;
}

/* ---- sending ------------------------------------------------------------ */

/* addr as a sockaddr for the direct path: the last sender's tuple is
 * known; a (host, port) with a numeric host is what the socket module
 * parses without a lookup (setipaddr()'s inet_pton path).  0 when the
 * method must be called instead (it raises the socket module's errors,
 * or resolves a name). */
static int
dg_parse_addr(DgramObject *self, PyObject *addr,
              struct sockaddr_storage *ss, socklen_t *len)
{
    if (addr == self->last_addr && addr != NULL) {
        memcpy(ss, &self->last_ss, self->last_len);
        *len = self->last_len;
        return 1;
    }
    if ((self->family != AF_INET && self->family != AF_INET6)
        || !PyTuple_CheckExact(addr) || PyTuple_GET_SIZE(addr) != 2
        || !PyUnicode_CheckExact(PyTuple_GET_ITEM(addr, 0))
        || !PyLong_CheckExact(PyTuple_GET_ITEM(addr, 1))) {
        return 0;
    }
    long port = PyLong_AsLong(PyTuple_GET_ITEM(addr, 1));
    if (port < 0 || port > 65535) {
        PyErr_Clear();
        return 0;
    }
    Py_ssize_t hlen;
    const char *host = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(addr, 0),
                                               &hlen);
    if (host == NULL) {
        PyErr_Clear();
        return 0;
    }
    if ((Py_ssize_t)strlen(host) != hlen || strchr(host, '%') != NULL) {
        return 0;
    }
    memset(ss, 0, sizeof(*ss));
    if (self->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
            return 0;
        }
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *len = sizeof(*in);
        return 1;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) {
        return 0;
    }
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    *len = sizeof(*in6);
    return 1;
}

/* One send of data (bytes-like object obj) as asyncio's
 * `sock.send(data)` or `sock.sendto(data, addr)`.  0 sent; 1 would block;
 * -1 with an exception set. */
static int
dg_send(DgramObject *self, PyObject *obj, PyObject *addr)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    int direct = self->family >= 0
                 && (self->connected || dg_parse_addr(self, addr, &ss, &len));
    if (!direct) {
        PyObject *r = self->connected
                          ? PyObject_CallMethod(self->sock, "send", "O", obj)
                          : PyObject_CallMethod(self->sock, "sendto", "OO",
                                                obj, addr);
        if (r != NULL) {
            Py_DECREF(r);
            return 0;
        }
        return sk_exc_would_block() ? 1 : -1;
    }
    int fd;
    Py_buffer view;
    if (dg_fd(self, &fd) < 0
        || PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    ssize_t n;
    for (;;) {
        n = self->connected
                ? send(fd, view.buf, (size_t)view.len, MSG_DONTWAIT)
                : sendto(fd, view.buf, (size_t)view.len, MSG_DONTWAIT,
                         (struct sockaddr *)&ss, len);
        if (n >= 0 || errno != EINTR || PyErr_CheckSignals() < 0) {
            break;
        }
    }
    int err = errno;
    PyBuffer_Release(&view);
    if (n >= 0) {
        return 0;
    }
    if (PyErr_Occurred()) {
        return -1;      /* a signal handler raised */
    }
    if (would_block(err)) {
        return 1;
    }
    return eloop_raise_errno(-err);
}

/* Appends (bytes(data), addr) to the buffer. */
static int
dg_buffer_push(DgramObject *self, PyObject *data, PyObject *addr, int front)
{
    if (self->buf_len == self->buf_cap) {
        size_t cap = self->buf_cap ? self->buf_cap * 2 : 8;
        dg_item *nb = PyMem_Malloc(cap * sizeof(*nb));
        if (nb == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (size_t i = 0; i < self->buf_len; i++) {
            nb[i] = self->buf[(self->buf_head + i) & (self->buf_cap - 1)];
        }
        PyMem_Free(self->buf);
        self->buf = nb;
        self->buf_cap = cap;
        self->buf_head = 0;
    }
    size_t mask = self->buf_cap - 1;
    size_t at;
    if (front) {
        self->buf_head = (self->buf_head - 1) & mask;
        at = self->buf_head;
    }
    else {
        at = (self->buf_head + self->buf_len) & mask;
    }
    self->buf[at].data = Py_NewRef(data);
    self->buf[at].addr = Py_NewRef(addr);
    self->buf_len++;
    return 0;
}

static PyObject *
dg_sendto(DgramObject *self, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    static const char *const names[] = {"data", "addr"};
    PyObject *v[2] = {NULL, Py_None};
    if (sk_bind_args("sendto", args, nargs, kwnames, names, 2, 2, 1, v)
        < 0) {
        return NULL;
    }
    PyObject *data = v[0], *addr = v[1] ? v[1] : Py_None;
    if (!PyBytes_Check(data) && !PyByteArray_Check(data)
        && !PyMemoryView_Check(data)) {
        return PyErr_Format(PyExc_TypeError,
                            "data argument must be a bytes-like object, "
                            "not '%.200s'", Py_TYPE(data)->tp_name);
    }
    Py_ssize_t dlen = PyObject_Length(data);
    if (dlen < 0) {
        return NULL;
    }
#if PY_VERSION_HEX < 0x030D0000
    /* 3.11 and 3.12 drop an empty datagram; 3.13 sends it. */
    if (dlen == 0) {
        Py_RETURN_NONE;
    }
#endif
    if (self->address != NULL) {
        if (addr != Py_None) {
            int eq = PyObject_RichCompareBool(addr, self->address, Py_EQ);
            if (eq < 0) {
                return NULL;
            }
            if (!eq) {
                PyObject *s = PyObject_Str(self->address);
                if (s != NULL) {
                    PyErr_Format(PyExc_ValueError,
                                 "Invalid address: must be None or %U", s);
                    Py_DECREF(s);
                }
                return NULL;
            }
        }
        addr = self->address;
        if (self->conn_lost) {
            if (self->conn_lost >= DG_CONNLOST_LOG_THRESHOLD
                && discard(PyObject_CallMethod(
                       self->st->logger, "warning", "s",
                       "socket.send() raised exception.")) < 0) {
                return NULL;
            }
            self->conn_lost++;
            Py_RETURN_NONE;
        }
    }
    if (self->buf_len == 0) {
        /* Attempt to send it right away first (asyncio's comment).  Once
         * connection_lost() ran, asyncio's _sock is None: the
         * AttributeError of `None.sendto` is fatal (see dg_fatal_error). */
        int r = self->sock_closed
                    ? (PyErr_Format(PyExc_AttributeError,
                                    "'NoneType' object has no attribute "
                                    "'%s'", self->connected ? "send"
                                                            : "sendto"),
                       -1)
                    : dg_send(self, data, addr);
        if (r == 0) {
            Py_RETURN_NONE;
        }
        if (r < 0) {
            if (dg_io_failed(self, "Fatal write error on datagram transport")
                < 0) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
        if (dg_add(self, EL_WRITABLE) < 0) {
            return NULL;
        }
    }
    /* Ensure that what we buffer is immutable (asyncio's comment). */
    PyObject *bytes = PyBytes_CheckExact(data) ? Py_NewRef(data)
                                               : PyBytes_FromObject(data);
    if (bytes == NULL || dg_buffer_push(self, bytes, addr, 0) < 0) {
        Py_XDECREF(bytes);
        return NULL;
    }
    Py_DECREF(bytes);
    self->buffer_size += dlen + DG_HEADER_SIZE;
    if (dg_maybe_pause(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
dg_sendto_ready(DgramObject *self, PyObject *Py_UNUSED(ignored))
{
    self->write_queued = 0;
    while (self->buf_len > 0) {
        dg_item it = self->buf[self->buf_head];
        self->buf_head = (self->buf_head + 1) & (self->buf_cap - 1);
        self->buf_len--;
        Py_ssize_t cost = PyBytes_GET_SIZE(it.data) + DG_HEADER_SIZE;
        self->buffer_size -= cost;
        int r = self->sock_closed ? 1 : dg_send(self, it.data, it.addr);
        if (r == 1) {
            /* Try again later: back at the front. */
            int rc = dg_buffer_push(self, it.data, it.addr, 1);
            Py_DECREF(it.data);
            Py_DECREF(it.addr);
            if (rc < 0) {
                return NULL;
            }
            self->buffer_size += cost;
            break;
        }
        Py_DECREF(it.data);
        Py_DECREF(it.addr);
        if (r < 0) {
            if (dg_io_failed(self, "Fatal write error on datagram transport")
                < 0) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
    }
    if (dg_maybe_resume(self) < 0) {      /* may append to the buffer */
        return NULL;
    }
    if (self->buf_len == 0) {
        dg_remove(self, EL_WRITABLE);
        if (self->closing && dg_call_connection_lost(self, NULL) < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

/* ---- other methods ------------------------------------------------------ */

static PyObject *
dg_start_reading(DgramObject *self, PyObject *Py_UNUSED(ignored))
{
    /* asyncio's _add_reader(): only while is_reading(). */
    if (self->closing || self->paused || self->loop == NULL) {
        Py_RETURN_NONE;
    }
    if (dg_add(self, EL_READABLE) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
dg_close(DgramObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->closing) {
        Py_RETURN_NONE;
    }
    self->closing = 1;
    dg_remove(self, EL_READABLE);
    if (self->buf_len == 0) {
        self->conn_lost++;
        dg_remove(self, EL_WRITABLE);
        if (dg_call_soon_lost(self, NULL) < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
dg_abort(DgramObject *self, PyObject *Py_UNUSED(ignored))
{
    if (dg_force_close(self, NULL) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
dg_set_protocol(DgramObject *self, PyObject *protocol)
{
    Py_XSETREF(self->protocol, Py_NewRef(protocol));
    self->protocol_connected = 1;
    Py_RETURN_NONE;
}

/* What the generic methods (transport_base.c) do on a datagram
 * transport: asyncio's _SelectorTransport with a selector's reader. */
static void
dg_kind_read_pause(TransportBase *self)
{
    dg_remove((DgramObject *)self, EL_READABLE);
}

static int
dg_kind_read_resume(TransportBase *self)
{
    return dg_add((DgramObject *)self, EL_READABLE);
}

static Py_ssize_t
dg_kind_buffer_size(TransportBase *self)
{
    return ((DgramObject *)self)->buffer_size;
}

static int
dg_kind_limits_changed(TransportBase *self)
{
    return dg_maybe_pause((DgramObject *)self);
}

static int
dg_kind_connection_lost(TransportBase *self, PyObject *exc)
{
    return dg_call_connection_lost((DgramObject *)self,
                                   exc == Py_None ? NULL : exc);
}

static int
dg_kind_force_close(TransportBase *self, PyObject *exc)
{
    return dg_force_close((DgramObject *)self, exc == Py_None ? NULL : exc);
}

static int
dg_kind_fatal_error(TransportBase *self, PyObject *exc, const char *message)
{
    return dg_fatal_error((DgramObject *)self, exc, message);
}

static unsigned
dg_kind_polling(TransportBase *self)
{
    return ((DgramObject *)self)->io.mask & (EL_READABLE | EL_WRITABLE);
}

static void
dg_kind_detach(TransportBase *base)
{
    DgramObject *self = (DgramObject *)base;
    if (self->loop != NULL) {
        dg_remove(self, EL_READABLE);
        dg_remove(self, EL_WRITABLE);
    }
}

static const transport_kind dg_kind = {
    .read_pause = dg_kind_read_pause,
    .read_resume = dg_kind_read_resume,
    .buffer_size = dg_kind_buffer_size,
    .limits_changed = dg_kind_limits_changed,
    .connection_lost = dg_kind_connection_lost,
    .force_close = dg_kind_force_close,
    .fatal_error = dg_kind_fatal_error,
    .polling = dg_kind_polling,
    .detach = dg_kind_detach,
};

/* ---- type slots --------------------------------------------------------- */

static int
Dgram_traverse(DgramObject *self, visitproc visit, void *arg)
{
    int r = transport_base_traverse((TransportBase *)self, visit, arg);
    if (r != 0) {
        return r;
    }
    Py_VISIT(self->address);
    Py_VISIT(self->last_addr);
    for (size_t i = 0; i < self->buf_len; i++) {
        dg_item *it = &self->buf[(self->buf_head + i) & (self->buf_cap - 1)];
        Py_VISIT(it->data);
        Py_VISIT(it->addr);
    }
    return 0;
}

static int
Dgram_clear(DgramObject *self)
{
    /* Out of the reactor first: the watcher lives in the loop's core,
     * which the loop reference below may be the last to keep. */
    dg_kind_detach((TransportBase *)self);
    dg_buffer_clear(self);
    self->fd_src = NULL;        /* points into sock */
    transport_base_clear((TransportBase *)self);
    Py_CLEAR(self->address);
    Py_CLEAR(self->last_addr);
    Py_CLEAR(self->loop);
    return 0;
}

static void
Dgram_dealloc(DgramObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (tb_dealloc_begin((TransportBase *)self) < 0) {
        return;     /* resurrected */
    }
    Dgram_clear(self);
    PyMem_Free(self->buf);
    PyMem_RawFree(self->rbuf);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* ---- attributes asyncio's tests and internals look at ------------------- */

static PyObject *
dg_get_ssize(DgramObject *self, void *offset)
{
    return PyLong_FromSsize_t(
        *(Py_ssize_t *)((char *)self + (Py_ssize_t)offset));
}

#define DG_GETTER(name, fn, field)                                          \
    {name, (getter)fn, NULL, NULL, (void *)offsetof(DgramObject, field)}

static PyGetSetDef Dgram_getset[] = {
    TRANSPORT_BASE_GETSET("_sock", "_sock_fd"),
    DG_GETTER("_address", transport_get_obj, address),
    OBJ_GETTER("_high_water", high_obj),
    OBJ_GETTER("_low_water", low_obj),
    DG_GETTER("_buffer_size", dg_get_ssize, buffer_size),
    FLAG_GETTER("_paused", paused),
    FLAG_GETTER("_protocol_paused", protocol_paused),
    FLAG_GETTER("_protocol_connected", protocol_connected),
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Dgram_members[] = {
    {"__weaklistoffset__", EL_T_PYSSIZET,
     offsetof(DgramObject, weakreflist), EL_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyMethodDef Dgram_methods[] = {
    {"sendto", (PyCFunction)(void (*)(void))dg_sendto,
     METH_FASTCALL | METH_KEYWORDS, NULL},
    TRANSPORT_BASE_METHODS,
    TRANSPORT_READ_METHODS,
    TRANSPORT_WRITE_METHODS,
    TRANSPORT_LIFE_METHODS,
    NOARGS("close", dg_close),
    NOARGS("abort", dg_abort),
    ONEARG("set_protocol", dg_set_protocol),
    NOARGS("_read_ready", dg_read_ready),
    NOARGS("_sendto_ready", dg_sendto_ready),
    NOARGS("_start_reading", dg_start_reading),
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Dgram_slots[] = {
    {Py_tp_dealloc, Dgram_dealloc},
    {Py_tp_finalize, tb_finalize},
    {Py_tp_traverse, Dgram_traverse},
    {Py_tp_clear, Dgram_clear},
    {Py_tp_repr, tb_repr},
    {Py_tp_methods, Dgram_methods},
    {Py_tp_getset, Dgram_getset},
    {Py_tp_members, Dgram_members},
    {Py_tp_doc, "A datagram transport (asyncio's "
                "_SelectorDatagramTransport), made by "
                "loop._make_datagram_transport()."},
    {0, NULL},
};

static PyType_Spec Dgram_spec = {
    .name = "eloop._eloop.DatagramTransport",
    .basicsize = sizeof(DgramObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
             | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Dgram_slots,
};

/* ---- construction ------------------------------------------------------- */

/* _SelectorDatagramTransport.__init__(), in asyncio's order. */
static PyObject *
dg_new(LoopObject *loop, PyObject *sock, PyObject *protocol,
       PyObject *address, PyObject *waiter, PyObject *extra)
{
    eloop_state *st = loop->st;
    DgramObject *self = (DgramObject *)st->DatagramTransportType->tp_alloc(
        st->DatagramTransportType, 0);
    if (self == NULL) {
        return NULL;
    }
    self->kind = &dg_kind;
    self->st = st;
    self->loop = (LoopObject *)Py_NewRef((PyObject *)loop);
    self->sock_fd = -1;
    self->family = -1;
    el_io_init(&self->io, -1, dg_io_cb);
    if (transport_limits_parse(Py_None, Py_None, &self->high_obj,
                               &self->low_obj, &self->high_water,
                               &self->low_water) < 0) {
        goto fail;
    }
    /* BaseTransport: extra or {} (a falsy extra is replaced) */
    int truth = extra == Py_None ? 0 : PyObject_IsTrue(extra);
    if (truth < 0) {
        goto fail;
    }
    self->extra = truth ? Py_NewRef(extra) : PyDict_New();
    PyObject *ts = self->extra ? PyObject_CallOneArg(st->TransportSocket,
                                                     sock)
                               : NULL;
    int rc = ts ? PyObject_SetItem(self->extra, st->str_socket, ts) : -1;
    Py_XDECREF(ts);
    if (rc < 0) {
        goto fail;
    }
    PyObject *names[2] = {st->str_sockname, st->str_peername};
    const char *meths[2] = {"getsockname", "getpeername"};
    for (int i = 0; i < 2; i++) {
        if (i == 1) {
            int has = PySequence_Contains(self->extra, names[1]);
            if (has < 0) {
                goto fail;
            }
            if (has) {
                break;
            }
        }
        PyObject *v = call_method1(sock, meths[i], NULL);
        if (v == NULL && PyErr_ExceptionMatches(PyExc_OSError)) {
            PyErr_Clear();
            v = Py_NewRef(Py_None);
        }
        rc = v ? PyObject_SetItem(self->extra, names[i], v) : -1;
        Py_XDECREF(v);
        if (rc < 0) {
            goto fail;
        }
    }
    self->sock = Py_NewRef(sock);
    int fd;
    if (dg_fd(self, &fd) < 0) {
        goto fail;
    }
    if (fd < 0) {
        PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %d", fd);
        goto fail;
    }
    self->sock_fd = fd;
    self->io.fd = fd;
    if (Py_IS_TYPE(sock, (PyTypeObject *)st->sk.socket_socket)) {
        /* A subclass may override fileno(): it keeps being asked. */
        self->fd_src = transport_fd_field(st, sock, fd);
        self->family = sk_direct_family(fd);
    }
    if (discard(dg_set_protocol(self, protocol)) < 0) {
        goto fail;
    }
    if (transport_register(loop, fd, (PyObject *)self) < 0) {
        goto fail;
    }
    /* _SelectorDatagramTransport; sendto() tests `if self._address:` */
    int has_address = PyObject_IsTrue(address);
    if (has_address < 0) {
        goto fail_registered;
    }
    if (has_address) {
        self->address = Py_NewRef(address);
    }
    PyObject *peer = PyObject_GetItem(self->extra, st->str_peername);
    int conn = peer ? PyObject_IsTrue(peer) : -1;
    Py_XDECREF(peer);
    if (conn < 0) {
        goto fail_registered;
    }
    self->connected = (char)conn;
    if (transport_schedule_start(loop, (PyObject *)self, protocol, waiter)
        < 0) {
        goto fail_registered;
    }
    return (PyObject *)self;

fail_registered:
    transport_unregister_failed(loop, self->sock_fd, (PyObject *)self);
fail:
    Py_DECREF(self);
    return NULL;
}

static PyObject *
loop_make_datagram_transport(LoopObject *self, PyObject *args,
                             PyObject *kwds)
{
    static char *kwlist[] = {"sock", "protocol", "address", "waiter",
                             "extra", NULL};
    PyObject *sock, *protocol, *address = Py_None, *waiter = Py_None;
    PyObject *extra = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds,
                                     "OO|OOO:_make_datagram_transport",
                                     kwlist, &sock, &protocol, &address,
                                     &waiter, &extra)) {
        return NULL;
    }
    /* asyncio would fail at its first call_soon(), after registering. */
    if (loop_check_closed(self) < 0) {
        return NULL;
    }
    return dg_new(self, sock, protocol, address, waiter, extra);
}

PyMethodDef Loop_udp_methods[] = {
    {"_make_datagram_transport",
     (PyCFunction)(void (*)(void))loop_make_datagram_transport,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {NULL, NULL, 0, NULL},
};

/* The type, a subclass of asyncio.transports.Transport (asyncio's
 * _SelectorDatagramTransport is one, through _SelectorTransport, and
 * test_asyncio checks it) and of DatagramTransport (which 3.12 added to
 * its bases).  Both add no slot to BaseTransport's `_extra`: checked as
 * transport_type_init() checks Transport's. */
int
udp_type_init(PyObject *mod, eloop_state *st)
{
    PyObject *tmod = PyImport_ImportModule("asyncio.transports");
    if (tmod == NULL) {
        return -1;
    }
    PyObject *bases = Py_BuildValue(
        "(NN)", PyObject_GetAttrString(tmod, "Transport"),
        PyObject_GetAttrString(tmod, "DatagramTransport"));
    Py_DECREF(tmod);
    if (bases == NULL) {
        return -1;
    }
    int rc = -1;
    for (int i = 0; i < 2; i++) {
        PyObject *b = PyTuple_GET_ITEM(bases, i);
        if (!PyType_Check(b)
            || ((PyTypeObject *)b)->tp_basicsize
                   != (Py_ssize_t)(offsetof(DgramObject, extra)
                                   + sizeof(PyObject *))) {
            PyErr_SetString(PyExc_ImportError,
                            "eloop: the layout of asyncio's Transport or "
                            "DatagramTransport is not the expected one; "
                            "this Python's asyncio is not supported");
            goto done;
        }
    }
    st->DatagramTransportType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &Dgram_spec, bases);
    if (st->DatagramTransportType == NULL) {
        goto done;
    }
    PyObject *max_size = PyLong_FromLong(DG_MAX_SIZE);
    if (max_size == NULL
        || PyDict_SetItemString(st->DatagramTransportType->tp_dict,
                                "max_size", max_size) < 0) {
        Py_XDECREF(max_size);
        goto done;
    }
    Py_DECREF(max_size);
    PyType_Modified(st->DatagramTransportType);
    rc = PyModule_AddType(mod, st->DatagramTransportType);
done:
    Py_DECREF(bases);
    return rc;
}
