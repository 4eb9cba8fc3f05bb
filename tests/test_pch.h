// The precompiled header of every test executable (tests/CMakeLists.txt,
// MNEMO_TEST_PCH): the large third-party headers most tests include. Tests
// still include what they use; this only spares the compiler re-parsing.
#ifndef MNEMO_TESTS_TEST_PCH_H_
#define MNEMO_TESTS_TEST_PCH_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#endif  // MNEMO_TESTS_TEST_PCH_H_
