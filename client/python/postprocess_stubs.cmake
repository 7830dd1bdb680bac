# Moves protoc's Python output for lrsched/v1 into the package's _gen/ directory.
#   cmake -DIN_DIR=<protoc out>/lrsched/v1 -DOUT_DIR=<client/python/lrsched/_gen> -P postprocess_stubs.cmake
#
# protoc names modules by the proto's path, so its grpc module says
# `from lrsched.v1 import lrsched_pb2`; here the messages live in `lrsched._gen`, so every
# `from lrsched.v1 import` becomes `from lrsched._gen import`. If protoc's output ever stops
# containing that line, the build fails here instead of shipping a module that cannot import.
# Files are replaced by rename (atomic), and left alone when unchanged.
if(NOT IN_DIR OR NOT OUT_DIR)
  message(FATAL_ERROR "postprocess_stubs.cmake: IN_DIR and OUT_DIR are required")
endif()
file(MAKE_DIRECTORY ${OUT_DIR})

function(lrsched_install_text name text)
  set(dest ${OUT_DIR}/${name})
  if(EXISTS ${dest})
    file(READ ${dest} old)
    if(old STREQUAL text)
      file(TOUCH_NOCREATE ${dest})  # up to date for make, without rewriting it
      return()
    endif()
  endif()
  string(RANDOM LENGTH 8 suffix)
  set(tmp ${OUT_DIR}/.${name}.${suffix}.tmp)
  file(WRITE ${tmp} "${text}")
  file(RENAME ${tmp} ${dest})
endfunction()

set(header "# Generated at build time from proto/lrsched/v1/lrsched.proto by protoc and\n# grpc_python_plugin (client/python/CMakeLists.txt). Do not edit; not committed.\n")

foreach(module lrsched_pb2 lrsched_pb2_grpc)
  set(src ${IN_DIR}/${module}.py)
  if(NOT EXISTS ${src})
    message(FATAL_ERROR "postprocess_stubs.cmake: protoc did not write ${src}")
  endif()
  file(READ ${src} text)
  string(REGEX REPLACE "(^|\n)from lrsched\\.v1 import " "\\1from lrsched._gen import " fixed "${text}")
  if(module STREQUAL "lrsched_pb2_grpc" AND fixed STREQUAL text)
    message(FATAL_ERROR "postprocess_stubs.cmake: ${src} has no 'from lrsched.v1 import' line "
                        "to redirect; protoc's output format changed")
  endif()
  if(fixed MATCHES "(^|\n)(from|import) lrsched\\.v1")
    message(FATAL_ERROR "postprocess_stubs.cmake: ${src} still imports lrsched.v1")
  endif()
  lrsched_install_text(${module}.py "${fixed}")
endforeach()
lrsched_install_text(__init__.py "${header}")
