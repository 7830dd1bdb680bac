# The web dashboard (dashboard.{h,cc}): static/'s files compiled into the library by
# embed_static.cmake (a cmake -P step writing byte arrays; no xxd), rebuilt when a file changes.
# include()d from server/http/CMakeLists.txt, whose lrsched_http links lrsched_dashboard.
set(LRSCHED_DASHBOARD_FILES index.html style.css app.js api.js chart.js dom.js session.js)
set(_dash_dir ${CMAKE_CURRENT_LIST_DIR})
set(_dash_cc ${CMAKE_CURRENT_BINARY_DIR}/dashboard_assets.cc)
list(TRANSFORM LRSCHED_DASHBOARD_FILES PREPEND ${_dash_dir}/static/ OUTPUT_VARIABLE _dash_deps)
# Comma-separated: a ';' list would be split (or turned into spaces) on the command line.
string(REPLACE ";" "," _dash_names "${LRSCHED_DASHBOARD_FILES}")
add_custom_command(
  OUTPUT ${_dash_cc}
  COMMAND ${CMAKE_COMMAND} -DOUT=${_dash_cc} -DBASE=${_dash_dir}/static
          -DFILES=${_dash_names} -P ${_dash_dir}/embed_static.cmake
  DEPENDS ${_dash_deps} ${_dash_dir}/embed_static.cmake
  COMMENT "Embedding the dashboard's static files"
  VERBATIM)

find_package(PkgConfig REQUIRED)
pkg_check_modules(DASHBOARD_HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
add_library(lrsched_dashboard ${_dash_dir}/dashboard.cc ${_dash_cc})
target_include_directories(lrsched_dashboard PUBLIC ${LRSCHED_ROOT})
target_link_libraries(lrsched_dashboard PUBLIC absl::strings absl::str_format
                                        PRIVATE PkgConfig::DASHBOARD_HTTPLIB)
