// Copyright lrsched authors.
#include "bench/http_load.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace lrsched_bench {
namespace {

struct Worker {
  std::vector<int64_t> latency_ns;
  int64_t errors = 0;
  int64_t max_ns = -1;
  Clock::time_point max_at;
  size_t response_bytes = 0;
  std::string first_error;
};

bool SplitHostPort(const std::string& addr, std::string* host, int* port) {
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *host = addr.substr(0, colon);
  *port = std::atoi(addr.c_str() + colon + 1);
  return *port > 0 && *port < 65536;
}

void SetTimeouts(httplib::Client* c) {
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);  // as curl and gRPC do: no Nagle delay on a request
  c->set_connection_timeout(10, 0);
  c->set_read_timeout(10, 0);
  c->set_write_timeout(10, 0);
}

// One request; "" when it answered 200, else what went wrong.
std::string Call(httplib::Client* c, const std::string& path, size_t* body_bytes) {
  httplib::Result res = c->Get(path.c_str());
  if (!res) return "transport error " + std::to_string(static_cast<int>(res.error()));
  *body_bytes = res->body.size();
  if (res->status != 200) return "HTTP " + std::to_string(res->status) + ": " + res->body;
  return "";
}

}  // namespace

bool RunHttpLoad(const HttpLoadOptions& o, std::chrono::milliseconds warmup,
                 std::chrono::milliseconds duration, RunResult* r) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(o.addr, &host, &port)) {
    std::fprintf(stderr, "loadgen: --http_addr must be host:port, got %s\n", o.addr.c_str());
    return false;
  }
  {  // Probe: the route answers 200 before any load.
    httplib::Client probe(host, port);
    SetTimeouts(&probe);
    size_t bytes = 0;
    const std::string err = Call(&probe, o.path, &bytes);
    if (!err.empty()) {
      std::fprintf(stderr, "loadgen: GET %s: %s\n", o.path.c_str(), err.c_str());
      return false;
    }
  }
  std::atomic<bool> measuring{false};
  std::atomic<bool> stop{false};
  std::vector<Worker> workers(static_cast<size_t>(o.concurrency));
  std::vector<std::thread> threads;
  for (Worker& w : workers) {
    threads.emplace_back([&, wp = &w] {
      httplib::Client c(host, port);  // this thread's keep-alive connection
      SetTimeouts(&c);
      while (!stop.load(std::memory_order_relaxed)) {
        const Clock::time_point start = Clock::now();
        size_t bytes = 0;
        const std::string err = Call(&c, o.path, &bytes);
        const Clock::time_point now = Clock::now();
        const int64_t ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - start).count();
        if (!err.empty() && wp->first_error.empty()) wp->first_error = err;
        if (!measuring.load(std::memory_order_relaxed)) continue;
        if (!err.empty()) {
          ++wp->errors;
          continue;
        }
        wp->latency_ns.push_back(ns);
        wp->response_bytes = bytes;
        if (ns > wp->max_ns) {
          wp->max_ns = ns;
          wp->max_at = now;
        }
      }
    });
  }
  std::this_thread::sleep_for(warmup);
  const Clock::time_point t0 = Clock::now();
  measuring.store(true);
  std::this_thread::sleep_for(duration);
  measuring.store(false);
  const Clock::time_point t1 = Clock::now();
  stop.store(true);
  for (std::thread& t : threads) t.join();  // each ends within one call's timeouts

  r->seconds = std::chrono::duration<double>(t1 - t0).count();
  int64_t max_ns = -1;
  for (Worker& w : workers) {
    r->ok += static_cast<int64_t>(w.latency_ns.size());
    r->errors += w.errors;
    if (r->first_error.empty()) r->first_error = w.first_error;
    r->latency_ns.insert(r->latency_ns.end(), w.latency_ns.begin(), w.latency_ns.end());
    if (w.response_bytes != 0) r->response_bytes = w.response_bytes;
    if (w.max_ns > max_ns) {
      max_ns = w.max_ns;
      r->max_at_s = std::chrono::duration<double>(w.max_at - t0).count();
    }
  }
  std::sort(r->latency_ns.begin(), r->latency_ns.end());
  r->request_bytes = 0;  // a GET has no body
  return true;
}

}  // namespace lrsched_bench
