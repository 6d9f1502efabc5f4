/*
 * transport.h -- the transports' shared parts.  Every transport's struct
 * starts with TransportBase (TRANSPORT_BASE_FIELDS) and names a
 * transport_kind; the methods, attributes and GC steps that only use that
 * head are written once (transport_base.c) for the socket, pipe and
 * datagram transports.  The stream transport base adds one object layout
 * (TransportObject) and one machinery (stream_transport.c: the write
 * queue, flow control, the close/abort/connection_lost state machine,
 * reading into the loop's spare buffer, error reporting) for every
 * byte-stream transport: the socket transport (socket_transport.c,
 * asyncio's _SelectorSocketTransport, built by transport_loop.c) and the
 * pipe transports (pipe.c, asyncio's _UnixReadPipeTransport and
 * _UnixWritePipeTransport), which add only what differs.  The datagram
 * transport (udp.c) has its own layout after the head and uses the
 * generic helpers marked below.
 */
#ifndef ELOOP_TRANSPORT_H
#define ELOOP_TRANSPORT_H

#include "state.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* A socket address kept as the kernel gave it, turned into asyncio's
 * tuple only if get_extra_info() asks.  sa_family AF_UNSPEC: unused. */
typedef union {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
} tr_addr_t;

typedef struct TransportBase TransportBase;

/* What a transport kind does its own way, for the generic methods below
 * (is_closing() and the like are written once for every kind). */
typedef struct {
    void (*read_pause)(TransportBase *self);   /* stop watching reads */
    int (*read_resume)(TransportBase *self);   /* watch reads again */
    Py_ssize_t (*buffer_size)(TransportBase *self);
    /* After new write-buffer limits: asyncio's _maybe_pause_protocol(). */
    int (*limits_changed)(TransportBase *self);
    /* asyncio's _call_connection_lost(exc), _force_close(exc) and
     * _fatal_error(exc, message); exc may be None. */
    int (*connection_lost)(TransportBase *self, PyObject *exc);
    int (*force_close)(TransportBase *self, PyObject *exc);
    int (*fatal_error)(TransportBase *self, PyObject *exc,
                       const char *message);
    /* What repr() calls polling: EL_READABLE | EL_WRITABLE. */
    unsigned (*polling)(TransportBase *self);
    /* Out of the reactor, for the finalizer (nothing once cleared). */
    void (*detach)(TransportBase *self);
} transport_kind;

/* The fields every transport has, stream or datagram, at the same offsets
 * (the head of each transport's struct), named as asyncio's
 * _SelectorTransport and _FlowControlMixin name them. */
#define TRANSPORT_BASE_FIELDS                                               \
    PyObject_HEAD                                                           \
    PyObject *extra;            /* asyncio.BaseTransport's `_extra` slot:  \
                                   must follow the header (the type inits  \
                                   check); the dict asyncio's `extra` is,  \
                                   or NULL while extra_lazy */             \
    const transport_kind *kind;                                             \
    eloop_state *st;            /* borrowed: valid while `loop` is set     \
                                   (it holds the module; at exit the GC    \
                                   may clear our type's hold first) */     \
    LoopObject *loop;           /* strong; NULL only after tp_clear */     \
    PyObject *sock;             /* the fd's object (socket.socket, a       \
                                   pipe), kept until tp_clear */           \
    PyObject *protocol;         /* NULL once connection_lost ran */        \
    PyObject *read_handle;      /* Handle of _read_ready() (debug mode     \
                                   only for streams), NULL once lost */    \
    PyObject *write_handle;     /* Handle of the write-ready method */     \
    PyObject *high_obj;         /* the limits as given, for */             \
    PyObject *low_obj;          /* get_write_buffer_limits() */            \
    PyObject *weakreflist;                                                  \
    Py_ssize_t high_water;      /* floor(high_obj): for integer sizes, */  \
    Py_ssize_t low_water;       /* size > high <=> size > floor(high) */   \
    Py_ssize_t conn_lost;       /* asyncio's _conn_lost */                 \
    int sock_fd;                /* asyncio's _sock_fd / _fileno */         \
    char closing;               /* asyncio's _closing */                   \
    char paused;                /* pause_reading() (asyncio's _paused) */  \
    char protocol_paused;       /* pause_writing() was called */           \
    char protocol_connected;                                                \
    char lost;                  /* _call_connection_lost() ran */          \
    char sock_closed;           /* asyncio's _sock is None (lost, or       \
                                   closed by the finalizer) */             \
    char extra_lazy;            /* extra is to be built (sockets only,     \
                                   see transport_extra) */                 \
    char read_queued;           /* read_handle is on the ready ring */     \
    char write_queued;          /* write_handle is on the ready ring */

