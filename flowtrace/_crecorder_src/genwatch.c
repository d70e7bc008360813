/* flowtrace._crecorder: generators closed where CPython sends no event (both recorders).
 *
 * A suspended generator that is freed is closed: GeneratorExit is thrown in, and a recorder
 * sees PY_THROW then PY_UNWIND -- except when
 *   - 3.13 (until gh-140373's fix) closes a generator suspended at a yield outside any try
 *     block without running its frame: no event at all (`any(f(x) for x in xs)`, a `for`
 *     left by `break`, the garbage collector's closes);
 *   - the close runs inside a monitoring callback written in Python: CPython delivers no
 *     event there, and 3.12+ runs a scheduled garbage collection at the next eval-breaker
 *     check, which is often the Python recorder's own callback (its tuples are allocations).
 * Such a generator stayed "suspended" and ended `unfinished` at stop. A GenRef -- a weak
 * reference to the generator that keeps its interpreter frame -- is called when the generator
 * is freed, just BEFORE its close (weak references are cleared first, both when the refcount
 * drops and in the collector); the generator is still whole then, so close_unseen can tell
 * whether that close will be seen. If not, the owner ends the call there, as the close's
 * unwind would have: `raise GeneratorExit`, at the time the tracer learns it is gone. A close
 * that will be seen is left to its events (ending it here too would end it twice).
 * The Python recorder watches every generator on both versions (watch_generator); the C
 * recorder on 3.13+ every one as it enters its generator map (susp_watch), on 3.12 only where
 * a close can go unseen: its callbacks run no bytecode but in its hooks (a value's __repr__ in
 * --repr full, the wrapper's hooks), so the map's entries are watched just before a hook runs
 * Python code (hook_runs_python -> genwatch_lazy; a GenRef a generator at its first yield cost
 * +21 M instructions on benchmarks' generators, ft/viz 1.00 -> 1.09). */
#include <patchlevel.h>
#if PY_VERSION_HEX < 0x030D0000
/* (3.12: the interpreter's monitoring state, others_may_run; its header needs Python.h's core
 * build, so this file includes it first) */
#define Py_BUILD_CORE 1
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "internal/pycore_interp.h"
#undef Py_BUILD_CORE
#endif
#include "crecorder.h"
#include "structmember.h"
#if PY_VERSION_HEX >= 0x030D0000
#define Py_BUILD_CORE 1
#include "internal/pycore_opcode_utils.h"   /* RESUME_OPARG_DEPTH1_MASK */
#undef Py_BUILD_CORE
#endif

typedef struct {
    PyWeakReference ref;
    _PyInterpreterFrame *frame;     /* the generator's frame (inside the generator object) */
    PyObject *on_gone;              /* watch_generator's callback (Python recorder), else NULL */
    PyObject *data;                 /* passed back to it as ref.data */
    CoreObject *core;               /* the C recorder's (borrowed: it drops its refs at stop) */
    uint64_t gen;                   /* ... in its session of this generation */
    uint32_t call;
} GenRef;

static PyObject *gone_callback;     /* the one weakref callback of every GenRef (genref_gone) */

/* Will the close of this generator, freed now, be delivered as events? 1 if not. */
static int
close_unseen(_PyInterpreterFrame *f)
{
    if (PyThreadState_Get()->tracing > 0) return 1;   /* inside a monitoring/trace callback */
    PyGenObject *gen = _PyFrame_GetGenerator(f);
    if (FRAME_STATE_FINISHED(gen->gi_frame_state)) return 1;   /* closed before, silently (3.13 close()) */
    if (PyAsyncGen_CheckExact(gen) && ((PyAsyncGenObject *)gen)->ag_origin_or_finalizer) return 0;
    /* (an async generator with its loop's finalizer is closed later by the loop: events) */
#if PY_VERSION_HEX >= 0x030D0000 && (PY_VERSION_HEX < 0x030D0A00 || (PY_VERSION_HEX >= 0x030E0000 && PY_VERSION_HEX < 0x030E0100))
    /* gen_close's shortcut (3.13.0-3.13.9, 3.14.0): suspended at the RESUME after a yield
     * whose exception depth is 1 (only the implicit StopIteration handler) -- the frame is
     * completed without running, and no event is sent */
    _Py_CODEUNIT *ip = f->instr_ptr;
    int op = ip->op.code;
    if ((op == RESUME || op == RESUME_CHECK || op == INSTRUMENTED_RESUME) && (ip->op.arg & RESUME_OPARG_DEPTH1_MASK))
        return 1;
#endif
    return 0;
}

static void gone_in_core(GenRef *r, _PyInterpreterFrame *f, int unseen);

