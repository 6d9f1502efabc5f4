/*
 * state.h -- the binding layer's shared declarations: module state and the
 * object layouts of Loop, Handle and TimerHandle.
 *
 * Ownership rule (see ../shared/style.md): while a handle is linked into the
 * reactor -- queued on the ready ring, armed in the timer heap, or held by a
 * watcher -- the reactor owns one strong reference to it.  Loop_traverse
 * visits all of them, and loop_clear_reactor() drops all of them.
 */
#ifndef ELOOP_STATE_H
#define ELOOP_STATE_H

#include "compat.h"
#include "el.h"
#include "reactor.h"

/* Dead handles go to a freelist for reuse (handle.c), as CPython keeps
 * freelists of its own small objects: their memory is already GC-headed
 * and untracked, so reuse skips the allocator.  Bounded like CPython's (a
 * few hundred), so what a burst of callbacks frees goes back to the
 * allocator, and emptied when a loop closes.  The AddressSanitizer build
 * has none, so that every dead handle reaches free() where a
 * use-after-free shows. */
#if defined(__SANITIZE_ADDRESS__)
#define ELOOP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ELOOP_ASAN 1
#endif
#endif
#ifdef ELOOP_ASAN
#define HANDLE_FREELIST_MAX 0
#else
#define HANDLE_FREELIST_MAX 256
#endif

typedef struct {
    int n;              /* dead handles in items now */
    PyObject *items[HANDLE_FREELIST_MAX > 0 ? HANDLE_FREELIST_MAX : 1];
} handle_freelist;

