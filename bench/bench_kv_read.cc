// bench_kv_read: the KV read path against its own ceilings, in one run.
//
// Cold: --mib of chunk KV (fp16, no entropy stage: blocks stored as the
// wire bytes) is put into an in-process db::Store, the store is reopened,
// the page cache of every file of its data directory is dropped
// (fsync + posix_fadvise(POSIX_FADV_DONTNEED); the resident fraction is
// checked with mincore and printed), and one KvReader reads every block
// layer-major as raw fp16 (db read path: checksum, no decode), with the
// default options (the goal line) and with --read-ahead MiB of grouped
// read-ahead (KvReadOptions::read_ahead_bytes). Baseline: the page cache
// dropped the same way, read() of the same byte count, sequentially in
// 4 MiB reads, from the same blob files. Also shown: the payload
// checksum's speed.
//
// Remote: mnemod started on the same data directory; one GetKv of every
// block as raw fp16 through the C++ SDK (warm) vs a plain gRPC server
// stream (this binary's BytesStream service on 127.0.0.1 in a forked child
// process, as mnemod is a process of its own; one prebuilt message sent
// over and over) of the same bytes in messages of
// the same size (one block's K + V), read with the same synchronous
// ClientReader. Modes interleaved (order swapped each round), median of
// --remote-rounds, with the per-round ratios' spread.
//
// Ends with:
//   goal cold_read_vs_sequential <ratio> 0.8
//   goal grpc_getkv_vs_plain_stream <ratio> 0.8
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "bench/bench_must.h"
#include "db/kv_codec.h"
#include "db/store.h"
#include "grpcpp/grpcpp.h"
#include "kv_read_bench.grpc.pb.h"
#include "mnemo/client.h"
#include "tests/integration/mnemod_process.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

using mnemo::bench::Die;
using mnemo::bench::Must;
double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
double GBps(uint64_t bytes, double seconds) { return static_cast<double>(bytes) / seconds / 1e9; }
double Median(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  const size_t n = x.size();
  return n % 2 == 1 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
}

