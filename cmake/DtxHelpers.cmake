# Helper functions shared by every dtx CMakeLists.txt.

include(GenerateExportHeader)
include(CMakePackageConfigHelpers)

# Uses ccache when it is installed: rebuilds on 2-core machines are dominated by
# gRPC and protobuf headers, which ccache makes nearly free.
function(dtx_setup_compiler_cache)
  if(NOT CMAKE_CXX_COMPILER_LAUNCHER)
    find_program(DTX_CCACHE ccache)
    if(DTX_CCACHE)
      set(CMAKE_CXX_COMPILER_LAUNCHER "${DTX_CCACHE}" PARENT_SCOPE)
    endif()
  endif()
endfunction()

# DTX_SANITIZE=address,undefined or thread applies to every target in the build,
# third-party code compiled here included, so that reports are complete.
function(dtx_setup_sanitizers)
  if(DTX_SANITIZE)
    set(flags "-fsanitize=${DTX_SANITIZE}" "-fno-omit-frame-pointer" "-fno-sanitize-recover=all")
    add_compile_options(${flags})
    add_link_options(${flags})
    # DTX_UBSAN_SKIP: UBSan checks left out (after -fsanitize, so they stay
    # out); .ci/run leaves out null and alignment, see docs/development.md.
    if(DTX_UBSAN_SKIP)
      add_compile_options("-fno-sanitize=${DTX_UBSAN_SKIP}")
    endif()
    # GCC 12 warns (-Wtsan, an error under DTX_WERROR) that TSan does not
    # model std::atomic_thread_fence, which Asio's fenced_block uses around
    # every handler. The fences stay in the code: TSan ignores them, so a race
    # that only a fence ordered would be reported, never hidden; Asio's
    # handler queues are ordered by mutexes, which TSan sees.
    if(DTX_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      add_compile_options(-Wno-tsan)
      # GCC 12 at -O1 with -fsanitize=thread reports -Wmaybe-uninitialized
      # inside std::optional's move constructor wherever a Status becomes a
      # Result<T> for a callback (coordinator.cc's ListAsync, say): a false
      # positive of that inlining only. The Release, Debug and ASan builds
      # keep the warning, so a real case is still caught there.
      add_compile_options(-Wno-maybe-uninitialized)
    endif()
  endif()
endfunction()

# DTX_FUZZ: every target in the build is compiled with libFuzzer's coverage
# instrumentation (-fsanitize=fuzzer-no-link: without it the libraries the
# fuzz targets link report no coverage and libFuzzer mutates blindly) and
# ASan+UBSan; only the targets of fuzz/ link libFuzzer's main
# (-fsanitize=fuzzer, in fuzz/CMakeLists.txt). clang only, and not together
# with DTX_SANITIZE, which it replaces.
function(dtx_setup_fuzzing)
  if(NOT DTX_FUZZ)
    return()
  endif()
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "DTX_FUZZ needs clang (configure with CXX=clang++); "
      "scripts/setup.sh --fuzz installs it with libFuzzer")
  endif()
  if(DTX_SANITIZE)
    message(FATAL_ERROR "DTX_FUZZ brings its own sanitizers (address,undefined); "
      "leave DTX_SANITIZE empty")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
    -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endfunction()

