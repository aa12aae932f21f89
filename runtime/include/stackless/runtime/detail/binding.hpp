// Two-phase binding, as Stackless does it: `tasklet(f)` binds a callable, and later
// `t(args...)` supplies the arguments. In C++ the callable's type and the arguments' types meet
// only at run time, so the callable's parameter types are deduced at bind time (plain functions,
// function pointers and lambdas with concrete parameters) and each argument is converted to its
// parameter's type when it is supplied: an exact match, any arithmetic conversion, or a string
// literal to std::string. A mismatch is a tasklet_error naming the argument, not a crash.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "stackless/runtime/detail/unique_function.hpp"

namespace stackless::detail {

[[noreturn]] void throw_binding_error(const std::string& what);

// ---- parameter-type deduction -------------------------------------------------------------
template <class... P>
struct param_list {
  static constexpr std::size_t size = sizeof...(P);
};

template <class T, class = void>
struct callable_params {
  static constexpr bool known = false;
};
template <class R, class... P>
struct callable_params<R (*)(P...)> {
  static constexpr bool known = true;
  using type = param_list<std::decay_t<P>...>;
  using raw = param_list<P...>;
};
template <class R, class... P>
struct callable_params<R (*)(P...) noexcept> : callable_params<R (*)(P...)> {};
template <class M>
struct member_params;
#define STACKLESS_MEMBER_PARAMS(QUAL)            \
  template <class R, class C, class... P>        \
  struct member_params<R (C::*)(P...) QUAL> {    \
    using type = param_list<std::decay_t<P>...>; \
    using raw = param_list<P...>;                \
  };
STACKLESS_MEMBER_PARAMS()
STACKLESS_MEMBER_PARAMS(const)
STACKLESS_MEMBER_PARAMS(noexcept)
STACKLESS_MEMBER_PARAMS(const noexcept)
STACKLESS_MEMBER_PARAMS(&)
STACKLESS_MEMBER_PARAMS(const&)
#undef STACKLESS_MEMBER_PARAMS
template <class T>
struct callable_params<T, std::void_t<decltype(&T::operator())>> {
  static constexpr bool known = true;
  using type = typename member_params<decltype(&T::operator())>::type;
  using raw = typename member_params<decltype(&T::operator())>::raw;
};

// ---- compile-time checks (tasklet's constructors, bind) -----------------------------------
template <class>
inline constexpr bool dependent_false = false;

// has_call_operator<T>: T has a member operator(), template or not (a generic lambda's is a
// template, so &T::operator() alone can't tell). Found by ambiguity: with one of its own,
// probe_call<T>::operator() names two members.
struct call_probe {
  void operator()();
};
template <class T>
struct probe_call : T, call_probe {};
template <class T>
concept has_call_operator = std::is_final_v<T> || callable_params<T>::known || !requires {
  &probe_call<T>::operator();
};

// tasklet_callable<F>: what tasklet(f) and bind(f) accept: a function (or a pointer to one) or
// an object with operator().
template <class F, class D = std::decay_t<F>>
concept tasklet_callable = (std::is_pointer_v<D> && std::is_function_v<std::remove_pointer_t<D>>) ||
                           (std::is_class_v<D> && has_call_operator<D>);

template <class... P>
constexpr bool has_nonconst_lvalue_ref(param_list<P...>*) {
  return ((std::is_lvalue_reference_v<P> && !std::is_const_v<std::remove_reference_t<P>>) || ...);
}
template <class D>
constexpr bool takes_nonconst_ref() {
  if constexpr (callable_params<D>::known)
    return has_nonconst_lvalue_ref(static_cast<typename callable_params<D>::raw*>(nullptr));
  else
    return false;
}

// args_fit<F, A...>: f can be bound with arguments of types A (as tasklet(f, args...) stores
// them: decayed): as many as it has parameters, each constructible from its argument; for a
// callable whose parameters can't be deduced (a generic lambda), invocable with them.
template <class... P, class... A>
constexpr bool params_fit(param_list<P...>*, param_list<A...>*) {
  if constexpr (sizeof...(P) != sizeof...(A))
    return false;
  else
    return (std::is_constructible_v<P, A&&> && ...);
}
template <class F, class... A>
constexpr bool args_fit_v() {
  using D = std::decay_t<F>;
  if constexpr (!tasklet_callable<F>)
    return false;
  else if constexpr (callable_params<D>::known)
    return params_fit(static_cast<typename callable_params<D>::type*>(nullptr),
                      static_cast<param_list<std::decay_t<A>...>*>(nullptr));
  else
    return std::is_invocable_v<D&, std::decay_t<A>...>;
}
template <class F, class... A>
concept args_fit = args_fit_v<F, A...>();

// ---- argument packs -----------------------------------------------------------------------
// arg_pack_base hands out its arguments one at a time, converted to the type the bound callable
// wants. construct_as() placement-constructs a `want` into `out` and returns false when the
// argument cannot become a `want`.
struct arg_pack_base {
  virtual ~arg_pack_base() = default;
  virtual std::size_t size() const noexcept = 0;
  virtual bool construct_as(std::size_t i, const std::type_info& want, void* out) = 0;
  virtual const char* type_name(std::size_t i) const noexcept = 0;
};

template <class A>
bool construct_one(A& a, const std::type_info& want, void* out) {
  if (want == typeid(A)) {
    if constexpr (std::is_move_constructible_v<A>) {
      ::new (out) A(std::move(a));
      return true;
    } else {
      return false;
    }
  }
  if constexpr (std::is_arithmetic_v<A>) {
#define STACKLESS_TRY(T)              \
  if (want == typeid(T)) {            \
    ::new (out) T(static_cast<T>(a)); \
    return true;                      \
  }
    STACKLESS_TRY(bool)
    STACKLESS_TRY(char)
    STACKLESS_TRY(signed char)
    STACKLESS_TRY(unsigned char)
    STACKLESS_TRY(short)
    STACKLESS_TRY(unsigned short)
    STACKLESS_TRY(int)
    STACKLESS_TRY(unsigned)
    STACKLESS_TRY(long)
    STACKLESS_TRY(unsigned long)
    STACKLESS_TRY(long long)
    STACKLESS_TRY(unsigned long long)
    STACKLESS_TRY(float)
    STACKLESS_TRY(double)
    STACKLESS_TRY(long double)
#undef STACKLESS_TRY
  }
  if constexpr (std::is_convertible_v<A, std::string_view>) {
    if (want == typeid(std::string)) {
      ::new (out) std::string(std::string_view(a));
      return true;
    }
  }
  return false;
}

template <class... A>
struct arg_pack final : arg_pack_base {
  template <class... U>
  explicit arg_pack(U&&... u) : values(std::forward<U>(u)...) {}
  std::tuple<A...> values;
  std::size_t size() const noexcept override { return sizeof...(A); }
  bool construct_as(std::size_t i, const std::type_info& want, void* out) override {
    return visit(i, [&](auto& a) { return construct_one(a, want, out); });
  }
  const char* type_name(std::size_t i) const noexcept override {
    const char* n = "?";
    std::size_t k = 0;
    ((k++ == i ? (n = typeid(A).name(), 0) : 0), ...);
    return n;
  }

