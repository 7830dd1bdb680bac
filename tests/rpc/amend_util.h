// Copyright lrsched authors.
//
// Helpers for the AmendSession/GetHistory tests: requests in one line, and the values the
// engine itself gives for a spec and its amendments (the engine is checked against real torch
// in tests/scheduler/amend_test.cc; these tests check that the server serves exactly that).
#ifndef LRSCHED_TESTS_RPC_AMEND_UTIL_H_
#define LRSCHED_TESTS_RPC_AMEND_UTIL_H_

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lrsched/v1/lrsched.grpc.pb.h"
#include "scheduler/schedule.h"
#include "tests/rpc/server_harness.h"

namespace lrsched::test_support {

inline v1::AmendSessionRequest ScaleReq(const std::string& name, double factor,
                                        std::optional<int64_t> at_epoch = std::nullopt) {
  v1::AmendSessionRequest r;
  r.set_name(name);
  r.mutable_scale()->set_factor(factor);
  if (at_epoch) r.set_at_epoch(*at_epoch);
  r.set_reason("test scale");
  return r;
}

inline v1::AmendSessionRequest ContinueReq(const std::string& name, const std::string& spec,
                                           std::optional<int64_t> at_epoch = std::nullopt) {
  v1::AmendSessionRequest r;
  r.set_name(name);
  r.set_continue_with_json(spec);
  if (at_epoch) r.set_at_epoch(*at_epoch);
  r.set_reason("test continue_with");
  return r;
}

inline grpc::Status Amend(v1::LrScheduler::Stub& stub, const v1::AmendSessionRequest& req,
                          v1::AmendSessionResponse* out = nullptr) {
  v1::AmendSessionResponse ignored;
  return stub.AmendSession(Ctx().get(), req, out != nullptr ? out : &ignored);
}

inline std::vector<double> Lrs(const v1::Session& s) {
  std::vector<double> out;
  for (const auto& g : s.groups()) out.push_back(g.lr());
  return out;
}

inline std::vector<double> Lrs(const Schedule& s) {
  std::vector<double> out;
  for (const ParamGroup& g : s.param_groups()) out.push_back(g.lr);
  return out;
}

// A local schedule of `spec`, for the expected values.
inline std::unique_ptr<Schedule> Local(const std::string& spec) {
  auto j = ParseJson(spec, "spec");
  EXPECT_TRUE(j.ok()) << j.status();
  auto s = Schedule::Create(*j);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

inline Amendment LocalAmendment(Amendment::Kind kind, const nlohmann::json& args,
                                int64_t at_epoch) {
  Amendment a;
  a.kind = kind;
  a.args = args;
  a.at_epoch = at_epoch;
  return a;
}

}  // namespace lrsched::test_support

#endif  // LRSCHED_TESTS_RPC_AMEND_UTIL_H_
