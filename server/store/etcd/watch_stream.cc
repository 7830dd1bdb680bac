// Copyright lrsched authors.
#include "server/store/etcd/watch_stream.h"

namespace lrsched {

namespace pb = ::etcdserverpb;

// gRPC may run a reaction, or OnDone, on any of its threads and at any time after an
// operation was started, so mu_ is never held while calling into gRPC (StartCall, Start*,
// RemoveHold): a reaction waiting for it could otherwise deadlock against the caller.

EtcdWatchStream::EtcdWatchStream(pb::Watch::Stub* stub, grpc::ClientContext* ctx) : ctx_(ctx) {
  stub->async()->Watch(ctx, this);
  AddHold();  // released by Finish; must precede StartCall
  StartCall();
}

EtcdWatchStream::~EtcdWatchStream() {
  if (finished_) return;
  ctx_->TryCancel();
  Finish();
}

void EtcdWatchStream::ArmOp() {
  absl::MutexLock l(&mu_);
  op_done_ = false;
  op_ok_ = false;
}

bool EtcdWatchStream::AwaitOp() {
  bool ok;
  {
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(&op_done_));
    ok = op_ok_;
  }
  // After a failed operation gRPC accepts no other (its docs: "any further Start* should
  // not be called").
  if (!ok) broken_ = true;
  return ok;
}

bool EtcdWatchStream::Write(const pb::WatchRequest& req) {
  if (broken_ || finished_) return false;
  ArmOp();
  StartWrite(&req);  // `req` outlives OnWriteDone: we wait for it below
  return AwaitOp();
}

bool EtcdWatchStream::Read(pb::WatchResponse* resp) {
  if (broken_ || finished_) return false;
  ArmOp();
  StartRead(resp);
  return AwaitOp();
}

grpc::Status EtcdWatchStream::Finish() {
  finished_ = true;
  // No operation is in flight (each one was waited for), so without the hold gRPC may end
  // the call as soon as its status is in; OnDone is then the last thing it does with us.
  RemoveHold();
  absl::MutexLock l(&mu_);
  mu_.Await(absl::Condition(&done_));
  return status_;
}

void EtcdWatchStream::OnWriteDone(bool ok) {
  absl::MutexLock l(&mu_);
  op_ok_ = ok;
  op_done_ = true;
}

void EtcdWatchStream::OnReadDone(bool ok) {
  absl::MutexLock l(&mu_);
  op_ok_ = ok;
  op_done_ = true;
}

void EtcdWatchStream::OnDone(const grpc::Status& s) {
  absl::MutexLock l(&mu_);
  status_ = s;
  done_ = true;
}

}  // namespace lrsched
