/* flowtrace._crecorder: the Core type and the module. */
#include "crecorder.h"

uint64_t generation_counter;
PyObject *DISABLE;
PyObject *thread_key;         /* key of our capsule in each thread's state dict */
PyObject *str_name, *str_root, *str_empty, *str_module_key, *str_builtins;
PyObject *str_asyncio, *str_events, *str_get_running_loop, *str_current_task, *str_tasks, *str_current_tasks;
/* exception types whose __str__ runs no user code: reprs._BUILTIN_STR (checked at import) */
PyObject **builtin_str_types[N_BUILTIN_STR] = {
    &PyExc_BaseException, &PyExc_KeyError, &PyExc_UnicodeError, &PyExc_UnicodeDecodeError,
    &PyExc_UnicodeEncodeError, &PyExc_UnicodeTranslateError, &PyExc_OSError, &PyExc_SyntaxError,
    &PyExc_ImportError, &PyExc_StopIteration, &PyExc_SystemExit,
};
struct CoreObject *active_core;

/* ------------------------------------------------------------------------------------ */
/* The Core type                                                                          */

static int
core_init(CoreObject *c, PyObject *args, PyObject *kw)
{
    static char *names[] = {"args_mode", "on_code", "on_thread", "exc_text", "repr_now", "task_hook",
                            "task_created", "tasks_out", "funcs_out", NULL};
    int mode = 1;
    PyObject *on_code, *on_thread, *exc_text, *repr_now, *task_hook, *task_created, *tasks_out, *funcs_out;
    if (PyTuple_GET_SIZE(args) == 0 && (!kw || PyDict_GET_SIZE(kw) == 0)) return 0;   /* hooks later */
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iOOOOOOO!O!", names, &mode, &on_code, &on_thread,
                                     &exc_text, &repr_now, &task_hook, &task_created,
                                     &PyList_Type, &tasks_out, &PyList_Type, &funcs_out))
        return -1;
    if (c->active) { PyErr_SetString(PyExc_RuntimeError, "the recorder is running"); return -1; }
    if (mode < 0 || mode > 2) { PyErr_SetString(PyExc_ValueError, "args_mode must be 0, 1 or 2"); return -1; }
    c->args_mode = mode;
    Py_XSETREF(c->on_code, Py_NewRef(on_code));
    Py_XSETREF(c->on_thread, Py_NewRef(on_thread));
    Py_XSETREF(c->exc_text, Py_NewRef(exc_text));
    Py_XSETREF(c->repr_now, Py_NewRef(repr_now));
    Py_XSETREF(c->task_hook, Py_NewRef(task_hook));
    Py_XSETREF(c->task_created, Py_NewRef(task_created));
    Py_XSETREF(c->tasks_out, Py_NewRef(tasks_out));
    Py_XSETREF(c->funcs_out, Py_NewRef(funcs_out));
    return 0;
}

static int
core_traverse(CoreObject *c, visitproc visit, void *arg)
{
    Py_VISIT(c->on_code); Py_VISIT(c->on_thread); Py_VISIT(c->exc_text); Py_VISIT(c->repr_now);
    Py_VISIT(c->task_hook); Py_VISIT(c->task_created); Py_VISIT(c->tasks_out); Py_VISIT(c->funcs_out); Py_VISIT(c->overflow);
    Py_VISIT(c->on_exit);
    return 0;
}

static int
core_clear(CoreObject *c)
{
    Py_CLEAR(c->on_code); Py_CLEAR(c->on_thread); Py_CLEAR(c->exc_text); Py_CLEAR(c->repr_now);
    Py_CLEAR(c->task_hook); Py_CLEAR(c->task_created); Py_CLEAR(c->tasks_out);
    Py_CLEAR(c->funcs_out); Py_CLEAR(c->overflow); Py_CLEAR(c->on_exit);
    c->overflow_rows = c->overflow_at = SIZE_MAX;
    return 0;
}

