/* flowtrace._crecorder: control from the wrapper (start, seed, stop, pending, overflow, stats). */
#include "crecorder.h"

/* ------------------------------------------------------------------------------------ */
/* Control from the wrapper                                                               */

void
clear_pending(CoreObject *c)
{
    for (size_t i = 0; i < c->nstrs; i++) Py_CLEAR(c->strs[i].text);
    for (size_t i = 0; i < c->nslots; i++) Py_CLEAR(c->slots[i].o);
    c->nstrs = c->nslots = c->ncalls = c->nexits = c->nmarks = c->npacked = c->nheld = 0;
    c->rec_epoch++; c->rec_next = 0;   /* (the record dictionary of the entries that went) */
    rec_items_clear(c->rec_items, c->nrec_items);
    c->nrec_items = c->nrec_labs = 0;
    c->rec_addr = 0;
}

void
clear_codes(CoreObject *c)
{
    for (size_t i = 0; i < c->ncodes; i++) {
        Py_CLEAR(c->codes[i].names);
        shape_free(&c->codes[i]);
        PyMem_RawFree(c->codes[i].order); c->codes[i].order = NULL;
        PyMem_RawFree(c->codes[i].star); c->codes[i].star = NULL;
    }
    c->ncodes = 0;
    c->code_lim = 0;
    for (size_t i = 0; i < c->nsmall_args; i++) {
        PyMem_RawFree(c->small_args[i].tab);
        Py_CLEAR(c->small_names[i]);
    }
    c->nsmall_args = 0;
    c->small_bytes = c->small_vals.n * sizeof(SmallEntry);
    for (int i = 0; i < EXC_TYPES; i++) c->small_bytes += c->exc_small[i].tab.n * sizeof(SmallEntry);
}

void
clear_seeds(CoreObject *c)
{
    for (size_t i = 0; i < c->nseeds; i++) PyMem_RawFree(c->seeds[i].stack);
    c->nseeds = 0;
}

void
clear_tasks_seen(CoreObject *c)
{
    for (size_t i = 0; i < TASKS_SEEN; i++) Py_CLEAR(c->tasks_seen[i].ref);
}

PyObject *
core_start(CoreObject *c, PyObject *Py_UNUSED(ignored))
{
    if (!c->on_code) { PyErr_SetString(PyExc_RuntimeError, "the recorder has no hooks (call __init__)"); return NULL; }
    if (active_core && active_core != c && active_core->active) {
        PyErr_SetString(PyExc_RuntimeError, "another C recorder is already recording in this process");
        return NULL;
    }
    clear_pending(c);
    reserve_texts(c);   /* (buffers.c: no doubling from 256 entries in the first batch) */
    clear_codes(c);
    clear_verdicts(c);   /* (kept by name for one session: a new one asks the filter again) */
    clear_seeds(c);
    clear_tasks_seen(c);
    c->nsusp = 0;
    c->nlost = 0;
    susp_unwatch(c);
    if (c->susp) memset(c->susp, 0, c->capsusp * sizeof(SuspSlot));
    for (size_t i = 0; i < c->susp_pool.nblocks; i++) memset(c->susp_pool.blocks[i], 0, SUSP_BLOCK * sizeof(Susp));
    c->susp_pool.used = 0;
    c->susp_pool.free = NULL;
    /* a new generation invalidates every cached code decision and thread state at once */
    c->gen = ++generation_counter;
    if (GEN_BITS(c->gen) == 0) c->gen = ++generation_counter;
    c->code_base = GEN_BITS(c->gen) << 40 | (uint64_t)1 << XF_IDX_SHIFT;   /* code_known */
    c->call_first_id = c->next_call_id = 1;
    c->next_final_sid = 1;
    stab_clear(&c->stab);
    tmemo_clear(c);   /* (its ids were the last session's) */
    if (!c->hot) c->hot = PyMem_RawCalloc(1, HOT_BYTES);   /* NULL: no dedupe, still correct */
    else memset(c->hot, 0, HOT_BYTES);
    c->batch++;
    c->errors = 0;
    c->anchor = anchor_now();   /* the first batch's ticks map from here */
    c->active = 1;
    fast_update(c);
    Py_XSETREF(active_core, (CoreObject *)Py_NewRef(c));
    Py_RETURN_NONE;
}

/* seed(ident, frames): the frames running on thread `ident` (outermost first) when
 * recording starts; the recorded ones (not generators) become partial calls, and that
 * thread's stack starts with them (python.py's _seed_running). Returns the THRD id used
 * (0 if none was recorded). */