struct TransportBase {
    TRANSPORT_BASE_FIELDS
};

typedef struct {
    TRANSPORT_BASE_FIELDS
    el_stream_t stream;         /* linked into loop->core while watched */
    /* What a read does: the socket transport's tr_alloc_cb/tr_read_cb,
     * or a pipe's (transport_init_stream sets the socket's). */
    el_stream_alloc_cb on_alloc;
    el_stream_read_cb on_read;
    eloop_item item;            /* on the ready ring while readable (outside
                                   debug mode), on loop->flushq while
                                   writes wait for the end of the
                                   iteration (reactor.h) */
    PyObject *server;           /* asyncio.Server or NULL */
    PyObject *handle_ctx;       /* the reader's Context, snapshot of the
                                   creation context; the writer copies it
                                   (see transport_make_handle); NULL once
                                   lost */
    PyObject *empty_waiter;     /* Future of _make_empty_waiter(), set
                                   while loop.sendfile() owns the socket */
    PyObject *dict;             /* the instance __dict__ asyncio's
                                   transports have; always NULL unless the
                                   type is the twin (tr_to_dict_type) */
    Py_buffer *view;            /* BufferedProtocol buffer lent to a read;
                                   allocated at the first such read (80
                                   bytes other transports do without) */
    /* asyncio's extra dict for a plain TCP socket is built lazily, at the
     * first get_extra_info() or `_extra` that needs it: it costs an idle
     * connection about 0.5 KiB (dict, TransportSocket, two address tuples
     * with their strings and ints).  The addresses are read at creation,
     * as asyncio does (getpeername() fails once the peer has reset). */
    tr_addr_t sockname;         /* while extra_lazy */
    tr_addr_t peername;
    char eof;                   /* write_eof() was called */
    char buffered;              /* protocol is a BufferedProtocol */
    char peer_first;            /* lazy extra with 'peername' first (accept
                                   gave it, as asyncio's {'peername':
                                   addr}) */
    char has_view;              /* view holds a buffer */
    char read_again;            /* the last read gave data and this kind
                                   reads on while the loop has nothing
                                   else to do (pipes; see tr_read_ready) */
} TransportObject;

extern PyType_Spec Transport_spec;
extern PyType_Spec TransportDict_spec;

/* The extra dict (borrowed), built now if still lazy; NULL with
 * AttributeError if there is none (deleted, or cleared). */
PyObject *transport_extra(TransportObject *self);

/* meth: st->str_read_ready or st->str_write_ready. */
PyObject *transport_make_handle(TransportObject *self, PyObject *meth);

/* Sets up the stream of a new transport: fd -1, our callbacks. */
void transport_init_stream(TransportObject *self, LoopObject *loop);
/* set_write_buffer_limits() without the pause check. */
int transport_set_limits(TransportObject *self, PyObject *high,
                         PyObject *low);
PyObject *transport_set_protocol(TransportObject *self, PyObject *protocol);
/* loop.call_soon(self.<meth>[, arg]); arg NULL: no argument. */
int transport_call_soon(TransportObject *self, const char *meth,
                        PyObject *arg);
