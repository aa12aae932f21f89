// Umbrella header: everything a program needs from stackless.
#pragma once

#include "stackless/channel.hpp"
#include "stackless/runtime/errors.hpp"
#include "stackless/runtime/tasklet.hpp"
