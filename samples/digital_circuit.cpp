// digital_circuit: a port of Grant Olson's digitalCircuit.py ("Introduction to Concurrent
// Programming with Stackless Python", 2006; grant-olson/why_stackless code/): a half adder built
// from event handlers, each a component with a channel and a tasklet listening on it.
//
// Ported as a C++ programmer would write it: main owns the components through unique_ptr, and
// main returns right after the last input, as the Python script ends, while notifications are
// still travelling through the circuit. The tasklets left over then are unwound by the end-of-
// thread rule (docs/semantics.md, "The end of a thread") after main's locals are gone: none of
// them may run its normal code again, which would use a destroyed component. The program checks
// that nothing was printed after main returned (a static destructor, which runs after the
// thread's teardown) and exits non-zero otherwise.
//
// Usage: digital_circuit [--quiet]
#include <stackless/stackless.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

bool quiet = false;
bool main_returned = false;
int printed_after_main = 0;

void say(const std::string& line) {
  if (main_returned) ++printed_after_main;
  if (!quiet || main_returned) std::printf("%s\n", line.c_str());
}

// Runs after the main thread's scheduler was torn down (static destruction comes later).
struct after_main_check {
  ~after_main_check() {
    if (printed_after_main) {
      std::fprintf(stderr, "digital_circuit: %d line(s) printed after main returned\n",
                   printed_after_main);
      std::fflush(stdout);
      std::_Exit(1);
    }
  }
} g_check;

class event_handler;
struct message {
  event_handler* sender;
  int value;
};

class event_handler {
 public:
  explicit event_handler(std::vector<event_handler*> outputs = {}) : outputs_(std::move(outputs)) {
    stackless::tasklet([this] { listen(); })();
  }
  virtual ~event_handler() = default;
  event_handler(const event_handler&) = delete;
  event_handler& operator=(const event_handler&) = delete;

  void register_output(event_handler* output) { outputs_.push_back(output); }
  void operator()(message m) { channel_.send(m); }
  int state = 0;

 protected:
  virtual void process_message(message m) = 0;
  virtual void notify(event_handler* output) { (*output)(message{this, state}); }

 private:
  void listen() {
    for (;;) {
      message m = channel_.receive();
      process_message(m);
      for (event_handler* output : outputs_) notify(output);
    }
  }
  std::vector<event_handler*> outputs_;
  stackless::channel<message> channel_;
};

class input_switch : public event_handler {
 public:
  explicit input_switch(int initial = 0) { state = initial; }
  void set(int v) { (*this)(message{nullptr, v}); }

 protected:
  void process_message(message m) override { state = m.value; }
};

class reporter : public event_handler {
 public:
  explicit reporter(std::string what) : what_(std::move(what)) {}

 protected:
  void process_message(message m) override { say(what_ + " = " + std::to_string(m.value)); }
  void notify(event_handler*) override {}

 private:
  std::string what_;
};

class inverter : public event_handler {
 public:
  explicit inverter(event_handler& input) { input.register_output(this); }

 protected:
  void process_message(message m) override { state = m.value ? 0 : 1; }
};

class gate : public event_handler {
 public:
  gate(event_handler& a, event_handler& b, std::vector<event_handler*> outputs, bool is_and)
      : event_handler(std::move(outputs)),
        a_(&a),
        b_(&b),
        a_state_(a.state),
        b_state_(b.state),
        and_(is_and) {
    a.register_output(this);
    b.register_output(this);
  }

 protected:
  void process_message(message m) override {
    if (m.sender == a_)
      a_state_ = m.value;
    else if (m.sender == b_)
      b_state_ = m.value;
    else
      throw std::runtime_error("gate: didn't expect a message from that sender");
    state = and_ ? (a_state_ && b_state_) : (a_state_ || b_state_);
  }

 private:
  event_handler* a_;
  event_handler* b_;
  int a_state_, b_state_;
  bool and_;
};

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quiet") == 0) {
      quiet = true;
    } else {
      std::fprintf(stderr, "usage: digital_circuit [--quiet]\n");
      return 2;
    }
  }
  // The half adder of the original.
  auto input_a = std::make_unique<input_switch>();
  auto input_b = std::make_unique<input_switch>();
  auto result = std::make_unique<reporter>("Result");
  auto carry = std::make_unique<reporter>("Carry");
  auto and_a =
      std::make_unique<gate>(*input_a, *input_b, std::vector<event_handler*>{carry.get()}, true);
  auto or_gate = std::make_unique<gate>(*input_a, *input_b, std::vector<event_handler*>{}, false);
  auto inv = std::make_unique<inverter>(*and_a);
  auto and_b =
      std::make_unique<gate>(*or_gate, *inv, std::vector<event_handler*>{result.get()}, true);
  input_a->set(1);
  input_b->set(1);
  input_b->set(0);
  input_a->set(0);
  say("main returns");
  main_returned = true;
  return 0;  // the components die here; the listeners left over are unwound after
}
