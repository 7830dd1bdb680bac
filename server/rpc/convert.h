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
#include "server/registry/session.h"

namespace lrsched {

grpc::Status ToGrpc(const absl::Status& s);

void ToProto(absl::Time t, google::protobuf::Timestamp* out);
void ToProto(const GroupValue& g, v1::GroupValues* out);
void ToProto(const SessionSnapshot& s, v1::Session* out);

Labels FromProto(const google::protobuf::Map<std::string, std::string>& labels);

}  // namespace lrsched

#endif  // LRSCHED_SERVER_CONVERT_H_
