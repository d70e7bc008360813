/* flowtrace._crecorder: the Python recorder's callbacks, guarded against asynchronous exceptions.
 *
 * A signal's Python handler runs at the main thread's next eval-breaker check (a RESUME, a
 * backward jump, the end of a call), and a monitoring callback written in Python has such
 * checks: its first instruction and every call it makes. So a handler's exception (Ctrl-C's
 * KeyboardInterrupt, a SIGTERM handler's SystemExit), or one set by PyThreadState_SetAsyncExc,
 * lands inside the Python recorder's callback, and CPython raises it at the monitored
 * instruction: where the program could not have received it (a return; the resume inside a
 * `yield from`, which has no check: CPython's test_generators SignalAndYieldFromTest sees it in
 * the outer generator instead of the inner one) -- and a callback stopped half-way loses rows.
 *
 * A Guard is what sys.monitoring calls instead. It calls the callback; an exception out of it is
 * taken, and the callback run again if it had written nothing yet: its writes come last, in a
 * run of bytecode without a check (so nothing lands between them), and it sets flag[0] = True
 * first (recorder/python.py) -- so every event is recorded once. Then the exception is delivered
 * again, to land at the program's own next check: on the main thread by a pending call that
 * raises that very exception (the recorder's frames cut from its traceback, its context what
 * the program handles there, as for a handler's raise); on another thread (only
 * PyThreadState_SetAsyncExc raises there, an exception made from a class) by setting that class
 * again. A handler has run once, inside the callback: its own calls are not recorded. */
#include "crecorder.h"
#include <signal.h>   /* SIGINT */

#define GUARD_TRIES 4   /* runs of a callback that keeps raising (a new signal each time) */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *func;         /* the Python callback */
    PyObject *flag;         /* a list [bool]: the callback sets [0] = True before its first write */
    PyObject *prefix;       /* str: frames of files under it are the recorder's (cut from tracebacks) */
    unsigned long main;     /* the main thread's ident (pending calls run there) */
} Guard;

/* A pending call: the main thread's next eval-breaker check raises `arg` there. */
static int
raise_later(void *arg)
{
    PyObject *exc = arg;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);   /* (chains what is handled there, as a raise does) */
    Py_DECREF(exc);
    return -1;
}

/* Is this traceback entry in a frame of the recorder's own code? */
static int
frame_is_ours(PyTracebackObject *tb, PyObject *prefix)
{
    PyCodeObject *code = PyFrame_GetCode(tb->tb_frame);
    int ours = PyUnicode_Check(code->co_filename) && PyUnicode_Tailmatch(code->co_filename, prefix, 0, PY_SSIZE_T_MAX, -1) == 1;
    Py_DECREF(code);
    return ours;
}

/* Deliver `exc` (stolen) again, to land where the program runs next (see the top). */
static void
redeliver(Guard *g, PyObject *exc)
{
    PyException_SetContext(exc, NULL);   /* (ours: an exception the callback was handling) */
    PyObject *tb = PyException_GetTraceback(exc);
    PyObject *rest = tb;
    while (rest && PyTraceBack_Check(rest) && frame_is_ours((PyTracebackObject *)rest, g->prefix))
        rest = (PyObject *)((PyTracebackObject *)rest)->tb_next;
    PyException_SetTraceback(exc, rest ? rest : Py_None);
    Py_XDECREF(tb);
    unsigned long me = PyThread_get_thread_ident();
    if (me == g->main) {
        if (Py_AddPendingCall(raise_later, exc) == 0) return;   /* (it owns exc now) */
        if (PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt)) PyErr_SetInterruptEx(SIGINT);
    } else {
        PyThreadState_SetAsyncExc(me, (PyObject *)Py_TYPE(exc));
    }
    Py_DECREF(exc);
}

static PyObject *
guard_call(Guard *g, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *flag = g->flag;
    PyObject *outer = Py_NewRef(PyList_GET_ITEM(flag, 0));   /* (a nested one: a generator freed in a callback) */
    PyObject *first = NULL, *res;
    for (int tries = 1;; tries++) {
        PyList_SetItem(flag, 0, Py_NewRef(Py_False));
        res = PyObject_Vectorcall(g->func, args, nargsf, kwnames);
        if (res) break;
        PyObject *exc = PyErr_GetRaisedException();
        if (first) Py_DECREF(exc); else first = exc;   /* (two signals before a check: one exception) */
        if (PyList_GET_ITEM(flag, 0) != Py_False || tries == GUARD_TRIES) {   /* written: it is recorded */
            res = Py_NewRef(Py_None);
            break;
        }
    }
    PyList_SetItem(flag, 0, outer);
    if (first) redeliver(g, first);
    return res;
}

static PyObject *
guard_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *func, *flag, *prefix;
    unsigned long main;
    if (!PyArg_ParseTuple(args, "OO!Uk:guard", &func, &PyList_Type, &flag, &prefix, &main)) return NULL;
    if (PyList_GET_SIZE(flag) != 1) {
        PyErr_SetString(PyExc_ValueError, "guard: flag must be a list of one item");
        return NULL;
    }
    Guard *g = (Guard *)type->tp_alloc(type, 0);
    if (!g) return NULL;
    g->vectorcall = (vectorcallfunc)guard_call;
    g->func = Py_NewRef(func);
    g->flag = Py_NewRef(flag);
    g->prefix = Py_NewRef(prefix);
    g->main = main;
    return (PyObject *)g;
}

static int
guard_traverse(Guard *g, visitproc visit, void *arg)
{
    Py_VISIT(g->func);
    Py_VISIT(g->flag);
    return 0;
}

static int
guard_clear(Guard *g)
{
    Py_CLEAR(g->func);
    Py_CLEAR(g->flag);
    Py_CLEAR(g->prefix);
    return 0;
}

static void
guard_dealloc(Guard *g)
{
    PyObject_GC_UnTrack(g);
    guard_clear(g);
    Py_TYPE(g)->tp_free((PyObject *)g);
}

static PyTypeObject GuardType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "flowtrace._crecorder.guard",
    .tp_basicsize = sizeof(Guard),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "guard(func, flag, prefix, main_thread_ident): func as a monitoring callback, with "
              "asynchronous exceptions delivered to the program instead (guard.c).",
    .tp_vectorcall_offset = offsetof(Guard, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = guard_new,
    .tp_traverse = (traverseproc)guard_traverse,
    .tp_clear = (inquiry)guard_clear,
    .tp_dealloc = (destructor)guard_dealloc,
};

int
add_guard(PyObject *m)
{
    if (PyType_Ready(&GuardType) < 0) return -1;
    return PyModule_AddObjectRef(m, "guard", (PyObject *)&GuardType);
}
