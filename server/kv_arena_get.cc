// GetKv answered with KV arena leases (server/kv_arena_get.h).
#include "server/kv_arena_get.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/convert.h"
#include "server/convert_kv_arena.h"
#include "server/kv_block_wire.h"
#include "server/logging.h"
#include "server/service.h"
#include "server/status_mapping.h"

namespace mnemo::server {
namespace {

class KvArenaGetReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  KvArenaGetReactor(db::Store* store, std::shared_ptr<KvArena> arena, const std::string& key_id,
                    grpc::CallbackServerContext* ctx, const v1::GetKvRequest& request,
                    const KvArenaGetOptions& options)
      : arena_(std::move(arena)),
        ctx_(ctx),
        options_(options),
        token_(request.arena_session()),
        key_id_(key_id),
        ns_(request.namespace_()) {
    absl::Status status = Open(store, request);
    if (!status.ok()) {
      End(status);
      return;
    }
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      End(absl::CancelledError("GetKv stream broken"));
      return;
    }
    WriteNext();
  }

  void OnDone() override { delete this; }

 private:
  // A block the arena could not take (inline_bytes only): its own copy.
  struct HeldBlock {
    std::string k, v;
    std::shared_ptr<const KvArenaMeta> meta;
  };

  struct Layer {
    std::vector<std::optional<KvArenaBlock>> blocks;  // per chunk, pinned
    std::vector<std::shared_ptr<const HeldBlock>> held;  // per chunk, when not in the arena
    std::unique_ptr<db::KvReader> reader;             // of the misses
    std::vector<size_t> missing;                      // chunk indexes the reader reads
    // Set by the fill thread under mu_ when the layer's misses are in.
    bool filled = false;
    absl::Status fill_status;
  };

  absl::Status Open(db::Store* store, const v1::GetKvRequest& request) {
    if (arena_ == nullptr) {
      return absl::FailedPreconditionError(
          "this mnemod runs without a KV arena (mnemod --kv-arena-bytes)");
    }
    if (!options_.inline_bytes) RETURN_IF_ERROR(arena_->CheckSession(token_, key_id_));
    ASSIGN_OR_RETURN(db::KvReadOptions options, KvReadOptionsFromProto(request));
    dtype_ = *options.as_bytes;
    ids_ = options.chunk_ids;
    // Under the namespace's read lock no KV write commits, so the
    // generation, the hits and the reads opened here are of the same KV.
    auto lock = arena_->ReadLock(ns_);
    generation_ = arena_->Generation(ns_);
    uint32_t layers = 0;
    {
      // Validates the request (unknown chunks, layers, positions, model)
      // and counts as a use of each chunk, as GetKv without the arena.
      ASSIGN_OR_RETURN(std::unique_ptr<db::KvReader> check, store->ReadKv(ns_, options));
      if (ids_.empty()) return absl::InvalidArgumentError("GetKv names no chunk");
      layers = static_cast<uint32_t>(check->total_blocks() / ids_.size());
    }
    layer_begin_ = options.layer_begin;
    layers_.resize(layers);
    for (uint32_t i = 0; i < layers; ++i) {
      Layer& layer = layers_[i];
      layer.blocks.resize(ids_.size());
      layer.held.resize(ids_.size());
      for (size_t c = 0; c < ids_.size(); ++c) {
        layer.blocks[c] = arena_->Lookup(KeyOf(c, layer_begin_ + i, options), generation_);
        if (!layer.blocks[c].has_value()) layer.missing.push_back(c);
      }
      if (layer.missing.empty()) continue;
      db::KvReadOptions read;
      read.model = options.model;
      read.as_bytes = options.as_bytes;
      read.layer_begin = layer_begin_ + i;
      read.layer_end = layer_begin_ + i + 1;
      for (size_t c : layer.missing) {
        read.chunk_ids.push_back(ids_[c]);
        if (!options.positions.empty()) read.positions.push_back(options.positions[c]);
      }
      ASSIGN_OR_RETURN(layer.reader, store->ReadKv(ns_, read));
    }
    positions_ = options.positions;
    bool any_miss = false;
    for (Layer& layer : layers_) {
      if (layer.reader == nullptr) {
        layer.filled = true;
      } else {
        any_miss = true;
      }
    }
    // One fill thread for the whole call, reading the layers in order (one
    // stream of reads for the disk, no thread per layer).
    if (any_miss) filler_ = std::thread([this] { FillLoop(); });
    return absl::OkStatus();
  }

