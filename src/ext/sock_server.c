/*
 * sock_server.c -- name resolution (getaddrinfo, getnameinfo) and the
 * accept loop of servers (_start_serving, _stop_serving), with the
 * semantics of asyncio's base_events.py and selector_events.py.
 *
 * Resolution runs socket.getaddrinfo()/getnameinfo() in the default
 * executor, as asyncio does.  One exception: a request the resolver
 * answers without any lookup -- an IPv4/IPv6 literal (or no host) and a
 * numeric port; getnameinfo() with NI_NUMERICHOST | NI_NUMERICSERV -- is
 * answered right here, which saves two thread hops.  The common numeric
 * getaddrinfo() answers are built in C (see numeric_answer()); the rest
 * call socket.getaddrinfo()/getnameinfo() here, the identical result by
 * construction.  Anything that could touch /etc/hosts, DNS or
 * /etc/services still goes to the executor.
 *
 * The accept loop: _start_serving() registers an Acceptor (a C callable)
 * as the listening socket's reader.  Per readable event it accepts up to
 * `backlog` connections and, for each, schedules with call_soon() the
 * creation of the protocol and transport -- in the next iteration, which
 * is when asyncio's _accept_connection2() task runs them -- through the
 * loop's _make_socket_transport(), looked up by name so that this file
 * does not depend on the transport's C symbols.
 *
 * Differences from asyncio, all deliberate:
 *   - No Task per connection: protocol_factory() and the transport are
 *     created from a plain callback, and the transport gets waiter=None
 *     (asyncio awaits a waiter that plain transports always resolve).
 *     Errors are reported as asyncio reports them: only in debug mode.
 *   - Out of file descriptors (EMFILE and friends), asyncio keeps calling
 *     accept() up to `backlog` times, logging and re-arming a retry timer
 *     each time; we log once, stop, and retry once after
 *     ACCEPT_RETRY_DELAY.
 *
 * A TLS server's connections follow asyncio's _accept_connection2() the
 * same way, without its Task: the protocol, a waiter and the TLS
 * transport (the loop's _make_ssl_transport()) are made from the plain
 * callback, and what the Task does after `await waiter` (close the
 * transport if the handshake failed, report it in debug mode) runs from
 * the waiter's done callback, queued at the same point as the Task's
 * wake-up would be.
 */
#include "state.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

#include "sock.h"

/* ---- name resolution ---------------------------------------------------- */

/* The bytes the resolver gets for an ASCII str or a bytes object (what
 * socket.getaddrinfo() passes on for either), copied into buf as a C
 * string.  0 for anything else, or if empty, too long or holding a NUL. */
static int
c_string(PyObject *o, char *buf, size_t size)
{
    const char *s;
    Py_ssize_t len;
    if (PyUnicode_Check(o) && PyUnicode_IS_ASCII(o)) {
        /* Compact ASCII: the UTF-8 form is the data itself. */
        s = PyUnicode_AsUTF8AndSize(o, &len);
        if (s == NULL) {
            PyErr_Clear();
            return 0;
        }
    }
    else if (PyBytes_Check(o)) {
        s = PyBytes_AS_STRING(o);
        len = PyBytes_GET_SIZE(o);
    }
    else {
        return 0;
    }
    if (len == 0 || (size_t)len >= size
        || memchr(s, '\0', (size_t)len) != NULL) {
        return 0;
    }
    memcpy(buf, s, (size_t)len);
    buf[len] = '\0';
    return 1;
}

/* AF_INET or AF_INET6 if buf is an address literal that glibc's
 * getaddrinfo() parses as inet_pton() does (with the address in addr),
 * else 0.  A scope id ("%lo") is not part of it. */
static int
parse_address(const char *buf, void *addr)
{
    if (inet_pton(AF_INET, buf, addr) == 1) {
        return AF_INET;
    }
    return strchr(buf, ':') != NULL && inet_pton(AF_INET6, buf, addr) == 1
               ? AF_INET6 : 0;
}

/* True if the resolver answers `host` without a lookup: no host, or an
 * IPv4 dotted quad, or an IPv6 literal with an optional numeric scope (or
 * the name of an existing interface, for link-local addresses).  glibc
 * accepts more numeric forms ("127.1"); those take the executor path,
 * which is only slower. */
