// Copyright lrsched authors.
#include "server/store/etcd/etcd_store.h"

#include <chrono>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "server/store/etcd/watch.h"

namespace lrsched {

namespace pb = ::etcdserverpb;

struct EtcdStore::Endpoint {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::KV::Stub> kv;
};

namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

absl::StatusCode ToAbsl(grpc::StatusCode c) { return static_cast<absl::StatusCode>(c); }

}  // namespace

std::string EtcdPrefixEnd(const std::string& prefix) {
  // etcd's "prefix" range end: the prefix with its last byte that is not 0xff incremented and
  // everything after it dropped; all 0xff (or empty) means "to the end" ("\0").
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char c = static_cast<unsigned char>(end.back());
    if (c < 0xff) {
      end.back() = static_cast<char>(c + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

absl::StatusOr<std::unique_ptr<EtcdStore>> EtcdStore::Open(const Options& options) {
  if (options.endpoints.empty()) {
    return absl::InvalidArgumentError("etcd store: no endpoints (--etcd_endpoints)");
  }
  if (options.prefix.empty()) {
    return absl::InvalidArgumentError("etcd store: the key prefix must not be empty");
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!options.tls_ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!ReadFile(options.tls_ca_file, &ssl.pem_root_certs)) {
      return absl::InvalidArgumentError(
          absl::StrCat("etcd TLS CA: cannot read ", options.tls_ca_file));
    }
    if (!options.tls_cert_file.empty() && (!ReadFile(options.tls_cert_file, &ssl.pem_cert_chain) ||
                                           !ReadFile(options.tls_key_file, &ssl.pem_private_key))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "etcd TLS: cannot read ", options.tls_cert_file, " or ", options.tls_key_file));
    }
    creds = grpc::SslCredentials(ssl);
  }
  std::unique_ptr<EtcdStore> store(new EtcdStore(options));
  for (const std::string& address : options.endpoints) {
    if (address.empty()) return absl::InvalidArgumentError("etcd store: empty endpoint");
    auto ep = std::make_unique<Endpoint>();
    ep->address = address;
    grpc::ChannelArguments args;
    // Reconnect quickly once etcd is back: a replica must recover by itself.
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1000);  // also the connect timeout
    // The change feed is one long-lived stream: HTTP/2 pings notice a member that vanished
    // without closing the connection. 10 s stays above etcd's --grpc-keepalive-min-time (5 s),
    // below which etcd would drop the connection for pinging too often.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    ep->channel = grpc::CreateCustomChannel(address, creds, args);
    ep->kv = pb::KV::NewStub(ep->channel);
    store->endpoints_.push_back(std::move(ep));
  }
  return store;
}

EtcdStore::EtcdStore(Options options) : options_(std::move(options)) {}
EtcdStore::~EtcdStore() { Close(); }

std::string EtcdStore::Key(std::string_view name) const {
  return absl::StrCat(options_.prefix, absl::string_view(name.data(), name.size()));
}

absl::Status EtcdStore::Classify(const char* what, const Endpoint& ep, const grpc::Status& s,
                                 std::vector<std::string>* failures) const {
  if (s.ok()) return absl::OkStatus();
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::UnavailableError(absl::StrCat(
        "etcd ", what, " at ", ep.address, ": no answer within ",
        absl::FormatDuration(options_.timeout), " (outcome unknown, not acknowledged)"));
  }
  if (s.error_code() != grpc::StatusCode::UNAVAILABLE) {
    return absl::Status(ToAbsl(s.error_code()),
                        absl::StrCat("etcd ", what, " at ", ep.address, ": ", s.error_message()));
  }
  failures->push_back(absl::StrCat(ep.address, ": ", s.error_message()));
  return absl::UnavailableError(
      absl::StrCat("etcd unavailable (", what, "): ", absl::StrJoin(*failures, "; ")));
}

absl::Status EtcdStore::Call(
    const char* what,
    const std::function<grpc::Status(pb::KV::Stub&, grpc::ClientContext*)>& call) {
  const size_t n = endpoints_.size();
  const size_t start = current_.load();
  std::vector<std::string> failures;
  absl::Status last;
  for (size_t i = 0; i < n; ++i) {
    Endpoint& ep = *endpoints_[(start + i) % n];
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     absl::ToChronoMilliseconds(options_.timeout));
    grpc::Status s = call(*ep.kv, &ctx);
    if (s.ok()) {
      if (i != 0) current_.store((start + i) % n);
      return absl::OkStatus();
    }
    const size_t failed = failures.size();
    last = Classify(what, ep, s, &failures);
    if (failures.size() == failed) return last;  // not worth another member
  }
  return last;
}

