// stackless::tasklet and the scheduler's free functions: Stackless Python's tasklet API in C++.
//
// A tasklet is a stackful fiber (Boost.Context fcontext) scheduled cooperatively on its thread's
// run queue. Every thread that uses the library gets its own scheduler and main tasklet (the
// thread's own stack), created on first use. The behaviour is Stackless's (see docs/semantics.md):
// FIFO start order, run() that returns when nothing is runnable, kill/throw placement, exception
// routing to main or the innermost run() caller, and Stackless's deadlock rules and messages.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "stackless/runtime/detail/binding.hpp"
#include "stackless/runtime/errors.hpp"

namespace stackless {

namespace detail {
struct tasklet_impl;
struct tasklet_access;
void retain(tasklet_impl*) noexcept;
void release(tasklet_impl*) noexcept;
tasklet_impl* new_tasklet();
void bind_callable(tasklet_impl*, std::unique_ptr<bound_callable>);
void bind_args(tasklet_impl*, arg_pack_base*);  // binds args; the tasklet becomes paused
void setup_tasklet(tasklet_impl*, arg_pack_base*);
}  // namespace detail

// pending: t.kill(stackless::pending) is the named form of t.kill(true) (Stackless's
// kill(pending=True)).
struct pending_t {
  explicit pending_t() = default;
};
inline constexpr pending_t pending{};

// tasklet: a cheap, copyable handle to a tasklet (reference counted). Handles compare equal when
// they name the same tasklet; a default-constructed handle names none. A tasklet that is still
// alive when its last handle goes away (and it is neither scheduled nor blocked) is killed, so
// its destructors run; the scheduler keeps scheduled and blocked tasklets alive by itself.
class tasklet {
 public:
  tasklet() noexcept = default;
  // tasklet(f): binds callable f without scheduling it (Stackless `tasklet(func)`). f must be
  // callable (a function, a pointer to one, an object with operator()): checked at compile time.
  template <class F>
  requires(!std::is_same_v<std::decay_t<F>, tasklet> &&
           detail::tasklet_callable<F>) explicit tasklet(F&& f)
      : tasklet(adopt, detail::new_tasklet()) {
    bind(std::forward<F>(f));
  }
  template <class F>
  requires(!std::is_same_v<std::decay_t<F>, tasklet> &&
           !detail::tasklet_callable<F>) explicit tasklet(F&&) {
    static_assert(detail::dependent_false<F>,
                  "stackless::tasklet(f): f is not callable (a function, a pointer to one, or an "
                  "object with operator())");
  }
  // tasklet(f, args...): binds f and its arguments; the tasklet is alive and paused, not
  // scheduled (Stackless `tasklet(func, args)`); insert() or run() starts it. The argument count
  // and types are checked against f at compile time.
  template <class F, class A0, class... A>
  requires detail::args_fit<F, A0, A...> tasklet(F&& f, A0&& a0, A&&... a)
      : tasklet(adopt, detail::new_tasklet()) {
    bind(std::forward<F>(f));
    detail::arg_pack<std::decay_t<A0>, std::decay_t<A>...> pack(std::forward<A0>(a0),
                                                                std::forward<A>(a)...);
    detail::bind_args(impl_, &pack);
  }
  template <class F, class A0, class... A>
  requires(!detail::args_fit<F, A0, A...>) tasklet(F&&, A0&&, A&&...) {
    static_assert(detail::dependent_false<F>,
                  "stackless::tasklet(f, args...): f can't be called with these arguments. "
                  "(`stackless::tasklet(f)(args...);` as a statement declares a variable named f "
                  "built from args: write `stackless::tasklet{f}(args...);`)");
  }

  tasklet(const tasklet& o) noexcept : impl_(o.impl_) {
    if (impl_) detail::retain(impl_);
  }
  tasklet(tasklet&& o) noexcept : impl_(std::exchange(o.impl_, nullptr)) {}
  tasklet& operator=(tasklet o) noexcept {
    std::swap(impl_, o.impl_);
    return *this;
  }
  ~tasklet() {
    if (impl_) detail::release(impl_);
  }

  // setup(args...) / operator()(args...): binds the arguments and appends the tasklet to the end
  // of the run queue (Stackless `t.setup(...)`, `t(...)`). Returns *this. Throws tasklet_error
  // when the tasklet is alive or unbound, or when an argument does not fit the callable.
  template <class... A>
  tasklet& setup(A&&... a) {
    if constexpr (sizeof...(A) == 0) {
      detail::setup_tasklet(checked(), nullptr);
    } else {
      detail::arg_pack<std::decay_t<A>...> pack(std::forward<A>(a)...);
      detail::setup_tasklet(checked(), &pack);
    }
    return *this;
  }
  template <class... A>
  tasklet& operator()(A&&... a) {
    return setup(std::forward<A>(a)...);
  }

