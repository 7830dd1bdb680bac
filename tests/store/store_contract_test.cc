// Copyright lrsched authors.
//
// The Store contract suites (server/store/testing/store_contract.h), instantiated for every
// backend by capability: the core (StoreContractTest) for SqliteStore (synchronous FULL and
// NORMAL, each with its journal, the default, and without), EtcdStore and the in-memory fake; the
// SharedStore capability (SharedStoreContractTest) for EtcdStore, the one store other processes
// write too. etcd runs as a real single-member cluster started per test on free 127.0.0.1 ports
// (skipped with a message when the etcd binary is missing). SQLite-specific behaviour (exact
// revision numbers, group commit, files): sqlite/store_test.cc.
#include "server/store/testing/store_contract.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/store/etcd/etcd_store.h"
#include "server/store/sqlite/sqlite_store.h"
#include "server/store/testing/memory_store.h"
#include "tests/store/etcd/etcd_cluster.h"
#include "tests/store/sqlite/store_test_util.h"

namespace lrsched::store_contract {
namespace {

// synchronous=FULL commits every CommitAsync on the committer thread; NORMAL lets its caller
// write when nobody else is: the contract must hold on both paths.
class SqliteBackend final : public StoreBackend {
 public:
  SqliteBackend(SqliteStore::Options::Synchronous sync, bool journal)
      : sync_(sync), journal_(journal) {}
  std::unique_ptr<Store> Open() override {
    SqliteStore::Options o = store_test::Opts(dir_);
    o.synchronous = sync_;
    o.journal = journal_;
    return store_test::MustOpen(o);
  }

 private:
  const SqliteStore::Options::Synchronous sync_;
  const bool journal_;
  store_test::TempDir dir_;
};

StoreBackendFactory Sqlite(std::string name, SqliteStore::Options::Synchronous sync, bool journal) {
  return {std::move(name),
          [sync, journal] { return std::make_unique<SqliteBackend>(sync, journal); }, nullptr};
}

class EtcdBackend final : public StoreBackend {
 public:
  absl::Status Start() { return etcd_.Start(1); }
  std::unique_ptr<Store> Open() override {
    EtcdStore::Options o;
    o.endpoints = {etcd_.endpoint(0)};
    o.prefix = "/lrsched-contract/";
    absl::StatusOr<std::unique_ptr<EtcdStore>> s = EtcdStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

 private:
  test_support::EtcdCluster etcd_;
};

StoreBackendFactory Etcd() {
  return {"etcd",
          []() -> std::unique_ptr<StoreBackend> {
            auto etcd = std::make_unique<EtcdBackend>();
            absl::Status s = etcd->Start();
            EXPECT_TRUE(s.ok()) << s;
            return s.ok() ? std::move(etcd) : nullptr;
          },
          [] {
            return test_support::EtcdCluster::Available()
                       ? std::string()
                       : "etcd binary not found (apt-get install etcd-server, or set ETCD_BIN)";
          }};
}

// The in-memory fake: one MemoryStore per backend. Each Open reopens it, as a server restarted
// on the same data, behind a handle whose Close closes it.
class MemoryBackend final : public StoreBackend {
 public:
  std::unique_ptr<Store> Open() override {
    memory_.Reopen();
    return std::make_unique<Handle>(&memory_);
  }

 private:
  class Handle final : public Store {
   public:
    explicit Handle(MemoryStore* memory) : memory_(memory) {}
    absl::StatusOr<int64_t> Commit(const Mutation& m) override { return memory_->Commit(m); }
    absl::Status LoadAll(const std::function<absl::Status(std::string_view, std::string_view,
                                                          int64_t)>& fn) override {
      return memory_->LoadAll(fn);
    }
    void Close() override { memory_->Close(); }
    Stats stats() const override { return memory_->stats(); }

   private:
    MemoryStore* const memory_;
  };
  MemoryStore memory_;
};

StoreBackendFactory Memory() {
  return {"memory", [] { return std::make_unique<MemoryBackend>(); }, nullptr};
}

INSTANTIATE_TEST_SUITE_P(
    Backends, StoreContractTest,
    ::testing::Values(Sqlite("sqlite", SqliteStore::Options::Synchronous::kFull, true),
                      Sqlite("sqlite_normal", SqliteStore::Options::Synchronous::kNormal, true),
                      Sqlite("sqlite_nojournal", SqliteStore::Options::Synchronous::kFull, false),
                      Sqlite("sqlite_nojournal_normal", SqliteStore::Options::Synchronous::kNormal,
                             false),
                      Etcd(), Memory()),
    StoreBackendName);

INSTANTIATE_TEST_SUITE_P(Backends, SharedStoreContractTest, ::testing::Values(Etcd()),
                         StoreBackendName);

// The capability query's other answer: stores this process alone writes are not shared.
TEST(StoreCapabilityTest, SqliteAndMemoryStoresAreNotShared) {
  store_test::TempDir dir;
  std::unique_ptr<SqliteStore> sqlite = store_test::MustOpen(store_test::Opts(dir));
  ASSERT_NE(sqlite, nullptr);
  EXPECT_EQ(sqlite->shared(), nullptr);
  MemoryStore memory;
  EXPECT_EQ(memory.shared(), nullptr);
}

}  // namespace
}  // namespace lrsched::store_contract
