/* flowtrace._crecorder: code objects -- the filter decision and argument layout, once per code object and session. */
#include "crecorder.h"

Py_ssize_t extra_index = -1;
int extra_inline = 0;   /* code_extra reads the slot in place, store_extra writes it (crecorder.h): the layout was confirmed */

/* ------------------------------------------------------------------------------------ */
/* Code objects: the filter decision, once per code object and session.                  */


static int
fill_code_info(CodeInfo *ci, PyCodeObject *co)
{
    /* localsplus order is: positional, keyword-only, *args, **kwargs; the text shows
     * positional, *args, keyword-only, **kwargs (reprs.args_text's order). */
    int flags = co->co_flags;
    int npos = co->co_argcount, nkw = co->co_kwonlyargcount;
    int nvar = (flags & CO_VARARGS) ? 1 : 0, nkwd = (flags & CO_VARKEYWORDS) ? 1 : 0;
    int total = npos + nkw + nvar + nkwd;
    /* the parameters are the first names of co_localsplusnames, as of co_varnames (which
     * PyCode_GetVarnames makes anew: a tuple of every local's name, ~210 instructions) */
    PyObject *varnames = Py_NewRef(co->co_localsplusnames);
    if (PyTuple_GET_SIZE(varnames) < total) total = npos = nkw = nvar = nkwd = 0;
    PyObject *names = PyTuple_New(total);
    ci->order = PyMem_RawMalloc(sizeof(uint16_t) * (total + 1));
    ci->star = PyMem_RawMalloc(total + 1);
    if (!names || !ci->order || !ci->star) {
        Py_XDECREF(names); Py_DECREF(varnames);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return -1;
    }
    int shown_n = 0;
    ci->order4 = 0;
    for (int i = 0; i < total; i++) {
        int src, kind = 0;
        if (i < npos) src = i;
        else if (i == npos && nvar) { src = npos + nkw; kind = 1; }
        else if (i < npos + nvar + nkw) src = i - nvar;
        else { src = npos + nkw + nvar; kind = 2; }
        PyObject *name = PyTuple_GET_ITEM(varnames, src);
        /* A parameter named ".0" (the iterator a generator expression receives) is made by
         * the compiler, not written by the user: it is not shown as an argument. */
        if (PyUnicode_Check(name) && PyUnicode_GET_LENGTH(name) && PyUnicode_READ_CHAR(name, 0) == '.')
            continue;
        PyObject *shown = kind == 1 ? PyUnicode_FromFormat("*%U", name)
                        : kind == 2 ? PyUnicode_FromFormat("**%U", name) : Py_NewRef(name);
        if (!shown) { Py_DECREF(varnames); Py_DECREF(names); return -1; }
        PyTuple_SET_ITEM(names, shown_n, shown);
        ci->order[shown_n] = (uint16_t)src;
        if (shown_n < 4) ci->order4 |= (uint8_t)((src & 3) << (2 * shown_n));   /* (a keyed code's: src < 4) */
        ci->star[shown_n] = (uint8_t)kind;
        shown_n++;
    }
    Py_DECREF(varnames);
    if (shown_n < total && _PyTuple_Resize(&names, shown_n) < 0) return -1;
    /* (a tuple of strs, kept for the session: untracked, as the collector untracks it at its
     * next pass anyway -- so that a program counting gc.get_objects() around a call does not
     * count ours: CPython's test_descr.test_slots found one more under --include '*') */
    PyObject_GC_UnTrack(names);
    ci->names = names;
    ci->nshown = (uint16_t)shown_n;
    ci->nargs = shown_n ? (uint16_t)total : 0;   /* nothing shown: nothing captured */
    ci->cells = 0;
    for (int i = 0; i < ci->nargs; i++)
        ci->cells |= (PyBytes_AS_STRING(co->co_localspluskinds)[i] & CO_FAST_CELL) != 0;
    ci->keyed = ci->nargs >= 1 && ci->nargs <= MEMO_SLOTS && !ci->cells ? (uint8_t)ci->nargs : 0;
    ci->genlike = (flags & (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR | CO_ITERABLE_COROUTINE)) != 0;
    ci->coro = (flags & (CO_COROUTINE | CO_ASYNC_GENERATOR)) != 0;
    return 0;
}

