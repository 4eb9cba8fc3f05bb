"""The one conversion between the Python client's types (mnemo/types.py) and
the wire messages (mnemo/v1/mnemo_pb2.py). Bad arguments raise ValueError
or TypeError before anything is sent."""
from __future__ import annotations

import array
import json
import math
from typing import Any, Dict, Iterable, List, Optional, Sequence

from mnemo.v1 import auth_pb2 as apb
from mnemo.v1 import inject_pb2 as ipb
from mnemo.v1 import memory_pb2 as mpb
from mnemo.v1 import mnemo_pb2 as pb
from mnemo import types as t

_METRICS = {"": pb.METRIC_UNSPECIFIED, "ip": pb.METRIC_INNER_PRODUCT,
            "inner_product": pb.METRIC_INNER_PRODUCT, "l2": pb.METRIC_L2,
            "cosine": pb.METRIC_COSINE}
_METRIC_NAMES = {pb.METRIC_INNER_PRODUCT: "ip", pb.METRIC_L2: "l2", pb.METRIC_COSINE: "cosine",
                 pb.METRIC_UNSPECIFIED: ""}
_MODES = {"": pb.SEARCH_MODE_UNSPECIFIED, "dense": pb.SEARCH_MODE_DENSE,
          "bm25": pb.SEARCH_MODE_BM25, "hybrid": pb.SEARCH_MODE_HYBRID_RRF,
          "rrf": pb.SEARCH_MODE_HYBRID_RRF, "weighted": pb.SEARCH_MODE_HYBRID_WEIGHTED,
          "late": pb.SEARCH_MODE_LATE_INTERACTION}
_CODECS = {"": pb.KV_CODEC_UNSPECIFIED, "fp32": pb.KV_CODEC_FP32, "fp16": pb.KV_CODEC_FP16,
           "bf16": pb.KV_CODEC_BF16, "int8": pb.KV_CODEC_INT8, "int4": pb.KV_CODEC_INT4,
           "kvq": pb.KV_CODEC_KVQ}
_CODEC_NAMES = {v: k for k, v in _CODECS.items() if k}
_DTYPES = {"": pb.KV_DTYPE_UNSPECIFIED, "fp32": pb.KV_DTYPE_FP32, "fp16": pb.KV_DTYPE_FP16,
           "bf16": pb.KV_DTYPE_BF16}
_DTYPE_NAMES = {pb.KV_DTYPE_UNSPECIFIED: "fp32", pb.KV_DTYPE_FP32: "fp32",
                pb.KV_DTYPE_FP16: "fp16", pb.KV_DTYPE_BF16: "bf16"}


def _choice(table: Dict[str, int], value: str, what: str) -> int:
    if value not in table:
        raise ValueError(f"unknown {what} {value!r}; one of {sorted(k for k in table if k)}")
    return table[value]


def metric(name: str) -> int:
    return _choice(_METRICS, name, "metric")


def search_mode(name: str) -> int:
    return _choice(_MODES, name, "search mode")


def kv_codec(name: str) -> int:
    return _choice(_CODECS, name, "KV codec")


def kv_dtype(name: str) -> int:
    return _choice(_DTYPES, name, "KV dtype")


# --- namespaces -------------------------------------------------------------

def namespace_config_to_pb(c: t.NamespaceConfig) -> pb.NamespaceConfig:
    m = pb.NamespaceConfig(name=c.name, dim=c.dim, metric=metric(c.metric),
                           index_factory=c.index_factory, train_threshold=c.train_threshold,
                           description=c.description, encoder=c.encoder,
                           chunk_max_tokens=c.chunk_max_tokens,
                           late_interaction_nbits=c.late_interaction_nbits)
    if c.chunk_overlap_tokens is not None:
        m.chunk_overlap_tokens = c.chunk_overlap_tokens
    if c.late_interaction is not None:
        m.late_interaction = c.late_interaction
    # Only the limits that are set go out (0 = none), as the server sends them.
    q = c.quota if c.quota is not None else t.NamespaceQuota()
    for name in ("max_bytes", "max_chunks", "max_kv_bytes"):
        value = _quota_limit(name, getattr(q, name))
        if value:
            setattr(m.quota, name, value)
    return m


