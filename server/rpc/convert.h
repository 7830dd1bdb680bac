// Copyright lrsched authors.
//
// Conversions at the gRPC edge: registry results into API messages, proto maps into Labels,
// and absl::Status into grpc::Status (the codes are numerically the same; the message is kept).
#ifndef LRSCHED_SERVER_CONVERT_H_
#define LRSCHED_SERVER_CONVERT_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/map.h"
#include "google/protobuf/timestamp.pb.h"
#include "grpcpp/support/status.h"
#include "lrsched/v1/lrsched.pb.h"
#include "scheduler/amendment.h"
#include "server/registry/registry.h"
#include "server/registry/session.h"

namespace lrsched {

grpc::Status ToGrpc(const absl::Status& s);

void ToProto(absl::Time t, google::protobuf::Timestamp* out);
void ToProto(const GroupValue& g, v1::GroupValues* out);
void ToProto(const SessionSnapshot& s, v1::Session* out);
// An amendment as recorded: the engine's fields and the server's meta (amendment_meta.h).
void ToProto(const Amendment& a, v1::Amendment* out);
void ToProto(const EpochGroups& e, v1::EpochValues* out);
void ToProto(const ServedEpoch& e, v1::EpochValues* out);

Labels FromProto(const google::protobuf::Map<std::string, std::string>& labels);

}  // namespace lrsched

#endif  // LRSCHED_SERVER_CONVERT_H_
