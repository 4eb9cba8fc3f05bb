# Helpers for declaring mnemo targets: one function per target kind, so every
# target gets the same warnings, include roots and C++ standard.
#
# Include roots. The code spells headers by folder ("db/store.h",
# "index/filter.h", "tests/integration/mnemod_process.h"), but no target gets
# the repository root as an include directory: each source folder gets a
# staging root in the build tree, ${MNEMO_INCLUDE_ROOTS}/<key>/<folder>, a
# symlink to the source folder (mnemo_include_root). A library exposes the
# root of its own folder (and the folder's include/ directory of installed
# public headers, if any) PUBLIC, so a target can include a folder's headers
# only if it links one of that folder's libraries, directly or transitively.
# Binaries and tests see their own folder privately and everything else
# through their DEPS.

include(GNUInstallDirs)

# The repository root: for paths to sources and test data, never an include
# directory.
get_filename_component(MNEMO_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(MNEMO_INCLUDE_ROOTS "${CMAKE_BINARY_DIR}/include_roots")

# mnemo_include_root(<out-var> <folder>)
# Sets <out-var> to the include root through which "<folder>/x.h" names
# <repo>/<folder>/x.h and nothing outside <folder>. <folder> is relative to
# the repository root (db, client/cli, tests/integration).
function(mnemo_include_root out folder)
  string(MAKE_C_IDENTIFIER "${folder}" key)
  set(root "${MNEMO_INCLUDE_ROOTS}/${key}")
  get_property(done GLOBAL PROPERTY MNEMO_INCLUDE_ROOT_${key})
  if(NOT done)
    set(link "${root}/${folder}")
    cmake_path(GET link PARENT_PATH parent)
    file(MAKE_DIRECTORY "${parent}")
    # Recreated on every configure: the source tree may have moved.
    file(REMOVE "${link}")
    file(CREATE_LINK "${MNEMO_ROOT}/${folder}" "${link}" SYMBOLIC)
    set_property(GLOBAL PROPERTY MNEMO_INCLUDE_ROOT_${key} TRUE)
  endif()
  set(${out} "${root}" PARENT_SCOPE)
endfunction()

# The folder of the CMakeLists.txt being processed, relative to the repo root.
function(mnemo_current_folder out)
  file(RELATIVE_PATH folder "${MNEMO_ROOT}" "${CMAKE_CURRENT_SOURCE_DIR}")
  set(${out} "${folder}" PARENT_SCOPE)
endfunction()

# Gives <target> the include root of the current folder with <scope>.
function(mnemo_add_own_folder target scope)
  mnemo_current_folder(folder)
  mnemo_include_root(root "${folder}")
  target_include_directories(${target} ${scope} "$<BUILD_INTERFACE:${root}>")
endfunction()

function(mnemo_apply_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
  if(MNEMO_WERROR)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
  endif()
endfunction()

# mnemo_cc_library(NAME name SRCS ... DEPS ... [PRIVATE_DEPS ...]
#                  [EXPORT_NAME name])
# DEPS are linked PUBLIC (their headers reach this library's users),
# PRIVATE_DEPS privately (a static library still passes them to the final
# link, but not their include directories). The folder's include/ directory,
# when present, holds installed public headers: exposed PUBLIC in the build
# tree and as <prefix>/include once installed.
# EXPORT_NAME names the target in the installed package (mnemo::<name>).
function(mnemo_cc_library)
  cmake_parse_arguments(ARG "" "NAME;EXPORT_NAME" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "mnemo_cc_library(${ARG_NAME}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  add_library(${ARG_NAME} STATIC ${ARG_SRCS})
  mnemo_add_own_folder(${ARG_NAME} PUBLIC)
  # Adding include/ later must reconfigure: watch the folder itself.
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}")
  set(public_include "${CMAKE_CURRENT_SOURCE_DIR}/include")
  if(IS_DIRECTORY "${public_include}")
    target_include_directories(${ARG_NAME} PUBLIC
      "$<BUILD_INTERFACE:${public_include}>"
      "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
  endif()
  target_link_libraries(${ARG_NAME} PUBLIC ${ARG_DEPS})
  if(ARG_PRIVATE_DEPS)
    target_link_libraries(${ARG_NAME} PRIVATE ${ARG_PRIVATE_DEPS})
  endif()
  set_target_properties(${ARG_NAME} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  if(ARG_EXPORT_NAME)
    set_target_properties(${ARG_NAME} PROPERTIES EXPORT_NAME ${ARG_EXPORT_NAME})
  endif()
  mnemo_apply_warnings(${ARG_NAME})
endfunction()

# mnemo_cc_binary(NAME name SRCS ... DEPS ...)
function(mnemo_cc_binary)
  cmake_parse_arguments(ARG "" "NAME;OUTPUT_NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  mnemo_add_own_folder(${ARG_NAME} PRIVATE)
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  if(ARG_OUTPUT_NAME)
    set_target_properties(${ARG_NAME} PROPERTIES OUTPUT_NAME ${ARG_OUTPUT_NAME})
  endif()
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/bin")
  mnemo_apply_warnings(${ARG_NAME})
endfunction()

# mnemo_cc_test(NAME name SRCS ... DEPS ... [LABELS ...] [TIMEOUT s])
# Registers each GoogleTest case with ctest (gtest_discover_tests). Only one
# ENVIRONMENT entry survives gtest_discover_tests (it splits lists), so
# scripts/test exports OMP_NUM_THREADS for the whole run.
function(mnemo_cc_test)
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  mnemo_add_own_folder(${ARG_NAME} PRIVATE)
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  if(TARGET mnemo_test_pch)
    # tests/CMakeLists.txt: the shared precompiled header, built with OpenMP.
    target_link_libraries(${ARG_NAME} PRIVATE OpenMP::OpenMP_CXX)
    target_precompile_headers(${ARG_NAME} REUSE_FROM mnemo_test_pch)
    # From a precompiled header GCC no longer sees that gtest's EXPECT_*
    # macros guard their own `if` against a dangling `else`.
    target_compile_options(${ARG_NAME} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wno-dangling-else>)
  endif()
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/tests")
  mnemo_apply_warnings(${ARG_NAME})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  # An empty LABELS value would swallow the next property name, so labels
  # are passed only when given. gtest_discover_tests writes the properties
  # unquoted: a second label would turn into a property name and take the
  # ENVIRONMENT below with it, so a test has one label.
  list(LENGTH ARG_LABELS n_labels)
  if(n_labels GREATER 1)
    message(FATAL_ERROR "mnemo_cc_test(${ARG_NAME}): one label per test (got ${ARG_LABELS})")
  endif()
  set(label_props)
  if(ARG_LABELS)
    set(label_props LABELS "${ARG_LABELS}")
  endif()
  include(GoogleTest)
  gtest_discover_tests(${ARG_NAME}
    DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${ARG_TIMEOUT} ${label_props}
               ENVIRONMENT "MNEMO_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
endfunction()
