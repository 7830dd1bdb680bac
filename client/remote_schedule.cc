// Copyright lrsched authors.
#include "client/remote_schedule.h"

#include "absl/strings/str_cat.h"

namespace lrsched {
namespace {

std::vector<v1::GroupValues> Groups(const google::protobuf::RepeatedPtrField<v1::GroupValues>& g) {
  return std::vector<v1::GroupValues>(g.begin(), g.end());
}

}  // namespace

absl::StatusOr<std::unique_ptr<RemoteSchedule>> RemoteSchedule::Attach(Client* client,
                                                                       const std::string& name,
                                                                       const Options& options) {
  if (options.window < 1 || options.window > 10000) {
    return absl::InvalidArgumentError("RemoteSchedule: window must be in 1..10000");
  }
  auto s = client->GetSession(name);
  if (!s.ok()) return s.status();
  std::unique_ptr<RemoteSchedule> r(new RemoteSchedule(client, name, options));
  r->deterministic_ = s->deterministic();
  r->epoch_ = s->last_epoch();
  r->values_ = Groups(s->groups());
  r->Know(s->schedule_revision());
  if (options.follow && options.watch && s->deterministic()) r->StartWatch();
  return r;
}

RemoteSchedule::~RemoteSchedule() {
  watch_cancel_.Cancel();
  if (watch_thread_.joinable()) watch_thread_.join();
}

void RemoteSchedule::Know(int64_t schedule_revision) {
  int64_t known = known_revision_.load();
  while (schedule_revision > known &&
         !known_revision_.compare_exchange_weak(known, schedule_revision)) {
  }
}

void RemoteSchedule::StartWatch() {
  watch_thread_ = std::thread([this] {
    // Ends when the destructor cancels it, or the session is deleted (the next GetLR then
    // reports NOT_FOUND); a broken stream is resubscribed by Client::Watch.
    auto know = [this](const v1::Session& s) {
      Know(s.schedule_revision());
      return true;
    };
    client_->Watch(name_, know, &watch_cancel_, /*definition_changes_only=*/true).IgnoreError();
  });
}

std::optional<double> RemoteSchedule::weight_decay(size_t group) const {
  const v1::GroupValues& g = values_.at(group);
  if (!g.has_weight_decay()) return std::nullopt;
  return g.weight_decay();
}

std::optional<double> RemoteSchedule::momentum(size_t group) const {
  const v1::GroupValues& g = values_.at(group);
  if (!g.has_momentum()) return std::nullopt;
  return g.momentum();
}

absl::Status RemoteSchedule::LoadFromWindow(int64_t e) {
  auto in_window = [&]() -> const v1::EpochValues* {
    if (window_.window_size() == 0) return nullptr;
    int64_t i = e - window_.window(0).epoch();
    if (i < 0 || i >= window_.window_size()) return nullptr;
    return &window_.window(static_cast<int>(i));
  };
  // A window computed before an amendment this object knows of is never served.
  if (window_.window_size() > 0 && window_.schedule_revision() < known_revision_.load()) {
    window_.clear_window();
  }
  const v1::EpochValues* v = in_window();
  if (v == nullptr) {
    // The window starts at the session's current epoch; a follower ahead of the owner asks
    // for the values `ahead` of it. Lookahead is exact for plain steps.
    auto r = client_->GetLR(name_, 0, options_.window);
    if (!r.ok()) return r.status();
    ++window_fetches_;
    window_ = *std::move(r);
    Know(window_.schedule_revision());
    v = in_window();
    if (v == nullptr && e > window_.last_epoch()) {
      // More than K epochs ahead of the session (nobody steps it): the window cannot shift,
      // so ask for this epoch alone.
      auto one = client_->GetLR(name_, e - window_.last_epoch(), 0);
      if (!one.ok()) return one.status();
      Know(one->schedule_revision());
      values_ = Groups(one->groups());
      epoch_ = e;
      return absl::OkStatus();
    }
    if (v == nullptr && e < window_.last_epoch()) {
      // Behind the session (its window was dropped after an amendment while the owner stepped
      // on): past epochs are final, so the record has them.
      auto past = client_->History(name_, e, e);
      if (past.ok() && past->epochs_size() == 1 && past->epochs(0).epoch() == e) {
        values_ = Groups(past->epochs(0).groups());
        epoch_ = e;
        return absl::OkStatus();
      }
    }
    if (v == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "session ", name_, " is at epoch ", window_.last_epoch(), ", follower behind at ", e));
    }
  }
  values_ = Groups(v->groups());
  epoch_ = e;
  return absl::OkStatus();
}

absl::Status RemoteSchedule::Step(std::optional<double> metric) {
  if (options_.follow) {
    if (deterministic_) return LoadFromWindow(epoch_ + 1);
    // No lookahead: the session's current values, whoever steps it.
    auto r = client_->GetLR(name_);
    if (!r.ok()) return r.status();
    Know(r->schedule_revision());
    values_ = Groups(r->groups());
    epoch_ = r->last_epoch();
    return absl::OkStatus();
  }
  StepArgs args;
  args.metric = metric;
  args.if_epoch = epoch_;
  auto r = client_->Step(name_, args);
  if (!r.ok()) return r.status();
  Know(r->session().schedule_revision());
  values_ = Groups(r->session().groups());
  epoch_ = r->session().last_epoch();
  return absl::OkStatus();
}

}  // namespace lrsched
