// Copyright lrsched authors.
//
// LrSchedulerService::Watch on gRPC's callback API. Two objects per stream:
//   WatchReactor: gRPC's side; owned by gRPC, deleted in OnDone.
//   WatchChannel: the registry's WatchSink; shared by the reactor and the session, so a change
//                 arriving after the stream ended finds a closed channel, not a dead reactor.
// The channel decides, under its own mutex, what to do next (write the next queued snapshot,
// or finish the stream) and then does it with no lock held, because gRPC may run a reaction
// (OnWriteDone, OnDone) inline in the thread that starts an operation. At most one write is
// outstanding, Finish is called exactly once and never while a write is outstanding, and the
// reactor is touched only while a write or the Finish is still ahead of it (so it is alive).
//
// A watcher that reads slower than the session changes keeps at most kMaxQueued snapshots;
// older unsent ones are dropped (revision numbers show the gap; the latest is always sent).
#include <deque>
#include <memory>
#include <string>

#include "server/ops/log.h"
#include "server/rpc/convert.h"
#include "server/rpc/service.h"
#include "server/rpc/validate.h"

namespace lrsched {
namespace {

constexpr size_t kMaxQueued = 256;

class WatchReactor;

class WatchChannel final : public WatchSink {
 public:
  WatchChannel(WatchReactor* reactor, bool definition_changes_only)
      : reactor_(reactor), definition_changes_only_(definition_changes_only) {}

  void OnSnapshot(std::shared_ptr<const SessionSnapshot> snapshot) override {
    Next next;
    {
      absl::MutexLock l(&mu_);
      if (closed_) return;
      if (definition_changes_only_) {
        // WatchRequest.definition_changes_only: the first snapshot, then only a new definition.
        if (snapshot->meta.schedule_revision == last_schedule_revision_) return;
        last_schedule_revision_ = snapshot->meta.schedule_revision;
      }
      if (queue_.size() >= kMaxQueued) queue_.pop_front();
      queue_.push_back(std::move(snapshot));
      next = NextLocked();
    }
    Run(next);
  }

  void OnEnd(const absl::Status& status) override { End(status); }

  bool Closed() const override {
    absl::MutexLock l(&mu_);
    return closed_;
  }

  // From the reactor's reactions.
  void WriteDone(bool ok) {
    Next next;
    {
      absl::MutexLock l(&mu_);
      writing_ = false;
      if (!ok) CloseLocked(absl::CancelledError("watch: the stream broke"), /*drop_queue=*/true);
      next = NextLocked();
    }
    Run(next);
  }
  void Cancelled() {
    Next next;
    {
      absl::MutexLock l(&mu_);
      CloseLocked(absl::CancelledError("watch: cancelled by the client"), /*drop_queue=*/true);
      next = NextLocked();
    }
    Run(next);
  }
  void ReactorGone() {
    absl::MutexLock l(&mu_);
    reactor_ = nullptr;
    closed_ = true;
    queue_.clear();
  }
  // Ends the stream with `status` once the queued snapshots are written.
  void End(const absl::Status& status) {
    Next next;
    {
      absl::MutexLock l(&mu_);
      CloseLocked(status, /*drop_queue=*/false);
      next = NextLocked();
    }
    Run(next);
  }

 private:
  struct Next {
    WatchReactor* reactor = nullptr;               // null: nothing to do
    std::shared_ptr<const SessionSnapshot> write;  // else finish with `status`
    absl::Status status;
  };

  void CloseLocked(const absl::Status& status, bool drop_queue) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (drop_queue) queue_.clear();
    if (closed_) return;
    closed_ = true;
    final_ = status;
  }

  Next NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Next n;
    if (writing_ || finished_ || reactor_ == nullptr) return n;
    if (!queue_.empty()) {
      n.reactor = reactor_;
      n.write = std::move(queue_.front());
      queue_.pop_front();
      writing_ = true;
    } else if (closed_) {
      n.reactor = reactor_;
      n.status = final_;
      finished_ = true;
    }
    return n;
  }

  void Run(const Next& n);

  mutable absl::Mutex mu_;
  WatchReactor* reactor_ ABSL_GUARDED_BY(mu_);
  const bool definition_changes_only_;
  int64_t last_schedule_revision_ ABSL_GUARDED_BY(mu_) = -1;  // none sent yet
  std::deque<std::shared_ptr<const SessionSnapshot>> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;   // a StartWrite is outstanding
  bool closed_ ABSL_GUARDED_BY(mu_) = false;    // no more snapshots accepted
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // Finish was called
  absl::Status final_ ABSL_GUARDED_BY(mu_);
};

class WatchReactor final : public grpc::ServerWriteReactor<v1::Session> {
 public:
  explicit WatchReactor(bool definition_changes_only)
      : channel_(std::make_shared<WatchChannel>(this, definition_changes_only)) {}

  // `refused`: the call's authorization failed; the stream ends with it at once.
  void Start(Registry* registry, const v1::WatchRequest& req, absl::Status refused) {
    absl::Status s = std::move(refused);
    if (s.ok()) s = ValidateName(req.name());
    if (s.ok()) s = registry->Watch(req.name(), channel_);
    if (!s.ok()) channel_->End(s);
  }

  void Write(const SessionSnapshot& snap) {
    message_.Clear();
    ToProto(snap, &message_);
    StartWrite(&message_);
  }
  void End(const absl::Status& s) { Finish(ToGrpc(s)); }

  void OnWriteDone(bool ok) override { channel_->WriteDone(ok); }
  void OnCancel() override { channel_->Cancelled(); }
  void OnDone() override {
    channel_->ReactorGone();
    delete this;
  }

 private:
  std::shared_ptr<WatchChannel> channel_;
  v1::Session message_;  // the outstanding write's message
};

void WatchChannel::Run(const Next& n) {
  if (n.reactor == nullptr) return;
  if (n.write) {
    n.reactor->Write(*n.write);
  } else {
    n.reactor->End(n.status);
  }
}

}  // namespace

grpc::ServerWriteReactor<v1::Session>* LrSchedulerService::Watch(grpc::CallbackServerContext* ctx,
                                                                 const v1::WatchRequest* req) {
  auto* reactor = new WatchReactor(req->definition_changes_only());
  reactor->Start(registry_, *req, Authorize(ctx, "Watch"));
  return reactor;
}

}  // namespace lrsched