static int
host_is_numeric(PyObject *host)
{
    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    struct in6_addr a6;
    if (host == Py_None) {
        return 1;
    }
    if (!c_string(host, buf, sizeof(buf))) {
        return 0;
    }
    char *scope = strchr(buf, '%');
    if (scope != NULL) {
        *scope++ = '\0';
    }
    int af = parse_address(buf, &a6);
    if (scope == NULL || af != AF_INET6) {
        return af != 0 && scope == NULL;
    }
    if (*scope == '\0') {
        return 0;
    }
    size_t ndigits = strspn(scope, "0123456789");
    if (scope[ndigits] == '\0') {
        return ndigits <= 9;    /* fits a uint32_t scope id */
    }
    /* glibc resolves interface names only for link-local scopes. */
    return (IN6_IS_ADDR_LINKLOCAL(&a6) || IN6_IS_ADDR_MC_LINKLOCAL(&a6))
           && if_nametoindex(scope) != 0;
}

/* The value of a str/bytes port of 1 to 5 decimal digits (glibc wraps
 * values above 65535 without a lookup), or -1 if it is not one. */
static long
digits_port(PyObject *port)
{
    char buf[6];
    if (!c_string(port, buf, sizeof(buf))) {
        return -1;
    }
    long v = 0;
    for (const char *c = buf; *c != '\0'; c++) {
        if (*c < '0' || *c > '9') {
            return -1;
        }
        v = v * 10 + (*c - '0');
    }
    return v;
}

/* True if `port` needs no /etc/services lookup. */
static int
port_is_numeric(PyObject *port)
{
    return port == Py_None || PyLong_Check(port) || digits_port(port) >= 0;
}

static int
answer_here(PyObject *const *v)
{
    for (int i = 2; i < 6; i++) {
        if (!PyLong_Check(v[i])) {
            return 0;
        }
    }
    long flags = PyLong_AsLong(v[5]);
    if (flags == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    /* AI_CANONNAME may ask the resolver for a name: leave it to a thread. */
    return !(flags & AI_CANONNAME) && host_is_numeric(v[0])
           && port_is_numeric(v[1]);
}

/* self.run_in_executor(None, func, *args) */
static PyObject *
run_in_default_executor(LoopObject *self, PyObject *func,
                        PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *call[8];
    PyObject *meth = PyObject_GetAttrString((PyObject *)self,
                                            "run_in_executor");
    if (meth == NULL) {
        return NULL;
    }
    call[0] = Py_None;
    call[1] = func;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        call[2 + i] = args[i];
    }
    PyObject *r = PyObject_Vectorcall(meth, call, 2 + nargs, NULL);
    Py_DECREF(meth);
    return r;
}

/* ---- numeric answers built here ---------------------------------------- */

/* The common case -- an IPv4/IPv6 literal, a numeric port, a plain
 * family/type/proto and no flag that changes the answer -- is answered
 * without calling the resolver at all: the result is built here as
 * socket.getaddrinfo() builds it from glibc's answer, with the same enum
 * members, the same (type, proto) entries in glibc's order and the same
 * sockaddr tuples.  Everything else (None host, scope ids, service names,
 * odd protocols, AI_ADDRCONFIG, AI_CANONNAME, ...) takes the paths above,
 * which call the real function.  tests/test_getaddrinfo.py checks the
 * equivalence over a matrix of inputs. */

/* glibc's (type, proto) entries for a numeric host, in its order; a type
 * of 0 with a proto of 0 gives all three (RAW included, even with a
 * port). */
static const struct {
    int type, proto;
} gai_kinds[3] = {
    {SOCK_STREAM, IPPROTO_TCP}, {SOCK_DGRAM, IPPROTO_UDP}, {SOCK_RAW, 0},
};

/* The port glibc uses for what socket.getaddrinfo() passes it: None
 * (0), an exact int (printed with "%ld"; a subclass is an OSError there),
 * or a str/bytes of digits.  -1 where the general path must decide
 * (service names, signs, spaces, ports that glibc would wrap). */
static long
numeric_port(PyObject *port)
{
    if (port == Py_None) {
        return 0;
    }
    long v;
    if (PyLong_CheckExact(port)) {
        int overflow;
        v = PyLong_AsLongAndOverflow(port, &overflow);
    }
    else {
        v = digits_port(port);
    }
    return v >= 0 && v <= 65535 ? v : -1;
}

/* The C long in an int argument (family/type/proto/flags, which
 * socket.getaddrinfo() reads as C ints), or 0 with *ok cleared. */
static long
int_arg(PyObject *o, int *ok)
{
    if (!PyLong_Check(o)) {
        *ok = 0;
        return 0;
    }
    int overflow;
    long v = PyLong_AsLongAndOverflow(o, &overflow);
    if (overflow || v < INT_MIN || v > INT_MAX) {
        *ok = 0;
    }
    return v;
}

