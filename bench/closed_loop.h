// Copyright lrsched authors.
//
// ClosedLoop: the load generator's engine. N slots, each keeping exactly one unary call
// outstanding through gRPC's callback API (stub->async()->Method(ctx, req, resp, cb)); when a
// call completes, its slot records the latency and issues the next call from the callback.
// Calls completing during the warm-up are not recorded. Everything is bounded: each call has a
// deadline, and Run() waits for the slots to drain at most `drain` after the measured window.
#ifndef LRSCHED_BENCH_CLOSED_LOOP_H_
#define LRSCHED_BENCH_CLOSED_LOOP_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"

namespace lrsched_bench {

using Clock = std::chrono::steady_clock;

struct RunResult {
  int64_t ok = 0;
  int64_t errors = 0;
  double seconds = 0;
  std::vector<int64_t> latency_ns;  // sorted, successful calls of the measured window
  std::string first_error;
  size_t request_bytes = 0;  // serialized size of the last request / response seen
  size_t response_bytes = 0;
  double max_at_s = 0;  // when the slowest call completed, seconds into the measured window
  double qps() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
  double percentile_us(double p) const {
    if (latency_ns.empty()) return 0;
    size_t i = static_cast<size_t>(p * static_cast<double>(latency_ns.size() - 1) + 0.5);
    return static_cast<double>(latency_ns[std::min(i, latency_ns.size() - 1)]) / 1000.0;
  }
};

template <typename Req, typename Resp>
class ClosedLoop {
 public:
  // Starts the call: (slot, context, request, response, done).
  using StartFn = std::function<void(int, grpc::ClientContext*, const Req*, Resp*,
                                     std::function<void(grpc::Status)>)>;
  // Fills the request for the slot's `seq`-th call.
  using PrepareFn = std::function<void(int slot, int64_t seq, Req*)>;

  ClosedLoop(int slots, StartFn start, PrepareFn prepare)
      : start_(std::move(start)), prepare_(std::move(prepare)), slots_(slots) {
    for (int i = 0; i < slots; ++i) slots_[i].index = i;
  }

  RunResult Run(std::chrono::milliseconds warmup, std::chrono::milliseconds duration,
                std::chrono::milliseconds drain) {
    active_ = static_cast<int>(slots_.size());
    for (Slot& s : slots_) Issue(&s);
    std::this_thread::sleep_for(warmup);
    const Clock::time_point t0 = Clock::now();
    measuring_.store(true);
    std::this_thread::sleep_for(duration);
    measuring_.store(false);
    const Clock::time_point t1 = Clock::now();
    stop_.store(true);
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, drain, [this] { return active_ == 0; });
      if (active_ != 0) {
        // Bounded: cancel what is left and wait for the callbacks (they are guaranteed).
        for (Slot& s : slots_) {
          if (s.ctx) s.ctx->TryCancel();
        }
        cv_.wait_for(l, drain, [this] { return active_ == 0; });
      }
    }
    RunResult r;
    r.seconds = std::chrono::duration<double>(t1 - t0).count();
    for (Slot& s : slots_) {
      r.ok += static_cast<int64_t>(s.latency_ns.size());
      r.errors += s.errors;
      if (r.first_error.empty()) r.first_error = s.first_error;
      r.latency_ns.insert(r.latency_ns.end(), s.latency_ns.begin(), s.latency_ns.end());
    }
    std::sort(r.latency_ns.begin(), r.latency_ns.end());
    int64_t max_ns = -1;
    for (Slot& s : slots_) {
      if (s.max_ns > max_ns) {
        max_ns = s.max_ns;
        r.max_at_s = std::chrono::duration<double>(s.max_at - t0).count();
      }
    }
    r.request_bytes = slots_[0].req.ByteSizeLong();
    r.response_bytes = slots_[0].last_response_bytes;
    return r;
  }

 private:
  struct Slot {
    int index = 0;
    int64_t seq = 0;
    std::unique_ptr<grpc::ClientContext> ctx;
    Req req;
    Resp resp;
    Clock::time_point started;
    std::vector<int64_t> latency_ns;
    int64_t max_ns = -1;
    Clock::time_point max_at;
    int64_t errors = 0;
    size_t last_response_bytes = 0;
    std::string first_error;
  };

  void Issue(Slot* s) {
    if (stop_.load(std::memory_order_relaxed)) {
      std::lock_guard<std::mutex> l(mu_);
      if (--active_ == 0) cv_.notify_all();
      return;
    }
    s->ctx = std::make_unique<grpc::ClientContext>();
    s->ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    prepare_(s->index, s->seq++, &s->req);
    s->resp.Clear();
    s->started = Clock::now();
    start_(s->index, s->ctx.get(), &s->req, &s->resp, [this, s](grpc::Status st) { Done(s, st); });
  }

  void Done(Slot* s, const grpc::Status& st) {
    const Clock::time_point now = Clock::now();
    const int64_t ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - s->started).count();
    if (measuring_.load()) {
      if (st.ok()) {
        s->latency_ns.push_back(ns);
        if (ns > s->max_ns) {
          s->max_ns = ns;
          s->max_at = now;
        }
      } else {
        ++s->errors;
      }
    }
    if (!st.ok() && s->first_error.empty()) {
      s->first_error = std::to_string(st.error_code()) + ": " + st.error_message();
    }
    if (st.ok() && s->index == 0) s->last_response_bytes = s->resp.ByteSizeLong();
    Issue(s);
  }

  StartFn start_;
  PrepareFn prepare_;
  std::vector<Slot> slots_;
  std::atomic<bool> measuring_{false};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;
};

}  // namespace lrsched_bench

#endif  // LRSCHED_BENCH_CLOSED_LOOP_H_
