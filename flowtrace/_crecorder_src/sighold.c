/* flowtrace._crecorder: what arrives for the program while our own code runs on the main thread
 * inside a monitoring callback -- a signal's handler, an exception that is the program's -- waits
 * for the program's next eval-breaker check outside any callback, and lands there.
 *
 * Python runs a signal's handler on the main thread, at an eval-breaker check of whatever Python
 * code runs there -- including ours: the backpressure flush (threads.c's overflow_slow; session.py's
 * _overflow: drain, encode, write), the Python recorder's callbacks (guard.c), the C recorder's
 * value and exception text hooks (guard.c's call_in_callback: reprs.py, a user __repr__ in
 * --repr full). A handler run in the middle of the flush broke it: its exception (Ctrl-C's
 * KeyboardInterrupt) left a batch drained but not written -- both recorders' files were damaged
 * from there (22 k of 925 k calls readable) --; a handler that returned ran inside the callback,
 * where no event is delivered, so its own calls were missing from the tree; and an ordinary
 * exception of a handler (a SIGALRM timeout's TimeoutError) became a repr's failure text instead
 * of reaching the program. Blocking the signals (sigmask.py) is not enough: a signal caught by
 * another thread, one flagged just before, or _thread.interrupt_main still trips the handler, and
 * signal.pthread_sigmask itself runs the handlers (PyErr_CheckSignals) when it changes the mask.
 *
 * So while that code runs the main thread is not the main thread as far as signals go (hold):
 * CPython runs handlers -- and the main thread's pending calls -- only where
 * PyThread_get_thread_ident() == _PyRuntime.main_thread (3.12 and 3.13), so that field holds 0 (no
 * thread's ident) meanwhile. A signal that arrives is flagged as usual (its C handler, the wakeup
 * fd) and waits. One pending call, to_program, then runs at the main thread's next check: it runs
 * the handlers that wait (PyErr_CheckSignals) and raises an exception given to the program
 * meanwhile (program_gets: a __repr__'s own KeyboardInterrupt, guard.c) -- where the program
 * would have met them had our code taken no time, the handlers recorded like any of its code.
 * A check inside a callback that holds nothing (another hook, another tool's) passes it on to the
 * next one. Another thread is never the main thread, so nothing changes for it.
 *
 * The program's own code that our code calls -- a user __repr__ in --repr full -- runs unheld
 * (program_code), as it would untraced: a Ctrl-C or a timeout's alarm interrupts a slow one (held,
 * they waited for it to return, for good if it never did), and it may use what only the main
 * thread may (signal.signal raised ValueError in it). A handler that runs there is not recorded,
 * as the __repr__'s own calls are not; reprs.py gives its exception to the program. */
/* (Not crecorder.h: the runtime's internal header needs Py_BUILD_CORE before Python.h.) */
#define PY_SSIZE_T_CLEAN
#define Py_BUILD_CORE 1
#include <Python.h>
#include "internal/pycore_runtime.h"   /* _PyRuntime.main_thread, .signals, .ceval */
#undef Py_BUILD_CORE
#include <signal.h>   /* SIGINT */

#pragma GCC visibility push(hidden)
int signals_hold(void);
void signals_release(int held);
int signals_main_thread(void);
void program_gets(PyObject *exc);
PyObject *program_code(PyObject *func, PyObject *arg);

static unsigned long holder;   /* the main thread's ident while held (0: not held) */
static PyObject *due;          /* the exception for the program's next check (the first one given) */

/* Is a handler's signal flagged (waiting for its handler to run)? */
static inline int
signals_tripped(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return _Py_atomic_load_int_relaxed(&_PyRuntime.signals.is_tripped);
#else
    return _Py_atomic_load_relaxed(&_PyRuntime.signals.is_tripped);
#endif
}

/* Are calls for the main thread pending (ours or anyone's)? A check during the hold may have
 * consumed their eval-breaker request without running them (3.13 clears the bit; 3.12 recomputes
 * it without them). */
static inline int
main_calls_pending(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return _Py_atomic_load_int32_relaxed(&_PyRuntime.ceval.pending_mainthread.npending) > 0;
#else
    return _Py_atomic_load_relaxed(&_PyRuntime.ceval.pending_mainthread.calls_to_do) != 0;
#endif
}

static int to_program(void *arg);

/* Ask for to_program at the main thread's next check. 0, or -1 (CPython's queue of 32 is full). */
static int
ask(void)
{
    return Py_AddPendingCall(to_program, NULL);
}

/* The pending call (see the top): inside a monitoring callback (tracing > 0: a hook's or another
 * tool's Python code) it asks again (CPython runs a few in a row, then leaves them for the next
 * check), so what it brings lands in the program. */
static int
to_program(void *Py_UNUSED(arg))
{
    if (PyThreadState_Get()->tracing > 0 && ask() == 0) return 0;
    if (due) {
        PyObject *exc = due;
        due = NULL;
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);   /* (chains what is handled there, as a raise does) */
        Py_DECREF(exc);
        if (signals_tripped()) ask();   /* (a handler that waits too: at the check after) */
        return -1;
    }
    return PyErr_CheckSignals();
}

/* `exc` (stolen; its traceback set) is the program's: raised at the main thread's next check
 * outside a callback. A second one before that check is dropped, as two signals' exceptions
 * before a check are one. If CPython's queue is full, a KeyboardInterrupt is flagged as Ctrl-C. */
void
program_gets(PyObject *exc)
{
    PyException_SetContext(exc, NULL);   /* (the hook's: an exception it was handling) */
    if (due) { Py_DECREF(exc); return; }
    due = exc;
    if (holder || ask() == 0) return;   /* (held: signals_release asks) */
    due = NULL;
    if (PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt)) PyErr_SetInterruptEx(SIGINT);
    Py_DECREF(exc);
}

/* Hold the program's handlers (see the top): 1 if held now; 0 on another thread, or held already. */
int
signals_hold(void)
{
    unsigned long me = PyThread_get_thread_ident();
    if (_PyRuntime.main_thread != me) return 0;
    holder = me;
    _PyRuntime.main_thread = 0;
    return 1;
}

/* The end of a hold (held: signals_hold's answer): what waits goes to the program's next check.
 * (Queue full: the handlers wait for the next signal or pending call.) */
void
signals_release(int held)
{
    if (!held) return;
    _PyRuntime.main_thread = holder;
    holder = 0;
    if (due || signals_tripped() || main_calls_pending()) ask();
}

/* func(arg): the program's own code called from ours while held (a user __repr__ in --repr
 * full): its handlers not held while it runs, as when it runs untraced -- a Ctrl-C or a timeout's
 * alarm interrupts it (reprs.py gives their exception to the program), and its code can use what
 * only the main thread may (signal.signal) -- held again after. */
PyObject *
program_code(PyObject *func, PyObject *arg)
{
    unsigned long me = holder;
    if (!me || PyThread_get_thread_ident() != me) return PyObject_CallOneArg(func, arg);
    _PyRuntime.main_thread = me;
    holder = 0;
    PyObject *r = PyObject_CallOneArg(func, arg);
    holder = me;
    _PyRuntime.main_thread = 0;
    return r;
}

/* Is this the main thread (also while its signals are held: _PyOS_IsMainThread is not then)? */
int
signals_main_thread(void)
{
    unsigned long me = PyThread_get_thread_ident();
    return _PyRuntime.main_thread == me || (holder && holder == me);
}
