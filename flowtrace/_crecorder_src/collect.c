/* flowtrace._crecorder: a collection that could free a class the batch holds is preceded by a
 * flush, so that recording never keeps a class alive.
 *
 * A batch holds a reference to the type of every instance it captured (V_OPAQUE, packed
 * instances, record labels) and to every class passed or returned (V_CLASS) until the drain
 * renders their texts. Classes are never freed by their reference count alone (a class is in a
 * cycle through its own __mro__), only by a collection; so if the batch is drained before any
 * collection that could free one, the program sees its classes die exactly when they would
 * without us. Before, a class made and dropped in a test lived until the next drain (at most
 * one flush interval): `weakref.ref(cls)()` was not None after gc.collect(), the base's
 * __subclasses__() still listed it (attrs' own tests failed two of 1,329 under `flowtrace run
 * --include '*'`).
 *
 * Which collections: the young generations being collected are walked for heap types (about
 * 5 instructions an object, against the collection's own ~100+), and only when the recording
 * core's batch holds one of them that is not its module's attribute (a class defined at a
 * module's top level: sys.modules reaches it) is it flushed; a full collection (its list is
 * the whole heap: not walked) when the batch holds any such class. A batch that holds no value
 * (--no-args) is never looked at. Flask 3.1.1's test_basic under `flowtrace run --include '*'`:
 * 51 flushes more (classes made while a module is imported, before it names them; the tests'
 * own classes), +47 M instructions, ~2 % of the recording's cost (smaller batches share fewer
 * texts). Flushing at every young collection that found any class cost +186 M (105 flushes,
 * with signals held at ~1.5 M instructions a flush then); without the module test, 102.
 *
 * Not covered: a collection that starts inside our own work (an allocation in a callback, the
 * drain, the flusher's Python code: `tstate->tracing` is set) cannot drain there; a class
 * freed by that very collection then lives until the next one. */
#define PY_SSIZE_T_CLEAN
#define Py_BUILD_CORE 1   /* (before Python.h: the interpreter's state, its gc generations) */
#include <Python.h>
#include "internal/pycore_interp.h"
#undef Py_BUILD_CORE
#include "crecorder.h"

static PyObject *collect_hook;   /* session.py's flush of every recording session (set_collect_hook) */
static PyObject *str_generation, *str_module;

#define YOUNG_MAX 64   /* heap types a collection's check keeps; past them it flushes whatever the batch holds */

/* The heap types (classes a program made) in generation `generation` and the younger ones it
 * collects too, up to YOUNG_MAX of them in `young`: how many, or YOUNG_MAX + 1 for more, or a
 * full collection (its list is the whole heap: not walked). */
static size_t
young_classes(PyThreadState *tstate, long generation, PyObject **young)
{
    if (generation >= NUM_GENERATIONS - 1) return YOUNG_MAX + 1;
    struct _gc_runtime_state *gc = &tstate->interp->gc;
    size_t n = 0;
    for (long i = 0; i <= generation; i++) {
        PyGC_Head *head = &gc->generations[i].head;
        for (PyGC_Head *g = _PyGCHead_NEXT(head); g != head; g = _PyGCHead_NEXT(g)) {
            PyObject *op = (PyObject *)(g + 1);   /* (the object follows its gc header) */
            if (!PyType_Check(op) || !PyType_HasFeature((PyTypeObject *)op, Py_TPFLAGS_HEAPTYPE)) continue;
            if (n == YOUNG_MAX) return YOUNG_MAX + 1;
            young[n++] = op;
        }
    }
    return n;
}

/* A 256-bit filter of pointers: a slot whose `o` is not in it is none of the classes sought. */
static inline unsigned
filter_bit(PyObject *p)
{
    return (unsigned)(ptr_hash(p) & 255);
}

/* Is class o its module's attribute of its own name, the module in sys.modules (a class defined
 * at a module's top level: socket.SocketKind, a module's named tuple, a test module's class)?
 * The interpreter then reaches it through sys.modules: no collection frees it now, and its
 * being held by the batch changes nothing. Dict lookups by str only: no code of the program
 * runs (not PyImport_GetModule, which may wait for a module being imported). */