/* Drops loop._transports[fd] if it is self. */
int transport_unregister(TransportObject *self);
/* Sends the queue now, as asyncio's write() would have; -1 only with an
 * exception to raise (a failed send closes the transport instead).
 * flush_now first flushes what other transports queued earlier in this
 * iteration, to keep asyncio's order; flush_one does not. */
int transport_flush_now(TransportObject *self);
int transport_flush_one(TransportObject *self);

/* ---- the base, shared by the socket and pipe transports ---------------- */

/* asyncio.constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES */
#define LOG_THRESHOLD_FOR_CONNLOST_WRITES 5

/* Method and attribute tables of the transport types. */
#define NOARGS(name, fn) {name, (PyCFunction)fn, METH_NOARGS, NULL}
#define ONEARG(name, fn) {name, (PyCFunction)fn, METH_O, NULL}
#define KWARGS(name, fn) \
    {name, (PyCFunction)(void (*)(void))fn, METH_VARARGS | METH_KEYWORDS, NULL}
/* Getters of TransportBase's fields, for every kind. */
#define OBJ_GETTER(name, field)                                             \
    {name, (getter)transport_get_obj, NULL, NULL,                           \
     (void *)offsetof(TransportBase, field)}
#define FLAG_GETTER(name, field)                                            \
    {name, (getter)transport_get_flag, NULL, NULL,                          \
     (void *)offsetof(TransportBase, field)}

/* OSError(err, strerror(err)), Python picking the subclass. */
PyObject *transport_oserror(int err);
/* The arguments of _fatal_error(exc, message=...); *message holds the
 * default on entry. */
int transport_fatal_error_args(PyObject *args, PyObject *kwds,
                               PyObject **exc, const char **message);
/* A new transport of type (TransportObject's layout) on loop: fd -1, the
 * base's stream callbacks. */
TransportObject *transport_alloc(LoopObject *loop, PyTypeObject *type);

static inline int
tr_debug_log(TransportObject *self, const char *fmt, const char *message,
             PyObject *exc);
static inline int
tr_report(TransportObject *self, const char *message, PyObject *exc);

/* connection_lost(exc) exactly once, then release the fd's object (its
 * close()), the server and the loop's references. */
int tr_call_connection_lost(TransportObject *self, PyObject *exc);
/* With a protocol callback's exception set: SystemExit/KeyboardInterrupt
 * escape (-1); anything else is fatal to the transport. */
int tr_callback_failed(TransportObject *self, const char *message);
/* asyncio's _maybe_pause_protocol() / _maybe_resume_protocol(). */
int tr_maybe_pause(TransportObject *self);
int tr_maybe_resume(TransportObject *self);
/* Bytes queued and not yet sent: get_write_buffer_size(). */
static inline Py_ssize_t
tr_buffer_size(TransportObject *self)
{
    return (Py_ssize_t)el_stream_write_queue_size(&self->stream);
}
/* Reads go into the loop's spare bytes (or a BufferedProtocol's buffer). */
int tr_alloc_cb(el_stream_t *s, size_t suggested, el_buf_t *buf);
int transport_data_received(TransportObject *self, PyObject *protocol,
                            const el_buf_t *buf, ssize_t nread,
                            int *called);
/* The stream's write_cb: drops the chunk's bytes. */
void tr_write_done(el_stream_t *s, void *token, int status);
/* Methods and slots the pipe types share (see their tables). */
/* The socket transport's methods (socket_transport.c's table); pipes
 * replace write, writelines, close and abort. */
PyObject *tr_write(TransportObject *self, PyObject *data);
PyObject *tr_writelines(TransportObject *self, PyObject *list);
PyObject *tr_close(TransportObject *self, PyObject *ignored);
PyObject *tr_abort(TransportObject *self, PyObject *ignored);
PyObject *tr_read_ready(TransportObject *self, PyObject *ignored);
PyObject *tr_write_ready(TransportObject *self, PyObject *ignored);
PyObject *tr_start_reading(TransportObject *self, PyObject *ignored);
PyObject *tr_can_write_eof(TransportObject *self, PyObject *ignored);
int Transport_traverse(TransportObject *self, visitproc visit, void *arg);
int Transport_clear(TransportObject *self);
void Transport_dealloc(TransportObject *self);

