#include "server/http/dashboard.h"

#include <httplib.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "server/http/dashboard_assets.h"

namespace lrsched::http {
namespace {

// The page may load and connect to this origin only: no CDN, no inline script.
constexpr char kPagePolicy[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

struct Served {
  absl::string_view body;
  std::string content_type;
  std::string etag;
};

std::string ContentType(absl::string_view path) {
  if (absl::EndsWith(path, ".html")) return "text/html; charset=utf-8";
  if (absl::EndsWith(path, ".js")) return "text/javascript; charset=utf-8";
  if (absl::EndsWith(path, ".css")) return "text/css; charset=utf-8";
  if (absl::EndsWith(path, ".svg")) return "image/svg+xml";
  if (absl::EndsWith(path, ".png")) return "image/png";
  return "application/octet-stream";
}

// FNV-1a: the ETag only has to change when the bytes do (a new binary), not resist forgery.
std::string ETag(absl::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return absl::StrFormat("\"%016x-%d\"", h, bytes.size());
}

void Serve(const Served& file, bool page, const httplib::Request& req, httplib::Response& res) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("ETag", file.etag);
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  if (page) res.set_header("Content-Security-Policy", kPagePolicy);
  if (req.get_header_value("If-None-Match") == file.etag) {
    res.status = 304;
    return;
  }
  res.status = 200;
  res.set_content(file.body.data(), file.body.size(), file.content_type.c_str());
}

}  // namespace

void MountDashboard(httplib::Server& server) {
  // Built once; the handlers share it read-only (httplib runs them on its thread pool).
  auto files = std::make_shared<std::map<std::string, Served, std::less<>>>();
  for (std::size_t i = 0; i < kDashboardAssetCount; ++i) {
    const DashboardAsset& a = kDashboardAssets[i];
    absl::string_view body(reinterpret_cast<const char*>(a.data), a.size);
    (*files)[a.path] = Served{body, ContentType(a.path), ETag(body)};
  }
  server.Get("/", [files](const httplib::Request& req, httplib::Response& res) {
    Serve(files->at("/index.html"), /*page=*/true, req, res);
  });
  server.Get(R"(/static/([A-Za-z0-9._-]+))",
             [files](const httplib::Request& req, httplib::Response& res) {
               auto it = files->find("/" + req.matches[1].str());
               if (it == files->end()) {
                 res.status = 404;
                 res.set_content(absl::StrFormat(R"({"code": 5, "status": "NOT_FOUND", )"
                                                 R"("message": "no dashboard file %s"})",
                                                 req.path),
                                 "application/json");
                 return;
               }
               Serve(it->second, /*page=*/false, req, res);
             });
}

}  // namespace lrsched::http
