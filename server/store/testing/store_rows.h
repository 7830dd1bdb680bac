// Copyright lrsched authors.
//
// Small builders and readers for tests of any Store: Put/Del mutations, and what LoadAll returns
// as rows or as a map (name -> value, revision). Header-only, so both the contract suites
// (store_contract.h) and a backend's own tests (tests/store/sqlite/) use the same ones.
#ifndef LRSCHED_SERVER_STORE_TESTING_STORE_ROWS_H_
#define LRSCHED_SERVER_STORE_TESTING_STORE_ROWS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "server/store/store.h"

namespace lrsched::store_rows {

inline Mutation Put(std::string name, std::string value, std::optional<int64_t> expected = {}) {
  Mutation m;
  m.kind = Mutation::Kind::kPut;
  m.name = std::move(name);
  m.value = std::move(value);
  m.expected_revision = expected;
  return m;
}

inline Mutation Del(std::string name, std::optional<int64_t> expected = {}) {
  Mutation m;
  m.kind = Mutation::Kind::kDelete;
  m.name = std::move(name);
  m.expected_revision = expected;
  return m;
}

using Row = std::tuple<std::string, std::string, int64_t>;  // name, value, revision

// LoadAll into rows, expecting OK.
inline std::vector<Row> Load(Store& store) {
  std::vector<Row> rows;
  absl::Status s = store.LoadAll([&](std::string_view n, std::string_view v, int64_t r) {
    rows.emplace_back(std::string(n), std::string(v), r);
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return rows;
}

inline std::map<std::string, std::pair<std::string, int64_t>> LoadMap(Store& store) {
  std::map<std::string, std::pair<std::string, int64_t>> m;
  for (auto& [n, v, r] : Load(store)) m[n] = {v, r};
  return m;
}

}  // namespace lrsched::store_rows

#endif  // LRSCHED_SERVER_STORE_TESTING_STORE_ROWS_H_