static void
core_dealloc(CoreObject *c)
{
    PyObject_GC_UnTrack(c);
    c->active = 0;
    fast_update(c);
    pack_ids_clear(c);
    clear_pending(c);
    clear_codes(c);
    clear_verdicts(c);
    PyMem_RawFree(c->verdicts);
    clear_seeds(c);
    clear_tasks_seen(c);
    core_clear(c);
    stab_free(&c->stab);
    tmemo_clear(c);
    PyMem_RawFree(c->tmemo);
    free_calls(&c->calls); free_exits(&c->exits);
    col_free(c->marks);
    PyMem_RawFree(c->strs); PyMem_RawFree(c->slots); PyMem_RawFree(c->codes); PyMem_RawFree(c->fast); PyMem_RawFree(c->crec);
    susp_unwatch(c);   /* (no callback into a freed core) */
    PyMem_RawFree(c->susp); PyMem_RawFree(c->lost); PyMem_RawFree(c->seeds);
    for (size_t i = 0; i < c->susp_pool.nblocks; i++) PyMem_RawFree(c->susp_pool.blocks[i]);
    PyMem_RawFree(c->susp_pool.blocks);
    col_free(c->spare_marks);
    PyMem_RawFree(c->spare_strs); PyMem_RawFree(c->spare_slots);
    PyMem_RawFree(c->packed); PyMem_RawFree(c->spare_packed);
    PyMem_RawFree(c->rec_items); PyMem_RawFree(c->rec_labs);
    PyMem_RawFree(c->hot);
    PyMem_RawFree(c->small_vals.tab);
    for (int i = 0; i < EXC_TYPES; i++) PyMem_RawFree(c->exc_small[i].tab.tab);
    PyMem_RawFree(c->small_args);
    PyMem_RawFree(c->small_names);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

/* The hooks are bound methods of the wrapper, which holds this core: dropping them after
 * stop breaks that cycle, so a finished recorder is freed at once (not at the next GC). */
static PyObject *
core_release(CoreObject *c, PyObject *Py_UNUSED(ignored))
{
    if (c->active) { PyErr_SetString(PyExc_RuntimeError, "the recorder is running"); return NULL; }
    core_clear(c);
    Py_RETURN_NONE;
}

#define CB(name, fn, doc) {name, (PyCFunction)(void (*)(void))fn, METH_FASTCALL, doc}
static PyMethodDef core_methods[] = {
    CB("py_start", cb_py_start, "PY_START callback"),
    CB("py_resume", cb_py_resume, "PY_RESUME callback"),
    CB("py_throw", cb_py_throw, "PY_THROW callback"),
    CB("py_return", cb_py_return, "PY_RETURN callback"),
    CB("py_yield", cb_py_yield, "PY_YIELD callback"),
    CB("py_unwind", cb_py_unwind, "PY_UNWIND callback"),
    CB("exception_handled", cb_exception_handled, "EXCEPTION_HANDLED callback"),
    CB("reraise", cb_reraise, "RERAISE callback"),
    {"callback", (PyCFunction)core_callback, METH_O, "callback(name): the object to register for that event (faster to call than the method)."},
    CB("drain", core_drain, "drain(render_obj, type_label, origin_ns) -> the batch's chunk payloads and texts."),
    CB("release_classes", core_release_classes,
       "release_classes(render_obj, type_label) -> bool: the classes a collection about to start could free, released from the batch (collect.c)."),
    {"start", (PyCFunction)core_start, METH_NOARGS, "Begin a session (new ids, new generation)."},
    {"seed", (PyCFunction)core_seed, METH_VARARGS, "seed(ident, frames): partial calls running at start."},
    {"stop", (PyCFunction)core_stop, METH_NOARGS, "End every open call as unfinished; stop recording."},
    {"pending", (PyCFunction)core_pending, METH_NOARGS, "Rows waiting for the next drain."},
    {"release", (PyCFunction)core_release, METH_NOARGS, "Drop the hooks (after stop; __init__ sets them again)."},
    {"stats", (PyCFunction)core_stats, METH_NOARGS, "Counters for tests and diagnostics."},
    {"note_monitoring", (PyCFunction)core_note_monitoring, METH_O,
     "note_monitoring(tool): our events are on for that tool id (genwatch.c: what others may run)."},
    {"set_overflow", (PyCFunction)core_set_overflow, METH_VARARGS,
     "set_overflow(hook, rows): call hook() on the recording thread when rows are pending (None: never)."},
    {"set_exit_hook", (PyCFunction)core_set_exit_hook, METH_O,
     "set_exit_hook(hook): call hook(exc) when a SystemExit leaves a thread's outermost frame (None: never)."},
    {NULL},
};

static PyObject *
core_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    CoreObject *c = (CoreObject *)PyType_GenericNew(type, args, kw);
    if (c) {
        c->overflow_rows = c->overflow_at = SIZE_MAX;   /* no overflow hook: the compare never passes */
        /* no fast path before start (fast_update): 0 is the gen of every thread state a stop
         * ended (core_stop), and a new core's vectorcall callbacks took the fast path on such a
         * state -- its stack's sentinel pointing into a freed core's generator records
         * (tests/test_crecorder.py test_registered_callbacks_are_the_cores_own_objects crashed
         * in vc_cb_py_resume once the batch buffers' blocks moved malloc's layout) */
        c->fast_gen = FAST_NEVER;
    }
    return (PyObject *)c;
}

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "flowtrace._crecorder.Core",
    .tp_basicsize = sizeof(CoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C recording core: monitoring callbacks and event buffers of one session.",
    .tp_new = core_new,
    .tp_init = (initproc)core_init,
    .tp_traverse = (traverseproc)core_traverse,
    .tp_clear = (inquiry)core_clear,
    .tp_dealloc = (destructor)core_dealloc,
    .tp_methods = core_methods,
};

