"""The Python client's own types: plain dataclasses, so callers never handle
protobuf messages. mnemo/_convert.py is the one place that turns them into
wire messages and back."""
from __future__ import annotations

import array
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class NamespaceQuota:
    """A namespace's limits (see the README's Quotas); 0 = unlimited.
    bytes: encoded document and chunk records and dense vectors; chunks:
    live chunks; kv_bytes: encoded chunk KV."""
    max_bytes: int = 0
    max_chunks: int = 0
    max_kv_bytes: int = 0


@dataclass
class NamespaceUsage:
    """What a namespace holds, as its quota counts it (exact)."""
    bytes: int = 0
    chunks: int = 0
    kv_bytes: int = 0


@dataclass
class NamespaceConfig:
    """What a namespace is created with (see proto NamespaceConfig).
    metric: "ip" (inner product), "l2" or "cosine" ("" = the server's
    default: cosine with an encoder, else inner product)."""
    name: str
    dim: int = 0
    metric: str = ""
    index_factory: str = ""
    encoder: str = ""           # "" (clients bring vectors) or "use-lite"
    description: str = ""
    train_threshold: int = 0
    chunk_max_tokens: int = 0
    chunk_overlap_tokens: Optional[int] = None
    late_interaction: Optional[bool] = None
    late_interaction_nbits: int = 0
    quota: NamespaceQuota = field(default_factory=NamespaceQuota)


@dataclass
class NamespaceInfo:
    config: NamespaceConfig
    chunk_count: int = 0
    document_count: int = 0
    index_trained: bool = False
    index_description: str = ""
    created_unix_ms: int = 0
    approximate_bytes: int = 0
    usage: NamespaceUsage = field(default_factory=NamespaceUsage)
    # True when mnemod found the namespace's stored data damaged at start;
    # `damage` says where and what to do (every other call on it raises
    # DataLossError).
    damaged: bool = False
    damage: str = ""


@dataclass
class Chunk:
    id: str
    text: str = ""
    document_id: str = ""
    metadata: Optional[Dict[str, Any]] = None
    vector: Optional[List[float]] = None
    source_begin: int = 0
    source_end: int = 0


@dataclass
class Document:
    id: str
    text: str = ""
    metadata: Optional[Dict[str, Any]] = None


@dataclass
class Hit:
    id: str
    score: float
    chunk: Optional[Chunk] = None   # with include_payload / include_vectors
    snippet: str = ""               # with highlight


@dataclass
class UpsertResult:
    documents_written: int
    chunks_written: int


@dataclass
class GetResult:
    chunks: List[Chunk]
    documents: List[Document]
    missing_ids: List[str]


@dataclass
class DeleteResult:
    chunks_deleted: int
    documents_deleted: int


@dataclass
class Stats:
    namespaces: List[NamespaceInfo]
    total_approximate_bytes: int
    data_dir: str
    version: str


@dataclass
class ModelFingerprint:
    """The decoder model a namespace's KV belongs to (mnemo/model_fingerprint.h)."""
    architecture: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    dim: int
    rope_theta: float
    rope_style: str
    dtype: str
    tokenizer_sha256: str


@dataclass
class KvConfig:
    """codec: "fp32", "fp16", "bf16", "int8", "int4" or "kvq" ("" = fp16)."""
    model: ModelFingerprint
    codec: str = ""
    entropy: Optional[bool] = None
    int4_group_size: int = 0
    capacity_bytes: int = 0
    eviction_policy: str = ""
    default_ttl_seconds: int = 0
    key_index_keys_per_cluster: Optional[int] = None


@dataclass
class KvStats:
    config: Optional[KvConfig]
    chunks: int = 0
    blocks: int = 0
    tokens: int = 0
    stored_bytes: int = 0
    index_bytes: int = 0  # of stored_bytes, the key indexes'
    fp16_bytes: int = 0
    pinned_chunks: int = 0
    evicted_chunks: int = 0
    expired_chunks: int = 0
    mean_key_error: float = 0.0
    mean_value_error: float = 0.0


@dataclass
class KvLayer:
    """K and V of one layer, each [n_kv_heads, tokens, head_dim] row-major,
    little-endian elements of `dtype` ("fp32", "fp16" or "bf16")."""
    layer: int
    n_kv_heads: int
    tokens: int
    head_dim: int
    k: bytes
    v: bytes
    dtype: str = "fp32"

    def k_floats(self) -> array.array:
        """K as floats (fp32 blocks only)."""
        return _floats(self.k, self.dtype)

    def v_floats(self) -> array.array:
        return _floats(self.v, self.dtype)


