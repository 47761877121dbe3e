// One vigilctl command, end to end over an open connection: send the request, wait for
// the answer, render it (or follow the stream), and decide the exit status. The ends
// (socket, stdout, stderr) are file descriptors, so tests drive it through a socketpair.
#pragma once

#include <csignal>

#include "args.h"
#include "client.h"

namespace vigil::ctl {

struct Terminal {
  int out = 1;         // results
  int err = 2;         // errors and warnings
  bool color = false;  // see use_color()
  // Set by vigilctl's SIGINT handler; checked whenever a blocking call is interrupted.
  const volatile std::sig_atomic_t* interrupted = nullptr;
};

// Runs an Invocation whose action is `run`. Returns vigilctl's exit status. SIGPIPE must
// be ignored (main() does), so that a closed stdout is an EPIPE that ends a stream quietly.
int run_command(const Invocation& inv, Connection& conn, const Terminal& term);

}  // namespace vigil::ctl