/* ------------------------------------------------------------------------------------ */

static PyObject *
mod_now(PyObject *m, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(now_ns());
}

/* In a forked child only the forking thread exists: forget the other threads' stacks (their
 * states stay allocated: their capsules are freed with their thread states). */
static PyObject *
mod_after_fork(PyObject *m, PyObject *Py_UNUSED(ignored))
{
    for (ThreadState *ts = all_threads.next; ts != &all_threads; ts = ts->next)
        if (ts != tls_state) { ts->gen = 0; ts->depth = 0; ts->tstate = NULL; }
    Py_RETURN_NONE;
}

/* flowtrace/untraced.py: the calling thread's monitoring events off / on again (the switch
 * CPython flips while a callback runs), around flowtrace's own work. Paired by the caller.
 * own_tracing: the levels this thread holds that way (gc_phase), and the callback's own level
 * while the backpressure hook runs in it (threads.c overflow_slow). */
_Thread_local int own_tracing;
static _Thread_local int gc_tracing = -1;   /* the level gc_phase took off for a collection, or -1 */
static _Thread_local Py_ssize_t gc_starts, gc_stops;   /* gc_phase's calls so far in this thread's collection, at its start and at its stop */

static PyObject *
mod_suspend_events(PyObject *m, PyObject *Py_UNUSED(ignored))
{
    PyThreadState_EnterTracing(PyThreadState_Get());
    own_tracing++;
    Py_RETURN_NONE;
}

static PyObject *
mod_resume_events(PyObject *m, PyObject *Py_UNUSED(ignored))
{
    PyThreadState *tstate = PyThreadState_Get();
    if (tstate->tracing > 0) {   /* never below zero */
        PyThreadState_LeaveTracing(tstate);
        if (own_tracing > 0) own_tracing--;
    }
    Py_RETURN_NONE;
}

static PyObject *mod_gc_phase(PyObject *m, PyObject *const *args, Py_ssize_t nargs);

/* gc.callbacks (borrowed: one list for the interpreter's life), or NULL. */
static PyObject *
gc_callbacks(void)
{
    static PyObject *callbacks;
    if (!callbacks) {
        PyObject *gc = PyImport_ImportModule("gc");
        callbacks = gc ? PyObject_GetAttrString(gc, "callbacks") : NULL;
        Py_XDECREF(gc);
        if (!callbacks || !PyList_Check(callbacks)) { PyErr_Clear(); Py_CLEAR(callbacks); }
    }
    return callbacks;
}

static inline int
is_gc_phase(PyObject *cb)
{
    return PyCFunction_Check(cb) && PyCFunction_GET_FUNCTION(cb) == (PyCFunction)(void (*)(void))mod_gc_phase;
}

/* How many places gc_phase holds in gc.callbacks now (the list is short: a few entries). */
static Py_ssize_t
gc_phase_places(void)
{
    PyObject *callbacks = gc_callbacks();
    Py_ssize_t places = 0;
    for (Py_ssize_t i = 0; callbacks && i < PyList_GET_SIZE(callbacks); i++)
        places += is_gc_phase(PyList_GET_ITEM(callbacks, i));
    return callbacks ? places : 1;
}

/* place_gc_phase(on): gc_phase first and last in gc.callbacks (on), or out of it -- where the
 * program put its own callbacks since (hypothesis inserts at 0). Placed not while a collection
 * runs: the interpreter calls the list's entries by index, and moving them would skip or repeat
 * one of the program's (untraced.py places it whenever our work starts). */
