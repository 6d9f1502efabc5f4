/*
 * loop_child.c -- noticing that a child process exited, without polling
 * and without a thread: loop._watch_child(pid, callback).
 *
 * A watched child is a pidfd (pidfd_open(2), Linux 5.3), which turns
 * readable when the child exits and sits in the loop's epoll set like any
 * other fd.  Readable, the child is reaped with waitpid(WNOHANG) and
 * callback(returncode) goes on the ready ring, in the Context the watch was
 * made in, to run in the callback phase of the same iteration.  The return
 * code is asyncio's (waitstatus_to_exitcode: -N for signal N).
 *
 * Only the one pid is ever waited for, never -1: a program's own children
 * (Popen without asyncio, its own child watcher) are not touched.  Where
 * pidfd_open() is missing (ENOSYS) or refused, _watch_child() raises that
 * OSError and the Python glue (eloop/_loop.py) waits in a thread instead.
 *
 * Ownership: a watch is linked into the reactor (its pidfd in the fd
 * table) and owns its callback and Context; Loop_traverse visits them and
 * loop_child_clear() (close(), tp_clear) drops them with the pidfds.  A
 * fork child gives up its copies of the pidfds at once (loop_fork.c): the
 * children are the parent's to reap.
 */
#include "state.h"

#include <errno.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434      /* the same number on every architecture */
#endif

struct ChildWatch {
    el_io_t io;                 /* the pidfd; in the fd table while
                                   io.mask != 0 */
    pid_t pid;
    PyObject *callback;         /* strong */
    PyObject *context;          /* strong */
    ChildWatch *next;           /* loop->children */
    ChildWatch **pprev;
};

static void
watch_unlink(ChildWatch *w)
{
    *w->pprev = w->next;
    if (w->next != NULL) {
        w->next->pprev = w->pprev;
    }
}

/* Unlinks w, closes its pidfd and frees it; the caller took or drops the
 * references. */
static void
watch_free(LoopObject *loop, ChildWatch *w)
{
    if (w->io.mask != 0 && loop->core_ready) {
        el_io_set(&loop->core, &w->io, 0);
    }
    if (w->io.fd >= 0) {
        close(w->io.fd);
    }
    watch_unlink(w);
    PyMem_Free(w);
}

/* Queues callback(returncode) in context.  Steals nothing. */
static int
deliver(LoopObject *loop, PyObject *callback, PyObject *context, int rc)
{
    PyObject *code = PyLong_FromLong(rc);
    if (code == NULL) {
        return -1;
    }
    HandleObject *h = handle_new(loop, callback, &code, 1, context);
    Py_DECREF(code);
    if (h == NULL) {
        return -1;
    }
    int r = loop_push_ready(loop, h);
    Py_DECREF(h);
    return r;
}

/* What asyncio's watchers log when someone else (a Popen.wait() or
 * poll() of the program's) reaped the child first: the status is lost,
 * and asyncio reports 255. */
static int
warn_already_reaped(LoopObject *loop, pid_t pid)
{
    return discard(PyObject_CallMethod(
        loop->st->logger, "warning", "si",
        "child process pid %d exit status already read:  will report "
        "returncode 255", (int)pid));
}

