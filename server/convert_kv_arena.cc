// Proto conversion of leased KV arena blocks (server/convert_kv_arena.h).
#include "server/convert_kv_arena.h"

#include "server/convert.h"

namespace mnemo::server {

void KvArenaBlockToProto(const KvArenaBlock& block, std::optional<uint64_t> lease_id,
                         uint32_t chunk_index,
                         const std::string& chunk_id, uint32_t layer, db::KvDtype dtype,
                         bool first, v1::GetKvResponse* out) {
  out->Clear();
  const KvArenaMeta& meta = *block.meta;
  out->set_chunk_index(chunk_index);
  out->set_chunk_id(chunk_id);
  v1::KvLayer* l = out->mutable_block();
  l->set_layer(layer);
  l->set_dtype(KvDtypeToProto(dtype));
  l->set_n_kv_heads(meta.heads);
  l->set_tokens(meta.tokens);
  l->set_head_dim(meta.head_dim);
  out->set_key_error(meta.key_error);
  out->set_value_error(meta.value_error);
  if (first) out->mutable_tokens()->Assign(meta.tokens_ids.begin(), meta.tokens_ids.end());
  out->set_position(meta.position);
  if (!lease_id.has_value()) return;
  v1::KvArenaLease* lease = out->mutable_lease();
  lease->set_id(*lease_id);
  lease->set_k_offset(block.k_offset);
  lease->set_v_offset(block.v_offset);
  lease->set_bytes(block.bytes);
}

KvArenaMeta KvArenaMetaOf(const db::KvBlock& block) {
  KvArenaMeta meta;
  meta.heads = block.shape.heads;
  meta.tokens = block.shape.tokens;
  meta.head_dim = block.shape.head_dim;
  meta.key_error = block.key_error;
  meta.value_error = block.value_error;
  meta.tokens_ids = block.tokens;
  meta.position = block.position;
  return meta;
}

}  // namespace mnemo::server
