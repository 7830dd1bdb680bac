// Copyright lrsched authors.
//
// EtcdCluster: real etcd processes for tests, on 127.0.0.1 ports chosen free at run time, each
// with its own data directory under a temporary directory; N = 1 is a single member, N = 3 a
// cluster for fault tests. Members can be killed (SIGKILL) and restarted on the same data. The
// destructor kills every member still running and removes the directory, so a failing test
// leaves no process behind.
//
// Available() is false when no etcd binary is found (ETCD_BIN, else /usr/bin/etcd, else PATH);
// tests then GTEST_SKIP with a message.
#ifndef LRSCHED_TESTS_ETCD_CLUSTER_H_
#define LRSCHED_TESTS_ETCD_CLUSTER_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace lrsched::test_support {

class EtcdCluster {
 public:
  static std::string Binary();  // "" when etcd is missing
  static bool Available() { return !Binary().empty(); }

  EtcdCluster() = default;
  ~EtcdCluster();
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  // Starts `members` members and waits (up to `timeout`) until the cluster answers a
  // linearizable read through every member.
  absl::Status Start(int members, absl::Duration timeout = absl::Seconds(30));

  int size() const { return static_cast<int>(members_.size()); }
  // host:port of member i's client URL; all of them joined by commas.
  std::string endpoint(int i) const;
  std::string endpoints() const;
  bool running(int i) const { return members_[i].pid > 0; }

  void Kill(int i);  // SIGKILL + reap
  void Stop(int i);  // SIGTERM + reap (bounded), then SIGKILL
  absl::Status Restart(int i, absl::Duration timeout = absl::Seconds(30));  // same data dir
  // The member index of the current raft leader, or -1. Uses `etcdctl endpoint status`
  // (Debian's etcd-client): leadership is not visible through the KV API.
  int Leader() const;
  // Waits until a linearizable read succeeds through member i.
  absl::Status WaitReady(int i, absl::Duration timeout) const;

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    std::string data_dir;
    pid_t pid = -1;
  };
  absl::Status Spawn(int i, bool new_cluster);
  std::string InitialCluster() const;

  std::string dir_;
  std::vector<Member> members_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int PickFreePort();

}  // namespace lrsched::test_support

#endif  // LRSCHED_TESTS_ETCD_CLUSTER_H_
