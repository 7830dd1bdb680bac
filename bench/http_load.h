// Copyright lrsched authors.
//
// http_load: loadgen's HTTP/JSON mode (bench/loadgen.cc --rpc=http_getlr), GetLR through the
// server's HTTP/JSON gateway (--http_listen; route GET /v1/sessions/{name}:lr, see the contract
// at the top of proto/lrsched/v1/lrsched.proto), so that bench/run_service_bench.sh measures it
// beside gRPC's GetLR against the same server and session, in the same run.
//
// The same closed loop as bench/closed_loop.h, with blocking calls: `concurrency` client
// threads, each with its own cpp-httplib client, i.e. one keep-alive TCP connection per thread
// (reopened by the client if the server closes it), each keeping exactly one request
// outstanding. Calls completing during the warm-up are not counted; a call counts as ok when
// the answer is 200. Bounded: every call has a 10 s connect/read/write timeout, and the threads
// stop issuing when the measured window ends.
#ifndef LRSCHED_BENCH_HTTP_LOAD_H_
#define LRSCHED_BENCH_HTTP_LOAD_H_

#include <chrono>
#include <string>

#include "bench/closed_loop.h"

namespace lrsched_bench {

struct HttpLoadOptions {
  std::string addr;  // host:port of the HTTP listener
  std::string path;  // the request's path and query, e.g. /v1/sessions/getlr/0:lr
  int concurrency = 1;
};

// Runs the load; false (with a message on stderr) when addr does not parse or the first
// request of the probe does not answer 200.
bool RunHttpLoad(const HttpLoadOptions& o, std::chrono::milliseconds warmup,
                 std::chrono::milliseconds duration, RunResult* r);

}  // namespace lrsched_bench

#endif  // LRSCHED_BENCH_HTTP_LOAD_H_
