/*
 * compat.h -- version guards so the binding builds on CPython 3.9-3.14.
 *
 * Only public, stable-enough API is used; where a newer call is nicer we
 * provide the older spelling for older interpreters here, in one place.
 */
#ifndef ELOOP_COMPAT_H
#define ELOOP_COMPAT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *
Py_NewRef(PyObject *o)
{
    Py_INCREF(o);
    return o;
}

static inline PyObject *
Py_XNewRef(PyObject *o)
{
    Py_XINCREF(o);
    return o;
}
#endif

/* structmember.h's T_OBJECT (None for NULL) has no Py_-prefixed twin in
 * 3.12+, and the header is still shipped, so use it everywhere. */
#include <structmember.h>
#define EL_T_OBJECT T_OBJECT
#define EL_T_OBJECT_EX T_OBJECT_EX
#define EL_T_DOUBLE T_DOUBLE
#define EL_T_BOOL T_BOOL
#define EL_READONLY READONLY
#define EL_T_PYSSIZET T_PYSSIZET

#ifndef Py_TPFLAGS_DISALLOW_INSTANTIATION
#define Py_TPFLAGS_DISALLOW_INSTANTIATION 0
#endif

#if PY_VERSION_HEX < 0x030B0000
static inline PyObject *
PyType_GetName(PyTypeObject *tp)
{
    return PyObject_GetAttrString((PyObject *)tp, "__name__");
}
#endif

static inline int
PyUnicode_EqualToUTF8Compat(PyObject *u, const char *s)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyUnicode_EqualToUTF8(u, s);
#else
    return PyUnicode_CompareWithASCIIString(u, s) == 0;
#endif
}

#if PY_VERSION_HEX < 0x030D0000
#define Py_IsFinalizing _Py_IsFinalizing
#endif

/* 1 once the object a weak reference points to is gone (PyWeakref_GetObject
 * is deprecated from 3.13). */
static inline int
el_weakref_dead(PyObject *wr)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *obj;
    int r = PyWeakref_GetRef(wr, &obj);
    if (r < 0) {
        PyErr_Clear();
    }
    Py_XDECREF(obj);
    return r <= 0;
#else
    return PyWeakref_GetObject(wr) == Py_None;
#endif
}

/* Takes the pending exception as one normalized object (with its traceback
 * attached), or NULL when none is set. */
static inline PyObject *
el_fetch_exc(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

/* Re-raises an exception taken with el_fetch_exc (steals the reference). */
static inline void
el_restore_exc(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    if (exc == NULL) {
        return;
    }
    PyObject *type = Py_NewRef((PyObject *)Py_TYPE(exc));
    PyObject *tb = PyException_GetTraceback(exc);
    PyErr_Restore(type, exc, tb);
#endif
}

#endif /* ELOOP_COMPAT_H */
