/* flowtrace._crecorder: the sys.monitoring callbacks (semantics: flowtrace/recorder/python.py). */
#include "crecorder.h"

/* ------------------------------------------------------------------------------------ */
/* Stack matching                                                                         */

/* Index of this frame's entry (normally the top), or -1 for a call that started before
 * recording (its end is ignored). Entries above it lost their end event, which a correct
 * interpreter never does; they end as unfinished so that the tree still balances. */
static inline Py_ssize_t
pop_target(CoreObject *c, ThreadState *ts, void *frame, int64_t t)
{
    if (ts->depth && ts->stack[ts->depth - 1].frame == frame) return (Py_ssize_t)ts->depth - 1;
    for (Py_ssize_t i = (Py_ssize_t)ts->depth - 2; i >= 0; i--) {
        if (ts->stack[i].frame == frame) {
            while (ts->depth > (size_t)i + 1) {
                Entry *e = &ts->stack[--ts->depth];
                quiet_end(c, e);   /* (a failure is the callback's error; the exit still goes) */
                add_exit(c, e->call, t, END_UNFINISHED, 0);
            }
            return i;
        }
    }
    return -1;
}

/* ---- the generator map ----
 * Every generator / coroutine that has suspended at least once and not ended has a record,
 * found by its interpreter frame. The record stays while the generator runs (code NULL), so a
 * switch only flips it: a resume finds it (call, code, task, fold state) and marks it
 * running, a yield writes the fold state back; it is inserted at the first yield and removed
 * when the generator ends (PY_RETURN / PY_UNWIND). (Taking it out at every resume and putting
 * it back at every yield cost ~75 instructions of each switch: callgrind, benchmarks'
 * generators.) The records that are not running are exactly the suspended generators. A
 * running record whose call ended some other way (lost end events: pop_target; a thread that
 * ended) is stale: it is overwritten or dropped, never ended again (its call has its exit).
 * The records sit in a pool, where they never move (crecorder.h SuspPool): a stack entry
 * keeps its generator's (Entry.srec) and the one its call last resumed (Entry.pred), so that
 * the usual switch finds its record without hashing. */

/* The record of the generator running in `frame` (NULL: none). (An empty slot's rec is NULL.) */
static inline __attribute__((always_inline)) Susp *
susp_find(const CoreObject *c, void *frame)
{
    if (!c->nsusp) return NULL;
    size_t mask = c->capsusp - 1, j = susp_hash(c, frame);
    for (;;) {   /* (the match first: nearly every probe finds its frame at once) */
        void *f = c->susp[j].frame;
        if (f == frame || !f) return c->susp[j].rec;
        j = (j + 1) & mask;
    }
}

/* A record for the map from the pool (crecorder.h) without allocating: a freed one, else the
 * next of the blocks; NULL if a block is needed (susp_new). */
static inline __attribute__((always_inline)) Susp *
susp_take(CoreObject *c)
{
    SuspPool *p = &c->susp_pool;
    Susp *s = p->free;
    if (s) { p->free = s->pred; return s; }
    if (p->used == p->nblocks * SUSP_BLOCK) return NULL;
    s = &p->blocks[p->used / SUSP_BLOCK][p->used % SUSP_BLOCK];
    p->used++;
    return s;
}

/* A record for the map, or NULL with an error set. */
static Susp *
susp_new(CoreObject *c)
{
    Susp *s = susp_take(c);
    if (s) return s;
    SuspPool *p = &c->susp_pool;
    Susp **b = PyMem_RawRealloc(p->blocks, (p->nblocks + 1) * sizeof(Susp *));
    if (!b) { PyErr_NoMemory(); return NULL; }
    p->blocks = b;
    if (!(b[p->nblocks] = PyMem_RawCalloc(SUSP_BLOCK, sizeof(Susp)))) { PyErr_NoMemory(); return NULL; }
    p->nblocks++;
    return susp_take(c);
}

/* A map entry's state as its generator suspends: not running (its code), and the fold its run
 * made or extended (0: none) with the batch, resumer and thread fold_open compares the next
 * resume's to. */
static inline __attribute__((always_inline)) void
susp_suspended(const CoreObject *c, Susp *s, void *code, uint32_t fold, uint32_t rothr, uint32_t thr)
{
    s->code = code; s->fold = fold; s->fbatch = (uint32_t)c->batch; s->fothr = rothr; s->fthr = thr;
}

/* The map's table doubled (0, or -1 with an error): the slots rehashed, the records stay. */
static int
susp_grow(CoreObject *c)
{
    size_t ncap = c->capsusp ? c->capsusp * 2 : 64;
    SuspSlot *n = PyMem_RawCalloc(ncap, sizeof(SuspSlot));
    if (!n) { PyErr_NoMemory(); return -1; }
    c->susp_shift = 64 - (unsigned)__builtin_ctzll(ncap);   /* (susp_hash: ncap is a power of 2) */
    for (size_t i = 0; i < c->capsusp; i++) {
        if (!c->susp[i].frame) continue;
        size_t j = susp_hash(c, c->susp[i].frame);
        while (n[j].frame) j = (j + 1) & (ncap - 1);
        n[j] = c->susp[i];
        n[j].rec->slot = (uint32_t)j;
    }
    PyMem_RawFree(c->susp);
    c->susp = n;
    c->capsusp = ncap;
    return 0;
}

/* The generator of stack entry `e` suspends, not found running in the map (its first yield, or
 * the table changed): insert its record, or replace the one at its address. */
static int
susp_put(CoreObject *c, void *frame, const Entry *e, void *code, uint32_t fold, uint32_t thr)
{
    uint32_t call = e->call;
    if ((c->nsusp + 1) * 2 > c->capsusp && susp_grow(c) < 0) return -1;
    size_t mask = c->capsusp - 1, j = susp_hash(c, frame);
    while (c->susp[j].frame && c->susp[j].frame != frame) j = (j + 1) & mask;
    Susp *s = c->susp[j].rec;
    if (!s) {
        if (!(s = susp_new(c))) return -1;
        c->susp[j].frame = frame; c->susp[j].rec = s;
        c->nsusp++;
    } else if (s->call != call && s->code) {
        /* the address belonged to a suspended generator that vanished without an event (one
         * not watched: genwatch.c): it ends as unfinished at stop */
        if (grow((void **)&c->lost, &c->caplost, c->nlost + 1, sizeof(uint32_t)) < 0) return -1;
        c->lost[c->nlost++] = s->call;
    }
    PyObject *old = s->watch;
    s->watch = NULL;
    s->frame = frame; s->call = call; s->code_idx = e->code_idx; s->task = e->task;
    s->slot = (uint32_t)j; s->pred = e->pred;   /* (its first run's guess: first_yield) */
    susp_suspended(c, s, code, fold, e->rothr, thr);
    /* (after the entry is whole: dropping the old ref and making the new one run no Python) */
    Py_XDECREF(old);
    s->watch = susp_watch(c, frame, call);
    return 0;
}

/* The generator of stack entry `e` suspends on thread thr: its running record (nearly always)
 * takes the fold state -- fold, the row its run made or extended (0: none), by e's resumer on
 * thr (fold_open) -- else susp_put. */
static inline int
susp_park(CoreObject *c, void *frame, const Entry *e, uint32_t fold, uint32_t thr)
{
    Susp *s = e->srec && e->srec->frame == frame ? e->srec : susp_find(c, frame);
    void *code = c->codes[e->code_idx].code;
    if (s && !s->code && s->call == e->call) {
        susp_suspended(c, s, code, fold, e->rothr, thr);
        return 0;
    }
    return susp_put(c, frame, e, code, fold, thr);
}

/* The fold a run of the generator of map entry s, resumed by `parent` on thread thr, extends
 * if it stays quiet: the one its last run made or extended in this batch by the same resumer
 * on the same thread (python.py's _fold, the same rule), else 0 (Entry.fold). Decided here, at
 * the resume, so that the yield ending the run only tests the entry's fold: its checks there
 * were ~20 instructions of each yield (callgrind, benchmarks' generators). */
static inline __attribute__((always_inline)) uint32_t
fold_open(const CoreObject *c, const Susp *s, uint32_t parent, uint32_t thr)
{
    return s->fbatch == (uint32_t)c->batch && s->fothr == parent && s->fthr == thr ? s->fold : 0;
}

/* Map record s's generator (suspended, in `frame`) resumes at t by the top of ts's stack: it
 * runs (code NULL) and is pushed, its run quiet until shown otherwise (its resume row held back:
 * quiet_end; it may fold, cb_py_yield). 0, or -1 with an error. */
static inline __attribute__((always_inline)) int
resume_entry(CoreObject *c, ThreadState *ts, void *frame, Susp *s, int64_t t)
{
    uint32_t parent = ts->depth ? ts->stack[ts->depth - 1].call : 0;
    uint32_t fold = fold_open(c, s, parent, ts->thr);
    s->code = NULL;
    if (push(ts, frame, s->call, s->code_idx, s->task) < 0) return -1;
    Entry *e = &ts->stack[ts->depth - 1];
    e->quiet = 1; e->rt = t; e->rothr = parent;
    e->fold = fold;
    e->srec = s; e->pred = s->pred;
    return 0;
}

#if RESUME_BEFORE_EVENT
/* 3.13+ checks the eval breaker at a generator's RESUME before its PY_RESUME: a signal's handler
 * or a collection's finalizers run there in the generator's frame, or the handler's exception
 * is raised there, before the resume is seen -- its PY_RESUME comes once they are done, or never
 * (the exception). So an event from the frame `f` of a generator suspended in the map (its
 * exception's), or a call made from it (CPython's entry frame between), while its resumer is
 * on top, is that generator's resume: pushed here as resume_common pushes it, and its PY_RESUME
 * when it comes finds it running on top (resume_slow). (python.py's resume_unseen, the same
 * rule.) 1 if pushed, 0 if not, -1 with an error. */
static __attribute__((noinline, cold)) int
resume_unseen(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *f)
{
    if (!f || f->owner != FRAME_OWNED_BY_GENERATOR || (ts->depth && ts->stack[ts->depth - 1].frame == f)) return 0;
    Susp *s = susp_find(c, f);
    if (!s || s->code != FRAME_CODE(f)) return 0;   /* (running records have code NULL) */
    return resume_entry(c, ts, f, s, stamp()) < 0 ? -1 : 1;
}

/* The frame a call in `frame` was made from: its previous, past the entry frame CPython puts
 * between C and a function it calls (a signal handler, a __del__). */
static inline _PyInterpreterFrame *
caller_frame(_PyInterpreterFrame *frame)
{
    _PyInterpreterFrame *p = frame->previous;
    while (p && p->owner == FRAME_OWNED_BY_CSTACK) p = p->previous;
    return p;
}
#endif

/* Record s leaves the map (its generator ended: none if it never suspended; one of another
 * call at its address is a generator that vanished silently, left to end at stop): its slot
 * emptied, the record back to the pool, frame NULL (an Entry.pred to it matches no frame). */
static inline __attribute__((always_inline)) void
susp_remove(CoreObject *c, Susp *s)
{
    Py_CLEAR(s->watch);   /* (its dealloc runs no Python: no callback once it is unlinked) */
    s->frame = NULL;
    s->pred = c->susp_pool.free;
    c->susp_pool.free = s;
    /* backward-shift deletion keeps probe chains intact without tombstones */
    size_t mask = c->capsusp - 1, i = s->slot, k = i;
    for (;;) {
        c->susp[i].frame = NULL; c->susp[i].rec = NULL;
        for (;;) {
            k = (k + 1) & mask;
            if (!c->susp[k].frame) { c->nsusp--; return; }
            size_t h = susp_hash(c, c->susp[k].frame);
            if (i <= k ? (i < h && h <= k) : (i < h || h <= k)) continue;
            break;
        }
        c->susp[i] = c->susp[k];
        c->susp[i].rec->slot = (uint32_t)i;
        i = k;
    }
}