/* ---- every transport kind (transport_base.c): TransportBase's methods,
 * through its kind where kinds differ.  The table entries: */
#define TRANSPORT_BASE_METHODS                                              \
    NOARGS("is_closing", tb_is_closing),                                    \
    NOARGS("get_protocol", tb_get_protocol),                                \
    KWARGS("get_extra_info", tb_get_extra_info)
#define TRANSPORT_READ_METHODS                                              \
    NOARGS("is_reading", tb_is_reading),                                    \
    NOARGS("pause_reading", tb_pause_reading),                              \
    NOARGS("resume_reading", tb_resume_reading)
#define TRANSPORT_WRITE_METHODS                                             \
    KWARGS("set_write_buffer_limits", tb_set_write_buffer_limits),          \
    NOARGS("get_write_buffer_limits", tb_get_write_buffer_limits),          \
    NOARGS("get_write_buffer_size", tb_get_write_buffer_size)
#define TRANSPORT_LIFE_METHODS                                              \
    ONEARG("_call_connection_lost", tb_call_connection_lost_meth),          \
    ONEARG("_force_close", tb_force_close_meth),                            \
    KWARGS("_fatal_error", tb_fatal_error_meth)
PyObject *tb_is_closing(TransportBase *self, PyObject *ignored);
PyObject *tb_get_protocol(TransportBase *self, PyObject *ignored);
PyObject *tb_get_extra_info(TransportBase *self, PyObject *args,
                            PyObject *kwds);
PyObject *tb_is_reading(TransportBase *self, PyObject *ignored);
PyObject *tb_pause_reading(TransportBase *self, PyObject *ignored);
PyObject *tb_resume_reading(TransportBase *self, PyObject *ignored);
PyObject *tb_set_write_buffer_limits(TransportBase *self, PyObject *args,
                                     PyObject *kwds);
PyObject *tb_get_write_buffer_limits(TransportBase *self, PyObject *ignored);
PyObject *tb_get_write_buffer_size(TransportBase *self, PyObject *ignored);
PyObject *tb_call_connection_lost_meth(TransportBase *self, PyObject *exc);
PyObject *tb_force_close_meth(TransportBase *self, PyObject *exc);
PyObject *tb_fatal_error_meth(TransportBase *self, PyObject *args,
                              PyObject *kwds);
/* asyncio's _call_connection_lost() steps: protocol.connection_lost(exc)
 * if the protocol is connected, giving back the exception it raised (or
 * NULL); and, with a later step's exception set, that exception chained
 * to *err (replacing it), as a raise inside `finally:` would. */
PyObject *transport_lost_notify(TransportBase *self, PyObject *exc);
void transport_finally_failed(PyObject **err);
/* The start of tp_dealloc: the finalizer, then out of the GC and the
 * weak references; -1 if the finalizer resurrected the object. */
int tb_dealloc_begin(TransportBase *self);
/* "<TypeName[ closed| closing] fd=N", what every repr() starts with. */
PyObject *transport_repr_head(TransportBase *self);
/* The GC slots' share: TransportBase's references (and the type's);
 * clear leaves the loop to the caller, to drop last. */
int transport_base_traverse(TransportBase *self, visitproc visit,
                            void *arg);
void transport_base_clear(TransportBase *self);
/* asyncio's __del__: a ResourceWarning for a transport whose fd's object
 * is still open, then out of the reactor and its close(). */
