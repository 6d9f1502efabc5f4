/*
 * sock_io.c -- one attempt of a socket operation (sk_attempt): the
 * syscalls made directly on the fd of a socket.socket, the results built
 * exactly as the socket module builds them (makesockaddr() included), and
 * the method-call path for everything else.  See sock.c for when each
 * path is taken.  Nothing here touches the reactor or futures.
 */
#include "state.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sock.h"

int
sk_sock_int_option(int fd, int opt)
{
    int v = 0;
    socklen_t len = sizeof(v);
    if (getsockopt(fd, SOL_SOCKET, opt, &v, &len) < 0) {
        return -1;
    }
    return v;
}

int
sk_family_supported(int family)
{
    return family == AF_INET || family == AF_INET6 || family == AF_UNIX;
}

/* The fd's address family if the syscalls can be made here, else -1. */
int
sk_direct_family(int fd)
{
    int family = sk_sock_int_option(fd, SO_DOMAIN);
    return sk_family_supported(family) ? family : -1;
}

/* The address buffer length the socket module uses for a family. */
socklen_t
sk_addrlen_for(int family)
{
    switch (family) {
    case AF_INET:
        return sizeof(struct sockaddr_in);
    case AF_INET6:
        return sizeof(struct sockaddr_in6);
    default:
        return sizeof(struct sockaddr_un);
    }
}

/* (host, port) for an IPv4 address, as makesockaddr() builds it.  The
 * dotted quad is written here: glibc's inet_ntop() formats it with
 * sprintf(), and with Py_BuildValue() that was most of the cost of a
 * datagram's address (2.5k instructions, now a few hundred). */
static PyObject *
inet4_tuple(const struct sockaddr_in *a)
{
    const unsigned char *b = (const unsigned char *)&a->sin_addr;
    char host[16];
    Py_ssize_t n = 0;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100) {
            host[n++] = (char)('0' + v / 100);
        }
        if (v >= 10) {
            host[n++] = (char)('0' + v / 10 % 10);
        }
        host[n++] = (char)('0' + v % 10);
        host[n++] = '.';
    }
    PyObject *h = PyUnicode_New(n - 1, 127);
    if (h == NULL) {
        return NULL;
    }
    memcpy(PyUnicode_1BYTE_DATA(h), host, (size_t)(n - 1));
    PyObject *port = PyLong_FromLong(ntohs(a->sin_port));
    PyObject *t = port ? PyTuple_New(2) : NULL;
    if (t == NULL) {
        Py_DECREF(h);
        Py_XDECREF(port);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, h);
    PyTuple_SET_ITEM(t, 1, port);
    return t;
}

/* The socket module's makesockaddr() for the families we handle. */
PyObject *
sk_make_sockaddr(const struct sockaddr_storage *ss, socklen_t len)
{
    char host[INET6_ADDRSTRLEN];
    if (len == 0) {
        /* No address, e.g. a datagram from an unbound Unix socket. */
        Py_RETURN_NONE;
    }
    switch (ss->ss_family) {
    case AF_INET:
        return inet4_tuple((const struct sockaddr_in *)ss);
    case AF_INET6: {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        if (inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host)) == NULL) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        return Py_BuildValue("(siII)", host, (int)ntohs(a->sin6_port),
                             (unsigned int)ntohl(a->sin6_flowinfo),
                             (unsigned int)a->sin6_scope_id);
    }
    case AF_UNIX: {
        const struct sockaddr_un *a = (const struct sockaddr_un *)ss;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        if (len > off && a->sun_path[0] == 0) {
            /* Linux abstract namespace: bytes, NUL included. */
            return PyBytes_FromStringAndSize(a->sun_path,
                                             (Py_ssize_t)(len - off));
        }
        /* The storage is zeroed and larger than sockaddr_un, so the path
         * is NUL-terminated even at its maximum length. */
        return PyUnicode_DecodeFSDefault(a->sun_path);
    }
    default:
        PyErr_Format(PyExc_OSError, "unsupported address family %d",
                     (int)ss->ss_family);
        return NULL;
    }
}

/* Retries EINTR the way the socket module does (PEP 475): a signal
 * handler that raises ends the call. */
static inline int
eintr_retry(void)
{
    return errno == EINTR && PyErr_CheckSignals() == 0;
}

static inline int
would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK;
}

/* A Python-level call failed: is it only "try again later"? */
int
sk_exc_would_block(void)
{
    if (PyErr_ExceptionMatches(PyExc_BlockingIOError)
        || PyErr_ExceptionMatches(PyExc_InterruptedError)) {
        PyErr_Clear();
        return 1;
    }
    return 0;
}

