// A retrieval-attention context over a store's chunk KV (see kv_context.h).
#include "db/kv_context.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attention/rope.h"
#include "common/status_macros.h"

namespace mnemo::db {
namespace {

// One chunk's data of one layer, keys in the chunk-local frame.
struct ChunkLayer {
  std::vector<float> keys, values;  // [n_kv_heads, T, head_dim]
  std::vector<attention::KeyClusters> clusters;
};

class KvContextImpl final : public KvContext {
 public:
  KvContextImpl(std::unique_ptr<KvReader> reader, attention::ContextLayout layout,
                attention::AttentionShape shape, ModelFingerprint model)
      : reader_(std::move(reader)),
        layout_(std::move(layout)),
        shape_(shape),
        model_(std::move(model)),
        layers_(static_cast<size_t>(model_.n_layers)) {}

  const attention::ContextLayout& layout() const override { return layout_; }
  const attention::AttentionShape& shape() const override { return shape_; }
  uint32_t layers_loaded() const override { return loaded_; }
  uint64_t bytes_loaded() const override { return bytes_; }

  absl::Status Attend(uint32_t layer, const attention::QueryBlock& queries,
                      const attention::ClusterBudget& budget, attention::PartialResult* result,
                      attention::ContextAttentionStats* stats) override {
    ASSIGN_OR_RETURN(const Layer* l, Loaded(layer));
    return attention::AttendContext(shape_, layout_, l->views, queries, budget, result, stats,
                                     &l->packed);
  }

  absl::Status FetchTopK(uint32_t layer, const attention::QueryBlock& queries,
                         double exact_fraction, attention::SelectedKeys* selected,
                         attention::ContextAttentionStats* stats) override {
    ASSIGN_OR_RETURN(const Layer* l, Loaded(layer));
    return attention::SelectContextKeys(shape_, layout_, l->views, queries, exact_fraction,
                                        selected, stats, &l->packed);
  }

 private:
  struct Layer {
    bool ready = false;
    std::vector<ChunkLayer> chunks;
    std::vector<attention::ChunkLayerView> views;
    attention::PackedCentroids packed;  // the views' centroids per KV head
  };

  // `layer`, reading layers from the store up to it.
  absl::StatusOr<const Layer*> Loaded(uint32_t layer) {
    if (layer >= layers_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " is out of range: the model has ",
                                                     layers_.size(), " layers"));
    }
    if (!failure_.ok()) return failure_;
    while (!layers_[layer].ready) {
      absl::Status s = ReadNextBlock();
      if (!s.ok()) {
        failure_ = s;  // the reader cannot go on
        return s;
      }
    }
    return &layers_[layer];
  }

  absl::Status ReadNextBlock() {
    KvBlock block;
    ASSIGN_OR_RETURN(bool more, reader_->Next(&block));
    if (!more) return absl::InternalError("KV context: the read ended before every layer");
    const int c = static_cast<int>(block.chunk_index);
    if (static_cast<int>(block.shape.tokens) != layout_.n_tokens(c)) {
      return absl::AbortedError(absl::StrCat("KV of chunk '", block.chunk_id,
                                             "' changed while the context was opened; open it again"));
    }
    Layer& l = layers_[block.layer];
    if (l.chunks.empty()) l.chunks.resize(layout_.size());
    ChunkLayer& cl = l.chunks[c];
    cl.keys = std::move(block.k);
    cl.values = std::move(block.v);
    cl.clusters = std::move(block.key_index);
    RETURN_IF_ERROR(attention::RotateKeys(cl.keys.data(), model_.n_kv_heads, layout_.n_tokens(c),
                                          model_.head_dim, model_.rope_theta, 0));
    bytes_ += (cl.keys.size() + cl.values.size()) * sizeof(float);
    for (const attention::KeyClusters& k : cl.clusters) {
      bytes_ += (k.centroids.size() + k.value_sums.size()) * sizeof(float) +
                (k.offsets.size() + k.members.size()) * sizeof(int32_t);
    }
    if (c == layout_.size() - 1) {
      l.views.clear();
      for (const ChunkLayer& x : l.chunks) {
        l.views.push_back({x.keys.data(), x.values.data(), x.clusters.data()});
      }
      l.packed = attention::PackCentroids(l.views, model_.n_kv_heads, model_.head_dim);
      l.ready = true;
      ++loaded_;
    }
    return absl::OkStatus();
  }

  std::unique_ptr<KvReader> reader_;
  const attention::ContextLayout layout_;
  const attention::AttentionShape shape_;
  const ModelFingerprint model_;
  std::vector<Layer> layers_;
  absl::Status failure_;
  uint32_t loaded_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<KvContext>> OpenKvContext(Store* store, absl::string_view ns,
                                                         const KvContextOptions& options) {
  if (options.starts.size() != options.chunk_ids.size()) {
    return absl::InvalidArgumentError(absl::StrCat("a KV context gives ", options.starts.size(),
                                                   " start positions for ",
                                                   options.chunk_ids.size(), " chunks"));
  }
  const ModelFingerprint& m = options.model;
  ASSIGN_OR_RETURN(std::vector<uint32_t> tokens, store->ExistsKv(ns, options.chunk_ids, m));
  std::vector<int> counts;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] == 0) {
      return absl::NotFoundError(absl::StrCat(
          "chunk '", options.chunk_ids[i], "' holds no KV in namespace '", ns,
          "' (unknown, never stored, deleted, evicted or expired)"));
    }
    counts.push_back(static_cast<int>(tokens[i]));
  }
  ASSIGN_OR_RETURN(attention::ContextLayout layout,
                   attention::ContextLayout::Create(m.head_dim, m.rope_theta, options.starts,
                                                    std::move(counts)));
  KvReadOptions read;
  read.chunk_ids = options.chunk_ids;
  read.model = m;
  read.with_key_index = true;
  ASSIGN_OR_RETURN(std::unique_ptr<KvReader> reader, store->ReadKv(ns, read));
  const attention::AttentionShape shape{m.n_heads, m.n_kv_heads, m.head_dim,
                                        1.0f / std::sqrt(static_cast<float>(m.head_dim))};
  return std::unique_ptr<KvContext>(
      new KvContextImpl(std::move(reader), std::move(layout), shape, m));
}

}  // namespace mnemo::db