static void
susp_drop(CoreObject *c, void *frame, uint32_t call)
{
    Susp *s = susp_find(c, frame);
    if (s && s->call == call) susp_remove(c, s);
}

/* genwatch.c: the generator of `call` (its map entry at `frame`) is being freed and its close
 * will send no event: it ends as that close's unwind would have ended it, `raise
 * GeneratorExit`, at t. Not if it is running or its entry is another's (then it was seen). */
int
genwatch_end(CoreObject *c, ThreadState *ts, void *frame, uint32_t call, int64_t t)
{
    Susp *s = susp_find(c, frame);
    if (!s || s->call != call || !s->code) return 0;
    PyObject *exc = PyObject_CallNoArgs(PyExc_GeneratorExit);
    if (!exc) return -1;
    PyObject *kp = ts->exc_ptr;   /* (exc_id's cache is for the exception travelling on) */
    uint32_t ks = ts->exc_sid;
    uint64_t kb = ts->exc_batch;
    uint32_t v = exc_id_slow(c, ts, exc);   /* (may run Python: the map is looked at again after) */
    ts->exc_ptr = kp; ts->exc_sid = ks; ts->exc_batch = kb;
    Py_DECREF(exc);
    if (!v) soft_fail(c);
    s = susp_find(c, frame);
    if (!s || s->call != call || !s->code) return 0;
    susp_remove(c, s);
    return add_exit(c, call, t, END_RAISE, v);
}

/* ---- quiet runs' resume rows, held back ----
 * A plain resume does not write its row: the entry keeps its time and resumer (quiet, rt,
 * rothr), and the yield that ends a quiet run extends the call's fold or adds a fold row from
 * them (cb_py_yield). Writing the row at the resume cost ~15-20 instructions of each switch
 * for the ~83% of runs whose row the yield then took out again (callgrind, benchmarks'
 * generators: their holes were also ~2/3 of the rows the drain skipped). Anything that makes
 * the run not quiet writes the row first, so the call's marks keep their order: a call
 * started under it (py_start), a mark of its call (the exception callbacks), its end
 * (return, unwind, an unfinished end) and a drain (quiet_end_all). A row written late is
 * after rows of other calls written meanwhile (never after its own call's: the run was
 * quiet); the drain puts the batch back in time order (encode.c's rows_by_time). */

int
quiet_end_slow(CoreObject *c, Entry *e)
{
    e->quiet = 0;
    e->fold = 0;   /* (a run that is not quiet extends no fold: cb_py_yield tests fold alone) */
    return add_mark(c, e->call, e->rt, MARK_RESUME, 0, e->rothr);
}

void
quiet_end_all(CoreObject *c)
{
    for (ThreadState *ts = all_threads.next; ts != &all_threads; ts = ts->next) {
        if (ts->gen != c->gen) continue;
        for (size_t i = 0; i < ts->depth; i++)
            if (quiet_end(c, &ts->stack[i]) < 0) PyErr_Clear();   /* (no memory: that resume is lost) */
    }
}

/* ------------------------------------------------------------------------------------ */
/* The callbacks (semantics: flowtrace/recorder/python.py, the reference)                */

#define CODE_ARG(args) ((PyCodeObject *)(args)[0])

/* This event's thread state without PyThreadState_Get (a call into libpython and a TLS
 * lookup there, ~30 instructions of every event): this thread's recorder state of this
 * session (*known) holds it -- thread_state_slow stored it, and a thread state's end frees
 * ours first (the capsule in its dict) -- provided the event's code is the one running in it.
 * Otherwise (first event of the thread in this session, or C code that switched this thread
 * to another thread state) the interpreter's, and *known is NULL. */
static inline PyThreadState *
event_tstate(CoreObject *c, PyCodeObject *co, ThreadState **known)
{
    ThreadState *ts = tls_state;
    if (ts && ts->gen == c->gen && ts->tstate) {
        _PyInterpreterFrame *f = CURRENT_FRAME(ts->tstate);
        if (f && FRAME_CODE(f) == (PyObject *)co) { *known = ts; return ts->tstate; }
    }
    *known = NULL;
    return PyThreadState_Get();
}

/* `m.name` (new reference, NULL with an error): a plain module's attribute straight from its
 * dict (a dict lookup, where PyObject_GetAttr goes through the generic getattr and its type
 * lookups); anything else, or a name not in the dict (a module __getattr__), the usual way. */
static PyObject *
module_attr(PyObject *m, PyObject *name)
{
    if (PyModule_CheckExact(m)) {
        PyObject *v = PyDict_GetItemWithError(PyModule_GetDict(m), name);   /* borrowed */
        if (v) return Py_NewRef(v);
        if (PyErr_Occurred()) return NULL;
    }
    return PyObject_GetAttr(m, name);
}

/* The task hook's first steps, from C (TaskTable.current: `sys.modules.get("asyncio")`, no
 * running loop -> no task, else asyncio.current_task()). 1 with *task a new reference (NULL:
 * no task), or 0 when anything failed: then the hook answers, with its own error handling.
 * Every coroutine start asks (python.py, the reference, does): a dict lookup in sys.modules
 * (PyImport_GetModule also checks the module's __spec__._initializing, ~800 instructions),
 * module_attr and two C calls, ~400 instructions in all. */
static int
current_task_fast(PyObject **task)
{
    *task = NULL;
    PyObject *modules = PyImport_GetModuleDict();   /* borrowed: sys.modules */
    if (!PyDict_CheckExact(modules)) return 0;
    PyObject *asyncio = PyDict_GetItemWithError(modules, str_asyncio);   /* borrowed */
    if (!asyncio) return PyErr_Occurred() ? (PyErr_Clear(), 0) : 1;
    if (asyncio == Py_None) return 1;
    Py_INCREF(asyncio);
    PyObject *events = module_attr(asyncio, str_events);
    PyObject *get_loop = events ? module_attr(events, str_get_running_loop) : NULL;
    PyObject *loop = get_loop ? PyObject_CallNoArgs(get_loop) : NULL;
    Py_XDECREF(get_loop);
    Py_XDECREF(events);
    PyObject *t = NULL;
    if (loop && loop != Py_None) {
        PyObject *current = module_attr(asyncio, str_current_task);
        t = current ? PyObject_CallNoArgs(current) : NULL;
        Py_XDECREF(current);
    }
    Py_DECREF(asyncio);
    if (!loop || (loop != Py_None && !t)) { Py_XDECREF(loop); PyErr_Clear(); return 0; }
    Py_DECREF(loop);
    if (t == Py_None) Py_CLEAR(t);
    *task = t;
    return 1;
}

/* The weakref's target if alive (borrowed: only its identity is compared), else NULL. */
static inline PyObject *
weak_target(PyObject *ref)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *o = NULL;
    if (PyWeakref_GetRef(ref, &o) < 0) { PyErr_Clear(); return NULL; }
    Py_XDECREF(o);   /* the caller holds the object it compares with */
    return o;
#else
    PyObject *o = PyWeakref_GetObject(ref);   /* borrowed; None if dead */
    return o == Py_None ? NULL : o;
#endif
}

/* `task`'s TASK id (task: NULL when current_task_fast failed: then the hook answers alone):
 * from the session's table of tasks seen, else from the hook (see task_lookup). */
static uint32_t
task_id(CoreObject *c, PyObject *task, uint32_t parent, uint32_t thr, PyObject **entry)
{
    TaskSlot *slot = task ? &c->tasks_seen[ptr_hash(task) & (TASKS_SEEN - 1)] : NULL;
    if (slot && slot->ref && weak_target(slot->ref) == task) return slot->tid;
    hook_runs_python(c);
    PyObject *r = PyObject_CallFunction(c->task_hook, "II", (unsigned)parent, (unsigned)thr);
    if (!r) { soft_fail(c); return 0; }
    uint32_t tid = 0;
    if (PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 2) {
        tid = (uint32_t)PyLong_AsUnsignedLong(PyTuple_GET_ITEM(r, 0));
        if (PyErr_Occurred()) { soft_fail(c); tid = 0; }
        else if (PyTuple_GET_ITEM(r, 1) != Py_None) *entry = Py_NewRef(PyTuple_GET_ITEM(r, 1));
    }
    Py_DECREF(r);
    if (task && tid) {   /* remember it (a task type without weakrefs is simply not kept) */
        PyObject *ref = PyWeakref_NewRef(task, NULL);
        if (ref) { Py_XSETREF(slot->ref, ref); slot->tid = tid; }
        else PyErr_Clear();
    }
    return tid;
}

/* ---- the same answer without asking asyncio ----
 * asyncio.current_task() is `asyncio.tasks._current_tasks.get(<running loop>)`, and that dict
 * changes whenever a task step begins or ends (_enter_task / _leave_task, an eager task's
 * swap); a thread's running loop changes only between steps. So a dict watcher counts its
 * changes (tasks_epoch), and while the count is the one of this thread's last answer, that
 * answer stands: a coroutine start inside a task step asks nothing. (Asking cost ~1000
 * instructions of every coroutine start: dict lookups, two calls, argument parsing.) From
 * 3.14 the running task is per thread state, not in that dict: there, every start asks. */
#if PY_VERSION_HEX < 0x030E0000
#define WATCH_TASKS 1
static int tasks_watcher = -1;     /* our dict watcher id (taken once per process) */
static PyObject *watched_tasks;    /* the dict watched during this session (strong), or NULL */
static int watch_tried;            /* looked for it in this session (asyncio was imported) */
static uint64_t tasks_epoch = 1;   /* changes of the watched dict, and of what is watched */
/* The newest change of the dict made by this thread (its epoch; 0: none yet): the task it made
 * current, or NULL when it took the entry away. asyncio changes a loop's entry on the thread
 * that runs that loop (a task step's _enter_task / _leave_task, an eager task's swap), so while
 * no change came after it, this thread's current task is that one: task_lookup then asks
 * nothing (current_task_fast's lookups and calls, ~400 instructions, at the first coroutine
 * start of every task step: one in four of async_wl's). Borrowed, and only ever compared:
 * the dict holds it until the next change, which makes the epoch move on. */
static _Thread_local uint64_t own_change_epoch __attribute__((tls_model("initial-exec")));
static _Thread_local PyObject *own_change_task __attribute__((tls_model("initial-exec")));

static int
on_tasks_change(PyDict_WatchEvent event, PyObject *dict, PyObject *key, PyObject *value)
{
    tasks_epoch++;
    if (dict == watched_tasks && (event == PyDict_EVENT_ADDED || event == PyDict_EVENT_MODIFIED
                                  || event == PyDict_EVENT_DELETED)) {
        own_change_task = event == PyDict_EVENT_DELETED ? NULL : value;
        own_change_epoch = tasks_epoch;
    }
    return 0;
}

/* Watch asyncio.tasks._current_tasks (once per session, when asyncio is there). */
static void
watch_tasks(PyObject *asyncio)
{
    watch_tried = 1;
    if (tasks_watcher < 0 && (tasks_watcher = PyDict_AddWatcher(on_tasks_change)) < 0) { PyErr_Clear(); return; }
    PyObject *tasks = module_attr(asyncio, str_tasks);
    PyObject *d = tasks ? module_attr(tasks, str_current_tasks) : NULL;
    Py_XDECREF(tasks);
    if (d && PyDict_CheckExact(d) && PyDict_Watch(tasks_watcher, d) == 0) {
        watched_tasks = d;
        tasks_epoch++;
        return;
    }
    Py_XDECREF(d);
    PyErr_Clear();
}
#endif

/* The session ends (control.c): the dict is no longer watched, every remembered answer is void. */
void
unwatch_tasks(void)
{
#ifdef WATCH_TASKS
    if (watched_tasks && PyDict_Unwatch(tasks_watcher, watched_tasks) < 0) PyErr_Clear();
    Py_CLEAR(watched_tasks);
    watch_tried = 0;
    tasks_epoch++;
#endif
}

