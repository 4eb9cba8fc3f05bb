// Runs a shell command line (the project's CLIs as a user runs them) and
// captures its combined stdout and stderr with the exit code.
#ifndef MNEMO_TESTS_INTEGRATION_SHELL_RUN_H_
#define MNEMO_TESTS_INTEGRATION_SHELL_RUN_H_

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace mnemo::testing {

struct ShellRun {
  int exit_code = -1;  // -1 when the command could not run or was killed
  std::string out;     // stdout and stderr, interleaved
};

inline ShellRun Shell(const std::string& cmd) {
  ShellRun r;
  FILE* pipe = popen((cmd + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) r.out.append(buf, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace mnemo::testing

#endif  // MNEMO_TESTS_INTEGRATION_SHELL_RUN_H_
