// GetKv's wire form (server/kv_block_wire.h).
#include "server/kv_block_wire.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "server/convert.h"

namespace mnemo::server {
namespace {

// Length-delimited fields of GetKvResponse and KvLayer (mnemo.proto).
constexpr int kResponseBlockField = 3;
constexpr int kLayerKField = 6;
constexpr int kLayerVField = 7;

using google::protobuf::io::CodedOutputStream;
using google::protobuf::internal::WireFormatLite;

uint32_t LengthDelimitedTag(int field) {
  return WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
}

// Tag and length of a length-delimited field of `size` bytes.
void AppendFieldHead(int field, uint64_t size, std::string* out) {
  uint8_t head[5 + 10];  // the longest varint32 and varint64
  uint8_t* end = CodedOutputStream::WriteVarint32ToArray(LengthDelimitedTag(field), head);
  end = CodedOutputStream::WriteVarint64ToArray(size, end);
  out->append(reinterpret_cast<const char*>(head), static_cast<size_t>(end - head));
}

size_t FieldSize(int field, uint64_t size) {
  return CodedOutputStream::VarintSize32(LengthDelimitedTag(field)) +
         CodedOutputStream::VarintSize64(size) + size;
}

// The memory of K and V slices, reused across blocks and calls. A block
// copied into freshly allocated memory would touch new pages for every
// block, and a first touch costs more than the copy itself (on the VMs
// measured, ~2 ms per MiB). A slice hands its buffer back when gRPC is
// done with it; the pool keeps at most kMaxPooledBytes of free buffers.
class SliceBufferPool {
 public:
  static SliceBufferPool& Instance() {
    static SliceBufferPool* const pool = new SliceBufferPool;  // never destroyed: slices may outlive main
    return *pool;
  }

  grpc::Slice Copy(const char* data, size_t n) {
    Buffer* b = Take(n);
    std::memcpy(b->data.get(), data, n);
    return grpc::Slice(b->data.get(), n, &SliceBufferPool::Return, b);
  }

 private:
  static constexpr size_t kMaxPooledBytes = size_t{256} << 20;

  struct Buffer {
    std::unique_ptr<char[]> data;
    size_t capacity = 0;
  };

  static void Return(void* buffer) { Instance().Put(static_cast<Buffer*>(buffer)); }

  // The smallest free buffer that holds n bytes without wasting more than
  // n, or a new one.
  Buffer* Take(size_t n) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto best = free_.end();
      for (auto it = free_.begin(); it != free_.end(); ++it) {
        if ((*it)->capacity >= n && (*it)->capacity <= 2 * n &&
            (best == free_.end() || (*it)->capacity < (*best)->capacity)) {
          best = it;
        }
      }
      if (best != free_.end()) {
        Buffer* b = *best;
        free_.erase(best);
        free_bytes_ -= b->capacity;
        return b;
      }
    }
    auto* b = new Buffer;
    b->data.reset(new char[n]);
    b->capacity = n;
    return b;
  }

  void Put(Buffer* b) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (free_bytes_ + b->capacity <= kMaxPooledBytes) {
        free_.push_back(b);
        free_bytes_ += b->capacity;
        return;
      }
    }
    delete b;
  }

  std::mutex mu_;
  std::vector<Buffer*> free_;
  size_t free_bytes_ = 0;
};

}  // namespace

bool IsRawMethod(std::string_view full_method) { return full_method == kRawGetKvMethod; }

absl::StatusOr<v1::GetKvRequest> ParseGetKvRequest(const grpc::ByteBuffer& request) {
  grpc::ByteBuffer copy(request);  // Deserialize consumes its buffer; slices are shared
  v1::GetKvRequest parsed;
  grpc::Status s = grpc::SerializationTraits<v1::GetKvRequest>::Deserialize(&copy, &parsed);
  if (!s.ok()) {
    return absl::InvalidArgumentError("GetKv: the request is not a GetKvRequest message");
  }
  return parsed;
}