/* A coroutine / async generator call is starting: the asyncio task running now (its TASK id,
 * 0: none). This thread's last answer while the tasks dict has not changed (WATCH_TASKS), else
 * from the session's table of tasks seen (by address, checked by a weakref, as TaskTable does
 * by id()), else from the hook, which also registers a new task: then *entry is its TASK entry
 * (new reference), whose "root" finish_task fills in once the call has its id. (A one-entry
 * cache per thread missed at every task switch: asyncio.gather's workers sleeping in turn
 * missed one start in four, each a Python hook call of ~7000 instructions.) */
static uint32_t
task_lookup(CoreObject *c, ThreadState *ts, uint32_t parent, uint32_t thr, PyObject **entry)
{
    *entry = NULL;
#ifdef WATCH_TASKS
    uint64_t epoch = tasks_epoch;   /* (before anything that may run Python) */
    if (watched_tasks && ts->task_epoch == epoch) return ts->task_tid;
    if (watched_tasks && own_change_epoch == epoch) {   /* this thread's own change is the newest */
        PyObject *own = own_change_task;
        TaskSlot *slot = own ? &c->tasks_seen[ptr_hash(own) & (TASKS_SEEN - 1)] : NULL;
        if (!own || (slot->ref && weak_target(slot->ref) == own)) {   /* (else: asked, as below) */
            ts->task_epoch = epoch;
            return ts->task_tid = own ? slot->tid : 0;
        }
    }
#endif
    PyObject *task = NULL;
    int fast = current_task_fast(&task);
    uint32_t tid = 0;
    if (!fast || task) tid = task_id(c, task, parent, thr, entry);
#ifdef WATCH_TASKS
    if (fast) {
        if (!watch_tried && c->active) {
            PyObject *asyncio = PyDict_GetItemWithError(PyImport_GetModuleDict(), str_asyncio);
            if (asyncio && asyncio != Py_None) watch_tasks(asyncio);
            else PyErr_Clear();
        }
        ts->task_epoch = epoch;
        ts->task_tid = tid;
    }
#endif
    Py_XDECREF(task);
    return tid;
}

/* No Python code runs here (dict and list operations on exact types with int/str keys), so
 * the TASK entry is complete before any drain can see it. */
static void
finish_task(CoreObject *c, PyObject *entry, uint32_t cid)
{
    if (!entry) return;
    PyObject *root = PyLong_FromUnsignedLong(cid);
    if (!root || PyDict_SetItem(entry, str_root, root) < 0 || PyList_Append(c->tasks_out, entry) < 0) soft_fail(c);
    Py_XDECREF(root);
    Py_DECREF(entry);
}

/* The call a task's root coroutine hangs from: the innermost open call on this thread whose
 * code is the program's own (CodeInfo.own), 0 if none -- not the event loop's step that runs
 * its first step when asyncio is recorded (python.py's _own_caller, docs/FORMAT.md). */
static uint32_t
own_caller(CoreObject *c, ThreadState *ts)
{
    for (size_t i = ts->depth; i > 0; i--)
        if (c->codes[ts->stack[i - 1].code_idx].own) return ts->stack[i - 1].call;
    return 0;
}

/* ---- exception marks without the RAISE event ----
 * RAISE fires in every frame an exception passes through (an exception raised two calls
 * below its handler cost three RAISE callbacks besides two UNWINDs and one HANDLED), so it is
 * not monitored; the marks come from the other events (the same marks as python.py, the
 * reference, and as RAISE gave: tests/test_exception_marks.py). An exception that
 * reaches the handler or the end of a recorded call without having come in from a recorded
 * callee (PY_UNWIND) or a throw (PY_THROW), or after that call caught it, was raised there:
 * its `raise` mark is written then, at the time of that HANDLED / UNWIND -- nothing of the
 * program runs between a raise and its handler or unwind (at an UNWIND, as the exit row's
 * END_RAISE_HERE: format 1.6). The thread remembers one exception
 * (`known`): the one that came into call `known_call` and travels on (caught 0), or that
 * call's own, caught (1); RERAISE (a cleanup handler re-raising) makes it travel again. */
static inline void
exc_arrived(ThreadState *ts, PyObject *exc, uint32_t call)
{
    ts->known = exc; ts->known_call = call; ts->known_caught = 0; ts->known_from = NULL;
}

/* Does `exc`'s traceback pass through a frame of `code` below its newest frame? One that
 * travelled out of a call of `code` does. An exception caught in C after a recorded callee's
 * unwind (a loop's StopIteration, hasattr's AttributeError) dies unseen, and the next one
 * raised in the caller tends to get its address at once: that one was raised in its newest
 * frame or came from code not recorded (python.py's _came_through). Off the hot path: only
 * for an exception at a known one's address in its call. */
static int
came_through(PyObject *exc, PyObject *code)
{
    PyObject *tb = ((PyBaseExceptionObject *)exc)->traceback;
    if (!tb || !PyTraceBack_Check(tb)) return 0;
    for (PyTracebackObject *t = ((PyTracebackObject *)tb)->tb_next; t; t = t->tb_next)
        if (t->tb_frame && FRAME_CODE(t->tb_frame->f_frame) == code) return 1;
    return 0;
}

/* Did `exc` come into `call` from a callee (PY_UNWIND) or a throw, travelling on -- the
 * thread's known exception, not caught -- rather than being raised there? */
static inline __attribute__((always_inline)) int
came_in(const ThreadState *ts, PyObject *exc, uint32_t call)
{
    return exc == ts->known && call == ts->known_call && !ts->known_caught
           && (!ts->known_from || came_through(exc, ts->known_from));
}

/* Was `exc` raised in `call` (not the exception travelling through it)? Then its text is
 * made afresh (exc_id's cache is for the exception travelling on). */
static inline int
raised_in(ThreadState *ts, PyObject *exc, uint32_t call)
{
    if (came_in(ts, exc, call)) return 0;
    ts->exc_ptr = NULL;
    return 1;
}

/* Write the `raise` mark of `exc` on `call` if it was raised there; 0, or -1 on failure. */
static inline int
mark_if_raised(CoreObject *c, ThreadState *ts, PyObject *exc, uint32_t call, int64_t t)
{
    if (!raised_in(ts, exc, call)) return 0;
    uint32_t ref = exc_id(c, ts, exc);
    if (!ref) soft_fail(c);
    return add_mark(c, call, t, MARK_RAISE, ref, 0);
}

/* A new call's parent and task: the top of this thread's stack's (0, or -1 with an error);
 * 3.13: first the resume of a generator it was called from, not seen yet (resume_unseen). */
static inline __attribute__((always_inline)) int
start_parent(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, uint32_t *parent, uint32_t *task)
{
    *parent = *task = 0;
#if RESUME_BEFORE_EVENT
    if (frame && CALLER_NOT_TOP(frame, ts->depth ? &ts->stack[ts->depth - 1] : NULL)
            && resume_unseen(c, ts, caller_frame(frame)) < 0)
        return -1;
#else
    (void)frame;
#endif
    if (ts->depth) {
        Entry *up = &ts->stack[ts->depth - 1];
        *parent = up->call; *task = up->task;
        /* a call under it: its run is not quiet (cb_py_yield; here, where the entry is at
         * hand: the hooks below run no event of this thread) */
        if (quiet_end(c, up) < 0) return -1;
    }
    return 0;
}

/* A new call's row and stack entry, its arguments' id `a` known (entry: its task's new TASK
 * entry, or NULL: see task_lookup). */
static inline __attribute__((always_inline)) PyObject *
start_row(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, Py_ssize_t idx, uint32_t parent,
          uint32_t task, uint32_t a, PyObject *entry)
{
    int64_t t = stamp();   /* after the arguments' texts: a slow __repr__ is not the call's time */
    uint32_t id = add_call(c, t, parent, c->codes[idx].func, ts->thr, a, task, 0);
    if (!id) { Py_XDECREF(entry); return callback_failed(c); }
    finish_task(c, entry, id);
    if (push(ts, frame, id, (uint32_t)idx, task) < 0) return callback_failed(c);
    return done_or_overflow(c, ts);
}

/* PY_START once the thread's state and the code's index are known (a recorded code, not the
 * create_task hook): the call's parent and task, its arguments, the row, the stack entry. */
static inline __attribute__((always_inline)) PyObject *
start_call(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx)
{
    uint32_t parent, task;
    if (start_parent(c, ts, frame, &parent, &task) < 0) return callback_failed(c);
    PyObject *entry = NULL;
    if (c->codes[idx].coro) {
        uint32_t own = task_lookup(c, ts, parent, ts->thr, &entry);
        if (own) task = own;   /* else inside its parent's task (python.py's drain rule) */
        if (entry) parent = own_caller(c, ts);   /* a task's root: python.py's _own_caller */
    }
    /* The arguments after the task hook: it runs Python, which may let a drain run and
     * start a new batch, and the provisional string id must belong to the row's batch. (No
     * code of this frame has run yet, so the values are the call's arguments.) */
    uint32_t a = 0;
    if (c->args_mode && !(a = args_small_hit(c, frame, co, idx))) {
        a = args_id(c, frame, co, idx);
        if (!a) soft_fail(c);
    }
    return start_row(c, ts, frame, idx, parent, task, a, entry);
}

/* start_call out of line: vc_cb_py_start's way past its fast path once it knows ts and idx. */
static __attribute__((noinline)) PyObject *
start_call_out(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx)
{
    return start_call(c, ts, frame, co, idx);
}

/* start_call for a call with arguments that args_small_hit did not find (not a coroutine):
 * crecorder.h start_keyed's way on (capture.c start_keyed_any, start_unkeyed) for what it does
 * not key, without trying again what vc_cb_py_start tried -- nor args_id's keyed path, which
 * fails where start_keyed_any's failed (args_id_unkeyed). */
__attribute__((noinline)) PyObject *
start_args_out(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx)
{
    uint32_t parent, task;
    if (start_parent(c, ts, frame, &parent, &task) < 0) return callback_failed(c);
    uint32_t a = args_id_unkeyed(c, frame, co, idx);
    if (!a) soft_fail(c);
    return start_row(c, ts, frame, idx, parent, task, a, NULL);
}

/* The row and stack entry of a call whose arguments' id `a` is known, past start_fast's test
 * (a buffer to grow, a quiet parent run): start_parent and start_row. */
__attribute__((noinline)) PyObject *
start_row_out(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, Py_ssize_t idx, uint32_t a)
{
    uint32_t parent, task;
    if (start_parent(c, ts, frame, &parent, &task) < 0) return callback_failed(c);
    return start_row(c, ts, frame, idx, parent, task, a, NULL);
}

/* start_fast out of line: one copy for the ways past a miss or a record of their own
 * (capture.c start_keyed_miss, packed.c start_shaped), each reaching it by a tail call (a jump,
 * a register move or two): inlined there they were two more copies of the same ~390 bytes of
 * hot code. The hits keep their inline copy (vc_cb_py_start, capture.c start_keyed_any): every
 * call goes through one of them, where the tail call and start_fast_out's own register saves
 * were ~5 instructions a call (callgrind oop). */
__attribute__((noinline)) PyObject *
start_fast_out(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, Py_ssize_t idx, uint32_t a)
{
    return start_fast(c, ts, frame, idx, a);
}

/* PY_START, every case (vc_cb_py_start does the usual ones itself). */
PyObject *
cb_py_start(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    if (!c->active || nargs < 1) Py_RETURN_NONE;
    PyCodeObject *co = CODE_ARG(args);
    ThreadState *known;
    PyThreadState *tstate = event_tstate(c, CODE_ARG(args), &known);
    _PyInterpreterFrame *frame = CURRENT_FRAME(tstate);
    Py_ssize_t idx = code_index(c, co, frame);
    if (idx == CODE_EXCLUDED) return Py_NewRef(DISABLE);   /* never called again for this code */
    if (idx < 0) return callback_failed(c);
    if (c->codes[idx].hook) return Py_NewRef(DISABLE);
    ThreadState *ts = known ? known : thread_state(c, tstate);
    if (!ts) return callback_failed(c);
    return start_call(c, ts, frame, co, idx);
}

