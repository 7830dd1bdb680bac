// Copyright lrsched authors.
//
// Optional bearer-token authorization for the LrScheduler service.
//
// A tokens file maps tokens to roles, one `TOKEN ROLE [NAME]` per line; blank lines and lines
// whose first non-blank character is '#' are ignored. Whitespace around a line (a CRLF file's
// CR too) and between its fields (spaces, tabs) is layout, never part of a token: a token is
// printable ASCII without whitespace. NAME (optional; printable ASCII without whitespace, at
// most 64 characters) names the token's holder: it is recorded as the caller of each amendment
// made with the token (GetHistory shows it) and, unlike the token, may be logged. A presented token
// is everything after `Bearer `, compared byte for byte: with a space or tab before or after it, it
// is another, unknown token. Roles, each including the one before:
//   reader   GetSession, ListSessions, GetLR, Watch, Simulate, ExportState, GetHistory
//   stepper  + Step
//   operator + AmendSession
//   admin    + CreateSession, DeleteSession, ImportState (everything)
// Clients send `authorization: Bearer TOKEN` metadata. No or an unknown token is
// UNAUTHENTICATED; a known token whose role may not call the method is PERMISSION_DENIED.
// Health checking and reflection are other services and stay open (they reveal no sessions).
//
// Tokens are kept only as SHA-256 digests and a presented token is compared, digest against
// digest, with every known token without early exit, so the time taken reveals nothing about
// which bytes matched. Tokens are never logged.
//
// Invariants: the method -> role table (kMethodRoles in auth.cc) is the only place that says
// who may call what; a method missing from it is refused to everyone but admin. Authorizer is
// thread-safe; Replace swaps the whole table atomically (SIGHUP reload).
#ifndef LRSCHED_SERVER_AUTH_H_
#define LRSCHED_SERVER_AUTH_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace lrsched {

enum class Role { kReader = 0, kStepper = 1, kOperator = 2, kAdmin = 3 };

const char* RoleName(Role role);

// The least role that may call `method` (the LrScheduler method's short name, e.g. "Step").
// Unknown methods need admin.
Role RequiredRole(absl::string_view method);

struct TokenEntry {
  std::array<unsigned char, 32> digest;  // SHA-256 of the token
  Role role;
  std::string name;  // the file's optional third field ("" without one)
};

// Who is calling: the matched token's name and role.
struct Caller {
  std::string name;
  Role role = Role::kReader;
};

// Parses a tokens file's text. `source` names it in errors, which name the line
// ("tokens.txt:3: unknown role \"root\" ...") but never quote a token.
absl::StatusOr<std::vector<TokenEntry>> ParseTokens(absl::string_view text,
                                                    absl::string_view source);
absl::StatusOr<std::vector<TokenEntry>> LoadTokensFile(const std::string& path);

class Authorizer {
 public:
  explicit Authorizer(std::vector<TokenEntry> tokens);

  // Replaces every token at once (a re-read tokens file).
  void Replace(std::vector<TokenEntry> tokens);
  size_t size() const;

  // OK if the caller's bearer token has a role that may call `method`.
  absl::Status Check(absl::string_view authorization_header, absl::string_view method) const;
  // The same check, and on success who the caller is.
  absl::StatusOr<Caller> Authenticate(absl::string_view authorization_header,
                                      absl::string_view method) const;

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const std::vector<TokenEntry>> tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_AUTH_H_
