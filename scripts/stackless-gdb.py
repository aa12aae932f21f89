# gdb commands for programs using stackless (live processes and core files).
#
#   (gdb) source /usr/share/stackless/gdb/stackless-gdb.py     # or: gdb -x stackless-gdb.py
#   (gdb) stackless-list          # every tasklet of the selected thread's scheduler
#   (gdb) stackless-bt <id>       # backtrace of a suspended tasklet
#
# stackless-list reads the scheduler of the selected thread (the thread_local
# stackless::detail::tls_sched, runtime/src/scheduler.cpp): the main tasklet (main_t) and the list
# of alive tasklets (`all`, a boost::intrusive::list through tasklet_impl::all_hook; older builds:
# all_head / all_next), and prints id, name, state and what a blocked tasklet waits on.
#
# stackless-bt finds the tasklet's saved context. A suspended tasklet's `fctx` points at the
# register block that Boost.Context's jump_fcontext (and the runtime's own
# stackless_switch_fcontext, same layout) pushed on the tasklet's stack, x86-64 System V:
#     fctx+0x00  MXCSR (4 bytes), x87 control word (2 bytes)
#     fctx+0x08  r12   +0x10 r13   +0x18 r14   +0x20 r15   +0x28 rbx   +0x30 rbp
#     fctx+0x38  return address (rip of the suspended switch call)
# and rsp after the switch returns is fctx+0x40. Instead of writing registers (impossible on a
# core file), the command installs a Python unwinder that claims the selected thread's innermost
# frame and says its caller has exactly those registers; gdb then unwinds the tasklet's stack
# with its normal DWARF unwinders. Frame #0 printed by `bt` would be the thread's real innermost
# frame, so the command prints the frames from #1 on, renumbered from 0. This is what folly's
# fiber gdb script does for the same reason.
import gdb

try:
    from gdb.unwinder import Unwinder, register_unwinder
except ImportError:  # gdb without Python unwinder support (< 7.10)
    Unwinder = object
    register_unwinder = None

TLS_SCHED = "'stackless::detail::tls_sched'"
TLS_SCHED_OLD = "'stackless::detail::(anonymous namespace)::tls_sched'"

# Saved-context layout (see above); offsets in bytes from fctx.
SAVED_REGS = (("r12", 0x08), ("r13", 0x10), ("r14", 0x18), ("r15", 0x20),
              ("rbx", 0x28), ("rbp", 0x30), ("rip", 0x38))
SAVED_RSP = 0x40


def _scheduler():
    try:
        try:
            s = gdb.parse_and_eval(TLS_SCHED)
        except gdb.error:  # libraries before the scheduler split kept it in an anonymous namespace
            s = gdb.parse_and_eval(TLS_SCHED_OLD)
    except gdb.error as e:
        raise gdb.GdbError("stackless: cannot read the thread-local scheduler (%s); is the "
                           "program built with debug info, and is libthread_db available?" % e)
    if int(s) == 0:
        raise gdb.GdbError("stackless: this thread has no scheduler (it never used a tasklet)")
    return s.dereference()


def _enum_name(v):
    # "stackless::detail::link_kind::ring" -> "ring"
    return str(v).split("::")[-1]


def _lifecycle(t):
    """t's lifecycle state: unbound, fresh (bound, never run), started or finished."""
    try:
        return _enum_name(t["state"])
    except gdb.error:  # libraries before the lifecycle enum kept alive/started/finished flags
        if bool(t["finished"]):
            return "finished"
        if not bool(t["alive"]):
            return "unbound"
        return "started" if bool(t["started"]) else "fresh"


def _std_string(v):
    try:
        n = int(v["_M_string_length"])
        return v["_M_dataplus"]["_M_p"].string(length=n) if n else ""
    except gdb.error:
        return v.format_string()  # another standard library: trust its pretty printer


