/*
 * transport.c -- socket transports (TCP and Unix streams) in C.
 * (Being written; the method table is registered on Loop by module.c.)
 */
#include "state.h"

PyMethodDef Loop_transport_methods[] = {
    {NULL, NULL, 0, NULL},
};