/* The end of a PY_RETURN once its call is found at stack index i (both paths of
 * cb_py_return): the value's text, the stack popped, a generator's map slot dropped, the row.
 * (Inlined into each: the usual case pays no call.) */
static inline __attribute__((always_inline)) PyObject *
end_row(CoreObject *c, ThreadState *ts, size_t i, _PyInterpreterFrame *frame, int genlike, int64_t t, uint32_t v)
{
    uint32_t call = ts->stack[i].call;   /* (after value_id: its hook runs Python, never this thread's events) */
    if (genlike) {   /* (only a generator's run can be quiet: its resume row before its end) */
        if (quiet_end(c, &ts->stack[i]) < 0) return callback_failed(c);
        susp_drop(c, frame, call);
    }
    ts->depth = i;
    if (add_exit(c, call, t, END_RETURN, v) < 0) return callback_failed(c);
    Py_RETURN_NONE;
}

static inline __attribute__((always_inline)) PyObject *
end_return(CoreObject *c, ThreadState *ts, size_t i, _PyInterpreterFrame *frame, PyObject *value, int genlike,
           int64_t t)
{
    uint32_t v = 0;
    if (c->args_mode && !(v = value_small_hit(c, value))) { v = value_id(c, value); if (!v) soft_fail(c); }
    return end_row(c, ts, i, frame, genlike, t, v);
}

/* PY_RETURN past cb_py_return's usual case: a code not looked up yet, excluded (disabled
 * here), the create_task hook, a thread's first event, or a frame that is not the top of its
 * stack (a call that started before recording; lost end events: pop_target). Out of line, so
 * that the hot callback stays small. */
static __attribute__((noinline, cold)) PyObject *
return_slow(CoreObject *c, PyObject *const *args, ThreadState *known, PyThreadState *tstate, _PyInterpreterFrame *frame)
{
    PyCodeObject *co = CODE_ARG(args);
    Py_ssize_t idx = code_index(c, co, frame);
    if (idx == CODE_EXCLUDED) return Py_NewRef(DISABLE);
    if (idx < 0) return callback_failed(c);
    ThreadState *ts = known ? known : thread_state(c, tstate);
    if (!ts) return callback_failed(c);
    if (c->codes[idx].hook) {
        /* BaseEventLoop.create_task returned a task: its creator is the recorded call on
         * top of this thread's stack (TaskTable.note_creator) */
        uint32_t top = ts->depth ? ts->stack[ts->depth - 1].call : 0;
        hook_runs_python(c);
        PyObject *r = PyObject_CallFunction(c->task_created, "OI", args[2], (unsigned)top);
        if (!r) return callback_failed(c);
        Py_DECREF(r);
        Py_RETURN_NONE;
    }
    int64_t t = stamp();
    Py_ssize_t i = pop_target(c, ts, frame, t);
    if (i < 0) Py_RETURN_NONE;
    return end_return(c, ts, (size_t)i, frame, args[2], c->codes[idx].genlike, t);
}

/* end_return out of line, for the top of the stack: vc_cb_py_return's way past its fast path
 * (a value to capture, a generator's end, a full exit buffer) once it knows the call. */
static __attribute__((noinline)) PyObject *
end_return_out(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, PyObject *value, int genlike, int64_t t)
{
    return end_return(c, ts, ts->depth - 1, frame, value, genlike, t);
}

/* end_row for the top of the stack, not a generator (no frame: only a generator's end looks at
 * it), its value's id `v` known: end_fast's way on when the exit buffer is full. */
__attribute__((noinline)) PyObject *
end_row_out(CoreObject *c, ThreadState *ts, int64_t t, uint32_t v)
{
    return end_row(c, ts, ts->depth - 1, NULL, 0, t, v);
}

/* PY_RETURN, every case (vc_cb_py_return does the usual ones itself). */
PyObject *
cb_py_return(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    if (!c->active || nargs < 3) Py_RETURN_NONE;
    PyCodeObject *co = CODE_ARG(args);
    ThreadState *ts;
    PyThreadState *tstate = event_tstate(c, co, &ts);
    _PyInterpreterFrame *frame = CURRENT_FRAME(tstate);
    /* the usual case: this frame, running this code, is the top of this thread's stack -- a
     * recorded call, so no filter lookup (code_index: ~15 instructions of every return); the
     * entry's code says whether it is a generator (excluded and hook codes are never pushed) */
    const Entry *top = ts && ts->depth ? &ts->stack[ts->depth - 1] : NULL;
    if (!top || top->frame != frame || c->codes[top->code_idx].code != (void *)co) return return_slow(c, args, ts, tstate, frame);
    return end_return(c, ts, ts->depth - 1, frame, args[2], c->codes[top->code_idx].genlike, stamp());
}

/* The fold tail of Entry.fold `fold` (index + 1 in this batch's marks: the row after the fold's
 * head, MarkRow) -- n, run, t2: all that a run extending the fold writes. */
static inline __attribute__((always_inline)) MarkRow *
fold_row(const CoreObject *c, uint32_t fold)
{
    return &c->marks[fold - 1];
}

/* The quiet run of entry e ends at a yield at t: 1 if it extends the call's fold in this batch
 * (same resumer, same thread: the entry's fold, fold_open) -- n + 1, its running time added,
 * the fold's last yield now -- else 0 (nothing changed). */
static inline __attribute__((always_inline)) int
fold_extend(CoreObject *c, const Entry *e, int64_t t)
{
    MarkRow *f = e->fold ? fold_row(c, e->fold) : NULL;
    if (!f || f->n == UINT32_MAX) return 0;
    f->n++;
    f->run += t - e->rt;
    f->t2 = t;
    return 1;
}

/* A fold's tail is not a row of the batch: the backpressure test (done_or_overflow), which counts
 * the rows in the buffers, is one further for each, so that a batch holds as many rows as when a
 * fold took one (the cap counted it twice: generators' batches were smaller, and more of them,
 * +5.3 M instructions in benchmarks' generators at scale 3, callgrind -- the drains, the writer).
 * No hook (SIZE_MAX): no test to move. */

/* The quiet run of entry e ends at a yield at t and starts a fold: its two rows at r (room made):
 * its head, from its held-back resume (t: the resume, othr: the resumer), ref: the yielded value,
 * and its tail, n = 1 (MarkRow). For add_fold and yield_row_out's inline path. */
static inline __attribute__((always_inline)) void
put_fold(CoreObject *c, MarkRow *r, const Entry *e, int64_t t, uint32_t ref)
{
    r->t = e->rt; r->call = e->call; r->ref = ref; r->othr = e->rothr; r->kind = MARK_FOLD;
    r[1].n = 1; r[1].run = t - e->rt; r[1].t2 = t; r[1].kind = 0;   /* (the tail) */
    c->overflow_at += c->overflow_at != SIZE_MAX;   /* (a tail is not a row: see above) */
}

/* put_fold at the end of the batch's marks (Entry.fold is then nmarks); 0 or -1. */
static inline int
add_fold(CoreObject *c, const Entry *e, int64_t t, uint32_t ref)
{
    if (c->nmarks + 2 > c->capmarks && grow_marks(c, c->nmarks + 2) < 0) return -1;
    put_fold(c, &c->marks[c->nmarks], e, t, ref);
    c->nmarks += 2;
    return 0;
}

PyObject *
cb_py_yield(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    if (!c->active || nargs < 3) Py_RETURN_NONE;
    PyCodeObject *co = CODE_ARG(args);
    ThreadState *ts;
    PyThreadState *tstate = event_tstate(c, co, &ts);
    _PyInterpreterFrame *frame = CURRENT_FRAME(tstate);
    int64_t t;
    Py_ssize_t i;
    if (ts && ts->depth && ts->stack[ts->depth - 1].frame == frame
            && c->codes[ts->stack[ts->depth - 1].code_idx].code == co) {
        /* the usual case: the top of this thread's stack yields (recorded code, no filter lookup) */
        t = stamp();
        i = (Py_ssize_t)ts->depth - 1;
    } else {
        Py_ssize_t idx = code_index(c, co, frame);
        if (idx == CODE_EXCLUDED) return Py_NewRef(DISABLE);
        if (idx < 0) return callback_failed(c);
        if (c->codes[idx].hook) return Py_NewRef(DISABLE);
        if (!ts && !(ts = thread_state(c, tstate))) return callback_failed(c);
        t = stamp();
        i = pop_target(c, ts, frame, t);
        if (i < 0) Py_RETURN_NONE;   /* a generator running since before recording: ignored */
    }
    /* A quiet run (docs/FORMAT.md, "Folded resumes"; python.py's _fold does the same at
     * drain): begun by a plain resume in this batch, no call or mark since (its resume row is
     * still held back: quiet_end). The next quiet run of a fold, by the same resumer on the
     * same thread, only adds to it: no row and no value. Nothing here runs Python. */
    if (fold_extend(c, &ts->stack[i], t)) {   /* (a fold only while quiet: quiet_end) */
        Entry e = ts->stack[i];
        ts->depth = (size_t)i;
        if (susp_park(c, frame, &e, e.fold, ts->thr) < 0) return callback_failed(c);
        Py_RETURN_NONE;
    }
    /* (the entry stays on the stack meanwhile: a drain in the value's hook writes the held
     * resume row into its batch, and the run is not quiet then) */
    uint32_t v = 0;
    if (c->args_mode) { v = value_id(c, args[2]); if (!v) soft_fail(c); }   /* (may run Python) */
    Entry e = ts->stack[i];
    ts->depth = (size_t)i;
    if (e.quiet) {   /* a quiet run, first of a fold: its row */
        if (add_fold(c, &e, t, v) < 0) return callback_failed(c);
        if (susp_park(c, frame, &e, (uint32_t)c->nmarks, ts->thr) < 0) return callback_failed(c);
        return done_or_overflow(c, ts);
    }
    if (add_mark(c, e.call, t, MARK_SUSPEND, v, 0) < 0) return callback_failed(c);
    if (susp_park(c, frame, &e, 0, ts->thr) < 0) return callback_failed(c);
    return done_or_overflow(c, ts);   /* (a row: the backpressure test, which a resume leaves out) */
}

/* PY_RESUME and PY_THROW, past the fast path of resume_common: a suspended generator /
 * coroutine thrown into, or one not found suspended (never seen starting: started before
 * recording, or a coroutine thrown into before its first step), or the first event of this
 * thread in the session. */
