// mnemod: the mnemo gRPC server.
//
// Opens the store in --data-dir, serves mnemo.v1.Mnemo plus the standard
// health service and server reflection on --listen, and shuts down
// gracefully on SIGTERM / SIGINT: stop accepting calls, let running ones
// finish (5 s), then close the store (snapshots + flush) and exit 0.
//
// Once serving it writes the bound port to --port-file (atomically, via a
// temporary file and rename) and prints
//   mnemod listening on HOST:PORT data_dir=DIR
// on stdout; scripts and tests wait for either.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <prometheus/registry.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/store.h"
#include "server/logging.h"
#include "server/kv_arena.h"
#include "server/kv_arena_socket.h"
#include "server/api_keys.h"
#include "server/auth_service.h"
#include "server/authorizer.h"
#include "server/inject_service.h"
#include "server/kv_service.h"
#include "server/metrics_endpoint.h"
#include "server/rpc_metrics.h"
#include "server/store_metrics.h"
#include "server/tls_credentials.h"
#include "server/memory_service.h"
#include "server/service.h"

#ifndef MNEMO_VERSION
#define MNEMO_VERSION "0.0.0"
#endif

namespace mnemo::server {
namespace {

// Self-pipe: the signal handler only writes one byte; main blocks reading.
int g_signal_pipe[2] = {-1, -1};

void OnSignal(int signo) {
  const char byte = static_cast<char>(signo);
  // write() is async-signal-safe; a full pipe already has a pending wake-up.
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &byte, 1);
}

absl::Status InstallSignalHandlers() {
  if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (sigaction(SIGTERM, &action, nullptr) != 0 || sigaction(SIGINT, &action, nullptr) != 0) {
    return absl::InternalError(absl::StrCat("sigaction: ", std::strerror(errno)));
  }
  signal(SIGPIPE, SIG_IGN);
  return absl::OkStatus();
}

// Blocks until a termination signal arrives; returns its number.
int WaitForSignal() {
  while (true) {
    char byte = 0;
    ssize_t n = read(g_signal_pipe[0], &byte, 1);
    if (n == 1) return static_cast<unsigned char>(byte);
    if (n < 0 && errno == EINTR) continue;
    return 0;
  }
}

// Writes `port` to `path` via path.tmp + rename so readers never see a
// partial file.
absl::Status WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("rename ", tmp, " -> ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// "host:port" → "host" (keeps brackets of an IPv6 literal).
std::string HostOf(const std::string& listen) {
  size_t colon = listen.rfind(':');
  return colon == std::string::npos ? listen : listen.substr(0, colon);
}

// Whether `host` (HostOf a --listen address) only accepts connections from
// this machine: a loopback address, localhost, or a Unix socket.
bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0 ||
         host.rfind("unix:", 0) == 0 || host.rfind("unix-abstract:", 0) == 0;
}

struct Flags {
  std::string listen = "127.0.0.1:7070";
  std::string data_dir = "./mnemo-data";
  std::string port_file;
  int max_message_bytes = 64 << 20;
  uint32_t max_k = db::Limits{}.max_k;
  uint32_t max_query_batch = db::Limits{}.max_query_batch;
  uint32_t max_write_batch = db::Limits{}.max_write_batch;
  bool sync_writes = true;
  uint32_t kv_expiry_interval_seconds =
      static_cast<uint32_t>(db::StoreOptions{}.kv_expiry_interval_ms / 1000);
  uint32_t kv_recency_flush_seconds =
      static_cast<uint32_t>(db::StoreOptions{}.kv_recency_flush_ms / 1000);
  uint32_t memory_expiry_interval_seconds =
      static_cast<uint32_t>(db::StoreOptions{}.memory_expiry_interval_ms / 1000);
  uint64_t memory_expired_keep_seconds = db::StoreOptions{}.memory_expired_keep_ms / 1000;
  uint64_t kv_arena_bytes = 0;  // 0: no hot tier
  uint64_t block_cache_bytes = db::StoreOptions{}.block_cache_bytes;
  uint64_t memtable_bytes = db::StoreOptions{}.memtable_bytes;
  std::string kv_arena_socket;  // default: <data_dir>/kv-arena.sock
  std::string metrics_listen;   // empty: no /metrics endpoint
  TlsFiles tls;                 // no cert: plaintext
  std::string restore_from;     // a backup directory to restore into data_dir first
  uint32_t restore_backup_id = 0;  // 0 = the newest
  std::string metrics_port_file;
  std::string admin_key_file;  // set = authentication on
  bool insecure = false;       // allow a non-loopback --listen without authentication
  RateLimit rate_limit;        // default request rate of every API key
  std::string log_format = "text";
  std::string log_level = "info";
  // Used when assets_dir_set; otherwise $MNEMO_ASSETS_DIR, else ./.assets
  // when it exists, else none.
  std::string assets_dir;
  bool assets_dir_set = false;
};

// The directory holding the encoders' assets (see the --assets-dir help).
std::string ResolveAssetsDir(const Flags& flags) {
  if (flags.assets_dir_set) return flags.assets_dir;
  const char* env = std::getenv("MNEMO_ASSETS_DIR");
  if (env != nullptr && *env != '\0') return env;
  std::error_code ec;
  if (std::filesystem::is_directory(".assets", ec)) {
    return std::filesystem::absolute(".assets", ec).string();
  }
  return "";
}

int Run(const Flags& flags) {
  if (absl::Status s = InitLogging(
          flags.log_format == "json" ? LogFormat::kJson : LogFormat::kText, flags.log_level);
      !s.ok()) {
    std::fprintf(stderr, "mnemod: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (absl::Status s = InstallSignalHandlers(); !s.ok()) {
    LogEvent(spdlog::level::critical, "cannot install signal handlers",
             {{"error", std::string(s.message())}});
    return 1;
  }

  if (flags.admin_key_file.empty() && !flags.insecure && !IsLoopbackHost(HostOf(flags.listen))) {
    LogEvent(spdlog::level::critical,
             "refusing to serve a non-loopback address without authentication: give "
             "--admin-key-file, or --insecure to serve it open",
             {{"listen", flags.listen}});
    return 2;
  }
  if (flags.admin_key_file.empty() && flags.rate_limit.rps > 0) {
    LogEvent(spdlog::level::critical, "--rate-limit-rps limits API keys: it needs --admin-key-file",
             {});
    return 2;
  }
  std::string admin_key;
  if (!flags.admin_key_file.empty()) {
    absl::StatusOr<std::string> read = ReadAdminKeyFile(flags.admin_key_file);
    if (!read.ok()) {
      LogEvent(spdlog::level::critical, "cannot read the admin key",
               {{"error", std::string(read.status().message())}});
      return 2;
    }
    admin_key = *std::move(read);
  }

  if (!flags.restore_from.empty()) {
    if (absl::Status s = db::Store::RestoreBackup(flags.restore_from, flags.restore_backup_id,
                                                  flags.data_dir);
        !s.ok()) {
      LogEvent(spdlog::level::critical, "cannot restore backup",
               {{"backup_dir", flags.restore_from},
                {"id", flags.restore_backup_id},
                {"data_dir", flags.data_dir},
                {"code", absl::StatusCodeToString(s.code())},
                {"error", std::string(s.message())}});
      return 1;
    }
    LogEvent(spdlog::level::info, "backup restored",
             {{"backup_dir", flags.restore_from},
              {"id", flags.restore_backup_id},
              {"data_dir", flags.data_dir}});
  }
  db::StoreOptions options;
  options.sync_writes = flags.sync_writes;
  options.block_cache_bytes = flags.block_cache_bytes;
  options.memtable_bytes = flags.memtable_bytes;
  options.kv_expiry_interval_ms = uint64_t{flags.kv_expiry_interval_seconds} * 1000;
  options.memory_expiry_interval_ms = uint64_t{flags.memory_expiry_interval_seconds} * 1000;
  options.memory_expired_keep_ms = flags.memory_expired_keep_seconds * 1000;
  options.kv_recency_flush_ms = uint64_t{flags.kv_recency_flush_seconds} * 1000;
  options.limits.max_k = flags.max_k;
  options.limits.max_query_batch = flags.max_query_batch;
  options.limits.max_write_batch = flags.max_write_batch;
  options.encoder_dir = ResolveAssetsDir(flags);
  LogEvent(spdlog::level::info, "encoder assets",
           {{"assets_dir", options.encoder_dir.empty() ? std::string("(none)")
                                                       : options.encoder_dir}});
  auto store_or = db::Store::Open(options, flags.data_dir);
  if (!store_or.ok()) {
    LogEvent(spdlog::level::critical, "cannot open store",
             {{"data_dir", flags.data_dir},
              {"code", absl::StatusCodeToString(store_or.status().code())},
              {"error", std::string(store_or.status().message())}});
    return 1;
  }
  std::unique_ptr<db::Store> store = std::move(store_or).value();

  std::unique_ptr<ApiKeys> api_keys;
  std::unique_ptr<Authorizer> authorizer;
  if (!admin_key.empty()) {
    absl::StatusOr<std::unique_ptr<ApiKeys>> loaded = ApiKeys::Load(store.get());
    if (!loaded.ok()) {
      LogEvent(spdlog::level::critical, "cannot load API keys",
               {{"error", std::string(loaded.status().message())}});
      mnemo::IgnoreError(store->Close());
      return 1;
    }
    api_keys = *std::move(loaded);
    authorizer = std::make_unique<Authorizer>(api_keys.get(), admin_key, flags.rate_limit);
  }
  MnemoService service(store.get(), MNEMO_VERSION, authorizer.get());
  std::shared_ptr<KvArena> arena;  // shared with the slices GetKv sends from it
  std::unique_ptr<KvArenaSocket> arena_socket;
  if (flags.kv_arena_bytes > 0) {
    absl::StatusOr<std::unique_ptr<KvArena>> made = KvArena::Create(flags.kv_arena_bytes);
    // Absolute: clients are told this path (KvArenaInfo).
    std::error_code ec;
    const std::string socket_path =
        std::filesystem::absolute(flags.kv_arena_socket.empty()
                                      ? std::filesystem::path(flags.data_dir) / "kv-arena.sock"
                                      : std::filesystem::path(flags.kv_arena_socket),
                                  ec)
            .string();
    absl::StatusOr<std::unique_ptr<KvArenaSocket>> served =
        made.ok() ? KvArenaSocket::Start(socket_path, made->get(), authorizer.get())
                  : made.status();
    if (!served.ok()) {
      LogEvent(spdlog::level::critical, "cannot start the KV arena",
               {{"bytes", flags.kv_arena_bytes},
                {"socket", socket_path},
                {"error", std::string(served.status().message())}});
      mnemo::IgnoreError(store->Close());
      return 1;
    }
    arena = *std::move(made);
    arena_socket = *std::move(served);
    LogEvent(spdlog::level::info, "KV arena",
             {{"bytes", arena->size()}, {"huge_pages", arena->huge_pages()},
              {"socket", socket_path}});
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ServerCredentials(flags.tls);
  if (!credentials.ok()) {
    LogEvent(spdlog::level::critical, "cannot set up TLS",
             {{"error", std::string(credentials.status().message())}});
    mnemo::IgnoreError(store->Close());
    return 1;
  }
  KvService kv_service(store.get(), arena,
                       arena_socket != nullptr ? arena_socket->path() : "", authorizer.get(),
                       static_cast<size_t>(flags.max_message_bytes));
  InjectService inject_service(store.get(), authorizer.get());
  AuthService auth_service(authorizer != nullptr ? authorizer.get() : &Authorizer::Off());
  // Metrics: the RPC interceptor records from the first call on; the
  // endpoint starts once the server serves.
  auto registry = std::make_shared<prometheus::Registry>();
  RpcMetrics rpc_metrics(*registry);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (!flags.metrics_listen.empty()) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(rpc_metrics.NewInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  int port = 0;
  builder.AddListeningPort(flags.listen, *credentials, &port);
  // Oversized messages are refused by gRPC itself with RESOURCE_EXHAUSTED.
  builder.SetMaxReceiveMessageSize(flags.max_message_bytes);
  builder.SetMaxSendMessageSize(flags.max_message_bytes);
  builder.RegisterService(&service);
  builder.RegisterService(&kv_service);
  builder.RegisterService(&inject_service);
  MemoryService memory_service(store.get(), authorizer.get());
  builder.RegisterService(&memory_service);
  builder.RegisterService(&auth_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    LogEvent(spdlog::level::critical, "cannot listen", {{"listen", flags.listen}});
    mnemo::IgnoreError(store->Close());
    return 1;
  }

  std::unique_ptr<MetricsEndpoint> metrics;
  if (!flags.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsEndpoint>> started = MetricsEndpoint::Start(
        flags.metrics_listen,
        {registry, std::make_shared<StoreMetrics>(store.get(), arena.get())});
    absl::Status s = started.ok() ? absl::OkStatus() : started.status();
    if (s.ok() && !flags.metrics_port_file.empty()) {
      s = WritePortFile(flags.metrics_port_file, (*started)->port());
    }
    if (!s.ok()) {
      LogEvent(spdlog::level::critical, "cannot serve metrics",
               {{"metrics_listen", flags.metrics_listen}, {"error", std::string(s.message())}});
      server->Shutdown();
      mnemo::IgnoreError(store->Close());
      return 1;
    }
    metrics = *std::move(started);
    LogEvent(spdlog::level::info, "metrics",
             {{"address", absl::StrCat(HostOf(flags.metrics_listen), ":", metrics->port())},
              {"path", "/metrics"}});
  }
  if (!flags.port_file.empty()) {
    if (absl::Status s = WritePortFile(flags.port_file, port); !s.ok()) {
      LogEvent(spdlog::level::critical, "cannot write port file",
               {{"port_file", flags.port_file}, {"error", std::string(s.message())}});
      server->Shutdown();
      mnemo::IgnoreError(store->Close());
      return 1;
    }
  }
  const std::string address = absl::StrCat(HostOf(flags.listen), ":", port);
  std::printf("mnemod listening on %s data_dir=%s\n", address.c_str(), flags.data_dir.c_str());
  std::fflush(stdout);
  LogEvent(spdlog::level::info, "serving",
           {{"address", address},
            {"data_dir", flags.data_dir},
            {"version", MNEMO_VERSION},
            {"max_message_bytes", flags.max_message_bytes},
            {"tls", flags.tls.cert.empty() ? "off"
                    : flags.tls.client_ca.empty() ? "on" : "mutual"},
            {"auth", authorizer != nullptr ? "on" : "off"},
            {"sync_writes", flags.sync_writes}});

  const int signo = WaitForSignal();
  LogEvent(spdlog::level::info, "shutting down", {{"signal", strsignal(signo)}});
  // Idle clients only notice the GOAWAY when they next poll their channel,
  // so a connected but idle client can hold shutdown until the deadline.
  const auto shutdown_start = std::chrono::steady_clock::now();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server->Wait();
  LogEvent(spdlog::level::info, "grpc server stopped",
           {{"elapsed_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - shutdown_start)
                               .count()}});
  metrics.reset();  // its collectors read the store
  absl::Status close_status = store->Close();
  if (!close_status.ok()) {
    LogEvent(spdlog::level::err, "store close failed",
             {{"code", absl::StatusCodeToString(close_status.code())},
              {"error", std::string(close_status.message())}});
    return 1;
  }
  LogEvent(spdlog::level::info, "stopped", {{"data_dir", flags.data_dir}});
  return 0;
}

}  // namespace
}  // namespace mnemo::server

int main(int argc, char** argv) {
  mnemo::server::Flags flags;
  CLI::App app{"mnemod: the mnemo retrieval memory server"};
  app.set_config("--config", "", "read flags from a TOML/INI file (same keys as the flags)");
  app.add_option("--listen", flags.listen, "address to serve on (host:port; port 0 = any)")
      ->capture_default_str();
  app.add_option("--data-dir", flags.data_dir, "store directory (created when missing)")
      ->capture_default_str();
  app.add_option("--port-file", flags.port_file,
                 "write the bound port here once serving (atomically)");
  app.add_option("--max-message-bytes", flags.max_message_bytes,
                 "largest gRPC message received or sent")
      ->capture_default_str()
      ->check(CLI::Range(1024, 2047 << 20));
  app.add_option("--max-k", flags.max_k, "largest search k")->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-query-batch", flags.max_query_batch, "most queries per Search")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-write-batch", flags.max_write_batch,
                 "most documents + chunks per Upsert message")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--sync-writes", flags.sync_writes,
                 "sync the WAL before acknowledging writes (true/false)")
      ->capture_default_str();
  app.add_option("--block-cache-bytes", flags.block_cache_bytes,
                 "RocksDB block cache (uncompressed blocks of the store's tables)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1} << 20, uint64_t{1} << 40));
  app.add_option("--memtable-bytes", flags.memtable_bytes,
                 "budget of all memtables together; past it the largest is flushed "
                 "(0 = only each column family's own limit)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 40));
  app.add_option("--kv-arena-bytes", flags.kv_arena_bytes,
                 "size of the shared memory hot tier for chunk KV, served to same-host clients "
                 "as read-only leases (0 = off)")
      ->capture_default_str();
  app.add_option("--memory-expiry-interval-seconds", flags.memory_expiry_interval_seconds,
                 "delete agent memories whose expiry passed (see --memory-expired-keep-seconds) "
                 "this often (0 = never)")
      ->capture_default_str()
      ->check(CLI::Range(0, 86400));
  app.add_option("--memory-expired-keep-seconds", flags.memory_expired_keep_seconds,
                 "keep expired agent memories this long (hidden, readable with show_expired) "
                 "before the expiry timer deletes them")
      ->capture_default_str();
  app.add_option("--kv-expiry-interval-seconds", flags.kv_expiry_interval_seconds,
                 "remove expired chunk KV in the background this often (0 = only at the "
                 "next KV put and on Compact)")
      ->capture_default_str()
      ->check(CLI::Range(0, 86400));
  app.add_option("--kv-recency-flush-seconds", flags.kv_recency_flush_seconds,
                 "persist the read recency of chunk KV (the LRU order across restarts) this "
                 "often (0 = only at shutdown)")
      ->capture_default_str()
      ->check(CLI::Range(0, 86400));
  app.add_option("--kv-arena-socket", flags.kv_arena_socket,
                 "Unix-domain socket handing the KV arena to same-host clients "
                 "(default: <data-dir>/kv-arena.sock)");
  app.add_option("--restore-from", flags.restore_from,
                 "restore a backup (mnemo backup create) into --data-dir, which must be new or "
                 "empty, then serve it; indexes are rebuilt from the restored vectors");
  app.add_option("--restore-backup-id", flags.restore_backup_id,
                 "which backup of --restore-from (default: the newest)");
  app.add_option("--tls-cert", flags.tls.cert,
                 "serve TLS with this PEM certificate chain (with --tls-key; default: plaintext)");
  app.add_option("--tls-key", flags.tls.key, "PEM private key of --tls-cert");
  app.add_option("--tls-client-ca", flags.tls.client_ca,
                 "require every client to present a certificate signed by this PEM CA bundle "
                 "(mutual TLS)");
  app.add_option("--admin-key-file", flags.admin_key_file,
                 "turn API-key authentication on; the file's first line is the global admin's "
                 "key (at least 16 bytes, e.g. openssl rand -hex 32); clients send keys as "
                 "'authorization: Bearer KEY'");
  app.add_flag("--insecure", flags.insecure,
               "serve a non-loopback --listen address without --admin-key-file (anyone who "
               "reaches the port may read and change everything)");
  app.add_option("--rate-limit-rps", flags.rate_limit.rps,
                 "requests per second of each API key (token bucket; 0 = unlimited; a key's own "
                 "limit from CreateKey wins)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--rate-limit-burst", flags.rate_limit.burst,
                 "bucket size of --rate-limit-rps (0 = one second's worth)")
      ->capture_default_str();
  app.add_option("--metrics-listen", flags.metrics_listen,
                 "serve Prometheus metrics at http://HOST:PORT/metrics (port 0 = any; "
                 "default: off)");
  app.add_option("--metrics-port-file", flags.metrics_port_file,
                 "write the metrics endpoint's bound port here once serving (atomically)");
  app.add_option("--log-format", flags.log_format, "text or json")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", flags.log_level,
                 "trace, debug, info, warn, error, critical or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--assets-dir", flags.assets_dir,
                 "directory holding the built-in encoders' assets (use-lite/ from "
                 "scripts/fetch_assets); default: $MNEMO_ASSETS_DIR, else ./.assets when it "
                 "exists; without it the server runs and text operations fail with "
                 "FAILED_PRECONDITION");
  CLI11_PARSE(app, argc, argv);
  flags.assets_dir_set = app.count("--assets-dir") > 0;
  return mnemo::server::Run(flags);
}