typedef struct {
    PyTypeObject *LoopType;
    PyTypeObject *HandleType;
    PyTypeObject *TimerHandleType;
    PyTypeObject *TransportType;        /* socket_transport.c:
                                           SocketTransport, a subclass of
                                           asyncio's Transport */
    PyTypeObject *DatagramTransportType;    /* udp.c, a subclass of
                                               asyncio's DatagramTransport */
    PyTypeObject *TransportDictType;    /* its twin with an instance
                                           __dict__ (socket_transport.c) */
    PyTypeObject *ReadPipeType;         /* pipe.c, subclasses of asyncio's */
    PyTypeObject *WritePipeType;        /* ReadTransport, WriteTransport */
    Py_ssize_t sock_fd_offset;          /* where _socket.socket keeps its
                                           fd, or -1 (transport_loop.c) */

    /* Objects from asyncio and the stdlib, imported once at module exec.
     * Everything here is used off the hot path or is a type we construct. */
    PyObject *Future;                   /* asyncio.Future */
    PyObject *Task;                     /* asyncio.Task */
    PyObject *ensure_future;
    PyObject *isfuture;                 /* asyncio.futures.isfuture */
    PyObject *wrap_future;
    PyObject *iscoroutine;
    PyObject *iscoroutinefunction;
    PyObject *events;                   /* asyncio.events: its
                                           _get/_set_running_loop are looked
                                           up per run, as asyncio does, so
                                           patching them works */
    PyObject *coroutines;               /* asyncio.coroutines */
    PyObject *format_callback_source;   /* format_helpers._format_callback_source */
    int format_takes_debug;     /* it has debug= (3.13: args shown only then) */
    PyObject *extract_stack;            /* format_helpers.extract_stack */
    PyObject *format_list;              /* traceback.format_list */
    PyObject *logger;                   /* the "asyncio" logger */
    PyObject *asyncio_c_wr;             /* weakref to _asyncio, or None:
                                           its Task/Future repr crashes once
                                           the module is freed at exit */
    PyObject *ThreadPoolExecutor;
    PyObject *WeakSet;
    PyObject *sys;                      /* the sys module */
    PyObject *signal;                   /* the signal module */
    PyObject *run_until_complete_cb;    /* module-level C function */
    PyObject *sighandler_noop;          /* module-level C function */
    PyObject *str_call_exception_handler;
    PyObject *str_default_exception_handler;
    PyObject *str_time;
    PyObject *kw_loop;                  /* ("loop",) */
    PyObject *kw_task;                  /* ("loop", "name", "context") */
    PyObject *kw_context;               /* ("context",) */
    /* stream_transport.c, socket_transport.c, transport_loop.c */
    PyObject *BufferedProtocol;         /* asyncio.protocols */
    PyObject *TransportSocket;          /* asyncio.trsock */
    PyObject *set_result_unless_cancelled;  /* asyncio.futures, private */
    PyObject *str_data_received;
    PyObject *str_buffer_updated;
    PyObject *str_get_buffer;
    PyObject *str_read_ready;           /* "_read_ready" */
    PyObject *str_write_ready;          /* "_write_ready" */
    /* udp.c */
    PyObject *str_datagram_received;
    PyObject *str_socket;               /* the extra-info keys */
    PyObject *str_sockname;
    PyObject *str_peername;

    handle_freelist handles;
    handle_freelist timers;

    /* Every Loop not yet deallocated, for the fork hook (loop_fork.c);
     * borrowed: a loop unlinks itself in its dealloc. */
    struct LoopObject *live_loops;

    /* sock.c: socket operations, resolution and the accept loop.  Filled
     * by sock_state_init(), visited by sock_state_traverse(), released by
     * sock_state_clear() (all called from module.c). */
    struct {
        PyTypeObject *SockOpType;
        PyTypeObject *AcceptorType;
        PyTypeObject *SockCoroType;
        PyObject *socket_socket;        /* socket.socket */
        PyObject *raw_socket;           /* _socket.socket, its base */
        PyObject *raw_family;           /* its getters, which give plain */
        PyObject *raw_type;             /* ints where socket.socket's */
        PyObject *raw_proto;            /* properties build enums */
        PyObject *raw_fileno;           /* _socket.socket.fileno */
        PyObject *getaddrinfo;          /* socket.getaddrinfo */
        PyObject *getnameinfo;          /* socket.getnameinfo */
        PyObject *SSLSocket;            /* ssl.SSLSocket, or NULL */
        PyObject *TransportSocket;      /* asyncio.trsock.TransportSocket */
        PyObject *ipaddr_info;          /* asyncio.base_events._ipaddr_info */
        PyObject *af_inet, *af_inet6;   /* socket.AF_INET, AF_INET6 */
        PyObject *sock_kinds[3];        /* socket.SOCK_STREAM, DGRAM, RAW */
        PyObject *zero;                 /* 0, omitted int arguments */
        PyObject *constants;            /* asyncio.constants */
        PyObject *str_fileno;
        PyObject *str_create_future;
        PyObject *str_set_result;
        PyObject *str_set_exception;
        PyObject *str_done;
        PyObject *str_add_done_callback;
    } sk;

    /* tls.c: the TLS record path.  Filled by tls_state_init(); the
     * asyncio/ssl objects stay NULL on a Python without ssl. */
    struct {
        PyTypeObject *SSLProtocolBaseType;
        PyObject *SSLObject;            /* ssl.SSLObject */
        PyObject *SSLAgainErrors;       /* asyncio.sslproto's tuple */
        PyObject *WRAPPED, *DO_HANDSHAKE, *FLUSHING, *SHUTDOWN;
                                        /* SSLProtocolState members */
        PyObject *py_write_appdata;     /* SSLProtocol._write_appdata */
        PyObject *SSLError;             /* ssl.SSLError */
        PyObject *py_on_handshake_complete; /* asyncio's method */
        PyObject *STATE_INIT, *STATE_CON_MADE; /* AppProtocolState */
        PyObject *extra_kwnames;        /* the keywords of _extra.update */
        PyTypeObject *SSLTransportType; /* subclass of asyncio's
                                           _SSLProtocolTransport */
        PyObject *c_write_appdata;      /* SSLProtocolBase's descriptor */
        PyObject *str_ssl_protocol, *str_write_appdata;
        PyObject *str_pending, *str_read, *str_write, *str_append;
        PyObject *str_call_soon, *str__sslobj, *str_max_size;
        PyObject *str_do_read, *str_do_write, *str_do_handshake;
        PyObject *str_do_flush, *str_do_shutdown;
        PyObject *str_control_app_writing, *str_control_ssl_reading;
        PyObject *str_call_eof_received, *str_start_shutdown;
        PyObject *str_fatal_error, *msg_fatal;
        PyObject *str_do_handshake_pub, *str_on_handshake_complete;
        PyObject *str_get_debug, *str_cancel, *str_handshake_timeout_handle;
        PyObject *str_getpeercert, *str_cipher, *str_compression;
        PyObject *str_extra, *str_update, *str_app_state;
        PyObject *str_get_app_transport, *str_connection_made;
        PyObject *str_wakeup_waiter;
    } tl;
} eloop_state;