static PyObject *
resume_slow(CoreObject *c, ThreadState *ts, _PyInterpreterFrame *frame, PyCodeObject *co, Py_ssize_t idx,
            PyObject *const *args, int throw)
{
    if (RESUME_BEFORE_EVENT && !throw && ts->depth && ts->stack[ts->depth - 1].frame == frame) {
        Susp *r = susp_find(c, frame);
        if (r && !r->code && r->call == ts->stack[ts->depth - 1].call)
            Py_RETURN_NONE;   /* resumed already: an event of its run came first (resume_unseen) */
    }
    int64_t t = stamp();
    uint32_t ref = 0;
    if (throw) {
        ts->exc_ptr = NULL;   /* an exception enters here: its text is made afresh */
        ref = exc_id(c, ts, args[2]);   /* (may run Python: the map is looked at after it) */
        if (!ref) soft_fail(c);
    }
    uint32_t parent = ts->depth ? ts->stack[ts->depth - 1].call : 0;
    Susp *s = susp_find(c, frame);
    if (s && s->code == co) {   /* (suspended: running records have code NULL) */
        s->code = NULL;
        uint32_t call = s->call, fold = fold_open(c, s, parent, ts->thr);
        if (throw && add_mark(c, call, t, MARK_THROW, ref, parent) < 0) return callback_failed(c);
        if (push(ts, frame, call, s->code_idx, s->task) < 0) return callback_failed(c);
        ts->stack[ts->depth - 1].srec = s; ts->stack[ts->depth - 1].pred = s->pred;
        if (!throw) {   /* a plain resume: the run may fold (cb_py_yield), its row held back (quiet_end) */
            Entry *e = &ts->stack[ts->depth - 1];
            e->quiet = 1; e->rt = t; e->rothr = parent;
            e->fold = fold;
        }
        if (throw) exc_arrived(ts, args[2], call);   /* the exception comes in from outside */
        return done_or_overflow(c, ts);
    }
    /* Never seen starting: a generator created and started before recording (partial), or
     * a coroutine thrown into before its first step (a task cancelled before it ran: THROW
     * with no START) -- then it starts here. Same test as python.py (the frame's f_lasti). */
    int lasti = frame && FRAME_CODE(frame) == (PyObject *)co ? _PyInterpreterFrame_LASTI(frame) : -1;
    int f_lasti = lasti < 0 ? -1 : lasti * (int)sizeof(_Py_CODEUNIT);
    int partial = throw ? f_lasti > 2 : f_lasti > 0;
    uint32_t task = 0;
    PyObject *entry = NULL;
    uint64_t batch = c->batch;
    uint32_t call_parent = parent;   /* (the throw mark names the resumer: parent) */
    if (c->codes[idx].coro) {
        task = task_lookup(c, ts, parent, ts->thr, &entry);
        if (entry) call_parent = own_caller(c, ts);   /* a task's root: python.py's _own_caller */
    }
    if (throw && c->batch != batch) {   /* a drain ran in the hook: ref was the old batch's */
        ref = exc_id(c, ts, args[2]);
        if (!ref) soft_fail(c);
    }
    if (!task) task = ts->depth ? ts->stack[ts->depth - 1].task : 0;
    uint32_t id = add_call(c, t, call_parent, c->codes[idx].func, ts->thr, 0, task, partial ? CALL_PARTIAL : 0);
    if (!id) { Py_XDECREF(entry); return callback_failed(c); }
    finish_task(c, entry, id);
    if (throw && add_mark(c, id, t, MARK_THROW, ref, parent) < 0) return callback_failed(c);
    if (ts->depth && quiet_end(c, &ts->stack[ts->depth - 1]) < 0) return callback_failed(c);   /* a call under it: its run is not quiet */
    if (push(ts, frame, id, (uint32_t)idx, task) < 0) return callback_failed(c);
    if (throw) exc_arrived(ts, args[2], id);
    return done_or_overflow(c, ts);
}

/* PY_RESUME and PY_THROW: a suspended generator / coroutine runs again. The usual case -- a
 * plain resume of a generator found suspended in the map, on a thread known in this session
 * -- is done here: the entry says its call and code (recorded: no filter lookup). */
static inline __attribute__((always_inline)) PyObject *
resume_common(CoreObject *c, PyObject *const *args, int throw)
{
    PyCodeObject *co = CODE_ARG(args);
    ThreadState *ts;
    PyThreadState *tstate = event_tstate(c, co, &ts);
    _PyInterpreterFrame *frame = CURRENT_FRAME(tstate);
    Susp *s = ts && !throw ? susp_find(c, frame) : NULL;
    if (!s || s->code != co) {   /* (running records have code NULL) */
        Py_ssize_t idx = code_index(c, co, frame);
        /* (PY_THROW cannot be disabled: CPython would raise and drop the callback) */
        if (idx == CODE_EXCLUDED) return Py_NewRef(throw ? Py_None : DISABLE);
        if (idx < 0) return callback_failed(c);
        if (c->codes[idx].hook) return Py_NewRef(throw ? Py_None : DISABLE);
        if (!ts && !(ts = thread_state(c, tstate))) return callback_failed(c);
        return resume_slow(c, ts, frame, co, idx, args, throw);
    }
    if (resume_entry(c, ts, frame, s, stamp()) < 0) return callback_failed(c);
    return done_or_overflow(c, ts);
}

PyObject *
cb_py_resume(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    if (!c->active || nargs < 1) Py_RETURN_NONE;
    return resume_common(c, args, 0);
}

PyObject *
cb_py_throw(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    if (!c->active || nargs < 3) Py_RETURN_NONE;
    return resume_common(c, args, 1);
}

/* The recorded thread state for an event that cannot be disabled, or NULL to ignore it.
 * (Inlined: a call of its own cost ~15 instructions of every exception event.) */
static inline __attribute__((always_inline)) ThreadState *
exc_event_state(CoreObject *c, PyObject *const *args, Py_ssize_t nargs, _PyInterpreterFrame **framep,
                int *failed)
{
    *failed = 0;
    if (!c->active || nargs < 3) return NULL;
    ThreadState *known;
    PyThreadState *tstate = event_tstate(c, CODE_ARG(args), &known);
    _PyInterpreterFrame *frame = CURRENT_FRAME(tstate);
    *framep = frame;
    /* the usual case: this frame, running this code, is the top of this thread's stack -- a
     * recorded call: no filter lookup (as cb_py_return) */
    const Entry *top = known && known->depth ? &known->stack[known->depth - 1] : NULL;
    if (top && top->frame == frame && c->codes[top->code_idx].code == (void *)CODE_ARG(args)) return known;
    Py_ssize_t idx = code_index(c, CODE_ARG(args), frame);
    if (idx == CODE_EXCLUDED) return NULL;
    if (idx < 0 || c->codes[idx].hook) { *failed = idx < 0; return NULL; }
    ThreadState *ts = known ? known : thread_state(c, tstate);
    if (!ts) *failed = 1;
#if RESUME_BEFORE_EVENT
    else if (resume_unseen(c, ts, frame) < 0) { *failed = 1; return NULL; }   /* (an exception at its RESUME) */
#endif
    return ts;
}

/* Is `exc` none of the exceptions the exception callbacks look at twice -- SystemExit
 * (note_system_exit), StopIteration and StopAsyncIteration (protocol_catch)? Each test is a walk
 * of the type's MRO (PyType_IsSubtype, ~29 instructions; ~100 of every exception that leaves
 * two frames to its handler, callgrind), so the last type found plain answers at a compare or
 * two: a static type (ValueError) for good (its bases never change, it is never freed), a class
 * while its version tag is the one it had then (a class whose bases change gets a new tag, and
 * tags are never reused: a new class at a freed one's address has another). */
static PyTypeObject *plain_type;
static unsigned int plain_tag;
static inline int
plain_exception(PyObject *exc)
{
    PyTypeObject *tp = Py_TYPE(exc);
    if (tp == plain_type && (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) || (plain_tag && tp->tp_version_tag == plain_tag)))
        return 1;
    if (PyType_IsSubtype(tp, (PyTypeObject *)PyExc_SystemExit) || PyType_IsSubtype(tp, (PyTypeObject *)PyExc_StopIteration)
            || PyType_IsSubtype(tp, (PyTypeObject *)PyExc_StopAsyncIteration))
        return 0;
    plain_type = tp;
    plain_tag = tp->tp_version_tag;   /* (0: not assigned, never matches) */
    return 1;
}

/* A SystemExit leaving a thread's outermost frame (every frame's unwind is seen, recorded or
 * not: PY_UNWIND cannot be disabled) is how the program asks for its exit status, which
 * Python consumes before atexit: the hook keeps it for the session's ENDS (session.py). Off
 * the hot path: reached only for SystemExit. */
static void
note_system_exit(CoreObject *c, PyObject *exc)
{
    PyFrameObject *frame = PyEval_GetFrame();   /* borrowed: the frame being left */
    if (!frame) return;
    PyFrameObject *back = PyFrame_GetBack(frame);
    if (back) { Py_DECREF(back); return; }
    hook_runs_python(c);
    PyObject *r = PyObject_CallOneArg(c->on_exit, exc);
    if (r) Py_DECREF(r); else PyErr_Clear();
}

PyObject *
cb_py_unwind(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    if (c->on_exit && nargs >= 3 && !plain_exception(args[2])
            && PyObject_TypeCheck(args[2], (PyTypeObject *)PyExc_SystemExit))
        note_system_exit(c, args[2]);
    _PyInterpreterFrame *frame = NULL;
    int failed;
    ThreadState *ts = exc_event_state(c, args, nargs, &frame, &failed);
    if (!ts) return failed ? callback_failed(c) : Py_NewRef(Py_None);
    int64_t t = stamp();
    Py_ssize_t i = pop_target(c, ts, frame, t);
    if (i < 0) Py_RETURN_NONE;
    uint32_t call = ts->stack[i].call;
    if (c->codes[ts->stack[i].code_idx].genlike) {   /* (a quiet run's held resume row before its end) */
        if (quiet_end(c, &ts->stack[i]) < 0) return callback_failed(c);
        susp_drop(c, frame, call);
    }
    /* raised here: its `raise` mark is this exit row's (END_RAISE_HERE, format 1.6): a MARK
     * row less per exception, ~170 instructions of the drain's column coding (callgrind) */
    uint8_t how = raised_in(ts, args[2], call) ? END_RAISE_HERE : END_RAISE;
    uint32_t v = exc_id(c, ts, args[2]);
    if (!v) soft_fail(c);
    ts->depth = (size_t)i;
    if (add_exit(c, call, t, how, v) < 0) return callback_failed(c);
    exc_arrived(ts, args[2], i ? ts->stack[i - 1].call : 0);   /* it travels on into the caller */
    ts->known_from = (PyObject *)CODE_ARG(args);   /* ... while its traceback passes through here */
    Py_RETURN_NONE;
}

/* Is this EXCEPTION_HANDLED of a StopIteration/StopAsyncIteration CPython's own iteration
 * protocol (the end of an `async for` at END_ASYNC_FOR, a thrown-into subgenerator's result at
 * CLEANUP_THROW) rather than a catch by the program? The same rule as python.py's
 * protocol_catch; only reached for those two exception types, so the code bytes are fetched
 * off the hot path. (Protocol raises -- an awaited result delivered as StopIteration at SEND
 * -- are never seen: RAISE is not monitored, and they are consumed where they are raised.) */
static int
protocol_catch(PyObject *code, PyObject *offset, PyObject *exc)
{
    if (plain_exception(exc)) return 0;
    int stop_iter = PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_StopIteration);
    if (!stop_iter && !PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_StopAsyncIteration)) return 0;
    if (!PyCode_Check(code) || !PyLong_Check(offset)) return 0;
    Py_ssize_t off = PyLong_AsSsize_t(offset);
    if (off < 0) { PyErr_Clear(); return 0; }
    PyObject *bytes = PyCode_GetCode((PyCodeObject *)code);   /* deoptimised, cached by CPython */
    if (!bytes) { PyErr_Clear(); return 0; }
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(bytes);
    int r = off < PyBytes_GET_SIZE(bytes) && b[off] == (stop_iter ? CLEANUP_THROW : END_ASYNC_FOR);
    Py_DECREF(bytes);
    return r;
}