/* c->codes, c->fast and c->crec grown to hold `need` entries, 64-byte aligned (CodeInfo's first
 * line is one entry's fields of calls and returns, CodeRec four entries: grow's realloc aligns to 16
 * only). 0, or -1 with an error set. */
static COLD int
codes_grow(CoreObject *c, size_t need)
{
    if (need <= c->capcodes) return 0;
    size_t ncap = c->capcodes ? c->capcodes : 256;
    while (ncap < need) ncap *= 2;
    CodeInfo *p = aligned_alloc(_Alignof(CodeInfo), ncap * sizeof(CodeInfo));   /* (a multiple of it) */
    CodeFast *f = aligned_alloc(64, ncap * sizeof(CodeFast));   /* (ncap >= 256: a multiple of 64) */
    CodeRec *r = aligned_alloc(64, ncap * sizeof(CodeRec));
    if (!p || !f || !r) { free(p); free(f); free(r); PyErr_NoMemory(); return -1; }
    if (c->ncodes) {
        memcpy(p, c->codes, c->ncodes * sizeof(CodeInfo));
        memcpy(f, c->fast, c->ncodes * sizeof(CodeFast));
        memcpy(r, c->crec, c->ncodes * sizeof(CodeRec));
    }
    PyMem_RawFree(c->codes);   /* (free: ft_raw_malloc's) */
    PyMem_RawFree(c->fast);
    PyMem_RawFree(c->crec);
    c->codes = p;
    c->fast = f;
    c->crec = r;
    c->capcodes = ncap;
    return 0;
}

/* The small-int table of a one-parameter function (ci->small, else -1): shared by every
 * function whose parameter has the same name (f(n) and g(n) both write "n=5"). A handful of
 * names in practice; bounded. Never fails: without a table the hot memo serves. */
static void
small_args_for(CoreObject *c, CodeInfo *ci)
{
    ci->small = -1;
    if (ci->nargs != 1 || ci->nshown != 1 || ci->star[0] != 0) return;
    PyObject *name = PyTuple_GET_ITEM(ci->names, 0);
    if (!PyUnicode_CheckExact(name)) return;
    /* (two interned strings are equal only as one object, and the compiler interns names: a
     * compare for each table was 2.2 M instructions of flask's 5,018 first sights) */
    int interned = PyUnicode_CHECK_INTERNED(name) != 0;
    for (size_t i = 0; i < c->nsmall_args; i++) {
        PyObject *known = c->small_names[i];
        if (known == name || (!(interned && PyUnicode_CHECK_INTERNED(known)) && PyUnicode_Compare(known, name) == 0)) {
            ci->small = (int32_t)i;
            return;
        }
    }
    if (c->nsmall_args >= 4096) return;
    if (c->nsmall_args == c->capsmall_args) {
        size_t ncap = c->capsmall_args ? c->capsmall_args * 2 : 16;
        SmallTab *t = PyMem_RawRealloc(c->small_args, ncap * sizeof(SmallTab));
        if (!t) return;
        c->small_args = t;
        PyObject **n = PyMem_RawRealloc(c->small_names, ncap * sizeof(PyObject *));
        if (!n) return;   /* (small_args merely larger than needed) */
        c->small_names = n;
        c->capsmall_args = ncap;
    }
    c->small_args[c->nsmall_args].tab = NULL;
    c->small_args[c->nsmall_args].n = 0;
    c->small_names[c->nsmall_args] = Py_NewRef(name);
    ci->small = (int32_t)c->nsmall_args++;
}

