// unique_function: a move-only `void()` callable with a small inline buffer, so that spawning a
// tasklet with a typical lambda (a channel handle and a few integers) allocates nothing.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace stackless::detail {

class unique_function {
 public:
  static constexpr std::size_t inline_size = 56;

  unique_function() noexcept = default;
  unique_function(const unique_function&) = delete;
  unique_function& operator=(const unique_function&) = delete;
  unique_function(unique_function&& o) noexcept { take(std::move(o)); }
  unique_function& operator=(unique_function&& o) noexcept {
    if (this != &o) {
      reset();
      take(std::move(o));
    }
    return *this;
  }
  ~unique_function() { reset(); }

  template <class F, class D = std::decay_t<F>,
            class = std::enable_if_t<!std::is_same_v<D, unique_function>>>
  unique_function(F&& f) {  // NOLINT(google-explicit-constructor): callable conversion
    if constexpr (sizeof(D) <= inline_size && alignof(D) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<D>) {
      ::new (static_cast<void*>(buf_)) D(std::forward<F>(f));
      ops_ = &inline_ops<D>;
    } else {
      auto p = std::make_unique<D>(std::forward<F>(f));
      ::new (static_cast<void*>(buf_)) D*(p.release());
      ops_ = &heap_ops<D>;
    }
  }

  explicit operator bool() const noexcept { return ops_ != nullptr; }
  void operator()() { ops_->call(buf_); }
  void reset() noexcept {
    if (ops_) {
      auto* o = ops_;
      ops_ = nullptr;
      o->destroy(buf_);
    }
  }

 private:
  struct ops {
    void (*call)(void*);
    void (*move)(void* dst, void* src) noexcept;  // move-constructs dst from src, destroys src
    void (*destroy)(void*) noexcept;
  };
  template <class D>
  static constexpr ops inline_ops{[](void* p) { (*std::launder(static_cast<D*>(p)))(); },
                                  [](void* d, void* s) noexcept {
                                    D* src = std::launder(static_cast<D*>(s));
                                    ::new (d) D(std::move(*src));
                                    src->~D();
                                  },
                                  [](void* p) noexcept { std::launder(static_cast<D*>(p))->~D(); }};
  template <class D>
  static constexpr ops heap_ops{
      [](void* p) { (**static_cast<D**>(p))(); },
      [](void* d, void* s) noexcept { ::new (d) D*(*static_cast<D**>(s)); },
      [](void* p) noexcept { std::unique_ptr<D> owned(*static_cast<D**>(p)); }};

  void take(unique_function&& o) noexcept {
    if (o.ops_) {
      o.ops_->move(buf_, o.buf_);
      ops_ = o.ops_;
      o.ops_ = nullptr;
    }
  }

  alignas(std::max_align_t) unsigned char buf_[inline_size];
  const ops* ops_ = nullptr;
};

}  // namespace stackless::detail
