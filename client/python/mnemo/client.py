"""mnemo.Client: a typed Python client over every RPC of mnemod. Method
names follow the `mnemo` CLI's verbs (`mnemo ns create` -> ns_create,
`mnemo kv get` -> get_kv). Failed calls raise the mnemo.errors class of
their gRPC code; streams come back as iterators."""
from __future__ import annotations

import functools
import os
import queue
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import grpc

from mnemo import _convert as cv
from mnemo import errors
from mnemo import types as t
from mnemo.v1 import auth_pb2 as apb
from mnemo.v1 import auth_pb2_grpc as arpc
from mnemo.v1 import inject_pb2 as ipb
from mnemo.v1 import inject_pb2_grpc as irpc
from mnemo.v1 import memory_pb2 as mpb
from mnemo.v1 import memory_pb2_grpc as mrpc
from mnemo.v1 import mnemo_pb2 as pb
from mnemo.v1 import mnemo_pb2_grpc as rpc

_DEFAULT_MAX_MESSAGE = 64 << 20


def _rpc(method):
    """Turns grpc.RpcError raised by the call into mnemo.errors."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None
    return wrapper


def _stream(it: Iterator) -> Iterator:
    try:
        yield from it
    except grpc.RpcError as e:
        raise errors.from_rpc_error(e) from None


class _BearerAuth(grpc.AuthMetadataPlugin):
    def __init__(self, key: str):
        self._metadata = (("authorization", f"Bearer {key}"),)

    def __call__(self, context, callback):
        callback(self._metadata, None)


class Client:
    """A connection to one mnemod.

    address: "host:port". api_key: sent as `authorization: Bearer KEY` on
    every call. tls_ca: path of a PEM CA bundle; with it the channel is TLS
    (without, plaintext); tls_cert and tls_key (PEM paths) present a client
    certificate to a mnemod that requires one (--tls-client-ca). timeout: default deadline per call in seconds
    (None = no deadline; streams never get one).
    """

    def __init__(self, address: str = "127.0.0.1:7070", api_key: Optional[str] = None,
                 tls_ca: Optional[str] = None, timeout: Optional[float] = 30.0,
                 max_message_bytes: int = _DEFAULT_MAX_MESSAGE, tls_cert: Optional[str] = None,
                 tls_key: Optional[str] = None):
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("a TLS client certificate needs both tls_cert and tls_key")
        if tls_cert is not None and tls_ca is None:
            raise ValueError("a TLS client certificate needs tls_ca")
        if tls_ca is not None:
            def read(path):
                with open(path, "rb") as f:
                    return f.read()
            creds = grpc.ssl_channel_credentials(
                root_certificates=read(tls_ca),
                private_key=read(tls_key) if tls_key else None,
                certificate_chain=read(tls_cert) if tls_cert else None)
            if api_key:
                creds = grpc.composite_channel_credentials(
                    creds, grpc.metadata_call_credentials(_BearerAuth(api_key)))
            self._channel = grpc.secure_channel(address, creds, options=options)
            self._metadata = None
        else:
            self._channel = grpc.insecure_channel(address, options=options)
            # Call credentials need a secure channel; on plaintext the key
            # travels as plain metadata.
            self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else None
        self._timeout = timeout
        self._mnemo = rpc.MnemoStub(self._channel)
        self._kv = rpc.MnemoKvStub(self._channel)
        self._inject = irpc.MnemoInjectStub(self._channel)
        self._memory = mrpc.MnemoMemoryStub(self._channel)
        self._auth = arpc.MnemoAuthStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method, request, timeout=None):
        return method(request, timeout=timeout if timeout is not None else self._timeout,
                      metadata=self._metadata)

    # --- namespaces ---------------------------------------------------------

    @_rpc
    def ns_create(self, name: str, dim: int = 0, metric: str = "", index_factory: str = "",
                  encoder: str = "", description: str = "", **options: Any) -> t.NamespaceInfo:
        """Creates a namespace. `options`: the other NamespaceConfig fields
        (train_threshold, chunk_max_tokens, chunk_overlap_tokens,
        late_interaction, late_interaction_nbits, quota: a NamespaceQuota)."""
        config = t.NamespaceConfig(name=name, dim=dim, metric=metric, index_factory=index_factory,
                                   encoder=encoder, description=description, **options)
        r = self._call(self._mnemo.CreateNamespace,
                       pb.CreateNamespaceRequest(config=cv.namespace_config_to_pb(config)))
        return cv.namespace_info_from_pb(r.info)

    @_rpc
    def ns_get(self, name: str) -> t.NamespaceInfo:
        r = self._call(self._mnemo.GetNamespace, pb.GetNamespaceRequest(name=name))
        return cv.namespace_info_from_pb(r.info)

    @_rpc
    def ns_list(self) -> List[t.NamespaceInfo]:
        r = self._call(self._mnemo.ListNamespaces, pb.ListNamespacesRequest())
        return [cv.namespace_info_from_pb(n) for n in r.namespaces]

    @_rpc
    def ns_drop(self, name: str) -> None:
        self._call(self._mnemo.DropNamespace, pb.DropNamespaceRequest(name=name))

    @_rpc
    def set_namespace_quota(self, ns: str, max_bytes: Optional[int] = None,
                            max_chunks: Optional[int] = None,
                            max_kv_bytes: Optional[int] = None) -> t.NamespaceInfo:
        """Changes the namespace's quota (`mnemo ns set-quota`): a limit left
        None keeps its value, 0 removes it. Returns the namespace's info with
        the new limits (`.config.quota`) and its usage (`.usage`). A write
        over a limit raises ResourceExhaustedError. With authentication on
        it needs admin on "*"."""
        r = self._call(self._mnemo.SetNamespaceQuota, pb.SetNamespaceQuotaRequest(
            name=ns, quota=cv.quota_change_to_pb(max_bytes, max_chunks, max_kv_bytes)))
        return cv.namespace_info_from_pb(r.info)

    # --- records ------------------------------------------------------------

    @_rpc
    def upsert(self, ns: str, chunks: Sequence[t.Chunk] = (),
               documents: Sequence[t.Document] = ()) -> t.UpsertResult:
        """Inserts or replaces chunks and documents in one commit. In an
        encoder namespace, documents with text are chunked and embedded on
        the server, and chunks may come without vectors."""
        req = pb.UpsertRequest(namespace=ns)
        req.chunks.extend(cv.chunk_to_pb(c) for c in chunks)
        req.documents.extend(cv.document_to_pb(d) for d in documents)
        r = self._call(self._mnemo.Upsert, req)
        return t.UpsertResult(r.documents_written, r.chunks_written)

    def ingest(self, ns: str, texts: Dict[str, str],
               metadata: Optional[Dict[str, Dict[str, Any]]] = None) -> t.UpsertResult:
        """Text ingest into an encoder namespace: each (document id, text)
        becomes a document the server chunks and embeds (chunk ids
        "<id>#<n>"), replacing that document's earlier chunks."""
        metadata = metadata or {}
        return self.upsert(ns, documents=[t.Document(id=i, text=x, metadata=metadata.get(i))
                                          for i, x in texts.items()])

    @_rpc
    def get(self, ns: str, chunk_ids: Sequence[str] = (), document_ids: Sequence[str] = (),
            include_vectors: bool = False) -> t.GetResult:
        r = self._call(self._mnemo.Get, pb.GetRequest(
            namespace=ns, chunk_ids=list(chunk_ids), document_ids=list(document_ids),
            include_vectors=include_vectors))
        return t.GetResult([cv.chunk_from_pb(c) for c in r.chunks],
                           [cv.document_from_pb(d) for d in r.documents], list(r.missing_ids))

    @_rpc
    def delete(self, ns: str, chunk_ids: Sequence[str] = (),
               document_ids: Sequence[str] = ()) -> t.DeleteResult:
        r = self._call(self._mnemo.Delete, pb.DeleteRequest(
            namespace=ns, chunk_ids=list(chunk_ids), document_ids=list(document_ids)))
        return t.DeleteResult(r.chunks_deleted, r.documents_deleted)

    # --- search -------------------------------------------------------------

    @_rpc
    def search_batch(self, ns: str, texts: Optional[Sequence[str]] = None,
                     vectors: Optional[Sequence[Sequence[float]]] = None, k: int = 10,
                     mode: str = "", filter: Optional[Dict[str, Any]] = None,
                     include_payload: bool = False, include_vectors: bool = False,
                     highlight: bool = False, ef_search: int = 0, nprobe: int = 0,
                     dense_weight: float = 0.0, bm25_weight: float = 0.0,
                     rrf_k: int = 0) -> List[List[t.Hit]]:
        """One hit list per query; give texts (encoder namespaces) or
        vectors. mode: "dense" (default), "bm25", "hybrid" (RRF),
        "weighted", "late". filter: the metadata filter as a dict (see
        mnemo._convert.filter_to_pb)."""
        if (texts is None) == (vectors is None):
            raise ValueError("give either texts or vectors")
        req = pb.SearchRequest(namespace=ns, k=k, mode=cv.search_mode(mode),
                               include_payload=include_payload,
                               include_vectors=include_vectors, highlight=highlight,
                               dense_weight=dense_weight, bm25_weight=bm25_weight, rrf_k=rrf_k)
        req.params.hnsw_ef_search = ef_search
        req.params.ivf_nprobe = nprobe
        if texts is not None:
            if isinstance(texts, str):
                raise TypeError("texts is a list of strings; use search() for one query")
            req.texts.texts.extend(texts)
        else:
            req.vectors.CopyFrom(cv.query_vectors_to_pb(vectors))
        f = cv.filter_to_pb(filter)
        if f is not None:
            req.filter.CopyFrom(f)
        r = self._call(self._mnemo.Search, req)
        return [[cv.hit_from_pb(h) for h in q.hits] for q in r.results]

    def search(self, ns: str, query: Union[str, Sequence[float]], k: int = 10,
               **kwargs: Any) -> List[t.Hit]:
        """One query: a text (encoder namespaces) or a vector."""
        if isinstance(query, str):
            return self.search_batch(ns, texts=[query], k=k, **kwargs)[0]
        return self.search_batch(ns, vectors=[query], k=k, **kwargs)[0]

    # --- admin --------------------------------------------------------------

    @_rpc
    def stats(self, ns: str = "") -> t.Stats:
        r = self._call(self._mnemo.Stats, pb.StatsRequest(namespace=ns))
        return t.Stats([cv.namespace_info_from_pb(n) for n in r.namespaces],
                       r.total_approximate_bytes, r.data_dir, r.version)

    @_rpc
    def checkpoint(self, to: str = "") -> int:
        """Persists index snapshots and flushes; with `to`, also writes a
        consistent copy of the store there. Returns the last sequence."""
        return self._call(self._mnemo.Checkpoint,
                          pb.CheckpointRequest(target_dir=to)).last_sequence

    @_rpc
    def compact(self, ns: str = "") -> None:
        self._call(self._mnemo.Compact, pb.CompactRequest(namespace=ns), timeout=None)

    # --- backups ------------------------------------------------------------

    @_rpc
    def backup_create(self, backup_dir: str) -> t.BackupInfo:
        """A new backup of the whole store in `backup_dir` (an absolute path
        on the server's host; online, incremental). Restore it with
        `mnemod --restore-from DIR --data-dir NEW`."""
        r = self._call(self._mnemo.CreateBackup, pb.CreateBackupRequest(backup_dir=backup_dir),
                       timeout=None)
        return cv.backup_from_pb(r.backup)

    @_rpc
    def backup_list(self, backup_dir: str) -> List[t.BackupInfo]:
        r = self._call(self._mnemo.ListBackups, pb.ListBackupsRequest(backup_dir=backup_dir))
        return [cv.backup_from_pb(b) for b in r.backups]

    @_rpc
    def backup_verify(self, backup_dir: str, id: int = 0) -> List[int]:
        """Checks sizes and checksums of backup `id` (0 = all); raises
        DataLossError naming the damage."""
        r = self._call(self._mnemo.VerifyBackup,
                       pb.VerifyBackupRequest(backup_dir=backup_dir, id=id), timeout=None)
        return list(r.verified)

    # --- API keys (mnemod --admin-key-file) ---------------------------------

    @_rpc
    def auth_create_key(self, ns: str, role: str, name: str = "", rate_limit_rps: float = 0.0,
                        rate_limit_burst: int = 0) -> t.CreatedApiKey:
        """A new API key with `role` ("read", "write", "admin") on namespace
        `ns` ("*" = every namespace). Its secret text (`.key`) is returned
        only here; pass it as Client(api_key=...)."""
        r = self._call(self._auth.CreateKey, apb.CreateKeyRequest(
            namespace=ns, role=cv.role_to_pb(role), name=name, rate_limit_rps=rate_limit_rps,
            rate_limit_burst=rate_limit_burst))
        return t.CreatedApiKey(key=r.key, info=cv.api_key_from_pb(r.info))

    @_rpc
    def auth_list(self, ns: str = "") -> List[t.ApiKeyInfo]:
        """The keys of `ns` ("" = every key), never their secrets."""
        r = self._call(self._auth.ListKeys, apb.ListKeysRequest(namespace=ns))
        return [cv.api_key_from_pb(k) for k in r.keys]

    @_rpc
    def auth_revoke(self, id: str) -> None:
        self._call(self._auth.RevokeKey, apb.RevokeKeyRequest(id=id))

    # --- memory injection ---------------------------------------------------

    @_rpc
    def inject_register(self, ns: str, model_dir: str, exact: bool = False) -> t.InjectionInfo:
        """Registers the injection model in `model_dir` (config.json,
        inject.safetensors, tokenizer.model, read here and sent) for an
        encoder namespace; existing chunks get their records."""
        req = ipb.RegisterInjectionModelRequest(namespace=ns, exact=exact)
        for name in ("config.json", "inject.safetensors", "tokenizer.model"):
            with open(os.path.join(model_dir, name), "rb") as f:
                req.files[name] = f.read()
        r = self._call(self._inject.RegisterInjectionModel, req, timeout=None)
        return cv.injection_info_from_pb(r.info)

    @_rpc
    def inject_info(self, ns: str) -> t.InjectionInfo:
        r = self._call(self._inject.GetInjectionModel, ipb.GetInjectionModelRequest(namespace=ns))
        return cv.injection_info_from_pb(r.info)

    @_rpc
    def recall(self, ns: str, query: Union[str, Sequence[float]], k: int = 1,
               mode: str = "memory", rerank_candidates: Optional[int] = None,
               exact: bool = False) -> List[t.RecallHit]:
        """The chunks nearest `query` (a text, or a vector of the encoder's
        dim) with their injection tokens: mode "xrag" (one row) or "memory"
        (memory_tokens rows conditioned on the query). rerank_candidates:
        rerank that many dense candidates and keep k."""
        req = ipb.RecallRequest(namespace=ns, k=k, mode=cv.recall_mode(mode),
                                dtype=ipb.INJECT_DTYPE_FP32, exact=exact)
        if isinstance(query, str):
            req.text = query
        else:
            req.vector.values.extend(cv._finite(query, "query"))
        if rerank_candidates is not None:
            req.rerank.candidates = rerank_candidates
            req.rerank.keep = k
        r = self._call(self._inject.Recall, req)
        return [cv.recall_hit_from_pb(h) for h in r.hits]

    # --- agent memory -------------------------------------------------------
    # Scope: user_id, agent_id, run_id (at least one where the server needs
    # a scope: InvalidArgumentError otherwise). Filters: mem0's form as a
    # dict ({"field": v}, {"field": {"gte": 1}}, {"AND"|"OR": [...]},
    # {"NOT": {...}}), evaluated inside the index search.

    @_rpc
    def memory_add(self, ns: str, text: Union[str, Sequence[str]], user_id: str = "",
                   agent_id: str = "", run_id: str = "",
                   metadata: Optional[Dict[str, Any]] = None,
                   expires_at_ms: Optional[int] = None, valid_at_ms: Optional[int] = None,
                   actor: str = "", near_duplicate_threshold: Optional[float] = None):
        """Adds one memory (text: a str -> one MemoryAddResult) or several
        (a list -> a list). An exact duplicate in the scope is dropped
        (outcome "noop"); a near duplicate is updated ("updated")."""
        texts = [text] if isinstance(text, str) else list(text)
        req = mpb.MemoryAddRequest(namespace=ns, scope=cv.scope_to_pb(user_id, agent_id, run_id),
                                   actor=actor)
        if near_duplicate_threshold is not None:
            req.near_duplicate_threshold = near_duplicate_threshold
        for x in texts:
            m = req.memories.add(text=x, metadata_json=cv._metadata_json(metadata))
            if expires_at_ms is not None:
                m.expires_at_ms = expires_at_ms
            if valid_at_ms is not None:
                m.valid_at_ms = valid_at_ms
        r = self._call(self._memory.MemoryAdd, req)
        results = [cv.memory_add_result_from_pb(x) for x in r.results]
        return results[0] if isinstance(text, str) else results

    @_rpc
    def memory_search(self, ns: str, query: str, user_id: str = "", agent_id: str = "",
                      run_id: str = "", top_k: int = 10, filter: Optional[Dict[str, Any]] = None,
                      threshold: Optional[float] = None, valid_from_ms: Optional[int] = None,
                      valid_to_ms: Optional[int] = None, recency_weight: float = 0.0,
                      recency_half_life_ms: int = 0,
                      show_expired: bool = False) -> List[t.MemoryHit]:
        """Hybrid (dense + BM25) search within the scope, best first."""
        req = mpb.MemorySearchRequest(namespace=ns,
                                      scope=cv.scope_to_pb(user_id, agent_id, run_id),
                                      query=query, top_k=top_k, recency_weight=recency_weight,
                                      recency_half_life_ms=recency_half_life_ms,
                                      show_expired=show_expired)
        if filter is not None:
            req.filter.CopyFrom(cv.memory_filter_to_pb(filter))
        if threshold is not None:
            req.threshold = threshold
        if valid_from_ms is not None:
            req.valid_from_ms = valid_from_ms
        if valid_to_ms is not None:
            req.valid_to_ms = valid_to_ms
        r = self._call(self._memory.MemorySearch, req)
        return [t.MemoryHit(cv.memory_from_pb(h.memory), h.score, h.similarity) for h in r.hits]

    @_rpc
    def memory_get(self, ns: str, id: str) -> t.Memory:
        r = self._call(self._memory.MemoryGet, mpb.MemoryGetRequest(namespace=ns, id=id))
        return cv.memory_from_pb(r.memory)

    @_rpc
    def memory_list(self, ns: str, user_id: str = "", agent_id: str = "", run_id: str = "",
                    filter: Optional[Dict[str, Any]] = None, page_size: int = 0,
                    page_token: str = "", show_expired: bool = False) -> t.MemoryPage:
        """One page, in id (creation) order; pass next_page_token back for
        the next (a token of another query is InvalidArgumentError)."""
        req = mpb.MemoryListRequest(namespace=ns, scope=cv.scope_to_pb(user_id, agent_id, run_id),
                                    page_size=page_size, page_token=page_token,
                                    show_expired=show_expired)
        if filter is not None:
            req.filter.CopyFrom(cv.memory_filter_to_pb(filter))
        r = self._call(self._memory.MemoryList, req)
        return t.MemoryPage([cv.memory_from_pb(m) for m in r.memories], r.next_page_token)

    def memory_iter(self, ns: str, **kwargs: Any) -> Iterator[t.Memory]:
        """Every memory memory_list would page through, as one iterator."""
        token = ""
        while True:
            page = self.memory_list(ns, page_token=token, **kwargs)
            yield from page.memories
            token = page.next_page_token
            if not token:
                return

    @_rpc
    def memory_update(self, ns: str, id: str, text: Optional[str] = None,
                      metadata: Optional[Dict[str, Any]] = None,
                      expires_at_ms: Optional[int] = None, valid_at_ms: Optional[int] = None,
                      invalid_at_ms: Optional[int] = None, actor: str = "") -> t.Memory:
        """Changes what is given (expires_at_ms / invalid_at_ms 0 clear);
        an expired memory is FailedPreconditionError."""
        req = mpb.MemoryUpdateRequest(namespace=ns, id=id, actor=actor)
        if text is not None:
            req.text = text
        if metadata is not None:
            req.metadata_json = cv._metadata_json(metadata)
        if expires_at_ms is not None:
            req.expires_at_ms = expires_at_ms
        if valid_at_ms is not None:
            req.valid_at_ms = valid_at_ms
        if invalid_at_ms is not None:
            req.invalid_at_ms = invalid_at_ms
        return cv.memory_from_pb(self._call(self._memory.MemoryUpdate, req).memory)

    @_rpc
    def memory_delete(self, ns: str, id: str, actor: str = "") -> None:
        self._call(self._memory.MemoryDelete, mpb.MemoryDeleteRequest(namespace=ns, id=id,
                                                                      actor=actor))

    @_rpc
    def memory_forget(self, ns: str, user_id: str = "", agent_id: str = "", run_id: str = "",
                      actor: str = "") -> int:
        """Deletes every memory of the scope (mem0's delete_all); returns how many."""
        return self._call(self._memory.MemoryDeleteAll, mpb.MemoryDeleteAllRequest(
            namespace=ns, scope=cv.scope_to_pb(user_id, agent_id, run_id), actor=actor)).deleted

    @_rpc
    def memory_history(self, ns: str, id: str) -> List[t.MemoryEvent]:
        r = self._call(self._memory.MemoryHistory, mpb.MemoryHistoryRequest(namespace=ns, id=id))
        return [cv.memory_event_from_pb(e) for e in r.events]

    @_rpc
    def memory_reset(self, ns: str) -> int:
        """Deletes every memory and all history of the namespace."""
        return self._call(self._memory.MemoryReset, mpb.MemoryResetRequest(namespace=ns)).deleted

    @_rpc
    def block_get(self, ns: str, agent_id: str, label: str) -> t.MemoryBlock:
        r = self._call(self._memory.BlockGet, mpb.BlockGetRequest(namespace=ns, agent_id=agent_id,
                                                                  label=label))
        return cv.memory_block_from_pb(r.block)

    @_rpc
    def _block_edit(self, ns: str, agent_id: str, label: str, **fields: Any) -> t.MemoryBlock:
        r = self._call(self._memory.BlockEdit, mpb.BlockEditRequest(
            namespace=ns, agent_id=agent_id, label=label, **fields))
        return cv.memory_block_from_pb(r.block)

    def block_set(self, ns: str, agent_id: str, label: str, text: str,
                  limit_bytes: Optional[int] = None, actor: str = "") -> t.MemoryBlock:
        extra = {} if limit_bytes is None else {"limit_bytes": limit_bytes}
        return self._block_edit(ns, agent_id, label, kind=mpb.BLOCK_EDIT_KIND_SET, text=text,
                                actor=actor, **extra)

    def block_append(self, ns: str, agent_id: str, label: str, text: str,
                     actor: str = "") -> t.MemoryBlock:
        return self._block_edit(ns, agent_id, label, kind=mpb.BLOCK_EDIT_KIND_APPEND, text=text,
                                actor=actor)

    def block_replace(self, ns: str, agent_id: str, label: str, old_text: str, text: str,
                      actor: str = "") -> t.MemoryBlock:
        """old_text must occur exactly once (FailedPreconditionError naming
        the count otherwise)."""
        return self._block_edit(ns, agent_id, label, kind=mpb.BLOCK_EDIT_KIND_REPLACE,
                                old_text=old_text, text=text, actor=actor)

    def block_insert(self, ns: str, agent_id: str, label: str, text: str,
                     line: Optional[int] = None, actor: str = "") -> t.MemoryBlock:
        extra = {} if line is None else {"line": line}
        return self._block_edit(ns, agent_id, label, kind=mpb.BLOCK_EDIT_KIND_INSERT, text=text,
                                actor=actor, **extra)

    # --- conversation logs ---------------------------------------------------
    # Per (namespace, run_id) the messages of an agent run; role is "user",
    # "assistant", "system" or "tool"; times are Unix ms (inclusive ranges).

    @_rpc
    def convo_append(self, ns: str, run_id: str, content: Union[str, Sequence[Dict[str, Any]]],
                     role: str = "user", time_ms: Optional[int] = None,
                     metadata: Optional[Dict[str, Any]] = None):
        """Appends one message (content: a str -> one ConvoMessage) or
        several (a list of dicts with "role", "content" and optionally
        "time_ms" and "metadata" -> a list), in one commit. time_ms unset =
        the server's time."""
        if isinstance(content, str):
            items = [{"role": role, "content": content, "time_ms": time_ms,
                      "metadata": metadata}]
        else:
            items = list(content)
        req = mpb.AppendMessagesRequest(namespace=ns, run_id=run_id)
        for item in items:
            m = req.messages.add(role=item.get("role", "user"), content=item["content"],
                                 metadata_json=cv._metadata_json(item.get("metadata")))
            if item.get("time_ms") is not None:
                m.time_ms = item["time_ms"]
        r = self._call(self._memory.AppendMessages, req)
        out = [cv.convo_message_from_pb(m) for m in r.messages]
        return out[0] if isinstance(content, str) else out

    @_rpc
    def convo_search(self, ns: str, query: str, run_id: str = "", role: str = "",
                     since_ms: Optional[int] = None, until_ms: Optional[int] = None,
                     top_k: int = 10) -> List[t.ConvoHit]:
        """Hybrid (dense + BM25) search of the selected messages (run_id ""
        = every run of the namespace), best first."""
        req = mpb.SearchMessagesRequest(
            namespace=ns, selection=cv.convo_selection_to_pb(run_id, role, since_ms, until_ms),
            query=query, top_k=top_k)
        r = self._call(self._memory.SearchMessages, req)
        return [t.ConvoHit(cv.convo_message_from_pb(h.message), h.score, h.similarity)
                for h in r.hits]

    @_rpc
    def convo_list(self, ns: str, run_id: str, role: str = "", since_ms: Optional[int] = None,
                   until_ms: Optional[int] = None, page_size: int = 0,
                   page_token: str = "") -> t.ConvoPage:
        """One page of the run's messages in time order; pass next_page_token
        back for the next (a token of another selection is
        InvalidArgumentError)."""
        req = mpb.ListMessagesRequest(
            namespace=ns, selection=cv.convo_selection_to_pb(run_id, role, since_ms, until_ms),
            page_size=page_size, page_token=page_token)
        r = self._call(self._memory.ListMessages, req)
        return t.ConvoPage([cv.convo_message_from_pb(m) for m in r.messages], r.next_page_token)

    def convo_iter(self, ns: str, run_id: str, **kwargs: Any) -> Iterator[t.ConvoMessage]:
        """Every message convo_list would page through, as one iterator."""
        token = ""
        while True:
            page = self.convo_list(ns, run_id, page_token=token, **kwargs)
            yield from page.messages
            token = page.next_page_token
            if not token:
                return

    @_rpc
    def convo_delete_run(self, ns: str, run_id: str) -> int:
        """Deletes every message of the run; returns how many."""
        return self._call(self._memory.DeleteRun,
                          mpb.DeleteRunRequest(namespace=ns, run_id=run_id)).deleted

    # --- chunk KV -----------------------------------------------------------

    @_rpc
    def kv_register(self, ns: str, config: t.KvConfig) -> t.KvStats:
        r = self._call(self._kv.RegisterKvModel, pb.RegisterKvModelRequest(
            namespace=ns, config=cv.kv_config_to_pb(config)))
        return cv.kv_stats_from_pb(r.stats)

    @_rpc
    def kv_put(self, ns: str, chunk_id: str, model: t.ModelFingerprint, tokens: Sequence[int],
               layers: Sequence[t.KvLayer], pin: bool = False, ttl_seconds: int = 0,
               keys_position: Optional[int] = None) -> t.KvPutResult:
        """Stores a chunk's KV: every layer of the model, in order (K before
        RoPE unless keys_position says where they were rotated for)."""
        header = pb.PutKvHeader(namespace=ns, chunk_id=chunk_id,
                                model=cv.fingerprint_to_pb(model), tokens=list(tokens), pin=pin,
                                ttl_seconds=ttl_seconds)
        if keys_position is not None:
            header.keys_position = keys_position
        wire_layers = [cv.kv_layer_to_pb(layer) for layer in layers]

        def requests():
            yield pb.PutKvRequest(header=header)
            for layer in wire_layers:
                yield pb.PutKvRequest(layer=layer)

        r = self._kv.PutKv(requests(), timeout=self._timeout, metadata=self._metadata)
        return t.KvPutResult(r.stored_bytes, list(r.key_error), list(r.value_error),
                             r.evicted_chunks)

    def get_kv(self, ns: str, chunk_ids: Sequence[str], model: t.ModelFingerprint,
               layer_begin: int = 0, layer_end: int = 0, dtype: str = "",
               positions: Optional[Sequence[int]] = None) -> Iterator[t.KvBlock]:
        """Streams the chunks' KV blocks, layer by layer (every chunk's block
        of layer_begin, then of layer_begin + 1, ...). positions: one start
        per chunk to get keys rotated for it (default: keys before RoPE)."""
        req = pb.GetKvRequest(namespace=ns, chunk_ids=list(chunk_ids),
                              model=cv.fingerprint_to_pb(model), layer_begin=layer_begin,
                              layer_end=layer_end, dtype=cv.kv_dtype(dtype),
                              positions=list(positions or []))
        stream = self._kv.GetKv(req, metadata=self._metadata)
        return (cv.kv_block_from_pb(m) for m in _stream(stream))

    kv_get = get_kv

    @_rpc
    def kv_exists(self, ns: str, chunk_ids: Sequence[str],
                  model: t.ModelFingerprint) -> List[int]:
        """Per chunk, the tokens of its stored KV (0: none, evicted or expired)."""
        r = self._call(self._kv.ExistsKv, pb.ExistsKvRequest(
            namespace=ns, chunk_ids=list(chunk_ids), model=cv.fingerprint_to_pb(model)))
        return [n if e else 0 for e, n in zip(r.exists, r.tokens)]

    @_rpc
    def kv_delete(self, ns: str, chunk_ids: Sequence[str]) -> int:
        return self._call(self._kv.DeleteKv, pb.DeleteKvRequest(
            namespace=ns, chunk_ids=list(chunk_ids))).deleted

    @_rpc
    def kv_lookup(self, ns: str, model: t.ModelFingerprint,
                  tokens: Sequence[int]) -> List[tuple]:
        """The longest run of stored chunks whose tokens start `tokens`:
        [(chunk id, tokens), ...]."""
        r = self._call(self._kv.LookupKvPrefix, pb.LookupKvPrefixRequest(
            namespace=ns, model=cv.fingerprint_to_pb(model), tokens=list(tokens)))
        return list(zip(r.chunk_ids, r.chunk_tokens))

    @_rpc
    def _kv_retention(self, ns: str, chunk_ids: Sequence[str], pin: Optional[bool],
                      ttl_seconds: Optional[int]) -> int:
        req = pb.SetKvRetentionRequest(namespace=ns, chunk_ids=list(chunk_ids))
        if pin is not None:
            req.pin = pin
        if ttl_seconds is not None:
            req.ttl_seconds = ttl_seconds
        return self._call(self._kv.SetKvRetention, req).updated

    def kv_pin(self, ns: str, chunk_ids: Sequence[str]) -> int:
        return self._kv_retention(ns, chunk_ids, True, None)

    def kv_unpin(self, ns: str, chunk_ids: Sequence[str]) -> int:
        return self._kv_retention(ns, chunk_ids, False, None)

    def kv_ttl(self, ns: str, chunk_ids: Sequence[str], seconds: int) -> int:
        """The chunks' KV expires `seconds` from now (0 = never)."""
        return self._kv_retention(ns, chunk_ids, None, seconds)

    @_rpc
    def kv_stats(self, ns: str) -> t.KvStats:
        return cv.kv_stats_from_pb(
            self._call(self._kv.GetKvStats, pb.GetKvStatsRequest(namespace=ns)).stats)

    # --- retrieval attention ------------------------------------------------

    def attend(self, ns: str, model: t.ModelFingerprint,
               chunks: Sequence[tuple]) -> "AttendSession":
        """Opens an Attend stream (one generation) over stored chunks placed
        at start positions: chunks = [(chunk id, start), ...]. Returns the
        session once the server accepted the layout (NOT_FOUND for an
        unknown chunk, FAILED_PRECONDITION for another model, ...)."""
        return AttendSession(self._kv, self._metadata, ns, model, chunks)

    @_rpc
    def kv_arena_info(self) -> Dict[str, Any]:
        """Where the same-host KV arena is handed out: socket_path and
        arena_bytes (0 and "" when mnemod runs without one)."""
        r = self._call(self._kv.KvArenaInfo, pb.KvArenaInfoRequest())
        return {"socket_path": r.socket_path, "arena_bytes": r.arena_bytes}

    def health(self) -> bool:
        """True when mnemod answers a Search-free call (ListNamespaces)."""
        try:
            self.ns_list()
            return True
        except errors.UnavailableError:
            return False