/* The answer to getaddrinfo(*v) built here (new reference), or NULL
 * without an exception if it must come from the resolver, or NULL with
 * one on failure. */
static PyObject *
numeric_answer(eloop_state *st, PyObject *const *v)
{
    int ok = 1;
    long family = int_arg(v[2], &ok);
    long type = int_arg(v[3], &ok);
    long proto = int_arg(v[4], &ok);
    long flags = int_arg(v[5], &ok);
    if (!ok || (flags & ~(long)(AI_PASSIVE | AI_NUMERICHOST
                                | AI_NUMERICSERV)) != 0) {
        return NULL;
    }
    /* The entries of gai_kinds[] in the answer: all three, or the one
     * that type or proto selects. */
    int first = 0, count = 1;
    if (type == 0 && proto == 0) {
        count = 3;
    }
    else if (type == 0 && (proto == IPPROTO_TCP || proto == IPPROTO_UDP)) {
        first = proto == IPPROTO_UDP;
    }
    else if (type == SOCK_STREAM || type == SOCK_DGRAM) {
        first = type == SOCK_DGRAM;
        if (proto != 0 && proto != gai_kinds[first].proto) {
            return NULL;
        }
    }
    else {
        return NULL;
    }
    long port = numeric_port(v[1]);
    char buf[INET6_ADDRSTRLEN];
    unsigned char addr[16];
    int af = port >= 0 && v[0] != Py_None && c_string(v[0], buf, sizeof(buf))
                 ? parse_address(buf, addr) : 0;
    if (af == 0 || (family != AF_UNSPEC && family != af)) {
        return NULL;
    }

    PyObject *text;
    if (af == AF_INET && PyUnicode_CheckExact(v[0])) {
        /* inet_pton() takes only canonical dotted quads (no leading
         * zeros), which is what socket.getaddrinfo() would print. */
        text = Py_NewRef(v[0]);
    }
    else {
        if (inet_ntop(af, addr, buf, sizeof(buf)) == NULL) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        text = PyUnicode_FromString(buf);
    }
    PyObject *portobj = text ? PyLong_FromLong(port) : NULL;
    PyObject *sa = NULL, *canon = NULL, *list = NULL;
    if (portobj != NULL) {
        sa = af == AF_INET ? PyTuple_Pack(2, text, portobj)
                           : PyTuple_Pack(4, text, portobj, st->sk.zero,
                                          st->sk.zero);
    }
    canon = sa ? PyUnicode_FromStringAndSize("", 0) : NULL;
    list = canon ? PyList_New(count) : NULL;
    PyObject *famobj = af == AF_INET ? st->sk.af_inet : st->sk.af_inet6;
    for (int i = 0; list != NULL && i < count; i++) {
        PyObject *protoobj = PyLong_FromLong(gai_kinds[first + i].proto);
        PyObject *item = protoobj ? PyTuple_Pack(
            5, famobj, st->sk.sock_kinds[first + i], protoobj, canon, sa)
            : NULL;
        Py_XDECREF(protoobj);
        if (item == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, item);
    }
    Py_XDECREF(text);
    Py_XDECREF(portobj);
    Py_XDECREF(sa);
    Py_XDECREF(canon);
    return list;
}

/* What run_in_executor() checks before anything runs, so that answers
 * given here fail as asyncio's would. */
static int
executor_checks(LoopObject *self)
{
    if (loop_check_closed(self) < 0) {
        return -1;
    }
    if (self->executor_shutdown_called) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Executor shutdown has been called");
        return -1;
    }
    return 0;
}

/* The body of asyncio's getaddrinfo(): v holds host, port, family, type,
 * proto, flags (NULL when omitted). */
PyObject *
sk_start_getaddrinfo(LoopObject *self, PyObject *const *args, int *pending)
{
    PyObject *v[6];
    for (int i = 0; i < 6; i++) {
        v[i] = args[i] ? args[i] : self->st->sk.zero;
    }
    if (self->debug) {
        /* Timed and logged by asyncio's own _getaddrinfo_debug(). */
        PyObject *func = PyObject_GetAttrString((PyObject *)self,
                                                "_getaddrinfo_debug");
        PyObject *r = func ? run_in_default_executor(self, func, v, 6) : NULL;
        Py_XDECREF(func);
        *pending = r != NULL;
        return r;
    }
    if (executor_checks(self) < 0) {
        return NULL;
    }
    PyObject *r = numeric_answer(self->st, v);
    if (r != NULL || PyErr_Occurred()) {
        return r;
    }
    if (answer_here(v)) {
        /* No lookup either, but an answer this file does not build. */
        return PyObject_Vectorcall(self->st->sk.getaddrinfo, v, 6, NULL);
    }
    r = run_in_default_executor(self, self->st->sk.getaddrinfo, v, 6);
    *pending = r != NULL;
    return r;
}

