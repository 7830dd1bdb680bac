// Copyright lrsched authors.
#include "tests/store/etcd/etcd_cluster.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/create_channel.h"

namespace lrsched::test_support {

int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string EtcdCluster::Binary() {
  const char* env = getenv("ETCD_BIN");
  if (env != nullptr && *env != '\0') return access(env, X_OK) == 0 ? env : "";
  if (access("/usr/bin/etcd", X_OK) == 0) return "/usr/bin/etcd";
  const char* path = getenv("PATH");
  if (path == nullptr) return "";
  std::string p(path);
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string cand = p.substr(start, end - start) + "/etcd";
    if (access(cand.c_str(), X_OK) == 0) return cand;
    start = end + 1;
  }
  return "";
}

EtcdCluster::~EtcdCluster() {
  for (int i = 0; i < size(); ++i) Kill(i);
  if (!dir_.empty() && getenv("LRSCHED_KEEP_ETCD") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string EtcdCluster::endpoint(int i) const {
  return absl::StrCat("127.0.0.1:", members_[i].client_port);
}

std::string EtcdCluster::endpoints() const {
  std::vector<std::string> e;
  for (int i = 0; i < size(); ++i) e.push_back(endpoint(i));
  return absl::StrJoin(e, ",");
}

std::string EtcdCluster::InitialCluster() const {
  std::vector<std::string> parts;
  for (const Member& m : members_) {
    parts.push_back(absl::StrCat(m.name, "=http://127.0.0.1:", m.peer_port));
  }
  return absl::StrJoin(parts, ",");
}

absl::Status EtcdCluster::Start(int members, absl::Duration timeout) {
  const std::string bin = Binary();
  if (bin.empty()) return absl::FailedPreconditionError("etcd binary not found");
  std::string templ = std::filesystem::temp_directory_path().string() + "/lrsched-etcd.XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) return absl::InternalError("mkdtemp failed");
  dir_ = templ;
  for (int i = 0; i < members; ++i) {
    Member m;
    m.name = absl::StrCat("m", i);
    m.client_port = PickFreePort();
    m.peer_port = PickFreePort();
    m.data_dir = absl::StrCat(dir_, "/", m.name);
    members_.push_back(m);
  }
  for (int i = 0; i < members; ++i) {
    absl::Status s = Spawn(i, /*new_cluster=*/true);
    if (!s.ok()) return s;
  }
  for (int i = 0; i < members; ++i) {
    absl::Status s = WaitReady(i, timeout);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status EtcdCluster::Spawn(int i, bool new_cluster) {
  Member& m = members_[i];
  const std::string bin = Binary();
  const std::string client = absl::StrCat("http://127.0.0.1:", m.client_port);
  const std::string peer = absl::StrCat("http://127.0.0.1:", m.peer_port);
  std::vector<std::string> args = {
      bin, "--name", m.name, "--data-dir", m.data_dir, "--listen-client-urls", client,
      "--advertise-client-urls", client, "--listen-peer-urls", peer,
      "--initial-advertise-peer-urls", peer, "--initial-cluster", InitialCluster(),
      "--initial-cluster-state", new_cluster ? "new" : "existing", "--initial-cluster-token",
      absl::StrCat("lrsched-test-", getpid()),
      // Quick elections so fault tests stay short.
      "--heartbeat-interval", "50", "--election-timeout", "500", "--log-level", "warn"};
  const std::string log = absl::StrCat(dir_, "/", m.name, ".log");
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    // Dies with the test process, even if the test itself is killed.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  m.pid = pid;
  return absl::OkStatus();
}

void EtcdCluster::Kill(int i) {
  Member& m = members_[i];
  if (m.pid <= 0) return;
  kill(m.pid, SIGKILL);
  waitpid(m.pid, nullptr, 0);
  m.pid = -1;
}

void EtcdCluster::Stop(int i) {
  Member& m = members_[i];
  if (m.pid <= 0) return;
  kill(m.pid, SIGTERM);
  for (int k = 0; k < 100; ++k) {
    if (waitpid(m.pid, nullptr, WNOHANG) == m.pid) {
      m.pid = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Kill(i);
}

absl::Status EtcdCluster::Restart(int i, absl::Duration timeout) {
  if (members_[i].pid > 0) return absl::OkStatus();
  absl::Status s = Spawn(i, /*new_cluster=*/false);
  if (!s.ok()) return s;
  return WaitReady(i, timeout);
}

absl::Status EtcdCluster::WaitReady(int i, absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last;
  while (absl::Now() < deadline) {
    if (members_[i].pid > 0 && waitpid(members_[i].pid, nullptr, WNOHANG) == members_[i].pid) {
      return absl::InternalError(
          absl::StrCat("etcd member ", i, " exited; see ", dir_, "/", members_[i].name, ".log"));
    }
    // A fresh channel per probe: gRPC's reconnect backoff (1 s, growing) on a reused channel
    // would add seconds to every test while etcd comes up.
    auto channel = grpc::CreateChannel(endpoint(i), grpc::InsecureChannelCredentials());
    auto kv = etcdserverpb::KV::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    ctx.set_wait_for_ready(true);
    etcdserverpb::RangeRequest req;
    req.set_key("lrsched-test-probe");
    etcdserverpb::RangeResponse resp;
    grpc::Status s = kv->Range(&ctx, req, &resp);
    if (s.ok()) return absl::OkStatus();
    last = s.error_message();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("etcd member ", i, " at ", endpoint(i), " not ready: ", last));
}

int EtcdCluster::Leader() const {
  // etcdctl prints "endpoint, id, version, size, is_leader, ..." per member (-w simple).
  for (int i = 0; i < size(); ++i) {
    if (members_[i].pid <= 0) continue;
    std::string cmd = absl::StrCat("ETCDCTL_API=3 etcdctl --endpoints=", endpoint(i),
                                   " --dial-timeout=1s endpoint status 2>/dev/null");
    FILE* f = popen(cmd.c_str(), "r");
    if (f == nullptr) continue;
    char buf[1024];
    std::string out;
    while (fgets(buf, sizeof(buf), f) != nullptr) out += buf;
    pclose(f);
    if (out.find(", true,") != std::string::npos) return i;
  }
  return -1;
}

}  // namespace lrsched::test_support