PyObject *
cb_exception_handled(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    _PyInterpreterFrame *frame = NULL;
    int failed;
    ThreadState *ts = exc_event_state(c, args, nargs, &frame, &failed);
    if (!ts) return failed ? callback_failed(c) : Py_NewRef(Py_None);
    if (!ts->depth || protocol_catch(args[0], args[1], args[2])) Py_RETURN_NONE;
    int64_t t = stamp();
    uint32_t call = ts->stack[ts->depth - 1].call;
    /* a mark in its run: not quiet (its held resume row first: the call's marks in order) */
    if (quiet_end(c, &ts->stack[ts->depth - 1]) < 0) return callback_failed(c);
    if (mark_if_raised(c, ts, args[2], call, t) < 0) return callback_failed(c);
    uint32_t ref = exc_id(c, ts, args[2]);
    if (!ref) soft_fail(c);
    if (add_mark(c, call, t, MARK_HANDLED, ref, 0) < 0) return callback_failed(c);
    Entry *e = &ts->stack[ts->depth - 1];
    e->hmark = (uint32_t)c->nmarks; e->qbatch = (uint32_t)c->batch;   /* the call's latest mark: cb_reraise */
    c->marks[c->nmarks - 1].exc = args[2];
    ts->known = args[2]; ts->known_call = call; ts->known_caught = 1; ts->known_from = NULL;   /* caught here */
    Py_RETURN_NONE;
}

/* RERAISE: the compiler's own handlers (`except E as e` cleanup, `with`, `finally`) and a bare
 * `raise` catch and re-raise; their EXCEPTION_HANDLED is not a catch. The call's `handled` mark
 * of this exception is taken back when it is the call's latest mark (the entry's hmark; python.py's
 * _cancel_handled, the same rule), wherever a drain fell since: the drain holds such a row back
 * (hold_handled). Either way that handler is over: nothing older is taken back. */
PyObject *
cb_reraise(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    CoreObject *c = (CoreObject *)self;
    _PyInterpreterFrame *frame = NULL;
    int failed;
    ThreadState *ts = exc_event_state(c, args, nargs, &frame, &failed);
    if (!ts) return failed ? callback_failed(c) : Py_NewRef(Py_None);
    if (!ts->depth) Py_RETURN_NONE;
    Entry *e = &ts->stack[ts->depth - 1];
    /* an exception event in its run: not quiet (python.py's reraise row) */
    if (quiet_end(c, e) < 0) return callback_failed(c);
    exc_arrived(ts, args[2], e->call);   /* caught by a cleanup handler only: it travels on */
    if (e->hmark && e->qbatch == (uint32_t)c->batch && e->hmark <= c->nmarks) {
        MarkRow *m = &c->marks[e->hmark - 1];
        if (m->kind == MARK_HANDLED && m->call == e->call && m->exc == (void *)args[2]) m->kind = 0;
    }
    e->hmark = 0;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------ */
/* The objects sys.monitoring calls. A bound builtin method (Core.py_start) is called
 * through cfunction_vectorcall_FASTCALL, which looks the thread state up again (a TLS call
 * into libpython) and checks the recursion depth before our function runs: ~40 instructions
 * of every event (callgrind, 3.12). A Callback is its own vectorcall: straight to the
 * callback function with the core. (The recursion check guards Python-level recursion; a
 * callback never recurses, and the hooks it calls into Python check it themselves.) */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *core;      /* strong: the core outlives its registration */
    const char *name;
} CallbackObject;

static PyObject *
no_keywords(PyObject *self)
{
    PyErr_Format(PyExc_TypeError, "%s() takes no keyword arguments", ((CallbackObject *)self)->name);
    return NULL;
}

/* no_keywords out of line and cold, for vc_cb_py_start (HAND_ON_OUT): inlined there, its call
 * -- not a tail call -- made it align its stack and save its registers at its entry, before its
 * first test; out of line they are saved only past its tests, on the way to its row (objdump).
 * (The other vectorcalls keep it inline: vc_cb_py_resume took a register move more a resume
 * with it out of line, callgrind generators.) */
static __attribute__((noinline, cold)) PyObject *
no_keywords_out(PyObject *self)
{
    return no_keywords(self);
}

/* One vectorcall per event, each a direct (tail) call of its callback: a shared one calling
 * cb->fn through a pointer cost ~10 instructions of every event (a call frame, an indirect
 * call; callgrind, benchmarks' generators). sys.monitoring never passes keywords. HAND_ON(fn)
 * is that call; it is also the general path of the vectorcalls below that do an event's usual
 * case themselves. */
#define HAND_ON_WITH(fn, refuse) \
    do { \
        if (kwnames && PyTuple_GET_SIZE(kwnames)) return refuse(self); \
        return fn(((CallbackObject *)self)->core, args, PyVectorcall_NARGS(nargsf)); \
    } while (0)
#define HAND_ON(fn) HAND_ON_WITH(fn, no_keywords)
#define HAND_ON_OUT(fn) HAND_ON_WITH(fn, no_keywords_out)
#define CALLBACK_VECTORCALL(fn) \
    static PyObject *vc_##fn(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) \
    { \
        HAND_ON(fn); \
    }
CALLBACK_VECTORCALL(cb_py_throw)
CALLBACK_VECTORCALL(cb_reraise)
#undef CALLBACK_VECTORCALL

/* The thread's recorder state for an event whose code is `co` running in the current frame
 * (event_tstate's test), when the fast paths may run (fast_gen: the session's gen then), or
 * NULL. (A state of this session has its tstate: thread_state_slow sets it before gen,
 * mod_after_fork clears both.) */
static inline __attribute__((always_inline)) ThreadState *
running_state(CoreObject *c, PyObject *co, _PyInterpreterFrame **framep)
{
    ThreadState *ts = tls_state;
    if (!ts || ts->gen != c->fast_gen) return NULL;
    _PyInterpreterFrame *f = CURRENT_FRAME(ts->tstate);
    if (!f || FRAME_CODE(f) != co) return NULL;
    *framep = f;
    return ts;
}

/* running_state without the code's test, for a resume: the map entry found by the frame is
 * checked against the event's code (Susp.code, the code of the generator living in that frame). */
static inline __attribute__((always_inline)) ThreadState *
resuming_state(CoreObject *c, _PyInterpreterFrame **framep)
{
    ThreadState *ts = tls_state;
    if (!ts || ts->gen != c->fast_gen) return NULL;
    _PyInterpreterFrame *f = CURRENT_FRAME(ts->tstate);
    if (!f) return NULL;
    *framep = f;
    return ts;
}

/* ---- PY_START's and PY_RETURN's usual cases, in the vectorcall itself ----
 * Every call of the program makes both events; these paths are what it pays (callgrind, fib
 * --no-args: PY_START ~150 instructions, PY_RETURN ~95 as calls into cb_py_start/cb_py_return).
 * They call nothing -- room in the buffers is tested first, the clock is the TSC's (fast_gen),
 * the code's index is code_known's -- so the compiler saves no registers (a call anywhere on
 * the path made it push and pop six of them at every event), and what they cannot do they
 * hand on by a tail call: to start_call_out / end_return_out once the call is known (a
 * coroutine's task, arguments or a result to capture, a generator's end, a buffer to grow),
 * else to cb_py_start / cb_py_return from the start. Same rows, same stack as those make. */
static PyObject *
vc_cb_py_start(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    CoreObject *c = (CoreObject *)((CallbackObject *)self)->core;
    _PyInterpreterFrame *frame;
    ThreadState *ts;
    uint64_t d;
    if (kwnames || PyVectorcall_NARGS(nargsf) < 1 || !(ts = running_state(c, args[0], &frame))
            || (d = code_known(c, CODE_ARG(args))) == UINT64_MAX)
        goto general;
    /* (the code's flags, XF_*, with its index: its CodeInfo is not read, a cache miss at most
     * calls of a program of thousands of codes) */
    Py_ssize_t idx = (Py_ssize_t)(d >> XF_IDX_SHIFT);
    if (d & XF_SLOW) {   /* (start_slow: one test for the two) */
        if (c->codes[idx].hook) goto general;
        return start_call_out(c, ts, frame, CODE_ARG(args), idx);
    }
    /* (an argument list at hand: one small int in its table, or none shown -- one test of the
     * two flags on the way of the others) */
    uint32_t a = 0;
    if (c->args_mode && !((d & (XF_SMALL | XF_NOARGS))
                          && (a = (d & XF_SMALL) ? args_small_hit_fast(c, frame, idx) : args_empty_hit(c))))
        return start_keyed(c, ts, frame, CODE_ARG(args), idx, d);
    return start_fast(c, ts, frame, idx, a);
general:
    HAND_ON_OUT(cb_py_start);
}

/* A generator's end (PY_RETURN, its entry e on top of the stack), when its map record is the
 * one its resume found (srec) and nothing is in the way -- room for the rows, the value's text
 * at hand (value_small_hit) in args mode: end_row's rows and map change in place (its held
 * resume row, quiet_end's; its map entry removed, susp_drop's without the probe; its exit
 * row), 1; else 0 and nothing done (end_return_out does the same and more; it cost ~160
 * instructions, one a generator of benchmarks' generators). An entry that no resume pushed
 * (srec NULL: its PY_START's, or resume_slow's first sight) is a run of a generator that has not
 * suspended since its call began -- every resume of a suspended one comes from the map and sets
 * srec -- so the map holds no record of its call (susp_drop would find none), and its run is
 * not quiet: only the exit row (~64 k generators of flask's test_basic that end in their first
 * run, ast.iter_child_nodes of a leaf: end_return_out's probe, ~95 instructions each, callgrind). */
static inline __attribute__((always_inline)) int
gen_end(CoreObject *c, ThreadState *ts, const Entry *e, _PyInterpreterFrame *frame, PyObject *value, int64_t t)
{
    uint32_t v = 0;
    Susp *s = e->srec;
    if ((s && (s->frame != (void *)frame || s->call != e->call))
            || c->nexits == c->capexits || (e->quiet && c->nmarks == c->capmarks)
            || (c->args_mode && !(v = value_small_hit(c, value))))
        return 0;
    if (e->quiet) {   /* quiet_end: its resume row (a run begun by a resume: s is set) */
        MarkRow *r = &c->marks[c->nmarks++];
        r->t = e->rt; r->call = e->call; r->ref = 0; r->othr = e->rothr; r->kind = MARK_RESUME;
    }
    if (s) susp_remove(c, s);   /* (none for a run that no resume pushed: see above) */
    ts->depth--;
    put_exit(c, e->call, t, END_RETURN, v);
    return 1;
}

/* A generator's end from vc_cb_py_return: gen_end's rows in place, else end_return_out. Out of
 * line so that gen_end's registers stay out of vc_cb_py_return's frame, which every return goes
 * through: inlined there, vc_cb_py_return saved 6 registers, not 1 (objdump), and deltablue
 * --no-args paid ~+4 M instructions at scale 3 (callgrind). */
static __attribute__((noinline)) PyObject *
gen_return_out(CoreObject *c, ThreadState *ts, const Entry *e, _PyInterpreterFrame *frame, PyObject *value, int64_t t)
{
    if (gen_end(c, ts, e, frame, value, t)) Py_RETURN_NONE;
    return end_return_out(c, ts, frame, value, 1, t);
}

static PyObject *
vc_cb_py_return(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    CoreObject *c = (CoreObject *)((CallbackObject *)self)->core;
    _PyInterpreterFrame *frame;
    ThreadState *ts;
    if (kwnames || PyVectorcall_NARGS(nargsf) < 3 || !(ts = running_state(c, args[0], &frame)))
        goto general;
    /* the top of the stack returns (cb_py_return's usual case; at depth 0 the sentinel, whose
     * frame is NULL: threads.c) */
    Entry *e = &ts->stack[ts->depth - 1];
    /* (the entry's code is the frame's by its co_extra slot, which the start read: not by its
     * CodeInfo's `code`, a cache miss at many returns. d >> XF_IDX_SHIFT is no entry's index
     * when d is UINT64_MAX) */
    uint64_t d;
    if (e->frame != frame || ((d = code_known(c, (PyCodeObject *)args[0])) >> XF_IDX_SHIFT) != e->code_idx) goto general;
    /* (each way reads the clock itself, after the value's lookup: no clock value lives across
     * value_small_hit -- it made this function save two registers more, objdump; end_keyed reads
     * it after its own lookup, and takes ts from tls_state again: running_state's) */
    uint32_t v = 0;
    if (d & XF_GENLIKE) return gen_return_out(c, ts, e, frame, args[2], fast_stamp());
    if (c->args_mode && !(v = value_small_hit(c, args[2]))) return end_keyed(c, args[2]);
    return end_fast(c, ts, fast_stamp(), v);
general:
    HAND_ON(cb_py_return);
}