  // bind(f): (re)binds the callable. Allowed on a tasklet that is not current, not scheduled and
  // has not started running. bind(nullptr) unbinds.
  template <class F>
  requires(std::is_null_pointer_v<std::decay_t<F>> ||
           detail::tasklet_callable<F>) tasklet& bind(F&& f) {
    if constexpr (std::is_same_v<std::decay_t<F>, std::nullptr_t>) {
      detail::bind_callable(checked(), nullptr);
    } else {
      detail::bind_callable(checked(), detail::make_bound(std::forward<F>(f)));
    }
    return *this;
  }

  tasklet& insert();  // append to the run queue if not scheduled
  tasklet& remove();  // take out of the run queue (paused)
  void run();         // run it now; the caller stays runnable (Stackless `t.run()`)
  void switch_to();   // run it now; the caller is paused (Stackless `t.switch()`)
  // kill(): raises tasklet_exit in the tasklet (pending: the caller goes on; otherwise the
  // caller goes to the end of the run queue and the target runs now, so tasklets queued between
  // them run first). The main tasklet can't be killed (tasklet_error): end main by returning.
  void kill(bool pending = false);
  // kill(stackless::pending): the named form of kill(true).
  void kill(pending_t) { kill(true); }
  // join(): waits until the tasklet has ended (returns at once when it is not alive). Other
  // tasklets run meanwhile; nothing runnable anywhere is a deadlock_error. Only on the tasklet's
  // own thread; not for main (tasklet_error), nor the caller itself.
  void join();
  void throw_exception(std::exception_ptr e, bool pending = false);
  void throw_exception(std::exception_ptr e, pending_t) { throw_exception(std::move(e), true); }
  template <class E, class... A>
  void raise_exception(A&&... a) {
    throw_exception(std::make_exception_ptr(E(std::forward<A>(a)...)), false);
  }

  bool alive() const noexcept;
  bool paused() const noexcept;
  bool blocked() const noexcept;
  bool scheduled() const noexcept;
  bool is_main() const noexcept;
  bool is_current() const noexcept;  // the current tasklet of the calling thread
  bool atomic() const noexcept;
  bool set_atomic(bool flag);  // returns the old value
  bool block_trap() const noexcept;
  void set_block_trap(bool flag) noexcept;
  bool restorable() const noexcept { return false; }  // every tasklet has C state
  tasklet next() const noexcept;  // neighbour in the run queue or channel queue, or null
  tasklet prev() const noexcept;
  std::uint64_t id() const noexcept;
  std::string name() const;
  tasklet& set_name(std::string name);
  // Stack size for this tasklet, in bytes; takes effect when the tasklet is next set up. For a
  // tasklet of another thread: the size set with set_stack_size(), or 0 (its thread's default).
  std::size_t stack_size() const noexcept;
  tasklet& set_stack_size(std::size_t bytes);

  explicit operator bool() const noexcept { return impl_ != nullptr; }
  friend bool operator==(const tasklet& a, const tasklet& b) noexcept { return a.impl_ == b.impl_; }

