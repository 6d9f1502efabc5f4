/*
 * socket_transport.c -- the socket transport (TCP and Unix streams),
 * asyncio's _SelectorSocketTransport (selector_events.py): the stream
 * transport base (stream_transport.c, transport.h) plus what only a socket
 * has.  Here: write_eof() as a shutdown(SHUT_WR) once the queue drains,
 * loop.sendfile()'s empty-waiter hooks, the instance-dict twin
 * type, and the method and attribute tables of SocketTransport.  Its
 * construction -- the lazy extra info (socket, sockname, peername),
 * TCP_NODELAY, the server's attach/detach and the type's creation -- is in
 * transport_loop.c.
 */
#include "transport.h"

#include <errno.h>

static PyObject *
tr_write_eof(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->closing || self->eof) {
        Py_RETURN_NONE;
    }
    if (transport_flush_now(self) < 0) {
        return NULL;
    }
    if (self->closing) {
        Py_RETURN_NONE;
    }
    self->eof = 1;
    /* Now if nothing is queued (errors raise, as sock.shutdown() in
     * asyncio), else after the queue drains (tr_shutdown_cb). */
    int r = el_stream_shutdown(&self->stream);
    if (r < 0) {
        eloop_raise_errno(r);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* For loop.sendfile(): a future done once the buffer is empty. */
static PyObject *
tr_make_empty_waiter(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->empty_waiter != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Empty waiter is already set");
        return NULL;
    }
    if (self->lost || self->loop == NULL) {
        /* asyncio's _loop is None by now */
        PyErr_SetString(PyExc_AttributeError,
                        "'NoneType' object has no attribute 'create_future'");
        return NULL;
    }
    if (transport_flush_now(self) < 0) {
        return NULL;
    }
    PyObject *fut = PyObject_CallMethod((PyObject *)self->loop,
                                        "create_future", NULL);
    if (fut == NULL) {
        return NULL;
    }
    self->empty_waiter = Py_NewRef(fut);
    if (el_stream_write_queue_len(&self->stream) == 0
        && discard(call_method1(fut, "set_result", Py_None)) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    return fut;
}

static PyObject *
tr_reset_empty_waiter(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_CLEAR(self->empty_waiter);
    Py_RETURN_NONE;
}

/* Instance attributes.  asyncio's transports have a __dict__, and test
 * suites patch a method on one instance (`transport.write = fake`, and
 * `del` to restore it).  A transport starts as SocketTransport, whose
 * layout has the dict pointer but whose type does not declare it: to
 * Python's method-call specialisation it is a dict-less object (3.11
 * gives up on a type whose instance dict is still NULL, costing every
 * `transport.write(...)` a generic lookup).  The first attribute
 * assignment, or a look at __dict__, moves the instance to the twin type
 * that declares the dict (same layout, same methods; see
 * transport_type_init).  The loop's own calls into the transport are C
 * calls and never look at the dict. */
static void
tr_to_dict_type(TransportObject *self)
{
    PyTypeObject *twin = self->st->TransportDictType;
    PyTypeObject *old = Py_TYPE(self);
    if (old != twin) {
        Py_SET_TYPE(self, (PyTypeObject *)Py_NewRef((PyObject *)twin));
        Py_DECREF(old);
    }
}

static PyObject *
get_dict(TransportObject *self, void *c)
{
    tr_to_dict_type(self);
    return PyObject_GenericGetDict((PyObject *)self, c);
}

static int
set_dict(TransportObject *self, PyObject *value, void *c)
{
    tr_to_dict_type(self);
    return PyObject_GenericSetDict((PyObject *)self, value, c);
}

static int
Transport_setattro(TransportObject *self, PyObject *name, PyObject *value)
{
    if (value != NULL) {
        tr_to_dict_type(self);
    }
    return PyObject_GenericSetAttr((PyObject *)self, name, value);
}

static PyGetSetDef Transport_getset[] = {
    {"__dict__", (getter)get_dict, (setter)set_dict, NULL, NULL},
    TRANSPORT_BASE_GETSET("_sock", "_sock_fd"),
    {"_server", (getter)transport_get_obj, NULL, NULL,
     (void *)offsetof(TransportObject, server)},
    OBJ_GETTER("_high_water", high_obj),
    OBJ_GETTER("_low_water", low_obj),
    {"_empty_waiter", (getter)transport_get_obj, NULL, NULL,
     (void *)offsetof(TransportObject, empty_waiter)},
    {"_eof", (getter)transport_get_flag, NULL, NULL,
     (void *)offsetof(TransportObject, eof)},
    FLAG_GETTER("_paused", paused),
    FLAG_GETTER("_protocol_paused", protocol_paused),
    FLAG_GETTER("_protocol_connected", protocol_connected),
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Transport_members[] = {
    {"__weaklistoffset__", EL_T_PYSSIZET,
     offsetof(TransportObject, weakreflist), EL_READONLY, NULL},

    {NULL, 0, 0, 0, NULL},
};

static PyMethodDef Transport_methods[] = {
    TRANSPORT_BASE_METHODS,
    TRANSPORT_READ_METHODS,
    TRANSPORT_WRITE_METHODS,
    TRANSPORT_LIFE_METHODS,
    ONEARG("write", tr_write),
    ONEARG("writelines", tr_writelines),
    NOARGS("write_eof", tr_write_eof),
    NOARGS("can_write_eof", tr_can_write_eof),
    NOARGS("close", tr_close),
    NOARGS("abort", tr_abort),
    ONEARG("set_protocol", transport_set_protocol),
    NOARGS("_read_ready", tr_read_ready),
    NOARGS("_write_ready", tr_write_ready),
    NOARGS("_start_reading", tr_start_reading),
    NOARGS("_make_empty_waiter", tr_make_empty_waiter),
    NOARGS("_reset_empty_waiter", tr_reset_empty_waiter),
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Transport_slots[] = {
    {Py_tp_dealloc, Transport_dealloc},
    {Py_tp_finalize, tb_finalize},
    {Py_tp_traverse, Transport_traverse},
    {Py_tp_clear, Transport_clear},
    {Py_tp_repr, tb_repr},
    {Py_tp_setattro, Transport_setattro},
    {Py_tp_methods, Transport_methods},
    {Py_tp_getset, Transport_getset},
    {Py_tp_members, Transport_members},
    {Py_tp_doc, "A socket transport (asyncio's _SelectorSocketTransport), "
                "made by loop._make_socket_transport()."},
    {0, NULL},
};

/* BASETYPE only for the twin below: transport_type_init() drops the
 * flag once the twin exists. */
PyType_Spec Transport_spec = {
    .name = "eloop._eloop.SocketTransport",
    .basicsize = sizeof(TransportObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE
             | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Transport_slots,
};

/* The twin with a declared instance dict (see tr_to_dict_type). */
static PyMemberDef TransportDict_members[] = {
    {"__dictoffset__", EL_T_PYSSIZET, offsetof(TransportObject, dict),
     EL_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot TransportDict_slots[] = {
    {Py_tp_members, TransportDict_members},
    {Py_tp_traverse, Transport_traverse},      /* required with GC */
    {0, NULL},
};

PyType_Spec TransportDict_spec = {
    .name = "eloop._eloop.SocketTransport",
    .basicsize = sizeof(TransportObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
             | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = TransportDict_slots,
};

