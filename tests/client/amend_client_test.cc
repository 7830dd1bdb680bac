// Copyright lrsched authors.
//
// Issue #18 from the C++ client's side, against an in-process server: Client::Amend (dry run
// and real), GetHistory's pages merged by History, and RemoteSchedule followers that hold
// lookahead windows while an amendment lands: no rank serves a value computed before it for
// an epoch it applies to.
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "client/remote_schedule.h"
#include "gtest/gtest.h"
#include "scheduler/schedule.h"
#include "tests/rpc/server_harness.h"

namespace lrsched {
namespace {

using test_support::Eventually;
using test_support::kCosineSpec;
using test_support::ServerHarness;
using test_support::StoreKind;

// A long cosine (two groups, momentum on the first): values change every epoch.
constexpr const char* kLongCosine =
    R"({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}, )"
    R"({"lr": 0.2}]}, "scheduler": {"type": "CosineAnnealingLR", "T_max": 400}})";

ClientOptions FastOptions(const std::string& address) {
  ClientOptions o;
  o.server = address;
  o.timeout = absl::Seconds(10);
  o.initial_backoff = absl::Milliseconds(50);
  o.max_backoff = absl::Milliseconds(400);
  return o;
}

v1::AmendSessionRequest Scale(const std::string& name, double factor, int64_t at_epoch,
                              const std::string& reason) {
  v1::AmendSessionRequest r;
  r.set_name(name);
  r.mutable_scale()->set_factor(factor);
  r.set_at_epoch(at_epoch);
  r.set_reason(reason);
  return r;
}

class AmendClientTest : public ::testing::Test {
 protected:
  AmendClientTest() : harness_(StoreKind::kMemory) {
    auto c = Client::Connect(FastOptions(harness_.address()));
    EXPECT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }
  std::unique_ptr<Client> NewClient() { return *Client::Connect(FastOptions(harness_.address())); }
  ServerHarness harness_;
  std::unique_ptr<Client> client_;
};

TEST_F(AmendClientTest, DryRunThenAmendThenHistory) {
  auto local = Schedule::Create(nlohmann::json::parse(kCosineSpec));
  ASSERT_TRUE(local.ok());
  ASSERT_TRUE(client_->CreateSession("am/a", kCosineSpec, {}).ok());
  std::vector<std::vector<double>> served;  // lr per epoch, per group, as a local schedule
  for (int e = 0; e < 5; ++e) {
    served.push_back({(*local)->param_groups()[0].lr, (*local)->param_groups()[1].lr});
    ASSERT_TRUE(client_->Step("am/a", {}).ok());
    ASSERT_TRUE((*local)->Step({}).ok());
  }
  auto before = client_->GetSession("am/a");
  ASSERT_TRUE(before.ok());

  // Dry run: both futures from at_epoch, nothing changed.
  v1::AmendSessionRequest dry = Scale("am/a", 0.5, 5, "spike");
  dry.set_dry_run(true);
  dry.set_dry_run_window(4);
  auto d = client_->Amend(dry);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->current_size(), 4);
  ASSERT_EQ(d->amended_size(), 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(d->current(i).epoch(), 5 + i);
    EXPECT_EQ(d->amended(i).groups(1).lr(), d->current(i).groups(1).lr() * 0.5);
  }
  auto same = client_->GetSession("am/a");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->revision(), before->revision());
  EXPECT_EQ(same->schedule_revision(), before->schedule_revision());