static int
child_cb(el_loop_t *core, el_io_t *io, unsigned Py_UNUSED(revents))
{
    LoopObject *loop = el_container_of(core, LoopObject, core);
    ChildWatch *w = el_container_of(io, ChildWatch, io);
    int status = 0, rc;
    pid_t r;
    do {
        r = waitpid(w->pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        return 0;               /* not exited after all */
    }
    if (r < 0) {
        rc = 255;
        if (warn_already_reaped(loop, w->pid) < 0) {
            return -1;
        }
    }
    else if (WIFEXITED(status)) {
        rc = WEXITSTATUS(status);
    }
    else if (WIFSIGNALED(status)) {
        rc = -WTERMSIG(status);
    }
    else {
        rc = status;            /* asyncio's fallback for the unknown */
    }
    PyObject *callback = w->callback, *context = w->context;
    watch_free(loop, w);
    int res = deliver(loop, callback, context, rc);
    Py_DECREF(callback);
    Py_DECREF(context);
    return res;
}

/* loop._watch_child(pid, callback): callback(returncode) runs once the
 * child exits.  OSError if pidfd_open() fails (ENOSYS on old kernels),
 * except ESRCH: the child was reaped already, and 255 is reported as
 * asyncio's watchers do. */
static PyObject *
loop_watch_child(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError,
                        "_watch_child() takes exactly 2 arguments "
                        "(pid, callback)");
        return NULL;
    }
    long pid = PyLong_AsLong(args[0]);
    if (pid == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (pid <= 0 || pid > INT32_MAX) {
        return PyErr_Format(PyExc_ValueError, "invalid pid: %ld", pid);
    }
    if (loop_check_closed(self) < 0 || loop_check_forked(self) < 0) {
        return NULL;
    }
    PyObject *context = PyContext_CopyCurrent();
    if (context == NULL) {
        return NULL;
    }
    /* pidfd_open() sets close-on-exec: later children do not inherit it. */
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (fd < 0) {
        if (errno != ESRCH) {
            Py_DECREF(context);
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        int r = warn_already_reaped(self, (pid_t)pid);
        if (r == 0) {
            r = deliver(self, args[1], context, 255);
        }
        Py_DECREF(context);
        return r < 0 ? NULL : Py_NewRef(Py_None);
    }
    ChildWatch *w = PyMem_Calloc(1, sizeof(*w));
    if (w == NULL) {
        close(fd);
        Py_DECREF(context);
        return PyErr_NoMemory();
    }
    el_io_init(&w->io, fd, child_cb);
    int err = el_io_set(&self->core, &w->io, EL_READABLE);
    if (err < 0) {
        close(fd);
        PyMem_Free(w);
        Py_DECREF(context);
        eloop_raise_errno(err);
        return NULL;
    }
    w->pid = (pid_t)pid;
    w->callback = Py_NewRef(args[1]);
    w->context = context;
    w->next = self->children;
    if (w->next != NULL) {
        w->next->pprev = &w->next;
    }
    w->pprev = &self->children;
    self->children = w;
    Py_RETURN_NONE;
}

/* loop._watched_children() -> [pid, ...]: for tests and debugging. */
static PyObject *
loop_watched_children(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *list = PyList_New(0);
    for (ChildWatch *w = self->children; list && w; w = w->next) {
        PyObject *pid = PyLong_FromLong(w->pid);
        if (pid == NULL || PyList_Append(list, pid) < 0) {
            Py_XDECREF(pid);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(pid);
    }
    return list;
}

PyMethodDef Loop_child_methods[] = {
    {"_watch_child", (PyCFunction)(void (*)(void))loop_watch_child,
     METH_FASTCALL, NULL},
    {"_watched_children", (PyCFunction)loop_watched_children, METH_NOARGS,
     NULL},
    {NULL, NULL, 0, NULL},
};

int
loop_child_traverse(LoopObject *self, visitproc visit, void *arg)
{
    for (ChildWatch *w = self->children; w != NULL; w = w->next) {
        Py_VISIT(w->callback);
        Py_VISIT(w->context);
    }
    return 0;
}

/* Drops every watch: its pidfd is closed and its callback never runs.  The
 * child is not reaped here; the transport that owns its Popen still can
 * (asyncio's loop, closed, stops watching too). */
void
loop_child_clear(LoopObject *self)
{
    while (self->children != NULL) {
        ChildWatch *w = self->children;
        PyObject *callback = w->callback, *context = w->context;
        watch_free(self, w);
        Py_DECREF(callback);
        Py_DECREF(context);
    }
}

/* In a fork child: closes this process's copies of the pidfds (the
 * parent's stay open) and forgets their registrations, touching no Python
 * object; the watches stay for close() or the GC to drop. */
void
loop_child_forget(LoopObject *self)
{
    for (ChildWatch *w = self->children; w != NULL; w = w->next) {
        if (w->io.mask != 0 && self->core_ready) {
            el_io_set(&self->core, &w->io, 0);  /* forgets only */
        }
        if (w->io.fd >= 0) {
            close(w->io.fd);
            w->io.fd = -1;
        }
    }
}
