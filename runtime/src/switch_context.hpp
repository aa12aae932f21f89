// switch_context(to, data): the stack switch the scheduler uses. Same contract and the same
// saved-context layout as Boost.Context's jump_fcontext (contexts made by make_fcontext or saved
// by either can be resumed by the other), but on x86-64 it ends with `ret` instead of
// `jmp *%r8`.
//
// Why: jump_fcontext is entered with `call` and leaves with an indirect `jmp`, so every switch
// leaves one unmatched entry on the CPU's return-address predictor; the next `ret` of the
// resumed tasklet (the scheduler function that switched) is then mispredicted. A scheduler pays
// that on every switch (measured: schedule() round trip 38 ns with jump_fcontext against 13 ns
// with this, where a bare jump_fcontext loop, which never returns, takes ~8-13 ns). Ending in
// `ret` keeps call/ret paired; as every switch goes through the same call site, the prediction
// is right.
#pragma once

#include <boost/context/detail/fcontext.hpp>

#if defined(__x86_64__) && defined(__ELF__) && !defined(STACKLESS_BOOST_SWITCH)
#define STACKLESS_OWN_SWITCH 1
extern "C" boost::context::detail::transfer_t stackless_switch_fcontext(
    boost::context::detail::fcontext_t to, void* data) noexcept;
#endif

namespace stackless::detail {

inline boost::context::detail::transfer_t switch_context(boost::context::detail::fcontext_t to,
                                                         void* data) noexcept {
#ifdef STACKLESS_OWN_SWITCH
  return stackless_switch_fcontext(to, data);
#else
  return boost::context::detail::jump_fcontext(to, data);
#endif
}

}  // namespace stackless::detail
