/*
 * sock.c -- the loop's low-level socket operations: sock_recv,
 * sock_recv_into, sock_recvfrom, sock_recvfrom_into, sock_sendall,
 * sock_sendto, sock_connect and sock_accept, each with the semantics of
 * asyncio's selector loop (selector_events.py), which is the specification.
 * Name resolution and the accept loop of servers live in sock_server.c.
 *
 * Each method returns a coroutine object (sock_coro.c), as asyncio's
 * `async def` methods do; the operation starts when it is awaited.
 *
 * Shape of an operation, as in asyncio:
 *
 *   1. Try the syscall at once.  Data already there (or room to send)
 *      completes the operation without touching the reactor.
 *   2. On EAGAIN, register the fd with add_reader()/add_writer() -- the
 *      FdWatch machinery of loop_io.c -- with a SockOp object as the
 *      callback, and add the same SockOp as a done callback of the future,
 *      which unregisters the fd (asyncio's _sock_read_done/_write_done).
 *
 * Reusing add_reader() (not a watcher of our own) is deliberate: an fd has
 * one watcher, and asyncio's operations share the fd's reader/writer slots
 * with user callbacks.  So a second sock_recv() on the same fd replaces the
 * first one's reader (whose future then never completes), a sock_recv()
 * and a sock_sendall() on one fd coexist, and cancelling leaves the fd and
 * the socket as asyncio does.  The SockOp is a C callable: readiness runs
 * no Python code.
 *
 * A SockOp is called two ways (tp_vectorcall, dispatched on nargs): with no
 * argument by its reader/writer Handle when the fd is ready, and with the
 * future as the only argument when that future is done.
 *
 * Direct syscalls (sock_io.c): for an object whose type is exactly
 * socket.socket the syscalls are made on its fd (recv/recvfrom/send with
 * MSG_DONTWAIT, accept4), and results are built exactly as the socket
 * module builds them.  Anything else -- a subclass that may override
 * recv(), a buffer or size the socket module would reject, an unusual
 * address family -- goes through the object's own methods, so results and
 * errors are asyncio's by construction.  connect() and sendto() always use
 * the methods: they parse (and may resolve) addresses, which only the
 * socket module does right.
 *
 * Known difference from asyncio: like asyncio, a blocking socket is
 * refused only in debug mode.  Outside it, recv/send use MSG_DONTWAIT, so
 * a blocking socket.socket waits for readiness instead of blocking the
 * whole loop in the syscall; accept and connect on a blocking socket
 * block, as in asyncio.
 */
#include "state.h"

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>

#include "sock.h"

/* ---- small helpers ------------------------------------------------------ */

int
sk_bind_args(const char *fname, PyObject *const *args, Py_ssize_t nargsf,
             PyObject *kwnames, const char *const *names, int nnames,
             int npos, int nreq, PyObject **out)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    for (int i = 0; i < nnames; i++) {
        out[i] = NULL;
    }
    if (nargs > npos) {
        /* Counting self, as Python's own message does. */
        if (nreq == npos) {
            PyErr_Format(PyExc_TypeError,
                         "%s() takes %d positional arguments but %zd were "
                         "given", fname, npos + 1, nargs + 1);
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "%s() takes from %d to %d positional arguments but "
                         "%zd were given", fname, nreq + 1, npos + 1,
                         nargs + 1);
        }
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        out[i] = args[i];
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int idx = -1;
        for (int i = 0; i < nnames; i++) {
            if (PyUnicode_EqualToUTF8Compat(key, names[i])) {
                idx = i;
                break;
            }
        }
        if (idx < 0) {
            PyErr_Format(PyExc_TypeError,
                         "%s() got an unexpected keyword argument '%S'",
                         fname, key);
            return -1;
        }
        if (out[idx] != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "%s() got multiple values for argument '%s'", fname,
                         names[idx]);
            return -1;
        }
        out[idx] = args[nargs + k];
    }
    int missing = 0;
    for (int i = 0; i < nreq; i++) {
        missing += out[i] == NULL;
    }
    if (missing == 0) {
        return 0;
    }
    /* "f() missing 2 required positional arguments: 'a' and 'b'" */
    PyObject *list = PyUnicode_FromString("");
    for (int i = 0, seen = 0; i < nreq && list != NULL; i++) {
        if (out[i] != NULL) {
            continue;
        }
        seen++;
        const char *sep = seen == 1 ? ""
                          : seen < missing ? ", "
                          : missing == 2 ? " and " : ", and ";
        Py_SETREF(list, PyUnicode_FromFormat("%U%s'%s'", list, sep,
                                             names[i]));
    }
    if (list != NULL) {
        PyErr_Format(PyExc_TypeError,
                     "%s() missing %d required positional argument%s: %U",
                     fname, missing, missing == 1 ? "" : "s", list);
        Py_DECREF(list);
    }
    return -1;
}

int
sk_is_fatal_pending(void)
{
    return PyErr_ExceptionMatches(PyExc_SystemExit)
           || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
}

PyObject *
sk_future_new(LoopObject *loop)
{
    return PyObject_CallMethodNoArgs((PyObject *)loop,
                                     loop->st->sk.str_create_future);
}