  // The fill thread: layer after layer, at most kKvArenaFillAhead layers
  // ahead of the one being sent; stops at the first error or when the
  // call ends.
  void FillLoop() {
    for (size_t i = 0; i < layers_.size(); ++i) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || i < sending_ + kKvArenaFillAhead; });
        if (stop_) return;
        if (layers_[i].filled) continue;
      }
      absl::Status status = Fill(static_cast<uint32_t>(i));
      {
        std::lock_guard lock(mu_);
        layers_[i].fill_status = status;
        layers_[i].filled = true;
      }
      cv_.notify_all();
      if (!status.ok()) return;
    }
  }

  KvArenaKey KeyOf(size_t chunk, uint32_t layer, const db::KvReadOptions& options) const {
    return KvArenaKey{ns_, ids_[chunk], layer, static_cast<int>(dtype_),
                      options.positions.empty() ? -1 : options.positions[chunk]};
  }

  // Reads layer i's misses and copies them into the arena (a fill thread).
  absl::Status Fill(uint32_t i) {
    Layer& layer = layers_[i];
    db::KvBlock block;
    while (true) {
      ASSIGN_OR_RETURN(bool more, layer.reader->Next(&block));
      if (!more) break;
      if (block.chunk_index >= layer.missing.size()) {
        return absl::InternalError("the store answered a chunk it was not asked for");
      }
      const size_t c = layer.missing[block.chunk_index];
      const KvArenaKey key{ns_, ids_[c], layer_begin_ + i, static_cast<int>(dtype_),
                           positions_.empty() ? -1 : positions_[c]};
      auto meta = std::make_shared<const KvArenaMeta>(KvArenaMetaOf(block));
      absl::StatusOr<KvArenaBlock> pinned =
          arena_->Insert(key, generation_, block.k_bytes, block.v_bytes, meta);
      if (!pinned.ok() && options_.inline_bytes &&
          pinned.status().code() == absl::StatusCode::kResourceExhausted) {
        // No room (larger than the arena, or all of it pinned): the block
        // is sent from a copy of its own instead.
        layer.held[c] = std::make_shared<const HeldBlock>(
            HeldBlock{std::string(block.k_bytes), std::string(block.v_bytes), std::move(meta)});
        continue;
      }
      if (!pinned.ok()) return pinned.status();
      layer.blocks[c] = *std::move(pinned);
    }
    layer.reader.reset();
    return absl::OkStatus();
  }

  void WriteNext() {
    if (layer_ >= layers_.size()) {
      End(absl::OkStatus());
      return;
    }
    Layer& layer = layers_[layer_];
    if (chunk_ == 0) {
      absl::Status filled;
      {
        std::unique_lock lock(mu_);
        sending_ = layer_;
        cv_.notify_all();
        cv_.wait(lock, [&] { return layer.filled; });
        filled = layer.fill_status;
      }
      if (!filled.ok()) {
        End(filled);
        return;
      }
    }
    const uint32_t layer_id = layer_begin_ + static_cast<uint32_t>(layer_);
    std::optional<KvArenaBlock>& block = layer.blocks[chunk_];
    if (options_.inline_bytes) {
      absl::Status status = InlineBlock(&block, layer.held[chunk_], layer_id);
      if (!status.ok()) {
        End(status);
        return;
      }
    } else {
      if (!block.has_value()) {
        End(absl::InternalError("a KV arena block was not filled"));
        return;
      }
      const KvArenaBlock pinned = *block;
      block.reset();  // its pin becomes the lease
      absl::StatusOr<uint64_t> lease = arena_->Lease(token_, pinned.entry);
      if (!lease.ok()) {
        End(lease.status());
        return;
      }
      KvArenaBlockToProto(pinned, *lease, static_cast<uint32_t>(chunk_), ids_[chunk_], layer_id,
                          dtype_, layer_ == 0, &response_);
      wire_ = ResponseBuffer(response_);
    }
    if (++chunk_ == ids_.size()) {
      chunk_ = 0;
      ++layer_;
    }
    StartWrite(&wire_);
  }

  // The block's bytes into wire_ (inline_bytes): from the arena, where
  // they stay pinned until gRPC is done with them, or from its own copy.
  absl::Status InlineBlock(std::optional<KvArenaBlock>* block,
                           const std::shared_ptr<const HeldBlock>& held, uint32_t layer_id) {
    KvArenaBlock pinned;
    if (block->has_value()) {
      pinned = **block;
      block->reset();  // the pin is released with the slices
    } else if (held != nullptr) {
      pinned.meta = held->meta;
      pinned.bytes = held->k.size();
    } else {
      return absl::InternalError("a KV arena block was not filled");
    }
    KvArenaBlockToProto(pinned, std::nullopt, static_cast<uint32_t>(chunk_), ids_[chunk_],
                        layer_id, dtype_, layer_ == 0, &response_);
    if (held != nullptr) {
      wire_ = BorrowedBlockResponseBuffer(response_, held->k, held->v, [held] {});
    } else {
      const char* base = arena_->data();
      // The slices may outlive this reactor and the server: they hold the
      // arena until they release the pin.
      std::shared_ptr<KvArena> arena = arena_;
      const uint64_t entry = pinned.entry;
      wire_ = BorrowedBlockResponseBuffer(
          response_, absl::string_view(base + pinned.k_offset, pinned.bytes),
          absl::string_view(base + pinned.v_offset, pinned.bytes),
          [arena, entry] { arena->Unpin(entry); });
    }
    if (const size_t bytes = wire_.Length(); bytes > options_.max_message_bytes) {
      wire_.Clear();
      return BlockOverMessageLimit(ids_[chunk_], layer_id, bytes, options_.max_message_bytes);
    }
    return absl::OkStatus();
  }

  // Stops the fill thread and drops the pins no lease took over.
  void End(const absl::Status& status) {
    if (!status.ok()) LogRpcFailure("GetKv", status, ctx_->peer());
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (filler_.joinable()) filler_.join();
    for (Layer& layer : layers_) {
      for (std::optional<KvArenaBlock>& b : layer.blocks) {
        if (b.has_value()) arena_->Unpin(b->entry);
      }
      layer.reader.reset();
    }
    layers_.clear();
    Finish(ToGrpcStatus(status));
  }

  const std::shared_ptr<KvArena> arena_;
  grpc::CallbackServerContext* const ctx_;
  const KvArenaGetOptions options_;
  const std::string token_;
  const std::string key_id_;  // of the caller, who must own the session
  const std::string ns_;
  db::KvDtype dtype_ = db::KvDtype::kFp32;
  std::vector<std::string> ids_;
  std::vector<int64_t> positions_;
  uint64_t generation_ = 0;
  uint32_t layer_begin_ = 0;
  std::vector<Layer> layers_;
  size_t layer_ = 0, chunk_ = 0;
  v1::GetKvResponse response_;
  // The message on the wire (GetKv is served raw): response_ serialized, or
  // with inline_bytes also the block's bytes.
  grpc::ByteBuffer wire_;
  // Between the stream and the fill thread: the layer being sent, each
  // layer's filled flag and status, and the stop request.
  std::mutex mu_;
  std::condition_variable cv_;
  size_t sending_ = 0;
  bool stop_ = false;
  std::thread filler_;
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* NewKvArenaGetReactor(
    db::Store* store, std::shared_ptr<KvArena> arena, const std::string& key_id,
    grpc::CallbackServerContext* ctx, const v1::GetKvRequest& request,
    const KvArenaGetOptions& options) {
  return new KvArenaGetReactor(store, std::move(arena), key_id, ctx, request, options);
}

}  // namespace mnemo::server
