# Run by ctest: fails when a file of the core (lib/, headers and sources)
# includes an adapter's or a composition root's header (dtx/storage/,
# dtx/transport/, dtx/server/, dtx/embedded.h) or the libraries they wrap
# (SQLite, gRPC, protobuf, generated .pb.h code). dtx::core depends on none of
# them; the link graph says so too, this check keeps the includes honest.
# -DDTX_SOURCE_DIR
set(forbidden
  "^dtx/storage/"
  "^dtx/transport/"
  "^dtx/server/"
  "^dtx/embedded(_export)?\\.h$"
  "^sqlite3(ext)?\\.h$"
  "^grpcpp/"
  "^grpc/"
  "^grpc\\+\\+/"
  "^google/protobuf/"
  "\\.pb\\.h$")

file(GLOB_RECURSE files "${DTX_SOURCE_DIR}/lib/*")
list(FILTER files INCLUDE REGEX "\\.(h|hh|hpp|inc|c|cc|cpp|cxx|in)$")
list(LENGTH files count)
if(count EQUAL 0)
  message(FATAL_ERROR "no sources found under ${DTX_SOURCE_DIR}/lib")
endif()

set(bad 0)
foreach(f IN LISTS files)
  file(STRINGS "${f}" lines REGEX "^[ \t]*#[ \t]*include")
  if(NOT lines)
    continue()
  endif()
  file(READ "${f}" text)
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "^[ \t]*#[ \t]*include[ \t]*[<\"]([^>\"]+)[>\"]")
      continue()
    endif()
    set(target "${CMAKE_MATCH_1}")
    foreach(pattern IN LISTS forbidden)
      if(target MATCHES "${pattern}")
        # The line number: newlines before the first occurrence of the line.
        string(FIND "\n${text}" "\n${line}" at)
        string(SUBSTRING "${text}" 0 ${at} before)
        string(REGEX MATCHALL "\n" newlines "${before}")
        list(LENGTH newlines n)
        math(EXPR n "${n} + 1")
        file(RELATIVE_PATH rel "${DTX_SOURCE_DIR}" "${f}")
        # NOTICE prints the line as it is (FATAL_ERROR would re-wrap it).
        message(NOTICE "${rel}:${n}: ${line}")
        math(EXPR bad "${bad} + 1")
        break()
      endif()
    endforeach()
  endforeach()
endforeach()

if(bad GREATER 0)
  message(FATAL_ERROR "lib/ (dtx::core): ${bad} include(s) of storage, transport, "
    "server, embedded or third-party adapter headers, listed above")
endif()
message(STATUS "${count} files under lib/ include no storage, transport or adapter headers")
