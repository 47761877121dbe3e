// One way to own a libuv handle, used for every handle in vigild: the handle lives on the
// heap, `data` points at its owner, C callbacks go through a static trampoline, and the
// memory is freed in the close callback (never before libuv is done with it). With every
// handle closed this way, uv_loop_close() succeeds at exit.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <utility>

namespace vigil {

template <typename H>
H* new_handle(void* owner) {
  H* h = new H{};
  h->data = owner;
  return h;
}

// Closes a handle made by new_handle and frees it once libuv has let go of it.
template <typename H>
void close_handle(H*& h) {
  if (h == nullptr) return;
  auto* raw = reinterpret_cast<uv_handle_t*>(h);
  raw->data = nullptr;  // callbacks still in flight must not reach a gone owner
  if (!uv_is_closing(raw)) {
    uv_close(raw, [](uv_handle_t* x) { delete reinterpret_cast<H*>(x); });
  }
  h = nullptr;
}

// A one-shot timer that calls a function. Re-arming replaces the deadline.
class Timer {
 public:
  Timer(uv_loop_t* loop, std::function<void()> fn) : fn_(std::move(fn)) {
    h_ = new_handle<uv_timer_t>(this);
    uv_timer_init(loop, h_);
  }
  ~Timer() { close_handle(h_); }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void start(std::uint64_t timeout_ms) {
    uv_timer_start(h_, [](uv_timer_t* t) {
      if (auto* self = static_cast<Timer*>(t->data)) self->fn_();
    }, timeout_ms, 0);
  }
  void stop() { uv_timer_stop(h_); }

 private:
  uv_timer_t* h_;
  std::function<void()> fn_;
};

// A signal watcher that calls a function on the loop (never in signal context).
class SignalWatcher {
 public:
  SignalWatcher(uv_loop_t* loop, int signo, std::function<void()> fn) : fn_(std::move(fn)) {
    h_ = new_handle<uv_signal_t>(this);
    uv_signal_init(loop, h_);
    uv_signal_start(h_, [](uv_signal_t* s, int) {
      if (auto* self = static_cast<SignalWatcher*>(s->data)) self->fn_();
    }, signo);
  }
  ~SignalWatcher() { close_handle(h_); }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  uv_signal_t* h_;
  std::function<void()> fn_;
};

}  // namespace vigil
