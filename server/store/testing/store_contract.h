// Copyright lrsched authors.
//
// The Store contract as GoogleTest suites, one per capability, run unchanged against every
// backend:
//   StoreContractTest        the core (store.h): commit, compare-and-swap, load, close,
//                            CommitAsync; every store must pass it;
//   SharedStoreContractTest  the SharedStore capability (shared_store.h): shared(), Read,
//                            last_load_revision, the change feed; for stores that have it.
// A backend's test instantiates them with a StoreBackendFactory (tests/store/ does, for SQLite,
// etcd and the in-memory fake):
//   INSTANTIATE_TEST_SUITE_P(Backends, StoreContractTest, ::testing::Values(MyFactory()),
//                            StoreBackendName);
// Revisions are compared only as the contract defines them (they grow with every mutation of a
// key; compare-and-swap on them), since SQLite counts per key and etcd uses its global
// mod_revision. Backend-specific behaviour is each backend's own tests.
#ifndef LRSCHED_SERVER_STORE_TESTING_STORE_CONTRACT_H_
#define LRSCHED_SERVER_STORE_TESTING_STORE_CONTRACT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "server/store/shared_store.h"
#include "server/store/store.h"
#include "server/store/testing/store_rows.h"

namespace lrsched::store_contract {

// Opens stores of one backend on one place (a directory; an etcd prefix), again and again: a
// store opened after another was closed sees what that one committed.
class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  // A new store on the place; nullptr (after a failed expectation saying why) if it cannot.
  virtual std::unique_ptr<Store> Open() = 0;
};

// How a suite gets a fresh backend (a fresh place) for each test.
struct StoreBackendFactory {
  std::string name;  // the parameter's name in test names: [A-Za-z0-9_]
  // A new backend on a fresh place; nullptr (after a failed expectation) if it cannot start.
  std::function<std::unique_ptr<StoreBackend>()> make;
  // Optional: a non-empty answer skips the test with it (e.g. the etcd binary is missing).
  std::function<std::string()> skip_reason;
};

// For INSTANTIATE_TEST_SUITE_P's name generator, and gtest's printing of a parameter.
std::string StoreBackendName(const ::testing::TestParamInfo<StoreBackendFactory>& info);
void PrintTo(const StoreBackendFactory& factory, std::ostream* os);

using store_rows::Del;
using store_rows::Load;
using store_rows::LoadMap;
using store_rows::Put;
using store_rows::Row;

// The core. Each test gets a fresh backend and a store opened on it.
class StoreContractTest : public ::testing::TestWithParam<StoreBackendFactory> {
 protected:
  void SetUp() override;

  std::unique_ptr<StoreBackend> backend_;
  std::unique_ptr<Store> store_;
};

// The SharedStore capability. SetUp fails the test if the store's shared() is nullptr: a
// backend is instantiated here only if it has the capability.
class SharedStoreContractTest : public StoreContractTest {
 protected:
  void SetUp() override;

  SharedStore* shared_ = nullptr;  // store_->shared()
};

}  // namespace lrsched::store_contract

#endif  // LRSCHED_SERVER_STORE_TESTING_STORE_CONTRACT_H_