# DTX_THREAD_SAFETY_ANALYSIS: clang checks the lock annotations of
# dtx/internal/mutex.h (DTX_GUARDED_BY, DTX_REQUIRES, ...) in dtx's own
# targets, and a violation is an error whatever DTX_WERROR says. Other
# compilers have no such analysis; the option is then ignored, with a warning.
function(dtx_setup_thread_safety_analysis)
  if(DTX_THREAD_SAFETY_ANALYSIS AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(WARNING "DTX_THREAD_SAFETY_ANALYSIS needs clang; ignored with "
      "${CMAKE_CXX_COMPILER_ID} (configure with CXX=clang++)")
  endif()
endfunction()

# Warnings apply to our own targets only and are never PUBLIC, so hosts do not
# inherit them.
function(dtx_target_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
    -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough)
  if(DTX_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  # GCC 12 at -O3 reports -Wrestrict inside libstdc++'s basic_string for
  # `"literal" + std::string` (GCC PR 105329, a false positive fixed in GCC
  # 13): it fires in a Release build wherever the optimizer inlines that
  # pattern, in no code of ours. Turned off for that compiler only.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND
     CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12 AND
     CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(DTX_THREAD_SAFETY_ANALYSIS AND CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    target_compile_options(${target} PRIVATE -Wthread-safety -Werror=thread-safety)
  endif()
endfunction()

# dtx_library(<target> ALIAS <name> EXPORT_HEADER <path> SOURCES ...)
# Builds one component: C++20 inside, C++17 for its public headers, hidden
# symbols by default, with a generated export header.
function(dtx_library target)
  cmake_parse_arguments(ARG "" "ALIAS;EXPORT_HEADER;EXPORT_MACRO" "SOURCES" ${ARGN})
  add_library(${target} ${ARG_SOURCES})
  add_library(dtx::${ARG_ALIAS} ALIAS ${target})
  set_target_properties(${target} PROPERTIES
    EXPORT_NAME ${ARG_ALIAS}
    OUTPUT_NAME dtx_${ARG_ALIAS}
    CXX_STANDARD 20
    CXX_STANDARD_REQUIRED ON
    CXX_EXTENSIONS OFF
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  target_compile_features(${target} PUBLIC cxx_std_17)
  generate_export_header(${target}
    BASE_NAME ${ARG_EXPORT_MACRO}
    EXPORT_FILE_NAME "${PROJECT_BINARY_DIR}/include/${ARG_EXPORT_HEADER}")
  target_include_directories(${target} PUBLIC
    "$<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>"
    "$<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>"
    "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
  target_include_directories(${target} PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}/src")
  dtx_target_warnings(${target})
endfunction()

# dtx_executable(<target> SOURCES ... LIBS ...)
function(dtx_executable target)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${target} ${ARG_SOURCES})
  set_target_properties(${target} PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
  target_link_libraries(${target} PRIVATE ${ARG_LIBS})
  dtx_target_warnings(${target})
endfunction()

# dtx_test(<target> SOURCES ... LIBS ... LABELS ... [TIMEOUT s])
# One gtest binary; each test case becomes a ctest test carrying the labels.
function(dtx_test target)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  dtx_executable(${target} SOURCES ${ARG_SOURCES}
    LIBS ${ARG_LIBS} dtx_testing GTest::gmock GTest::gtest GTest::gtest_main)
  gtest_discover_tests(${target}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
endfunction()

# Installs the given targets with headers and a relocatable package config, so
# that find_package(dtx) gives the same dtx::* names as the build tree.
function(dtx_install_package)
  install(TARGETS ${ARGN}
    EXPORT dtxTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  foreach(dir lib/include embedded/include storage/include transport/include testing/include)
    install(DIRECTORY "${PROJECT_SOURCE_DIR}/${dir}/" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  endforeach()
  install(DIRECTORY "${PROJECT_BINARY_DIR}/include/" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  set(config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/dtx)
  install(EXPORT dtxTargets NAMESPACE dtx:: DESTINATION ${config_dir})
  configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/dtxConfig.cmake.in"
    "${PROJECT_BINARY_DIR}/dtxConfig.cmake" INSTALL_DESTINATION ${config_dir})
  write_basic_package_version_file("${PROJECT_BINARY_DIR}/dtxConfigVersion.cmake"
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
  install(FILES "${PROJECT_BINARY_DIR}/dtxConfig.cmake" "${PROJECT_BINARY_DIR}/dtxConfigVersion.cmake"
    DESTINATION ${config_dir})
endfunction()

# dtx_proto_library(<target> PROTO_DIR <dir> PROTOS <file.proto>...)
# Generates message and gRPC code into the build tree (never committed) and
# builds it once, in a static library of its own, without our warnings.
function(dtx_proto_library target)
  cmake_parse_arguments(ARG "" "PROTO_DIR" "PROTOS" ${ARGN})
  find_program(DTX_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/gen")
  file(MAKE_DIRECTORY "${out_dir}")
  set(sources "")
  foreach(proto IN LISTS ARG_PROTOS)
    get_filename_component(name "${proto}" NAME_WE)
    get_filename_component(rel_dir "${proto}" DIRECTORY)
    set(prefix "${out_dir}/${rel_dir}/${name}")
    if(rel_dir STREQUAL "")
      set(prefix "${out_dir}/${name}")
    endif()
    set(generated "${prefix}.pb.cc" "${prefix}.pb.h" "${prefix}.grpc.pb.cc" "${prefix}.grpc.pb.h")
    add_custom_command(
      OUTPUT ${generated}
      COMMAND protobuf::protoc
        --proto_path=${ARG_PROTO_DIR}
        --cpp_out=${out_dir}
        --grpc_out=${out_dir}
        --plugin=protoc-gen-grpc=${DTX_GRPC_CPP_PLUGIN}
        "${ARG_PROTO_DIR}/${proto}"
      DEPENDS "${ARG_PROTO_DIR}/${proto}" protobuf::protoc
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(APPEND sources "${prefix}.pb.cc" "${prefix}.grpc.pb.cc")
  endforeach()
  add_library(${target} STATIC ${sources})
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON CXX_STANDARD 17)
  target_include_directories(${target} SYSTEM PUBLIC "$<BUILD_INTERFACE:${out_dir}>")
  target_link_libraries(${target} PUBLIC protobuf::libprotobuf gRPC::grpc++)
endfunction()
