// Copyright lrsched authors.
#include "server/rpc/convert.h"

#include "server/registry/amendment_meta.h"

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
  out->set_schedule_revision(s.meta.schedule_revision);
  if (s.amendment) ToProto(*s.amendment, out->mutable_amendment());
}

void ToProto(const Amendment& a, v1::Amendment* out) {
  out->set_at_epoch(a.at_epoch);
  out->set_kind(std::string(AmendmentKindName(a.kind)));
  // Replacing invalid UTF-8 rather than throwing: args may come from an imported state.
  out->set_args_json(a.args.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  const AmendmentRecord rec = ReadAmendmentMeta(a.meta);
  out->set_reason(rec.reason);
  out->set_revision(rec.revision);
  ToProto(rec.time, out->mutable_time());
  out->set_caller(rec.caller);
  out->set_role(rec.role);
  out->set_applied(a.applied);
  out->mutable_jump()->Add(a.jump.begin(), a.jump.end());
}

void ToProto(const EpochGroups& e, v1::EpochValues* out) {
  out->set_epoch(e.epoch);
  out->mutable_groups()->Reserve(static_cast<int>(e.groups.size()));
  for (const GroupValue& g : e.groups) ToProto(g, out->add_groups());
}

void ToProto(const ServedEpoch& e, v1::EpochValues* out) {
  out->set_epoch(e.epoch);
  out->mutable_groups()->Reserve(static_cast<int>(e.lr.size()));
  for (size_t i = 0; i < e.lr.size(); ++i) {
    v1::GroupValues* g = out->add_groups();
    g->set_lr(e.lr[i]);
    if (i < e.momentum.size()) g->set_momentum(e.momentum[i]);
    if (i < e.weight_decay.size()) g->set_weight_decay(e.weight_decay[i]);
  }
}

Labels FromProto(const google::protobuf::Map<std::string, std::string>& labels) {
  return Labels(labels.begin(), labels.end());
}

}  // namespace lrsched