/* ---- the generator switches' usual cases, in the vectorcall itself ----
 * A generator that yields through `yield from` / `await` chains switches at every level for
 * every value (benchmarks' generators: ~13 switches a call), so PY_RESUME and PY_YIELD are
 * most of its events. Their usual cases are done here, without the second call, its frame
 * and its register saves (~20 instructions an event, callgrind): a resume of a generator
 * found suspended in the map, and a yield of a generator that the map holds as running
 * (every yield but a generator's first) whose value need not be captured -- one that extends
 * its run's fold (~83% of the yields there), or without argument capture any -- or whose value's
 * text is at hand (value_small_hit). Anything else -- another thread state, a buffer to grow, a
 * first yield, a value to capture -- goes to the
 * callbacks above, which do the same and more. Same rows, same map, same stack as they make. */

/* Is this vectorcall sys.monitoring's own: `n` arguments, the offset flag, no keywords
 * (CPython's call_instrumentation_vector, 3.12 and 3.13)? One test of both, where testing
 * kwnames and the count apart took a branch more at every yield (objdump; vc_cb_py_resume
 * keeps them apart: there the general way's nargsf cost two register moves); anything else --
 * a program calling our callback itself -- takes the general way (HAND_ON). */
static inline __attribute__((always_inline)) int
vc_shape(size_t nargsf, PyObject *kwnames, size_t n)
{
    return !(((size_t)kwnames) | (nargsf ^ (n | PY_VECTORCALL_ARGUMENTS_OFFSET)));
}

/* (Both read the clock as the PY_START/PY_RETURN fast paths do -- fast_gen: active, the TSC --
 * so that nothing on their way calls a function: an out-of-line stamp() and its spills were
 * ~15 instructions of each yield, the clock_gettime fallback the resume's stack frame.)
 * A resume writes no row (its row is held back: quiet_end), so it leaves out the backpressure
 * test (done_or_overflow, ~7 instructions): the next event that writes a row makes it. */
/* A plain resume of the generator of record s, found suspended, by `up` (the top of ts's stack
 * or its sentinel): its entry pushed, its record running. */
static inline __attribute__((always_inline)) PyObject *
resume_push(CoreObject *c, ThreadState *ts, Entry *up, Susp *s, _PyInterpreterFrame *frame)
{
    s->code = NULL;   /* running */
    Entry *e = up + 1;   /* push; the run may fold (cb_py_yield): its row held back (quiet_end) */
    ts->depth++;
    e->frame = frame; e->call = s->call; e->code_idx = s->code_idx; e->task = s->task;
    e->quiet = 1; e->rothr = up->call;
    e->fold = fold_open(c, s, up->call, ts->thr);
    e->srec = s; e->pred = s->pred;
    e->hmark = 0;
    e->rt = fast_stamp();   /* (last: no value but e lives across the clock, no register saved) */
    Py_RETURN_NONE;
}

/* vc_cb_py_resume's way when up's guess is not this frame's record -- a resumer that goes back
 * and forth between generators (half the resumes of benchmarks' async_wl: its event loop's
 * tasks); a new child's first resume no longer comes here, its first yield made it the guess
 * (first_yield; ~4% of the resumes of benchmarks' generators did): the map's record, which
 * becomes the guess. Out of line (a tail call): its probe's registers made vc_cb_py_resume save
 * two at every resume (objdump). */
static __attribute__((noinline)) PyObject *
resume_probe(CoreObject *c, ThreadState *ts, Entry *up, _PyInterpreterFrame *frame, PyObject *const *args,
             Py_ssize_t nargs)
{
    Susp *s = susp_find(c, frame);
    if (!s) return cb_py_resume((PyObject *)c, args, nargs);
    up->pred = s;
    if (up->srec && up->srec->frame == up->frame) up->srec->pred = s;   /* (kept for its next runs) */
    if (s->code != (void *)args[0]) return cb_py_resume((PyObject *)c, args, nargs);   /* running, or stale */
    return resume_push(c, ts, up, s, frame);
}

static PyObject *
vc_cb_py_resume(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    CoreObject *c = (CoreObject *)((CallbackObject *)self)->core;
    _PyInterpreterFrame *frame;
    ThreadState *ts;
    /* (depth < cap: room for the entry, and a stack, whose sentinel is the resumer at depth 0) */
    if (kwnames || PyVectorcall_NARGS(nargsf) < 1 || !(ts = resuming_state(c, &frame))
            || ts->depth == ts->cap)
        goto general;
    Entry *up = &ts->stack[ts->depth - 1];   /* the resumer (threads.c: the sentinel below a stack) */
    Susp *s = up->pred;   /* the generator it resumed last: in a `yield from` chain, this one */
    if (!s || s->frame != frame) return resume_probe(c, ts, up, frame, args, PyVectorcall_NARGS(nargsf));
    if (s->code != (void *)args[0]) goto general;   /* running (NULL), or a stale record */
    return resume_push(c, ts, up, s, frame);
general:
    HAND_ON(cb_py_resume);
}

/* A generator's first yield (its entry on top of the stack, started by this call: never in the
 * map, srec NULL, not quiet -- only a resume found in the map makes a run quiet): cb_py_yield's
 * suspend row and susp_put's new map entry, when nothing is in the way -- room in the marks and
 * in the map (no growth), no entry at its address (a generator that vanished silently: susp_put
 * keeps it as lost), the value's text at hand (value_small_hit) in args mode; else 0 and
 * nothing done (the general path does the same and more). A generator's first yield through
 * the general path cost ~225 instructions (callgrind, benchmarks' generators: one a call). */
static inline __attribute__((always_inline)) int
first_yield(CoreObject *c, ThreadState *ts, Entry *e, PyObject *value)
{
    uint32_t v = 0;
    if (e->quiet || c->nmarks == c->capmarks || (c->nsusp + 1) * 2 > c->capsusp) return 0;
    void *frame = e->frame;
    size_t mask = c->capsusp - 1, j = susp_hash(c, frame);
    for (void *f; (f = c->susp[j].frame); j = (j + 1) & mask)
        if (f == frame) return 0;
    Susp *s = susp_take(c);   /* susp_put's record, if the pool has one at hand */
    if (!s) return 0;
    /* the value's id last, after every test that sends the yield to the general path: one that
     * value_id_now makes (a miss's entry, a tuple packed now: ~40 k first yields of flask's
     * test_basic are ast.iter_fields' (name, value) tuples) is this row's. value_id_now runs no
     * Python, so the map, its slot j and the marks' room stay as tested; a value it leaves to the
     * general path gives the record back to the pool first. */
    if (c->args_mode && !(v = value_small_hit(c, value)) && !(v = value_id_now(c, value, 1))) {
        s->pred = c->susp_pool.free;   /* (susp_remove's way back to the pool) */
        c->susp_pool.free = s;
        return 0;
    }
    int64_t t = fast_stamp();
    MarkRow *m = &c->marks[c->nmarks++];   /* add_mark(MARK_SUSPEND) */
    m->t = t; m->call = e->call; m->ref = v; m->othr = 0; m->kind = MARK_SUSPEND;
    c->susp[j].frame = frame; c->susp[j].rec = s;   /* susp_put */
    c->nsusp++;
    s->frame = frame; s->code = c->codes[e->code_idx].code; s->call = e->call; s->code_idx = e->code_idx;
    s->task = e->task; s->fold = 0; s->fbatch = (uint32_t)c->batch; s->slot = (uint32_t)j; s->pred = e->pred;
    s->watch = susp_watch(c, frame, e->call);   /* (as susp_put: runs no Python) */
    ts->depth--;
    /* the call it yields to -- a `yield from` / `await`, a `for` loop -- will most likely resume
     * it next: that entry's guess (Entry.pred; its generator's record keeps it for its next
     * runs, as resume_probe keeps it, and a record made at a first yield takes its entry's:
     * above), so that its next resume finds this record without resume_probe (~6% of the
     * resumes of benchmarks' generators went there: a new child's first resume) */
    Entry *up = e - 1;   /* (at depth 0 the sentinel: threads.c) */
    up->pred = s;
    if (up->srec && up->srec->frame == up->frame) up->srec->pred = s;
    return 1;
}

/* vc_cb_py_yield's cases that write a row (its frame the top entry's, checked there): a first
 * yield (first_yield), or the end of a run that extends no fold -- a quiet one starts a fold, any
 * other suspends -- when its map record is the one its resume found (srec) and the yielded value's
 * text is at hand (value_small_hit: None, a small int -- a value passed up a `yield from` chain
 * is met again at each level) in args mode; else cb_py_yield, which does the same and more.
 * Out of line (a tail call), so that the fold's path in vc_cb_py_yield saves no registers. */
static __attribute__((noinline)) PyObject *
yield_row_out(CoreObject *c, ThreadState *ts, Entry *e, PyObject *const *args, Py_ssize_t nargs)
{
    Susp *s = e->srec;
    if (!s) {   /* not from a resume found in the map */
        if (c->codes[e->code_idx].code != (void *)args[0]) goto general;
        if (first_yield(c, ts, e, args[2])) return done_or_overflow(c, ts);
        goto general;
    }
    /* (its record, running this call in this frame: the frame's code, running_state's test) */
    uint32_t v = 0;
    /* (the value's id last, after every test that sends the yield to the general path: one that
     * value_id_now makes -- a miss's entry, a tuple packed now -- is this row's. value_id_now
     * runs no Python: ~140 k yields of flask's test_basic (pytest's ast walks: nodes found in the
     * memo, (name, value) tuples packed) went through cb_py_yield for value_id, ~135 instructions
     * each before it, callgrind) */
    if (s->frame != e->frame || s->code || s->call != e->call || c->nmarks + 2 > c->capmarks   /* (a fold: two rows) */
            || (c->args_mode && !(v = value_small_hit(c, args[2])) && !(v = value_id_now(c, args[2], 1))))
        goto general;
    int64_t t = fast_stamp();
    MarkRow *m = &c->marks[c->nmarks++];   /* add_fold / add_mark */
    uint32_t fold = 0;
    if (e->quiet) {   /* (the head, then its tail) */
        put_fold(c, m, e, t, v);
        fold = (uint32_t)++c->nmarks;
    } else {
        m->t = t; m->call = e->call; m->ref = v; m->othr = 0; m->kind = MARK_SUSPEND;
    }
    susp_suspended(c, s, args[0], fold, e->rothr, ts->thr);   /* susp_park */
    ts->depth--;
    return done_or_overflow(c, ts);
general:
    return cb_py_yield((PyObject *)c, args, nargs);
}

/* PY_YIELD: the usual case, a quiet run that extends its fold (~83% of the yields of
 * benchmarks' generators: fold_open decided it at the resume), is done here; a row to write goes
 * to yield_row_out. The top of the stack yields (recorded code: no filter lookup), and its
 * generator's map record is the one its resume found (srec) -- running this call in this
 * frame, its code the frame's (running_state), the one the resume checked. */
