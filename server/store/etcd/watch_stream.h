// Copyright lrsched authors.
//
// EtcdWatchStream: one etcd v3 Watch call on gRPC's callback API, with blocking-style Write,
// Read and Finish for EtcdWatch's thread.
//
// Why not the synchronous API: a thread blocked in a synchronous Read plucks a completion
// queue, which makes it one of gRPC's pollers (epoll1 has one designated poller across all
// pollsets); the watch thread then picks up the server's I/O events and hands them to other
// threads, and GetLR on an etcd replica pays in futex waits. Here the callback operation runs
// on gRPC's own threads and the caller waits on its own absl::Mutex, never inside gRPC.
//
// Lifetime: the stream holds a hold from construction until Finish, because its reads and
// writes are started from outside the reactions; so OnDone cannot run (and gRPC cannot free
// the call) while the caller may still start an operation. Finish (also run by the destructor,
// after TryCancel, when the caller did not) waits for OnDone, so the object and the
// ClientContext, which must outlive it, are never destroyed before gRPC is done with them.
//
// Use from one thread: one operation at a time, none after a failed one, none after Finish.
#ifndef LRSCHED_SERVER_ETCD_WATCH_STREAM_H_
#define LRSCHED_SERVER_ETCD_WATCH_STREAM_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"
#include "grpcpp/support/status.h"

namespace lrsched {

class EtcdWatchStream final
    : public grpc::ClientBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
 public:
  // Starts the call; `ctx` (metadata already added) must outlive this object.
  EtcdWatchStream(etcdserverpb::Watch::Stub* stub, grpc::ClientContext* ctx);
  // Cancels the call unless finished, and waits for OnDone.
  ~EtcdWatchStream() override;
  EtcdWatchStream(const EtcdWatchStream&) = delete;
  EtcdWatchStream& operator=(const EtcdWatchStream&) = delete;

  // Each blocks until the operation completed; false: the stream is broken or canceled
  // (Finish says why).
  bool Write(const etcdserverpb::WatchRequest& req);
  bool Read(etcdserverpb::WatchResponse* resp);
  // Waits until the call has ended (cancel it first unless etcd is closing it) and returns
  // its status. Once only.
  grpc::Status Finish();

 private:
  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& s) override;
  // Arms op_done_ before an operation is started.
  void ArmOp();
  // Waits for the operation in flight; its ok.
  bool AwaitOp();

  grpc::ClientContext* const ctx_;
  bool broken_ = false;    // an operation failed: start no other (caller's thread only)
  bool finished_ = false;  // Finish ran (caller's thread only)

  absl::Mutex mu_;
  bool op_done_ ABSL_GUARDED_BY(mu_) = false;  // the operation in flight completed
  bool op_ok_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // OnDone ran
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_ETCD_WATCH_STREAM_H_
