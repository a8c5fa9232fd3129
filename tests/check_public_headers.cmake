# Run by ctest: fails when a public header includes a third-party library that
# must stay out of hosts' compile units (SQLite, libpq, gRPC, protobuf, asio,
# Boost, spdlog).
# -DDTX_SOURCE_DIR
file(GLOB_RECURSE headers
  "${DTX_SOURCE_DIR}/lib/include/*.h"
  "${DTX_SOURCE_DIR}/embedded/include/*.h"
  "${DTX_SOURCE_DIR}/storage/include/*.h"
  "${DTX_SOURCE_DIR}/transport/include/*.h"
  "${DTX_SOURCE_DIR}/testing/include/*.h")
set(bad "")
foreach(h IN LISTS headers)
  file(STRINGS "${h}" lines REGEX "^[ \t]*#[ \t]*include")
  foreach(line IN LISTS lines)
    if(line MATCHES "[<\"](sqlite3\\.h|libpq-fe\\.h|libpq/|grpc/|grpcpp/|grpc\\+\\+/|google/protobuf/|asio|boost/|spdlog/|fmt/)")
      list(APPEND bad "${h}: ${line}")
    endif()
  endforeach()
endforeach()
list(LENGTH headers count)
if(count EQUAL 0)
  message(FATAL_ERROR "no public headers found under ${DTX_SOURCE_DIR}")
endif()
if(bad)
  string(REPLACE ";" "\n" bad "${bad}")
  message(FATAL_ERROR "public headers include third-party headers:\n${bad}")
endif()
message(STATUS "${count} public headers include no third-party headers")
