// GetKv's wire form on the server: mnemod serves GetKv as a raw method
// (grpc::ByteBuffer in and out) so that a block's K and V bytes go to the
// transport as slices of their own, without being copied into a protobuf
// message and copied again when gRPC serializes it. The bytes on the wire
// are an ordinary GetKvResponse: clients parse it with the generated code.
#ifndef MNEMO_SERVER_KV_BLOCK_WIRE_H_
#define MNEMO_SERVER_KV_BLOCK_WIRE_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <functional>
#include <string_view>

#include "absl/status/statusor.h"
#include "db/kv.h"
#include "mnemo/v1/mnemo.pb.h"

namespace mnemo::server {

// The full names of the methods mnemod serves raw; an interceptor sees
// grpc::ByteBuffer messages, not protobuf ones, on them.
inline constexpr std::string_view kRawGetKvMethod = "/mnemo.v1.MnemoKv/GetKv";
bool IsRawMethod(std::string_view full_method);

// The request of a raw GetKv. INVALID_ARGUMENT when the bytes are not a
// GetKvRequest.
absl::StatusOr<v1::GetKvRequest> ParseGetKvRequest(const grpc::ByteBuffer& request);

// `block` (its K and V as bytes of `dtype`) as the GetKvResponse
// KvBlockToProto makes, serialized: the small fields by protobuf, then K
// and V as the nested KvLayer's bytes fields, each copied once into a
// slice of its own (the block's views are the reader's and do not outlive
// its next block).
grpc::ByteBuffer KvBlockResponseBuffer(const db::KvBlock& block, db::KvDtype dtype);

// `head`, a GetKvResponse without K and V, with `k` and `v` appended as its
// block's bytes, sent from where they lie (no copy): they must stay valid
// until `release` runs, once, when gRPC holds neither any more (at the
// latest when the call and its transport are gone).
grpc::ByteBuffer BorrowedBlockResponseBuffer(v1::GetKvResponse head, absl::string_view k,
                                             absl::string_view v, std::function<void()> release);

// RESOURCE_EXHAUSTED for a block whose message would exceed the server's
// send limit (mnemod --max-message-bytes), naming the chunk, the layer,
// both sizes and the ways around it.
absl::Status BlockOverMessageLimit(absl::string_view chunk_id, uint32_t layer, size_t bytes,
                                   size_t max_message_bytes);

// A response message serialized for a raw method's writer.
grpc::ByteBuffer ResponseBuffer(const v1::GetKvResponse& response);

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_KV_BLOCK_WIRE_H_
