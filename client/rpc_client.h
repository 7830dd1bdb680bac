// Copyright lrsched authors.
//
// RpcClient: the CLI's one place that talks to lrsched-server. Each method is one RPC with the
// client's deadline, returning the reply or the call's status as absl::Status (gRPC's code and
// message). A fuller `lrsched::Client` library (retries, caching) is planned; it can grow out
// of this.
#ifndef LRSCHED_CLIENT_RPC_CLIENT_H_
#define LRSCHED_CLIENT_RPC_CLIENT_H_

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "lrsched/v1/lrsched.grpc.pb.h"

namespace lrsched {

struct RpcClientOptions {
  std::string server = "127.0.0.1:50051";
  absl::Duration timeout = absl::Seconds(30);  // per call
  // TLS when ca_file is set; client certificate (mutual TLS) when cert_file/key_file are.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

class RpcClient {
 public:
  static absl::StatusOr<std::unique_ptr<RpcClient>> Connect(const RpcClientOptions& options);

  absl::StatusOr<v1::Session> CreateSession(const std::string& name, const std::string& spec_json,
                                            const std::map<std::string, std::string>& labels);
  absl::StatusOr<v1::Session> GetSession(const std::string& name);
  absl::StatusOr<v1::ListSessionsResponse> ListSessions(const std::string& name_prefix,
                                                        const std::string& page_token);
  absl::Status DeleteSession(const std::string& name);
  absl::StatusOr<v1::StepResponse> Step(const std::string& name, std::optional<double> metric,
                                        std::optional<double> epoch,
                                        std::optional<int64_t> if_epoch);
  absl::StatusOr<v1::ExportStateResponse> ExportState(const std::string& name);

 private:
  RpcClient(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout);
  void SetDeadline(grpc::ClientContext* ctx) const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::LrScheduler::Stub> stub_;
  absl::Duration timeout_;
};

}  // namespace lrsched

#endif  // LRSCHED_CLIENT_RPC_CLIENT_H_
