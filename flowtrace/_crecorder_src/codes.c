/* flowtrace._crecorder: code objects -- the filter decision and argument layout, once per code object and session. */
#include "crecorder.h"

Py_ssize_t extra_index = -1;
int extra_inline = 1;   /* code_extra reads the slot in place (crecorder.h); 0 once that read disagreed */

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
    PyObject *varnames = PyCode_GetVarnames(co);
    if (!varnames) return -1;
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
        ci->star[shown_n] = (uint8_t)kind;
        shown_n++;
    }
    Py_DECREF(varnames);
    if (shown_n < total && _PyTuple_Resize(&names, shown_n) < 0) return -1;
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
    for (size_t i = 0; i < c->nsmall_args; i++) {
        if (c->small_names[i] == name || PyUnicode_Compare(c->small_names[i], name) == 0) {
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

/* First sight of a code object in this session: ask the wrapper (filters.CodeFilter). */
Py_ssize_t
code_slow(CoreObject *c, PyCodeObject *co, PyObject *globals)
{
    /* the module the code runs in (filters match module names): globals' __name__ */
    PyObject *module = NULL;
    if (globals && PyDict_Check(globals)) {
        module = PyDict_GetItemWithError(globals, str_name);
        if (!module && PyErr_Occurred()) return CODE_ERROR;
    }
    hook_runs_python(c);
    PyObject *hook_args[2] = {(PyObject *)co, module ? module : Py_None};
    PyObject *r = call_in_callback(c->on_code, hook_args, 2, NULL);   /* (the program's handlers wait: sighold.c) */
    if (!r) return CODE_ERROR;
    long func = PyLong_AsLong(r);
    Py_DECREF(r);
    if (func == -1 && PyErr_Occurred()) return CODE_ERROR;
    uintptr_t v;
    Py_ssize_t idx = CODE_EXCLUDED;
    if (func == 0) {
        v = (uintptr_t)((GEN_BITS(c->gen) << 40) | 1);
    } else {
        if (grow((void **)&c->codes, &c->capcodes, c->ncodes + 1, sizeof(CodeInfo)) < 0) return CODE_ERROR;
        CodeInfo *ci = &c->codes[c->ncodes];
        memset(ci, 0, sizeof(*ci));
        if (fill_code_info(ci, co) < 0) return CODE_ERROR;
        small_args_for(c, ci);
        ci->own = func > 0 && (func & FUNC_OWN) != 0;
        ci->func = func > 0 ? (uint32_t)(func & ~(long)FUNC_OWN) : 0;
        ci->hook = func < 0;
        ci->start_slow = ci->hook || ci->coro;
        ci->code = co;
        idx = (Py_ssize_t)c->ncodes++;
        c->code_lim = (uint64_t)c->ncodes << 1;   /* code_known */
        v = (uintptr_t)((GEN_BITS(c->gen) << 40) | ((uint64_t)(idx + 1) << 1));
    }
    if (PyUnstable_Code_SetExtra((PyObject *)co, extra_index, (void *)v) < 0) return CODE_ERROR;
    if (extra_inline && code_extra(co) != v) {   /* another layout: the API from now on */
        extra_inline = 0;
        fast_update(c);
    }
    return idx;
}

/* func_entry(fid, code, module): recorder/common.func_entry's dict -- the FUNC entry of a recorded
 * code object -- made here for the C recorder's hook (recorder/c.py _on_code): the same keys in
 * the same order and the same values (its kind as codeinfo.code_kind decides it, from co_flags
 * and co_name). The hook, once per code object (~4,000 in flask's test_basic), went from ~12,100
 * to ~10,300 instructions (callgrind, 5,000 new code objects): the Python call, code_kind's call
 * and the dict literal. test_differential holds the two recorders to the same FUNC tables. */
static PyObject *fe_keys[6], *fe_kinds[6], *fe_empty;

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

PyObject *
mod_func_entry(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyLong_Check(args[0]) || !PyCode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "func_entry(fid: int, code, module: str | None)");
        return NULL;
    }
    if (!func_entry_keys()) return NULL;
    PyCodeObject *co = (PyCodeObject *)args[1];
    PyObject *module = args[2];
    int named = module == Py_None ? 0 : PyUnicode_CheckExact(module) ? PyUnicode_GET_LENGTH(module) != 0
              : PyObject_IsTrue(module);   /* (func_entry's `module or ""`) */
    if (named < 0) return NULL;
    PyObject *line = PyLong_FromLong(co->co_firstlineno);
    PyObject *d = line ? PyDict_New() : NULL;
    if (!d) { Py_XDECREF(line); return NULL; }
    PyObject *vals[6] = {args[0], co->co_qualname, named ? module : fe_empty, co->co_filename, line,
                         fe_kinds[code_kind_index(co)]};
    for (int i = 0; i < 6; i++)
        if (PyDict_SetItem(d, fe_keys[i], vals[i]) < 0) { Py_DECREF(line); Py_DECREF(d); return NULL; }
    Py_DECREF(line);
    return d;
}