/* Per-fd record for add_reader()/add_writer(): the embedded watcher plus the
 * two handles asyncio's selector keeps in its key data. */
typedef struct {
    el_io_t io;
    PyObject *fileobj;  /* what was registered, for asyncio's fallback
                           lookup of closed file objects; strong */
    PyObject *reader;   /* Handle or NULL; strong */
    PyObject *writer;   /* Handle or NULL; strong */
} FdWatch;

typedef struct ChildWatch ChildWatch;     /* loop_child.c */

typedef struct LoopObject {
    PyObject_HEAD
    el_loop_t core;
    int core_ready;             /* core initialised and not yet closed */
    el_ring_t ready;            /* strong refs to HandleObjects */
    eloop_state *st;            /* in `module`, which we hold */
    PyObject *module;           /* strong: at exit the GC can clear our
                                   type's reference to the module (and free
                                   st) before this loop is deallocated */

    char closed;
    char stopping;
    char debug;
    char custom_time;           /* time() is replaced, by a subclass or
                                   on the instance (Loop_setattro) */
    char custom_call_soon;      /* ... call_soon() */
    char custom_run_once;       /* ... _run_once() */
    char custom_call_at;        /* ... call_at() (call_later() calls it) */
    char asyncgens_shutdown_called;
    char executor_shutdown_called;
    char origin_tracking;       /* coroutine origin tracking enabled */
    char forked;                /* inherited across fork(): the kernel
                                   objects were the parent's and are gone
                                   (loop_fork.c); never runs again */
    char in_iteration;          /* inside loop_run_once(), whose ready
                                   count and poll buffer a nested or
                                   concurrent iteration would corrupt */
    unsigned long thread_id;    /* valid while running */
    int running;
    int origin_saved_depth;
    double slow_callback_duration;

    PyObject *exception_handler;
    PyObject *task_factory;
    PyObject *default_executor;
    PyObject *asyncgens;        /* weakref.WeakSet */
    PyObject *signal_handlers;  /* dict: signum -> Handle */
    PyObject *current_handle;   /* set while a handle runs in debug mode */
    PyObject *transports;       /* dict fd -> transport or server socket
                                   owner: the loop's strong reference while
                                   the fd is in use (asyncio's _transports) */
    PyObject *owned;            /* set or NULL: objects the reactor links
                                   that nothing else need keep (pipe
                                   transports while open, which asyncio's
                                   selector keeps through its handles):
                                   the loop's strong reference, as
                                   `transports` is for sockets; dropped at
                                   close(), as asyncio's selector drops
                                   its handles */
    /* Write coalescing (stream_transport.c): eloop_items (reactor.h) of
     * transports that queued data during this iteration and have not sent
     * it yet; one strong reference each.  Flushed after the callback phase
     * of every iteration. */
    el_ring_t flushq;
    PyObject *read_spare;       /* 256 KiB bytes that plain transports
                                   recv() into: a full read is handed to
                                   data_received() as is (no copy), a
                                   partial one is copied out of it */
    PyObject *read_fresh;       /* bytes of the exact size a pipe's next
                                   read will give (FIONREAD), lent for that
                                   one read only (pipe.c) */

    /* Signal delivery: Python's signal.set_wakeup_fd() writes signal numbers
     * into sig_wfd; the loop reads them from sig_rfd (asyncio's self-pipe). */
    int sig_rfd;
    int sig_wfd;
    el_io_t sig_io;

    ChildWatch *children;       /* child exit watches (loop_child.c) */

    struct LoopObject *live_next;       /* st->live_loops, borrowed */
    struct LoopObject **live_pprev;     /* NULL when not linked */
} LoopObject;

