/*
 * sock.h -- declarations shared by sock.c (socket operations) and
 * sock_server.c (name resolution and the accept loop of servers).
 * Private to those two files, and udp.c for the address helpers.
 */
#ifndef ELOOP_SOCK_H
#define ELOOP_SOCK_H

#include "state.h"

#include <sys/socket.h>

enum {
    SK_RECV,
    SK_RECV_INTO,
    SK_RECVFROM,
    SK_RECVFROM_INTO,
    SK_SENDALL,
    SK_SENDTO,
    SK_CONNECT,
    SK_ACCEPT,
    SK_NKINDS
};

/* The arguments and progress of one socket operation.  Lives on the stack
 * while the operation is first tried, and moves into a SockOp if it has to
 * wait for the fd. */
typedef struct {
    PyObject *sock;     /* strong */
    PyObject *arg;      /* strong or NULL: n / buffer / data / address */
    PyObject *arg2;     /* strong or NULL: nbytes / address / memoryview */
    Py_buffer view;     /* sendall's data (direct path), while has_view */
    Py_ssize_t n;       /* direct path: size to receive */
    Py_ssize_t pos;     /* sendall: bytes sent; sendto: tried once */
    int fd;             /* direct path: sock.fileno() */
    int family;         /* direct recvfrom/accept */
    int type;           /* direct accept */
    int proto;          /* direct accept: the listening socket's proto */
    unsigned char kind; /* SK_* */
    unsigned char direct;   /* exact socket.socket: syscalls made here */
    unsigned char has_view;
} sk_args;

/* sock_io.c */
int sk_sock_int_option(int fd, int opt);
int sk_exc_would_block(void);
int sk_family_supported(int family);
int sk_direct_family(int fd);
socklen_t sk_addrlen_for(int family);
PyObject *sk_make_sockaddr(const struct sockaddr_storage *ss, socklen_t len);
void sk_args_clear(sk_args *a);
PyObject *sk_attempt(eloop_state *st, sk_args *a, int *again);
PyObject *sk_accept_direct(eloop_state *st, int fd, int family, int type,
                           int proto, int *again);
PyObject *sk_accept_generic(PyObject *sock, int *again);

/* sock.c */
int sk_bind_args(const char *fname, PyObject *const *args,
                 Py_ssize_t nargsf, PyObject *kwnames,
                 const char *const *names, int nnames, int npos, int nreq,
                 PyObject **out);
int sk_is_fatal_pending(void);
PyObject *sk_future_new(LoopObject *loop);
int sk_future_finish(eloop_state *st, PyObject *fut, PyObject *res);
int sk_check_sock(LoopObject *loop, PyObject *sock);
PyObject *sk_fileno(eloop_state *st, PyObject *sock);

/* Starts the body of one of asyncio's `async def` methods with its bound
 * arguments v (NULL for an omitted optional one).  Returns the result
 * (*pending left 0), or a future to await for it (*pending set to 1), or
 * NULL with an exception set. */
typedef PyObject *(*sk_starter)(LoopObject *loop, PyObject *const *v,
                                int *pending);

typedef struct {
    const char *qualname;   /* "Loop.sock_recv" */
    sk_starter start;
    int nargs;              /* entries of v */
} sk_coro_def;

#define SK_CORO_MAXARGS 6

/* sock_coro.c: the coroutine object the methods return. */
int sock_coro_init_type(PyObject *mod, eloop_state *st);
PyObject *sk_coro_new(LoopObject *loop, const sk_coro_def *def,
                      PyObject *const *v);

/* sock_server.c */
int sock_server_init_type(PyObject *mod, eloop_state *st);
PyObject *sk_start_getaddrinfo(LoopObject *, PyObject *const *, int *);
PyObject *sk_start_getnameinfo(LoopObject *, PyObject *const *, int *);
PyObject *loop_start_serving(LoopObject *, PyObject *, PyObject *);
PyObject *loop_stop_serving(LoopObject *, PyObject *);

#endif /* ELOOP_SOCK_H */
