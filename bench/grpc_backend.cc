// Mode (c): a real mnemod child process searched through the C++ SDK.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "bench/bench_backend.h"
#include "common/status_macros.h"
#include "mnemo/client.h"

extern char** environ;

namespace mnemo::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::string Tail(const std::string& path, size_t max_bytes = 2000) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

// A mnemod child process; the destructor stops it (SIGTERM, then SIGKILL).
class MnemodChild {
 public:
  static absl::StatusOr<std::unique_ptr<MnemodChild>> Start(const BackendConfig& config,
                                                            const std::string& data_dir) {
    if (access(config.mnemod_path.c_str(), X_OK) != 0) {
      return absl::NotFoundError(absl::StrCat("no mnemod binary at ", config.mnemod_path));
    }
    auto child = std::unique_ptr<MnemodChild>(new MnemodChild());
    const std::string stem = absl::StrCat(config.work_dir, "/mnemod-", config.namespace_name);
    child->log_path_ = stem + ".log";
    const std::string port_file = stem + ".port";
    std::error_code ec;
    std::filesystem::remove(port_file, ec);

    std::vector<std::string> args = {config.mnemod_path,
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--port-file",
                                     port_file,
                                     "--data-dir",
                                     data_dir,
                                     "--max-message-bytes",
                                     absl::StrCat(config.max_message_bytes),
                                     "--sync-writes",
                                     "false",
                                     "--log-level",
                                     "warn"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Same OpenMP team size as the in-process modes; everything else
    // inherited.
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "OMP_NUM_THREADS=", 16) != 0) env_strings.emplace_back(*e);
    }
    env_strings.push_back(absl::StrCat("OMP_NUM_THREADS=", config.threads));
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, child->log_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    const int rc = posix_spawn(&child->pid_, argv[0], &actions, nullptr, argv.data(),
                               envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      child->pid_ = -1;
      return absl::InternalError(absl::StrCat("posix_spawn mnemod: ", std::strerror(rc)));
    }

    // Wait for the port file, which mnemod writes once it is serving.
    const auto deadline = Clock::now() + std::chrono::seconds(120);
    while (Clock::now() < deadline) {
      int status = 0;
      if (waitpid(child->pid_, &status, WNOHANG) == child->pid_) {
        child->pid_ = -1;
        return absl::InternalError(
            absl::StrCat("mnemod exited early (status ", status, "):\n", Tail(child->log_path_)));
      }
      std::ifstream in(port_file);
      std::string text;
      if (in && std::getline(in, text)) {
        int port = 0;
        if (absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port) && port > 0) {
          child->target_ = absl::StrCat("127.0.0.1:", port);
          return child;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("mnemod did not serve within 120 s:\n", Tail(child->log_path_)));
  }

  ~MnemodChild() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    int status = 0;
    while (Clock::now() < deadline) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }

  const std::string& target() const { return target_; }

 private:
  MnemodChild() = default;
  pid_t pid_ = -1;
  std::string target_;
  std::string log_path_;
};

class GrpcBackend final : public Backend {
 public:
  GrpcBackend(std::unique_ptr<MnemodChild> child, std::vector<std::unique_ptr<Client>> clients,
              std::string ns, size_t dim, const BackendConfig& config)
      : child_(std::move(child)),
        clients_(std::move(clients)),
        ns_(std::move(ns)),
        dim_(dim),
        config_(config) {}

  ~GrpcBackend() override {
    clients_.clear();  // close channels before the server goes away
    child_.reset();
  }

  absl::Status PrepareClients(int clients) override {
    ClientOptions options;
    options.max_message_bytes = config_.max_message_bytes;
    options.default_timeout = std::chrono::seconds(600);
    while (clients_.size() < static_cast<size_t>(clients)) {
      ASSIGN_OR_RETURN(auto client, Client::Connect(child_->target(), options));
      clients_.push_back(std::move(client));
    }
    return absl::OkStatus();
  }