std::vector<fs::path> FilesUnder(const std::string& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// fsync + POSIX_FADV_DONTNEED on every file under `dir`; returns the
// fraction of their pages still resident afterwards (mincore).
double DropCacheOf(const std::string& dir) {
  uint64_t pages = 0, resident = 0;
  const long page = sysconf(_SC_PAGESIZE);
  for (const fs::path& p : FilesUnder(dir)) {
    const int fd = open(p.c_str(), O_RDONLY);
    if (fd < 0) continue;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    const off_t size = lseek(fd, 0, SEEK_END);
    if (size > 0) {
      void* m = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
      if (m != MAP_FAILED) {
        std::vector<unsigned char> vec((size + page - 1) / page);
        if (mincore(m, size, vec.data()) == 0) {
          for (unsigned char c : vec) resident += c & 1;
          pages += vec.size();
        }
        munmap(m, size);
      }
    }
    close(fd);
  }
  return pages == 0 ? 0 : static_cast<double>(resident) / pages;
}

// read() of `bytes` from the blob files under `dir`, in order, 4 MiB at a
// time; returns the bytes read.
uint64_t SequentialRead(const std::string& dir, uint64_t bytes) {
  constexpr size_t kBuf = 4 << 20;
  std::vector<char> buf(kBuf);
  uint64_t done = 0;
  for (const fs::path& p : FilesUnder(dir)) {
    if (p.extension() != ".blob") continue;
    const int fd = open(p.c_str(), O_RDONLY);
    if (fd < 0) continue;
    while (done < bytes) {
      const ssize_t n = read(fd, buf.data(), std::min<uint64_t>(kBuf, bytes - done));
      if (n <= 0) break;
      done += n;
    }
    close(fd);
    if (done >= bytes) break;
  }
  return done;
}

mnemo::ModelFingerprint DbModel(int layers, int kv_heads, int head_dim) {
  mnemo::ModelFingerprint m;
  m.architecture = "llama";
  m.n_layers = layers;
  m.n_heads = kv_heads * 4;
  m.n_kv_heads = kv_heads;
  m.head_dim = head_dim;
  m.dim = kv_heads * 4 * head_dim;
  m.rope_theta = 500000;
  m.rope_style = "half";
  m.dtype = "bfloat16";
  m.tokenizer_sha256 = "bench";
  return m;
}

// Every block through the db read path as raw fp16; returns the K+V bytes.
uint64_t DbReadAll(mnemo::db::Store* store, const std::vector<std::string>& ids,
                   const mnemo::ModelFingerprint& model, uint64_t read_ahead) {
  mnemo::db::KvReadOptions options;
  options.chunk_ids = ids;
  options.model = model;
  options.as_bytes = mnemo::db::KvDtype::kFp16;
  options.read_ahead_bytes = read_ahead << 20;
  auto reader = Must(store->ReadKv("kv", options), "ReadKv");
  mnemo::db::KvBlock block;
  uint64_t bytes = 0;
  while (Must(reader->Next(&block), "ReadKv block")) {
    if (block.k_bytes.empty()) Die("ReadKv", absl::InternalError("block not raw"));
    bytes += block.k_bytes.size() + block.v_bytes.size();
  }
  return bytes;
}

// The plain stream: one prebuilt message of the asked size, sent over and
// over.
class BytesStreamService final : public mnemo::bench::BytesStream::CallbackService {
  grpc::ServerWriteReactor<mnemo::bench::BytesMessage>* Stream(
      grpc::CallbackServerContext*, const mnemo::bench::BytesStreamRequest* request) override {
    class Reactor final : public grpc::ServerWriteReactor<mnemo::bench::BytesMessage> {
     public:
      Reactor(uint64_t messages, uint64_t bytes) : left_(messages) {
        message_.mutable_data()->assign(bytes, '\x5a');
        Next();
      }
      void OnWriteDone(bool ok) override {
        if (!ok) {
          Finish(grpc::Status(grpc::StatusCode::CANCELLED, "broken"));
          return;
        }
        Next();
      }
      void OnDone() override { delete this; }

     private:
      void Next() {
        if (left_ == 0) {
          Finish(grpc::Status::OK);
          return;
        }
        --left_;
        StartWrite(&message_);
      }
      uint64_t left_;
      mnemo::bench::BytesMessage message_;
    };
    return new Reactor(request->messages(), request->message_bytes());
  }
};

// The plain stream's server in a child process of its own, forked before
// this process starts any gRPC or store thread: like mnemod, it does not
// share the client's process (an in-process server competes with the
// client for the same gRPC threads, which made the "ceiling" slower than
// GetKv from mnemod).
class PlainStreamServer {
 public:
  PlainStreamServer() {
    int fds[2];
    if (pipe(fds) != 0) Die("pipe", absl::InternalError("pipe failed"));
    pid_ = fork();
    if (pid_ < 0) Die("fork", absl::InternalError("fork failed"));
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // gone with the bench, also when it dies
      close(fds[0]);
      BytesStreamService service;
      int port = 0;
      grpc::ServerBuilder builder;
      builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
      builder.RegisterService(&service);
      builder.SetMaxSendMessageSize(-1);
      std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
      if (server == nullptr) port = 0;
      if (write(fds[1], &port, sizeof port) != sizeof port || port == 0) _exit(1);
      server->Wait();  // until the parent kills it
      _exit(0);
    }
    close(fds[1]);
    fd_ = fds[0];
  }
  ~PlainStreamServer() { Stop(); }
  // The server's port (waits for it to listen).
  int Port() {
    if (port_ == 0 && fd_ >= 0) {
      if (read(fd_, &port_, sizeof port_) != sizeof port_ || port_ == 0) {
        Die("plain stream", absl::UnavailableError("could not start the BytesStream server"));
      }
    }
    return port_;
  }
  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_kv_read: cold KV reads vs sequential read(), GetKv vs a plain gRPC stream"};
  int layers = 32, kv_heads = 8, head_dim = 128, tokens = 256, rounds = 3, remote_rounds = 15;
  uint64_t mib = 256;
  uint64_t read_ahead = 16;
  std::string bin_dir;
  app.add_option("--mib", mib, "MiB of fp16 K+V stored and read")->capture_default_str();
  app.add_option("--layers", layers)->capture_default_str();
  app.add_option("--kv-heads", kv_heads)->capture_default_str();
  app.add_option("--head-dim", head_dim)->capture_default_str();
  app.add_option("--tokens", tokens, "tokens per chunk")->capture_default_str();
  app.add_option("--read-ahead", read_ahead, "MiB: KvReadOptions::read_ahead_bytes of the db read")
      ->capture_default_str();
  app.add_option("--rounds", rounds, "rounds per measurement (best kept)")->capture_default_str();
  app.add_option("--remote-rounds", remote_rounds,
                 "interleaved rounds of GetKv vs the plain stream (medians reported)")
      ->capture_default_str();
  app.add_option("--bin-dir", bin_dir, "where mnemod is (default: beside this binary)");
  CLI11_PARSE(app, argc, argv);
  if (bin_dir.empty()) bin_dir = fs::absolute(fs::path(argv[0])).parent_path().string();
  if (std::getenv("MNEMO_BIN_DIR") == nullptr) setenv("MNEMO_BIN_DIR", bin_dir.c_str(), 1);
  rounds = std::max(1, rounds);
  PlainStreamServer plain_server;  // forked first, before any thread starts
  remote_rounds = std::max(1, remote_rounds);

  const uint64_t block_bytes = uint64_t{2} * kv_heads * tokens * head_dim * 2;  // K + V, fp16
  const uint64_t chunk_bytes = block_bytes * layers;
  const int chunks = static_cast<int>(std::max<uint64_t>(1, (mib << 20) / chunk_bytes));
  const uint64_t total = chunk_bytes * chunks;
  std::printf("bench_kv_read: %d chunks x %d layers, blocks of %.2f MiB (K+V fp16), %.0f MiB\n",
              chunks, layers, block_bytes / 1048576.0, total / 1048576.0);

  // ---- Store the KV in-process.
  const std::string data_dir = Must(mnemo::testing::MakeTempDir("bench-kv-read"), "temp dir");
  const mnemo::ModelFingerprint model = DbModel(layers, kv_heads, head_dim);
  std::vector<std::string> ids;
  mnemo::db::StoreOptions store_options;
  store_options.sync_writes = false;
  {
    auto store = Must(mnemo::db::Store::Open(store_options, data_dir), "open store");
    mnemo::db::NamespaceConfig ns;
    ns.name = "kv";
    ns.dim = 4;
    Must(store->CreateNamespace(ns).status(), "create namespace");
    std::vector<mnemo::db::Chunk> rows;
    for (int c = 0; c < chunks; ++c) {
      mnemo::db::Chunk chunk;
      chunk.id = absl::StrCat("chunk-", c);
      chunk.text = chunk.id;
      chunk.vector = {1.0f, static_cast<float>(c), 0.0f, 0.0f};
      rows.push_back(chunk);
      ids.push_back(chunk.id);
    }
    Must(store->Upsert("kv", {}, rows).status(), "upsert");
    mnemo::db::KvConfig config;
    config.model = model;
    config.codec.kind = mnemo::db::KvCodecKind::kFp16;
    config.codec.entropy = false;
    Must(store->RegisterKvModel("kv", config).status(), "register");
    const size_t elements = static_cast<size_t>(kv_heads) * tokens * head_dim;
    std::mt19937 rng(42);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> k(elements), v(elements);
    for (float& x : k) x = normal(rng);
    for (float& x : v) x = normal(rng);
    const mnemo::db::KvTensorShape shape{static_cast<uint32_t>(kv_heads),
                                         static_cast<uint32_t>(tokens),
                                         static_cast<uint32_t>(head_dim)};
    for (int c = 0; c < chunks; ++c) {
      mnemo::db::KvPutHeader header;
      header.chunk_id = ids[c];
      header.model = model;
      header.tokens.resize(tokens);
      for (int t = 0; t < tokens; ++t) header.tokens[t] = c * tokens + t;
      auto writer = Must(store->BeginPutKv("kv", header), "BeginPutKv");
      for (int l = 0; l < layers; ++l) {
        k[(c * layers + l) % elements] += 1.0f;  // every block distinct
        Must(writer->AddLayer(l, shape, k, v), "AddLayer");
      }
      Must(writer->Commit().status(), "Commit");
    }
    Must(store->Close(), "close store");
  }

  // ---- Cold: db read path vs sequential read(), page cache dropped before each.
  double cold_best = 1e30, cold_plain_best = 1e30, seq_best = 1e30, resident_max = 0;
  double warm_best = 1e30;
  uint64_t seq_bytes = 0;
  {
    auto store = Must(mnemo::db::Store::Open(store_options, data_dir), "reopen store");
    for (int r = 0; r < rounds; ++r) {
      resident_max = std::max(resident_max, DropCacheOf(data_dir));
      auto t0 = Clock::now();
      const uint64_t got = DbReadAll(store.get(), ids, model, read_ahead);
      cold_best = std::min(cold_best, Seconds(t0, Clock::now()));
      if (got != total) Die("db read", absl::InternalError(absl::StrCat("read ", got)));

      resident_max = std::max(resident_max, DropCacheOf(data_dir));
      t0 = Clock::now();
      seq_bytes = SequentialRead(data_dir, total);
      seq_best = std::min(seq_best, Seconds(t0, Clock::now()));

      resident_max = std::max(resident_max, DropCacheOf(data_dir));
      t0 = Clock::now();
      DbReadAll(store.get(), ids, model, 0);
      cold_plain_best = std::min(cold_plain_best, Seconds(t0, Clock::now()));
    }
    // Warm (page cache hot): what the GetKv server reads per block before
    // it can send it.
    DbReadAll(store.get(), ids, model, 0);
    for (int r = 0; r < rounds; ++r) {
      const auto t0 = Clock::now();
      DbReadAll(store.get(), ids, model, 0);
      warm_best = std::min(warm_best, Seconds(t0, Clock::now()));
    }
    Must(store->Close(), "close store");
  }
  if (seq_bytes < total) {
    std::printf("note: the blob files hold %.0f MiB, less than the %.0f MiB read\n",
                seq_bytes / 1048576.0, total / 1048576.0);
  }

  // The payload checksum verified on every block (db/kv_codec.h), vs memcpy.
  double checksum_gbps = 0, memcpy_gbps = 0;
  {
    const size_t elements = block_bytes / 4;
    std::vector<float> x(elements, 0.5f);
    mnemo::db::KvCodecOptions codec;
    codec.entropy = false;
    const auto encoded =
        Must(mnemo::db::EncodeKvTensor(x, {1, 1, static_cast<uint32_t>(elements)},
                                       mnemo::db::KvTensorRole::kKeys, codec),
             "encode");
    std::string scratch, dst(block_bytes / 2, 0);
    double best = 1e30, best_copy = 1e30;
    for (int r = 0; r < 20; ++r) {
      auto t0 = Clock::now();
      mnemo::db::KvTensorHeader h;
      Must(mnemo::db::ViewKvPayload(encoded.bytes, &h, &scratch).status(), "view");
      best = std::min(best, Seconds(t0, Clock::now()));
      t0 = Clock::now();
      std::memcpy(dst.data(), encoded.bytes.data() + mnemo::db::kKvTensorHeaderBytes, dst.size());
      best_copy = std::min(best_copy, Seconds(t0, Clock::now()));
    }
    checksum_gbps = GBps(block_bytes / 2, best);
    memcpy_gbps = GBps(block_bytes / 2, best_copy);
  }

  // ---- Remote: GetKv from mnemod vs the plain stream, warm, interleaved;
  // once with mnemod reading every block from the store, once with its KV
  // arena as the hot tier (warm blocks sent from the arena, no copy).
  const int plain_port = plain_server.Port();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", plain_port),
                                           grpc::InsecureChannelCredentials(), args);
  auto stub = mnemo::bench::BytesStream::NewStub(channel);
  auto plain = [&]() {
    const auto t0 = Clock::now();
    grpc::ClientContext ctx;
    mnemo::bench::BytesStreamRequest req;
    req.set_messages(total / block_bytes);
    req.set_message_bytes(block_bytes);
    auto reader = stub->Stream(&ctx, req);
    mnemo::bench::BytesMessage message;
    uint64_t bytes = 0;
    while (reader->Read(&message)) bytes += message.data().size();
    grpc::Status status = reader->Finish();
    if (!status.ok() || bytes != total) {
      Die("plain stream", absl::InternalError(absl::StrCat(status.error_message(), " ", bytes)));
    }
    return Seconds(t0, Clock::now());
  };
  struct Remote {
    double getkv_median = 0, plain_median = 0;
    std::vector<double> ratios;  // per round, sorted
  };
  auto remote = [&](std::vector<std::string> flags) {
    flags.insert(flags.end(), {"--max-message-bytes", "268435456", "--sync-writes", "false"});
    auto server = Must(mnemo::testing::MnemodProcess::Start(flags, data_dir), "starting mnemod");
    mnemo::ClientOptions client_options;
    client_options.max_message_bytes = 256 << 20;
    auto client = Must(mnemo::Client::Connect(server->target(), client_options), "connect");
    mnemo::KvGetRequest request;
    request.chunk_ids = ids;
    request.model = model;  // the SDK and the store share the type
    request.dtype = mnemo::KvDtype::kFp16;
    request.raw = true;
    auto getkv = [&]() {
      const auto t0 = Clock::now();
      auto reader = Must(client->OpenKvReader("kv", request), "GetKv");
      mnemo::KvBlock block;
      uint64_t bytes = 0;
      while (Must(reader->Next(&block), "GetKv block")) {
        bytes += block.k_raw.size() + block.v_raw.size();
      }
      if (bytes != total) Die("GetKv", absl::InternalError(absl::StrCat("got ", bytes)));
      return Seconds(t0, Clock::now());
    };
    getkv();  // connections, the page cache and the arena warm
    plain();
    // Interleaved rounds, the order swapped every round; the medians (and
    // the per-round ratios' spread) are reported, not the best.
    std::vector<double> getkv_s, plain_s;
    Remote r;
    for (int i = 0; i < remote_rounds; ++i) {
      double g, p;
      if (i % 2 == 0) {
        g = getkv();
        p = plain();
      } else {
        p = plain();
        g = getkv();
      }
      getkv_s.push_back(g);
      plain_s.push_back(p);
      r.ratios.push_back(p / g);
    }
    r.getkv_median = Median(getkv_s);
    r.plain_median = Median(plain_s);
    std::sort(r.ratios.begin(), r.ratios.end());
    client.reset();
    Must(server->Stop(), "stopping mnemod");
    return r;
  };
  const Remote from_store = remote({});
  const Remote from_arena =
      remote({"--kv-arena-bytes", std::to_string(total + (uint64_t{64} << 20))});
  plain_server.Stop();

  std::printf("\npage cache after each drop: at most %.1f%% of the data dir resident\n",
              100 * resident_max);
  std::printf("%-44s %8s\n", "read of the same bytes", "GB/s");
  std::printf("%-44s %8.2f\n", "cold: sequential read() of the blob files", GBps(total, seq_best));
  std::printf("%-44s %8.2f\n",
              absl::StrCat("cold: db read path (read-ahead ", read_ahead, " MiB)").c_str(),
              GBps(total, cold_best));
  std::printf("%-44s %8.2f\n", "cold: db read path (default: no read-ahead)",
              GBps(total, cold_plain_best));
  std::printf("%-44s %8.2f\n", "warm: db read path (page cache hot)", GBps(total, warm_best));
  for (const auto& [what, r] : {std::pair<const char*, const Remote&>{"store", from_store},
                                 std::pair<const char*, const Remote&>{"KV arena", from_arena}}) {
    std::printf("%-44s %8.2f  (median of %d)\n",
                absl::StrCat("remote (", what, "): plain gRPC bytes stream").c_str(),
                GBps(total, r.plain_median), remote_rounds);
    std::printf("%-44s %8.2f  (median of %d)\n",
                absl::StrCat("remote (", what, "): GetKv raw fp16").c_str(),
                GBps(total, r.getkv_median), remote_rounds);
    std::printf("%-44s %8.3f  (per-round ratios %.3f .. %.3f)\n",
                absl::StrCat("remote (", what, "): GetKv / plain stream").c_str(),
                Median(r.ratios), r.ratios.front(), r.ratios.back());
  }
  std::printf("%-44s %8.2f  (memcpy %.2f)\n", "payload checksum verify (one block's K)",
              checksum_gbps, memcpy_gbps);
  std::printf("\ngoal cold_read_vs_sequential %.3f 0.8\n", seq_best / cold_plain_best);
  std::printf("goal grpc_getkv_vs_plain_stream %.3f 0.8\n",
              from_arena.plain_median / from_arena.getkv_median);
  std::printf("goal grpc_getkv_from_store_vs_plain_stream %.3f 0.8\n",
              from_store.plain_median / from_store.getkv_median);
  std::error_code ec;
  fs::remove_all(data_dir, ec);
  return 0;
}