/* fut.set_result(res) or, with res NULL, fut.set_exception(<pending>). */
int
sk_future_finish(eloop_state *st, PyObject *fut, PyObject *res)
{
    PyObject *r;
    if (res != NULL) {
        r = PyObject_CallMethodOneArg(fut, st->sk.str_set_result, res);
    }
    else {
        PyObject *exc = el_fetch_exc();
        r = PyObject_CallMethodOneArg(fut, st->sk.str_set_exception, exc);
        Py_DECREF(exc);
    }
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

static int
future_is_done(eloop_state *st, PyObject *fut)
{
    PyObject *r = PyObject_CallMethodNoArgs(fut, st->sk.str_done);
    if (r == NULL) {
        return -1;
    }
    int done = PyObject_IsTrue(r);
    Py_DECREF(r);
    return done;
}

/* base_events._check_ssl_socket() and the debug-mode blocking check, in
 * asyncio's order. */
int
sk_check_sock(LoopObject *loop, PyObject *sock)
{
    eloop_state *st = loop->st;
    if (st->sk.SSLSocket != NULL
        && !Py_IS_TYPE(sock, (PyTypeObject *)st->sk.socket_socket)) {
        int r = PyObject_IsInstance(sock, st->sk.SSLSocket);
        if (r < 0) {
            return -1;
        }
        if (r) {
            PyErr_SetString(PyExc_TypeError,
                            "Socket cannot be of type SSLSocket");
            return -1;
        }
    }
    if (loop->debug) {
        PyObject *t = PyObject_CallMethod(sock, "gettimeout", NULL);
        if (t == NULL) {
            return -1;
        }
        PyObject *zero = PyLong_FromLong(0);
        int ne = zero ? PyObject_RichCompareBool(t, zero, Py_NE) : -1;
        Py_XDECREF(zero);
        Py_DECREF(t);
        if (ne < 0) {
            return -1;
        }
        if (ne) {
            PyErr_SetString(PyExc_ValueError,
                            "the socket must be non-blocking");
            return -1;
        }
    }
    return 0;
}

/* sock.fileno(), the call's result (new reference).  A plain
 * socket.socket's fileno() is _socket.socket's: calling that method
 * directly skips the lookup through the Python class. */
PyObject *
sk_fileno(eloop_state *st, PyObject *sock)
{
    return Py_IS_TYPE(sock, (PyTypeObject *)st->sk.socket_socket)
               ? PyObject_Vectorcall(st->sk.raw_fileno, &sock, 1, NULL)
               : PyObject_CallMethodNoArgs(sock, st->sk.str_fileno);
}

/* socket.fileno() as an int object (new reference) and a C int. */
static PyObject *
sock_fileno(eloop_state *st, PyObject *sock, int *fd)
{
    PyObject *obj = sk_fileno(st, sock);
    if (obj == NULL) {
        return NULL;
    }
    long v = PyLong_Check(obj) ? PyLong_AsLong(obj) : -1;
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
    }
    *fd = (v < INT32_MIN || v > INT32_MAX) ? -1 : (int)v;
    return obj;
}

/* ---- the operations ----------------------------------------------------- */

static const char *const op_names[] = {
    "sock_recv", "sock_recv_into", "sock_recvfrom", "sock_recvfrom_into",
    "sock_sendall", "sock_sendto", "sock_connect", "sock_accept",
};

/* ---- SockOp: a pending operation ---------------------------------------- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    LoopObject *loop;           /* strong */
    PyObject *fut;              /* strong; NULL once finished */
    PyObject *handle;           /* our reader/writer Handle; strong */
    PyObject *resolving;        /* sock_connect: getaddrinfo future */
    int fd;                     /* the fd registered with add_reader() */
    sk_args a;
    unsigned char writer;       /* registered with add_writer() */
    unsigned char done_cb;      /* added as a done callback of fut */
} SockOpObject;

static PyObject *SockOp_vectorcall(PyObject *self, PyObject *const *args,
                                   size_t nargsf, PyObject *kwnames);

/* Takes over the references in *a (which is left cleared). */
static SockOpObject *
sockop_new(LoopObject *loop, sk_args *a)
{
    SockOpObject *op = PyObject_GC_New(SockOpObject,
                                       loop->st->sk.SockOpType);
    if (op == NULL) {
        sk_args_clear(a);
        return NULL;
    }
    op->vectorcall = SockOp_vectorcall;
    op->loop = (LoopObject *)Py_NewRef((PyObject *)loop);
    op->fut = NULL;
    op->handle = NULL;
    op->resolving = NULL;
    op->fd = -1;
    op->a = *a;
    memset(a, 0, sizeof(*a));
    op->writer = op->a.kind == SK_SENDALL || op->a.kind == SK_SENDTO
                 || op->a.kind == SK_CONNECT;
    op->done_cb = 0;
    PyObject_GC_Track(op);
    return op;
}

/* Drops everything the operation holds: it is over. */
static void
sockop_release(SockOpObject *op)
{
    Py_CLEAR(op->fut);
    Py_CLEAR(op->handle);
    Py_CLEAR(op->resolving);
    sk_args_clear(&op->a);
}