PyObject *
core_seed(CoreObject *c, PyObject *args)
{
    unsigned long ident;
    PyObject *frames;
    if (!PyArg_ParseTuple(args, "kO!", &ident, &PyList_Type, &frames)) return NULL;
    int64_t t = stamp();
    uint32_t thr = 0;
    Entry *stack = NULL;
    size_t depth = 0, cap = 0;
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(frames); k++) {
        PyObject *f = PyList_GET_ITEM(frames, k);
        if (!PyFrame_Check(f)) continue;
        _PyInterpreterFrame *iframe = ((PyFrameObject *)f)->f_frame;
        PyCodeObject *co = PyFrame_GetCode((PyFrameObject *)f);
        Py_ssize_t idx = code_index(c, co, iframe);
        Py_DECREF(co);
        if (idx == CODE_ERROR) goto fail;
        if (idx < 0 || c->codes[idx].hook || c->codes[idx].genlike) continue;
        if (!thr) {   /* the thread's definition precedes its first row */
            PyObject *r = PyObject_CallOneArg(c->on_thread, PyTuple_GET_ITEM(args, 0));
            if (!r) goto fail;
            thr = (uint32_t)PyLong_AsUnsignedLong(r);
            Py_DECREF(r);
            if (PyErr_Occurred()) goto fail;
        }
        uint32_t id = add_call(c, t, depth ? stack[depth - 1].call : 0, c->codes[idx].func, thr, 0, 0, CALL_PARTIAL);
        if (!id) goto fail;
        if (grow((void **)&stack, &cap, depth + 1, sizeof(Entry)) < 0) goto fail;
        stack[depth].frame = iframe; stack[depth].call = id; stack[depth].code_idx = (uint32_t)idx;
        stack[depth].task = 0; stack[depth].quiet = stack[depth].fold = stack[depth].hmark = 0;
        stack[depth].srec = stack[depth].pred = NULL;
        depth++;
    }
    if (depth) {
        if (grow((void **)&c->seeds, &c->capseeds, c->nseeds + 1, sizeof(Seed)) < 0) goto fail;
        Seed *s = &c->seeds[c->nseeds++];
        s->ident = ident; s->thr = thr; s->stack = stack; s->depth = depth;
    } else {
        PyMem_RawFree(stack);
    }
    return PyLong_FromUnsignedLong(thr);
fail:
    PyMem_RawFree(stack);
    return NULL;
}

/* End every open call as unfinished: each thread's stack (innermost first), seeded threads
 * that never ran again, suspended generators and those that vanished silently. */
PyObject *
core_stop(CoreObject *c, PyObject *Py_UNUSED(ignored))
{
    if (!c->active) Py_RETURN_NONE;
    unwatch_tasks();
    int64_t t = stamp();
    for (ThreadState *ts = all_threads.next; ts != &all_threads; ts = ts->next)
        if (ts->gen == c->gen) { end_stack(c, ts->stack, &ts->depth, t); ts->gen = 0; }
    for (size_t i = 0; i < c->nseeds; i++)
        if (c->seeds[i].stack) end_stack(c, c->seeds[i].stack, &c->seeds[i].depth, t);
    clear_seeds(c);
    for (size_t i = 0; i < c->capsusp; i++)
        if (c->susp[i].frame) {   /* (a running one ended with its thread's stack above) */
            Susp *s = c->susp[i].rec;
            if (s->code) add_exit(c, s->call, t, END_UNFINISHED, 0);
            s->frame = c->susp[i].frame = NULL;
            c->susp[i].rec = NULL;
            Py_CLEAR(s->watch);   /* (no callback after the session) */
        }
    c->nsusp = 0;
    for (size_t i = 0; i < c->nlost; i++) add_exit(c, c->lost[i], t, END_UNFINISHED, 0);
    c->nlost = 0;
    c->active = 0;
    fast_update(c);
    pack_ids_clear(c);   /* (no tuple of the program is held past the recording) */
    if (active_core == c) Py_CLEAR(active_core);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

PyObject *
core_pending(CoreObject *c, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSize_t(c->ncalls + c->nexits + c->nmarks);
}

PyObject *
core_set_overflow(CoreObject *c, PyObject *args)
{
    PyObject *hook;
    Py_ssize_t rows;
    if (!PyArg_ParseTuple(args, "On", &hook, &rows)) return NULL;
    if (hook != Py_None && !PyCallable_Check(hook)) { PyErr_SetString(PyExc_TypeError, "overflow hook must be callable or None"); return NULL; }
    if (rows < 1) { PyErr_SetString(PyExc_ValueError, "overflow rows must be >= 1"); return NULL; }
    Py_XSETREF(c->overflow, hook == Py_None ? NULL : Py_NewRef(hook));
    c->overflow_rows = c->overflow_at = c->overflow ? (size_t)rows : SIZE_MAX;
    Py_RETURN_NONE;
}

PyObject *
core_set_exit_hook(CoreObject *c, PyObject *hook)
{
    if (hook != Py_None && !PyCallable_Check(hook)) { PyErr_SetString(PyExc_TypeError, "exit hook must be callable or None"); return NULL; }
    Py_XSETREF(c->on_exit, hook == Py_None ? NULL : Py_NewRef(hook));
    Py_RETURN_NONE;
}

PyObject *
core_stats(CoreObject *c, PyObject *Py_UNUSED(ignored))
{
    Py_ssize_t suspended = 0;   /* the generator map's entries that are not running */
    for (size_t i = 0; i < c->capsusp; i++) suspended += c->susp[i].frame && c->susp[i].rec->code;
    return Py_BuildValue("{sKsKsnsnsnsn}", "errors", (unsigned long long)c->errors,
                         "rendered", (unsigned long long)c->rendered,
                         "codes", (Py_ssize_t)c->ncodes, "suspended", suspended,
                         "generator_map", (Py_ssize_t)c->nsusp,
                         "strings", (Py_ssize_t)c->nstrs);
}
