# The dashboard's embedded static files served by MountDashboard (server/http/dashboard.cmake),
# compared byte for byte with server/http/static/. include()d from tests/CMakeLists.txt.
lrsched_test(dashboard_test ${CMAKE_CURRENT_LIST_DIR}/dashboard_test.cc)
target_link_libraries(dashboard_test PRIVATE lrsched_dashboard Threads::Threads)
target_compile_definitions(dashboard_test
  PRIVATE LRSCHED_DASHBOARD_STATIC="${PROJECT_SOURCE_DIR}/server/http/static")