static PyObject *
mod_place_gc_phase(PyObject *m, PyObject *arg)
{
    PyObject *callbacks = gc_callbacks();
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    if (!callbacks || (on && gc_collecting())) Py_RETURN_NONE;
    Py_ssize_t n = PyList_GET_SIZE(callbacks);
    if (on && n >= 2 && is_gc_phase(PyList_GET_ITEM(callbacks, 0))
            && is_gc_phase(PyList_GET_ITEM(callbacks, n - 1)))
        Py_RETURN_NONE;   /* (nearly always: as it was) */
    for (Py_ssize_t i = n - 1; i >= 0; i--)
        if (is_gc_phase(PyList_GET_ITEM(callbacks, i)) && PySequence_DelItem(callbacks, i) < 0) return NULL;
    if (!on) Py_RETURN_NONE;
    PyObject *phase = PyObject_GetAttrString(m, "gc_phase");
    if (!phase) return NULL;
    int rc = PyList_Insert(callbacks, 0, phase) < 0 ? -1 : PyList_Append(callbacks, phase);
    Py_DECREF(phase);
    if (rc < 0) return NULL;
    Py_RETURN_NONE;
}

/* gc_phase(phase, info): in gc.callbacks while a session records (session.py). A collection can
 * start in flowtrace's own work -- the flusher thread's Python code, whose allocations (3.13:
 * the collection runs on the thread that asked for it) or eval-breaker checks (3.12: on any
 * thread) run a due collection there -- with the thread's events off (suspended), so the
 * program's finalizers it ran went unrecorded (300,000 cycles at --flush-interval 0.001: 698 to
 * 1,384 __del__ calls missing). When the events are off by our switch alone (not inside a
 * monitoring callback, where CPython turns them off itself), they are on for the collection:
 * its finalizers are recorded, on the thread that ran them. The backpressure hook (a drain on
 * the program's thread, inside a callback whose row is complete) counts as our work too.
 * Outside our work, a collection that could free a class a batch holds has it released from
 * the batch first (collect.c).
 * The program's gc.callbacks run in the collection too, at its start and at its stop: so that
 * both calls of each are recorded, gc_phase is in the list twice, first and last (untraced.py
 * puts it back there whenever our work starts): its first "start" turns the events on, its
 * last "stop" -- the stop calls counted against its places in the list then -- off. */
static PyObject *
mod_gc_phase(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || !PyUnicode_Check(args[0])) Py_RETURN_NONE;
    PyThreadState *tstate = PyThreadState_Get();
    if (PyUnicode_CompareWithASCIIString(args[0], "start") == 0) {
        int first = gc_starts++ == 0;
        if (gc_starts >= gc_phase_places()) gc_starts = 0;   /* (its last place: counted afresh next time) */
        if (!first) Py_RETURN_NONE;   /* (its later place: the start is done) */
        if (own_tracing > 0 && tstate->tracing == own_tracing && gc_tracing < 0) {
            gc_tracing = tstate->tracing;
            tstate->tracing = 0;
        } else {
            before_collection(tstate, nargs > 1 ? args[1] : NULL);   /* (collect.c: a class it could free) */
        }
        Py_RETURN_NONE;
    }
    if (++gc_stops < gc_phase_places()) Py_RETURN_NONE;   /* "stop", not at its last place yet */
    gc_stops = 0;
    if (gc_tracing >= 0) {
        tstate->tracing = gc_tracing;
        gc_tracing = -1;
    }
    Py_RETURN_NONE;
}

/* builtin_text(value, safe=False): reprs.value_text's text as the callbacks make it for a
 * builtin container or scalar (safe: other objects inside as placeholders), or None where
 * they ask the wrapper's hook (tests compare the two). */
static PyObject *
mod_builtin_text(PyObject *m, PyObject *args)
{
    PyObject *v;
    int safe = 0;
    if (!PyArg_ParseTuple(args, "O|p:builtin_text", &v, &safe)) return NULL;
    PyObject *t = builtin_text_now(v, safe);
    if (!t && !PyErr_Occurred()) Py_RETURN_NONE;
    return t;
}

