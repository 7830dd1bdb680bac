// Copyright lrsched authors.
//
// RemoteSchedule: a server session seen from a trainer's loop, shaped like a torch scheduler.
//
//   auto sched = lrsched::RemoteSchedule::Attach(client, "run1/lr", {});  // owner, K = 64
//   for (...) { train(sched.value()->lr(0)); sched.value()->Step(); }
//
// Two roles (Options::follow):
// - owner (default): Step() is one Step RPC each time, with if_epoch = the epoch this object
//   knows, so the session advances durably and a retry (or N ranks stepping from the same
//   epoch) steps it exactly once. The reply carries the new values, so lr()/momentum() cost no
//   RPC at all.
// - follower (ranks that read but do not step): Step() makes no Step RPC; it moves to the next
//   epoch and serves lr()/momentum() from a lookahead window fetched with GetLR(window = K),
//   one RPC per K steps. The window holds the session's exact values (computed by the server's
//   engine), so every rank sees the same bits. Followers assume plain step() calls (no
//   step(epoch)) for deterministic schedules. A follower may run ahead of the session (it
//   reads lookahead values; more than K ahead costs one GetLR per step); one behind it reads
//   the epoch from the session's record (GetHistory), and one the record no longer has
//   (before an import) fails FAILED_PRECONDITION.
// For ReduceLROnPlateau (deterministic = false) there is no lookahead: an owner steps with the
// metric as before; a follower reads the current values with one GetLR per Step().
// Followers count one epoch per Step(): a megatron.OptimizerParamScheduler session whose spec
// increment is not 1 advances its last_epoch (num_steps) by that, so follow only owners there.
//
// Amendments (AmendSession) change the values of epochs a follower may already hold in its
// window. Every GetLR reply carries the schedule_revision its values were computed with; a
// window is never used once the follower knows of a newer schedule_revision: from any reply,
// or from the Watch stream a follower keeps open in a background thread (Options::watch), which
// reports an amendment as soon as it lands. So a window computed before an amendment is
// dropped, and refetched, before the follower serves an epoch the amendment applies to; the
// only delay is the Watch's delivery (milliseconds), the same as any rank's view of the
// session.
//
// Invariant: values() always belong to epoch(); window_ is only used while no newer
// schedule_revision than window_.schedule_revision() is known. Not thread-safe (one per loop;
// the watch thread only writes an atomic); the Client must outlive it.
#ifndef LRSCHED_CLIENT_REMOTE_SCHEDULE_H_
#define LRSCHED_CLIENT_REMOTE_SCHEDULE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "client/client.h"

namespace lrsched {

class RemoteSchedule {
 public:
  struct Options {
    int32_t window = 64;  // K: epochs per GetLR for followers (1..10000)
    bool follow = false;
    // Follower of a deterministic session: watch it (one stream, a background thread) to learn
    // of amendments between two GetLR calls. Without it, a window is only dropped when a later
    // reply shows a new schedule_revision, so a follower may serve up to K stale epochs.
    bool watch = true;
  };
  ~RemoteSchedule();
  RemoteSchedule(const RemoteSchedule&) = delete;
  RemoteSchedule& operator=(const RemoteSchedule&) = delete;

  // Reads the session once (GetSession).
  static absl::StatusOr<std::unique_ptr<RemoteSchedule>> Attach(Client* client,
                                                                const std::string& name,
                                                                const Options& options);

  // scheduler.step() / step(metric). Owner: one Step RPC (if_epoch = epoch()); if another
  // rank already stepped from this epoch, this adopts the session's state (not stepping
  // twice). Follower: see above. On error nothing changes.
  absl::Status Step(std::optional<double> metric = std::nullopt);

  double lr(size_t group = 0) const { return values_.at(group).lr(); }
  // betas[0] / momentum; nullopt for optimizers without either.
  std::optional<double> momentum(size_t group = 0) const;
  // weight_decay where the schedule drives it (Megatron's); nullopt for torch's types.
  std::optional<double> weight_decay(size_t group = 0) const;
  const std::vector<v1::GroupValues>& values() const { return values_; }
  int64_t epoch() const { return epoch_; }
  bool deterministic() const { return deterministic_; }
  const std::string& name() const { return name_; }
  // The newest schedule_revision this object knows of (replies and the follower's watch).
  int64_t schedule_revision() const { return known_revision_.load(); }
  // Follower: GetLR calls made to fill windows (one per K steps; more after amendments).
  int64_t window_fetches() const { return window_fetches_; }

 private:
  RemoteSchedule(Client* client, std::string name, Options options)
      : client_(client), name_(std::move(name)), options_(options) {}
  // Follower: values for epoch `e` from the window, fetching a new one when `e` is outside.
  absl::Status LoadFromWindow(int64_t e);
  // Records a schedule_revision seen in a reply or on the watch (keeps the newest).
  void Know(int64_t schedule_revision);
  void StartWatch();

  Client* client_;
  std::string name_;
  Options options_;
  bool deterministic_ = true;
  int64_t epoch_ = 0;
  std::vector<v1::GroupValues> values_;
  v1::GetLRResponse window_;  // follower's current window (epochs window_[0].epoch ...)
  std::atomic<int64_t> known_revision_{0};
  int64_t window_fetches_ = 0;
  WatchCanceller watch_cancel_;
  std::thread watch_thread_;
};

}  // namespace lrsched

#endif  // LRSCHED_CLIENT_REMOTE_SCHEDULE_H_
