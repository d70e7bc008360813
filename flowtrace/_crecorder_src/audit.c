/* flowtrace._crecorder: the process's audit hook, in C.
 *
 * A hook added with sys.addaudithook is a Python call at every audit event of the program:
 * every import and open, and every id() call (builtins.id: copy.deepcopy's memo, many
 * libraries) -- ~3,500 instructions each, ~9,700 events on flask's test_basic. Python only
 * needs two kinds: follow.py's launches (_LAUNCHES) while it follows children, and any event
 * while session.py has a fork resume due (3.13). This hook tests the event name in C and calls
 * Python only for those, with the same (event, args).
 *
 * Audit hooks cannot be removed, so the hook is added once (the first setter) and the Python
 * side sets or clears the callables it holds: audit_launches(f) for launch events,
 * audit_every(f) for every event (None: none). Hooks added from C are the runtime's, called
 * in every interpreter: only the one that added it calls Python. The callables are kept in
 * a forked child (as a Python hook is). */
#include "crecorder.h"

static PyObject *on_launch;          /* called for a launch event (follow.py's _audit), or NULL */
static PyObject *on_every;           /* called for every event (session.py's fork resume), or NULL */
static PyInterpreterState *hook_interp;   /* the interpreter that added the hook (NULL: not added) */

/* follow.py's _LAUNCHES, by first letters then the whole name; and the main program's start
 * (Modules/main.c's cpython.run_command, run_module, run_file, run_stdin...: follow.py's
 * start-up gate waits for it) */
static int
is_launch(const char *e)
{
    if (e[0] == 's') return strcmp(e, "subprocess.Popen") == 0;
    if (e[0] == 'c') return strncmp(e, "cpython.run_", 12) == 0;
    if (e[0] != 'o' || e[1] != 's' || e[2] != '.') return 0;
    e += 3;
    return strcmp(e, "system") == 0 || strcmp(e, "posix_spawn") == 0
        || strcmp(e, "spawn") == 0 || strcmp(e, "exec") == 0;
}

/* Call f(event, args) as a Python hook is called (its exception aborts the audited action). A
 * reference is held across the call: f may clear its own slot. */
static COLD int
call_hook(PyObject *f, const char *event, PyObject *args)
{
    PyObject *name = PyUnicode_FromString(event);
    if (!name) return -1;
    Py_INCREF(f);
    PyObject *r = PyObject_CallFunctionObjArgs(f, name, args, NULL);
    Py_DECREF(f);
    Py_DECREF(name);
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
}

/* The hot path: every audit event of the process (an id() call too). */
static int
audit_hook(const char *event, PyObject *args, void *unused)
{
    (void)unused;
    if (!on_launch && !on_every) return 0;     /* nothing asked for (not following, no resume due) */
    if (PyInterpreterState_Get() != hook_interp) return 0;   /* a subinterpreter: our callables are not its */
    if (on_launch && is_launch(event) && call_hook(on_launch, event, args) < 0) return -1;
    if (on_every && call_hook(on_every, event, args) < 0) return -1;
    return 0;
}

/* Set one slot (None clears it), adding the hook the first time one is set. */
static PyObject *
set_slot(PyObject **slot, PyObject *f)
{
    if (f != Py_None && !PyCallable_Check(f)) {
        PyErr_SetString(PyExc_TypeError, "an audit hook must be callable or None");
        return NULL;
    }
    if (!hook_interp && f != Py_None) {
        /* (a Python hook that raises an Exception at "sys.addaudithook" keeps it out, silently,
         * as for sys.addaudithook) */
        if (PySys_AddAuditHook(audit_hook, NULL) < 0) return NULL;
        hook_interp = PyInterpreterState_Get();
    }
    Py_XSETREF(*slot, f == Py_None ? NULL : Py_NewRef(f));
    Py_RETURN_NONE;
}

static PyObject *
mod_audit_launches(PyObject *m, PyObject *f)
{
    return set_slot(&on_launch, f);
}

static PyObject *
mod_audit_every(PyObject *m, PyObject *f)
{
    return set_slot(&on_every, f);
}

static PyMethodDef audit_methods[] = {
    {"audit_launches", (PyCFunction)mod_audit_launches, METH_O,
     "audit_launches(f): f(event, args) at each launch audit event (follow.py's _LAUNCHES) and cpython.run_*; None: no more."},
    {"audit_every", (PyCFunction)mod_audit_every, METH_O,
     "audit_every(f): f(event, args) at every audit event; None: no more."},
    {NULL},
};

int
add_audit(PyObject *m)
{
    return PyModule_AddFunctions(m, audit_methods);
}
