// GetKv's raw wire form (server/kv_block_wire.h): what mnemod writes must
// parse as the GetKvResponse the generated code would have serialized.
#include "server/kv_block_wire.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/convert.h"

namespace mnemo::server {
namespace {

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

std::string Bytes(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed * 17) & 0xff);
  return s;
}

// K and V sizes either side of the varint steps of their length prefixes
// (1, 2 and 3 bytes), and empty ones.
TEST(KvBlockWireTest, ParsesAsTheGeneratedMessage) {
  for (const auto& [k_size, v_size] : std::vector<std::pair<size_t, size_t>>{
           {0, 0}, {1, 127}, {128, 129}, {16383, 16384}, {300000, 1 << 20}}) {
    const std::string k = Bytes(k_size, 1), v = Bytes(v_size, 2);
    db::KvBlock block;
    block.chunk_index = 3;
    block.chunk_id = "doc-7#2";
    block.layer = 5;
    block.shape = db::KvTensorShape{2, 9, 4};
    block.k_bytes = k;
    block.v_bytes = v;
    block.key_error = 0.25f;
    block.value_error = 0.5f;
    block.tokens = {1, 300, 70000};
    block.position = 42;

    v1::GetKvResponse want;
    KvBlockHeaderToProto(block, db::KvDtype::kBf16, &want);
    want.mutable_block()->set_k(k);
    want.mutable_block()->set_v(v);

    const grpc::ByteBuffer wire = KvBlockResponseBuffer(block, db::KvDtype::kBf16);
    const std::string bytes = Flatten(wire);
    EXPECT_EQ(wire.Length(), want.ByteSizeLong()) << k_size << " " << v_size;
    v1::GetKvResponse got;
    ASSERT_TRUE(got.ParseFromString(bytes)) << k_size << " " << v_size;
    EXPECT_EQ(got.SerializeAsString(), want.SerializeAsString()) << k_size << " " << v_size;
    EXPECT_EQ(got.block().k(), k);
    EXPECT_EQ(got.block().v(), v);
    EXPECT_EQ(got.chunk_id(), "doc-7#2");
    EXPECT_EQ(got.block().dtype(), v1::KV_DTYPE_BF16);
    EXPECT_EQ(got.tokens_size(), 3);
    EXPECT_EQ(got.position(), 42);
  }
}

TEST(KvBlockWireTest, ResponseBufferIsTheMessagesSerialization) {
  v1::GetKvResponse response;
  response.set_chunk_id("a");
  response.mutable_lease()->set_id(9);
  response.mutable_lease()->set_bytes(4096);
  EXPECT_EQ(Flatten(ResponseBuffer(response)), response.SerializeAsString());
}

TEST(KvBlockWireTest, ParsesRequestsAndRefusesGarbage) {
  v1::GetKvRequest request;
  request.set_namespace_("kv");
  request.add_chunk_ids("a");
  request.set_layer_end(4);
  const std::string bytes = request.SerializeAsString();
  const grpc::Slice slice(bytes);
  absl::StatusOr<v1::GetKvRequest> parsed = ParseGetKvRequest(grpc::ByteBuffer(&slice, 1));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->SerializeAsString(), bytes);

  // Field 1 (namespace) says 255 bytes follow; none do.
  const grpc::Slice garbage(std::string("\x0a\xff\x01", 3));
  parsed = ParseGetKvRequest(grpc::ByteBuffer(&garbage, 1));
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KvBlockWireTest, OnlyGetKvIsRaw) {
  EXPECT_TRUE(IsRawMethod("/mnemo.v1.MnemoKv/GetKv"));
  EXPECT_FALSE(IsRawMethod("/mnemo.v1.MnemoKv/PutKv"));
  EXPECT_FALSE(IsRawMethod("/mnemo.v1.MnemoKv/GetKvStats"));
}

}  // namespace
}  // namespace mnemo::server