 private:
  // The control block is the library's business: the layers reach it through
  // detail::tasklet_access (below), user code cannot (tests/compile_fail/internals_private.cpp).
  friend struct detail::tasklet_access;
  struct adopt_t {};
  static constexpr adopt_t adopt{};
  tasklet(adopt_t, detail::tasklet_impl* p) noexcept : impl_(p) {}
  static tasklet from_impl(detail::tasklet_impl* p) noexcept {
    if (p) detail::retain(p);
    return tasklet(adopt, p);
  }
  detail::tasklet_impl* checked() const;
  detail::tasklet_impl* impl_ = nullptr;
};

namespace detail {
// tasklet_access: a handle from a control block (adopt: takes over one reference; share: adds
// one) and back. For the library's layers only.
struct tasklet_access {
  static tasklet adopt(tasklet_impl* p) noexcept { return tasklet(tasklet::adopt, p); }
  static tasklet share(tasklet_impl* p) noexcept { return tasklet::from_impl(p); }
  static tasklet_impl* impl(const tasklet& t) noexcept { return t.impl_; }
};
}  // namespace detail

// Prints "<tasklet 7 'name'>" (or "<tasklet null>"), for diagnostics and test failures.
std::ostream& operator<<(std::ostream& os, const tasklet& t);

// ---- scheduler: free functions (Stackless module functions) --------------------------------

// run(): takes the caller out of the run queue and runs the other tasklets until none is
// runnable (finished or blocked). Returns at once when nothing else is runnable. Re-throws an
// exception that escaped a tasklet. May be nested; the innermost run() returns first.
void run();

// run_budget: the analogue of Stackless `run(timeout)`. C++ has no involuntary switch points, so
// the budget is checked at *check points*: schedule(), tick(), the start of every channel
// operation and of every I/O call (file and socket operations, sleep). Any limit (or several)
// may be set:
//   checks   - number of check points a tasklet reaches in its slice (since it was last switched
//              in; with total = true, during the whole run() call) — the caller's own don't
//              count: the check point that reaches `checks` interrupts. Deterministic: this is
//              the budget that ports Stackless's run(n) (and run(n, totaltimeout=True)).
//              Switches are not check points, the first switch into a tasklet included;
//   time     - wall time; by default a tasklet's slice (time since it was last switched in), with
//              total = true the whole run() call;
//   switches - number of tasklet switches during the whole run() call.
// When the budget is spent at a check point in tasklet X (X not atomic, no switch trap):
//   hard (soft = false): X is removed from the run queue (paused) and run() returns X;
//   soft: run() returns a null tasklet at that point and X stays in the run queue.
// Atomic sections defer the interrupt until they end. Only the outermost budgeted run() installs
// a budget; nested budgeted runs behave as plain run().
struct run_budget {
  std::chrono::nanoseconds time{0};
  std::uint64_t switches = 0;
  std::uint64_t checks = 0;
  bool total = false;
  bool soft = false;
};
[[nodiscard("dropping the interrupted tasklet kills it")]] tasklet run(const run_budget& budget);

// tick(): a check point for run(budget) in long computations that never switch. Cheap when no
// budget is active.
void tick();

// schedule(): yield. The caller goes to the end of the run queue and the next tasklet runs.
// Returns at once when nothing else is runnable.
void schedule();
// schedule_remove(): yield and leave the run queue (the caller becomes paused); someone must
// insert() it again. A building block for custom blocking primitives.
void schedule_remove();

// kill_all(): unwinds every tasklet of this thread except main, as the end of a thread does
// (docs/semantics.md, "The end of a thread"): all leave the run queue and their channels first,
// then each is unwound, so none runs its normal code again (only doomed tasklets run meanwhile,
// and those an unwinding starts, e.g. the I/O poll tasklet completing a file's last flush); an
// operation that blocks while unwinding and that nothing completes raises tasklet_error. Call it at
// the end of main while the objects the tasklets use are still alive (Stackless's shutdown). Only
// from main, outside run(). Re-throws the first exception that escaped an unwinding.
void kill_all();

tasklet getcurrent();
tasklet getmain();
int getruncount() noexcept;
// switch_trap(delta): adds delta to the switch-trap level and returns the previous level. While it
// is positive any operation that would switch tasklets throws switch_trap_error.
int switch_trap(int delta);

// atomic_section: RAII `with stackless.atomic():` — the current tasklet is atomic for its scope.
class atomic_section {
 public:
  atomic_section();
  ~atomic_section();
  atomic_section(const atomic_section&) = delete;
  atomic_section& operator=(const atomic_section&) = delete;

 private:
  bool old_;
};

// set_schedule_callback(cb): cb(prev, next) is called on every switch; returns the previous one.
// An exception thrown by the callback is reported on stderr and dropped (as in Stackless).
using schedule_callback = std::function<void(const tasklet& prev, const tasklet& next)>;
schedule_callback set_schedule_callback(schedule_callback cb);
schedule_callback get_schedule_callback();

// set_error_handler(h): h(e) is called in the dying tasklet when an exception (other than
// tasklet_exit) escapes it. If h returns, the error counts as handled; if h throws, the new
// exception is routed to main (or the innermost run() caller) instead. Returns the previous one.
using error_handler = std::function<void(std::exception_ptr)>;
error_handler set_error_handler(error_handler h);

// Default stack size for new tasklets on this thread (bytes, rounded up to whole pages).
std::size_t default_stack_size() noexcept;
void set_default_stack_size(std::size_t bytes);

// Statistics of this thread's stack pool (for tests and benchmarks).
struct stack_stats {
  std::size_t in_use = 0;      // stacks owned by live tasklets
  std::size_t pooled = 0;      // stacks ready for reuse
  std::size_t mapped = 0;      // stacks ever mapped (in_use + pooled)
  std::size_t guarded = 0;     // stacks that have a guard page
  bool guard_install = false;  // guards use MADV_GUARD_INSTALL (no extra mappings)
};
stack_stats get_stack_stats() noexcept;

// Number of tasklets alive (started, not finished) on this thread, main excluded.
std::size_t alive_tasklets() noexcept;

// tasklets_report(): for diagnostics, one line per tasklet of this thread other than the
// caller: "tasklet <id> '<name>': <state>", where a blocked one says what it waits on
// ("blocked receiving on channel 0x..."), plus " (never started)". Empty when there is none.
// STACKLESS_REPORT_LEFTOVERS and the virtual-time test helper print it.
std::string tasklets_report();

}  // namespace stackless
