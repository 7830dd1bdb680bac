// The web dashboard: GET / (index.html) and GET /static/<file> (its script and stylesheet),
// served from the copies compiled into the binary (dashboard_assets.h). The page reads the
// HTTP/JSON routes of the same server (proto/lrsched/v1/lrsched.proto, "HTTP/JSON") and nothing
// else; the files hold no session data, so they need no token (the API calls carry it).
#ifndef LRSCHED_SERVER_HTTP_DASHBOARD_H_
#define LRSCHED_SERVER_HTTP_DASHBOARD_H_

namespace httplib {
class Server;
}

namespace lrsched::http {

// Registers the dashboard's GET routes on `server` (before it listens). Every reply carries
// its Content-Type, `Cache-Control: no-cache` with a strong ETag (a reload revalidates and gets
// 304 when the binary's copy is unchanged, the new file after an upgrade), nosniff, and for the
// page a Content-Security-Policy that allows this origin only. An unknown /static/ file is 404
// with the gateway's JSON error body.
void MountDashboard(httplib::Server& server);

}  // namespace lrsched::http

#endif  // LRSCHED_SERVER_HTTP_DASHBOARD_H_
