// The per-thread poller's interface to io::file and sleep (internal).
#pragma once

#include <cstdint>

#include "backend.hpp"

namespace stackless::io::detail {

// submit_and_wait(kind, fd, buf, len, offset) issues one operation and blocks the calling tasklet
// until it completes. Returns the byte count or -errno. If the tasklet is killed or thrown into
// meanwhile, the operation is cancelled and the call still waits until the kernel or the worker
// is done with `buf`, then rethrows (a second kill during that wait blocks the thread instead).
long submit_and_wait(op_kind kind, int fd, void* buf, std::uint32_t len, std::int64_t offset);

}  // namespace stackless::io::detail
