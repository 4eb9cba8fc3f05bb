// Test harness that runs a real mnemod as a child process.
//
// Start() spawns `$MNEMO_BIN_DIR/mnemod --listen 127.0.0.1:0 --port-file F
// --data-dir D [extra flags...]` and returns once mnemod has written the port
// it bound to F (it does so only after it is serving), so target() is usable
// right away. The child's stdout and stderr go to log_path(), whose tail is
// included in every error this class returns.
//
// Ownership of the data directory: when Start() is given no data_dir, a fresh
// temporary directory is created and removed by the destructor; a given
// data_dir is never removed (tests restart mnemod on it).
//
// Not thread-safe; one test thread drives one MnemodProcess.
#ifndef MNEMO_TESTS_INTEGRATION_MNEMOD_PROCESS_H_
#define MNEMO_TESTS_INTEGRATION_MNEMOD_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mnemo::testing {

// Directory holding the built binaries: $MNEMO_BIN_DIR when set (ctest sets
// it), else "./bin" relative to the working directory.
std::string BinDir();

// Creates a fresh directory under $TEST_TMPDIR / $TMPDIR / /tmp whose name
// starts with `prefix`. The caller owns (and removes) it.
absl::StatusOr<std::string> MakeTempDir(const std::string& prefix = "mnemo-test");

class MnemodProcess {
 public:
  // Spawns mnemod and waits (at most `ready_timeout`) until it is serving.
  // It listens on 127.0.0.1:0 unless `extra_flags` hold a --listen.
  // Fails with the reason and the log tail when the binary is missing, the
  // process exits early, or it does not become ready in time (it is killed
  // then).
  static absl::StatusOr<std::unique_ptr<MnemodProcess>> Start(
      std::vector<std::string> extra_flags = {}, std::string data_dir = "",
      std::chrono::milliseconds ready_timeout = std::chrono::seconds(15));

  MnemodProcess(const MnemodProcess&) = delete;
  MnemodProcess& operator=(const MnemodProcess&) = delete;
  // Stops the process (SIGTERM, then SIGKILL after a grace period) when it
  // is still running, and removes the temporary directories it created.
  ~MnemodProcess();

  // "127.0.0.1:PORT".
  std::string target() const;
  int port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& log_path() const { return log_path_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // Graceful stop: SIGTERM, then waits for the exit (SIGKILL after
  // `timeout`). OK only when mnemod exited with status 0.
  absl::Status Stop(std::chrono::milliseconds timeout = std::chrono::seconds(20));

  // Crash stop: SIGKILL and reap. Acknowledged writes must survive this.
  void Kill();

  // Last `max_bytes` bytes of the child's combined stdout/stderr.
  std::string LogTail(size_t max_bytes = 4096) const;

 private:
  MnemodProcess() = default;

  pid_t pid_ = -1;
  int port_ = 0;
  std::string work_dir_;   // temp dir for the port file and log; always ours
  std::string data_dir_;
  bool owns_data_dir_ = false;
  std::string log_path_;
};

}  // namespace mnemo::testing

#endif  // MNEMO_TESTS_INTEGRATION_MNEMOD_PROCESS_H_
