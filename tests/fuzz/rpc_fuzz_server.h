// The in-process server the RPC request fuzzer talks to: a db::Store in a
// fresh directory with the five mnemo services registered on a
// grpc::Server that listens on no port, reached through
// server->InProcessChannel() and a grpc::GenericStub, so that requests are
// raw bytes that gRPC and the services parse exactly as they would from the
// network. Authentication is on (so that MnemoAuth's key calls reach the
// key registry rather than answering FAILED_PRECONDITION); every call
// carries the global admin's key, which every method permits. Shared by the
// libFuzzer target (rpc_fuzz.cc) and the corpus replay test
// (rpc_corpus_test.cc).
#ifndef MNEMO_TESTS_FUZZ_RPC_FUZZ_SERVER_H_
#define MNEMO_TESTS_FUZZ_RPC_FUZZ_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "db/store.h"
#include "server/api_keys.h"
#include "server/auth_service.h"
#include "server/authorizer.h"
#include "server/inject_service.h"
#include "server/kv_arena.h"
#include "server/kv_arena_socket.h"
#include "server/kv_service.h"
#include "server/memory_service.h"
#include "server/service.h"

namespace mnemo::fuzz {

// One RPC of the five services, in a fixed order: services Mnemo, MnemoKv,
// MnemoInject, MnemoMemory, MnemoAuth, each one's methods in proto
// declaration order.
// (A new RPC shifts the methods after it; corpus inputs stay valid inputs,
// they may just reach another method.)
struct RpcMethod {
  std::string path;  // "/mnemo.v1.Mnemo/Search"
  const google::protobuf::MethodDescriptor* descriptor;
};
const std::vector<RpcMethod>& FuzzedRpcMethods();
// Index into FuzzedRpcMethods() of "Service/Method" (e.g. "Mnemo/Search"),
// or -1.
int FuzzedRpcMethodIndex(absl::string_view service_and_method);

// What one call returned.
struct RpcOutcome {
  grpc::Status status;
  int responses = 0;  // response messages read
};

class RpcFuzzServer {
 public:
  // Opens a store in a new directory under `parent` (created when missing;
  // the directory is removed again by the destructor) and starts the
  // server, with a small KV arena (the same-host hot tier) and its socket.
  // Encoders are off (no assets): text operations answer
  // FAILED_PRECONDITION, quickly. Logging is mnemod's JSON logging into a
  // null sink (set up once per process).
  static absl::StatusOr<std::unique_ptr<RpcFuzzServer>> Start(const std::string& parent);
  ~RpcFuzzServer();
  RpcFuzzServer(const RpcFuzzServer&) = delete;
  RpcFuzzServer& operator=(const RpcFuzzServer&) = delete;

  // Calls FuzzedRpcMethods()[method] with `requests` as its request
  // messages (serialized bytes, sent as they are) and half-closes, reading
  // every response meanwhile, and returns the final status. Unary methods
  // are served from the same kind of stream, as the wire protocol allows.
  // Each call has a 10 s deadline ($MNEMO_RPC_FUZZ_DEADLINE_SECONDS
  // overrides it).
  RpcOutcome Call(size_t method, const std::vector<std::string>& requests);

  // The directory the store lives in, and a scratch directory beside it
  // for paths the fuzzer's requests name (backups, checkpoints).
  const std::string& store_dir() const { return store_dir_; }
  const std::string& scratch_dir() const { return scratch_dir_; }

 private:
  RpcFuzzServer() = default;

  std::string root_;
  std::string store_dir_;
  std::string scratch_dir_;
  std::unique_ptr<db::Store> store_;
  std::unique_ptr<server::ApiKeys> api_keys_;
  std::unique_ptr<server::Authorizer> authorizer_;
  std::shared_ptr<server::KvArena> arena_;  // shared with GetKv's slices
  std::unique_ptr<server::KvArenaSocket> arena_socket_;
  std::unique_ptr<server::MnemoService> mnemo_;
  std::unique_ptr<server::KvService> kv_;
  std::unique_ptr<server::InjectService> inject_;
  std::unique_ptr<server::MemoryService> memory_;
  std::unique_ptr<server::AuthService> auth_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::GenericStub> stub_;
  grpc::CompletionQueue cq_;
};

}  // namespace mnemo::fuzz

#endif  // MNEMO_TESTS_FUZZ_RPC_FUZZ_SERVER_H_