/* The weakref callback: the generator of `ref` is being freed (its close comes next). */
static PyObject *
genref_gone(PyObject *Py_UNUSED(m), PyObject *ref)
{
    GenRef *r = (GenRef *)ref;
    if (!r->frame) Py_RETURN_NONE;
    Py_INCREF(ref);   /* (its owner may drop it here: the weakref machinery holds no reference) */
    PyObject *exc = PyErr_GetRaisedException();   /* (a dealloc may come with one set) */
    _PyInterpreterFrame *f = r->frame;
    int unseen = close_unseen(f);
    r->frame = NULL;   /* (called once) */
    if (r->on_gone) {
        PyObject *res = PyObject_CallFunctionObjArgs(r->on_gone, ref, unseen ? Py_True : Py_False, NULL);
        if (res) Py_DECREF(res); else PyErr_Clear();   /* never a traceback from the tracer */
    } else if (r->core) {
        gone_in_core(r, f, unseen);
    }
    PyErr_SetRaisedException(exc);
    Py_DECREF(ref);
    Py_RETURN_NONE;
}

static PyMethodDef gone_def = {"generator_gone", genref_gone, METH_O, "A watched generator is being freed."};

static int
genref_traverse(GenRef *r, visitproc visit, void *arg)
{
    Py_VISIT(r->on_gone);
    Py_VISIT(r->data);
    return _PyWeakref_RefType.tp_traverse((PyObject *)r, visit, arg);
}

static int
genref_clear(GenRef *r)
{
    Py_CLEAR(r->on_gone);
    Py_CLEAR(r->data);
    return _PyWeakref_RefType.tp_clear((PyObject *)r);
}

static void
genref_dealloc(GenRef *r)
{
    PyObject_GC_UnTrack(r);
    Py_CLEAR(r->on_gone);
    Py_CLEAR(r->data);
    _PyWeakref_RefType.tp_dealloc((PyObject *)r);   /* unlinks it: no callback after this */
}

static PyMemberDef genref_members[] = {
    {"data", T_OBJECT, offsetof(GenRef, data), READONLY, "what watch_generator was given"},
    {NULL},
};

static PyTypeObject GenRefType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "flowtrace._crecorder.GenRef",
    .tp_basicsize = sizeof(GenRef),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A weak reference to a suspended generator, called before its close (genwatch.c).",
    .tp_traverse = (traverseproc)genref_traverse,
    .tp_clear = (inquiry)genref_clear,
    .tp_dealloc = (destructor)genref_dealloc,
    .tp_members = genref_members,
};

/* A GenRef to the generator owning frame `f` (NULL with an error set on failure). */
static GenRef *
genref_new(_PyInterpreterFrame *f)
{
    PyObject *argv[2] = {(PyObject *)_PyFrame_GetGenerator(f), gone_callback};
    GenRef *r = (GenRef *)PyObject_Vectorcall((PyObject *)&GenRefType, argv, 2, NULL);
    if (!r) return NULL;
    r->frame = f;
    return r;
}

/* The C recorder: watch the generator of a new generator map entry (callbacks.c, susp_put). */
PyObject *
genwatch_core(CoreObject *c, void *frame, uint32_t call)
{
    _PyInterpreterFrame *f = frame;
    if (f->owner != FRAME_OWNED_BY_GENERATOR) return NULL;
    GenRef *r = genref_new(f);
    if (!r) { PyErr_Clear(); return NULL; }   /* (not watched: it may end unfinished, as before) */
    r->core = c; r->gen = c->gen; r->call = call;
    return (PyObject *)r;
}

/* Drop every generator map entry's watch (start, dealloc: stop drops them as it ends them). */
void
susp_unwatch(CoreObject *c)
{
    for (size_t i = 0; c->susp && i < c->capsusp; i++)
        if (c->susp[i].frame) Py_CLEAR(c->susp[i].rec->watch);
    c->unwatched = 0;
    c->watch_now = 0;
    c->tool = -1;
}

#if !GENWATCH_EAGER
/* 3.12: may Python code have run with events off other than in our hooks since note_monitoring --
 * another sys.monitoring tool's callback, a sys.settrace / sys.setprofile function (tools 6 and 7)?
 * A generator freed there is closed unseen, and its map entry's frame may be freed memory. Yes
 * if the monitoring version moved (events set or cleared by anyone), a tool but ours has global
 * events, or another of the tools that may set local events holds an id. (A C extension that
 * raises a thread's tracing level itself is not seen.) */
static int
others_may_run(const CoreObject *c)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    if (interp->monitoring_version != c->mon_version) return 1;
    unsigned any = 0;
    for (int e = 0; e < _PY_MONITORING_UNGROUPED_EVENTS; e++) any |= interp->monitors.tools[e];
    if (any & ~(1u << c->tool)) return 1;
    for (int t = 0; t < PY_MONITORING_SYS_PROFILE_ID; t++)
        if (t != c->tool && interp->monitoring_tool_names[t]) return 1;
    return 0;
}
#endif

