// Runs the real `mnemo` binary for the CLI integration tests: its exit
// code, stdout and stderr. Shared by cli_test.cc and cli_text_test.cc.
#ifndef MNEMO_TESTS_CLIENT_CLI_RUNNER_H_
#define MNEMO_TESTS_CLIENT_CLI_RUNNER_H_

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/mnemod_process.h"

extern char** environ;

namespace mnemo {

// ctest sets MNEMO_BIN_DIR; the build also bakes in its own bin dir so the
// test binary works when run by hand (or if the ctest environment is lost).
#ifdef MNEMO_TEST_BIN_DIR
inline const bool kBinDirDefaulted = [] {
  setenv("MNEMO_BIN_DIR", MNEMO_TEST_BIN_DIR, /*overwrite=*/0);
  return true;
}();
#endif

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::ostream& operator<<(std::ostream& os, const CliResult& r) {
  return os << "exit " << r.exit_code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
}

// Runs `$MNEMO_BIN_DIR/<name> args...` with stdin from `stdin_path`,
// capturing both streams.
inline CliResult RunBinary(const std::string& work_dir, const std::string& name,
                           const std::vector<std::string>& args,
                           const std::string& stdin_path = "/dev/null") {
  const std::string binary = testing::BinDir() + "/" + name;
  const std::string out_path = work_dir + "/" + name + ".stdout";
  const std::string err_path = work_dir + "/" + name + ".stderr";
  std::vector<std::string> argv_storage = {binary};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  CliResult result;
  pid_t pid = -1;
  int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    result.err = absl::StrCat("posix_spawn ", binary, " failed: ", std::strerror(rc));
    return result;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

// Runs `mnemo args...` (RunBinary).
inline CliResult RunMnemo(const std::string& work_dir, const std::vector<std::string>& args,
                          const std::string& stdin_path = "/dev/null") {
  return RunBinary(work_dir, "mnemo", args, stdin_path);
}

inline nlohmann::json ParseJson(const CliResult& r) {
  nlohmann::json value = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(value.is_discarded()) << "stdout is not JSON:\n" << r;
  return value;
}

}  // namespace mnemo

#endif  // MNEMO_TESTS_CLIENT_CLI_RUNNER_H_