/* ------------------------------------------------------------------------------------ */
/* The filter's answers kept by name. A program's code objects come from a few hundred files
 * (flask's test_basic: 5,018 code objects, 410 (file name, module) pairs), and the filter
 * answers alike for every code object of one file name running in one module -- except where
 * filters.CodeFilter.first_sight says not (a relative file name, `__main__`, a file with marked
 * code) and for asyncio's create_task file (recorder/c.py). Asking the wrapper cost ~13,800
 * instructions a code object (callgrind, flask: the Python call, the verdict's dict, the marks,
 * is_own), with the program's signal handlers held; a kept answer costs a probe here. */

#define VERDICTS 1024         /* slots, a power of two */
#define VERDICTS_MAX 512      /* answers kept, then the table starts again (bounded memory) */
struct Verdict { PyObject *file, *module; uint64_t hash; long answer; };   /* file NULL: empty */

/* + 1 whenever code is marked (filters.py calls forget_verdicts): a mark can change the answer
 * for its file name, and a core compares this with what it kept by before every probe. */
static uint64_t verdict_epoch = 1;

PyObject *
mod_forget_verdicts(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(unused))
{
    verdict_epoch++;
    Py_RETURN_NONE;
}

void
clear_verdicts(CoreObject *c)
{
    if (c->verdicts && c->nverdicts) {
        for (size_t i = 0; i < VERDICTS; i++) {
            Py_CLEAR(c->verdicts[i].file);
            Py_CLEAR(c->verdicts[i].module);
        }
    }
    c->nverdicts = 0;
    c->verdicts_epoch = verdict_epoch;
}

/* The slot of (file, module) -- its answer, or the empty slot it goes to -- or NULL: the key is
 * not kept by name (only exact str file names, and exact str or None modules, hash and compare
 * without running code) or there is no table. `*hash` is the key's hash for verdict_keep. */
static struct Verdict *
verdict_slot(CoreObject *c, PyObject *file, PyObject *module, uint64_t *hash)
{
    if (!c->verdicts || !PyUnicode_CheckExact(file) || (module != Py_None && !PyUnicode_CheckExact(module)))
        return NULL;
    if (c->verdicts_epoch != verdict_epoch) clear_verdicts(c);   /* (code was marked since) */
    /* (a str's hash is kept in it: computed once per file name; None's module part is 0) */
    uint64_t h = (uint64_t)PyObject_Hash(file) ^ (module == Py_None ? 0 : (uint64_t)PyObject_Hash(module) * 0x9E3779B97F4A7C15ULL);
    *hash = h;
    for (size_t i = (size_t)(h ^ (h >> 29)) & (VERDICTS - 1);; i = (i + 1) & (VERDICTS - 1)) {
        struct Verdict *v = &c->verdicts[i];
        if (!v->file) return v;
        /* (equal strings from different objects: "<string>" of many compile() calls) */
        if (v->hash == h && (v->file == file || PyUnicode_Compare(v->file, file) == 0)
            && (v->module == module || (module != Py_None && v->module != Py_None && PyUnicode_Compare(v->module, module) == 0)))
            return v;
    }
}

/* Keep the wrapper's answer for (file, module) (the table is at most half full: a probe ends) */
static void
verdict_keep(CoreObject *c, PyObject *file, PyObject *module, long answer)
{
    if (!c->verdicts && !(c->verdicts = PyMem_RawCalloc(VERDICTS, sizeof(struct Verdict)))) return;
    if (c->nverdicts >= VERDICTS_MAX) clear_verdicts(c);
    uint64_t h;
    struct Verdict *v = verdict_slot(c, file, module, &h);   /* (again: the hook ran Python code) */
    if (!v || v->file) return;
    v->file = Py_NewRef(file);
    v->module = Py_NewRef(module);
    v->hash = h;
    v->answer = answer;
    c->nverdicts++;
}