etcdserverpb::TxnRequest EtcdStore::TxnFor(const Mutation& m) const {
  const std::string key = Key(m.name);
  pb::TxnRequest req;
  if (m.expected_revision.has_value()) {
    pb::Compare* c = req.add_compare();
    c->set_key(key);
    c->set_result(pb::Compare::EQUAL);
    if (*m.expected_revision == 0) {
      c->set_target(pb::Compare::CREATE);  // create_revision 0: the key does not exist
      c->set_create_revision(0);
    } else {
      c->set_target(pb::Compare::MOD);
      c->set_mod_revision(*m.expected_revision);
    }
    // On a lost compare, read the key in the same Txn to say which revision it is at.
    req.add_failure()->mutable_request_range()->set_key(key);
  }
  pb::RequestOp* op = req.add_success();
  if (m.kind == Mutation::Kind::kPut) {
    op->mutable_request_put()->set_key(key);
    op->mutable_request_put()->set_value(m.value);
  } else {
    op->mutable_request_delete_range()->set_key(key);
  }
  return req;
}

absl::StatusOr<int64_t> EtcdStore::TxnResult(const Mutation& m, const pb::TxnResponse& resp) {
  transactions_.fetch_add(1);
  if (!resp.succeeded()) {
    int64_t have = 0;
    if (resp.responses_size() > 0 && resp.responses(0).response_range().kvs_size() > 0) {
      have = resp.responses(0).response_range().kvs(0).mod_revision();
    }
    return absl::FailedPreconditionError(
        absl::StrCat("session \"", m.name, "\": expected revision ", *m.expected_revision,
                     ", current revision ", have, have == 0 ? " (does not exist)" : ""));
  }
  commits_.fetch_add(1);
  if (m.kind == Mutation::Kind::kDelete) {
    const bool deleted =
        resp.responses_size() > 0 && resp.responses(0).response_delete_range().deleted() > 0;
    return deleted ? resp.header().revision() : 0;
  }
  return resp.header().revision();
}

absl::StatusOr<int64_t> EtcdStore::Commit(const Mutation& m) {
  if (closed_.load()) return absl::UnavailableError("etcd store is closed");
  const pb::TxnRequest req = TxnFor(m);
  pb::TxnResponse resp;
  absl::Status s = Call("Txn", [&](pb::KV::Stub& kv, grpc::ClientContext* ctx) {
    resp.Clear();
    return kv.Txn(ctx, req, &resp);
  });
  if (!s.ok()) return s;
  return TxnResult(m, resp);
}

// CommitAsync: Commit's Txn on gRPC's callback API, so a Step on an etcd replica is computed
// on gRPC's thread and answered from the Txn's completion, with no worker thread parked in a
// blocking call (each parked call costs a hand-off to it and a wake-up from it).

// One mutation's Txn, across the endpoints it fails over to. Owned by the callback chain:
// deleted once `done` has run.
struct EtcdStore::AsyncTxn {
  Mutation m;
  CommitCallback done;
  pb::TxnRequest req;
  pb::TxnResponse resp;
  std::unique_ptr<grpc::ClientContext> ctx;  // one per attempt: a context is used once
  size_t start = 0;                          // the endpoint tried first
  size_t attempt = 0;
  std::vector<std::string> failures;
};

void EtcdStore::CommitAsync(Mutation m, CommitCallback done) {
  bool closed;
  {
    absl::MutexLock l(&async_mu_);
    // Checked under the lock Close waits on: once Close has seen no Txn in flight, none starts.
    closed = closed_.load();
    if (!closed) ++async_in_flight_;
  }
  if (closed) {
    done(absl::UnavailableError("etcd store is closed"));
    return;
  }
  auto* t = new AsyncTxn;
  t->req = TxnFor(m);
  t->m = std::move(m);
  t->done = std::move(done);
  t->start = current_.load();
  StartTxn(t);
}

void EtcdStore::StartTxn(AsyncTxn* t) {
  Endpoint& ep = *endpoints_[(t->start + t->attempt) % endpoints_.size()];
  t->ctx = std::make_unique<grpc::ClientContext>();
  t->ctx->set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(options_.timeout));
  t->resp.Clear();
  ep.kv->async()->Txn(t->ctx.get(), &t->req, &t->resp,
                      [this, t](grpc::Status s) { OnTxnDone(t, s); });
}

