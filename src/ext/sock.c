/*
 * sock.c -- the loop's low-level socket operations (sock_recv, sock_accept,
 * ...) and name resolution.
 * (Being written; the method table is registered on Loop by module.c.)
 */
#include "state.h"

PyMethodDef Loop_sock_methods[] = {
    {NULL, NULL, 0, NULL},
};