  absl::Status Search(int client, const float* queries, size_t n, int k, int ef,
                      int64_t* ids) override {
    SearchRequest request;
    request.ns = ns_;
    request.dim = static_cast<uint32_t>(dim_);
    request.queries.assign(queries, queries + n * dim_);
    request.k = k;
    request.hnsw_ef_search = static_cast<uint32_t>(ef);  // 0 = the server's default
    ASSIGN_OR_RETURN(auto hits, clients_[client]->Search(request));
    if (hits.size() != n) {
      return absl::InternalError(absl::StrCat("server returned ", hits.size(), " lists for ",
                                              n, " queries"));
    }
    std::fill(ids, ids + n * static_cast<size_t>(k), int64_t{-1});
    for (size_t q = 0; q < n; ++q) {
      const size_t m = std::min(hits[q].size(), static_cast<size_t>(k));
      for (size_t j = 0; j < m; ++j) {
        int64_t id = -1;
        if (!absl::SimpleAtoi(hits[q][j].id, &id)) {
          return absl::InternalError(absl::StrCat("unexpected hit id ", hits[q][j].id));
        }
        ids[q * k + j] = id;
      }
    }
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<MnemodChild> child_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::string ns_;
  size_t dim_;
  BackendConfig config_;
};

// Loads the dataset through the SDK when the namespace is not already there
// complete (left by the in-process store backend).
absl::Status EnsureLoaded(Client& client, const Dataset& dataset, const BackendConfig& config,
                          IngestStats* stats) {
  auto info = client.GetNamespace(config.namespace_name);
  if (info.ok() && info->chunk_count == dataset.num_base) {
    stats->reused = true;
    stats->factory = info->config.index_factory;
    stats->note = "namespace left by mnemo-store, index loaded from its snapshot";
    return absl::OkStatus();
  }
  if (info.ok()) RETURN_IF_ERROR(client.DropNamespace(config.namespace_name));
  if (!info.ok() && !absl::IsNotFound(info.status())) return info.status();

  NamespaceConfig ns;
  ns.name = config.namespace_name;
  ns.dim = static_cast<uint32_t>(dataset.dim);
  ns.metric = dataset.distance == Distance::kL2 ? Metric::kL2 : Metric::kInnerProduct;
  ns.index_factory = config.mnemo_factory;
  ns.description = absl::StrCat("bench_search ", dataset.name);
  absl::Status created = client.CreateNamespace(ns).status();
  if (absl::IsInvalidArgument(created) && !config.mnemo_fallback_factory.empty()) {
    stats->note = absl::StrCat("server rejected \"", config.mnemo_factory, "\", built \"",
                               config.mnemo_fallback_factory, "\" (its own efConstruction); ");
    ns.index_factory = config.mnemo_fallback_factory;
    created = client.CreateNamespace(ns).status();
  }
  RETURN_IF_ERROR(created);
  stats->factory = ns.index_factory;

  const auto start = Clock::now();
  std::vector<Chunk> chunks;
  for (size_t first = 0; first < dataset.num_base; first += config.upsert_batch) {
    const size_t n = std::min(config.upsert_batch, dataset.num_base - first);
    chunks.resize(n);
    for (size_t i = 0; i < n; ++i) {
      chunks[i].id = absl::StrCat(first + i);
      const float* v = dataset.base.data() + (first + i) * dataset.dim;
      chunks[i].vector.assign(v, v + dataset.dim);
    }
    auto written = client.Upsert(ns.name, {}, chunks);
    if (!written.ok()) return Annotate(written.status(), absl::StrCat("upsert at ", first));
  }
  stats->load_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  // As after the in-process load: snapshot the index now, so that no
  // background snapshot of the fresh namespace overlaps the timed searches.
  const auto checkpoint_start = Clock::now();
  RETURN_IF_ERROR(client.Checkpoint("").status());
  stats->checkpoint_seconds =
      std::chrono::duration<double>(Clock::now() - checkpoint_start).count();
  stats->note += "ingested through the SDK";
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> MakeGrpcBackend(const Dataset& dataset,
                                                         const BackendConfig& config,
                                                         const std::string& data_dir,
                                                         IngestStats* stats) {
  const auto start = Clock::now();
  ASSIGN_OR_RETURN(auto child, MnemodChild::Start(config, data_dir));
  ClientOptions options;
  options.max_message_bytes = config.max_message_bytes;
  options.default_timeout = std::chrono::seconds(600);
  ASSIGN_OR_RETURN(auto client, Client::Connect(child->target(), options));
  stats->start_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  RETURN_IF_ERROR(EnsureLoaded(*client, dataset, config, stats));
  std::vector<std::unique_ptr<Client>> clients;
  clients.push_back(std::move(client));
  return std::make_unique<GrpcBackend>(std::move(child), std::move(clients),
                                       config.namespace_name, dataset.dim, config);
}

}  // namespace mnemo::bench