/* note_monitoring(tool): the C recorder's events are on for tool id `tool` (recorder/c.py, after
 * setting them): 3.12 notes the monitoring state genwatch_lazy compares with (others_may_run). */
PyObject *
core_note_monitoring(CoreObject *c, PyObject *tool)
{
    long t = PyLong_AsLong(tool);
    if (t == -1 && PyErr_Occurred()) return NULL;
#if !GENWATCH_EAGER
    if (t < 0 || t >= PY_MONITORING_SYS_PROFILE_ID) { PyErr_SetString(PyExc_ValueError, "not a tool id"); return NULL; }
    c->tool = (int)t;
    c->mon_version = PyInterpreterState_Get()->monitoring_version;
    if (others_may_run(c)) c->watch_now = 1;
#else
    (void)c;
#endif
    Py_RETURN_NONE;
}

/* 3.12, a hook is about to run Python code (hook_runs_python): watch every generator map entry
 * that has no watch yet. Taking a GenRef runs no Python (3.12 only schedules a collection that
 * an allocation asks for), so the map does not move meanwhile. Its frame is read to find its
 * generator, which is sound only if no code ran unseen since it suspended: when other code may
 * have (others_may_run: another tool's callback, a trace function), no entry is read again
 * (those not watched yet end at stop if closed unseen, as before the watch) and every new one
 * is watched at once (watch_now, susp_watch: 3.13's way). The checks below are a second line: an
 * entry that is not a live generator's is left unwatched. (A running record's code is NULL: its
 * code is its code_idx's, as at its resume.) */
void
genwatch_lazy(CoreObject *c)
{
    c->unwatched = 0;
#if !GENWATCH_EAGER
    if (c->watch_now) return;
    if (c->tool >= 0 && others_may_run(c)) { c->watch_now = 1; return; }
#endif
    for (size_t i = 0; i < c->capsusp; i++) {
        if (!c->susp[i].frame) continue;
        Susp *s = c->susp[i].rec;
        if (s->watch) continue;
        _PyInterpreterFrame *f = s->frame;
        void *code = s->code ? s->code : c->codes[s->code_idx].code;
        if (f->owner != FRAME_OWNED_BY_GENERATOR || FRAME_CODE(f) != code) continue;
        PyGenObject *gen = _PyFrame_GetGenerator(f);
        PyTypeObject *tp = Py_TYPE(gen);
        if (!(tp == &PyGen_Type || tp == &PyCoro_Type || tp == &PyAsyncGen_Type) || Py_REFCNT(gen) <= 0) continue;
        s->watch = genwatch_core(c, f, s->call);
    }
}

static void
gone_in_core(GenRef *r, _PyInterpreterFrame *f, int unseen)
{
    CoreObject *c = r->core;
    if (!unseen || !c->active || c->gen != r->gen) return;
    int64_t t = stamp();
    ThreadState *ts = thread_state(c, PyThreadState_Get());
    if (ts && genwatch_end(c, ts, f, r->call, t) < 0) PyErr_Clear();
}

/* watch_generator(frame, on_gone, data): the Python recorder's watch (module docstring). */
static PyObject *
mod_watch_generator(PyObject *Py_UNUSED(m), PyObject *args)
{
    PyObject *frame, *on_gone, *data;
    if (!PyArg_ParseTuple(args, "O!OO:watch_generator", &PyFrame_Type, &frame, &on_gone, &data)) return NULL;
    _PyInterpreterFrame *f = ((PyFrameObject *)frame)->f_frame;
    if (f->owner != FRAME_OWNED_BY_GENERATOR) Py_RETURN_NONE;
    GenRef *r = genref_new(f);
    if (!r) return NULL;
    r->on_gone = Py_NewRef(on_gone);
    r->data = Py_NewRef(data);
    return (PyObject *)r;
}

static PyMethodDef watch_def = {
    "watch_generator", mod_watch_generator, METH_VARARGS,
    "watch_generator(frame, on_gone, data) -> ref | None: on_gone(ref, unseen) when the generator running "
    "`frame` is freed, just before its close; unseen: that close will send no event (genwatch.c).",
};

int
add_genwatch(PyObject *m)
{
    GenRefType.tp_base = &_PyWeakref_RefType;
    if (PyType_Ready(&GenRefType) < 0) return -1;
    if (!gone_callback && !(gone_callback = PyCFunction_New(&gone_def, NULL))) return -1;
    PyObject *w = PyCFunction_New(&watch_def, NULL);
    if (!w) return -1;
    int r = PyModule_AddObjectRef(m, "watch_generator", w);
    Py_DECREF(w);
    return r;
}