/* The wrapper's answer (recorder/c.py _on_code: filters.CodeFilter), -2 with an error set */
static long
code_hook(CoreObject *c, PyCodeObject *co, PyObject *module)
{
    hook_runs_python(c);
    PyObject *hook_args[2] = {(PyObject *)co, module};
    PyObject *r = call_in_callback(c->on_code, hook_args, 2, NULL);   /* (the program's handlers wait: sighold.c) */
    if (!r) return -2;
    long answer = PyLong_AsLong(r);
    Py_DECREF(r);
    if (answer == -1 && PyErr_Occurred()) return -2;
    if (answer != -1 && (answer < 0 || (answer & ~(CODE_IN | FUNC_OWN | CODE_SAME))
                         || ((answer & FUNC_OWN) && !(answer & CODE_IN)))) {
        PyErr_Format(PyExc_ValueError, "on_code: %ld is not an answer", answer);
        return -2;
    }
    return answer;
}

static PyObject *func_entry_new(PyObject *fid, PyCodeObject *co, PyObject *module);
static int store_extra(PyCodeObject *co, uintptr_t v);

/* A recorded code's FUNC entry, appended to the recorder's list: a new FUNC id */
static uint32_t
func_define(CoreObject *c, PyCodeObject *co, PyObject *module)
{
    PyObject *fid = PyLong_FromUnsignedLong(c->nfuncs + 1);
    PyObject *entry = fid ? func_entry_new(fid, co, PyUnicode_Check(module) ? module : Py_None) : NULL;
    Py_XDECREF(fid);
    if (!entry) return 0;
    int r = PyList_Append(c->funcs_out, entry);
    Py_DECREF(entry);
    return r < 0 ? 0 : ++c->nfuncs;
}

/* First sight of a code object in this session: the filter's answer -- kept by name, else the
 * wrapper's -- and, for a recorded code, its CodeInfo and FUNC entry. */
Py_ssize_t
code_slow(CoreObject *c, PyCodeObject *co, PyObject *globals)
{
    /* the module the code runs in (filters match module names): globals' __name__ */
    PyObject *module = NULL;
    if (globals && PyDict_Check(globals)) {
        module = PyDict_GetItemWithError(globals, str_name);
        if (!module && PyErr_Occurred()) return CODE_ERROR;
    }
    if (!module) module = Py_None;
    uint64_t h;
    struct Verdict *kept = verdict_slot(c, co->co_filename, module, &h);
    long answer;
    if (kept && kept->file) {
        answer = kept->answer;   /* no Python code runs: no hook_runs_python, no signal hold */
    } else {
        if ((answer = code_hook(c, co, module)) == -2) return CODE_ERROR;
        if (answer >= 0 && (answer & CODE_SAME)) {
            answer &= ~CODE_SAME;
            verdict_keep(c, co->co_filename, module, answer);
        }
    }
    uintptr_t v;
    Py_ssize_t idx = CODE_EXCLUDED;
    if (answer == 0) {
        v = (uintptr_t)((GEN_BITS(c->gen) << 40) | 1);
    } else {
        if (c->ncodes + 1 >= IDX_MASK) {   /* (index + 1 must fit below the generation's bits: 2^31 codes) */
            PyErr_SetString(PyExc_OverflowError, "flowtrace: too many code objects in one session");
            return CODE_ERROR;
        }
        if (codes_grow(c, c->ncodes + 1) < 0) return CODE_ERROR;
        CodeInfo *ci = &c->codes[c->ncodes];
        memset(ci, 0, sizeof(*ci));
        if (fill_code_info(ci, co) < 0) return CODE_ERROR;
        small_args_for(c, ci);
        ci->own = answer > 0 && (answer & FUNC_OWN) != 0;
        ci->hook = answer < 0;
        if (answer > 0 && !(ci->func = func_define(c, co, module))) {
            Py_CLEAR(ci->names);   /* (the slot is taken again by the next code) */
            PyMem_RawFree(ci->order); ci->order = NULL;
            PyMem_RawFree(ci->star); ci->star = NULL;
            return CODE_ERROR;
        }
        ci->start_slow = ci->hook || ci->coro;
        ci->code = co;
        int small = ci->small >= 0 && !ci->cells;
        c->fast[c->ncodes] = (CodeFast){small ? ci->small : -1};
        c->crec[c->ncodes] = (CodeRec){.func = ci->func};   /* (rec_names_commit fills the rest) */
        idx = (Py_ssize_t)c->ncodes++;
        c->code_lim = (uint64_t)c->ncodes << XF_IDX_SHIFT;   /* code_known */
        uint64_t flags = (ci->start_slow ? XF_SLOW : 0) | (ci->genlike ? XF_GENLIKE : 0) | (small ? XF_SMALL : 0)
                         | (uint64_t)ci->keyed << XF_KEYED_SHIFT   /* (keyed <= MEMO_SLOTS: 3 bits) */
                         | (ci->nargs ? 0 : XF_NOARGS);
        v = (uintptr_t)((GEN_BITS(c->gen) << 40) | ((uint64_t)(idx + 1) << XF_IDX_SHIFT) | flags);
    }
    if (store_extra(co, v) < 0) return CODE_ERROR;
    return idx;
}