void tb_finalize(TransportBase *self);
/* repr(): asyncio's _SelectorTransport.__repr__. */
PyObject *tb_repr(TransportBase *self);
/* Attributes asyncio's tests and internals look at. */
PyObject *tb_attr_loop(TransportBase *self, void *c);
PyObject *tb_attr_sock(TransportBase *self, void *c);
PyObject *tb_attr_sock_fd(TransportBase *self, void *c);
PyObject *tb_attr_extra(TransportBase *self, void *c);
int tb_set_attr_extra(TransportBase *self, PyObject *value, void *c);
PyObject *tb_attr_conn_lost(TransportBase *self, void *c);
#define TRANSPORT_BASE_GETSET(sock_name, fd_name)                           \
    {sock_name, (getter)tb_attr_sock, NULL, NULL, NULL},                    \
    {"_extra", (getter)tb_attr_extra, (setter)tb_set_attr_extra, NULL,      \
     NULL},                                                                 \
    {"_loop", (getter)tb_attr_loop, NULL, NULL, NULL},                      \
    {fd_name, (getter)tb_attr_sock_fd, NULL, NULL, NULL},                   \
    {"_conn_lost", (getter)tb_attr_conn_lost, NULL, NULL, NULL},            \
    OBJ_GETTER("_protocol", protocol),                                      \
    FLAG_GETTER("_closing", closing)

/* Shared with udp.c (the datagram transport), which has the same
 * asyncio base (_SelectorTransport, _FlowControlMixin) but no stream:
 * the generic parts of those bases, written once here. */
int transport_debug_log(LoopObject *loop, PyObject *self, const char *fmt,
                        const char *message, PyObject *exc);
int transport_report(LoopObject *loop, PyObject *self, PyObject *protocol,
                     const char *message, PyObject *exc);
int transport_unregister_fd(LoopObject *loop, int fd, PyObject *owner);
int transport_protocol_flow(LoopObject *loop, PyObject *self,
                            PyObject *protocol, const char *meth,
                            const char *msg);
int transport_limits_parse(PyObject *high, PyObject *low,
                           PyObject **high_obj, PyObject **low_obj,
                           Py_ssize_t *high_water, Py_ssize_t *low_water);
PyObject *transport_get_obj(PyObject *self, void *offset);
PyObject *transport_get_flag(PyObject *self, void *offset);
/* transport_loop.c: loop._transports[fd] = self; the __init__ tail
 * (connection_made(), then self._start_reading(), then the waiter, each
 * through call_soon); and the undo of the first when the second fails,
 * keeping the pending exception. */
int transport_register(LoopObject *loop, int fd, PyObject *self);
int transport_schedule_start(LoopObject *loop, PyObject *self,
                             PyObject *protocol, PyObject *waiter);
/* Where sock (a _socket.socket) keeps its fd, if it holds fd now: reading
 * it costs nothing and gives -1 once the socket is closed.  NULL for other
 * objects, which must be asked (fileno()). */
const int *transport_fd_field(eloop_state *st, PyObject *sock, int fd);
void transport_unregister_failed(LoopObject *loop, int fd, PyObject *self);

/* obj.name(arg), or obj.name() when arg is NULL. */
static inline PyObject *
call_method1(PyObject *obj, const char *name, PyObject *arg)
{
    PyObject *meth = PyObject_GetAttrString(obj, name);
    if (meth == NULL) {
        return NULL;
    }
    PyObject *r = arg ? PyObject_CallOneArg(meth, arg)
                      : PyObject_CallNoArgs(meth);
    Py_DECREF(meth);
    return r;
}

/* The argument of asyncio.Server._attach()/_detach(): the transport since
 * 3.13 (the server tracks its clients), none before. */
#if PY_VERSION_HEX >= 0x030D0000
#define SERVER_ATTACH_ARG(t) ((PyObject *)(t))
#else
#define SERVER_ATTACH_ARG(t) NULL
#endif

static inline int
tr_debug_log(TransportObject *self, const char *fmt, const char *message,
             PyObject *exc)
{
    return transport_debug_log(self->loop, (PyObject *)self, fmt, message,
                               exc);
}

static inline int
tr_report(TransportObject *self, const char *message, PyObject *exc)
{
    return transport_report(self->loop, (PyObject *)self, self->protocol,
                            message, exc);
}

#endif /* ELOOP_TRANSPORT_H */
