// Copyright lrsched authors.
#include "server/ops/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lrsched {
namespace {

// Who may call what: the one place that says so. Methods not listed need admin.
struct MethodRole {
  const char* method;
  Role role;
};
constexpr MethodRole kMethodRoles[] = {
    {"GetSession", Role::kReader},     {"ListSessions", Role::kReader},
    {"GetLR", Role::kReader},          {"Watch", Role::kReader},
    {"Simulate", Role::kReader},       {"ExportState", Role::kReader},
    {"GetHistory", Role::kReader},     {"Step", Role::kStepper},
    {"AmendSession", Role::kOperator}, {"CreateSession", Role::kAdmin},
    {"DeleteSession", Role::kAdmin},   {"ImportState", Role::kAdmin},
};

// A token's holder's name, when the file gives one (logged and recorded, so bounded).
constexpr size_t kMaxTokenNameLength = 64;

// Short tokens can be guessed; 16 characters is what `openssl rand -hex 8` prints.
constexpr size_t kMinTokenLength = 16;

std::array<unsigned char, 32> Digest(absl::string_view token) {
  std::array<unsigned char, 32> d;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), d.data());
  return d;
}

bool ParseRole(absl::string_view text, Role* out) {
  if (text == "reader") {
    *out = Role::kReader;
  } else if (text == "stepper") {
    *out = Role::kStepper;
  } else if (text == "operator") {
    *out = Role::kOperator;
  } else if (text == "admin") {
    *out = Role::kAdmin;
  } else {
    return false;
  }
  return true;
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kReader:
      return "reader";
    case Role::kStepper:
      return "stepper";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

Role RequiredRole(absl::string_view method) {
  for (const MethodRole& m : kMethodRoles) {
    if (method == m.method) return m.role;
  }
  return Role::kAdmin;
}

absl::StatusOr<std::vector<TokenEntry>> ParseTokens(absl::string_view text,
                                                    absl::string_view source) {
  std::vector<TokenEntry> out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    auto fail = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_no, ": ", why));
    };
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 2 && fields.size() != 3) {
      return fail("expected TOKEN ROLE [NAME] (two or three fields)");
    }
    TokenEntry e;
    if (!ParseRole(fields[1], &e.role)) {
      return fail(absl::StrCat("unknown role \"", absl::CEscape(fields[1]),
                               "\" (reader, stepper, operator or admin)"));
    }
    if (fields.size() == 3) {
      if (fields[2].size() > kMaxTokenNameLength) {
        return fail(absl::StrCat("name longer than ", kMaxTokenNameLength, " characters"));
      }
      for (char c : fields[2]) {
        if (c < 0x21 || c > 0x7e) return fail("name has a character that is not printable ASCII");
      }
      e.name = std::string(fields[2]);
    }
    if (fields[0].size() < kMinTokenLength) {
      return fail(absl::StrCat("token shorter than ", kMinTokenLength, " characters"));
    }
    for (char c : fields[0]) {
      if (c < 0x21 || c > 0x7e) return fail("token has a character that is not printable ASCII");
    }
    e.digest = Digest(fields[0]);
    for (const TokenEntry& prev : out) {
      if (prev.digest == e.digest) return fail("token listed twice");
    }
    out.push_back(e);
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no tokens (every call would fail)"));
  }
  return out;
}

absl::StatusOr<std::vector<TokenEntry>> LoadTokensFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::InvalidArgumentError(absl::StrCat("--tokens_file: cannot read ", path));
  std::ostringstream ss;
  ss << f.rdbuf();
  return ParseTokens(ss.str(), path);
}

Authorizer::Authorizer(std::vector<TokenEntry> tokens)
    : tokens_(std::make_shared<const std::vector<TokenEntry>>(std::move(tokens))) {}

void Authorizer::Replace(std::vector<TokenEntry> tokens) {
  auto fresh = std::make_shared<const std::vector<TokenEntry>>(std::move(tokens));
  absl::MutexLock l(&mu_);
  tokens_ = std::move(fresh);
}

size_t Authorizer::size() const {
  absl::MutexLock l(&mu_);
  return tokens_->size();
}

absl::Status Authorizer::Check(absl::string_view header, absl::string_view method) const {
  return Authenticate(header, method).status();
}

absl::StatusOr<Caller> Authorizer::Authenticate(absl::string_view header,
                                                absl::string_view method) const {
  constexpr absl::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(header.substr(0, kScheme.size()), kScheme)) {
    return absl::UnauthenticatedError(
        "this server requires a token: send `authorization: Bearer TOKEN` metadata");
  }
  // The token is everything after "Bearer ", byte for byte: a listed token never holds
  // whitespace (ParseTokens), so " TOKEN" or "TOKEN " is another, unknown token.
  std::array<unsigned char, 32> presented = Digest(header.substr(kScheme.size()));
  std::shared_ptr<const std::vector<TokenEntry>> tokens;
  {
    absl::MutexLock l(&mu_);
    tokens = tokens_;
  }
  // Compare with every entry, without early exit, so timing does not tell which one matched.
  int found = -1;
  for (size_t i = 0; i < tokens->size(); ++i) {
    bool eq = CRYPTO_memcmp(presented.data(), (*tokens)[i].digest.data(), presented.size()) == 0;
    found = eq ? static_cast<int>(i) : found;
  }
  if (found < 0) return absl::UnauthenticatedError("invalid token");
  const TokenEntry& entry = (*tokens)[static_cast<size_t>(found)];
  Role have = entry.role;
  Role need = RequiredRole(method);
  if (static_cast<int>(have) < static_cast<int>(need)) {
    return absl::PermissionDeniedError(absl::StrCat("role ", RoleName(have), " may not call ",
                                                    method, " (needs ", RoleName(need), ")"));
  }
  return Caller{entry.name, have};
}

}  // namespace lrsched
