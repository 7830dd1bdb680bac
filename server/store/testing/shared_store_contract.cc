// Copyright lrsched authors.
//
// The SharedStore capability's contract (shared_store.h), SharedStoreContractTest: see
// store_contract.h. A store other processes write too answers shared() with itself, reads one
// record as stored now, remembers where its last LoadAll read, and feeds every later change in
// commit order.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "server/store/testing/store_contract.h"

namespace lrsched::store_contract {

void SharedStoreContractTest::SetUp() {
  StoreContractTest::SetUp();
  if (IsSkipped() || HasFatalFailure()) return;
  shared_ = store_->shared();
  ASSERT_NE(shared_, nullptr) << GetParam().name << " is not a SharedStore";
}

namespace {

// Polls `cond` every millisecond until it holds (true) or 10 s have passed (false).
template <typename Cond>
bool WaitFor(Cond cond) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Records what a feed reports.
class Recorder final : public SharedStore::ChangeListener {
 public:
  void OnChanges(const std::vector<SharedStore::Change>& changes) override {
    absl::MutexLock l(&mu_);
    for (const auto& c : changes) seen_.push_back(c);
  }
  absl::StatusOr<int64_t> OnResync() override { return absl::UnimplementedError("not here"); }
  void OnFeedHealth(const absl::Status&) override {}
  std::vector<SharedStore::Change> seen() const {
    absl::MutexLock l(&mu_);
    return seen_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<SharedStore::Change> seen_;
};

TEST_P(SharedStoreContractTest, SharedAnswersWithItself) {
  EXPECT_EQ(static_cast<Store*>(shared_), store_.get());
  EXPECT_EQ(store_->shared(), shared_);  // the answer does not change
}

TEST_P(SharedStoreContractTest, ReadSeesWhatWasCommitted) {
  absl::StatusOr<SharedStore::ReadResult> none = shared_->Read("k");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->found);
  absl::StatusOr<int64_t> r1 = store_->Commit(Put("k", std::string("v\0 1", 4), 0));
  ASSERT_TRUE(r1.ok()) << r1.status();
  absl::StatusOr<SharedStore::ReadResult> got = shared_->Read("k");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->found);
  EXPECT_EQ(got->value, std::string("v\0 1", 4));
  EXPECT_EQ(got->revision, *r1);
  EXPECT_GE(got->read_revision, *r1);
  // The revision Read reports is the one compare-and-swap takes.
  absl::StatusOr<int64_t> r2 = store_->Commit(Put("k", "v2", got->revision));
  ASSERT_TRUE(r2.ok()) << r2.status();
  absl::StatusOr<int64_t> gone = store_->Commit(Del("k", *r2));
  ASSERT_TRUE(gone.ok()) << gone.status();
  got = shared_->Read("k");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->found);
  EXPECT_GE(got->read_revision, *r2);  // the read saw the store after the put it replaced
}

TEST_P(SharedStoreContractTest, LoadAllRemembersTheRevisionItReadAt) {
  absl::StatusOr<int64_t> ra = store_->Commit(Put("a", "1"));
  ASSERT_TRUE(ra.ok()) << ra.status();
  absl::StatusOr<int64_t> rb = store_->Commit(Put("b", "2"));
  ASSERT_TRUE(rb.ok()) << rb.status();
  ASSERT_EQ(Load(*store_).size(), 2u);
  const int64_t at = shared_->last_load_revision();
  EXPECT_GE(at, std::max(*ra, *rb));
  absl::StatusOr<SharedStore::ReadResult> read = shared_->Read("b");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_GE(read->read_revision, at);
}

TEST_P(SharedStoreContractTest, FeedReportsPutsAndDeletesInOrder) {
  ASSERT_TRUE(store_->Commit(Put("before", "not reported")).ok());
  ASSERT_TRUE(Load(*store_).size() == 1u);
  Recorder rec;
  auto sub = shared_->Subscribe(shared_->last_load_revision(), &rec);
  ASSERT_TRUE(sub.ok()) << sub.status();
  absl::StatusOr<int64_t> r1 = store_->Commit(Put("x", "one", 0));
  ASSERT_TRUE(r1.ok()) << r1.status();
  absl::StatusOr<int64_t> r2 = store_->Commit(Put("x", "two", *r1));
  ASSERT_TRUE(r2.ok()) << r2.status();
  absl::StatusOr<int64_t> r3 = store_->Commit(Del("x", *r2));
  ASSERT_TRUE(r3.ok()) << r3.status();
  ASSERT_TRUE(WaitFor([&] { return rec.seen().size() >= 3; }));
  std::vector<SharedStore::Change> seen = rec.seen();
  ASSERT_EQ(seen.size(), 3u);  // nothing from before the starting revision
  EXPECT_EQ(seen[0].name, "x");
  EXPECT_FALSE(seen[0].deleted);
  EXPECT_EQ(seen[0].value, "one");
  EXPECT_EQ(seen[0].revision, *r1);
  EXPECT_EQ(seen[1].value, "two");
  EXPECT_EQ(seen[1].revision, *r2);
  EXPECT_TRUE(seen[2].deleted);
  EXPECT_EQ(seen[2].name, "x");
  EXPECT_EQ(seen[2].revision, *r3);
  sub->reset();  // stops the feed: no call after this
  store_->Close();
}

}  // namespace
}  // namespace lrsched::store_contract