/* The body of asyncio's getnameinfo(sockaddr, flags=0).  With
 * NI_NUMERICHOST and NI_NUMERICSERV the call makes no lookup (glibc
 * formats the address and port), so it is made here, as numeric
 * getaddrinfo() calls are. */
PyObject *
sk_start_getnameinfo(LoopObject *self, PyObject *const *args, int *pending)
{
    PyObject *v[2] = {args[0], args[1] ? args[1] : self->st->sk.zero};
    int ok = 1;
    long flags = int_arg(v[1], &ok);
    if (ok && (flags & (NI_NUMERICHOST | NI_NUMERICSERV))
                  == (NI_NUMERICHOST | NI_NUMERICSERV)) {
        return executor_checks(self) < 0
                   ? NULL
                   : PyObject_Vectorcall(self->st->sk.getnameinfo, v, 2,
                                         NULL);
    }
    PyObject *r = run_in_default_executor(self, self->st->sk.getnameinfo, v,
                                          2);
    *pending = r != NULL;
    return r;
}

/* ---- the accept loop ---------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    LoopObject *loop;               /* strong, like every field below */
    PyObject *protocol_factory;
    PyObject *sock;                 /* the listening socket */
    PyObject *sslcontext;
    PyObject *server;
    PyObject *backlog;
    PyObject *hs_timeout;           /* passed back to _start_serving() */
    PyObject *sd_timeout;           /* when accepting is retried */
    PyObject *tls_kwnames;          /* TLS: _make_ssl_transport()'s
                                       keywords, made once */
    Py_ssize_t nbacklog;            /* accepts per readable event */
    int fd;
    int family;                     /* direct path: the listener's */
    int type;                       /* family, type and proto, which */
    int proto;                      /* accepted sockets inherit */
    char direct;                    /* accept4() here (see sock.c) */
    char tls;                       /* sslcontext is true */
} AcceptorObject;