/* 64 bytes, so that with its GC header a handle fills one 80-byte pymalloc
 * block: a burst of callbacks is memory-bound, and a cancelled flag or a
 * field used only in debug mode would have cost 16 bytes each. */
typedef struct {
    PyObject_HEAD
    PyObject *callback;         /* NULL once cancelled: that is the flag */
    PyObject *args;             /* tuple; once cancelled NULL, or in debug
                                   mode the handle's frozen repr (a str) */
    PyObject *context;
    LoopObject *loop;
    PyObject *source_traceback; /* list of FrameSummary in debug mode */
    PyObject *weakreflist;
} HandleObject;

static inline int
handle_cancelled(HandleObject *h)
{
    return h->callback == NULL;
}

/* 96 bytes (112 with the GC header): the deadline is kept as a double
 * unless call_at() was given something else, so call_later() allocates no
 * float (timer_when() makes one when asked). */
typedef struct {
    HandleObject base;
    el_timer_t timer;           /* linked into loop->core.timers when armed */
    PyObject *when;             /* the deadline as given if not a float */
    double whenf;               /* the deadline, when `when` is NULL */
} TimerHandleObject;

static inline PyObject *
timer_when(TimerHandleObject *t)
{
    return t->when ? Py_NewRef(t->when) : PyFloat_FromDouble(t->whenf);
}

/* module.c */
int eloop_import_attr(PyObject **dst, const char *modname,
                      const char *attr);
/* Our module, from the first of tp's MRO that is one of its types: a
 * Python subclass of ours has no module of its own, so
 * PyType_GetModule(Py_TYPE(self)) would fail there.  Borrowed; NULL with
 * TypeError if there is none. */
PyObject *eloop_module_of_type(PyTypeObject *tp);
/* callable(*args, name=value): the calls with one keyword argument that
 * asyncio makes off the hot path (logger.error(..., exc_info=...) and the
 * like).  NULL if callable is NULL, so that a failed lookup chains. */
PyObject *eloop_call_kw(PyObject *callable, PyObject *const *args,
                        Py_ssize_t nargs, const char *name,
                        PyObject *value);

static inline eloop_state *
eloop_state_of_type(PyTypeObject *tp)
{
    PyObject *mod = eloop_module_of_type(tp);
    return mod ? (eloop_state *)PyModule_GetState(mod) : NULL;
}

/* handle.c */
extern PyType_Spec Handle_spec;
extern PyType_Spec TimerHandle_spec;
HandleObject *handle_new(LoopObject *loop, PyObject *callback,
                         PyObject *const *args, Py_ssize_t nargs,
                         PyObject *context);
TimerHandleObject *timer_handle_new(LoopObject *loop, double whenf,
                                    PyObject *when,
                                    PyObject *callback,
                                    PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *context);
PyObject *handle_format_source(HandleObject *h, PyObject *callback,
                                PyObject *args);
int handle_report(HandleObject *h, PyObject *callback, PyObject *args);
int handle_run(HandleObject *h);
void handle_cancel(HandleObject *h);
PyObject *handle_format(HandleObject *h, int cancelled);

void handle_freelists_clear(eloop_state *st);
PyObject *eloop_handle_freelists(PyObject *mod, PyObject *unused);