void EtcdStore::OnTxnDone(AsyncTxn* t, const grpc::Status& s) {
  const size_t n = endpoints_.size();
  absl::StatusOr<int64_t> result;
  if (s.ok()) {
    if (t->attempt != 0) current_.store((t->start + t->attempt) % n);
    result = TxnResult(t->m, t->resp);
  } else {
    const size_t failed = t->failures.size();
    absl::Status why = Classify("Txn", *endpoints_[(t->start + t->attempt) % n], s, &t->failures);
    if (t->failures.size() != failed && ++t->attempt < n && !closed_.load()) {
      StartTxn(t);  // this member is unreachable: the next one (the context is replaced)
      return;
    }
    result = std::move(why);
  }
  CommitCallback done = std::move(t->done);
  delete t;
  done(std::move(result));
  absl::MutexLock l(&async_mu_);
  --async_in_flight_;
}

absl::Status EtcdStore::LoadAll(
    const std::function<absl::Status(std::string_view, std::string_view, int64_t)>& fn) {
  if (closed_.load()) return absl::UnavailableError("etcd store is closed");
  constexpr int64_t kPage = 512;
  const std::string end = EtcdPrefixEnd(options_.prefix);
  std::string from = options_.prefix;
  int64_t at_revision = 0;  // pinned by the first page, so the pages form one snapshot
  for (;;) {
    pb::RangeRequest req;
    req.set_key(from);
    req.set_range_end(end);
    req.set_limit(kPage);
    req.set_revision(at_revision);
    pb::RangeResponse resp;
    absl::Status s = Call("Range", [&](pb::KV::Stub& kv, grpc::ClientContext* ctx) {
      resp.Clear();
      return kv.Range(ctx, req, &resp);
    });
    if (!s.ok()) return s;
    if (at_revision == 0) at_revision = resp.header().revision();
    for (const auto& kv : resp.kvs()) {
      std::string_view name(kv.key());
      name.remove_prefix(options_.prefix.size());
      s = fn(name, kv.value(), kv.mod_revision());
      if (!s.ok()) return s;
    }
    if (!resp.more() || resp.kvs_size() == 0) break;
    from = resp.kvs(resp.kvs_size() - 1).key();
    from.push_back('\0');  // the next key after the last one read
  }
  last_load_revision_.store(at_revision);
  return absl::OkStatus();
}

absl::StatusOr<SharedStore::ReadResult> EtcdStore::Read(std::string_view name) {
  if (closed_.load()) return absl::UnavailableError("etcd store is closed");
  pb::RangeRequest req;
  req.set_key(Key(name));
  pb::RangeResponse resp;
  absl::Status s = Call("Range", [&](pb::KV::Stub& kv, grpc::ClientContext* ctx) {
    resp.Clear();
    return kv.Range(ctx, req, &resp);
  });
  if (!s.ok()) return s;
  ReadResult out;
  out.read_revision = resp.header().revision();
  if (resp.kvs_size() > 0) {
    out.found = true;
    out.value = resp.kvs(0).value();
    out.revision = resp.kvs(0).mod_revision();
  }
  return out;
}

absl::StatusOr<std::unique_ptr<SharedStore::Subscription>> EtcdStore::Subscribe(
    int64_t after_revision, ChangeListener* listener) {
  if (closed_.load()) return absl::UnavailableError("etcd store is closed");
  EtcdWatch::Options o;
  const size_t n = endpoints_.size();
  const size_t start = current_.load();
  for (size_t i = 0; i < n; ++i) {
    const Endpoint& ep = *endpoints_[(start + i) % n];
    o.endpoints.push_back({ep.address, ep.channel});
  }
  o.prefix = options_.prefix;
  return std::unique_ptr<Subscription>(EtcdWatch::Start(std::move(o), after_revision, listener));
}

void EtcdStore::Close() {
  closed_.store(true);
  // Asynchronous Txns hold `this` until their callback has run; each ends within the timeout.
  absl::MutexLock l(&async_mu_);
  async_mu_.Await(absl::Condition(
      +[](int64_t* n) { return *n == 0; }, &async_in_flight_));
}

Store::Stats EtcdStore::stats() const {
  Stats s;
  s.commits = commits_.load();
  s.transactions = transactions_.load();
  return s;
}

}  // namespace lrsched
