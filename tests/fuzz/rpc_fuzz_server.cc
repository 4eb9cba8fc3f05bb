// The in-process server of the RPC request fuzzer (see rpc_fuzz_server.h).
#include "tests/fuzz/rpc_fuzz_server.h"

#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/logging.h"
#include "mnemo/v1/auth.grpc.pb.h"
#include "mnemo/v1/inject.grpc.pb.h"
#include "mnemo/v1/memory.grpc.pb.h"
#include "mnemo/v1/mnemo.grpc.pb.h"

namespace mnemo::fuzz {
namespace {

// The global admin's key (--admin-key-file's line) every call carries.
constexpr char kAdminKey[] = "rpc-fuzz-admin-key-0123456789abcdef";

std::vector<RpcMethod> ListMethods() {
  std::vector<RpcMethod> methods;
  const google::protobuf::DescriptorPool* pool =
      google::protobuf::DescriptorPool::generated_pool();
  for (const char* service :
       {v1::Mnemo::service_full_name(), v1::MnemoKv::service_full_name(),
        v1::MnemoInject::service_full_name(), v1::MnemoMemory::service_full_name(),
        v1::MnemoAuth::service_full_name()}) {
    const google::protobuf::ServiceDescriptor* s = pool->FindServiceByName(service);
    if (s == nullptr) continue;
    for (int i = 0; i < s->method_count(); ++i) {
      methods.push_back({absl::StrCat("/", service, "/", s->method(i)->name()), s->method(i)});
    }
  }
  return methods;
}

// Blocks until the completion queue returns `tag`; false when its
// operation failed (no more messages, the call ended).
bool Await(grpc::CompletionQueue* cq, void* tag) {
  void* got = nullptr;
  bool ok = false;
  while (cq->Next(&got, &ok)) {
    if (got == tag) return ok;
  }
  return false;
}

// mnemod's JSON logging, events built as mnemod builds them (failed calls
// log at warn) but written nowhere: the fuzzer makes millions of them.
void QuietLogging() {
  static const bool done = [] {
    if (!server::InitLogging(server::LogFormat::kJson, "warn").ok()) return false;
    std::vector<spdlog::sink_ptr>& sinks = spdlog::default_logger()->sinks();
    sinks.clear();
    sinks.push_back(std::make_shared<spdlog::sinks::null_sink_mt>());
    return true;
  }();
  (void)done;
}

}  // namespace

const std::vector<RpcMethod>& FuzzedRpcMethods() {
  static const std::vector<RpcMethod>* methods = new std::vector<RpcMethod>(ListMethods());
  return *methods;
}

int FuzzedRpcMethodIndex(absl::string_view service_and_method) {
  const std::vector<RpcMethod>& methods = FuzzedRpcMethods();
  for (size_t i = 0; i < methods.size(); ++i) {
    if (absl::EndsWith(methods[i].path, absl::StrCat(".", service_and_method))) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

absl::StatusOr<std::unique_ptr<RpcFuzzServer>> RpcFuzzServer::Start(const std::string& parent) {
  QuietLogging();
  std::unique_ptr<RpcFuzzServer> s(new RpcFuzzServer());
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  std::string pattern = (std::filesystem::path(parent) / "rpc-fuzz-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create a directory under ", parent));
  }
  s->root_ = pattern;
  s->store_dir_ = (std::filesystem::path(pattern) / "store").string();
  s->scratch_dir_ = (std::filesystem::path(pattern) / "scratch").string();
  std::filesystem::create_directories(s->scratch_dir_, ec);

  db::StoreOptions options;
  options.sync_writes = false;  // nothing here has to survive a crash
  // Background timers off: every change comes from a request.
  options.kv_expiry_interval_ms = 0;
  options.kv_recency_flush_ms = 0;
  options.memory_expiry_interval_ms = 0;
  ASSIGN_OR_RETURN(s->store_, db::Store::Open(options, s->store_dir_));

  ASSIGN_OR_RETURN(s->api_keys_, server::ApiKeys::Load(s->store_.get()));
  s->authorizer_ =
      std::make_unique<server::Authorizer>(s->api_keys_.get(), kAdminKey, server::RateLimit{});
  server::Authorizer* auth = s->authorizer_.get();
  s->mnemo_ = std::make_unique<server::MnemoService>(s->store_.get(), "fuzz", auth);
  ASSIGN_OR_RETURN(s->arena_, server::KvArena::Create(1 << 20));
  ASSIGN_OR_RETURN(s->arena_socket_,
                   server::KvArenaSocket::Start(
                       (std::filesystem::path(pattern) / "arena.sock").string(), s->arena_.get()));
  s->kv_ = std::make_unique<server::KvService>(s->store_.get(), s->arena_,
                                               s->arena_socket_->path(), auth);
  s->inject_ = std::make_unique<server::InjectService>(s->store_.get(), auth);
  s->memory_ = std::make_unique<server::MemoryService>(s->store_.get(), auth);
  s->auth_ = std::make_unique<server::AuthService>(auth);
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(64 << 20);  // mnemod's default
  builder.SetMaxSendMessageSize(64 << 20);
  builder.RegisterService(s->mnemo_.get());
  builder.RegisterService(s->kv_.get());
  builder.RegisterService(s->inject_.get());
  builder.RegisterService(s->memory_.get());
  builder.RegisterService(s->auth_.get());
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr) return absl::InternalError("cannot start the in-process server");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  s->channel_ = s->server_->InProcessChannel(args);
  s->stub_ = std::make_unique<grpc::GenericStub>(s->channel_);
  return s;
}

