/*
 * transport_loop.c -- the loop's side of socket transports: what asyncio's
 * BaseSelectorEventLoop does for them.  Loop._make_socket_transport() (the
 * constructor), the `_transports` check behind add_reader() & co, the
 * end-of-iteration flush of coalesced writes (see stream_transport.c), and the
 * creation of the type as a subclass of asyncio.transports.Transport.
 */
#include "sock.h"
#include "transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

/* ---- construction ------------------------------------------------------- */

/* sock.<name> as a C long.  socket.socket's family and type properties
 * wrap the number in an enum, several thousand instructions per
 * connection; the getters of its C base give the same number. */
static long
sock_int_attr(eloop_state *st, PyObject *sock, PyObject *raw,
              const char *name)
{
    PyObject *o = PyObject_TypeCheck(sock, (PyTypeObject *)st->sk.raw_socket)
                      ? Py_TYPE(raw)->tp_descr_get(raw, sock,
                                                   (PyObject *)Py_TYPE(sock))
                      : PyObject_GetAttrString(sock, name);
    long v = o ? PyLong_AsLong(o) : -1;
    Py_XDECREF(o);
    return v;
}

/* base_events._set_nodelay(): only for sockets that say they are TCP. */
static int
set_nodelay(eloop_state *st, PyObject *sock, int fd)
{
    PyObject *const raw[3] = {st->sk.raw_family, st->sk.raw_type,
                              st->sk.raw_proto};
    static const char *const names[3] = {"family", "type", "proto"};
    long v[3];
    for (int i = 0; i < 3; i++) {
        v[i] = sock_int_attr(st, sock, raw[i], names[i]);
        if (v[i] == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    if ((v[0] != AF_INET && v[0] != AF_INET6) || v[1] != SOCK_STREAM
        || v[2] != IPPROTO_TCP) {
        return 0;
    }
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

/* sock.getsockname() / getpeername(), None on OSError. */
static PyObject *
sock_name(PyObject *sock, const char *meth)
{
    PyObject *r = call_method1(sock, meth, NULL);
    if (r == NULL && PyErr_ExceptionMatches(PyExc_OSError)) {
        PyErr_Clear();
        r = Py_NewRef(Py_None);
    }
    return r;
}

/* A readiness handle for `meth` (_read_ready or _write_ready).
 *
 * The reader runs in handle_ctx itself: asyncio's reader handle runs in a
 * context of its own, copied when reading started and kept for the whole
 * connection, so a variable that data_received() sets is seen by the next
 * data_received().  handle_ctx is that context; sharing it saves a copy.
 * The writer runs in a copy of it, as asyncio's add_writer() handle runs
 * in a copy of the context write() was called from (usually the reader's).
 *
 * Handles live only while they are needed (see tr_read_ready), so an idle
 * connection holds neither a Handle nor a bound method. */
PyObject *
transport_make_handle(TransportObject *self, PyObject *meth)
{
    int reader = meth == self->st->str_read_ready;
    PyObject *ctx = reader ? Py_NewRef(self->handle_ctx)
                           : PyContext_Copy(self->handle_ctx);
    if (ctx == NULL) {
        return NULL;
    }
    PyObject *cb = PyObject_GetAttr((PyObject *)self, meth);
    PyObject *h = cb ? (PyObject *)handle_new(self->loop, cb, NULL, 0, ctx)
                     : NULL;
    Py_XDECREF(cb);
    Py_DECREF(ctx);
    return h;
}

/* extra[key] = value */
static int
set_extra(TransportObject *self, const char *key, PyObject *value)
{
    if (value == NULL) {
        return -1;
    }
    PyObject *k = PyUnicode_FromString(key);
    int rc = k ? PyObject_SetItem(self->extra, k, value) : -1;
    Py_XDECREF(k);
    Py_DECREF(value);
    return rc;
}

/* An address as socket.socket.getsockname() would return it, for the
 * families tr_addrs_init() keeps.  IPv6 is kept only with scope id 0:
 * Python 3.11 prints the host with getnameinfo(), which then agrees with
 * inet_ntop(); with a scope it appends "%scope". */
static PyObject *
addr_to_py(const tr_addr_t *a)
{
    char host[INET6_ADDRSTRLEN];

    switch (a->sa.sa_family) {
    case AF_INET:
        if (inet_ntop(AF_INET, &a->in.sin_addr, host, sizeof(host))
            == NULL) {
            break;
        }
        return Py_BuildValue("(si)", host, (int)ntohs(a->in.sin_port));
    case AF_INET6:
        if (inet_ntop(AF_INET6, &a->in6.sin6_addr, host, sizeof(host))
            == NULL) {
            break;
        }
        return Py_BuildValue("(siII)", host, (int)ntohs(a->in6.sin6_port),
                             (unsigned int)ntohl(a->in6.sin6_flowinfo),
                             (unsigned int)a->in6.sin6_scope_id);
    default:
        Py_RETURN_NONE;
    }
    PyErr_SetFromErrno(PyExc_OSError);
    return NULL;
}

/* Reads an (host, port[, flowinfo, scope_id]) tuple of the accept loop
 * back into *a.  Only if addr_to_py() would give back an equal tuple;
 * else 0 (the caller keeps the tuple itself).  Never raises. */
static int
addr_from_py(PyObject *addr, int family, tr_addr_t *a)
{
    Py_ssize_t n = family == AF_INET ? 2 : 4;
    char back[INET6_ADDRSTRLEN];
    unsigned long v[3];

    if (!PyTuple_CheckExact(addr) || PyTuple_GET_SIZE(addr) != n
        || !PyUnicode_CheckExact(PyTuple_GET_ITEM(addr, 0))) {
        return 0;
    }
    for (Py_ssize_t i = 1; i < n; i++) {
        PyObject *o = PyTuple_GET_ITEM(addr, i);
        v[i - 1] = PyLong_CheckExact(o) ? PyLong_AsUnsignedLong(o)
                                        : (unsigned long)-1;
        if (v[i - 1] > (i == 1 ? 65535UL : UINT32_MAX)) {
            PyErr_Clear();
            return 0;
        }
    }
    const char *host = PyUnicode_AsUTF8(PyTuple_GET_ITEM(addr, 0));
    if (host == NULL) {
        PyErr_Clear();
        return 0;
    }
    memset(a, 0, sizeof(*a));
    a->sa.sa_family = (sa_family_t)family;
    void *bin = family == AF_INET ? (void *)&a->in.sin_addr
                                  : (void *)&a->in6.sin6_addr;
    if (inet_pton(family, host, bin) != 1
        || inet_ntop(family, bin, back, sizeof(back)) == NULL
        || strcmp(host, back) != 0) {
        return 0;
    }
    if (family == AF_INET) {
        a->in.sin_port = htons((uint16_t)v[0]);
        return 1;
    }
    a->in6.sin6_port = htons((uint16_t)v[0]);
    a->in6.sin6_flowinfo = htonl((uint32_t)v[1]);
    a->in6.sin6_scope_id = (uint32_t)v[2];
    return v[2] == 0;
}

/* Whether the kernel's answer can stand for sock.getsockname() or
 * getpeername() (see addr_to_py). */
static int
addr_keepable(const tr_addr_t *a, socklen_t len)
{
    switch (a->sa.sa_family) {
    case AF_INET:
        return len == sizeof(a->in);
    case AF_INET6:
        return len == sizeof(a->in6) && a->in6.sin6_scope_id == 0;
    default:
        return 0;
    }
}

/* Decides whether extra can stay lazy: only for a plain socket.socket
 * (whose getsockname() and getpeername() are the syscalls) of an IP
 * family, with no extra dict given except the accept loop's peername.
 * Fills sockname and peername as asyncio's __init__ would read them.
 * 1: lazy; 0: build the dict now; -1: error. */
static int
tr_addrs_init(TransportObject *self, PyObject *sock, PyObject *peer_addr)
{
    eloop_state *st = self->st;

    if (!Py_IS_TYPE(sock, (PyTypeObject *)st->sk.socket_socket)) {
        return 0;
    }
    PyObject *fdobj = sk_fileno(st, sock);
    long fd = fdobj ? PyLong_AsLong(fdobj) : -1;
    Py_XDECREF(fdobj);
    if (fd == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (fd < 0 || fd > INT_MAX) {
        return 0;       /* the eager path raises asyncio's errors */
    }
    self->sock_fd = (int)fd;    /* transport_new() needs it too */
    socklen_t len = sizeof(self->sockname);
    if (getsockname((int)fd, &self->sockname.sa, &len) < 0
        || !addr_keepable(&self->sockname, len)) {
        return 0;
    }
    if (peer_addr != NULL) {
        if (!addr_from_py(peer_addr, self->sockname.sa.sa_family,
                          &self->peername)) {
            return 0;
        }
        self->peer_first = 1;
        return 1;
    }
    len = sizeof(self->peername);
    if (getpeername((int)fd, &self->peername.sa, &len) < 0) {
        /* asyncio: OSError -> None */
        memset(&self->peername, 0, sizeof(self->peername));
        self->peername.sa.sa_family = AF_UNSPEC;
        return 1;
    }
    return addr_keepable(&self->peername, len);
}

PyObject *
transport_extra(TransportObject *self)
{
    if (self->extra_lazy) {
        /* In asyncio's order: a given peername, socket, sockname, then
         * peername. */
        PyObject *d = PyDict_New();
        PyObject *peer = addr_to_py(&self->peername);
        PyObject *local = addr_to_py(&self->sockname);
        PyObject *ts = self->sock ? PyObject_CallOneArg(
                                        self->st->TransportSocket, self->sock)
                                  : NULL;
        int ok = d && peer && local && ts
                 && (!self->peer_first
                     || PyDict_SetItemString(d, "peername", peer) == 0)
                 && PyDict_SetItemString(d, "socket", ts) == 0
                 && PyDict_SetItemString(d, "sockname", local) == 0
                 && (self->peer_first
                     || PyDict_SetItemString(d, "peername", peer) == 0);
        Py_XDECREF(peer);
        Py_XDECREF(local);
        Py_XDECREF(ts);
        if (!ok) {
            if (!PyErr_Occurred()) {
                /* no socket: only after tp_clear */
                PyErr_SetString(PyExc_AttributeError, "_extra");
            }
            Py_XDECREF(d);
            return NULL;
        }
        self->extra_lazy = 0;
        Py_XSETREF(self->extra, d);
    }
    if (self->extra == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_extra");
    }
    return self->extra;
}

int
transport_register(LoopObject *loop, int fd, PyObject *self)
{
    PyObject *fdkey = PyLong_FromLong(fd);
    int rc = fdkey ? PyDict_SetItem(loop->transports, fdkey, self) : -1;
    Py_XDECREF(fdkey);
    return rc;
}

int
transport_schedule_start(LoopObject *loop, PyObject *self,
                         PyObject *protocol, PyObject *waiter)
{
    /* connection_made() first; reading starts after it (it may pause);
     * the waiter wakes last. */
    PyObject *made = PyObject_GetAttrString(protocol, "connection_made");
    PyObject *a[3] = {NULL, made, self};
    int rc = made ? loop_soon(loop, a + 1, 2) : -1;
    Py_XDECREF(made);
    PyObject *start = rc == 0 ? PyObject_GetAttrString(self,
                                                       "_start_reading")
                              : NULL;
    PyObject *b[2] = {NULL, start};
    rc = start ? loop_soon(loop, b + 1, 1) : -1;
    Py_XDECREF(start);
    if (rc == 0 && waiter != Py_None) {
        PyObject *c[4] = {NULL, loop->st->set_result_unless_cancelled, waiter,
                          Py_None};
        rc = loop_soon(loop, c + 1, 3);
    }
    return rc;
}

void
transport_unregister_failed(LoopObject *loop, int fd, PyObject *self)
{
    /* asyncio's _transports is weak: a half-built transport is not kept.
     * Its finalizer warns and closes the socket, as asyncio's __del__
     * does. */
    PyObject *exc = el_fetch_exc();
    if (transport_unregister_fd(loop, fd, self) < 0) {
        PyErr_Clear();
    }
    el_restore_exc(exc);
}

/* _SelectorSocketTransport.__init__(), in asyncio's order.  peer_addr:
 * made by the accept loop, stands for extra={'peername': peer_addr}. */
static PyObject *
transport_new(LoopObject *loop, PyObject *sock, PyObject *protocol,
              PyObject *waiter, PyObject *extra, PyObject *server,
              PyObject *peer_addr)
{
    eloop_state *st = loop->st;

    /* asyncio would fail at its first call_soon(), after registering. */
    if (loop_check_closed(loop) < 0) {
        return NULL;
    }
    TransportObject *self = transport_alloc(loop, st->TransportType);
    if (self == NULL) {
        return NULL;
    }
    if (transport_set_limits(self, Py_None, Py_None) < 0) {
        goto fail;
    }
    int lazy = extra == Py_None ? tr_addrs_init(self, sock, peer_addr) : 0;
    if (lazy < 0) {
        goto fail;
    }
    if (lazy) {
        self->extra_lazy = 1;
        goto extra_done;
    }
    self->peer_first = 0;
    if (peer_addr != NULL) {
        self->extra = Py_BuildValue("{sO}", "peername", peer_addr);
    }
    else {
        self->extra = extra == Py_None ? PyDict_New() : Py_NewRef(extra);
    }
    if (self->extra == NULL
        || set_extra(self, "socket",
                     PyObject_CallOneArg(st->TransportSocket, sock)) < 0
        || set_extra(self, "sockname", sock_name(sock, "getsockname")) < 0) {
        goto fail;
    }
    PyObject *key = PyUnicode_FromString("peername");
    int has = key ? PySequence_Contains(self->extra, key) : -1;
    Py_XDECREF(key);
    if (has < 0
        || (!has && set_extra(self, "peername",
                              sock_name(sock, "getpeername")) < 0)) {
        goto fail;
    }
extra_done:
    if (self->sock_fd < 0) {    /* not read by tr_addrs_init() */
        PyObject *fdobj = sk_fileno(st, sock);
        long fd = fdobj ? PyLong_AsLong(fdobj) : -1;
        Py_XDECREF(fdobj);
        if (fd == -1 && PyErr_Occurred()) {
            goto fail;
        }
        if (fd < 0 || fd > INT32_MAX) {
            PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %ld",
                         fd);
            goto fail;
        }
        self->sock_fd = (int)fd;
    }
#if PY_VERSION_HEX >= 0x030C0000
    /* 3.12's _make_socket_transport() refuses an fd that an open
     * transport still has (the socket was closed behind its back and the
     * number reused).  Before self->sock is set: the finalizer of a
     * refused transport leaves the socket alone. */
    if (loop_check_fd_transport(loop, sock, self->sock_fd) < 0) {
        goto fail;
    }
#endif
    self->sock = Py_NewRef(sock);
    self->stream.io.fd = self->sock_fd;
    /* Read before every syscall: a socket closed behind our back (its fd
     * now -1, the number maybe reused) fails with EBADF, as asyncio's
     * calls on the closed socket object do. */
    self->stream.io.fd_src = transport_fd_field(st, sock, self->sock_fd);
    PyObject *ok = transport_set_protocol(self, protocol);
    if (ok == NULL) {
        goto fail;
    }
    Py_DECREF(ok);
    if (server != Py_None) {
        self->server = Py_NewRef(server);
        if (discard(call_method1(server, "_attach", SERVER_ATTACH_ARG(self))) < 0) {
            goto fail;
        }
    }
    if (transport_register(loop, self->sock_fd, (PyObject *)self) < 0) {
        goto fail;
    }
    if (set_nodelay(st, sock, self->sock_fd) < 0) {
        goto fail_registered;
    }
    self->handle_ctx = PyContext_CopyCurrent();
    if (self->handle_ctx == NULL) {
        goto fail_registered;
    }
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

const int *
transport_fd_field(eloop_state *st, PyObject *sock, int fd)
{
    if (st->sock_fd_offset < 0
        || !PyObject_TypeCheck(sock, (PyTypeObject *)st->sk.raw_socket)) {
        return NULL;
    }
    const int *src = (const int *)((char *)sock + st->sock_fd_offset);
    return *src == fd ? src : NULL;
}

static PyObject *
loop_make_socket_transport(LoopObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"sock", "protocol", "waiter", "extra", "server",
                             NULL};
    PyObject *sock, *protocol, *waiter = Py_None, *extra = Py_None;
    PyObject *server = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds,
                                     "OO|O$OO:_make_socket_transport",
                                     kwlist, &sock, &protocol, &waiter,
                                     &extra, &server)) {
        return NULL;
    }
    return transport_new(self, sock, protocol, waiter, extra, server, NULL);
}

int
transport_factory_is_ours(LoopObject *loop, PyObject *meth)
{
    return PyCFunction_Check(meth)
           && PyCFunction_GET_SELF(meth) == (PyObject *)loop
           && PyCFunction_GET_FUNCTION(meth)
                  == (PyCFunction)(void (*)(void))loop_make_socket_transport;
}

PyObject *
transport_new_accepted(LoopObject *loop, PyObject *conn, PyObject *protocol,
                       PyObject *addr, PyObject *server)
{
    return transport_new(loop, conn, protocol, Py_None, Py_None, server,
                         addr);
}

PyMethodDef Loop_transport_methods[] = {
    {"_make_socket_transport",
     (PyCFunction)(void (*)(void))loop_make_socket_transport,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {NULL, NULL, 0, NULL},
};

/* Where _socket.socket keeps its fd: socketmodule.h's PySocketSockObject
 * has `SOCKET_T sock_fd` (an int here) right after the object header, set
 * to -1 by close() and detach() before the fd is released.  Checked on a
 * live socket rather than assumed; -1 if it does not hold, and transports
 * then cannot tell that their socket was closed behind their back. */
static Py_ssize_t
probe_sock_fd_offset(void)
{
    Py_ssize_t off = (Py_ssize_t)sizeof(PyObject);
    PyObject *mod = PyImport_ImportModule("_socket");
    PyObject *type = mod ? PyObject_GetAttrString(mod, "socket") : NULL;
    PyObject *sock = type && PyType_Check(type)
                     && ((PyTypeObject *)type)->tp_basicsize
                            >= off + (Py_ssize_t)sizeof(int)
        ? PyObject_CallFunction(type, "ii", AF_UNIX, SOCK_STREAM) : NULL;
    PyObject *fd = sock ? PyObject_CallMethod(sock, "fileno", NULL) : NULL;
    int ok = fd != NULL && PyLong_Check(fd)
             && PyLong_AsLong(fd) == *(int *)((char *)sock + off);
    PyObject *r = sock ? PyObject_CallMethod(sock, "close", NULL) : NULL;
    ok = ok && r != NULL && *(int *)((char *)sock + off) == -1;
    Py_XDECREF(r);
    Py_XDECREF(fd);
    Py_XDECREF(sock);
    Py_XDECREF(type);
    Py_XDECREF(mod);
    PyErr_Clear();      /* no socket to look at: no guard, not an error */
    return ok ? off : -1;
}

int
transport_type_init(PyObject *mod, eloop_state *st)
{
    PyObject *base = NULL, *bases = NULL, *descr = NULL;
    int rc = -1;
    st->sock_fd_offset = probe_sock_fd_offset();
    PyObject *tmod = PyImport_ImportModule("asyncio.transports");
    if (tmod == NULL) {
        return -1;
    }
    base = PyObject_GetAttrString(tmod, "Transport");
    PyObject *bt = base ? PyObject_GetAttrString(tmod, "BaseTransport")
                        : NULL;
    Py_DECREF(tmod);
    descr = bt ? PyObject_GetAttrString(bt, "_extra") : NULL;
    Py_XDECREF(bt);
    if (descr == NULL) {
        goto done;
    }
    /* BaseTransport.__slots__ = ('_extra',) and no other slots on the way
     * to Transport: our `extra` field must be exactly that slot. */
    if (!PyType_Check(base)
        || ((PyTypeObject *)base)->tp_basicsize
               != (Py_ssize_t)(offsetof(TransportObject, extra)
                               + sizeof(PyObject *))
        || !Py_IS_TYPE(descr, &PyMemberDescr_Type)
        || ((PyMemberDescrObject *)descr)->d_member->offset
               != (Py_ssize_t)offsetof(TransportObject, extra)) {
        PyErr_Format(PyExc_ImportError,
                     "eloop: the layout of asyncio.transports.Transport is "
                     "not the expected one (instance size %zd, expected "
                     "%zd: one `_extra` slot after the object header); this "
                     "Python's asyncio is not supported",
                     PyType_Check(base)
                         ? ((PyTypeObject *)base)->tp_basicsize : -1,
                     (Py_ssize_t)(offsetof(TransportObject, extra)
                                  + sizeof(PyObject *)));
        goto done;
    }
    bases = PyTuple_Pack(1, base);
    if (bases == NULL) {
        goto done;
    }
    st->TransportType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &Transport_spec, bases);
    if (st->TransportType == NULL) {
        goto done;
    }
    /* asyncio's class attributes: the recv() size; start_tls() may wrap
     * this transport; loop.sendfile() may use os.sendfile() on its socket
     * (_make_empty_waiter() and friends). */
    PyObject *tdict = st->TransportType->tp_dict;     /* borrowed */
    PyObject *max_size = PyLong_FromLong(EL_STREAM_READ_SIZE);
    PyObject *consts = max_size ? PyImport_ImportModule("asyncio.constants")
                                : NULL;
    PyObject *modes = consts ? PyObject_GetAttrString(consts, "_SendfileMode")
                             : NULL;
    PyObject *native = modes ? PyObject_GetAttrString(modes, "TRY_NATIVE")
                             : NULL;
    int bad = native == NULL
              || PyDict_SetItemString(tdict, "max_size", max_size) < 0
              || PyDict_SetItemString(tdict, "_start_tls_compatible",
                                      Py_True) < 0
              || PyDict_SetItemString(tdict, "_sendfile_compatible",
                                      native) < 0;
    Py_XDECREF(max_size);
    Py_XDECREF(consts);
    Py_XDECREF(modes);
    Py_XDECREF(native);
    if (bad) {
        goto done;
    }
    PyObject *tbases = PyTuple_Pack(1, (PyObject *)st->TransportType);
    st->TransportDictType = tbases ? (PyTypeObject *)PyType_FromModuleAndSpec(
                                         mod, &TransportDict_spec, tbases)
                                   : NULL;
    Py_XDECREF(tbases);
    if (st->TransportDictType == NULL) {
        goto done;
    }
    /* The twin is the only subclass: C code that checks for our type
     * checks for these two. */
    st->TransportType->tp_flags &= ~Py_TPFLAGS_BASETYPE;
    PyType_Modified(st->TransportType);
    rc = PyModule_AddType(mod, st->TransportType);
done:
    Py_XDECREF(base);
    Py_XDECREF(bases);
    Py_XDECREF(descr);
    return rc;
}