class AttendSession:
    """One Attend stream: step() sends a layer's query heads and returns the
    server's answer for them, in order. close() (or `with`) ends it."""

    def __init__(self, stub, metadata, ns, model, chunks):
        self._requests: "queue.Queue" = queue.Queue()
        opening = pb.AttendOpen(namespace=ns, model=cv.fingerprint_to_pb(model))
        for chunk_id, start in chunks:
            opening.chunks.add(chunk_id=chunk_id, start=int(start))
        self._requests.put(pb.AttendRequest(open=opening))
        self._responses = stub.Attend(iter(self._requests.get, None), metadata=metadata)
        self._ended = False
        first = self._next()
        self.chunks = first.opened.chunks
        self.tokens = first.opened.tokens
        self.end_position = first.opened.end_position

    def _next(self):
        try:
            return next(self._responses)
        except grpc.RpcError as e:
            self._ended = True  # an error ends the stream
            self._requests.put(None)
            raise errors.from_rpc_error(e) from None

    def step(self, layer: int, position: int, queries: bytes, n_queries: int = 1,
             mode: str = "partial", exact_fraction: Optional[float] = None,
             estimated_fraction: Optional[float] = None) -> Dict[str, Any]:
        """queries: float32 [n_queries, n_heads, head_dim] before RoPE.
        mode "partial": {"out", "lse", "max"} as bytes (float32) plus
        "stats"; mode "top_k": {"heads": [(positions, keys, values)], ...}."""
        modes = {"partial": pb.ATTEND_MODE_PARTIAL, "top_k": pb.ATTEND_MODE_TOP_K}
        if mode not in modes:
            raise ValueError(f"unknown attend mode {mode!r}; one of {sorted(modes)}")
        st = pb.AttendStep(layer=layer, position=position, n_queries=n_queries,
                           queries=bytes(queries), mode=modes[mode])
        if exact_fraction is not None:
            st.exact_fraction = exact_fraction
        if estimated_fraction is not None:
            st.estimated_fraction = estimated_fraction
        self._requests.put(pb.AttendRequest(step=st))
        r = self._next()
        stats = {"keys": r.stats.keys, "exact_keys": r.stats.exact_keys,
                 "clusters": r.stats.clusters, "exact_clusters": r.stats.exact_clusters,
                 "estimated_clusters": r.stats.estimated_clusters}
        if r.HasField("partial"):
            return {"out": r.partial.out, "lse": r.partial.lse, "max": r.partial.max,
                    "stats": stats}
        return {"heads": [(list(h.positions), h.keys, h.values) for h in r.top_keys.heads],
                "stats": stats}

    def close(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._requests.put(None)
        for _ in _stream(self._responses):
            pass

    def __enter__(self) -> "AttendSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