namespace {

// `head` (without K and V) framed with K and V, which come as slices of
// their own from `k_slice` / `v_slice` (called only for non-empty ones).
template <typename MakeK, typename MakeV>
grpc::ByteBuffer Frame(v1::GetKvResponse head, uint64_t k, uint64_t v, MakeK k_slice,
                       MakeV v_slice) {
  const std::string layer = head.block().SerializeAsString();  // without K and V
  head.clear_block();
  std::string prefix = head.SerializeAsString();
  // Empty K or V are left out, as protobuf leaves out empty proto3 fields.
  const size_t layer_size = layer.size() + (k > 0 ? FieldSize(kLayerKField, k) : 0) +
                            (v > 0 ? FieldSize(kLayerVField, v) : 0);
  AppendFieldHead(kResponseBlockField, layer_size, &prefix);
  prefix += layer;
  std::vector<grpc::Slice> slices;
  slices.reserve(4);
  if (k > 0) {
    AppendFieldHead(kLayerKField, k, &prefix);
    slices.emplace_back(prefix);
    slices.push_back(k_slice());
    prefix.clear();
  }
  if (v > 0) {
    AppendFieldHead(kLayerVField, v, &prefix);
    slices.emplace_back(prefix);
    slices.push_back(v_slice());
  } else if (!prefix.empty()) {
    slices.emplace_back(prefix);
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

// Runs `release` when the last of `refs` slices is destroyed.
struct SharedRelease {
  std::function<void()> release;
  std::atomic<int> refs;

  static void Unref(void* p) {
    auto* r = static_cast<SharedRelease*>(p);
    if (r->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      r->release();
      delete r;
    }
  }
};

}  // namespace

grpc::ByteBuffer KvBlockResponseBuffer(const db::KvBlock& block, db::KvDtype dtype) {
  v1::GetKvResponse head;
  KvBlockHeaderToProto(block, dtype, &head);
  return Frame(
      std::move(head), block.k_bytes.size(), block.v_bytes.size(),
      [&] { return SliceBufferPool::Instance().Copy(block.k_bytes.data(), block.k_bytes.size()); },
      [&] { return SliceBufferPool::Instance().Copy(block.v_bytes.data(), block.v_bytes.size()); });
}

grpc::ByteBuffer BorrowedBlockResponseBuffer(v1::GetKvResponse head, absl::string_view k,
                                             absl::string_view v, std::function<void()> release) {
  const int refs = (k.empty() ? 0 : 1) + (v.empty() ? 0 : 1);
  if (refs == 0) {
    release();
    return Frame(std::move(head), 0, 0, [] { return grpc::Slice(); }, [] { return grpc::Slice(); });
  }
  auto* shared = new SharedRelease{std::move(release), {refs}};
  const auto borrow = [shared](absl::string_view bytes) {
    return grpc::Slice(const_cast<char*>(bytes.data()), bytes.size(), &SharedRelease::Unref,
                       shared);
  };
  return Frame(std::move(head), k.size(), v.size(), [&] { return borrow(k); },
               [&] { return borrow(v); });
}

absl::Status BlockOverMessageLimit(absl::string_view chunk_id, uint32_t layer, size_t bytes,
                                   size_t max_message_bytes) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "GetKv: the block of chunk '", chunk_id, "' layer ", layer, " takes ", bytes,
      " bytes in one message, over the server's message limit of ", max_message_bytes,
      " (mnemod --max-message-bytes); ask for a smaller dtype (fp16 / bf16), read it through "
      "the shared-memory KV arena, or raise the limit"));
}

grpc::ByteBuffer ResponseBuffer(const v1::GetKvResponse& response) {
  grpc::ByteBuffer buffer;
  bool own = false;
  // Serializing a valid message into memory does not fail.
  (void)grpc::SerializationTraits<v1::GetKvResponse>::Serialize(response, &buffer, &own);
  return buffer;
}

}  // namespace mnemo::server
