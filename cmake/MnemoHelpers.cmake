# Helpers for declaring mnemo targets: one function per target kind, so every
# target gets the same warnings, include roots and C++ standard.

set(MNEMO_ROOT "${CMAKE_CURRENT_LIST_DIR}/..")

function(mnemo_apply_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
  if(MNEMO_WERROR)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
  endif()
endfunction()

# mnemo_cc_library(NAME name SRCS ... DEPS ... [PUBLIC_INCLUDES dir...])
function(mnemo_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;PUBLIC_INCLUDES" ${ARGN})
  add_library(${ARG_NAME} STATIC ${ARG_SRCS})
  target_include_directories(${ARG_NAME} PUBLIC ${MNEMO_ROOT} ${ARG_PUBLIC_INCLUDES})
  target_link_libraries(${ARG_NAME} PUBLIC ${ARG_DEPS})
  set_target_properties(${ARG_NAME} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  mnemo_apply_warnings(${ARG_NAME})
endfunction()

# mnemo_cc_binary(NAME name SRCS ... DEPS ...)
function(mnemo_cc_binary)
  cmake_parse_arguments(ARG "" "NAME;OUTPUT_NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_include_directories(${ARG_NAME} PRIVATE ${MNEMO_ROOT})
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
  target_include_directories(${ARG_NAME} PRIVATE ${MNEMO_ROOT})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
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