def _list_node(v):
    """The boost::intrusive list node (the struct with next_ and prev_) inside value v: a list's
    header or a member hook. Searched by field names, not by Boost's internal member paths."""
    names = [f.name for f in v.type.strip_typedefs().fields()]
    if "next_" in names and "prev_" in names:
        return v
    for f in v.type.strip_typedefs().fields():
        if f.name is None or f.artificial or f.type.strip_typedefs().code not in (
                gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
            continue
        n = _list_node(v[f] if f.is_base_class else v[f.name])
        if n is not None:
            return n
    return None


def _tasklets(s):
    """(impl pointer, is_main) for main and every alive tasklet, main first."""
    main_t = s["main_t"]
    out = [(main_t, True)]
    impl_ptr = main_t.type.strip_typedefs()
    seen = set()
    try:
        header = _list_node(s["all"])
    except gdb.error:  # libraries before `all` kept a list of raw pointers
        t = s["all_head"]
        while int(t) != 0 and int(t) not in seen and len(seen) < 1000000:
            seen.add(int(t))
            out.append((t, False))
            t = t["all_next"]
        return out
    # A tasklet's node sits at a fixed offset in tasklet_impl (the member hook's node): measured
    # on a value at address 0, which gdb never reads.
    zero = gdb.Value(0).cast(impl_ptr).dereference()
    offset = int(_list_node(zero["all_hook"]).address.cast(gdb.lookup_type("unsigned long")))
    end = int(header.address.cast(gdb.lookup_type("unsigned long")))
    n = header["next_"]
    while int(n) != 0 and int(n) != end and int(n) not in seen and len(seen) < 1000000:
        seen.add(int(n))
        out.append((gdb.Value(int(n) - offset).cast(impl_ptr), False))
        n = n["next_"]
    return out


def _watchdogs(s):
    v = s["watchdogs"]
    try:
        b, e = v["_M_impl"]["_M_start"], v["_M_impl"]["_M_finish"]
        return {int((b + i).dereference()) for i in range(int(e - b))}
    except gdb.error:
        return set()


def _describe(s, t, watchdogs):
    """(state, blocked-on text) of tasklet t."""
    link = _enum_name(t["link"])
    if int(t) == int(s["current"]):
        return "current", ""
    if link == "wait":
        reason = _enum_name(t["reason"])
        what = {"channel_send": "sending on", "channel_receive": "receiving on",
                "join": "joining"}.get(reason, reason)
        owner = t["owner"]
        try:
            kind = str(owner.dynamic_type.target()).split("::")[-1]
        except gdb.error:
            kind = "wait_owner"
        return "blocked", "%s %s 0x%x" % (what, kind, int(owner))
    life = _lifecycle(t)
    if link == "ring":
        return ("runnable" if life == "started" else "runnable (not started)"), ""
    if life not in ("fresh", "started"):
        return "dead", ""
    if int(t) in watchdogs:
        return "paused (in run())", ""
    return ("paused" if life == "started" else "paused (not started)"), ""


def _name(t):
    n = _std_string(t["name"])
    return n if n else "tasklet %d" % int(t["id"])


class StacklessList(gdb.Command):
    """List the tasklets of the selected thread's stackless scheduler.

Usage: stackless-list
Prints id, name, state (current, runnable, blocked, paused, ...) and, for a blocked tasklet,
the channel (wait owner) it is blocked on. `stackless-bt ID` shows a tasklet's backtrace."""

    def __init__(self):
        super().__init__("stackless-list", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        s = _scheduler()
        wd = _watchdogs(s)
        rows = []
        for t, is_main in _tasklets(s):
            state, on = _describe(s, t, wd)
            rows.append((int(t["id"]), _name(t), state + (" [main]" if is_main else ""), on))
        print("%-6s %-20s %-28s %s" % ("ID", "NAME", "STATE", "BLOCKED ON"))
        for r in rows:
            print("%-6d %-20s %-28s %s" % r)
        print("%d tasklet(s) alive besides main; runcount %d" %
              (len(rows) - 1, int(s["runcount"])))


class _TaskletUnwinder(Unwinder):
    """Claims the innermost frame of the selected thread while active; its caller gets the
    registers saved in a tasklet's context, so gdb unwinds the tasklet's stack."""

    def __init__(self):
        super().__init__("stackless-tasklet")
        self.fctx = None
        self.sp0 = None

    def __call__(self, pending_frame):
        if self.fctx is None:
            return None
        sp = pending_frame.read_register("rsp")
        if int(sp) != self.sp0:  # only the innermost frame of the thread
            return None
        pc = pending_frame.read_register("rip")
        ulong = gdb.lookup_type("unsigned long")
        ptr = ulong.pointer()
        # The frame's id uses fctx, not the real sp: gdb stops a backtrace when a frame is
        # "inner" to (below) its callee's id, and the tasklet's stack may lie anywhere relative
        # to the thread's. fctx is just below the tasklet's innermost frame, so the order holds.
        info = pending_frame.create_unwind_info(_FrameId(gdb.Value(self.fctx).cast(
            gdb.lookup_type("unsigned long")), pc))
        for reg, off in SAVED_REGS:
            info.add_saved_register(reg, gdb.Value(self.fctx + off).cast(ptr).dereference())
        info.add_saved_register("rsp", gdb.Value(self.fctx + SAVED_RSP).cast(ulong))
        return info


class _FrameId(object):
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


_unwinder = None


def _find(s, tid):
    for t, is_main in _tasklets(s):
        if int(t["id"]) == tid:
            return t, is_main
    return None, False


class StacklessBt(gdb.Command):
    """Backtrace of a suspended tasklet.

Usage: stackless-bt ID [N]
ID is the tasklet id shown by stackless-list; N limits the number of frames (default 64)."""

    def __init__(self):
        super().__init__("stackless-bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        global _unwinder
        args = gdb.string_to_argv(arg)
        if not args:
            raise gdb.GdbError("usage: stackless-bt ID [N]")
        tid = int(args[0], 0)
        limit = int(args[1]) if len(args) > 1 else 64
        s = _scheduler()
        t, is_main = _find(s, tid)
        if t is None:
            raise gdb.GdbError("stackless: no alive tasklet with id %d" % tid)
        print("tasklet %d '%s'%s:" % (tid, _name(t), " [main]" if is_main else ""))
        if int(t) == int(s["current"]):
            print("  (the current tasklet: its frames are the thread's; use `bt`)")
            gdb.execute("bt %d" % limit)
            return
        if _lifecycle(t) != "started":
            print("  (has not started running: no frames yet)")
            return
        fctx = int(t["fctx"])
        if fctx == 0:
            raise gdb.GdbError("stackless: tasklet %d has no saved context" % tid)
        if register_unwinder is None:
            raise gdb.GdbError("stackless: this gdb has no Python unwinder support")
        arch = gdb.selected_frame().architecture().name()
        if "x86-64" not in arch:
            raise gdb.GdbError("stackless: stackless-bt knows only the x86-64 context layout "
                               "(this is %s)" % arch)
        if _unwinder is None:
            _unwinder = _TaskletUnwinder()
            register_unwinder(None, _unwinder, replace=True)
        _unwinder.sp0 = int(gdb.newest_frame().read_register("rsp"))
        _unwinder.fctx = fctx
        gdb.invalidate_cached_frames()
        try:
            f = gdb.newest_frame().older()  # frame #0 is the thread's own
            n = 0
            while f is not None and n < limit:
                print("  " + _frame_line(n, f))
                n += 1
                if "make_fcontext" in (f.name() or ""):
                    break  # the context trampoline: the bottom of every tasklet's stack
                older = f.older()
                if older is None and f.unwind_stop_reason() != gdb.FRAME_UNWIND_OUTERMOST:
                    print("  (backtrace stopped: %s)" %
                          gdb.frame_stop_reason_string(f.unwind_stop_reason()))
                f = older
        finally:
            _unwinder.fctx = None
            gdb.invalidate_cached_frames()


def _frame_line(n, f):
    pc = f.pc()
    name = f.name() or "??"
    sal = f.find_sal()
    where = ""
    if sal.symtab is not None:
        where = " at %s:%d" % (sal.symtab.filename, sal.line)
    else:
        so = gdb.solib_name(pc)
        if so:
            where = " from %s" % so
    return "#%-2d 0x%016x in %s%s" % (n, pc, name, where)


StacklessList()
StacklessBt()
