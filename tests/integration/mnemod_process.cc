#include "tests/integration/mnemod_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <algorithm>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"

extern char** environ;

namespace mnemo::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr auto kPollInterval = std::chrono::milliseconds(10);

std::string TempRoot() {
  for (const char* var : {"TEST_TMPDIR", "TMPDIR"}) {
    const char* value = std::getenv(var);
    if (value != nullptr && *value != '\0') return value;
  }
  return "/tmp";
}

// Reads the port mnemod wrote (atomically, via rename) to `path`; 0 while
// the file does not exist yet.
int ReadPortFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return 0;
  std::stringstream buffer;
  buffer << in.rdbuf();
  int port = 0;
  std::string text = buffer.str();
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port)) return 0;
  return port;
}

std::string DescribeExit(int wait_status) {
  if (WIFEXITED(wait_status)) return absl::StrCat("exit code ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return absl::StrCat("killed by signal ", WTERMSIG(wait_status));
  return absl::StrCat("wait status ", wait_status);
}

// Waits for `pid` to exit for at most `timeout`. Returns the wait status, or
// -1 on timeout.
int WaitWithTimeout(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    int wait_status = 0;
    pid_t r = waitpid(pid, &wait_status, WNOHANG);
    if (r == pid) return wait_status;
    if (r < 0 && errno != EINTR) return 0;  // already reaped elsewhere
    if (Clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(kPollInterval);
  }
}

}  // namespace

std::string BinDir() {
  const char* dir = std::getenv("MNEMO_BIN_DIR");
  if (dir != nullptr && *dir != '\0') return dir;
  return "./bin";
}

absl::StatusOr<std::string> MakeTempDir(const std::string& prefix) {
  std::string templ = absl::StrCat(TempRoot(), "/", prefix, "-XXXXXX");
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("mkdtemp(", templ, "): ", std::strerror(errno)));
  }
  return std::string(buf.data());
}

absl::StatusOr<std::unique_ptr<MnemodProcess>> MnemodProcess::Start(
    std::vector<std::string> extra_flags, std::string data_dir,
    std::chrono::milliseconds ready_timeout) {
  const std::string binary = BinDir() + "/mnemod";
  if (access(binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("mnemod binary not executable at ", binary,
                     " (set MNEMO_BIN_DIR)"));
  }

  std::unique_ptr<MnemodProcess> proc(new MnemodProcess());
  auto work_dir = MakeTempDir("mnemod");
  if (!work_dir.ok()) return work_dir.status();
  proc->work_dir_ = *work_dir;
  proc->log_path_ = proc->work_dir_ + "/mnemod.log";
  if (data_dir.empty()) {
    proc->data_dir_ = proc->work_dir_ + "/data";
    proc->owns_data_dir_ = true;
  } else {
    proc->data_dir_ = std::move(data_dir);
  }
  const std::string port_file = proc->work_dir_ + "/port";

  // A test may name the address (to restart on the same port).
  const bool listens = std::find(extra_flags.begin(), extra_flags.end(), "--listen") !=
                       extra_flags.end();
  std::vector<std::string> args = {binary, "--port-file", port_file, "--data-dir",
                                   proc->data_dir_};
  if (!listens) {
    args.push_back("--listen");
    args.push_back("127.0.0.1:0");
  }
  for (auto& flag : extra_flags) args.push_back(std::move(flag));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, proc->log_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("posix_spawn(", binary, "): ", std::strerror(rc)));
  }
  proc->pid_ = pid;

  const auto deadline = Clock::now() + ready_timeout;
  while (true) {
    int port = ReadPortFile(port_file);
    if (port > 0) {
      proc->port_ = port;
      return proc;
    }
    int wait_status = 0;
    if (waitpid(pid, &wait_status, WNOHANG) == pid) {
      proc->pid_ = -1;
      return absl::InternalError(
          absl::StrCat("mnemod exited before serving (", DescribeExit(wait_status),
                       "): ", absl::StrJoin(args, " "), "\n--- log ---\n",
                       proc->LogTail()));
    }
    if (Clock::now() >= deadline) {
      proc->Kill();
      return absl::DeadlineExceededError(
          absl::StrCat("mnemod not ready after ", ready_timeout.count(), " ms\n--- log ---\n",
                       proc->LogTail()));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

MnemodProcess::~MnemodProcess() {
  // A failed stop in a destructor has nobody to report to; tests that care
  // call Stop() themselves.
  if (running()) mnemo::IgnoreError(Stop());
  std::error_code ec;
  if (owns_data_dir_ && !data_dir_.empty()) fs::remove_all(data_dir_, ec);
  if (!work_dir_.empty()) fs::remove_all(work_dir_, ec);
}

std::string MnemodProcess::target() const { return absl::StrCat("127.0.0.1:", port_); }

absl::Status MnemodProcess::Stop(std::chrono::milliseconds timeout) {
  if (!running()) return absl::FailedPreconditionError("mnemod is not running");
  const pid_t pid = pid_;
  kill(pid, SIGTERM);
  int wait_status = WaitWithTimeout(pid, timeout);
  pid_ = -1;
  if (wait_status == -1) {
    kill(pid, SIGKILL);
    WaitWithTimeout(pid, std::chrono::seconds(10));
    return absl::DeadlineExceededError(
        absl::StrCat("mnemod did not exit within ", timeout.count(),
                     " ms of SIGTERM; killed\n--- log ---\n", LogTail()));
  }
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
    return absl::InternalError(absl::StrCat("mnemod stopped with ", DescribeExit(wait_status),
                                            "\n--- log ---\n", LogTail()));
  }
  return absl::OkStatus();
}

void MnemodProcess::Kill() {
  if (!running()) return;
  kill(pid_, SIGKILL);
  WaitWithTimeout(pid_, std::chrono::seconds(10));
  pid_ = -1;
}

std::string MnemodProcess::LogTail(size_t max_bytes) const {
  std::ifstream in(log_path_, std::ios::binary);
  if (!in) return "(no log)";
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  if (text.size() > max_bytes) text = "..." + text.substr(text.size() - max_bytes);
  return text;
}

}  // namespace mnemo::testing