  // The real one, compare-and-set on the revision: in force at once.
  v1::AmendSessionRequest real = Scale("am/a", 0.5, 5, "loss spike at 5");
  real.set_if_revision(before->revision());
  auto r = client_->Amend(real);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->amendment().kind(), "scale");
  EXPECT_TRUE(r->amendment().applied());
  EXPECT_GT(r->session().schedule_revision(), before->schedule_revision());
  EXPECT_EQ(r->session().groups(0).lr(), (*local)->param_groups()[0].lr * 0.5);
  // The same if_revision again: ABORTED (the revision moved on).
  EXPECT_EQ(client_->Amend(real).status().code(), absl::StatusCode::kAborted);
  auto lr = client_->GetLR("am/a", 0, 3);
  ASSERT_TRUE(lr.ok());
  EXPECT_EQ(lr->schedule_revision(), r->session().schedule_revision());

  for (int e = 5; e < 9; ++e) {
    served.push_back({(*local)->param_groups()[0].lr * 0.5, (*local)->param_groups()[1].lr * 0.5});
    ASSERT_TRUE(client_->Step("am/a", {}).ok());
    ASSERT_TRUE((*local)->Step({}).ok());
  }
  // The record: every epoch 0..9 reached so far; its pages (3 epochs each) are History's.
  auto h = client_->History("am/a");
  ASSERT_TRUE(h.ok()) << h.status();
  ASSERT_EQ(h->amendments_size(), 1);
  EXPECT_EQ(h->amendments(0).reason(), "loss spike at 5");
  EXPECT_EQ(h->amendments(0).at_epoch(), 5);
  EXPECT_EQ(h->first_epoch(), 0);
  ASSERT_EQ(h->epochs_size(), 10);
  for (int e = 0; e < 9; ++e) {
    EXPECT_EQ(h->epochs(e).epoch(), e);
    EXPECT_EQ(h->epochs(e).groups(0).lr(), served[e][0]) << e;
    EXPECT_EQ(h->epochs(e).groups(1).lr(), served[e][1]) << e;
  }
  v1::GetHistoryRequest page;
  page.set_name("am/a");
  page.set_page_size(3);
  std::vector<int64_t> epochs;
  for (int i = 0; i < 10; ++i) {
    auto p = client_->GetHistory(page);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_LE(p->epochs_size(), 3);
    for (const v1::EpochValues& e : p->epochs()) epochs.push_back(e.epoch());
    if (p->next_page_token().empty()) break;
    page.set_page_token(p->next_page_token());
  }
  EXPECT_EQ(epochs.size(), 10u);
  auto part = client_->History("am/a", 2, 4);
  ASSERT_TRUE(part.ok());
  ASSERT_EQ(part->epochs_size(), 3);
  EXPECT_EQ(part->epochs(0).epoch(), 2);

  // Bad input names the field; the past is never rewritten.
  EXPECT_EQ(client_->Amend(Scale("am/a", 0.5, 2, "")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto bad = client_->Amend(Scale("am/a", -1, 9, ""));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("factor"), std::string::npos) << bad.status();
  EXPECT_EQ(client_->Amend(Scale("am/none", 0.5, 0, "")).status().code(),
            absl::StatusCode::kNotFound);
}

