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
 * again. On the main thread a signal's handler does not run inside the callback's own code: it
 * is held off until the callback returns (sighold.c), then runs in the program, where its own
 * calls are recorded and its exception lands (one that runs inside a user __repr__ the callback
 * calls in --repr full, unheld, has its exception given to the program by reprs.py); what is
 * left to the guard there is an exception set by PyThreadState_SetAsyncExc.
 *
 * The C recorder's callbacks run no bytecode but in their hooks (the wrapper's, a value's text:
 * a user __repr__ in --repr full). An exception that is not an Exception out of one is the
 * program's (hook_exception_to_program: soft_fail), raised again at its next check, the hook's
 * frames cut; reprs.py gives a user __repr__'s to deliver_later and says so in the text. */
#include "crecorder.h"

#define GUARD_TRIES 4   /* runs of a callback that keeps raising (a new signal each time) */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *func;         /* the Python callback */
    PyObject *flag;         /* a list [bool]: the callback sets [0] = True before its first write */
    PyObject *prefix;       /* str: frames of files under it are the recorder's (cut from tracebacks) */
    unsigned long main;     /* the main thread's ident (pending calls run there) */
} Guard;

/* Raise `exc` (stolen; its traceback set) again at the program's next eval-breaker check: on the
 * main thread at its next check outside a callback (sighold.c's program_gets), on another (only
 * PyThreadState_SetAsyncExc, a program's own raise or a SystemExit raise there: an exception
 * class) by setting its class. */
static void
deliver(PyObject *exc, int on_main)
{
    if (on_main) {
        program_gets(exc);
        return;
    }
    PyException_SetContext(exc, NULL);   /* (the hook's: an exception it was handling) */
    PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), (PyObject *)Py_TYPE(exc));
    Py_DECREF(exc);
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

/* Cut the frames of the recorder's own code (files under `prefix`; NULL: every frame) from the
 * start of exc's traceback: a handler's that ran inside them stay, as Python shows them. */
static void
cut_ours(PyObject *exc, PyObject *prefix)
{
    PyObject *tb = PyException_GetTraceback(exc), *rest = tb;
    while (prefix && rest && PyTraceBack_Check(rest) && frame_is_ours((PyTracebackObject *)rest, prefix))
        rest = (PyObject *)((PyTracebackObject *)rest)->tb_next;
    PyException_SetTraceback(exc, rest && prefix ? rest : Py_None);
    Py_XDECREF(tb);
}

/* Deliver `exc` (stolen) again, to land where the program runs next (see the top). */
static void
redeliver(Guard *g, PyObject *exc)
{
    cut_ours(exc, g->prefix);
    deliver(exc, PyThread_get_thread_ident() == g->main);
}

/* The directory of the tracer's own files (flowtrace/, as python.py's _OURS), or NULL. */
static PyObject *
ours_prefix(void)
{
    static PyObject *prefix;
    if (prefix) return prefix;
    PyObject *m = PyImport_AddModule("flowtrace._crecorder");   /* borrowed (loaded: it is us) */
    PyObject *file = m ? PyModule_GetFilenameObject(m) : NULL;
    Py_ssize_t cut = file ? PyUnicode_FindChar(file, '/', 0, PY_SSIZE_T_MAX, -1) : -1;
    if (cut >= 0) prefix = PyUnicode_Substring(file, 0, cut + 1);
    Py_XDECREF(file);
    if (!prefix) PyErr_Clear();
    return prefix;
}

/* A hook's exception that is the program's gets the traceback Python would show: the hook's
 * frames cut (the tracer's own, at its start), a signal handler's kept. */
void
hook_traceback_cut(PyObject *exc)
{
    cut_ours(exc, ours_prefix());
}

/* The C recorder's hooks (soft_fail): an exception that is not an Exception out of a hook's
 * Python code -- a signal handler's that ran there (Ctrl-C's KeyboardInterrupt, a SystemExit),
 * set with PyThreadState_SetAsyncExc, a user __repr__'s own -- is the program's: raised again
 * at its next check, as a signal's lands untraced (hook_traceback_cut). 1 if the error set was
 * one (taken), 0 if not (left set). */
int
hook_exception_to_program(void)
{
    PyObject *exc = PyErr_GetRaisedException();
    if (!exc || PyErr_GivenExceptionMatches(exc, PyExc_Exception)) {
        PyErr_SetRaisedException(exc);
        return 0;
    }
    hook_traceback_cut(exc);
    deliver(exc, signals_main_thread());
    return 1;
}