static PyObject *
vc_cb_py_yield(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    CoreObject *c = (CoreObject *)((CallbackObject *)self)->core;
    _PyInterpreterFrame *frame;
    ThreadState *ts;
    if (!vc_shape(nargsf, kwnames, 3)) goto general;
    if (!(ts = running_state(c, args[0], &frame))) goto general3;
    /* (at depth 0, the sentinel: no fold, and its frame NULL -- threads.c) */
    Entry *e = &ts->stack[ts->depth - 1];
    if (!e->fold) {
        if (e->frame != frame) goto general3;
        return yield_row_out(c, ts, e, args, 3);
    }
    /* (a fold is set by a resume that found the record, srec: that record still holding this
     * frame and the entry's call -- not given to another generator since -- is this frame's,
     * running this code (running_state), which the resume found suspended) */
    Susp *s = e->srec;
    if (s->frame != frame || s->call != e->call) goto general3;
    MarkRow *f = fold_row(c, e->fold);
    uint32_t n = f->n + 1;
    if (!n) goto general3;   /* (the fold is full, UINT32_MAX runs: cb_py_yield starts another) */
    /* fold_extend; the record's fold state stays (the writes before the clock: fewer values
     * live across it, no register saved) */
    f->n = n;
    s->code = args[0];   /* suspended */
    ts->depth--;
    int64_t t = fast_stamp();
    f->run += t - e->rt; f->t2 = t;
    Py_RETURN_NONE;
general3:
    /* (sys.monitoring's 3 arguments, vc_shape: nargsf need not stay live through the fast
     * path -- with it, the fold's path saved two registers, objdump) */
    return cb_py_yield((PyObject *)c, args, 3);
general:
    HAND_ON(cb_py_yield);
}

/* ---- an exception's usual events, in the vectorcall itself ----
 * An exception caught a few calls up (benchmarks' exceptions: raised in check, through middle,
 * caught in run) is one PY_UNWIND where it was raised (a fresh text), then a PY_UNWIND in each
 * frame it passes through and the EXCEPTION_HANDLED of its catcher: those find everything at
 * hand -- the top of the stack, and past the first the thread's known exception that came in
 * from the callee, its text's id cached (exc_id) -- and are done here, without the second
 * call, its frame and register saves, and without exc_event_state's general tests. Anything
 * else -- another thread state, a generator (its map entry), a caught exception raised again,
 * a SystemExit / StopIteration (plain_exception), a buffer to grow -- goes to the callbacks
 * above, which do the same and more. Same rows, same thread state as they make. */

/* The thread's recorder state when the event's frame is the top of its stack, a recorded call
 * of a code that is not a generator's, and the exception of the plain type remembered (not a
 * SystemExit, StopIteration, StopAsyncIteration); else NULL (the general path). */
static inline __attribute__((always_inline)) ThreadState *
exc_top(CoreObject *c, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    ThreadState *ts = tls_state;
    /* (a state of this session has its tstate: running_state; fast_gen: active, and the clock
     * the TSC -- fast_stamp, no call: stamp's clock_gettime made vc_cb_py_unwind save five
     * registers at every unwind, objdump) */
    if (!ts || kwnames || PyVectorcall_NARGS(nargsf) < 3 || ts->gen != c->fast_gen || !ts->depth)
        return NULL;
    const Entry *e = &ts->stack[ts->depth - 1];
    _PyInterpreterFrame *f = CURRENT_FRAME(ts->tstate);
    if (!f || FRAME_CODE(f) != args[0] || e->frame != f || c->codes[e->code_idx].code != (void *)args[0]
            || c->codes[e->code_idx].genlike)
        return NULL;
    /* plain_exception's remembered answer only (its type walks are calls: the general path) */
    PyTypeObject *tp = Py_TYPE(args[2]);
    if (tp != plain_type || ((tp->tp_flags & Py_TPFLAGS_HEAPTYPE) && (!plain_tag || tp->tp_version_tag != plain_tag)))
        return NULL;
    return ts;
}

/* exc_id's cache holds `exc`'s text (the exception that came in: its first event made it) */
static inline __attribute__((always_inline)) int
exc_cached(CoreObject *c, const ThreadState *ts, PyObject *exc)
{
    return exc == ts->exc_ptr && ts->exc_sid && ts->exc_batch == c->batch;
}

/* The exception ends call `d` of the stack and travels on into the caller (cb_py_unwind's
 * thread state) */
static inline __attribute__((always_inline)) PyObject *
unwound(ThreadState *ts, size_t d, PyObject *code, PyObject *exc)
{
    ts->depth = d;
    exc_arrived(ts, exc, d ? ts->stack[d - 1].call : 0);
    ts->known_from = code;   /* ... while its traceback passes through here */
    Py_RETURN_NONE;
}

/* The text id exc_id_slow gives a new exception, when it is one whose text this session has
 * seen -- of the first type given a small-int table (exc_small[0]: a static type that passed
 * exc_entry's tests), with no argument or one int >= 0 read in place, its entry there holding
 * a provisional id of this batch or a final id (small_entry_id) -- with the same cache set;
 * else 0 (exc_id_slow then). Inline: no call, so vc_cb_py_unwind saves no registers for it
 * (unwind_raised_here's and exc_id_slow's frames cost ~40 instructions of each such raise). */
static inline __attribute__((always_inline)) uint32_t
exc_seen_id(CoreObject *c, ThreadState *ts, PyObject *exc)
{
    if (Py_TYPE(exc) != c->exc_small[0].tp) return 0;
    PyObject *a = ((PyBaseExceptionObject *)exc)->args;
    if (!a || !PyTuple_CheckExact(a) || PyTuple_GET_SIZE(a) > 1) return 0;
    uint64_t x = 0;   /* (exc_small_index: 0 for no argument, v + 1 for one int v) */
    if (PyTuple_GET_SIZE(a)) {
        PyObject *v = PyTuple_GET_ITEM(a, 0);
        if (!small_int(v) || (int64_t)small_int_value(v) < 0) return 0;
        x = small_int_value(v) + 1;
    }
    uint32_t sid = small_entry_id(c, &c->exc_small[0].tab, x);
    if (!sid) return 0;
    c->exc_finals |= (uint8_t)(sid >> 31);   /* (exc_entry's: a final id in this batch's rows) */
    ts->exc_ptr = exc; ts->exc_sid = sid; ts->exc_batch = c->batch;
    return sid;
}

/* PY_UNWIND of an exception raised in the top call whose text is new to the session
 * (unwind_raised_here's other case: exc_id_slow makes it). A function of its own, tail-called:
 * its call of exc_id_slow would make its caller save registers. */
static __attribute__((noinline)) PyObject *
unwind_new_text(CoreObject *c, ThreadState *ts, PyObject *code, PyObject *exc, int64_t t)
{
    size_t d = ts->depth - 1;
    uint32_t call = ts->stack[d].call;
    uint32_t v = exc_id_slow(c, ts, exc);   /* (may run Python -- the text hook -- with no event of this thread) */
    if (!v) soft_fail(c);
    if (add_exit(c, call, t, END_RAISE_HERE, v) < 0) return callback_failed(c);
    return unwound(ts, d, code, exc);
}

/* PY_UNWIND of an exception raised in the top call (cb_py_unwind's END_RAISE_HERE row, its
 * text made afresh: raised_in drops the cache) -- a text the session has seen at hand
 * (exc_seen_id), else unwind_new_text. A function of its own, tail-called, and calling
 * nothing: inside vc_cb_py_unwind its registers made that save five at every unwind (objdump). */
static __attribute__((noinline)) PyObject *
unwind_raised_here(CoreObject *c, ThreadState *ts, PyObject *code, PyObject *exc)
{
    int64_t t = fast_stamp();
    uint32_t v = exc_seen_id(c, ts, exc);
    if (!v || c->nexits == c->capexits) return unwind_new_text(c, ts, code, exc, t);
    size_t d = ts->depth - 1;
    put_exit(c, ts->stack[d].call, t, END_RAISE_HERE, v);
    return unwound(ts, d, code, exc);
}

/* PY_UNWIND (cb_py_unwind's rows): of an exception that came in from a callee, an END_RAISE
 * exit with its cached text; of one raised in this call (raised_in's test), an END_RAISE_HERE
 * exit (unwind_raised_here) -- the general path cost ~145 instructions more for it:
 * exc_event_state's tests, pop_target (callgrind, benchmarks' exceptions). */
static PyObject *
vc_cb_py_unwind(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    CoreObject *c = (CoreObject *)((CallbackObject *)self)->core;
    ThreadState *ts = exc_top(c, args, nargsf, kwnames);
    if (!ts) goto general;
    size_t d = ts->depth - 1;
    uint32_t call = ts->stack[d].call;
    if (!came_in(ts, args[2], call)) return unwind_raised_here(c, ts, args[0], args[2]);
    if (!exc_cached(c, ts, args[2]) || c->nexits == c->capexits) goto general;
    put_exit(c, call, fast_stamp(), END_RAISE, ts->exc_sid);
    return unwound(ts, d, args[0], args[2]);
general:
    HAND_ON(cb_py_unwind);
}

/* EXCEPTION_HANDLED of an exception that came in from a recorded callee (cb_exception_handled's
 * row: the call's `handled` mark, its latest, that a re-raise may take back) */
static PyObject *
vc_cb_exception_handled(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    CoreObject *c = (CoreObject *)((CallbackObject *)self)->core;
    ThreadState *ts = exc_top(c, args, nargsf, kwnames);
    /* (a held resume row to write first -- quiet_end -- is a generator's: the general path) */
    if (!ts || !came_in(ts, args[2], ts->stack[ts->depth - 1].call) || !exc_cached(c, ts, args[2])
            || c->nmarks == c->capmarks || ts->stack[ts->depth - 1].quiet)
        goto general;
    int64_t t = fast_stamp();
    Entry *e = &ts->stack[ts->depth - 1];
    MarkRow *r = &c->marks[c->nmarks++];   /* add_mark */
    r->t = t; r->exc = args[2]; r->call = e->call; r->ref = ts->exc_sid; r->othr = 0; r->kind = MARK_HANDLED;
    e->hmark = (uint32_t)c->nmarks; e->qbatch = (uint32_t)c->batch;
    ts->known_caught = 1; ts->known_from = NULL;   /* caught here */
    Py_RETURN_NONE;
general:
    HAND_ON(cb_exception_handled);
}
#undef HAND_ON

static void
callback_dealloc(CallbackObject *cb)
{
    Py_XDECREF(cb->core);
    Py_TYPE(cb)->tp_free((PyObject *)cb);
}

static PyObject *
callback_repr(CallbackObject *cb)
{
    return PyUnicode_FromFormat("<flowtrace callback %s>", cb->name);
}

static PyTypeObject CallbackType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "flowtrace._crecorder.Callback",
    .tp_basicsize = sizeof(CallbackObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "A monitoring callback of one Core (Core.callback(name)).",
    .tp_vectorcall_offset = offsetof(CallbackObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_dealloc = (destructor)callback_dealloc,
    .tp_repr = (reprfunc)callback_repr,
};

static const struct { const char *name; vectorcallfunc vc; } callback_table[] = {
    {"py_start", vc_cb_py_start}, {"py_resume", vc_cb_py_resume}, {"py_throw", vc_cb_py_throw},
    {"py_return", vc_cb_py_return}, {"py_yield", vc_cb_py_yield}, {"py_unwind", vc_cb_py_unwind},
    {"exception_handled", vc_cb_exception_handled}, {"reraise", vc_cb_reraise},
};

/* Core.callback(name): the callable to register for that event (same arguments and results
 * as the method of that name). */
PyObject *
core_callback(PyObject *core, PyObject *name)
{
    const char *s = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    if (!s) { if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "callback(name: str)"); return NULL; }
    for (size_t i = 0; i < sizeof callback_table / sizeof callback_table[0]; i++) {
        if (strcmp(s, callback_table[i].name)) continue;
        if (!(CallbackType.tp_flags & Py_TPFLAGS_READY) && PyType_Ready(&CallbackType) < 0) return NULL;
        CallbackObject *cb = PyObject_New(CallbackObject, &CallbackType);
        if (!cb) return NULL;
        cb->vectorcall = callback_table[i].vc;
        cb->core = Py_NewRef(core);
        cb->name = callback_table[i].name;
        return (PyObject *)cb;
    }
    return PyErr_Format(PyExc_ValueError, "no callback named %R", name);
}