def _quota_limit(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0 or value >= 1 << 64:
        raise ValueError(f"{name} is {value}; a limit is 0 (none) .. 2^64-1")
    return value


def quota_change_to_pb(max_bytes: Optional[int], max_chunks: Optional[int],
                       max_kv_bytes: Optional[int]) -> pb.NamespaceQuota:
    """SetNamespaceQuota's change: None keeps a limit (the field stays
    unset), 0 removes it."""
    m = pb.NamespaceQuota()
    for name, value in (("max_bytes", max_bytes), ("max_chunks", max_chunks),
                        ("max_kv_bytes", max_kv_bytes)):
        if value is not None:
            setattr(m, name, _quota_limit(name, value))
    return m


def namespace_config_from_pb(m: pb.NamespaceConfig) -> t.NamespaceConfig:
    return t.NamespaceConfig(
        name=m.name, dim=m.dim, metric=_METRIC_NAMES.get(m.metric, ""),
        index_factory=m.index_factory, encoder=m.encoder, description=m.description,
        train_threshold=m.train_threshold, chunk_max_tokens=m.chunk_max_tokens,
        chunk_overlap_tokens=m.chunk_overlap_tokens if m.HasField("chunk_overlap_tokens") else None,
        late_interaction=m.late_interaction if m.HasField("late_interaction") else None,
        late_interaction_nbits=m.late_interaction_nbits,
        quota=t.NamespaceQuota(max_bytes=m.quota.max_bytes, max_chunks=m.quota.max_chunks,
                               max_kv_bytes=m.quota.max_kv_bytes))


def namespace_info_from_pb(m: pb.NamespaceInfo) -> t.NamespaceInfo:
    return t.NamespaceInfo(config=namespace_config_from_pb(m.config), chunk_count=m.chunk_count,
                           document_count=m.document_count, index_trained=m.index_trained,
                           index_description=m.index_description,
                           created_unix_ms=m.created_unix_ms,
                           approximate_bytes=m.approximate_bytes,
                           usage=t.NamespaceUsage(bytes=m.usage.bytes, chunks=m.usage.chunks,
                                                  kv_bytes=m.usage.kv_bytes),
                           damaged=m.damaged, damage=m.damage)


# --- records ----------------------------------------------------------------

def _metadata_json(metadata: Optional[Dict[str, Any]]) -> str:
    if metadata is None:
        return ""
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    return json.dumps(metadata, separators=(",", ":"), allow_nan=False)


def _metadata(text: str) -> Optional[Dict[str, Any]]:
    return json.loads(text) if text else None


def _finite(values: Iterable[float], what: str) -> List[float]:
    out = [float(v) for v in values]
    for i, v in enumerate(out):
        if not math.isfinite(v):
            raise ValueError(f"{what}[{i}] is {v}; vectors must be finite")
    return out


def chunk_to_pb(c: t.Chunk) -> pb.Chunk:
    m = pb.Chunk(id=c.id, document_id=c.document_id, text=c.text,
                 metadata_json=_metadata_json(c.metadata))
    if c.vector is not None:
        m.vector.extend(_finite(c.vector, f"chunk {c.id!r} vector"))
    return m


def chunk_from_pb(m: pb.Chunk) -> t.Chunk:
    return t.Chunk(id=m.id, text=m.text, document_id=m.document_id,
                   metadata=_metadata(m.metadata_json),
                   vector=list(m.vector) if len(m.vector) else None,
                   source_begin=m.source_begin, source_end=m.source_end)


def document_to_pb(d: t.Document) -> pb.Document:
    return pb.Document(id=d.id, text=d.text, metadata_json=_metadata_json(d.metadata))


def document_from_pb(m: pb.Document) -> t.Document:
    return t.Document(id=m.id, text=m.text, metadata=_metadata(m.metadata_json))


# --- filters ----------------------------------------------------------------

def _scalar(message_type, v: Any, where: str):
    """A filter scalar (string, finite number or bool) as `message_type`
    (pb.FilterValue or mpb.MemoryFilterValue: the same oneof)."""
    if isinstance(v, bool):
        return message_type(bool_value=v)
    if isinstance(v, (int, float)):
        if not math.isfinite(v):
            raise ValueError(f"{where}: {v} is not finite")
        return message_type(number_value=float(v))
    if isinstance(v, str):
        return message_type(string_value=v)
    raise ValueError(f"{where}: values are strings, numbers or bools, got {v!r}")


def _filter_value(v: Any, where: str) -> pb.FilterValue:
    return _scalar(pb.FilterValue, v, f"filter {where}")


_RANGE_OPS = ("gt", "gte", "lt", "lte")


def filter_to_pb(f: Optional[Dict[str, Any]]) -> Optional[pb.Filter]:
    """The metadata filter in the CLI's JSON syntax, as a dict:
    {"field": value} (equality), {"field": {"in": [v, ...]}},
    {"field": {"gte": 1, "lt": 5}} (range); fields are ANDed."""
    if f is None:
        return None
    if not isinstance(f, dict):
        raise TypeError(f"filter must be a dict, got {type(f).__name__}")
    out = pb.Filter()
    for name, cond in f.items():
        if not isinstance(name, str) or not name:
            raise ValueError("filter: field names are non-empty strings")
        fc = out.all_of.add(field=name)
        if isinstance(cond, dict):
            if not cond:
                raise ValueError(f"filter {name!r}: empty operator object")
            if "in" in cond:
                if len(cond) != 1:
                    raise ValueError(f"filter {name!r}: 'in' cannot be combined with another operator")
                values = cond["in"]
                if not isinstance(values, (list, tuple)) or not values:
                    raise ValueError(f"filter {name!r}: 'in' takes a non-empty list")
                getattr(fc, "in").values.extend(
                    _filter_value(v, f"{name!r} in") for v in values)
                continue
            unknown = [op for op in cond if op not in _RANGE_OPS]
            if unknown:
                raise ValueError(f"filter {name!r}: unknown operator {unknown[0]!r}")
            for op, bound in cond.items():
                if isinstance(bound, bool) or not isinstance(bound, (int, float)):
                    raise ValueError(f"filter {name!r}: {op} needs a number")
                setattr(fc.range, op, float(bound))
        else:
            fc.eq.CopyFrom(_filter_value(cond, repr(name)))
    return out


# --- search -----------------------------------------------------------------

def hit_from_pb(m: pb.Hit) -> t.Hit:
    return t.Hit(id=m.id, score=m.score,
                 chunk=chunk_from_pb(m.chunk) if m.HasField("chunk") else None,
                 snippet=m.snippet)


def query_vectors_to_pb(vectors: Sequence[Sequence[float]]) -> pb.QueryVectors:
    if not vectors:
        raise ValueError("no query vectors")
    dim = len(vectors[0])
    if dim == 0:
        raise ValueError("query vectors are empty")
    q = pb.QueryVectors(dim=dim)
    for i, v in enumerate(vectors):
        if len(v) != dim:
            raise ValueError(f"query {i} has {len(v)} values, query 0 has {dim}")
        q.data.extend(_finite(v, f"query {i}"))
    return q


# --- KV ---------------------------------------------------------------------

def fingerprint_to_pb(f: t.ModelFingerprint) -> pb.ModelFingerprint:
    return pb.ModelFingerprint(architecture=f.architecture, n_layers=f.n_layers,
                               n_heads=f.n_heads, n_kv_heads=f.n_kv_heads,
                               head_dim=f.head_dim, dim=f.dim, rope_theta=f.rope_theta,
                               rope_style=f.rope_style, dtype=f.dtype,
                               tokenizer_sha256=f.tokenizer_sha256)


def fingerprint_from_pb(m: pb.ModelFingerprint) -> t.ModelFingerprint:
    return t.ModelFingerprint(architecture=m.architecture, n_layers=m.n_layers,
                              n_heads=m.n_heads, n_kv_heads=m.n_kv_heads, head_dim=m.head_dim,
                              dim=m.dim, rope_theta=m.rope_theta, rope_style=m.rope_style,
                              dtype=m.dtype, tokenizer_sha256=m.tokenizer_sha256)


def kv_config_to_pb(c: t.KvConfig) -> pb.KvConfig:
    m = pb.KvConfig(model=fingerprint_to_pb(c.model), codec=kv_codec(c.codec),
                    int4_group_size=c.int4_group_size, capacity_bytes=c.capacity_bytes,
                    eviction_policy=c.eviction_policy,
                    default_ttl_seconds=c.default_ttl_seconds)
    if c.entropy is not None:
        m.entropy = c.entropy
    if c.key_index_keys_per_cluster is not None:
        m.key_index_keys_per_cluster = c.key_index_keys_per_cluster
    return m


def kv_config_from_pb(m: pb.KvConfig) -> t.KvConfig:
    return t.KvConfig(
        model=fingerprint_from_pb(m.model), codec=_CODEC_NAMES.get(m.codec, "fp16"),
        entropy=m.entropy if m.HasField("entropy") else None,
        int4_group_size=m.int4_group_size, capacity_bytes=m.capacity_bytes,
        eviction_policy=m.eviction_policy, default_ttl_seconds=m.default_ttl_seconds,
        key_index_keys_per_cluster=(m.key_index_keys_per_cluster
                                    if m.HasField("key_index_keys_per_cluster") else None))


def kv_stats_from_pb(m: pb.KvStats) -> t.KvStats:
    return t.KvStats(config=kv_config_from_pb(m.config) if m.HasField("config") else None,
                     chunks=m.chunks, blocks=m.blocks, tokens=m.tokens,
                     stored_bytes=m.stored_bytes, index_bytes=m.index_bytes,
                     fp16_bytes=m.fp16_bytes,
                     pinned_chunks=m.pinned_chunks, evicted_chunks=m.evicted_chunks,
                     expired_chunks=m.expired_chunks, mean_key_error=m.mean_key_error,
                     mean_value_error=m.mean_value_error)


def kv_layer_to_pb(layer: t.KvLayer) -> pb.KvLayer:
    return pb.KvLayer(layer=layer.layer, dtype=kv_dtype(layer.dtype), n_kv_heads=layer.n_kv_heads,
                      tokens=layer.tokens, head_dim=layer.head_dim, k=bytes(layer.k),
                      v=bytes(layer.v))


def kv_block_from_pb(m: pb.GetKvResponse) -> t.KvBlock:
    b = m.block
    return t.KvBlock(chunk_index=m.chunk_index, chunk_id=m.chunk_id,
                     block=t.KvLayer(layer=b.layer, n_kv_heads=b.n_kv_heads, tokens=b.tokens,
                                     head_dim=b.head_dim, k=b.k, v=b.v,
                                     dtype=_DTYPE_NAMES.get(b.dtype, "fp32")),
                     key_error=m.key_error, value_error=m.value_error,
                     token_ids=list(m.tokens), position=m.position)


# --- backups ------------------------------------------------------------------

def backup_from_pb(m: pb.BackupInfo) -> t.BackupInfo:
    return t.BackupInfo(id=m.id, created_unix_s=m.created_unix_s, size_bytes=m.size_bytes,
                        files=m.files, sequence=m.sequence)


# --- API keys -----------------------------------------------------------------

_ROLES = {"read": apb.ROLE_READ, "write": apb.ROLE_WRITE, "admin": apb.ROLE_ADMIN}
_ROLE_NAMES = {v: k for k, v in _ROLES.items()}


def role_to_pb(role: str) -> int:
    if role not in _ROLES:
        raise ValueError(f"unknown role {role!r} (read, write or admin)")
    return _ROLES[role]


def api_key_from_pb(m: apb.ApiKeyInfo) -> t.ApiKeyInfo:
    return t.ApiKeyInfo(id=m.id, ns=m.namespace, role=_ROLE_NAMES.get(m.role, "unspecified"),
                        name=m.name, created_unix_ms=m.created_unix_ms,
                        rate_limit_rps=m.rate_limit_rps, rate_limit_burst=m.rate_limit_burst)


# --- memory injection ---------------------------------------------------------

_RECALL_MODES = {"xrag": ipb.RECALL_MODE_XRAG, "memory": ipb.RECALL_MODE_MEMORY}


def recall_mode(name: str) -> int:
    return _choice(_RECALL_MODES, name, "recall mode")


def injection_info_from_pb(m: ipb.InjectionInfo) -> t.InjectionInfo:
    lineage = {f: getattr(m.lineage, f) for f in (
        "encoder", "encoder_sha256", "decoder_fingerprint", "decoder_weights_sha256",
        "model_sha256")}
    return t.InjectionInfo(namespace=m.namespace, name=m.name, lineage=lineage,
                           encoder_dim=m.encoder_dim, decoder_dim=m.decoder_dim,
                           memory_tokens=m.memory_tokens, exact=m.exact, chunks=m.chunks)


def recall_hit_from_pb(m: ipb.RecallHit) -> t.RecallHit:
    tokens = array.array("f")
    tokens.frombytes(m.tokens)  # the client asks for FP32
    return t.RecallHit(chunk_id=m.chunk_id, document_id=m.document_id, text=m.text,
                       score=m.score,
                       rerank_score=m.rerank_score if m.HasField("rerank_score") else None,
                       m=m.m, dim=m.dim, tokens=list(tokens))


# --- agent memory -------------------------------------------------------------

_MEMORY_OPS = {"eq": mpb.MEMORY_FILTER_OP_EQ, "ne": mpb.MEMORY_FILTER_OP_NE,
               "in": mpb.MEMORY_FILTER_OP_IN, "nin": mpb.MEMORY_FILTER_OP_NIN,
               "gt": mpb.MEMORY_FILTER_OP_GT, "gte": mpb.MEMORY_FILTER_OP_GTE,
               "lt": mpb.MEMORY_FILTER_OP_LT, "lte": mpb.MEMORY_FILTER_OP_LTE,
               "contains": mpb.MEMORY_FILTER_OP_CONTAINS,
               "icontains": mpb.MEMORY_FILTER_OP_ICONTAINS}
_OUTCOMES = {mpb.MEMORY_ADD_OUTCOME_ADDED: "added", mpb.MEMORY_ADD_OUTCOME_UPDATED: "updated",
             mpb.MEMORY_ADD_OUTCOME_NOOP: "noop"}
_EVENTS = {mpb.MEMORY_EVENT_KIND_ADD: "ADD", mpb.MEMORY_EVENT_KIND_UPDATE: "UPDATE",
           mpb.MEMORY_EVENT_KIND_DELETE: "DELETE"}


def scope_to_pb(user_id: str, agent_id: str, run_id: str) -> mpb.MemoryScope:
    return mpb.MemoryScope(user_id=user_id or "", agent_id=agent_id or "", run_id=run_id or "")


def _memory_value(v: Any, where: str) -> mpb.MemoryFilterValue:
    return _scalar(mpb.MemoryFilterValue, v, f"memory filter {where}")


def memory_filter_to_pb(f: Any, where: str = "filter") -> mpb.MemoryFilter:
    """mem0's filter form as a dict: {"field": v}, {"field": {"op": v}},
    {"AND": [...]}, {"OR": [...]}, {"NOT": {...}}; several keys are ANDed.
    ValueError for anything else (the server checks the tree again)."""
    if not isinstance(f, dict):
        raise ValueError(f"{where}: a filter is a dict, got {type(f).__name__}")
    parts = []
    for key, value in f.items():
        if key in ("AND", "OR"):
            if not isinstance(value, list) or not value:
                raise ValueError(f"{where}: {key} takes a non-empty list of filters")
            node = mpb.MemoryFilter()
            lst = node.all_of if key == "AND" else node.any_of
            lst.filters.extend(memory_filter_to_pb(x, f"{where}.{key}[{i}]")
                               for i, x in enumerate(value))
            parts.append(node)
        elif key == "NOT":
            node = mpb.MemoryFilter()
            node.negation.CopyFrom(memory_filter_to_pb(value, f"{where}.NOT"))
            parts.append(node)
        else:
            conds = value.items() if isinstance(value, dict) else [("eq", value)]
            if isinstance(value, dict) and not value:
                raise ValueError(f"{where}: {key!r} has an empty operator object")
            for op, v in conds:
                if op not in _MEMORY_OPS:
                    raise ValueError(f"{where}: unknown operator {op!r} on {key!r}")
                c = mpb.MemoryCondition(field=key, op=_MEMORY_OPS[op])
                if op in ("in", "nin"):
                    if not isinstance(v, (list, tuple)) or not v:
                        raise ValueError(f"{where}: {op} on {key!r} takes a non-empty list")
                    c.values.extend(_memory_value(x, f"{key}.{op}") for x in v)
                else:
                    c.values.append(_memory_value(v, f"{key}.{op}"))
                node = mpb.MemoryFilter()
                node.condition.CopyFrom(c)
                parts.append(node)
    if len(parts) == 1:
        return parts[0]
    out = mpb.MemoryFilter()
    out.all_of.filters.extend(parts)  # {} -> an empty AND: matches everything
    return out


def memory_from_pb(m: mpb.Memory) -> t.Memory:
    return t.Memory(id=m.id, text=m.text, metadata=_metadata(m.metadata_json),
                    user_id=m.scope.user_id, agent_id=m.scope.agent_id, run_id=m.scope.run_id,
                    created_at_ms=m.created_at_ms, updated_at_ms=m.updated_at_ms,
                    expires_at_ms=m.expires_at_ms if m.HasField("expires_at_ms") else None,
                    valid_at_ms=m.valid_at_ms,
                    invalid_at_ms=m.invalid_at_ms if m.HasField("invalid_at_ms") else None,
                    hash=m.hash)


def memory_add_result_from_pb(m: mpb.MemoryAddResult) -> t.MemoryAddResult:
    return t.MemoryAddResult(outcome=_OUTCOMES.get(m.outcome, "added"),
                             memory=memory_from_pb(m.memory), similarity=m.similarity)


def memory_event_from_pb(m: mpb.MemoryEvent) -> t.MemoryEvent:
    return t.MemoryEvent(memory_id=m.memory_id, event=_EVENTS.get(m.kind, "UPDATE"),
                         old_text=m.old_text, new_text=m.new_text, time_ms=m.time_ms,
                         actor=m.actor)


def memory_block_from_pb(m: mpb.MemoryBlock) -> t.MemoryBlock:
    return t.MemoryBlock(agent_id=m.agent_id, label=m.label, value=m.value,
                         limit_bytes=m.limit_bytes, updated_at_ms=m.updated_at_ms)


def convo_message_from_pb(m: mpb.ConvoMessage) -> t.ConvoMessage:
    return t.ConvoMessage(id=m.id, run_id=m.run_id, role=m.role, content=m.content,
                          time_ms=m.time_ms, metadata=_metadata(m.metadata_json))


def convo_selection_to_pb(run_id: str, role: str, since_ms: Optional[int],
                          until_ms: Optional[int]) -> mpb.ConvoSelection:
    s = mpb.ConvoSelection(run_id=run_id, role=role)
    if since_ms is not None:
        s.since_ms = since_ms
    if until_ms is not None:
        s.until_ms = until_ms
    return s