/* ---- attempts ----------------------------------------------------------- */

void
sk_args_clear(sk_args *a)
{
    if (a->has_view) {
        a->has_view = 0;
        PyBuffer_Release(&a->view);
    }
    Py_CLEAR(a->sock);
    Py_CLEAR(a->arg);
    Py_CLEAR(a->arg2);
}

/* socket.socket(family, type, proto, fd), with fd closed exactly once if
 * that fails.  socket.__init__ is Python code, so a signal handler may
 * raise in it before _socket.socket.__init__ takes fd, or after: then
 * the half-built object owns fd and closes it whenever it dies, which the
 * exception's traceback can delay until after fd is reused.  Building it
 * in two steps keeps hold of the object, so fd can be taken back from it
 * (_socket.socket.detach, C: no handler runs) and closed here. */
static PyObject *
socket_from_fd(eloop_state *st, int family, int type, int proto, int fd)
{
    PyTypeObject *tp = (PyTypeObject *)st->sk.socket_socket;
    PyObject *args = Py_BuildValue("(iiii)", family, type, proto, fd);
    PyObject *obj = args ? tp->tp_new(tp, args, NULL) : NULL;
    if (obj != NULL && tp->tp_init(obj, args, NULL) == 0) {
        Py_DECREF(args);
        return obj;
    }
    Py_XDECREF(args);
    PyObject *exc = el_fetch_exc();
    if (obj != NULL) {
        PyObject *r = PyObject_CallMethod(st->sk.raw_socket, "detach", "O",
                                          obj);
        Py_XDECREF(r);
        PyErr_Clear();
        Py_DECREF(obj);
    }
    close(fd);
    el_restore_exc(exc);
    return NULL;
}

/* sock.accept() through the direct path: the new socket is made as
 * socket.socket.accept() makes it, then non-blocking as asyncio sets it.
 * accept4() already made the fd non-blocking; SOCK_NONBLOCK in the type
 * tells the socket object so (timeout 0.0, type without the flag), which
 * saves the ioctl that setblocking(False) would make per connection. */
PyObject *
sk_accept_direct(eloop_state *st, int fd, int family, int type, int proto,
                 int *again)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int cfd;
    for (;;) {
        memset(&ss, 0, sizeof(ss));
        len = sk_addrlen_for(family);
        cfd = accept4(fd, (struct sockaddr *)&ss, &len,
                      SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd >= 0) {
            break;
        }
        if (would_block()) {
            *again = 1;
            return NULL;
        }
        if (!eintr_retry()) {
            return PyErr_Occurred() ? NULL
                                    : PyErr_SetFromErrno(PyExc_OSError);
        }
    }
    PyObject *addr = sk_make_sockaddr(&ss, len);
    if (addr == NULL) {
        close(cfd);
        return NULL;
    }
    PyObject *conn = socket_from_fd(st, family, type | SOCK_NONBLOCK, proto,
                                    cfd);
    if (conn == NULL) {
        Py_DECREF(addr);
        return NULL;
    }
    PyObject *pair = PyTuple_Pack(2, conn, addr);
    Py_DECREF(conn);
    Py_DECREF(addr);
    return pair;
}

/* conn, address = sock.accept(); conn.setblocking(False) */
PyObject *
sk_accept_generic(PyObject *sock, int *again)
{
    PyObject *pair = PyObject_CallMethod(sock, "accept", NULL);
    if (pair == NULL) {
        *again = sk_exc_would_block();
        return NULL;
    }
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        /* Unpack as Python would, with its errors. */
        PyObject *t = PySequence_Tuple(pair);
        Py_DECREF(pair);
        if (t == NULL) {
            return NULL;
        }
        if (PyTuple_GET_SIZE(t) != 2) {
            PyErr_Format(PyExc_ValueError,
                         PyTuple_GET_SIZE(t) < 2
                             ? "not enough values to unpack (expected 2, "
                               "got %zd)"
                             : "too many values to unpack (expected 2)",
                         PyTuple_GET_SIZE(t));
            Py_DECREF(t);
            return NULL;
        }
        pair = t;
    }
    PyObject *conn = PyTuple_GET_ITEM(pair, 0);   /* borrowed */
    PyObject *r = PyObject_CallMethod(conn, "setblocking", "(O)", Py_False);
    if (r == NULL) {
        Py_DECREF(pair);
        *again = sk_exc_would_block();
        return NULL;
    }
    Py_DECREF(r);
    return pair;
}

/* One recv/recvfrom into a new bytes object of a->n bytes, shrunk to what
 * arrived.  With ss != NULL the sender's address is stored there. */
