// Okapi BM25 over token ids, with its postings stored in RocksDB so that a
// chunk and its text index entries commit in one WriteBatch.
//
// Scoring (natural log; N = documents in the namespace, df = documents that
// contain the term, tf = occurrences of the term in the document, dl = the
// document's length in tokens, avgdl = total length / N):
//
//   idf(t)      = ln(1 + (N - df + 0.5) / (df + 0.5))
//   score(q, d) = sum over query term occurrences t of
//                 idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))
//
// A query term that occurs m times in the query contributes m times (as
// Lucene does: every query clause counts). Collection statistics are over all
// documents; a search filter restricts which documents are returned, never N,
// df or avgdl.
//
// Key layout, inside the borrowed column family (u32 / u64 are big-endian so
// that bytewise order is numeric order; nsid is the namespace's 4-byte id
// from keys::NsPrefix):
//
//   nsid 'p' term(u32) doc(u64) -> varint tf, varint dl   (posting)
//   nsid 'l' doc(u64)           -> varint dl              (document length)
//   nsid 'f' doc(u64)           -> varint count, then the document's distinct
//                                  terms ascending, delta-coded varints
//   nsid 's'                    -> u64 N, u64 total length (collection stats)
//
// The posting carries dl so that scoring a candidate needs no extra lookup;
// 'l' is the authoritative length (stats rebuild), 'f' lets removal find the
// postings without the caller remembering the document's tokens.
//
// Collection statistics: kept in memory under a mutex (every search needs
// them) and written into each update's batch as an absolute 's' record. A
// merge operator was not chosen because it would have to be installed in the
// options of every opener of the column family (store, backup and repair
// tools), and because the store already serialises writes per namespace,
// which makes the absolute value exact: see the write protocol below.
//
// Write protocol:
//   Bm25Update update;
//   RETURN_IF_ERROR(index->AddToBatch(&batch, id, terms, &update));  // any
//   RETURN_IF_ERROR(index->RemoveToBatch(&batch, id2, &update));     // number
//   RETURN_IF_ERROR(FromRocks(db->Write(options, &batch)));
//   RETURN_IF_ERROR(index->ApplyCommitted(update));
// Staging reads committed state (the stored term lists, the in-memory stats),
// so the caller must serialise updates of one index: staging of an update
// must not begin before the previous update was committed and applied (or
// dropped). A failed Write needs no undo: drop the update and the batch.
//
// Thread safety: Search and Stats are safe to call concurrently with each
// other and with staging and ApplyCommitted. Updates must be serialised by
// the caller as described above; ApplyCommitted reports a detected overlap.
#ifndef MNEMO_DB_BM25_H_
#define MNEMO_DB_BM25_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "index/filter.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class WriteBatch;
}  // namespace rocksdb

namespace mnemo::db {

struct Bm25Params {
  // Term-frequency saturation: larger values let repeated terms keep adding
  // score for longer. Must be finite and >= 0. Default 1.2 (the usual Okapi
  // choice).
  float k1 = 1.2f;
  // Length normalisation: 0 ignores document length, 1 fully scales by
  // dl / avgdl. Must be in [0, 1]. Default 0.75.
  float b = 0.75f;
};

// INVALID_ARGUMENT naming the bad field, OK otherwise.
absl::Status ValidateBm25Params(const Bm25Params& params);

// Collection statistics of one index.
struct Bm25Stats {
  uint64_t doc_count = 0;     // N: documents indexed (empty ones included)
  uint64_t total_length = 0;  // sum of the document lengths, in tokens
};

// Changes staged into one WriteBatch and not yet applied to the in-memory
// statistics. Create one per batch; not thread-safe; movable.
class Bm25Update {
 public:
  Bm25Update() = default;

  // Net change of N and of the total length this update carries.
  int64_t doc_delta() const { return doc_delta_; }
  int64_t length_delta() const { return length_delta_; }
  bool empty() const { return added_.empty() && removed_.empty(); }

 private:
  friend class Bm25Index;
  int64_t doc_delta_ = 0;
  int64_t length_delta_ = 0;
  // Stats version the update was staged against (set by its first staging).
  uint64_t base_version_ = 0;
  bool has_base_ = false;
  absl::flat_hash_set<int64_t> added_;    // documents written by this update
  absl::flat_hash_set<int64_t> removed_;  // committed documents it removes
  // Net change of each term's document frequency.
  absl::flat_hash_map<uint32_t, int64_t> df_delta_;
};

// One namespace's BM25 index. Borrows the database and the column family,
// which must outlive it.
class Bm25Index {
 public:
  // Binds to the keys of namespace `nsid` in `cf` and loads the collection
  // statistics from the 's' record, or, when there is none, rebuilds them
  // from the document-length keys (an empty index has neither).
  // INVALID_ARGUMENT on null pointers or bad params; DATA_LOSS when a stored
  // record cannot be decoded; other codes for RocksDB read failures.
  static absl::StatusOr<std::unique_ptr<Bm25Index>> Open(rocksdb::DB* db,
                                                         rocksdb::ColumnFamilyHandle* cf,
                                                         uint32_t nsid,
                                                         const Bm25Params& params = {});

  Bm25Index(const Bm25Index&) = delete;
  Bm25Index& operator=(const Bm25Index&) = delete;