// Followers read ahead from windows of 64 epochs; the owner steps; an operator amends while
// they run (a scale at a later epoch, then a reparameterize at the current one). Every rank
// serves, at every epoch, exactly what the owner's Step replies (the session) gave: no window
// computed before an amendment is served for an epoch it applies to.
TEST_F(AmendClientTest, NoFollowerServesAStaleCachedValueAfterAnAmendment) {
  ASSERT_TRUE(client_->CreateSession("am/follow", kLongCosine, {}).ok());
  constexpr int kFollowers = 4, kEpochs = 60;
  RemoteSchedule::Options owner_options;
  auto owner = RemoteSchedule::Attach(client_.get(), "am/follow", owner_options);
  ASSERT_TRUE(owner.ok());
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::unique_ptr<RemoteSchedule>> followers;
  RemoteSchedule::Options fo;
  fo.follow = true;
  fo.window = 64;
  for (int i = 0; i < kFollowers; ++i) {
    clients.push_back(NewClient());
    auto f = RemoteSchedule::Attach(clients.back().get(), "am/follow", fo);
    ASSERT_TRUE(f.ok());
    followers.push_back(*std::move(f));
  }
  std::vector<std::vector<double>> owner_lr(kEpochs + 1);
  std::vector<std::vector<std::vector<double>>> follower_lr(
      kFollowers, std::vector<std::vector<double>>(kEpochs + 1));
  owner_lr[0] = {(*owner)->lr(0), (*owner)->lr(1)};
  for (int i = 0; i < kFollowers; ++i) follower_lr[i][0] = owner_lr[0];

  // The operator: two amendments while the ranks step, each at an epoch the followers'
  // windows already cover.
  std::atomic<int> epoch_now{0};
  std::atomic<bool> amended{false};
  std::thread op([&] {
    auto other = NewClient();
    // At a few epochs from the session's: an operator whose at_epoch the session has passed
    // meanwhile (FAILED_PRECONDITION) picks a later one.
    auto amend = [&](v1::AmendSessionRequest req) {
      for (int attempt = 0; attempt < 5; ++attempt) {
        auto s = other->GetSession("am/follow");
        if (!s.ok()) return false;
        req.set_at_epoch(s->last_epoch() + 4);
        auto r = other->Amend(req);
        if (r.ok()) return true;
        if (r.status().code() != absl::StatusCode::kFailedPrecondition) {
          ADD_FAILURE() << r.status();
          return false;
        }
      }
      return false;
    };
    if (!Eventually([&] { return epoch_now.load() >= 10; }, absl::Seconds(60))) return;
    if (!amend(Scale("am/follow", 0.25, 0, "spike"))) return;
    if (!Eventually([&] { return epoch_now.load() >= 30; }, absl::Seconds(60))) return;
    v1::AmendSessionRequest shorter;
    shorter.set_name("am/follow");
    shorter.set_reparameterize_json(R"({"T_max": 40})");
    shorter.set_reason("shorter");
    amended = amend(shorter);
  });
  bool stepped = true;
  for (int e = 1; e <= kEpochs && stepped; ++e) {
    stepped = (*owner)->Step().ok();
    owner_lr[e] = {(*owner)->lr(0), (*owner)->lr(1)};
    for (int i = 0; i < kFollowers && stepped; ++i) {
      absl::Status s = followers[i]->Step();
      EXPECT_TRUE(s.ok()) << "follower " << i << " epoch " << e << ": " << s;
      stepped = s.ok() && followers[i]->epoch() == e;
      follower_lr[i][e] = {followers[i]->lr(0), followers[i]->lr(1)};
    }
    epoch_now = e;
    // Ranks do work between steps (a training step); the watch delivers meanwhile.
    absl::SleepFor(absl::Milliseconds(2));
  }
  epoch_now = 1 << 20;  // the operator stops waiting even if a step failed
  op.join();
  ASSERT_TRUE(stepped);
  ASSERT_TRUE(amended.load());
  for (int i = 0; i < kFollowers; ++i) {
    for (int e = 0; e <= kEpochs; ++e) {
      EXPECT_EQ(follower_lr[i][e], owner_lr[e]) << "follower " << i << " epoch " << e;
    }
    EXPECT_GT(followers[i]->schedule_revision(), 0);
    // One window at the start, and a new one after each amendment (not one per step).
    EXPECT_LE(followers[i]->window_fetches(), 6) << i;
  }
  // The record agrees with what the ranks served.
  auto h = client_->History("am/follow");
  ASSERT_TRUE(h.ok()) << h.status();
  ASSERT_EQ(h->amendments_size(), 2);
  ASSERT_EQ(h->epochs_size(), kEpochs + 1);
  for (int e = 0; e <= kEpochs; ++e) EXPECT_EQ(h->epochs(e).groups(0).lr(), owner_lr[e][0]) << e;
}

// Cancel() ends a Watch blocked on its stream, and a later Watch with it returns at once.
TEST_F(AmendClientTest, WatchCancellerStopsAWatch) {
  ASSERT_TRUE(client_->CreateSession("am/w", kCosineSpec, {}).ok());
  WatchCanceller cancel;
  std::atomic<int> seen{0};
  std::thread t([&] {
    absl::Status s = client_->Watch(
        "am/w", [&](const v1::Session&) { return ++seen, true; }, &cancel);
    EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  });
  EXPECT_TRUE(Eventually([&] { return seen.load() > 0; }));
  cancel.Cancel();
  t.join();
  EXPECT_EQ(client_
                ->Watch(
                    "am/w", [](const v1::Session&) { return true; }, &cancel)
                .code(),
            absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace lrsched