@dataclass
class KvBlock:
    """One (chunk, layer) block of a GetKv stream."""
    chunk_index: int
    chunk_id: str
    block: KvLayer
    key_error: float = 0.0
    value_error: float = 0.0
    token_ids: List[int] = field(default_factory=list)  # in a chunk's first block only
    position: int = -1   # start position the keys are rotated for; -1: before RoPE


@dataclass
class KvPutResult:
    stored_bytes: int
    key_error: List[float]
    value_error: List[float]
    evicted_chunks: int


@dataclass
class BackupInfo:
    """A backup in a backup directory on the server's host."""
    id: int
    created_unix_s: int
    size_bytes: int
    files: int
    sequence: int  # covers every write acknowledged before the backup began


@dataclass
class ApiKeyInfo:
    """An API key as listed (never its secret); role is "read", "write" or
    "admin" on namespace ns ("*" = every namespace)."""
    id: str
    ns: str
    role: str
    name: str = ""
    created_unix_ms: int = 0
    rate_limit_rps: float = 0.0   # 0 = the server's --rate-limit-rps
    rate_limit_burst: int = 0     # 0 = the server's --rate-limit-burst


@dataclass
class CreatedApiKey:
    """A new API key: `key` is its secret text, returned only once."""
    key: str
    info: ApiKeyInfo


@dataclass
class InjectionInfo:
    """A namespace's registered injection model (mnemo inject register)."""
    namespace: str
    name: str
    lineage: Dict[str, str]
    encoder_dim: int
    decoder_dim: int
    memory_tokens: int
    exact: bool
    chunks: int


@dataclass
class RecallHit:
    """A recalled chunk and its injection tokens: `m` rows of `dim` floats
    (row-major), to place in the decoder's input embeddings."""
    chunk_id: str
    document_id: str
    text: str
    score: float
    rerank_score: Optional[float]
    m: int
    dim: int
    tokens: List[float]


@dataclass
class Memory:
    """An agent memory (mnemo memory ...). Times are Unix ms."""
    id: str
    text: str
    metadata: Optional[Dict[str, Any]]
    user_id: str
    agent_id: str
    run_id: str
    created_at_ms: int
    updated_at_ms: int
    expires_at_ms: Optional[int]
    valid_at_ms: int
    invalid_at_ms: Optional[int]
    hash: str


@dataclass
class MemoryAddResult:
    """outcome: "added", "updated" (merged into a near duplicate) or "noop"
    (an exact duplicate of a live memory)."""
    outcome: str
    memory: Memory
    similarity: float


@dataclass
class MemoryHit:
    memory: Memory
    score: float       # fused dense + BM25 relevance in [0, 1]
    similarity: float  # cosine similarity to the query


@dataclass
class MemoryPage:
    memories: List[Memory]
    next_page_token: str  # "" on the last page


@dataclass
class MemoryEvent:
    """event: "ADD", "UPDATE" or "DELETE"."""
    memory_id: str
    event: str
    old_text: str
    new_text: str
    time_ms: int
    actor: str


@dataclass
class MemoryBlock:
    agent_id: str
    label: str
    value: str
    limit_bytes: int
    updated_at_ms: int


@dataclass
class ConvoMessage:
    """A message of a run's conversation log (mnemo convo ...). role: "user",
    "assistant", "system" or "tool"; time_ms: Unix ms."""
    id: str
    run_id: str
    role: str
    content: str
    time_ms: int
    metadata: Optional[Dict[str, Any]]


@dataclass
class ConvoHit:
    message: ConvoMessage
    score: float       # fused dense + BM25 relevance in [0, 1]
    similarity: float  # cosine similarity to the query


@dataclass
class ConvoPage:
    messages: List[ConvoMessage]  # time order
    next_page_token: str          # "" on the last page


def _floats(data: bytes, dtype: str) -> array.array:
    if dtype != "fp32":
        raise ValueError(f"k_floats/v_floats need an fp32 block, this one is {dtype}")
    out = array.array("f")
    out.frombytes(data)
    return out


__all__ = ["NamespaceQuota", "NamespaceUsage", "NamespaceConfig", "NamespaceInfo", "Chunk",
           "Document", "Hit", "UpsertResult",
           "GetResult", "DeleteResult", "Stats", "ModelFingerprint", "KvConfig", "KvStats",
           "KvLayer", "KvBlock", "KvPutResult", "BackupInfo", "InjectionInfo", "RecallHit",
           "Memory", "MemoryAddResult", "MemoryHit", "MemoryPage", "MemoryEvent", "MemoryBlock",
           "ConvoMessage", "ConvoHit", "ConvoPage"]
