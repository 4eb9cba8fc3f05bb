// Valid requests for the RPC request fuzzer: the base state every fuzzing
// session starts from (namespaces with chunks and stored KV, so that
// mutated requests reach the engine rather than NOT_FOUND) and one or more
// seed requests per RPC against it.
#ifndef MNEMO_TESTS_FUZZ_RPC_FUZZ_SEEDS_H_
#define MNEMO_TESTS_FUZZ_RPC_FUZZ_SEEDS_H_

#include <string>
#include <vector>

#include <grpcpp/support/status.h>

namespace mnemo::fuzz {

// A call: the method ("Service/Method", e.g. "Mnemo/Search") and its
// serialized request messages (several only for client-streaming methods).
struct RpcRequest {
  std::string method;
  std::vector<std::string> messages;
};

// In order: namespaces "fz" (dim 4, L2, Flat, with a document, three
// chunks and the KV of chunk "c1" under a two-layer model) and "fzh"
// (dim 4, cosine, HNSW, four chunks). Every call answers OK on a fresh
// store; re-running them answers OK or ALREADY_EXISTS.
std::vector<RpcRequest> BaseStateRequests();

struct RpcSeed {
  std::string name;  // the corpus file name: seed-<Method>[-<variant>]
  RpcRequest request;
  grpc::StatusCode expected;  // against the base state, encoders off
};
// At least one seed per RPC of FuzzedRpcMethods().
std::vector<RpcSeed> RpcSeeds();

}  // namespace mnemo::fuzz

#endif  // MNEMO_TESTS_FUZZ_RPC_FUZZ_SEEDS_H_