static int
sockop_add_done_callback(SockOpObject *op, PyObject *fut)
{
    PyObject *r = PyObject_CallMethodOneArg(
        fut, op->loop->st->sk.str_add_done_callback, (PyObject *)op);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* The slow path: _ensure_fd_no_transport(fd); handle = _add_reader(fd,
 * op); fut.add_done_callback(op). */
static int
sockop_register(SockOpObject *op)
{
    LoopObject *loop = op->loop;
    int fd;
    PyObject *fdobj = sock_fileno(loop->st, op->a.sock, &fd);
    if (fdobj == NULL) {
        return -1;
    }
    if (loop_check_fd_transport(loop, fdobj, fd) < 0) {
        Py_DECREF(fdobj);
        return -1;
    }
    PyObject *args[2] = {fdobj, (PyObject *)op};
    PyObject *r = op->writer ? loop_add_writer(loop, args, 2)
                             : loop_add_reader(loop, args, 2);
    Py_DECREF(fdobj);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    /* add_reader() succeeded, so fd is valid and its FdWatch holds the new
     * handle (asyncio's _add_reader() returns it). */
    op->fd = fd;
    el_io_t *io = el_io_lookup(&loop->core, fd);
    if (io == NULL) {
        PyErr_SetString(PyExc_SystemError, "eloop: fd watcher missing");
        return -1;
    }
    FdWatch *w = el_container_of(io, FdWatch, io);
    Py_XSETREF(op->handle, Py_NewRef(op->writer ? w->writer : w->reader));
    if (!op->done_cb) {
        if (sockop_add_done_callback(op, op->fut) < 0) {
            return -1;
        }
        op->done_cb = 1;
    }
    return 0;
}

/* The fd is ready: asyncio's _sock_recv() and friends. */
static PyObject *
sockop_ready(SockOpObject *op)
{
    eloop_state *st = op->loop->st;
    if (op->fut == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *fut = Py_NewRef(op->fut);
    PyObject *ret = NULL, *res = NULL;
    int again = 0;
    int done = future_is_done(st, fut);
    if (done != 0) {
        ret = done < 0 ? NULL : Py_NewRef(Py_None);
        goto out;
    }
    if (op->a.direct) {
        /* Ask again, as asyncio's sock.recv() would: once the socket is
         * closed (fileno() -1) the syscall must fail with EBADF, not reach
         * whatever file now has the old fd number. */
        PyObject *fdobj = sock_fileno(st, op->a.sock, &op->a.fd);
        if (fdobj == NULL) {
            goto finish;
        }
        Py_DECREF(fdobj);
    }
    res = sk_attempt(st, &op->a, &again);
finish:
    if (res == NULL && again) {
        ret = Py_NewRef(Py_None);
        goto out;
    }
    if (res == NULL && sk_is_fatal_pending()) {
        goto out;
    }
    if (sk_future_finish(st, fut, res) == 0) {
        ret = Py_NewRef(Py_None);
    }
    Py_XDECREF(res);
out:
    Py_DECREF(fut);
    return ret;
}

static int sockop_connect_start(SockOpObject *op, PyObject *address);

/* sock_connect(): getaddrinfo() finished. */
static PyObject *
sockop_resolved(SockOpObject *op, PyObject *rfut)
{
    eloop_state *st = op->loop->st;
    Py_CLEAR(op->resolving);
    if (op->fut == NULL) {
        Py_RETURN_NONE;
    }
    int done = future_is_done(st, op->fut);
    if (done != 0) {
        return done < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *r = PyObject_CallMethod(rfut, "cancelled", NULL);
    int cancelled = r ? PyObject_IsTrue(r) : -1;
    Py_XDECREF(r);
    if (cancelled < 0) {
        return NULL;
    }
    if (cancelled) {
        /* The CancelledError would propagate out of asyncio's coroutine. */
        r = PyObject_CallMethod(op->fut, "cancel", NULL);
        Py_XDECREF(r);
        return r ? Py_NewRef(Py_None) : NULL;
    }
    PyObject *infos = PyObject_CallMethod(rfut, "result", NULL);
    PyObject *address = NULL;
    if (infos != NULL) {
        /* _, _, _, _, address = resolved[0] */
        PyObject *first = PySequence_GetItem(infos, 0);
        PyObject *t = first ? PySequence_Tuple(first) : NULL;
        Py_XDECREF(first);
        if (t != NULL && PyTuple_GET_SIZE(t) != 5) {
            PyErr_Format(PyExc_ValueError,
                         PyTuple_GET_SIZE(t) < 5
                             ? "not enough values to unpack (expected 5, "
                               "got %zd)"
                             : "too many values to unpack (expected 5)",
                         PyTuple_GET_SIZE(t));
        }
        else if (t != NULL) {
            address = Py_NewRef(PyTuple_GET_ITEM(t, 4));
        }
        Py_XDECREF(t);
        Py_DECREF(infos);
    }
    if (address == NULL) {
        if (sk_is_fatal_pending()) {
            return NULL;
        }
        PyObject *fut = Py_NewRef(op->fut);
        int rc = sk_future_finish(st, fut, NULL);
        Py_DECREF(fut);
        return rc < 0 ? NULL : Py_NewRef(Py_None);
    }
    int rc = sockop_connect_start(op, address);
    Py_DECREF(address);
    return rc < 0 ? NULL : Py_NewRef(Py_None);
}

/* fut is done: _sock_read_done() / _sock_write_done(). */
static PyObject *
sockop_done(SockOpObject *op, PyObject *fut)
{
    LoopObject *loop = op->loop;
    if (op->resolving != NULL && fut == op->resolving) {
        return sockop_resolved(op, fut);
    }
    if (op->fut == NULL || fut != op->fut) {
        Py_RETURN_NONE;
    }
    PyObject *ret = Py_NewRef(Py_None);
    if (op->resolving != NULL) {
        /* Cancelled while resolving: stop the lookup too. */
        PyObject *r = PyObject_CallMethod(op->resolving, "cancel", NULL);
        if (r == NULL) {
            Py_CLEAR(ret);
        }
        Py_XDECREF(r);
    }
    HandleObject *h = (HandleObject *)op->handle;
    if (ret != NULL && h != NULL && !handle_cancelled(h)) {
        PyObject *fdobj = PyLong_FromLong(op->fd);
        PyObject *r = NULL;
        if (fdobj != NULL && loop_check_fd_transport(loop, fdobj, op->fd) == 0) {
            r = op->writer ? loop_remove_writer(loop, fdobj)
                           : loop_remove_reader(loop, fdobj);
        }
        Py_XDECREF(fdobj);
        if (r == NULL) {
            Py_CLEAR(ret);
        }
        Py_XDECREF(r);
    }
    sockop_release(op);
    return ret;
}

static PyObject *
SockOp_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                  PyObject *kwnames)
{
    SockOpObject *op = (SockOpObject *)self;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        PyErr_SetString(PyExc_TypeError,
                        "socket operation takes no keyword arguments");
        return NULL;
    }
    /* Keep op alive: finishing it can drop the last outside reference. */
    Py_INCREF(op);
    PyObject *r;
    if (nargs == 0) {
        r = sockop_ready(op);
    }
    else if (nargs == 1) {
        r = sockop_done(op, args[0]);
    }
    else {
        PyErr_SetString(PyExc_TypeError,
                        "socket operation takes 0 or 1 arguments");
        r = NULL;
    }
    Py_DECREF(op);
    return r;
}

static int
SockOp_traverse(SockOpObject *op, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(op->loop);
    Py_VISIT(op->fut);
    Py_VISIT(op->handle);
    Py_VISIT(op->resolving);
    Py_VISIT(op->a.sock);
    Py_VISIT(op->a.arg);
    Py_VISIT(op->a.arg2);
    if (op->a.has_view) {
        Py_VISIT(op->a.view.obj);
    }
    return 0;
}

static int
SockOp_clear(SockOpObject *op)
{
    sockop_release(op);
    Py_CLEAR(op->loop);
    return 0;
}

static void
SockOp_dealloc(SockOpObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    SockOp_clear(op);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyObject *
SockOp_repr(SockOpObject *op)
{
    unsigned k = op->a.kind < SK_NKINDS ? op->a.kind : 0;
    if (op->fut == NULL) {
        return PyUnicode_FromFormat("<%s op finished>", op_names[k]);
    }
    return PyUnicode_FromFormat("<%s op fd=%d>", op_names[k], op->fd);
}

static PyMemberDef SockOp_members[] = {
    {"__vectorcalloffset__", EL_T_PYSSIZET,
     offsetof(SockOpObject, vectorcall), EL_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot SockOp_slots[] = {
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_dealloc, SockOp_dealloc},
    {Py_tp_traverse, SockOp_traverse},
    {Py_tp_clear, SockOp_clear},
    {Py_tp_repr, SockOp_repr},
    {Py_tp_members, SockOp_members},
    {0, NULL},
};

static PyType_Spec SockOp_spec = {
    .name = "eloop._eloop._SockOp",
    .basicsize = sizeof(SockOpObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
             | Py_TPFLAGS_HAVE_VECTORCALL
             | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = SockOp_slots,
};

/* ---- starting an operation --------------------------------------------- */

/* Try now; on EAGAIN make a SockOp, register it and return its future
 * (*pending set).  Takes over a's references. */
static PyObject *
start_op(LoopObject *self, sk_args *a, int *pending)
{
    int again;
    PyObject *res = sk_attempt(self->st, a, &again);
    if (res != NULL || !again) {
        sk_args_clear(a);
        return res;
    }
    SockOpObject *op = sockop_new(self, a);
    if (op == NULL) {
        return NULL;
    }
    PyObject *fut = sk_future_new(self);
    if (fut == NULL) {
        Py_DECREF(op);
        return NULL;
    }
    op->fut = Py_NewRef(fut);
    if (sockop_register(op) < 0) {
        sockop_release(op);
        Py_DECREF(op);
        Py_DECREF(fut);
        return NULL;
    }
    Py_DECREF(op);
    *pending = 1;
    return fut;
}

/* Validates the socket and fills in what every operation needs.  On error
 * returns -1 with the exception set and a to be cleared. */
static int
args_init(LoopObject *self, sk_args *a, int kind, PyObject *sock)
{
    memset(a, 0, sizeof(*a));
    a->kind = (unsigned char)kind;
    a->fd = -1;
    if (sk_check_sock(self, sock) < 0) {
        return -1;
    }
    a->sock = Py_NewRef(sock);
    if (Py_IS_TYPE(sock, (PyTypeObject *)self->st->sk.socket_socket)) {
        PyObject *fdobj = sock_fileno(self->st, sock, &a->fd);
        if (fdobj == NULL) {
            return -1;
        }
        Py_DECREF(fdobj);
        a->direct = 1;
    }
    return 0;
}

/* A Py_ssize_t size the socket module would accept, else -1 (the method
 * path then raises its own error). */
static Py_ssize_t
size_arg(PyObject *obj)
{
    PyObject *i = PyNumber_Index(obj);
    if (i == NULL) {
        PyErr_Clear();
        return -1;
    }
    Py_ssize_t n = PyLong_AsSsize_t(i);
    Py_DECREF(i);
    if (n == -1 && PyErr_Occurred()) {
        PyErr_Clear();
    }
    return n;
}

static PyObject *
fail_args(sk_args *a)
{
    sk_args_clear(a);
    return NULL;
}

/* The bodies of asyncio's `async def sock_*()` methods.  Each runs when
 * the coroutine object the method returned is first awaited (sock_coro.c)
 * and gets the bound arguments in v. */

static PyObject *
start_recv(LoopObject *self, PyObject *const *v, int *pending)
{
    sk_args a;
    if (args_init(self, &a, SK_RECV, v[0]) < 0) {
        return fail_args(&a);
    }
    a.arg = Py_NewRef(v[1]);
    if (a.direct && (a.n = size_arg(v[1])) < 0) {
        a.direct = 0;
    }
    return start_op(self, &a, pending);
}

static PyObject *
start_recv_into(LoopObject *self, PyObject *const *v, int *pending)
{
    sk_args a;
    if (args_init(self, &a, SK_RECV_INTO, v[0]) < 0) {
        return fail_args(&a);
    }
    a.arg = Py_NewRef(v[1]);
    return start_op(self, &a, pending);
}

static PyObject *
start_recvfrom(LoopObject *self, PyObject *const *v, int *pending)
{
    sk_args a;
    if (args_init(self, &a, SK_RECVFROM, v[0]) < 0) {
        return fail_args(&a);
    }
    a.arg = Py_NewRef(v[1]);
    if (a.direct && ((a.n = size_arg(v[1])) < 0
                     || (a.family = sk_direct_family(a.fd)) < 0)) {
        a.direct = 0;
    }
    return start_op(self, &a, pending);
}

static PyObject *
start_recvfrom_into(LoopObject *self, PyObject *const *v, int *pending)
{
    sk_args a;
    if (args_init(self, &a, SK_RECVFROM_INTO, v[0]) < 0) {
        return fail_args(&a);
    }
    a.arg = Py_NewRef(v[1]);
    /* if not nbytes: nbytes = len(buf) */
    int set = v[2] ? PyObject_IsTrue(v[2]) : 0;
    if (set < 0) {
        return fail_args(&a);
    }
    if (set) {
        a.arg2 = Py_NewRef(v[2]);
    }
    else {
        Py_ssize_t len = PyObject_Size(v[1]);
        if (len < 0 || (a.arg2 = PyLong_FromSsize_t(len)) == NULL) {
            return fail_args(&a);
        }
    }
    if (a.direct && ((a.n = size_arg(a.arg2)) < 0
                     || (a.family = sk_direct_family(a.fd)) < 0)) {
        a.direct = 0;
    }
    return start_op(self, &a, pending);
}

static PyObject *
start_sendall(LoopObject *self, PyObject *const *v, int *pending)
{
    sk_args a;
    if (args_init(self, &a, SK_SENDALL, v[0]) < 0) {
        return fail_args(&a);
    }
    a.arg = Py_NewRef(v[1]);
    if (a.direct) {
        /* Held until the operation ends, like asyncio's memoryview. */
        if (PyObject_GetBuffer(v[1], &a.view, PyBUF_SIMPLE) == 0) {
            a.has_view = 1;
        }
        else {
            PyErr_Clear();
            a.direct = 0;
        }
    }
    return start_op(self, &a, pending);
}

static PyObject *
start_sendto(LoopObject *self, PyObject *const *v, int *pending)
{
    sk_args a;
    if (args_init(self, &a, SK_SENDTO, v[0]) < 0) {
        return fail_args(&a);
    }
    a.direct = 0;   /* address parsing belongs to the socket module */
    a.arg = Py_NewRef(v[1]);
    a.arg2 = Py_NewRef(v[2]);
    return start_op(self, &a, pending);
}

static PyObject *
start_accept(LoopObject *self, PyObject *const *v, int *pending)
{
    sk_args a;
    if (args_init(self, &a, SK_ACCEPT, v[0]) < 0) {
        return fail_args(&a);
    }
    if (a.direct) {
        /* accept(2) cannot be told not to block: a blocking listening
         * socket takes the method path, which blocks as asyncio does. */
        int fl = fcntl(a.fd, F_GETFL);
        a.family = sk_direct_family(a.fd);
        a.type = sk_sock_int_option(a.fd, SO_TYPE);
        if (fl < 0 || !(fl & O_NONBLOCK) || a.family < 0 || a.type < 0) {
            a.direct = 0;
        }
    }
    if (a.direct) {
        PyObject *p = PyObject_GetAttrString(v[0], "proto");
        long proto = p ? PyLong_AsLong(p) : -1;
        Py_XDECREF(p);
        if (proto == -1 && PyErr_Occurred()) {
            return fail_args(&a);
        }
        a.proto = (int)proto;
    }
    return start_op(self, &a, pending);
}

/* ---- sock_connect ------------------------------------------------------- */

/* _sock_connect(fut, sock, address) */
static int
sockop_connect_start(SockOpObject *op, PyObject *address)
{
    eloop_state *st = op->loop->st;
    Py_XSETREF(op->a.arg, Py_NewRef(address));
    PyObject *fut = Py_NewRef(op->fut);
    int rc = 0;
    PyObject *r = PyObject_CallMethod(op->a.sock, "connect", "(O)", address);
    if (r != NULL) {
        rc = sk_future_finish(st, fut, r);
        Py_DECREF(r);
    }
    else if (sk_exc_would_block()) {
        /* In progress: wait until writable, then read SO_ERROR. */
        if (sockop_register(op) < 0) {
            rc = sk_is_fatal_pending() ? -1 : sk_future_finish(st, fut,
                                                               NULL);
        }
    }
    else if (sk_is_fatal_pending()) {
        rc = -1;
    }
    else {
        rc = sk_future_finish(st, fut, NULL);
    }
    Py_DECREF(fut);
    return rc;
}

/* host, port = address[:2], and the rest as a tuple, with Python's errors. */
static int
split_address(PyObject *address, PyObject **host, PyObject **port,
              PyObject **rest)
{
    PyObject *two = PyLong_FromLong(2);
    PyObject *s1 = two ? PySlice_New(NULL, two, NULL) : NULL;
    PyObject *s2 = s1 ? PySlice_New(two, NULL, NULL) : NULL;
    PyObject *head = s2 ? PyObject_GetItem(address, s1) : NULL;
    PyObject *t = head ? PySequence_Tuple(head) : NULL;
    PyObject *tail = t ? PyObject_GetItem(address, s2) : NULL;
    *rest = tail ? PySequence_Tuple(tail) : NULL;
    Py_XDECREF(two);
    Py_XDECREF(s1);
    Py_XDECREF(s2);
    Py_XDECREF(head);
    Py_XDECREF(tail);
    if (*rest == NULL) {
        Py_XDECREF(t);
        return -1;
    }
    if (PyTuple_GET_SIZE(t) != 2) {
        PyErr_Format(PyExc_ValueError,
                     PyTuple_GET_SIZE(t) < 2
                         ? "not enough values to unpack (expected 2, got %zd)"
                         : "too many values to unpack (expected 2)",
                     PyTuple_GET_SIZE(t));
        Py_DECREF(t);
        Py_CLEAR(*rest);
        return -1;
    }
    *host = Py_NewRef(PyTuple_GET_ITEM(t, 0));
    *port = Py_NewRef(PyTuple_GET_ITEM(t, 1));
    Py_DECREF(t);
    return 0;
}

/* The resolution step of asyncio's sock_connect() for AF_INET/AF_INET6:
 * _ensure_resolved().  Numeric addresses are answered by _ipaddr_info()
 * at once (returned in *resolved); others start loop.getaddrinfo() and
 * return its future in *pending. */
static int
connect_resolve(LoopObject *self, PyObject *sock, PyObject *family,
                PyObject *address, PyObject **resolved, PyObject **pending)
{
    PyObject *host = NULL, *port = NULL, *rest = NULL, *type = NULL;
    PyObject *proto = NULL, *argt = NULL, *info = NULL;
    int rc = -1;
    *resolved = *pending = NULL;
    type = PyObject_GetAttrString(sock, "type");
    proto = type ? PyObject_GetAttrString(sock, "proto") : NULL;
    if (proto == NULL || split_address(address, &host, &port, &rest) < 0) {
        goto done;
    }
    Py_ssize_t nrest = PyTuple_GET_SIZE(rest);
    argt = PyTuple_New(5 + nrest);
    if (argt == NULL) {
        goto done;
    }
    PyObject *items[5] = {host, port, family, type, proto};
    for (int i = 0; i < 5; i++) {
        PyTuple_SET_ITEM(argt, i, Py_NewRef(items[i]));
    }
    for (Py_ssize_t i = 0; i < nrest; i++) {
        PyTuple_SET_ITEM(argt, 5 + i, Py_NewRef(PyTuple_GET_ITEM(rest, i)));
    }
    info = PyObject_Call(self->st->sk.ipaddr_info, argt, NULL);
    if (info == NULL) {
        goto done;
    }
    if (info != Py_None) {
        /* "host" is already a resolved IP. */
        *resolved = PySequence_GetItem(info, 4);
        rc = *resolved ? 0 : -1;
        goto done;
    }
    PyObject *kwnames = Py_BuildValue("(ssss)", "family", "type", "proto",
                                      "flags");
    PyObject *zero = PyLong_FromLong(0);
    if (kwnames == NULL || zero == NULL) {
        Py_XDECREF(kwnames);
        Py_XDECREF(zero);
        goto done;
    }
    PyObject *cargs[7] = {(PyObject *)self, host, port, family, type, proto,
                          zero};
    PyObject *name = PyUnicode_FromString("getaddrinfo");
    PyObject *aw = name ? PyObject_VectorcallMethod(
        name, cargs, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, kwnames) : NULL;
    Py_XDECREF(name);
    Py_DECREF(kwnames);
    Py_DECREF(zero);
    if (aw == NULL) {
        goto done;
    }
    /* A subclass may return a coroutine: make it a future. */
    PyObject *ea[2] = {aw, (PyObject *)self};
    *pending = PyObject_Vectorcall(self->st->ensure_future, ea, 1,
                                   self->st->kw_loop);
    Py_DECREF(aw);
    rc = *pending ? 0 : -1;
done:
    Py_XDECREF(host);
    Py_XDECREF(port);
    Py_XDECREF(rest);
    Py_XDECREF(type);
    Py_XDECREF(proto);
    Py_XDECREF(argt);
    Py_XDECREF(info);
    return rc;
}

static PyObject *
start_connect(LoopObject *self, PyObject *const *v, int *pending)
{
    sk_args a;
    if (args_init(self, &a, SK_CONNECT, v[0]) < 0) {
        return fail_args(&a);
    }
    PyObject *address = Py_NewRef(v[1]), *resolving = NULL;
    PyObject *family = PyObject_GetAttrString(v[0], "family");
    if (family == NULL) {
        Py_DECREF(address);
        return fail_args(&a);
    }
    long fam = PyLong_Check(family) ? PyLong_AsLong(family) : -1;
    PyErr_Clear();
    if (fam == AF_INET || fam == AF_INET6) {
        PyObject *resolved;
        int rc = connect_resolve(self, v[0], family, address, &resolved,
                                 &resolving);
        Py_DECREF(address);
        address = resolved;
        if (rc < 0) {
            Py_DECREF(family);
            return fail_args(&a);
        }
    }
    Py_DECREF(family);
    SockOpObject *op = sockop_new(self, &a);
    PyObject *fut = op ? sk_future_new(self) : NULL;
    if (fut == NULL) {
        Py_XDECREF(op);
        Py_XDECREF(address);
        Py_XDECREF(resolving);
        return NULL;
    }
    op->fut = Py_NewRef(fut);
    int rc;
    if (resolving != NULL) {
        /* Continue in sockop_resolved(); cancelling fut cancels the
         * lookup, as cancelling asyncio's coroutine would. */
        op->resolving = resolving;
        rc = sockop_add_done_callback(op, resolving);
        if (rc == 0) {
            rc = sockop_add_done_callback(op, fut);
            op->done_cb = rc == 0;
        }
    }
    else {
        rc = sockop_connect_start(op, address);
        Py_DECREF(address);
    }
    if (op->fut != NULL && !op->done_cb && op->resolving == NULL
        && op->handle == NULL) {
        sockop_release(op);     /* finished at once */
    }
    Py_DECREF(op);
    if (rc < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    /* Done or not, the future holds the outcome. */
    *pending = 1;
    return fut;
}

/* ---- the methods and the module state ---------------------------------- */

/* Each method binds its arguments as the Python signature would (errors
 * are raised at call time, as for a coroutine function) and returns a
 * coroutine object; the operation starts when it is awaited. */
#define SOCK_METHOD(pyname, fn, starter, nnames, npos, nreq, ...)          \
    static const sk_coro_def fn##_def = {"Loop." pyname, starter, nnames}; \
    static PyObject *                                                      \
    fn(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,         \
       PyObject *kwnames)                                                  \
    {                                                                      \
        static const char *const names[] = {__VA_ARGS__};                  \
        PyObject *v[nnames];                                               \
        if (sk_bind_args(pyname, args, nargsf, kwnames, names, nnames,     \
                         npos, nreq, v) < 0) {                             \
            return NULL;                                                   \
        }                                                                  \
        return sk_coro_new(self, &fn##_def, v);                            \
    }

SOCK_METHOD("sock_recv", loop_sock_recv, start_recv, 2, 2, 2, "sock", "n")
SOCK_METHOD("sock_recv_into", loop_sock_recv_into, start_recv_into, 2, 2, 2,
            "sock", "buf")
SOCK_METHOD("sock_recvfrom", loop_sock_recvfrom, start_recvfrom, 2, 2, 2,
            "sock", "bufsize")
SOCK_METHOD("sock_recvfrom_into", loop_sock_recvfrom_into,
            start_recvfrom_into, 3, 3, 2, "sock", "buf", "nbytes")
SOCK_METHOD("sock_sendall", loop_sock_sendall, start_sendall, 2, 2, 2,
            "sock", "data")
SOCK_METHOD("sock_sendto", loop_sock_sendto, start_sendto, 3, 3, 3, "sock",
            "data", "address")
SOCK_METHOD("sock_connect", loop_sock_connect, start_connect, 2, 2, 2,
            "sock", "address")
SOCK_METHOD("sock_accept", loop_sock_accept, start_accept, 1, 1, 1, "sock")
SOCK_METHOD("getaddrinfo", loop_getaddrinfo, sk_start_getaddrinfo, 6, 2, 2,
            "host", "port", "family", "type", "proto", "flags")
SOCK_METHOD("getnameinfo", loop_getnameinfo, sk_start_getnameinfo, 2, 2, 1,
            "sockaddr", "flags")

#define FASTKW(name, fn)                                                    \
    {name, (PyCFunction)(void (*)(void))fn,                                 \
     METH_FASTCALL | METH_KEYWORDS, NULL}

PyMethodDef Loop_sock_methods[] = {
    FASTKW("sock_recv", loop_sock_recv),
    FASTKW("sock_recv_into", loop_sock_recv_into),
    FASTKW("sock_recvfrom", loop_sock_recvfrom),
    FASTKW("sock_recvfrom_into", loop_sock_recvfrom_into),
    FASTKW("sock_sendall", loop_sock_sendall),
    FASTKW("sock_sendto", loop_sock_sendto),
    FASTKW("sock_connect", loop_sock_connect),
    FASTKW("sock_accept", loop_sock_accept),
    FASTKW("getaddrinfo", loop_getaddrinfo),
    FASTKW("getnameinfo", loop_getnameinfo),
    {"_start_serving", (PyCFunction)(void (*)(void))loop_start_serving,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"_stop_serving", (PyCFunction)loop_stop_serving, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static int
intern(PyObject **dst, const char *s)
{
    *dst = PyUnicode_InternFromString(s);
    return *dst ? 0 : -1;
}

int
sock_state_init(PyObject *mod, eloop_state *st)
{
    st->sk.SockOpType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &SockOp_spec, NULL);
    if (st->sk.SockOpType == NULL
        || sock_server_init_type(mod, st) < 0
        || sock_coro_init_type(mod, st) < 0
        || eloop_import_attr(&st->sk.socket_socket, "socket", "socket") < 0
        || eloop_import_attr(&st->sk.raw_socket, "_socket", "socket") < 0
        || (st->sk.raw_family = PyObject_GetAttrString(
                st->sk.raw_socket, "family")) == NULL
        || (st->sk.raw_type = PyObject_GetAttrString(
                st->sk.raw_socket, "type")) == NULL
        || (st->sk.raw_proto = PyObject_GetAttrString(
                st->sk.raw_socket, "proto")) == NULL
        || (st->sk.raw_fileno = PyObject_GetAttrString(
                st->sk.raw_socket, "fileno")) == NULL
        || eloop_import_attr(&st->sk.getaddrinfo, "socket", "getaddrinfo") < 0
        || eloop_import_attr(&st->sk.getnameinfo, "socket", "getnameinfo") < 0
        || eloop_import_attr(&st->sk.TransportSocket, "asyncio.trsock",
                       "TransportSocket") < 0
        || eloop_import_attr(&st->sk.ipaddr_info, "asyncio.base_events",
                       "_ipaddr_info") < 0
        || eloop_import_attr(&st->sk.constants, "asyncio.constants", NULL) < 0
        || intern(&st->sk.str_fileno, "fileno") < 0
        || intern(&st->sk.str_create_future, "create_future") < 0
        || intern(&st->sk.str_set_result, "set_result") < 0
        || intern(&st->sk.str_set_exception, "set_exception") < 0
        || intern(&st->sk.str_done, "done") < 0
        || intern(&st->sk.str_add_done_callback, "add_done_callback") < 0) {
        return -1;
    }
    /* asyncio.base_events imports ssl optionally; so do we. */
    PyObject *ssl = NULL;
    if (eloop_import_attr(&ssl, "asyncio.base_events", "ssl") < 0) {
        return -1;
    }
    if (ssl != Py_None) {
        st->sk.SSLSocket = PyObject_GetAttrString(ssl, "SSLSocket");
        if (st->sk.SSLSocket == NULL) {
            Py_DECREF(ssl);
            return -1;
        }
    }
    Py_DECREF(ssl);
    return 0;
}

#define SK_FIELDS(X)                                                        \
    X(SockOpType) X(AcceptorType) X(SockCoroType) X(socket_socket)          \
    X(getaddrinfo) X(raw_socket) X(raw_family) X(raw_type) X(raw_proto)     \
    X(raw_fileno)                                                           \
    X(getnameinfo) X(SSLSocket) X(TransportSocket) X(ipaddr_info)           \
    X(constants) X(str_fileno) X(str_create_future) X(str_set_result)       \
    X(str_set_exception) X(str_done) X(str_add_done_callback) X(af_inet)    \
    X(af_inet6) X(sock_kinds[0]) X(sock_kinds[1]) X(sock_kinds[2]) X(zero)

int
sock_state_traverse(eloop_state *st, visitproc visit, void *arg)
{
#define VISIT(f) Py_VISIT(st->sk.f);
    SK_FIELDS(VISIT)
#undef VISIT
    return 0;
}

void
sock_state_clear(eloop_state *st)
{
#define CLEAR(f) Py_CLEAR(st->sk.f);
    SK_FIELDS(CLEAR)
#undef CLEAR
}