 private:
  template <class V>
  bool visit(std::size_t i, V&& v) {
    return std::apply(
        [&](auto&... a) {
          bool ok = false;
          std::size_t k = 0;
          ((k++ == i ? (ok = v(a), 0) : 0), ...);
          return ok;
        },
        values);
  }
};

// ---- bound callables ----------------------------------------------------------------------
// bound_callable is what `tasklet(f)` stores. make_call() consumes it together with an argument
// pack (or none) and produces the nullary closure the tasklet will run.
struct bound_callable {
  virtual ~bound_callable() = default;
  virtual unique_function make_call(arg_pack_base* args) = 0;
};

template <class T>
struct arg_slot {
  alignas(T) unsigned char raw[sizeof(T)];
  bool engaged = false;
  T& get() { return *std::launder(reinterpret_cast<T*>(raw)); }
  ~arg_slot() {
    if (engaged) get().~T();
  }
};

template <class F, class Params>
struct bound_with_params;

template <class F, class... P>
struct bound_with_params<F, param_list<P...>> final : bound_callable {
  explicit bound_with_params(F f) : fn(std::move(f)) {}
  F fn;

  unique_function make_call(arg_pack_base* args) override {
    const std::size_t given = args ? args->size() : 0;
    if (given != sizeof...(P)) {
      throw_binding_error("tasklet::setup: the bound callable takes " +
                          std::to_string(sizeof...(P)) + " argument(s), " + std::to_string(given) +
                          " given");
    }
    if constexpr (sizeof...(P) == 0) {
      return unique_function(std::move(fn));
    } else {
      return convert(args, std::index_sequence_for<P...>{});
    }
  }

 private:
  template <std::size_t... I>
  unique_function convert(arg_pack_base* args, std::index_sequence<I...>) {
    std::tuple<arg_slot<P>...> slots;
    (fill<I, P>(args, std::get<I>(slots)), ...);
    return unique_function([f = std::move(fn), a = std::tuple<P...>(std::move(
                                                   std::get<I>(slots).get())...)]() mutable {
      std::apply(f, std::move(a));
    });
  }
  template <std::size_t I, class T>
  static void fill(arg_pack_base* args, arg_slot<T>& slot) {
    if (!args->construct_as(I, typeid(T), slot.raw)) {
      throw_binding_error("tasklet::setup: argument " + std::to_string(I + 1) + " of type " +
                          args->type_name(I) + " cannot be converted to parameter type " +
                          typeid(T).name());
    }
    slot.engaged = true;
  }
};

// A callable whose parameters cannot be deduced (a generic lambda): only a nullary call works.
template <class F>
struct bound_opaque final : bound_callable {
  explicit bound_opaque(F f) : fn(std::move(f)) {}
  F fn;
  unique_function make_call(arg_pack_base* args) override {
    if (args && args->size() != 0) {
      throw_binding_error(
          "tasklet::setup: the bound callable's parameter types cannot be deduced (a generic "
          "lambda?); pass the arguments with tasklet(f, args...) or capture them instead");
    }
    if constexpr (std::is_invocable_v<F&>) {
      return unique_function(std::move(fn));
    } else {
      throw_binding_error("tasklet::setup: the bound callable cannot be called without arguments");
    }
  }
};

template <class F>
std::unique_ptr<bound_callable> make_bound(F&& f) {
  using D = std::decay_t<F>;
  static_assert(!takes_nonconst_ref<D>(),
                "stackless::tasklet: the callable takes a parameter by non-const reference; a "
                "tasklet owns copies of its arguments: take it by value or const&, or capture "
                "a reference in a lambda");
  if constexpr (callable_params<D>::known) {
    return std::make_unique<bound_with_params<D, typename callable_params<D>::type>>(
        std::forward<F>(f));
  } else {
    return std::make_unique<bound_opaque<D>>(std::forward<F>(f));
  }
}

}  // namespace stackless::detail