static PyObject *
recv_bytes(sk_args *a, int *again, struct sockaddr_storage *ss,
           socklen_t *len)
{
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, a->n);
    if (bytes == NULL) {
        return NULL;
    }
    ssize_t got;
    for (;;) {
        if (ss != NULL) {
            memset(ss, 0, sizeof(*ss));
            *len = sk_addrlen_for(a->family);
        }
        got = recvfrom(a->fd, PyBytes_AS_STRING(bytes), (size_t)a->n,
                       MSG_DONTWAIT, (struct sockaddr *)ss, len);
        if (got >= 0) {
            break;
        }
        if (would_block()) {
            *again = 1;
            Py_DECREF(bytes);
            return NULL;
        }
        if (!eintr_retry()) {
            Py_DECREF(bytes);
            return PyErr_Occurred() ? NULL
                                    : PyErr_SetFromErrno(PyExc_OSError);
        }
    }
    if (got != a->n && _PyBytes_Resize(&bytes, got) < 0) {
        return NULL;
    }
    return bytes;
}

static PyObject *
recv_direct(sk_args *a, int *again)
{
    if (a->n == 0) {
        /* The socket module makes no syscall for 0 bytes. */
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    return recv_bytes(a, again, NULL, NULL);
}

/* recv_into / recvfrom_into through the direct path.  Returns NULL without
 * an error when the buffer is one the socket module would refuse: the
 * caller then uses the method, which raises the exact error. */
static PyObject *
recv_into_direct(sk_args *a, int from, int *again, int *refused)
{
    Py_buffer v;
    if (PyObject_GetBuffer(a->arg, &v, PyBUF_WRITABLE) < 0) {
        PyErr_Clear();
        *refused = 1;
        return NULL;
    }
    Py_ssize_t want = v.len;
    if (from && a->n != 0) {
        if (a->n < 0 || a->n > v.len) {
            PyBuffer_Release(&v);
            *refused = 1;
            return NULL;
        }
        want = a->n;
    }
    if (!from && want == 0) {
        PyBuffer_Release(&v);
        return PyLong_FromLong(0);  /* no syscall, as the socket module */
    }
    struct sockaddr_storage ss;
    socklen_t len = 0;
    ssize_t got;
    for (;;) {
        if (from) {
            memset(&ss, 0, sizeof(ss));
            len = sk_addrlen_for(a->family);
            got = recvfrom(a->fd, v.buf, (size_t)want, MSG_DONTWAIT,
                           (struct sockaddr *)&ss, &len);
        }
        else {
            got = recv(a->fd, v.buf, (size_t)want, MSG_DONTWAIT);
        }
        if (got >= 0 || would_block() || !eintr_retry()) {
            break;
        }
    }
    int err = errno;
    PyBuffer_Release(&v);
    if (got < 0) {
        if (err == EAGAIN || err == EWOULDBLOCK) {
            *again = 1;
            return NULL;
        }
        if (PyErr_Occurred()) {
            return NULL;
        }
        eloop_raise_errno(-err);
        return NULL;
    }
    if (!from) {
        return PyLong_FromSsize_t(got);
    }
    PyObject *addr = sk_make_sockaddr(&ss, len);
    if (addr == NULL) {
        return NULL;
    }
    return Py_BuildValue("(nN)", (Py_ssize_t)got, addr);
}

static PyObject *
recvfrom_direct(sk_args *a, int *again)
{
    struct sockaddr_storage ss;
    socklen_t len;
    PyObject *bytes = recv_bytes(a, again, &ss, &len);
    if (bytes == NULL) {
        return NULL;
    }
    PyObject *addr = sk_make_sockaddr(&ss, len);
    if (addr == NULL) {
        Py_DECREF(bytes);
        return NULL;
    }
    return Py_BuildValue("(NN)", bytes, addr);
}

/* One send of what is left of sock_sendall()'s data (asyncio sends once
 * per writable event too).  Returns Py_None when everything is sent. */
static PyObject *
sendall_step(sk_args *a, int *again)
{
    if (a->has_view) {
        ssize_t n;
        for (;;) {
            n = send(a->fd, (char *)a->view.buf + a->pos,
                     (size_t)(a->view.len - a->pos), MSG_DONTWAIT);
            if (n >= 0) {
                break;
            }
            if (would_block()) {
                *again = 1;
                return NULL;
            }
            if (!eintr_retry()) {
                return PyErr_Occurred() ? NULL
                                        : PyErr_SetFromErrno(PyExc_OSError);
            }
        }
        a->pos += n;
        if (a->pos < a->view.len) {
            *again = 1;
            return NULL;
        }
        Py_RETURN_NONE;
    }
    /* Generic: the first send is of the data itself, the next ones of
     * memoryview(data)[pos:], as asyncio's _sock_sendall(). */
    PyObject *r, *total;
    if (a->arg2 == NULL) {
        r = PyObject_CallMethod(a->sock, "send", "(O)", a->arg);
    }
    else {
        PyObject *slice = PySequence_GetSlice(a->arg2, a->pos,
                                              PY_SSIZE_T_MAX);
        r = slice ? PyObject_CallMethod(a->sock, "send", "(O)", slice) : NULL;
        Py_XDECREF(slice);
    }
    if (r == NULL) {
        if (!sk_exc_would_block()) {
            return NULL;
        }
        r = PyLong_FromLong(0);
        if (r == NULL) {
            return NULL;
        }
    }
    Py_ssize_t n = PyLong_AsSsize_t(r);
    Py_DECREF(r);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    a->pos += n;
    if (a->arg2 == NULL) {
        a->arg2 = PyMemoryView_FromObject(a->arg);
        if (a->arg2 == NULL) {
            return NULL;
        }
        total = a->arg;     /* asyncio: n == len(data) */
    }
    else {
        total = a->arg2;    /* asyncio: start == len(view) */
    }
    Py_ssize_t len = PyObject_Size(total);
    if (len < 0) {
        return NULL;
    }
    if (a->pos == len) {
        Py_RETURN_NONE;
    }
    *again = 1;
    return NULL;
}

/* _sock_connect_cb(): the outcome of a connect() in progress. */
static PyObject *
connect_check(sk_args *a, int *again)
{
    int err;
    if (a->direct) {
        socklen_t len = sizeof(err);
        if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
    }
    else {
        PyObject *r = PyObject_CallMethod(a->sock, "getsockopt", "ii",
                                          SOL_SOCKET, SO_ERROR);
        if (r == NULL) {
            *again = sk_exc_would_block();
            return NULL;
        }
        err = (int)PyLong_AsLong(r);
        Py_DECREF(r);
        if (err == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (err != 0) {
        PyObject *msg = PyUnicode_FromFormat("Connect call failed %S",
                                             a->arg);
        PyObject *exc = msg ? PyObject_CallFunction(PyExc_OSError, "iO", err,
                                                    msg) : NULL;
        Py_XDECREF(msg);
        if (exc != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    Py_RETURN_NONE;
}

/* One attempt of the operation.  Returns the result, or NULL with *again
 * set (try when the fd is ready) or with an exception set. */
PyObject *
sk_attempt(eloop_state *st, sk_args *a, int *again)
{
    int refused = 0;
    PyObject *r;
    *again = 0;
    switch (a->kind) {
    case SK_RECV:
        if (a->direct) {
            return recv_direct(a, again);
        }
        r = PyObject_CallMethod(a->sock, "recv", "(O)", a->arg);
        break;
    case SK_RECV_INTO:
        if (a->direct) {
            r = recv_into_direct(a, 0, again, &refused);
            if (!refused) {
                return r;
            }
        }
        r = PyObject_CallMethod(a->sock, "recv_into", "(O)", a->arg);
        break;
    case SK_RECVFROM:
        if (a->direct) {
            return recvfrom_direct(a, again);
        }
        r = PyObject_CallMethod(a->sock, "recvfrom", "(O)", a->arg);
        break;
    case SK_RECVFROM_INTO:
        if (a->direct) {
            r = recv_into_direct(a, 1, again, &refused);
            if (!refused) {
                return r;
            }
        }
        r = PyObject_CallMethod(a->sock, "recvfrom_into", "OO", a->arg,
                                a->arg2);
        break;
    case SK_SENDALL:
        return sendall_step(a, again);
    case SK_SENDTO:
        /* The first try passes no flags, the retries flags=0 (asyncio). */
        r = a->pos == 0
                ? PyObject_CallMethod(a->sock, "sendto", "OO", a->arg,
                                      a->arg2)
                : PyObject_CallMethod(a->sock, "sendto", "OiO", a->arg, 0,
                                      a->arg2);
        a->pos = 1;
        break;
    case SK_CONNECT:
        return connect_check(a, again);
    case SK_ACCEPT:
        if (a->direct) {
            return sk_accept_direct(st, a->fd, a->family, a->type, a->proto,
                                    again);
        }
        return sk_accept_generic(a->sock, again);
    default:
        PyErr_SetString(PyExc_SystemError, "eloop: bad socket operation");
        return NULL;
    }
    if (r == NULL) {
        *again = sk_exc_would_block();
    }
    return r;
}