static int
module_level(PyObject *o)
{
    PyObject *qualname = ((PyHeapTypeObject *)o)->ht_qualname, *dict = ((PyTypeObject *)o)->tp_dict;
    if (!qualname || !PyUnicode_CheckExact(qualname) || !dict || !PyDict_Check(dict)) return 0;
    if (PyUnicode_FindChar(qualname, '.', 0, PyUnicode_GET_LENGTH(qualname), 1) != -1) return 0;   /* (-2: an error) */
    PyObject *modname = PyDict_GetItemWithError(dict, str_module);
    PyObject *modules = modname && PyUnicode_CheckExact(modname) ? PyImport_GetModuleDict() : NULL;
    PyObject *mod = modules ? PyDict_GetItemWithError(modules, modname) : NULL;
    PyObject *attr = mod && PyModule_Check(mod) ? PyDict_GetItemWithError(PyModule_GetDict(mod), qualname) : NULL;
    PyErr_Clear();
    return attr == o;
}

/* Could the collection free a class the batch holds? The n young classes it collects (n <=
 * YOUNG_MAX), or with n > YOUNG_MAX any class a program made. Slots hold the types of the
 * instances they captured (V_OPAQUE, V_DEFREPR, V_PACKED) and classes (V_CLASS) in `o`; the
 * record dictionary the types of its labels. A held class defined at a module's top level is
 * not freed (module_level). The young ones: each slot's `o` through the filter first (~6
 * instructions a slot), then compared with each class; any class: each `o` (an object we own)
 * read for its type, each distinct class checked once (`seen`, direct-mapped: a class checked
 * again costs one more lookup at worst). */
static int
may_free_held(const CoreObject *c, PyObject *const *young, size_t n)
{
    int any = n > YOUNG_MAX;
    uint8_t held[YOUNG_MAX] = {0};
    PyObject *seen[256] = {NULL};
    uint64_t filter[4] = {0, 0, 0, 0};
    for (size_t k = 0; !any && k < n; k++) filter[filter_bit(young[k]) >> 6] |= 1ull << (filter_bit(young[k]) & 63);
    for (size_t i = 0; i < c->nslots + c->nrec_items; i++) {
        PyObject *o = i < c->nslots ? c->slots[i].o : c->rec_items[i - c->nslots].type;
        if (!o) continue;
        unsigned b = filter_bit(o);
        if (any) {
            if (seen[b] == o || !PyType_Check(o) || !PyType_HasFeature((PyTypeObject *)o, Py_TPFLAGS_HEAPTYPE)) continue;
            seen[b] = o;
            if (!module_level(o)) return 1;
            continue;
        }
        if (!(filter[b >> 6] >> (b & 63) & 1)) continue;
        for (size_t k = 0; k < n; k++)
            if (o == young[k] && !held[k]) {
                held[k] = 1;
                if (!module_level(o)) return 1;
            }
    }
    return 0;
}

/* gc_phase's "start" outside our own work: flush first when the collection could free a class.
 * The hook runs with this thread's events off (our work, as suspend_events does); it never
 * raises into the collector (a failure is cleared: the batch then stays as it was). */
void
before_collection(PyThreadState *tstate, PyObject *info)
{
    if (!collect_hook || tstate->tracing || !info || !PyDict_Check(info)) return;
    const CoreObject *c = active_core;   /* (the C recorder's; none for the Python recorder) */
    if (!c || (!c->nslots && !c->nrec_items)) return;   /* (no value held: --no-args, a fresh batch) */
    PyObject *g = PyDict_GetItemWithError(info, str_generation);
    long generation = g && PyLong_Check(g) ? PyLong_AsLong(g) : -1;
    if (generation < 0) { PyErr_Clear(); return; }
    PyObject *young[YOUNG_MAX];
    size_t n = young_classes(tstate, generation, young);
    if (!n || !may_free_held(c, young, n)) return;
    PyObject *hook = Py_NewRef(collect_hook);   /* (set_collect_hook may run meanwhile) */
    PyThreadState_EnterTracing(tstate);
    own_tracing++;
    PyObject *r = PyObject_CallNoArgs(hook);
    own_tracing--;
    PyThreadState_LeaveTracing(tstate);
    Py_DECREF(hook);
    if (r) Py_DECREF(r);
    else PyErr_Clear();
}

PyObject *
mod_set_collect_hook(PyObject *Py_UNUSED(m), PyObject *hook)
{
    if (hook != Py_None && !PyCallable_Check(hook)) {
        PyErr_SetString(PyExc_TypeError, "the collect hook must be callable or None");
        return NULL;
    }
    if (!str_generation && !(str_generation = PyUnicode_InternFromString("generation"))) return NULL;
    if (!str_module && !(str_module = PyUnicode_InternFromString("__module__"))) return NULL;
    Py_XSETREF(collect_hook, hook == Py_None ? NULL : Py_NewRef(hook));
    Py_RETURN_NONE;
}