RpcFuzzServer::~RpcFuzzServer() {
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
  }
  cq_.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq_.Next(&tag, &ok)) {
  }
  arena_socket_.reset();
  if (store_ != nullptr) IgnoreError(store_->Close());
  store_.reset();
  std::error_code ec;
  if (!root_.empty()) std::filesystem::remove_all(root_, ec);
}

namespace {

// The calls' deadline: 10 s, or $MNEMO_RPC_FUZZ_DEADLINE_SECONDS (a fuzzer
// run niced behind other work gets little CPU, and a call it starves is
// not a hang).
std::chrono::seconds CallDeadline() {
  static const std::chrono::seconds deadline = [] {
    const char* env = std::getenv("MNEMO_RPC_FUZZ_DEADLINE_SECONDS");
    int seconds = 0;
    if (env != nullptr && absl::SimpleAtoi(env, &seconds) && seconds > 0) {
      return std::chrono::seconds(seconds);
    }
    return std::chrono::seconds(10);
  }();
  return deadline;
}

}  // namespace

RpcOutcome RpcFuzzServer::Call(size_t method, const std::vector<std::string>& requests) {
  RpcOutcome outcome;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + CallDeadline());
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kAdminKey));
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub_->PrepareCall(&ctx, FuzzedRpcMethods()[method].path, &cq_);
  // Tags: their addresses. A read stays posted while the requests are
  // written, as a real client's would: the in-process transport hands a
  // message over only when the other side reads it, so a server that
  // answers each message before reading the next (Attend) would otherwise
  // wait for a client that waits for it.
  int start_tag = 0, read_tag = 0, write_tag = 0, finish_tag = 0;
  call->StartCall(&start_tag);
  if (Await(&cq_, &start_tag)) {
    grpc::ByteBuffer response;
    call->Read(&response, &read_tag);
    bool reading = true, writing = true, half_closed = false;
    size_t next = 0;
    auto write_next = [&] {
      if (next < requests.size()) {
        grpc::Slice slice(requests[next].data(), requests[next].size());
        grpc::ByteBuffer buffer(&slice, 1);
        ++next;
        call->Write(buffer, &write_tag);
      } else {
        half_closed = true;
        call->WritesDone(&write_tag);
      }
    };
    write_next();
    while (reading || writing) {
      void* tag = nullptr;
      bool ok = false;
      if (!cq_.Next(&tag, &ok)) break;
      if (tag == &read_tag) {
        if (ok) {
          ++outcome.responses;
          response.Clear();
          call->Read(&response, &read_tag);
        } else {
          reading = false;
        }
      } else if (tag == &write_tag) {
        if (ok && !half_closed) {
          write_next();
        } else {
          writing = false;
        }
      }
    }
  }
  call->Finish(&outcome.status, &finish_tag);
  Await(&cq_, &finish_tag);
  return outcome;
}

}  // namespace mnemo::fuzz