/* Python code called inside a monitoring callback, where CPython sends no event (the Python
 * recorder's guarded callbacks, the C recorder's value and exception text hooks: the program's
 * __repr__/__str__):
 * - on the main thread the program's signal handlers wait for the program's next check, outside
 *   the callback (sighold.c): there they are recorded and their exception -- Ctrl-C's, a SIGALRM
 *   timeout's -- lands as untraced, instead of inside our code or a value's repr;
 * - a collection run there (at its first eval-breaker check) ran the program's finalizers --
 *   __del__, weakref callbacks -- unrecorded (20000 __del__ calls: 1471 recorded by the Python
 *   recorder, 281 by the C recorder's --repr full). From 3.13 a scheduled collection is skipped
 *   while the collector is disabled, so it is held off for the call and runs at the program's next
 *   allocation. 3.12 runs a scheduled collection even when disabled: nothing to gain there
 *   (README, "Limitations"). */
PyObject *
call_in_callback(PyObject *func, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    int held = signals_hold();
#if PY_VERSION_HEX >= 0x030D0000
    int gc_was = PyGC_Disable();
    PyObject *r = PyObject_Vectorcall(func, args, nargsf, kwnames);
    if (gc_was) PyGC_Enable();
#else
    PyObject *r = PyObject_Vectorcall(func, args, nargsf, kwnames);
#endif
    signals_release(held);
    return r;
}

/* deliver_later(exc): reprs.py's, for a user __repr__'s exception that is the program's (see
 * reprs._the_programs): its traceback as given. */
static PyObject *
mod_deliver_later(PyObject *Py_UNUSED(m), PyObject *exc)
{
    if (!PyExceptionInstance_Check(exc)) {
        PyErr_SetString(PyExc_TypeError, "deliver_later: an exception instance is required");
        return NULL;
    }
    deliver(Py_NewRef(exc), signals_main_thread());
    Py_RETURN_NONE;
}

static PyMethodDef deliver_def = {
    "deliver_later", mod_deliver_later, METH_O,
    "deliver_later(exc): raise exc again at the program's next eval-breaker check, outside any "
    "monitoring callback (guard.c); on a thread other than the main one, its class.",
};

/* unheld(func, arg): reprs.py's, for a user __repr__ (sighold.c's program_code). */
static PyObject *
mod_unheld(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "unheld(func, arg): two arguments");
        return NULL;
    }
    return program_code(args[0], args[1]);
}

static PyMethodDef unheld_def = {
    "unheld", (PyCFunction)(void (*)(void))mod_unheld, METH_FASTCALL,
    "unheld(func, arg): func(arg) -- the program's own code called from a hook -- with the "
    "program's signal handlers not held off while it runs (sighold.c).",
};

static PyObject *
guard_call(Guard *g, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *flag = g->flag;
    PyObject *outer = Py_NewRef(PyList_GET_ITEM(flag, 0));   /* (a nested one: a generator freed in a callback) */
    PyObject *first = NULL, *res;
    for (int tries = 1;; tries++) {
        PyList_SetItem(flag, 0, Py_NewRef(Py_False));
        res = call_in_callback(g->func, args, nargsf, kwnames);
        if (res) break;
        PyObject *exc = PyErr_GetRaisedException();
        if (PyErr_GivenExceptionMatches(exc, PyExc_RecursionError)) {
            /* the program's stack is at its limit, where the callback's frame does not fit: not
             * an exception that landed in it but the callback's own failure. The event goes
             * unrecorded (another run fails the same); delivered, the program would see a second
             * RecursionError where it handles its own, as untraced it does not */
            Py_DECREF(exc);
            res = Py_NewRef(Py_None);
            break;
        }
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
    if (PyType_Ready(&GuardType) < 0 || PyModule_AddObjectRef(m, "guard", (PyObject *)&GuardType) < 0) return -1;
    PyObject *d = PyCFunction_New(&deliver_def, NULL);
    if (!d) return -1;
    int r = PyModule_AddObjectRef(m, "deliver_later", d);
    Py_DECREF(d);
    PyObject *u = r < 0 ? NULL : PyCFunction_New(&unheld_def, NULL);
    if (!u) return -1;
    r = PyModule_AddObjectRef(m, "unheld", u);
    Py_DECREF(u);
    return r;
}
