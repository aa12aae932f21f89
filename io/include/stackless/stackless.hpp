// Umbrella header: everything a program needs from stackless.
#pragma once

#include "stackless/channel.hpp"
#include "stackless/io/file.hpp"
#include "stackless/io/io.hpp"
#include "stackless/io/sleep.hpp"
#include "stackless/net.hpp"
#include "stackless/runtime/errors.hpp"
#include "stackless/runtime/scope.hpp"
#include "stackless/runtime/tasklet.hpp"
#include "stackless/runtime/threads.hpp"
#include "stackless/select.hpp"
#include "stackless/sync.hpp"
