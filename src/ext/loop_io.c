/*
 * loop_io.c -- add_reader()/add_writer() watchers and Unix signal handlers.
 *
 * A watched fd owns one FdWatch: the core watcher plus the reader and writer
 * handles asyncio keeps as selector key data.  Readiness only queues those
 * handles on the ready ring; they run in the callback phase of the same
 * iteration, exactly as asyncio's _process_events() + _run_once().
 */
#include "state.h"

#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

static int fdwatch_cb(el_loop_t *core, el_io_t *io, unsigned revents);

/* fd from an int or an object with fileno(), with asyncio's errors. */
static int
fileobj_to_fd_ex(PyObject *obj, int *fd, int allow_negative)
{
    long v;
    if (PyLong_Check(obj)) {
        v = PyLong_AsLong(obj);
        if (v == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    else {
        PyObject *r = PyObject_CallMethod(obj, "fileno", NULL);
        PyObject *i = r ? PyNumber_Index(r) : NULL;
        Py_XDECREF(r);
        if (i == NULL) {
            if (PyErr_ExceptionMatches(PyExc_AttributeError)
                || PyErr_ExceptionMatches(PyExc_TypeError)
                || PyErr_ExceptionMatches(PyExc_ValueError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "Invalid file object: %R",
                             obj);
            }
            return -1;
        }
        v = PyLong_AsLong(i);
        Py_DECREF(i);
        if (v == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    if ((v < 0 && !allow_negative) || v > INT32_MAX || v < INT32_MIN) {
        PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %ld", v);
        return -1;
    }
    *fd = (int)v;
    return 0;
}

static inline int
fileobj_to_fd(PyObject *obj, int *fd)
{
    return fileobj_to_fd_ex(obj, fd, 0);
}

static FdWatch *fdwatch_lookup(LoopObject *self, int fd);

/* selectors' _fileobj_lookup(): an object whose fileno() no longer works
 * (a closed socket says -1) is still found by identity among the
 * registrations. */
static int
fileobj_lookup(LoopObject *self, PyObject *obj, int *fd)
{
    if (fileobj_to_fd(obj, fd) == 0) {
        return 0;
    }
    if (!PyErr_ExceptionMatches(PyExc_ValueError) || !self->core_ready) {
        return -1;
    }
    for (size_t i = 0; i < self->core.nfds; i++) {
        FdWatch *w = fdwatch_lookup(self, (int)i);
        if (w != NULL && w->fileobj == obj) {
            PyErr_Clear();
            *fd = (int)i;
            return 0;
        }
    }
    return -1;
}

static FdWatch *
fdwatch_lookup(LoopObject *self, int fd)
{
    if (!self->core_ready) {
        return NULL;
    }
    el_io_t *io = el_io_lookup(&self->core, fd);
    if (io == NULL || io->cb != fdwatch_cb) {
        return NULL;
    }
    return el_container_of(io, FdWatch, io);
}

/* Borrowed: the transport registered for fd in loop._transports, or NULL
 * (error set or not). */
static PyObject *
fd_transport(LoopObject *loop, int fd)
{
    if (loop->transports == NULL) {
        return NULL;
    }
    PyObject *key = PyLong_FromLong(fd);
    if (key == NULL) {
        return NULL;
    }
    PyObject *tr = PyDict_GetItemWithError(loop->transports, key);
    Py_DECREF(key);
    return tr;
}

/* Any owner, of any kind, is asked as asyncio asks it: is_closing().  Only
 * an fd that a transport owns gets this far, never the common case. */
int
loop_check_fd_transport(LoopObject *loop, PyObject *fileobj, int fd)
{
    PyObject *tr = fd_transport(loop, fd);
    if (tr == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    Py_INCREF(tr);
    PyObject *r = PyObject_CallMethod(tr, "is_closing", NULL);
    int closing = r ? PyObject_IsTrue(r) : -1;
    Py_XDECREF(r);
    if (closing == 0) {
        PyErr_Format(PyExc_RuntimeError,
                     "File descriptor %R is used by transport %R", fileobj,
                     tr);
    }
    Py_DECREF(tr);
    return closing > 0 ? 0 : -1;
}

/* The RuntimeError for an fd whose core watcher is not add_reader()'s. */
static void
fd_busy_error(LoopObject *loop, PyObject *fileobj, int fd)
{
    PyObject *tr = fd_transport(loop, fd);
    if (tr != NULL) {
        /* A closing transport still flushing: asyncio would let the
         * caller share the fd; the core has one watcher per fd. */
        PyErr_Format(PyExc_RuntimeError,
                     "File descriptor %R is used by transport %R", fileobj,
                     tr);
    }
    else if (!PyErr_Occurred()) {
        PyErr_Format(PyExc_RuntimeError,
                     "File descriptor %R is used by the event loop",
                     fileobj);
    }
}

static PyObject *
fdwatch_add(LoopObject *self, PyObject *const *args, Py_ssize_t nargs,
            unsigned which, const char *method)
{
    int fd;
    if (nargs < 2) {
        PyErr_Format(PyExc_TypeError,
                     "%s() missing required positional arguments: 'fd' and "
                     "'callback'", method);
        return NULL;
    }
    /* asyncio's _ensure_fd_no_transport(): an object without a usable
     * fileno() is refused before anything else. */
    if (fileobj_to_fd_ex(args[0], &fd, 1) < 0
        || loop_check_fd_transport(self, args[0], fd) < 0) {
        return NULL;
    }
    if (loop_check_closed(self) < 0
        || fileobj_lookup(self, args[0], &fd) < 0) {
        return NULL;
    }
    HandleObject *h = handle_new(self, args[1], args + 2, nargs - 2, NULL);
    if (h == NULL) {
        return NULL;
    }
    FdWatch *w = fdwatch_lookup(self, fd);
    int fresh = w == NULL;
    if (fresh) {
        if (el_io_lookup(&self->core, fd) != NULL) {
            Py_DECREF(h);
            fd_busy_error(self, args[0], fd);
            return NULL;
        }
        w = PyMem_Calloc(1, sizeof(*w));
        if (w == NULL) {
            Py_DECREF(h);
            return PyErr_NoMemory();
        }
        el_io_init(&w->io, fd, fdwatch_cb);
        w->fileobj = Py_NewRef(args[0]);
    }
    int err = el_io_set(&self->core, &w->io, w->io.mask | which);
    if (err < 0) {
        if (fresh) {
            Py_DECREF(w->fileobj);
            PyMem_Free(w);
        }
        Py_DECREF(h);
        eloop_raise_errno(err);
        return NULL;
    }
    PyObject **slot = which == EL_READABLE ? &w->reader : &w->writer;
    PyObject *old = *slot;
    *slot = (PyObject *)h;
    if (old != NULL) {
        handle_cancel((HandleObject *)old);
        Py_DECREF(old);
    }
    Py_RETURN_NONE;
}

/* Returns 1 if a handle was removed, 0 if none was set, -1 on error. */
static int
fdwatch_remove(LoopObject *self, int fd, unsigned which)
{
    FdWatch *w = fdwatch_lookup(self, fd);
    if (w == NULL) {
        return 0;
    }
    PyObject **slot = which == EL_READABLE ? &w->reader : &w->writer;
    PyObject *h = *slot;
    *slot = NULL;
    unsigned mask = w->io.mask & ~which;
    /* Narrowing never fails: the kernel update is deferred. */
    el_io_set(&self->core, &w->io, mask);
    if (mask == 0) {
        PyObject *other = which == EL_READABLE ? w->writer : w->reader;
        PyObject *fileobj = w->fileobj;
        PyMem_Free(w);
        Py_XDECREF(other);
        Py_DECREF(fileobj);
    }
    if (h == NULL) {
        return 0;
    }
    handle_cancel((HandleObject *)h);
    Py_DECREF(h);
    return 1;
}

/* Queues the handles of a ready fd.  -1 with MemoryError if one cannot be
 * queued: the dispatch stops there and the iteration fails with it. */
static int
fdwatch_cb(el_loop_t *core, el_io_t *io, unsigned revents)
{
    LoopObject *self = el_container_of(core, LoopObject, core);
    FdWatch *w = el_container_of(io, FdWatch, io);
    int fd = io->fd;
    if ((revents & EL_READABLE) && w->reader != NULL) {
        HandleObject *h = (HandleObject *)w->reader;
        if (handle_cancelled(h)) {
            fdwatch_remove(self, fd, EL_READABLE);
        }
        else if (loop_push_ready(self, h) < 0) {
            return -1;
        }
    }
    /* The watcher may be gone now. */
    if ((revents & EL_WRITABLE) && fdwatch_lookup(self, fd) == w
        && w->writer != NULL) {
        HandleObject *h = (HandleObject *)w->writer;
        if (handle_cancelled(h)) {
            fdwatch_remove(self, fd, EL_WRITABLE);
        }
        else if (loop_push_ready(self, h) < 0) {
            return -1;
        }
    }
    return 0;
}

PyObject *
loop_add_reader(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return fdwatch_add(self, args, nargs, EL_READABLE, "add_reader");
}

PyObject *
loop_add_writer(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return fdwatch_add(self, args, nargs, EL_WRITABLE, "add_writer");
}

static PyObject *
fdwatch_remove_meth(LoopObject *self, PyObject *fileobj, unsigned which)
{
    int fd;
    if (fileobj_to_fd_ex(fileobj, &fd, 1) < 0
        || loop_check_fd_transport(self, fileobj, fd) < 0) {
        return NULL;
    }
    if (self->closed) {
        Py_RETURN_FALSE;
    }
    if (fileobj_lookup(self, fileobj, &fd) < 0) {
        return NULL;
    }
    int r = fdwatch_remove(self, fd, which);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

PyObject *
loop_remove_reader(LoopObject *self, PyObject *fileobj)
{
    return fdwatch_remove_meth(self, fileobj, EL_READABLE);
}

PyObject *
loop_remove_writer(LoopObject *self, PyObject *fileobj)
{
    return fdwatch_remove_meth(self, fileobj, EL_WRITABLE);
}

int
loop_io_traverse(LoopObject *self, visitproc visit, void *arg)
{
    if (!self->core_ready) {
        return 0;
    }
    for (size_t fd = 0; fd < self->core.nfds; fd++) {
        FdWatch *w = fdwatch_lookup(self, (int)fd);
        if (w != NULL) {
            Py_VISIT(w->fileobj);
            Py_VISIT(w->reader);
            Py_VISIT(w->writer);
        }
    }
    return 0;
}

void
loop_io_clear(LoopObject *self)
{
    if (!self->core_ready) {
        return;
    }
    for (size_t fd = 0; fd < self->core.nfds; fd++) {
        FdWatch *w = fdwatch_lookup(self, (int)fd);
        if (w == NULL) {
            continue;
        }
        el_io_set(&self->core, &w->io, 0);
        PyObject *r = w->reader, *wr = w->writer, *f = w->fileobj;
        PyMem_Free(w);
        Py_XDECREF(r);
        Py_XDECREF(wr);
        Py_DECREF(f);
    }
}

/* ---- signals ------------------------------------------------------------- */

static int
check_signal(LoopObject *self, PyObject *sig, int *signum)
{
    if (!PyLong_Check(sig)) {
        PyErr_Format(PyExc_TypeError, "sig must be an int, not %R", sig);
        return -1;
    }
    PyObject *valid = PyObject_CallMethod(self->st->signal, "valid_signals",
                                          NULL);
    if (valid == NULL) {
        return -1;
    }
    int ok = PySequence_Contains(valid, sig);
    Py_DECREF(valid);
    if (ok < 0) {
        return -1;
    }
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "invalid signal number %S", sig);
        return -1;
    }
    *signum = (int)PyLong_AsLong(sig);
    return 0;
}

/* Queues the handler of signal signum: 0, or -1 with the exception set
 * (it ends the iteration, as asyncio's _handle_signal() raising out of
 * _process_events() would). */
static int
handle_signal(LoopObject *self, int signum)
{
    PyObject *key = PyLong_FromLong(signum);
    if (key == NULL) {
        return -1;
    }
    PyObject *h = self->signal_handlers
                      ? PyDict_GetItemWithError(self->signal_handlers, key)
                      : NULL;
    int rc = 0;
    if (h == NULL) {
        rc = PyErr_Occurred() ? -1 : 0;
    }
    else if (handle_cancelled((HandleObject *)h)) {
        rc = discard(loop_remove_signal_handler(self, key));
    }
    else {
        rc = loop_push_ready(self, (HandleObject *)h);
    }
    Py_DECREF(key);
    return rc;
}

/* Reads the signal numbers Python's C handler wrote.  On a failure the
 * signals not yet handled are lost, as asyncio loses the rest of the
 * bytes it read when _handle_signal() raises. */
static int
sig_cb(el_loop_t *core, el_io_t *io, unsigned Py_UNUSED(revents))
{
    LoopObject *self = el_container_of(core, LoopObject, core);
    unsigned char buf[256];
    for (;;) {
        ssize_t n = read(io->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return 0;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != 0 && handle_signal(self, buf[i]) < 0) {
                return -1;
            }
        }
    }
}

static int
ensure_sig_pipe(LoopObject *self)
{
    if (self->sig_rfd >= 0) {
        return 0;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   sv) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    el_io_init(&self->sig_io, sv[0], sig_cb);
    int err = el_io_set(&self->core, &self->sig_io, EL_READABLE);
    if (err < 0) {
        close(sv[0]);
        close(sv[1]);
        return eloop_raise_errno(err);
    }
    self->sig_rfd = sv[0];
    self->sig_wfd = sv[1];
    return 0;
}

static void
clear_wakeup_fd(LoopObject *self)
{
    PyObject *r = PyObject_CallMethod(self->st->signal, "set_wakeup_fd", "i",
                                      -1);
    if (r != NULL) {
        Py_DECREF(r);
        return;
    }
    if (!PyErr_ExceptionMatches(PyExc_ValueError)
        && !PyErr_ExceptionMatches(PyExc_OSError)) {
        PyErr_WriteUnraisable((PyObject *)self);
        return;
    }
    PyObject *exc = el_fetch_exc();
    r = PyObject_CallMethod(self->st->logger, "info", "sO",
                            "set_wakeup_fd(-1) failed: %s", exc);
    Py_XDECREF(r);
    Py_DECREF(exc);
    PyErr_Clear();
}

static PyObject *
cannot_catch(int signum)
{
    return PyErr_Format(PyExc_RuntimeError, "sig %d cannot be caught",
                        signum);
}

/* Raises again the OSError exc (taken) that signal.signal() or
 * siginterrupt() raised, or RuntimeError for EINVAL, as asyncio's
 * `if exc.errno == errno.EINVAL` does; NULL. */
static PyObject *
signal_oserror(PyObject *exc, int signum)
{
    PyObject *eno = PyObject_GetAttrString(exc, "errno");
    int einval = eno && PyLong_Check(eno) && PyLong_AsLong(eno) == EINVAL;
    Py_XDECREF(eno);
    PyErr_Clear();
    if (einval) {
        Py_DECREF(exc);
        return cannot_catch(signum);
    }
    el_restore_exc(exc);
    return NULL;
}

PyObject *
loop_add_signal_handler(LoopObject *self, PyObject *const *args,
                        Py_ssize_t nargs)
{
    eloop_state *st = self->st;
    int signum;
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError,
                        "add_signal_handler() missing required positional "
                        "arguments: 'sig' and 'callback'");
        return NULL;
    }
    PyObject *sig = args[0], *cb = args[1];
    for (int i = 0; i < 2; i++) {
        PyObject *r = PyObject_CallOneArg(
            i ? st->iscoroutinefunction : st->iscoroutine, cb);
        int yes = r ? PyObject_IsTrue(r) : -1;
        Py_XDECREF(r);
        if (yes < 0) {
            return NULL;
        }
        if (yes) {
            PyErr_SetString(PyExc_TypeError,
                            "coroutines cannot be used with "
                            "add_signal_handler()");
            return NULL;
        }
    }
    if (check_signal(self, sig, &signum) < 0 || loop_check_closed(self) < 0
        || ensure_sig_pipe(self) < 0) {
        return NULL;
    }
    PyObject *r = PyObject_CallMethod(st->signal, "set_wakeup_fd", "i",
                                      self->sig_wfd);
    if (r == NULL) {
        if (PyErr_ExceptionMatches(PyExc_ValueError)
            || PyErr_ExceptionMatches(PyExc_OSError)) {
            PyObject *exc = el_fetch_exc();
            PyObject *s = PyObject_Str(exc);
            Py_DECREF(exc);
            if (s != NULL) {
                PyErr_SetObject(PyExc_RuntimeError, s);
                Py_DECREF(s);
            }
        }
        return NULL;
    }
    Py_DECREF(r);
    HandleObject *h = handle_new(self, cb, args + 2, nargs - 2, NULL);
    if (h == NULL) {
        return NULL;
    }
    int rc = PyDict_SetItem(self->signal_handlers, sig, (PyObject *)h);
    Py_DECREF(h);
    if (rc < 0) {
        return NULL;
    }
    r = PyObject_CallMethod(st->signal, "signal", "iO", signum,
                            st->sighandler_noop);
    if (r != NULL) {
        Py_DECREF(r);
        r = PyObject_CallMethod(st->signal, "siginterrupt", "iO", signum,
                                Py_False);
    }
    if (r != NULL) {
        Py_DECREF(r);
        Py_RETURN_NONE;
    }
    if (!PyErr_ExceptionMatches(PyExc_OSError)) {
        return NULL;
    }
    PyObject *exc = el_fetch_exc();
    if (PyDict_DelItem(self->signal_handlers, sig) < 0) {
        PyErr_Clear();
    }
    if (PyDict_GET_SIZE(self->signal_handlers) == 0) {
        clear_wakeup_fd(self);
    }
    return signal_oserror(exc, signum);
}

PyObject *
loop_remove_signal_handler(LoopObject *self, PyObject *sig)
{
    eloop_state *st = self->st;
    int signum;
    if (check_signal(self, sig, &signum) < 0) {
        return NULL;
    }
    if (self->signal_handlers == NULL) {
        Py_RETURN_FALSE;
    }
    PyObject *h = PyDict_GetItemWithError(self->signal_handlers, sig);
    if (h == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_FALSE;
    }
    if (PyDict_DelItem(self->signal_handlers, sig) < 0) {
        return NULL;
    }
    PyObject *handler = PyObject_GetAttrString(
        st->signal, signum == SIGINT ? "default_int_handler" : "SIG_DFL");
    if (handler == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_CallMethod(st->signal, "signal", "iO", signum,
                                      handler);
    Py_DECREF(handler);
    if (r == NULL) {
        return PyErr_ExceptionMatches(PyExc_OSError)
                   ? signal_oserror(el_fetch_exc(), signum)
                   : NULL;
    }
    Py_DECREF(r);
    if (PyDict_GET_SIZE(self->signal_handlers) == 0) {
        clear_wakeup_fd(self);
    }
    Py_RETURN_TRUE;
}

/* Failures are unraisable, as close() and dealloc go on regardless: an
 * exception left set would reach whatever Python call comes next. */
void
loop_signals_close(LoopObject *self)
{
    PyObject *exc = el_fetch_exc();
    if (self->signal_handlers != NULL
        && PyDict_GET_SIZE(self->signal_handlers) > 0) {
        if (self->forked) {
            /* Inherited across fork(): the process's signal handlers and
             * wakeup fd may be a new loop's by now (loop_fork.c). */
            PyDict_Clear(self->signal_handlers);
        }
        else if (!Py_IsFinalizing()) {
            PyObject *keys = PyDict_Keys(self->signal_handlers);
            if (keys == NULL) {
                PyErr_WriteUnraisable((PyObject *)self);
            }
            for (Py_ssize_t i = 0; keys && i < PyList_GET_SIZE(keys); i++) {
                PyObject *r = loop_remove_signal_handler(
                    self, PyList_GET_ITEM(keys, i));
                if (r == NULL) {
                    PyErr_WriteUnraisable((PyObject *)self);
                }
                Py_XDECREF(r);
            }
            Py_XDECREF(keys);
        }
        else {
            if (PyErr_ResourceWarning(
                    (PyObject *)self, 1,
                    "Closing the loop %R on interpreter shutdown stage, "
                    "skipping signal handlers removal", self) < 0) {
                PyErr_Clear();
            }
            PyDict_Clear(self->signal_handlers);
        }
    }
    if (self->sig_rfd >= 0) {
        if (self->core_ready) {
            el_io_set(&self->core, &self->sig_io, 0);
        }
        close(self->sig_rfd);
        close(self->sig_wfd);
        self->sig_rfd = self->sig_wfd = -1;
    }
    if (exc != NULL) {
        el_restore_exc(exc);
    }
}
