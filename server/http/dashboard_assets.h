// The dashboard's static files (server/http/static/), compiled into the binary by
// embed_static.cmake at build time. Read-only data with static storage: safe from any thread.
#ifndef LRSCHED_SERVER_HTTP_DASHBOARD_ASSETS_H_
#define LRSCHED_SERVER_HTTP_DASHBOARD_ASSETS_H_

#include <cstddef>

namespace lrsched::http {

struct DashboardAsset {
  const char* path;           // "/index.html": the file's name under static/, with a leading '/'
  const unsigned char* data;  // `size` bytes (followed by one 0 byte)
  std::size_t size;
};

extern const DashboardAsset kDashboardAssets[];
extern const std::size_t kDashboardAssetCount;

}  // namespace lrsched::http

#endif  // LRSCHED_SERVER_HTTP_DASHBOARD_ASSETS_H_
