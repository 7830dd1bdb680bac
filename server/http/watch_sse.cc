// Copyright lrsched authors.
//
// Watch as Server-Sent Events. The gRPC Watch runs on the callback client API (WatchStream
// below), so the httplib thread serving the stream waits on a condition variable with a
// timeout rather than inside a blocking Read: it wakes every kTick to notice the gateway
// stopping, and writes an SSE comment every kKeepAlive, whose failure tells that the client
// went away (the stream is then cancelled, freeing the thread and the server's watcher).
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/http/handlers.h"
#include "server/http/http_status.h"
#include "server/http/transcode.h"

namespace lrsched::http {
namespace {

constexpr absl::Duration kTick = absl::Milliseconds(200);
constexpr absl::Duration kKeepAlive = absl::Seconds(2);
// How long the first message (the session now) may take before the stream is given up.
constexpr absl::Duration kFirstMessage = absl::Seconds(10);

// One gRPC Watch call over the in-process channel. Reads one message at a time: the next
// read starts when the consumer has taken the previous message, so a slow HTTP client
// leaves the coalescing to the server's watcher queue, as a slow gRPC client does.
class WatchStream : public grpc::ClientReadReactor<v1::Session> {
 public:
  enum class Next { kSession, kEnd, kTimeout };

  // Starts the call; `ctx` already carries the caller's metadata.
  void Start(v1::LrScheduler::Stub* stub, const v1::WatchRequest& req) {
    req_ = req;
    stub->async()->Watch(&ctx_, &req_, this);
    StartRead(&incoming_);
    StartCall();
  }
  grpc::ClientContext* context() { return &ctx_; }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended: OnDone follows
    std::lock_guard<std::mutex> l(mu_);
    has_message_ = true;
    cv_.notify_all();
  }
  void OnDone(const grpc::Status& s) override {
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
    status_ = s;
    cv_.notify_all();
  }

  // The next session (kSession, into *out), the end of the stream (kEnd, its status in *end),
  // or nothing within `timeout`.
  Next Wait(absl::Duration timeout, v1::Session* out, grpc::Status* end) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, absl::ToChronoNanoseconds(timeout), [this] { return has_message_ || done_; });
    if (has_message_) {
      *out = std::move(incoming_);
      incoming_.Clear();
      has_message_ = false;
      l.unlock();
      StartRead(&incoming_);
      return Next::kSession;
    }
    if (done_) {
      *end = status_;
      return Next::kEnd;
    }
    return Next::kTimeout;
  }

  // Cancels the call and waits for gRPC to be done with this object.
  void Close() {
    ctx_.TryCancel();
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return done_; });
  }

 private:
  grpc::ClientContext ctx_;
  v1::WatchRequest req_;
  v1::Session incoming_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool has_message_ = false;
  bool done_ = false;
  grpc::Status status_;
};

std::string SessionEvent(const v1::Session& s) {
  return absl::StrCat("id: ", s.revision(), "\ndata: ", PrintJson(s), "\n\n");
}

std::string EndEvent(int code, const std::string& message) {
  return absl::StrCat("event: end\ndata: ", ErrorBody(code, message), "\n\n");
}

}  // namespace

void RouteHandlers::Watch(const httplib::Request& req, httplib::Response& res,
                          const RouteMatch& route) {
  v1::WatchRequest request;
  absl::Status s = ApplyQuery(req.params, &request);
  if (s.ok()) s = SetPathName(route.name, &request);
  auto stream = std::make_shared<WatchStream>();
  if (s.ok()) s = PrepareContext(req, stream->context());
  if (!s.ok()) return WriteError(res, static_cast<int>(s.code()), std::string(s.message()));
  if (stopping_) return WriteError(res, 14, "the server is shutting down");
  // Claim a stream slot; the releaser below gives it back.
  if (++counters_->watch_streams > max_watch_streams_) {
    --counters_->watch_streams;
    return WriteError(res, 8,
                      absl::StrCat("too many Watch streams open over HTTP (at most ",
                                   max_watch_streams_, ", --http_max_watch_streams)"));
  }
  std::shared_ptr<HttpCounters> counters = counters_;
  auto release = [stream, counters](bool) {
    stream->Close();
    --counters->watch_streams;
  };
  stream->Start(stub_.get(), request);
  // The first message (the session now) or the call's failure decides the HTTP status: an
  // unknown session or a refused token is a plain JSON error, not a stream.
  v1::Session first;
  grpc::Status end;
  WatchStream::Next next = WatchStream::Next::kTimeout;
  absl::Time give_up = absl::Now() + kFirstMessage;
  while (next == WatchStream::Next::kTimeout && !stopping_ && absl::Now() < give_up) {
    next = stream->Wait(kTick, &first, &end);
  }
  if (next != WatchStream::Next::kSession) {
    release(false);
    if (next == WatchStream::Next::kEnd)
      return WriteError(res, end.error_code(), end.error_message());
    return WriteError(res, 14,
                      stopping_ ? "the server is shutting down" : "the watch sent nothing in time");
  }
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  // Proxies (nginx) must not buffer the events.
  res.set_header("X-Accel-Buffering", "no");
  auto pending = std::make_shared<std::string>(SessionEvent(first));
  auto last_write = std::make_shared<absl::Time>(absl::Now());
  RouteHandlers* self = this;
  res.set_chunked_content_provider(
      "text/event-stream",
      [stream, pending, last_write, self](size_t, httplib::DataSink& sink) {
        if (!pending->empty()) {
          std::string out = std::move(*pending);
          pending->clear();
          *last_write = absl::Now();
          return sink.write(out.data(), out.size());
        }
        v1::Session session;
        grpc::Status end;
        switch (stream->Wait(kTick, &session, &end)) {
          case WatchStream::Next::kSession: {
            std::string out = SessionEvent(session);
            *last_write = absl::Now();
            return sink.write(out.data(), out.size());
          }
          case WatchStream::Next::kEnd: {
            std::string out = EndEvent(end.error_code(), end.error_message());
            bool ok = sink.write(out.data(), out.size());
            sink.done();
            return ok;
          }
          case WatchStream::Next::kTimeout:
            break;
        }
        if (self->stopping()) {
          std::string out = EndEvent(14, "the server is shutting down");
          bool ok = sink.write(out.data(), out.size());
          sink.done();
          return ok;
        }
        if (absl::Now() - *last_write >= kKeepAlive) {
          // An SSE comment: clients ignore it; writing it is how a vanished client shows.
          *last_write = absl::Now();
          static constexpr char kPing[] = ":\n\n";
          return sink.write(kPing, sizeof(kPing) - 1);
        }
        return true;
      },
      release);
}

}  // namespace lrsched::http
