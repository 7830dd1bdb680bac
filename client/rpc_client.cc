// Copyright lrsched authors.
#include "client/rpc_client.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace lrsched {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(static_cast<int>(s.error_code())),
                      s.error_message());
}

absl::Status ReadFile(const std::string& flag, const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<RpcClient>> RpcClient::Connect(const RpcClientOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options.ca_file.empty() && options.cert_file.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    absl::Status s;
    if (!options.ca_file.empty()) s = ReadFile("--tls_ca", options.ca_file, &ssl.pem_root_certs);
    if (s.ok() && !options.cert_file.empty()) {
      s = ReadFile("--tls_cert", options.cert_file, &ssl.pem_cert_chain);
      if (s.ok()) s = ReadFile("--tls_key", options.key_file, &ssl.pem_private_key);
    }
    if (!s.ok()) return s;
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  // Replies (a Session carries its spec) stay small, but allow what the server may send.
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(options.server, creds, args);
  return std::unique_ptr<RpcClient>(new RpcClient(std::move(channel), options.timeout));
}

RpcClient::RpcClient(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : channel_(std::move(channel)), stub_(v1::LrScheduler::NewStub(channel_)), timeout_(timeout) {}

void RpcClient::SetDeadline(grpc::ClientContext* ctx) const {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
}

absl::StatusOr<v1::Session> RpcClient::CreateSession(
    const std::string& name, const std::string& spec_json,
    const std::map<std::string, std::string>& labels) {
  v1::CreateSessionRequest req;
  req.set_name(name);
  req.set_spec_json(spec_json);
  for (const auto& [k, v] : labels) (*req.mutable_labels())[k] = v;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::Session resp;
  absl::Status s = FromGrpc(stub_->CreateSession(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<v1::Session> RpcClient::GetSession(const std::string& name) {
  v1::GetSessionRequest req;
  req.set_name(name);
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::Session resp;
  absl::Status s = FromGrpc(stub_->GetSession(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<v1::ListSessionsResponse> RpcClient::ListSessions(const std::string& name_prefix,
                                                                 const std::string& page_token) {
  v1::ListSessionsRequest req;
  req.set_name_prefix(name_prefix);
  req.set_page_token(page_token);
  req.set_page_size(1000);
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ListSessionsResponse resp;
  absl::Status s = FromGrpc(stub_->ListSessions(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::Status RpcClient::DeleteSession(const std::string& name) {
  v1::DeleteSessionRequest req;
  req.set_name(name);
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::DeleteSessionResponse resp;
  return FromGrpc(stub_->DeleteSession(&ctx, req, &resp));
}

absl::StatusOr<v1::StepResponse> RpcClient::Step(const std::string& name,
                                                 std::optional<double> metric,
                                                 std::optional<double> epoch,
                                                 std::optional<int64_t> if_epoch) {
  v1::StepRequest req;
  req.set_name(name);
  if (metric) req.set_metric(*metric);
  if (epoch) req.set_epoch(*epoch);
  if (if_epoch) req.set_if_epoch(*if_epoch);
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::StepResponse resp;
  absl::Status s = FromGrpc(stub_->Step(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<v1::ExportStateResponse> RpcClient::ExportState(const std::string& name) {
  v1::ExportStateRequest req;
  req.set_name(name);
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ExportStateResponse resp;
  absl::Status s = FromGrpc(stub_->ExportState(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

}  // namespace lrsched