static PyMethodDef mod_methods[] = {
    {"expand_strings", (PyCFunction)mod_expand_strings, METH_O,
     "expand_strings(payload) -> bytes: a STRS payload with its value records made into texts (format.py)."},
    {"decode_varints", (PyCFunction)(void (*)(void))mod_decode_varints, METH_FASTCALL,
     "decode_varints(body, rows, encoding[, base]) -> bytes: a varint column's rows as little-endian i64 (format.py)."},
    {"decode_shared", (PyCFunction)(void (*)(void))mod_decode_shared, METH_FASTCALL,
     "decode_shared(stream, rows, earlier) -> bytes: a shared column's rows as little-endian i64 (format.py)."},
    {"func_json", (PyCFunction)mod_func_json, METH_O,
     "func_json(functions) -> bytes | None: a FUNC payload, json_payload's bytes, for func_entry's entries (format.py)."},
    {"func_entry", (PyCFunction)(void (*)(void))mod_func_entry, METH_FASTCALL,
     "func_entry(fid, code, module) -> dict: recorder/common.func_entry's FUNC entry, made in C."},
    {"forget_verdicts", (PyCFunction)mod_forget_verdicts, METH_NOARGS,
     "forget_verdicts(): code was marked (filters.py): every core forgets the answers it kept by name."},
    {"builtin_text", (PyCFunction)mod_builtin_text, METH_VARARGS,
     "builtin_text(value, safe=False): the C text of a builtin value (None: the hook's)."},
    {"now", (PyCFunction)mod_now, METH_NOARGS, "The recorder's clock in ns (CLOCK_MONOTONIC, as rows are after the drain)."},
    {"suspend_events", (PyCFunction)mod_suspend_events, METH_NOARGS, "No monitoring event on this thread until resume_events() (flowtrace/untraced.py)."},
    {"resume_events", (PyCFunction)mod_resume_events, METH_NOARGS, "Undo one suspend_events() on this thread."},
    {"place_gc_phase", (PyCFunction)mod_place_gc_phase, METH_O,
     "place_gc_phase(on): gc_phase first and last in gc.callbacks (on), or out of it; not during a collection."},
    {"gc_phase", (PyCFunction)(void (*)(void))mod_gc_phase, METH_FASTCALL,
     "gc_phase(phase, info): for gc.callbacks -- a collection started in flowtrace's own work runs with events on."},
    {"set_collect_hook", (PyCFunction)mod_set_collect_hook, METH_O,
     "set_collect_hook(hook): hook() releases from the batch (or drains) the classes a collection about to start could free (collect.c; None: never)."},
    {"after_fork_child", (PyCFunction)mod_after_fork, METH_NOARGS, "Reset thread states in a forked child."},
    {NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "flowtrace._crecorder",
    "The C hot path of the flowtrace recorder (see flowtrace/recorder/c.py).", -1, mod_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__crecorder(void)
{
    if (PyType_Ready(&CoreType) < 0) return NULL;
    clock_init();
    if (extra_index < 0) {
        extra_index = PyUnstable_Eval_RequestCodeExtraIndex(NULL);
        if (extra_index < 0) return NULL;
        extra_inline = extra_layout_check();
    }
    PyObject *sys = PyImport_ImportModule("sys");
    if (!sys) return NULL;
    PyObject *monitoring = PyObject_GetAttrString(sys, "monitoring");
    Py_DECREF(sys);
    if (!monitoring) return NULL;
    DISABLE = PyObject_GetAttrString(monitoring, "DISABLE");
    Py_DECREF(monitoring);
    if (!DISABLE) return NULL;
    PyObject *tm = PyImport_ImportModule("_tracemalloc");   /* (buffers.c tracing_memory) */
    tracemalloc_is_tracing = tm ? PyObject_GetAttrString(tm, "is_tracing") : NULL;
    Py_XDECREF(tm);
    if (!tracemalloc_is_tracing) PyErr_Clear();   /* (then no payload is kept) */
    for (int i = 0; i < N_BUILTIN_STR; i++) builtin_str[i] = ((PyTypeObject *)*builtin_str_types[i])->tp_str;
    if (!(thread_key = PyUnicode_InternFromString("flowtrace._crecorder.thread"))) return NULL;
    if (!(str_name = PyUnicode_InternFromString("__name__"))) return NULL;
    if (!(str_module_key = PyUnicode_InternFromString("__module__"))) return NULL;
    if (!(str_asyncio = PyUnicode_InternFromString("asyncio"))) return NULL;
    if (!(str_events = PyUnicode_InternFromString("events"))) return NULL;
    if (!(str_get_running_loop = PyUnicode_InternFromString("_get_running_loop"))) return NULL;
    if (!(str_current_task = PyUnicode_InternFromString("current_task"))) return NULL;
    if (!(str_tasks = PyUnicode_InternFromString("tasks"))) return NULL;
    if (!(str_current_tasks = PyUnicode_InternFromString("_current_tasks"))) return NULL;
    if (!(str_builtins = PyUnicode_InternFromString("builtins"))) return NULL;
    if (!(str_root = PyUnicode_InternFromString("root"))) return NULL;
    if (!(str_empty = PyUnicode_FromString(""))) return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "Core", (PyObject *)&CoreType) < 0) { Py_DECREF(m); return NULL; }
    if (add_native_writer(m) < 0) { Py_DECREF(m); return NULL; }
    if (add_genwatch(m) < 0) { Py_DECREF(m); return NULL; }
    if (add_guard(m) < 0) { Py_DECREF(m); return NULL; }
    if (add_audit(m) < 0) { Py_DECREF(m); return NULL; }
    if (add_profile_pass(m) < 0) { Py_DECREF(m); return NULL; }
    /* the constants shared with reprs.py and ftr/format.py: recorder/c.py compares them at
     * import (a mismatch is an ImportError, and the Python recorder is used) */
    PyObject *consts = Py_BuildValue(
        "{sisisisisisisisisisisisisisisisislslsisisisisisisisisisisisisisisisisisisisi}", "MAX_STRING", MAX_STRING, "MAX_TEXT", MAX_TEXT,
        "MAX_ITEMS", MAX_ITEMS, "MAX_DEPTH", MAX_DEPTH,
        "END_RETURN", END_RETURN, "END_RAISE", END_RAISE, "END_UNFINISHED", END_UNFINISHED, "END_RAISE_HERE", END_RAISE_HERE,
        "MARK_SUSPEND", MARK_SUSPEND, "MARK_RESUME", MARK_RESUME, "MARK_THROW", MARK_THROW,
        "MARK_RAISE", MARK_RAISE, "MARK_HANDLED", MARK_HANDLED, "MARK_FOLD", MARK_FOLD, "CALL_PARTIAL", CALL_PARTIAL,
        "N_BUILTIN_STR", N_BUILTIN_STR, "FUNC_OWN", FUNC_OWN, "CODE_SAME", CODE_SAME,
        "ENC_VARINT_DELTA", ENC_VARINT_DELTA, "ENC_VARINT", ENC_VARINT, "ENC_CONST", ENC_CONST,
        "ENC_PARENT", ENC_PARENT, "ENC_SPARSE_DELTA", ENC_SPARSE_DELTA, "ENC_SPARSE", ENC_SPARSE, "ENC_BITS", ENC_BITS,
        "ENC_GOLOMB_DELTA", ENC_GOLOMB_DELTA, "ENC_GOLOMB", ENC_GOLOMB, "ENC_GOLOMB_PARENT", ENC_GOLOMB_PARENT,
        "ENC_GOLOMB_RISE", ENC_GOLOMB_RISE, "ENC_DEFLATE", ENC_DEFLATE, "ENC_SHARED", ENC_SHARED, "DEFLATE_COLUMNS", DEFLATE_COLUMNS, "RS_TUPLE", RS_TUPLE, "RS_LIST", RS_LIST, "RS_TEXT_AT", RS_TEXT_AT,
        "SAMPLE_SPAN", SAMPLE_SPAN, "ZLIB_MIN_BYTES_PER_CALL", ZLIB_MIN_BYTES_PER_CALL,
        "ZLIB_MAX_STRS_PER_MARK", ZLIB_MAX_STRS_PER_MARK);
    PyObject *str_tuple = PyTuple_New(N_BUILTIN_STR);   /* their __str__ make reprs._BUILTIN_STR */
    for (int i = 0; str_tuple && i < N_BUILTIN_STR; i++) PyTuple_SET_ITEM(str_tuple, i, Py_NewRef(*builtin_str_types[i]));
    if (!str_tuple || PyModule_AddObjectRef(m, "BUILTIN_STR_TYPES", str_tuple) < 0) {
        Py_XDECREF(str_tuple); Py_XDECREF(consts); Py_DECREF(m); return NULL;
    }
    Py_DECREF(str_tuple);
    int added = consts ? PyModule_AddObjectRef(m, "CONSTANTS", consts) : -1;
    Py_XDECREF(consts);
    if (added < 0) { Py_DECREF(m); return NULL; }
    /* which hot-path clock the callbacks read (tests, flowtrace --version) */
    if (PyModule_AddStringConstant(m, "CLOCK", use_tsc ? "tsc" : "monotonic") < 0) { Py_DECREF(m); return NULL; }
    return m;
}
