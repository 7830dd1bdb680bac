// Copyright lrsched authors.
#include "server/rpc/convert.h"

namespace lrsched {

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(static_cast<int>(s.code())),
                      std::string(s.message()));
}

void ToProto(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t secs = absl::ToUnixSeconds(t);
  out->set_seconds(secs);
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(secs))));
}

void ToProto(const GroupValue& g, v1::GroupValues* out) {
  out->set_lr(g.lr);
  if (g.momentum) out->set_momentum(*g.momentum);
  if (g.weight_decay) out->set_weight_decay(*g.weight_decay);
}

void ToProto(const SessionSnapshot& s, v1::Session* out) {
  out->set_name(s.meta.name);
  out->set_spec_json(s.spec_json);
  auto* labels = out->mutable_labels();
  for (const auto& [k, v] : s.meta.labels) (*labels)[k] = v;
  out->set_last_epoch(s.last_epoch);
  out->mutable_groups()->Reserve(static_cast<int>(s.groups.size()));
  for (const GroupValue& g : s.groups) ToProto(g, out->add_groups());
  out->set_scheduler_type(s.scheduler_type);
  out->set_deterministic(s.deterministic);
  out->set_revision(s.meta.revision);
  ToProto(s.meta.create_time, out->mutable_create_time());
  ToProto(s.meta.update_time, out->mutable_update_time());
}

Labels FromProto(const google::protobuf::Map<std::string, std::string>& labels) {
  return Labels(labels.begin(), labels.end());
}

}  // namespace lrsched