/* loop.c */
extern PyType_Spec Loop_spec;
/* Drops a call's result: 0, or -1 if the call failed. */
static inline int
discard(PyObject *r)
{
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* Raises OSError for a core's -errno as PyErr_SetFromErrno() does, so
 * Python picks the subclass (ConnectionResetError, ...); -1.  The one
 * place the binding turns the core's 0/-errno into an exception. */
static inline int
eloop_raise_errno(int err)
{
    errno = -err;
    PyErr_SetFromErrno(PyExc_OSError);
    return -1;
}

int loop_push_ready(LoopObject *loop, HandleObject *h);
/* Whether a reader that just got data may read again in the same
 * callback without asyncio being able to tell: nothing else is ready to
 * run in this iteration (no callback asyncio would run between the two
 * reads, whether queued before or by the protocol: a future's done
 * callbacks, call_soon(), call_soon_threadsafe()), the loop is not
 * stopping, no coalesced stream write waits, nothing is patched, and no
 * timer is due.  Asyncio would poll next and queue this reader first
 * among what the poll finds (the kernel's order is not specified).  What
 * is saved is an epoll_wait() per read (udp.c, pipe.c). */
static inline int
loop_only_reader(LoopObject *loop)
{
    if (el_ring_len(&loop->ready) != 0 || el_ring_len(&loop->flushq) != 0
        || loop->stopping || loop->debug || loop->custom_run_once
        || loop->custom_time || !loop->running
        || loop->thread_id != PyThread_get_thread_ident()) {
        return 0;
    }
    /* A due timer would run after the next read in asyncio, but before
     * the one after it (it joins the ready queue behind the reader): stop
     * at the first read it could come before. */
    el_timer_t *t = el_heap_min(&loop->core.timers);
    return t == NULL || t->when > el_now_ns();
}

/* The ready-item and flush interfaces of reactor.h: each push takes one
 * reference to the item's owner; -1 with MemoryError.  Inline: each runs
 * once per read or per write burst of every transport. */
static inline int
loop_push_ready_item(LoopObject *loop, eloop_item *it)
{
    if (el_ring_push(&loop->ready, (void *)((uintptr_t)it | READY_TAG_ITEM))
        < 0) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(eloop_item_owner(it));
    return 0;
}

/* Links the item on the flush queue, once per iteration. */
static inline int
loop_push_flush(LoopObject *loop, eloop_item *it)
{
    if (it->flush_queued) {
        return 0;
    }
    if (el_ring_push(&loop->flushq, it) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(eloop_item_owner(it));
    it->flush_queued = 1;
    return 0;
}
/* Runs the flush of every item on loop->flushq.  May be called with an
 * exception set (a failing iteration): it is kept, and -1 returned. */
int loop_flush_pending(LoopObject *loop);
int loop_soon(LoopObject *loop, PyObject **args, Py_ssize_t nargs);
int loop_check_closed(LoopObject *loop);
int loop_check_thread(LoopObject *loop);
int loop_check_callback(LoopObject *loop, PyObject *cb, const char *method);
int loop_call_exception_handler(LoopObject *loop, PyObject *context);
int64_t loop_when_to_ns(double when);

/* Extra Loop methods defined by other files (networking); module_exec adds
 * them to the Loop type so each file owns its own method table. */
extern PyMethodDef Loop_transport_methods[];   /* transport_loop.c */
extern PyMethodDef Loop_sock_methods[];        /* sock.c */
extern PyMethodDef Loop_udp_methods[];         /* udp.c */
extern PyMethodDef Loop_pipe_methods[];        /* pipe.c */

/* pipe.c: the pipe transport types. */
int pipe_type_init(PyObject *mod, eloop_state *st);

extern PyMethodDef Loop_child_methods[];       /* loop_child.c */

/* loop_child.c: child exit watches, for traverse, clear and fork. */
int loop_child_traverse(LoopObject *loop, visitproc visit, void *arg);
void loop_child_clear(LoopObject *loop);
void loop_child_forget(LoopObject *loop);

/* udp.c: the datagram transport type. */
int udp_type_init(PyObject *mod, eloop_state *st);

/* sock.c: module-state setup for the socket operations. */
int sock_state_init(PyObject *mod, eloop_state *st);
int sock_state_traverse(eloop_state *st, visitproc visit, void *arg);
void sock_state_clear(eloop_state *st);

/* tls.c: SSLProtocolBase and its module state. */
int tls_state_init(PyObject *mod, eloop_state *st);
int tls_state_traverse(eloop_state *st, visitproc visit, void *arg);
void tls_state_clear(eloop_state *st);

/* transport_loop.c: the loop's side of socket transports
 * (socket_transport.c) */
int transport_type_init(PyObject *mod, eloop_state *st);
/* meth is loop._make_socket_transport, not overridden. */
int transport_factory_is_ours(LoopObject *loop, PyObject *meth);
/* What loop._make_socket_transport(conn, protocol, extra={'peername':
 * addr}, server=server) returns, without making the dict. */
PyObject *transport_new_accepted(LoopObject *loop, PyObject *conn,
                                 PyObject *protocol, PyObject *addr,
                                 PyObject *server);

/* loop_fork.c */
void loop_live_link(LoopObject *loop);
void loop_live_unlink(LoopObject *loop);
int loop_check_forked(LoopObject *loop);
PyObject *eloop_after_fork_child(PyObject *mod, PyObject *unused);

/* loop_io.c */
void loop_io_clear(LoopObject *loop);
int loop_io_traverse(LoopObject *loop, visitproc visit, void *arg);
/* asyncio's _ensure_fd_no_transport(): -1 with RuntimeError if fd belongs
 * to a transport (loop._transports) that is not closing.  fileobj is what
 * the caller gave. */
int loop_check_fd_transport(LoopObject *loop, PyObject *fileobj, int fd);
void loop_signals_close(LoopObject *loop);
PyObject *loop_add_reader(LoopObject *, PyObject *const *, Py_ssize_t);
PyObject *loop_add_writer(LoopObject *, PyObject *const *, Py_ssize_t);
PyObject *loop_remove_reader(LoopObject *, PyObject *);
PyObject *loop_remove_writer(LoopObject *, PyObject *);
PyObject *loop_add_signal_handler(LoopObject *, PyObject *const *,
                                  Py_ssize_t);
PyObject *loop_remove_signal_handler(LoopObject *, PyObject *);

PyObject *loop_call_soon_threadsafe(LoopObject *, PyObject *const *,
                                    Py_ssize_t, PyObject *);
PyObject *eloop_run_until_complete_cb(PyObject *mod, PyObject *fut);

/* loop_api.c: errors, tasks, executors, async generator hooks */
PyObject *loop_default_exception_handler(LoopObject *, PyObject *);
PyObject *loop_call_exception_handler_meth(LoopObject *, PyObject *);
PyObject *loop_set_exception_handler(LoopObject *, PyObject *);
PyObject *loop_get_exception_handler(LoopObject *, PyObject *);
PyObject *loop_create_future(LoopObject *, PyObject *);
PyObject *loop_create_task(LoopObject *, PyObject *const *, Py_ssize_t,
                           PyObject *);
PyObject *loop_set_task_factory(LoopObject *, PyObject *);
PyObject *loop_get_task_factory(LoopObject *, PyObject *);
PyObject *loop_run_in_executor(LoopObject *, PyObject *const *, Py_ssize_t);
PyObject *loop_set_default_executor(LoopObject *, PyObject *);
PyObject *loop_asyncgen_firstiter_hook(LoopObject *, PyObject *);
PyObject *loop_asyncgen_finalizer_hook(LoopObject *, PyObject *);

#endif /* ELOOP_STATE_H */