/* Our slot written as PyUnstable_Code_SetExtra writes it, except that a block made or grown here
 * reaches our index only, not every index requested so far: at a code object's dealloc CPython
 * calls each index's free function for every slot of its block, NULL ones too, so a program's
 * own index (its free function maybe a ctypes callback) was called for every code object we had
 * seen -- CPython's test_code (CoExtra) crashed at exit under `flowtrace run`, its ctypes free
 * function called after ctypes had gone. The API where the layout was not confirmed. */
static int
store_extra(PyCodeObject *co, uintptr_t v)
{
    CodeExtra *ex = (CodeExtra *)co->co_extra;
    if (!extra_inline || (ex && extra_index < ex->ce_size))
        return PyUnstable_Code_SetExtra((PyObject *)co, extra_index, (void *)v);
    Py_ssize_t size = extra_index + 1, old = ex ? ex->ce_size : 0;
    CodeExtra *grown = PyMem_Realloc(ex, sizeof(CodeExtra) + (size_t)(size - 1) * sizeof(void *));
    if (!grown) { PyErr_NoMemory(); return -1; }   /* (ex is still the code's, unchanged) */
    for (Py_ssize_t i = old; i < size; i++) grown->ce_extras[i] = NULL;
    grown->ce_size = size;
    grown->ce_extras[extra_index] = (void *)v;
    co->co_extra = grown;
    return 0;
}

/* Is co_extra laid out as CodeExtra says? Checked once, at import, through the API on a code
 * object of our own: code_extra reads the slot in place, and store_extra writes it, only then. */
int
extra_layout_check(void)
{
    PyCodeObject *co = PyCode_NewEmpty("<flowtrace>", "<flowtrace>", 0);
    if (!co) { PyErr_Clear(); return 0; }
    void *mark = (void *)(uintptr_t)0x5A5A5A;
    int ok = PyUnstable_Code_SetExtra((PyObject *)co, extra_index, mark) == 0;
    const CodeExtra *ex = (const CodeExtra *)co->co_extra;
    ok = ok && ex && extra_index < ex->ce_size && ex->ce_extras[extra_index] == mark;
    PyErr_Clear();
    if (PyUnstable_Code_SetExtra((PyObject *)co, extra_index, NULL) < 0) PyErr_Clear();
    Py_DECREF(co);
    return ok;
}