static int
out_of_resources(PyObject *exc)
{
    if (!PyErr_GivenExceptionMatches(exc, PyExc_OSError)) {
        return 0;
    }
    PyObject *eno = PyObject_GetAttrString(exc, "errno");
    long e = eno && PyLong_Check(eno) ? PyLong_AsLong(eno) : 0;
    Py_XDECREF(eno);
    PyErr_Clear();
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

/* Out of resources: report, stop accepting, and retry later by calling
 * _start_serving() again, as asyncio does (Linux keeps reporting the
 * listening fd as readable, so staying registered would spin). */
static int
acceptor_pause(AcceptorObject *acc, PyObject *exc)
{
    LoopObject *loop = acc->loop;
    eloop_state *st = loop->st;
    PyObject *tsock = PyObject_CallOneArg(st->sk.TransportSocket, acc->sock);
    PyObject *ctx = tsock ? Py_BuildValue(
        "{sssOsO}", "message", "socket.accept() out of system resource",
        "exception", exc, "socket", tsock) : NULL;
    Py_XDECREF(tsock);
    if (ctx == NULL) {
        return -1;
    }
    int rc = loop_call_exception_handler(loop, ctx);
    Py_DECREF(ctx);
    if (rc < 0) {
        return -1;
    }
    PyObject *fdobj = PyObject_CallMethodNoArgs(acc->sock,
                                                st->sk.str_fileno);
    PyObject *r = fdobj ? loop_remove_reader(loop, fdobj) : NULL;
    Py_XDECREF(fdobj);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    PyObject *delay = PyObject_GetAttrString(st->sk.constants,
                                             "ACCEPT_RETRY_DELAY");
    PyObject *start = delay ? PyObject_GetAttrString((PyObject *)loop,
                                                     "_start_serving") : NULL;
    r = start ? PyObject_CallMethod(
        (PyObject *)loop, "call_later", "OOOOOOOOO", delay, start,
        acc->protocol_factory, acc->sock, acc->sslcontext, acc->server,
        acc->backlog, acc->hs_timeout, acc->sd_timeout) : NULL;
    Py_XDECREF(delay);
    Py_XDECREF(start);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* The listening socket is readable: asyncio's _accept_connection(). */
static PyObject *
acceptor_ready(AcceptorObject *acc)
{
    LoopObject *loop = acc->loop;
    eloop_state *st = loop->st;
    for (Py_ssize_t i = 0; i < acc->nbacklog; i++) {
        int again = 0;
        PyObject *pair = acc->direct
                             ? sk_accept_direct(st, acc->fd, acc->family,
                                                acc->type, acc->proto,
                                                &again)
                             : sk_accept_generic(acc->sock, &again);
        if (pair == NULL) {
            if (again) {
                break;  /* the accept queue is empty */
            }
            if (PyErr_ExceptionMatches(PyExc_ConnectionAbortedError)) {
                PyErr_Clear();
                break;
            }
            if (!PyErr_ExceptionMatches(PyExc_OSError)) {
                return NULL;
            }
            PyObject *exc = el_fetch_exc();
            if (!out_of_resources(exc)) {
                /* The handle reports it: "Exception in callback ...". */
                el_restore_exc(exc);
                return NULL;
            }
            int rc = acceptor_pause(acc, exc);
            Py_DECREF(exc);
            if (rc < 0) {
                return NULL;
            }
            break;
        }
        PyObject *conn = PyTuple_GET_ITEM(pair, 0);
        PyObject *addr = PyTuple_GET_ITEM(pair, 1);
        if (loop->debug) {
            PyObject *r = PyObject_CallMethod(
                st->logger, "debug", "sOOO",
                "%r got a new connection from %r: %r", acc->server, addr,
                conn);
            if (r == NULL) {
                Py_DECREF(pair);
                return NULL;
            }
            Py_DECREF(r);
        }
        /* The protocol and transport are made in the next iteration, when
         * asyncio's _accept_connection2() task would first run. */
        HandleObject *h = handle_new(loop, (PyObject *)acc,
                                     &PyTuple_GET_ITEM(pair, 0), 2, NULL);
        Py_DECREF(pair);
        if (h == NULL) {
            return NULL;
        }
        int rc = loop_push_ready(loop, h);
        Py_DECREF(h);
        if (rc < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

/* "Error on transport creation for incoming connection", as asyncio's
 * _accept_connection2() reports it: in debug mode only.  Takes exc. */
static int
report_setup_error(LoopObject *loop, PyObject *exc, PyObject *protocol,
                   PyObject *transport)
{
    int rc = 0;
    if (loop->debug) {
        PyObject *ctx = Py_BuildValue(
            "{sssO}", "message",
            "Error on transport creation for incoming connection",
            "exception", exc);
        if (ctx != NULL && protocol != NULL
            && PyDict_SetItemString(ctx, "protocol", protocol) < 0) {
            Py_CLEAR(ctx);
        }
        if (ctx != NULL && transport != NULL
            && PyDict_SetItemString(ctx, "transport", transport) < 0) {
            Py_CLEAR(ctx);
        }
        rc = ctx ? loop_call_exception_handler(loop, ctx) : -1;
        Py_XDECREF(ctx);
    }
    Py_DECREF(exc);
    return rc;
}

/* The rest of asyncio's _accept_connection2() once its `await waiter`
 * returns or raises: the TLS waiter's done callback.  Bound to the tuple
 * (loop, protocol, transport). */
static PyObject *
tls_waiter_done(PyObject *bound, PyObject *waiter)
{
    LoopObject *loop = (LoopObject *)PyTuple_GET_ITEM(bound, 0);
    PyObject *protocol = PyTuple_GET_ITEM(bound, 1);
    PyObject *transport = PyTuple_GET_ITEM(bound, 2);
    PyObject *r = PyObject_CallMethod(waiter, "result", NULL);
    if (r != NULL) {
        /* It's now up to the protocol to handle the connection. */
        Py_DECREF(r);
        Py_RETURN_NONE;
    }
    PyObject *exc = el_fetch_exc();
    r = PyObject_CallMethod(transport, "close", NULL);
    if (r == NULL) {
        /* raised in asyncio's `except` block: the new one goes on, with
         * the waiter's as its context */
        PyObject *exc2 = el_fetch_exc();
        PyException_SetContext(exc2, exc);
        exc = exc2;
    }
    Py_XDECREF(r);
    el_restore_exc(exc);
    if (sk_is_fatal_pending()) {
        return NULL;
    }
    return report_setup_error(loop, el_fetch_exc(), protocol, transport) < 0
               ? NULL
               : Py_NewRef(Py_None);
}

static PyMethodDef tls_waiter_done_def = {
    "_accept_connection2_waiter_done", tls_waiter_done, METH_O, NULL};

/* A new connection to a TLS server: asyncio's _accept_connection2()
 * without its Task.  The Task would run this in the next iteration (so
 * do we: the caller is the handle acceptor_ready() queued, in a copy of
 * the context, as a Task's), then suspend on the handshake's waiter and
 * resume from the waiter's done callback; tls_waiter_done() is that
 * callback, added where the Task would add its own, so what follows the
 * handshake runs in the same order. */
static PyObject *
acceptor_setup_tls(AcceptorObject *acc, PyObject *conn, PyObject *addr)
{
    LoopObject *loop = acc->loop;
    PyObject *transport = NULL, *waiter = NULL, *r = NULL;
    PyObject *protocol = PyObject_CallNoArgs(acc->protocol_factory);
    if (protocol != NULL) {
        waiter = sk_future_new(loop);
    }
    if (waiter != NULL) {
        PyObject *meth = PyObject_GetAttrString((PyObject *)loop,
                                                "_make_ssl_transport");
        PyObject *extra = meth ? Py_BuildValue("{sO}", "peername", addr)
                               : NULL;
        /* keywords as in acc->tls_kwnames */
        PyObject *args[10] = {NULL, conn, protocol, acc->sslcontext,
                              waiter, Py_True, extra, acc->server,
                              acc->hs_timeout, acc->sd_timeout};
        transport = extra ? PyObject_Vectorcall(
                                meth, args + 1,
                                3 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                acc->tls_kwnames)
                          : NULL;
        Py_XDECREF(extra);
        Py_XDECREF(meth);
    }
    if (transport != NULL) {
        PyObject *bound = PyTuple_Pack(3, (PyObject *)loop, protocol,
                                       transport);
        PyObject *cb = bound ? PyCFunction_New(&tls_waiter_done_def, bound)
                             : NULL;
        Py_XDECREF(bound);
        r = cb ? PyObject_CallMethodOneArg(
                     waiter, loop->st->sk.str_add_done_callback, cb)
               : NULL;
        Py_XDECREF(cb);
    }
    Py_XDECREF(waiter);
    if (r == NULL && !sk_is_fatal_pending()) {
        r = report_setup_error(loop, el_fetch_exc(), protocol, transport) < 0
                ? NULL
                : Py_NewRef(Py_None);
    }
    Py_XDECREF(transport);
    Py_XDECREF(protocol);
    return r;
}

/* A new connection: the body of asyncio's _accept_connection2(). */
static PyObject *
acceptor_setup(AcceptorObject *acc, PyObject *conn, PyObject *addr)
{
    if (acc->tls) {
        return acceptor_setup_tls(acc, conn, addr);
    }
    LoopObject *loop = acc->loop;
    PyObject *transport = NULL, *extra = NULL, *meth = NULL;
    PyObject *protocol = PyObject_CallNoArgs(acc->protocol_factory);
    if (protocol != NULL) {
        meth = PyObject_GetAttrString((PyObject *)loop,
                                      "_make_socket_transport");
    }
    if (meth != NULL && transport_factory_is_ours(loop, meth)) {
        /* Lets the transport keep the peer address in C (see
         * TransportObject.peername). */
        transport = transport_new_accepted(loop, conn, protocol, addr,
                                           acc->server);
    }
    else if (meth != NULL) {
        extra = Py_BuildValue("{sO}", "peername", addr);
        PyObject *kwnames = extra ? Py_BuildValue("(sss)", "waiter", "extra",
                                                  "server") : NULL;
        PyObject *args[6] = {NULL, conn, protocol, Py_None, extra,
                             acc->server};
        transport = kwnames ? PyObject_Vectorcall(
                                  meth, args + 1,
                                  2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                  kwnames)
                            : NULL;
        Py_XDECREF(kwnames);
    }
    Py_XDECREF(meth);
    Py_XDECREF(extra);
    if (transport != NULL) {
        /* It's now up to the protocol to handle the connection. */
        Py_DECREF(transport);
        Py_DECREF(protocol);
        Py_RETURN_NONE;
    }
    if (sk_is_fatal_pending()) {
        Py_XDECREF(protocol);
        return NULL;
    }
    int rc = report_setup_error(loop, el_fetch_exc(), protocol, NULL);
    Py_XDECREF(protocol);
    return rc < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *
Acceptor_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                    PyObject *kwnames)
{
    AcceptorObject *acc = (AcceptorObject *)self;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *r;
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        PyErr_SetString(PyExc_TypeError,
                        "acceptor takes no keyword arguments");
        return NULL;
    }
    Py_INCREF(acc);
    if (nargs == 0) {
        r = acceptor_ready(acc);
    }
    else if (nargs == 2) {
        r = acceptor_setup(acc, args[0], args[1]);
    }
    else {
        PyErr_SetString(PyExc_TypeError, "acceptor takes 0 or 2 arguments");
        r = NULL;
    }
    Py_DECREF(acc);
    return r;
}

static int
Acceptor_traverse(AcceptorObject *acc, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(acc));
    Py_VISIT(acc->loop);
    Py_VISIT(acc->protocol_factory);
    Py_VISIT(acc->sock);
    Py_VISIT(acc->sslcontext);
    Py_VISIT(acc->server);
    Py_VISIT(acc->backlog);
    Py_VISIT(acc->hs_timeout);
    Py_VISIT(acc->sd_timeout);
    Py_VISIT(acc->tls_kwnames);
    return 0;
}

static int
Acceptor_clear(AcceptorObject *acc)
{
    Py_CLEAR(acc->loop);
    Py_CLEAR(acc->protocol_factory);
    Py_CLEAR(acc->sock);
    Py_CLEAR(acc->sslcontext);
    Py_CLEAR(acc->server);
    Py_CLEAR(acc->backlog);
    Py_CLEAR(acc->hs_timeout);
    Py_CLEAR(acc->sd_timeout);
    Py_CLEAR(acc->tls_kwnames);
    return 0;
}

static void
Acceptor_dealloc(AcceptorObject *acc)
{
    PyTypeObject *tp = Py_TYPE(acc);
    PyObject_GC_UnTrack(acc);
    Acceptor_clear(acc);
    tp->tp_free(acc);
    Py_DECREF(tp);
}

static PyObject *
Acceptor_repr(AcceptorObject *acc)
{
    return PyUnicode_FromFormat("<accept_connection fd=%d server=%R>",
                                acc->fd, acc->server ? acc->server
                                                     : Py_None);
}

static PyMemberDef Acceptor_members[] = {
    {"__vectorcalloffset__", EL_T_PYSSIZET,
     offsetof(AcceptorObject, vectorcall), EL_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Acceptor_slots[] = {
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_dealloc, Acceptor_dealloc},
    {Py_tp_traverse, Acceptor_traverse},
    {Py_tp_clear, Acceptor_clear},
    {Py_tp_repr, Acceptor_repr},
    {Py_tp_members, Acceptor_members},
    {0, NULL},
};

static PyType_Spec Acceptor_spec = {
    .name = "eloop._eloop._Acceptor",
    .basicsize = sizeof(AcceptorObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
             | Py_TPFLAGS_HAVE_VECTORCALL
             | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Acceptor_slots,
};

int
sock_server_init_type(PyObject *mod, eloop_state *st)
{
    /* The enum members socket.getaddrinfo() puts in its answers. */
    static const char *const kinds[3] = {"SOCK_STREAM", "SOCK_DGRAM",
                                         "SOCK_RAW"};
    for (int i = 0; i < 3; i++) {
        if (eloop_import_attr(&st->sk.sock_kinds[i], "socket", kinds[i])
            < 0) {
            return -1;
        }
    }
    if (eloop_import_attr(&st->sk.af_inet, "socket", "AF_INET") < 0
        || eloop_import_attr(&st->sk.af_inet6, "socket", "AF_INET6") < 0
        || (st->sk.zero = PyLong_FromLong(0)) == NULL) {
        return -1;
    }
    st->sk.AcceptorType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &Acceptor_spec, NULL);
    return st->sk.AcceptorType ? 0 : -1;
}

static PyObject *
constant(eloop_state *st, const char *name)
{
    return PyObject_GetAttrString(st->sk.constants, name);
}

/* Decides once whether accept4() can be called here (see sock.c). */
static int
acceptor_probe(AcceptorObject *acc)
{
    eloop_state *st = acc->loop->st;
    acc->direct = 0;
    if (!Py_IS_TYPE(acc->sock, (PyTypeObject *)st->sk.socket_socket)) {
        return 0;
    }
    /* accept(2) blocks on a blocking socket; asyncio would block the loop
     * there.  Accept one connection per readable event instead. */
    int fl = fcntl(acc->fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK) && acc->nbacklog > 1) {
        acc->nbacklog = 1;
    }
    int family = sk_direct_family(acc->fd);
    int type = -1;
    socklen_t len = sizeof(type);
    if (family < 0 || fl < 0 || !(fl & O_NONBLOCK)
        || getsockopt(acc->fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
        return 0;
    }
    PyObject *p = PyObject_GetAttrString(acc->sock, "proto");
    long proto = p ? PyLong_AsLong(p) : -1;
    Py_XDECREF(p);
    if (proto == -1 && PyErr_Occurred()) {
        return -1;
    }
    acc->family = family;
    acc->type = type;
    acc->proto = (int)proto;
    acc->direct = 1;
    return 0;
}

PyObject *
loop_start_serving(LoopObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"protocol_factory", "sock", "sslcontext",
                             "server", "backlog", "ssl_handshake_timeout",
                             "ssl_shutdown_timeout", NULL};
    eloop_state *st = self->st;
    PyObject *pf, *sock, *ssl = Py_None, *server = Py_None, *backlog = NULL;
    PyObject *hs = NULL, *sd = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|OOOOO:_start_serving",
                                     kwlist, &pf, &sock, &ssl, &server,
                                     &backlog, &hs, &sd)) {
        return NULL;
    }
    /* asyncio tests `if sslcontext:` per connection; once is enough. */
    int tls = PyObject_IsTrue(ssl);
    if (tls < 0) {
        return NULL;
    }
    AcceptorObject *acc = PyObject_GC_New(AcceptorObject,
                                          st->sk.AcceptorType);
    if (acc == NULL) {
        return NULL;
    }
    acc->vectorcall = Acceptor_vectorcall;
    acc->loop = (LoopObject *)Py_NewRef((PyObject *)self);
    acc->protocol_factory = Py_NewRef(pf);
    acc->sock = Py_NewRef(sock);
    acc->sslcontext = Py_NewRef(ssl);
    acc->server = Py_NewRef(server);
    acc->backlog = backlog ? Py_NewRef(backlog) : PyLong_FromLong(100);
    acc->hs_timeout = hs ? Py_NewRef(hs)
                         : constant(st, "SSL_HANDSHAKE_TIMEOUT");
    acc->sd_timeout = sd ? Py_NewRef(sd)
                         : constant(st, "SSL_SHUTDOWN_TIMEOUT");
    acc->nbacklog = 0;
    acc->fd = -1;
    acc->family = acc->type = acc->proto = 0;
    acc->direct = 0;
    acc->tls = (char)tls;
    acc->tls_kwnames = tls ? Py_BuildValue(
                                 "(ssssss)", "waiter", "server_side",
                                 "extra", "server", "ssl_handshake_timeout",
                                 "ssl_shutdown_timeout")
                           : NULL;
    PyObject_GC_Track(acc);
    PyObject *fdobj = NULL, *r = NULL;
    if (acc->backlog == NULL || acc->hs_timeout == NULL
        || acc->sd_timeout == NULL || (tls && acc->tls_kwnames == NULL)) {
        goto done;
    }
    /* asyncio loops over range(backlog). */
    PyObject *n = PyNumber_Index(acc->backlog);
    if (n == NULL) {
        goto done;
    }
    acc->nbacklog = PyLong_AsSsize_t(n);
    Py_DECREF(n);
    if (acc->nbacklog == -1 && PyErr_Occurred()) {
        goto done;
    }
    fdobj = PyObject_CallMethodNoArgs(sock, st->sk.str_fileno);
    if (fdobj == NULL) {
        goto done;
    }
    long fd = PyLong_Check(fdobj) ? PyLong_AsLong(fdobj) : -1;
    PyErr_Clear();
    acc->fd = (fd < 0 || fd > INT32_MAX) ? -1 : (int)fd;
    if (acc->fd >= 0 && acceptor_probe(acc) < 0) {
        goto done;
    }
    PyObject *a[2] = {fdobj, (PyObject *)acc};
    r = loop_add_reader(self, a, 2);
done:
    Py_XDECREF(fdobj);
    Py_DECREF(acc);
    return r;
}

/* asyncio: self._remove_reader(sock.fileno()); sock.close() */
PyObject *
loop_stop_serving(LoopObject *self, PyObject *sock)
{
    PyObject *fdobj = PyObject_CallMethodNoArgs(sock,
                                                self->st->sk.str_fileno);
    PyObject *r = fdobj ? loop_remove_reader(self, fdobj) : NULL;
    Py_XDECREF(fdobj);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    r = PyObject_CallMethod(sock, "close", NULL);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_NONE;
}
