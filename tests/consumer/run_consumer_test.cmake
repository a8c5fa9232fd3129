# Run by ctest: installs dtx from the build tree into a scratch prefix, builds
# tests/consumer against it with find_package(dtx), and runs the result.
#
# -DDTX_BUILD_DIR, -DDTX_CONSUMER_SOURCE, -DDTX_WORK_DIR, -DDTX_SANITIZE

file(REMOVE_RECURSE "${DTX_WORK_DIR}")
set(prefix "${DTX_WORK_DIR}/prefix")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

run(${CMAKE_COMMAND} --install "${DTX_BUILD_DIR}" --prefix "${prefix}")

set(flags "")
if(DTX_SANITIZE)
  set(flags "-fsanitize=${DTX_SANITIZE}")
endif()
run(${CMAKE_COMMAND} -S "${DTX_CONSUMER_SOURCE}" -B "${DTX_WORK_DIR}/build"
  -DCMAKE_PREFIX_PATH=${prefix} "-DCMAKE_CXX_FLAGS=${flags}"
  "-DCMAKE_EXE_LINKER_FLAGS=${flags}")
run(${CMAKE_COMMAND} --build "${DTX_WORK_DIR}/build")
run("${DTX_WORK_DIR}/build/consumer" "${DTX_WORK_DIR}/consumer.db")

if(NOT last_output MATCHES "^dtx [0-9]+\\.[0-9]+\\.[0-9]+: [2-9A-HJ-NP-Za-km-z]+ saga succeed")
  message(FATAL_ERROR "unexpected consumer output: ${last_output}")
endif()
message(STATUS "consumer: ${last_output}")

run("${DTX_WORK_DIR}/build/consumer_simulation")
if(NOT last_output MATCHES "^simulation: t1 failed, compensated 2 of 2 steps")
  message(FATAL_ERROR "unexpected consumer_simulation output: ${last_output}")
endif()
message(STATUS "consumer: ${last_output}")

# Built when the package has dtx::postgres.
if(EXISTS "${DTX_WORK_DIR}/build/consumer_postgres")
  run("${DTX_WORK_DIR}/build/consumer_postgres")
  message(STATUS "consumer: ${last_output}")
endif()