  // Stages document `doc_id` with tokens `terms` (any order, repeats count
  // toward tf): its postings, length, term list and the new 's' record.
  // Replaces the committed version of the document if there is one (the
  // old postings are deleted in the same batch), so replace = AddToBatch.
  // An empty `terms` indexes an empty document (counts toward N).
  // INVALID_ARGUMENT: null batch / update, doc_id < 0, more than 2^32 - 1
  // terms. FAILED_PRECONDITION: `update` already adds this document.
  // DATA_LOSS / other codes: reading the committed term list failed. On error
  // the batch may hold part of the document's keys: drop the batch.
  [[nodiscard]] absl::Status AddToBatch(rocksdb::WriteBatch* batch, int64_t doc_id,
                                        absl::Span<const uint32_t> terms,
                                        Bm25Update* update);

  // Stages removal of committed document `doc_id` (postings, length, term
  // list) and the new 's' record. Removing a document that is not indexed
  // is OK and stages nothing. INVALID_ARGUMENT: null batch / update,
  // doc_id < 0. FAILED_PRECONDITION: `update` already adds or removes this
  // document. DATA_LOSS / other codes as AddToBatch.
  [[nodiscard]] absl::Status RemoveToBatch(rocksdb::WriteBatch* batch, int64_t doc_id,
                                           Bm25Update* update);

  // Applies a committed update's deltas to the in-memory statistics; call it
  // once, after the batch was written successfully. The statistics are
  // updated in every case; FAILED_PRECONDITION reports that another update
  // was applied between this one's staging and now (the caller broke the
  // serialisation rule, so the 's' record just written may be stale; the
  // next update rewrites it from the in-memory values).
  [[nodiscard]] absl::Status ApplyCommitted(const Bm25Update& update);

  // Top-k documents for the query, best first; ties by ascending doc id.
  // Only documents containing at least one query term score (> 0 when
  // N > df); documents rejected by `filter` (may be null) are skipped while
  // scoring, so up to k matching documents are returned. Empty query, no
  // known term or empty index: empty result. INVALID_ARGUMENT when k <= 0.
  // DATA_LOSS on an undecodable posting; other codes for RocksDB failures.
  // A search running beside a commit may see its postings a moment before
  // its statistics.
  [[nodiscard]] absl::StatusOr<std::vector<std::pair<int64_t, float>>> Search(
      absl::Span<const uint32_t> query_terms, int k, const index::IdPredicate* filter) const;

  // The same scores as Search, computed only for `candidates` (document
  // ids, any order, repeats ignored) from their stored term lists and
  // postings instead of the query terms' whole posting lists: the plan for
  // a filter that selects a few documents of a large index (a memory
  // scope). Collection statistics (N, df, avgdl) are still over all
  // documents, so a candidate's score equals its Search score. Best first,
  // ties by ascending id; candidates without a query term do not score.
  // INVALID_ARGUMENT when k <= 0; DATA_LOSS on an undecodable record.
  [[nodiscard]] absl::StatusOr<std::vector<std::pair<int64_t, float>>> SearchAmong(
      absl::Span<const uint32_t> query_terms, int k, absl::Span<const int64_t> candidates) const;

  // Current in-memory collection statistics.
  Bm25Stats Stats() const;

  // Documents containing `term` (kept in memory: built from the stored term
  // lists at Open, maintained by ApplyCommitted).
  uint64_t DocumentFrequency(uint32_t term) const;

  // Recounts the statistics from the stored document-length keys and
  // returns them, without changing the in-memory values (a consistency
  // check). DATA_LOSS on an undecodable key or value.
  [[nodiscard]] absl::StatusOr<Bm25Stats> RecountStats() const;

  const Bm25Params& params() const { return params_; }

 private:
  Bm25Index(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, uint32_t nsid,
            const Bm25Params& params);

  // Reads the committed distinct-term list of `doc_id`; `found` is false
  // (and `terms` empty) when the document is not indexed.
  absl::Status ReadTermList(int64_t doc_id, std::vector<uint32_t>* terms, bool* found) const;
  absl::StatusOr<uint32_t> ReadDocLength(int64_t doc_id) const;
  // Stages deletion of committed document `doc_id` whose terms are `terms`.
  absl::Status StageRemoval(rocksdb::WriteBatch* batch, int64_t doc_id,
                            const std::vector<uint32_t>& terms, Bm25Update* update);
  // Counts each term's documents from the stored term lists (Open).
  absl::Status LoadDocumentFrequencies();
  // Puts the 's' record as committed stats + the update's deltas.
  absl::Status StageStats(rocksdb::WriteBatch* batch, Bm25Update* update);

  std::string PostingKey(uint32_t term, int64_t doc_id) const;
  std::string PostingPrefix(uint32_t term) const;
  std::string LengthKey(int64_t doc_id) const;
  std::string TermListKey(int64_t doc_id) const;
  std::string StatsKey() const;

  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const cf_;
  const std::string prefix_;  // keys::NsPrefix(nsid)
  const Bm25Params params_;

  mutable absl::Mutex mu_;
  Bm25Stats stats_ ABSL_GUARDED_BY(mu_);
  // Incremented by every ApplyCommitted; detects overlapping updates.
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  // Term -> documents containing it (> 0 only).
  absl::flat_hash_map<uint32_t, uint64_t> df_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mnemo::db

#endif  // MNEMO_DB_BM25_H_