/* func_entry(fid, code, module): recorder/common.func_entry's dict -- the FUNC entry of a recorded
 * code object -- made here for the C recorder's hook (recorder/c.py _on_code): the same keys in
 * the same order and the same values (its kind as codeinfo.code_kind decides it, from co_flags
 * and co_name). The hook, once per code object (~4,000 in flask's test_basic), went from ~12,100
 * to ~10,300 instructions (callgrind, 5,000 new code objects): the Python call, code_kind's call
 * and the dict literal. test_differential holds the two recorders to the same FUNC tables. */
static PyObject *fe_keys[6], *fe_kinds[6], *fe_empty;
/* {key: None for each key}: an entry is a copy of it with its values set. A copy of a dict of
 * this shape is one memcpy of its table (dict_copy's clone), and setting a key it has replaces
 * a value in place; six inserts into a new dict allocated its table and grew it once: ~2,150
 * instructions an entry, ~2,010 now (callgrind, flask's 4,035 entries; most of it is still
 * PyDict_SetItem's). */
static PyObject *fe_template;

/* The entry's keys, interned (encode.c's func_json reads entries by them); NULL with an error set */
PyObject **
func_entry_keys(void)
{
    if (!fe_empty) {
        static const char *const keys[6] = {"id", "qualname", "module", "file", "line", "kind"};
        static const char *const kinds[6] = {"function", "generator", "coroutine", "async_generator", "class", "module"};
        for (int i = 0; i < 6; i++) {
            if (!(fe_keys[i] = PyUnicode_InternFromString(keys[i]))) return NULL;
            if (!(fe_kinds[i] = PyUnicode_InternFromString(kinds[i]))) return NULL;
        }
        if (!(fe_empty = PyUnicode_InternFromString(""))) return NULL;
        PyObject *t = PyDict_New();
        for (int i = 0; t && i < 6; i++)
            if (PyDict_SetItem(t, fe_keys[i], Py_None) < 0) Py_CLEAR(t);
        if (!(fe_template = t)) { fe_empty = NULL; return NULL; }
    }
    return fe_keys;
}

/* codeinfo.code_kind's answer (an index into fe_kinds) */
static int
code_kind_index(PyCodeObject *co)
{
    int flags = co->co_flags;
    if (flags & CO_COROUTINE) return 2;
    if (flags & CO_ASYNC_GENERATOR) return 3;
    if (flags & (CO_GENERATOR | CO_ITERABLE_COROUTINE)) return 1;
    if (!(flags & (CO_OPTIMIZED | CO_NEWLOCALS)))
        return PyUnicode_CompareWithASCIIString(co->co_name, "<module>") == 0 ? 5 : 4;
    return 0;
}

/* The FUNC entry of code `co` running in `module` (None, or a str: func_entry's `module or ""`),
 * id `fid`; NULL with an error set */
static PyObject *
func_entry_new(PyObject *fid, PyCodeObject *co, PyObject *module)
{
    if (!func_entry_keys()) return NULL;
    int named = module == Py_None ? 0 : PyUnicode_CheckExact(module) ? PyUnicode_GET_LENGTH(module) != 0
              : PyObject_IsTrue(module);
    if (named < 0) return NULL;
    PyObject *line = PyLong_FromLong(co->co_firstlineno);
    PyObject *d = line ? PyDict_Copy(fe_template) : NULL;
    if (!d) { Py_XDECREF(line); return NULL; }
    PyObject *vals[6] = {fid, co->co_qualname, named ? module : fe_empty, co->co_filename, line,
                         fe_kinds[code_kind_index(co)]};
    for (int i = 0; i < 6; i++)
        if (PyDict_SetItem(d, fe_keys[i], vals[i]) < 0) { Py_DECREF(line); Py_DECREF(d); return NULL; }
    Py_DECREF(line);
    return d;
}

PyObject *
mod_func_entry(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyLong_Check(args[0]) || !PyCode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "func_entry(fid: int, code, module: str | None)");
        return NULL;
    }
    return func_entry_new(args[0], (PyCodeObject *)args[1], args[2]);
}
