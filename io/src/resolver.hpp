// Test seams of net::getaddrinfo's resolver threads (net_resolve.cpp). Internal.
#pragma once

#include <cstddef>
#include <functional>

namespace stackless::net::detail {

// set_resolver_hook(h): h runs on a resolver thread before each lookup (a test blocks it there
// to kill the waiting tasklet mid-lookup). Empty: none.
void set_resolver_hook(std::function<void()> hook);
// resolver_in_flight(): lookups posted whose resolver thread has not yet dropped its reference.
std::size_t resolver_in_flight();

}  // namespace stackless::net::detail
