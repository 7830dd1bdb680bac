// Copyright lrsched authors.
#include "server/store/etcd/watch.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/ops/log.h"
#include "server/store/etcd/etcd_store.h"
#include "server/store/etcd/watch_stream.h"

namespace lrsched {

namespace pb = ::etcdserverpb;

std::unique_ptr<EtcdWatch> EtcdWatch::Start(Options options, int64_t after_revision,
                                            SharedStore::ChangeListener* listener) {
  std::unique_ptr<EtcdWatch> w(new EtcdWatch(std::move(options), after_revision, listener));
  w->thread_ = std::thread([p = w.get()] { p->Run(); });
  return w;
}

EtcdWatch::EtcdWatch(Options options, int64_t after_revision, SharedStore::ChangeListener* listener)
    : options_(std::move(options)),
      range_end_(EtcdPrefixEnd(options_.prefix)),
      listener_(listener),
      next_revision_(after_revision + 1) {}

EtcdWatch::~EtcdWatch() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
    if (active_ != nullptr) active_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

bool EtcdWatch::stopped() const {
  absl::MutexLock l(&mu_);
  return stop_;
}

bool EtcdWatch::SleepUnlessStopped(absl::Duration d) {
  absl::MutexLock l(&mu_);
  auto is_stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
  mu_.AwaitWithTimeout(absl::Condition(&is_stopped), d);
  return !stop_;
}

void EtcdWatch::MarkHealthy() {
  if (healthy_) return;
  healthy_ = true;
  logging::Info("etcd_watch_recovered")
      .Kv("prefix", options_.prefix)
      .Kv("from_revision", next_revision_)
      .Kv("outage_ms", absl::ToInt64Milliseconds(absl::Now() - broken_since_));
  listener_->OnFeedHealth(absl::OkStatus());
}

void EtcdWatch::MarkBroken(const absl::Status& why) {
  if (!healthy_) {
    // Once per outage at warning (below); every retry after it only at debug.
    logging::Debug("etcd_watch_retry").Kv("from_revision", next_revision_).Err(why);
    return;
  }
  healthy_ = false;
  broken_since_ = absl::Now();
  logging::Warning("etcd_watch_broken")
      .Kv("prefix", options_.prefix)
      .Kv("resume_revision", next_revision_)
      .Err(why);
  listener_->OnFeedHealth(why);
}

void EtcdWatch::Run() {
  const size_t n = options_.endpoints.size();
  size_t endpoint = 0;
  absl::Duration backoff = options_.initial_backoff;
  bool resync = false;
  while (!stopped()) {
    absl::Status why;
    if (resync) {
      absl::StatusOr<int64_t> loaded = listener_->OnResync();
      if (loaded.ok()) {
        resync = false;
        next_revision_ = *loaded + 1;
        logging::Info("etcd_watch_resynced").Kv("prefix", options_.prefix).Kv("revision", *loaded);
      } else {
        why = absl::Status(loaded.status().code(), absl::StrCat("re-listing after compaction: ",
                                                                loaded.status().message()));
      }
    }
    if (!resync) {
      const StreamEnd end = RunStream(endpoint, &why);
      if (end == StreamEnd::kStopped) break;
      if (end == StreamEnd::kCompacted) {
        // Re-list at once; the listener's data is stale until that worked.
        resync = true;
        MarkBroken(why);
        continue;
      }
      // A stream that worked for a while starts the next outage with a short backoff.
      if (healthy_) backoff = options_.initial_backoff;
    }
    MarkBroken(why);
    endpoint = (endpoint + 1) % n;
    if (!SleepUnlessStopped(backoff)) break;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

EtcdWatch::StreamEnd EtcdWatch::RunStream(size_t i, absl::Status* why) {
  const auto& [address, channel] = options_.endpoints[i];
  grpc::ClientContext ctx;
  // etcd cancels the watch when this member has no leader (etcd's WithRequireLeader).
  ctx.AddMetadata("hasleader", "true");
  {
    absl::MutexLock l(&mu_);
    if (stop_) return StreamEnd::kStopped;
    active_ = &ctx;
  }
  auto stub = pb::Watch::NewStub(channel);
  EtcdWatchStream stream(stub.get(), &ctx);
  pb::WatchRequest req;
  pb::WatchCreateRequest* create = req.mutable_create_request();
  create->set_key(options_.prefix);
  create->set_range_end(range_end_);
  create->set_start_revision(next_revision_);
  StreamEnd end = StreamEnd::kBroken;
  pb::WatchResponse resp;
  std::vector<SharedStore::Change> changes;
  if (stream.Write(req)) {
    while (stream.Read(&resp)) {
      if (resp.compact_revision() != 0) {
        *why = absl::OutOfRangeError(absl::StrCat("etcd compacted revision ", next_revision_,
                                                  " away (compacted up to ",
                                                  resp.compact_revision(), "): re-listing"));
        end = StreamEnd::kCompacted;
        break;
      }
      if (resp.canceled()) {
        *why = absl::UnavailableError(
            absl::StrCat("etcd at ", address, " canceled the watch: ", resp.cancel_reason()));
        break;
      }
      if (resp.created()) {
        MarkHealthy();
        continue;
      }
      if (resp.events_size() == 0) continue;  // progress notification
      changes.clear();
      changes.reserve(static_cast<size_t>(resp.events_size()));
      for (const auto& ev : resp.events()) {
        const std::string& key = ev.kv().key();
        if (key.size() < options_.prefix.size()) continue;  // cannot happen: prefix range
        SharedStore::Change c;
        c.deleted = ev.type() == ::mvccpb::Event::DELETE;
        c.name = key.substr(options_.prefix.size());
        if (!c.deleted) c.value = ev.kv().value();
        c.revision = ev.kv().mod_revision();
        changes.push_back(std::move(c));
      }
      listener_->OnChanges(changes);
      // etcd never splits one revision's events across responses (without fragment).
      next_revision_ = changes.back().revision + 1;
    }
  }
  ctx.TryCancel();
  grpc::Status s = stream.Finish();
  {
    absl::MutexLock l(&mu_);
    active_ = nullptr;
    if (stop_) return StreamEnd::kStopped;
  }
  if (end == StreamEnd::kBroken && why->ok()) {
    *why = absl::UnavailableError(absl::StrCat(
        "etcd watch at ", address, " ended: ", s.ok() ? "closed by etcd" : s.error_message()));
  }
  return end;
}

}  // namespace lrsched
