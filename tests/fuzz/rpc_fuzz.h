// The RPC request fuzzer's input format and property, shared by the
// libFuzzer target (rpc_fuzz.cc, built with clang and
// -fsanitize=fuzzer,address,undefined by scripts/fuzz --target rpc) and the
// corpus replay test that CI runs with any compiler (rpc_corpus_test.cc).
//
// An input is one call: its first byte picks the method
// (FuzzedRpcMethods()[byte % count]: every RPC of Mnemo, MnemoKv,
// MnemoInject, MnemoMemory and MnemoAuth); the rest is the request, sent as
// raw bytes.
// For client-streaming and bidirectional methods the rest is split at
// kRpcMessageSeparator into up to kMaxRpcMessages messages; other methods
// get it whole.
#ifndef MNEMO_TESTS_FUZZ_RPC_FUZZ_H_
#define MNEMO_TESTS_FUZZ_RPC_FUZZ_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tests/fuzz/rpc_fuzz_seeds.h"
#include "tests/fuzz/rpc_fuzz_server.h"

namespace mnemo::fuzz {

inline constexpr absl::string_view kRpcMessageSeparator("\n~next~\n", 8);
inline constexpr size_t kMaxRpcMessages = 16;

// The fuzz input that makes `request`.
std::string EncodeRpcInput(const RpcRequest& request);

// Applies the base state (BaseStateRequests()); "" or what failed.
std::string ApplyBaseState(RpcFuzzServer& server);

// Sends the call `data` encodes (a method must be given: `data` not
// empty). Paths a request names for the server to write (Checkpoint's
// target_dir, the backup calls' backup_dir) are moved into
// server.scratch_dir() first, so that no input writes outside it.
struct SentRpc {
  const RpcMethod* method;
  bool well_formed;  // every message parses as the method's request type
  RpcOutcome outcome;
};
SentRpc SendRpcInput(RpcFuzzServer& server, absl::string_view data);

// Sends the call `data` encodes and checks what came back. The property: the call ends (within the
// deadline), and a request that parses as the method's request type is
// never answered INTERNAL, UNKNOWN or DATA_LOSS (bad input must get a
// clear status; the store is healthy); crashes and sanitizer reports are
// the fuzzer's to catch. A successful DropNamespace re-applies the base
// state. Returns "" when the property holds, else what went wrong.
std::string CheckRpcInput(RpcFuzzServer& server, absl::string_view data);

}  // namespace mnemo::fuzz

#endif  // MNEMO_TESTS_FUZZ_RPC_FUZZ_H_
