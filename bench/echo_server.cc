// Copyright lrsched authors.
//
// echo_server: the bare gRPC ceiling the service benchmarks compare lrsched against. A
// callback-API (CallbackService) unary echo that answers each request with
// `response_bytes` bytes of payload and does nothing else. Binds --listen (port 0: any free
// port) and prints `event=listening addr=HOST:PORT` on stderr; exits on SIGTERM/SIGINT or
// after --max_seconds (a bound, so a forgotten server cannot outlive its benchmark).
//
//   echo_server --listen=127.0.0.1:0 [--max_seconds=600]
#include <signal.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "bench/echo.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace {

class EchoService final : public lrsched::bench::Echo::CallbackService {
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* ctx,
                                 const lrsched::bench::EchoRequest* req,
                                 lrsched::bench::EchoResponse* resp) override {
    int n = req->response_bytes();
    if (n < 0) n = 0;
    if (n > (1 << 20)) n = 1 << 20;
    resp->mutable_payload()->assign(static_cast<size_t>(n), 'x');
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
};

std::string FlagValue(int argc, char** argv, const char* name, const char* def) {
  const std::string prefix = std::string("--") + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) return argv[i] + prefix.size();
  }
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string listen = FlagValue(argc, argv, "listen", "127.0.0.1:0");
  const int max_seconds = std::atoi(FlagValue(argc, argv, "max_seconds", "600").c_str());

  // Signals are taken synchronously below (sigtimedwait), never in a handler.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  EchoService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "event=listen_failed addr=%s\n", listen.c_str());
    return 1;
  }
  const std::string host = listen.substr(0, listen.rfind(':'));
  std::fprintf(stderr, "event=listening addr=%s:%d\n", host.c_str(), port);
  std::fflush(stderr);

  timespec timeout{max_seconds, 0};
  int sig = sigtimedwait(&set, nullptr, &timeout);
  std::fprintf(stderr, "event=stopping reason=%s\n", sig > 0 ? "signal" : "max_seconds");
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}
