// Okapi BM25 over token ids with postings in RocksDB (see bm25.h).
#include "db/bm25.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "common/varint.h"
#include "db/keys.h"
#include "index/fusion.h"
#include "rocksdb/db.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/write_batch.h"

namespace mnemo::db {
namespace {

constexpr char kPostingTag = 'p';
constexpr char kLengthTag = 'l';
constexpr char kTermListTag = 'f';
constexpr char kStatsTag = 's';

// nsid(4) + tag(1) + term(4) + doc(8).
constexpr size_t kPostingKeySize = 17;
// nsid(4) + tag(1) + doc(8).
constexpr size_t kDocKeySize = 13;

absl::Status RocksToStatus(const rocksdb::Status& s, absl::string_view context) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat("bm25: ", context, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return absl::UnavailableError(msg);
  return absl::InternalError(msg);
}

absl::string_view View(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }
rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

// A snapshot of `db`, released on destruction.
class ScopedSnapshot {
 public:
  explicit ScopedSnapshot(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {}
  ~ScopedSnapshot() { db_->ReleaseSnapshot(snapshot_); }
  ScopedSnapshot(const ScopedSnapshot&) = delete;
  ScopedSnapshot& operator=(const ScopedSnapshot&) = delete;
  const rocksdb::Snapshot* get() const { return snapshot_; }

 private:
  rocksdb::DB* const db_;
  const rocksdb::Snapshot* const snapshot_;
};

// An iterator over the keys starting with `prefix` (it owns its bound),
// positioned at the first.
class PrefixScan {
 public:
  PrefixScan(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, std::string prefix,
             const rocksdb::Snapshot* snapshot = nullptr)
      : upper_(keys::PrefixEnd(prefix)), upper_slice_(ToSlice(upper_)) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    ro.iterate_upper_bound = &upper_slice_;
    it_.reset(db->NewIterator(ro, cf));
    it_->Seek(prefix);
  }
  rocksdb::Iterator* operator->() const { return it_.get(); }

 private:
  const std::string upper_;
  const rocksdb::Slice upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

std::string EncodeTermList(const std::vector<uint32_t>& sorted_distinct) {
  std::string out;
  PutVarint(&out, sorted_distinct.size());
  uint32_t prev = 0;
  for (uint32_t t : sorted_distinct) {
    PutVarint(&out, t - prev);
    prev = t;
  }
  return out;
}

absl::Status DecodeTermList(absl::string_view in, std::vector<uint32_t>* terms) {
  uint64_t count = 0;
  // Each term takes at least one byte, which bounds a corrupt count.
  if (!GetVarint(&in, &count) || count > in.size()) {
    return absl::DataLossError("bm25: undecodable term list");
  }
  terms->clear();
  terms->reserve(count);
  uint64_t prev = 0;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t delta = 0;
    if (!GetVarint(&in, &delta) || prev + delta > std::numeric_limits<uint32_t>::max() ||
        (i > 0 && delta == 0)) {
      return absl::DataLossError("bm25: undecodable term list");
    }
    prev += delta;
    terms->push_back(static_cast<uint32_t>(prev));
  }
  if (!in.empty()) return absl::DataLossError("bm25: trailing bytes in term list");
  return absl::OkStatus();
}

// Per-field length normalisation; the avgdl guard covers a search that sees
// postings of a commit whose statistics are not applied yet.
double LengthNorm(const Bm25Params& p, uint32_t dl, double avgdl) {
  double ratio = avgdl > 0 ? static_cast<double>(dl) / avgdl : 1.0;
  return p.k1 * (1.0 - p.b + p.b * ratio);
}

}  // namespace

absl::Status ValidateBm25Params(const Bm25Params& params) {
  if (!std::isfinite(params.k1) || params.k1 < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bm25: k1 must be finite and >= 0, got ", params.k1));
  }
  if (!std::isfinite(params.b) || params.b < 0 || params.b > 1) {
    return absl::InvalidArgumentError(absl::StrCat("bm25: b must be in [0, 1], got ", params.b));
  }
  return absl::OkStatus();
}

Bm25Index::Bm25Index(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, uint32_t nsid,
                     const Bm25Params& params)
    : db_(db), cf_(cf), prefix_(keys::NsPrefix(nsid)), params_(params) {}

absl::StatusOr<std::unique_ptr<Bm25Index>> Bm25Index::Open(rocksdb::DB* db,
                                                           rocksdb::ColumnFamilyHandle* cf,
                                                           uint32_t nsid,
                                                           const Bm25Params& params) {
  if (db == nullptr || cf == nullptr) {
    return absl::InvalidArgumentError("bm25: null database or column family");
  }
  RETURN_IF_ERROR(ValidateBm25Params(params));
  std::unique_ptr<Bm25Index> index(new Bm25Index(db, cf, nsid, params));

  std::string value;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), cf, index->StatsKey(), &value);
  Bm25Stats stats;
  if (s.IsNotFound()) {
    ASSIGN_OR_RETURN(stats, index->RecountStats());
  } else {
    RETURN_IF_ERROR(RocksToStatus(s, "reading collection stats"));
    std::optional<uint64_t> n = keys::ReadU64(value);
    std::optional<uint64_t> total =
        value.size() == 16 ? keys::ReadU64(absl::string_view(value).substr(8)) : std::nullopt;
    if (!n.has_value() || !total.has_value()) {
      return absl::DataLossError("bm25: undecodable collection stats record");
    }
    stats.doc_count = *n;
    stats.total_length = *total;
  }
  {
    absl::MutexLock l(&index->mu_);
    index->stats_ = stats;
  }
  RETURN_IF_ERROR(index->LoadDocumentFrequencies());
  return index;
}

absl::Status Bm25Index::LoadDocumentFrequencies() {
  PrefixScan it(db_, cf_, absl::StrCat(prefix_, std::string(1, kTermListTag)));
  absl::flat_hash_map<uint32_t, uint64_t> df;
  std::vector<uint32_t> terms;
  for (; it->Valid(); it->Next()) {
    RETURN_IF_ERROR(DecodeTermList(View(it->value()), &terms));
    for (uint32_t t : terms) ++df[t];
  }
  RETURN_IF_ERROR(RocksToStatus(it->status(), "scanning term lists"));
  absl::MutexLock l(&mu_);
  df_ = std::move(df);
  return absl::OkStatus();
}

uint64_t Bm25Index::DocumentFrequency(uint32_t term) const {
  absl::MutexLock l(&mu_);
  auto it = df_.find(term);
  return it == df_.end() ? 0 : it->second;
}

std::string Bm25Index::PostingPrefix(uint32_t term) const {
  std::string key = prefix_;
  key.push_back(kPostingTag);
  keys::AppendU32(&key, term);
  return key;
}

std::string Bm25Index::PostingKey(uint32_t term, int64_t doc_id) const {
  std::string key = PostingPrefix(term);
  keys::AppendU64(&key, static_cast<uint64_t>(doc_id));
  return key;
}

std::string Bm25Index::LengthKey(int64_t doc_id) const {
  std::string key = prefix_;
  key.push_back(kLengthTag);
  keys::AppendU64(&key, static_cast<uint64_t>(doc_id));
  return key;
}

std::string Bm25Index::TermListKey(int64_t doc_id) const {
  std::string key = prefix_;
  key.push_back(kTermListTag);
  keys::AppendU64(&key, static_cast<uint64_t>(doc_id));
  return key;
}

std::string Bm25Index::StatsKey() const {
  std::string key = prefix_;
  key.push_back(kStatsTag);
  return key;
}

absl::Status Bm25Index::ReadTermList(int64_t doc_id, std::vector<uint32_t>* terms,
                                     bool* found) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_, TermListKey(doc_id), &value);
  if (s.IsNotFound()) {
    *found = false;
    terms->clear();
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(RocksToStatus(s, "reading a term list"));
  *found = true;
  return DecodeTermList(value, terms);
}

absl::StatusOr<uint32_t> Bm25Index::ReadDocLength(int64_t doc_id) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_, LengthKey(doc_id), &value);
  if (s.IsNotFound()) {
    return absl::DataLossError(
        absl::StrCat("bm25: document ", doc_id, " has a term list but no length"));
  }
  RETURN_IF_ERROR(RocksToStatus(s, "reading a document length"));
  absl::string_view in(value);
  uint32_t dl = 0;
  if (!GetVarint32(&in, &dl) || !in.empty()) {
    return absl::DataLossError("bm25: undecodable document length");
  }
  return dl;
}

absl::Status Bm25Index::StageRemoval(rocksdb::WriteBatch* batch, int64_t doc_id,
                                     const std::vector<uint32_t>& terms, Bm25Update* update) {
  ASSIGN_OR_RETURN(uint32_t dl, ReadDocLength(doc_id));
  for (uint32_t term : terms) {
    RETURN_IF_ERROR(RocksToStatus(batch->Delete(cf_, PostingKey(term, doc_id)), "staging"));
  }
  RETURN_IF_ERROR(RocksToStatus(batch->Delete(cf_, LengthKey(doc_id)), "staging"));
  RETURN_IF_ERROR(RocksToStatus(batch->Delete(cf_, TermListKey(doc_id)), "staging"));
  for (uint32_t term : terms) --update->df_delta_[term];
  update->doc_delta_ -= 1;
  update->length_delta_ -= static_cast<int64_t>(dl);
  update->removed_.insert(doc_id);
  return absl::OkStatus();
}

absl::Status Bm25Index::StageStats(rocksdb::WriteBatch* batch, Bm25Update* update) {
  Bm25Stats committed;
  {
    absl::MutexLock l(&mu_);
    committed = stats_;
    if (!update->has_base_) {
      update->base_version_ = version_;
      update->has_base_ = true;
    }
  }
  int64_t n = static_cast<int64_t>(committed.doc_count) + update->doc_delta_;
  int64_t total = static_cast<int64_t>(committed.total_length) + update->length_delta_;
  if (n < 0 || total < 0) {
    return absl::DataLossError(absl::StrCat(
        "bm25: collection stats would go negative (N=", n, ", total=", total,
        "); the stored index disagrees with its stats record"));
  }
  // Later Puts of the same key in this batch overwrite this one, so the
  // committed record reflects every change the batch stages.
  std::string value;
  keys::AppendU64(&value, static_cast<uint64_t>(n));
  keys::AppendU64(&value, static_cast<uint64_t>(total));
  return RocksToStatus(batch->Put(cf_, StatsKey(), value), "staging stats");
}

absl::Status Bm25Index::AddToBatch(rocksdb::WriteBatch* batch, int64_t doc_id,
                                   absl::Span<const uint32_t> terms, Bm25Update* update) {
  if (batch == nullptr || update == nullptr) {
    return absl::InvalidArgumentError("bm25: null batch or update");
  }
  if (doc_id < 0) {
    return absl::InvalidArgumentError(absl::StrCat("bm25: negative document id ", doc_id));
  }
  if (terms.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError("bm25: document longer than 2^32 - 1 tokens");
  }
  if (update->added_.contains(doc_id)) {
    return absl::FailedPreconditionError(
        absl::StrCat("bm25: document ", doc_id, " is already added by this update"));
  }
  // Replace: drop the committed version unless this update already did.
  if (!update->removed_.contains(doc_id)) {
    std::vector<uint32_t> old_terms;
    bool found = false;
    RETURN_IF_ERROR(ReadTermList(doc_id, &old_terms, &found));
    if (found) RETURN_IF_ERROR(StageRemoval(batch, doc_id, old_terms, update));
  }

  std::vector<uint32_t> sorted(terms.begin(), terms.end());
  std::sort(sorted.begin(), sorted.end());
  const uint32_t dl = static_cast<uint32_t>(sorted.size());
  std::vector<uint32_t> distinct;
  std::string value;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
    value.clear();
    PutVarint(&value, j - i);
    PutVarint(&value, dl);
    RETURN_IF_ERROR(
        RocksToStatus(batch->Put(cf_, PostingKey(sorted[i], doc_id), value), "staging"));
    distinct.push_back(sorted[i]);
    ++update->df_delta_[sorted[i]];
    i = j;
  }
  value.clear();
  PutVarint(&value, dl);
  RETURN_IF_ERROR(RocksToStatus(batch->Put(cf_, LengthKey(doc_id), value), "staging"));
  RETURN_IF_ERROR(
      RocksToStatus(batch->Put(cf_, TermListKey(doc_id), EncodeTermList(distinct)), "staging"));
  update->doc_delta_ += 1;
  update->length_delta_ += dl;
  update->added_.insert(doc_id);
  return StageStats(batch, update);
}

absl::Status Bm25Index::RemoveToBatch(rocksdb::WriteBatch* batch, int64_t doc_id,
                                      Bm25Update* update) {
  if (batch == nullptr || update == nullptr) {
    return absl::InvalidArgumentError("bm25: null batch or update");
  }
  if (doc_id < 0) {
    return absl::InvalidArgumentError(absl::StrCat("bm25: negative document id ", doc_id));
  }
  if (update->added_.contains(doc_id) || update->removed_.contains(doc_id)) {
    return absl::FailedPreconditionError(
        absl::StrCat("bm25: document ", doc_id, " is already staged by this update"));
  }
  std::vector<uint32_t> old_terms;
  bool found = false;
  RETURN_IF_ERROR(ReadTermList(doc_id, &old_terms, &found));
  if (!found) return absl::OkStatus();
  RETURN_IF_ERROR(StageRemoval(batch, doc_id, old_terms, update));
  return StageStats(batch, update);
}

absl::Status Bm25Index::ApplyCommitted(const Bm25Update& update) {
  if (!update.has_base_) return absl::OkStatus();  // staged nothing
  absl::MutexLock l(&mu_);
  int64_t n = static_cast<int64_t>(stats_.doc_count) + update.doc_delta_;
  int64_t total = static_cast<int64_t>(stats_.total_length) + update.length_delta_;
  stats_.doc_count = static_cast<uint64_t>(std::max<int64_t>(n, 0));
  stats_.total_length = static_cast<uint64_t>(std::max<int64_t>(total, 0));
  for (const auto& [term, delta] : update.df_delta_) {
    if (delta == 0) continue;
    const int64_t df = static_cast<int64_t>(df_[term]) + delta;
    if (df > 0) {
      df_[term] = static_cast<uint64_t>(df);
    } else {
      df_.erase(term);
    }
  }
  const bool overlapped = update.base_version_ != version_;
  ++version_;
  if (n < 0 || total < 0) {
    return absl::DataLossError("bm25: collection stats went negative; clamped to 0");
  }
  if (overlapped) {
    return absl::FailedPreconditionError(
        "bm25: another update was applied while this one was staged; updates of one index "
        "must be serialised (the stored stats record may be stale until the next update)");
  }
  return absl::OkStatus();
}

Bm25Stats Bm25Index::Stats() const {
  absl::MutexLock l(&mu_);
  return stats_;
}

absl::StatusOr<Bm25Stats> Bm25Index::RecountStats() const {
  PrefixScan it(db_, cf_, absl::StrCat(prefix_, std::string(1, kLengthTag)));
  Bm25Stats stats;
  for (; it->Valid(); it->Next()) {
    absl::string_view value = View(it->value());
    uint32_t dl = 0;
    if (it->key().size() != kDocKeySize || !GetVarint32(&value, &dl) || !value.empty()) {
      return absl::DataLossError("bm25: undecodable document length record");
    }
    ++stats.doc_count;
    stats.total_length += dl;
  }
  RETURN_IF_ERROR(RocksToStatus(it->status(), "scanning document lengths"));
  return stats;
}

absl::StatusOr<std::vector<std::pair<int64_t, float>>> Bm25Index::Search(
    absl::Span<const uint32_t> query_terms, int k, const index::IdPredicate* filter) const {
  if (k <= 0) return absl::InvalidArgumentError(absl::StrCat("bm25: k must be >= 1, got ", k));
  std::vector<std::pair<int64_t, float>> result;
  if (query_terms.empty()) return result;

  // Query term -> occurrences in the query (each occurrence contributes).
  std::vector<uint32_t> sorted(query_terms.begin(), query_terms.end());
  std::sort(sorted.begin(), sorted.end());

  Bm25Stats stats = Stats();
  if (stats.doc_count == 0) return result;
  const double n = static_cast<double>(stats.doc_count);
  const double avgdl = static_cast<double>(stats.total_length) / n;
  const double k1 = params_.k1;

  struct Posting {
    int64_t doc;
    uint32_t tf;
    uint32_t dl;
  };
  // One snapshot so every term sees the same committed state.
  const ScopedSnapshot snapshot(db_);

  absl::flat_hash_map<int64_t, double> scores;
  std::vector<Posting> postings;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
    const uint32_t term = sorted[i];
    const double query_tf = static_cast<double>(j - i);
    i = j;

    PrefixScan it(db_, cf_, PostingPrefix(term), snapshot.get());
    postings.clear();
    for (; it->Valid(); it->Next()) {
      rocksdb::Slice key = it->key();
      absl::string_view value = View(it->value());
      Posting p;
      std::optional<uint64_t> doc =
          key.size() == kPostingKeySize ? keys::ReadU64(View(key).substr(9)) : std::nullopt;
      if (!doc.has_value() || !GetVarint32(&value, &p.tf) || !GetVarint32(&value, &p.dl) ||
          !value.empty()) {
        return absl::DataLossError(absl::StrCat("bm25: undecodable posting of term ", term));
      }
      p.doc = static_cast<int64_t>(*doc);
      postings.push_back(p);
    }
    RETURN_IF_ERROR(RocksToStatus(it->status(), "scanning postings"));
    if (postings.empty()) continue;

    const double df = static_cast<double>(postings.size());
    const double idf = std::log(1.0 + (n - df + 0.5) / (df + 0.5));
    for (const Posting& p : postings) {
      if (filter != nullptr && !filter->Contains(p.doc)) continue;
      const double tf = p.tf;
      scores[p.doc] +=
          query_tf * idf * tf * (k1 + 1.0) / (tf + LengthNorm(params_, p.dl, avgdl));
    }
  }

  return index::TopKByScore(scores, static_cast<int>(k));
}

absl::StatusOr<std::vector<std::pair<int64_t, float>>> Bm25Index::SearchAmong(
    absl::Span<const uint32_t> query_terms, int k, absl::Span<const int64_t> candidates) const {
  if (k <= 0) return absl::InvalidArgumentError(absl::StrCat("bm25: k must be >= 1, got ", k));
  std::vector<std::pair<int64_t, float>> result;
  if (query_terms.empty() || candidates.empty()) return result;

  // Query term -> occurrences in the query, and its idf over the whole index.
  absl::flat_hash_map<uint32_t, std::pair<double, double>> query;  // term -> (query tf, idf)
  Bm25Stats stats;
  {
    absl::MutexLock l(&mu_);
    stats = stats_;
    for (uint32_t t : query_terms) {
      auto it = df_.find(t);
      if (it == df_.end()) continue;
      const double df = static_cast<double>(it->second);
      auto& q = query[t];
      q.first += 1;
      q.second = std::log(1.0 + (static_cast<double>(stats.doc_count) - df + 0.5) / (df + 0.5));
    }
  }
  if (stats.doc_count == 0 || query.empty()) return result;
  const double avgdl =
      static_cast<double>(stats.total_length) / static_cast<double>(stats.doc_count);
  const double k1 = params_.k1;

  std::vector<int64_t> docs(candidates.begin(), candidates.end());
  std::sort(docs.begin(), docs.end());
  docs.erase(std::unique(docs.begin(), docs.end()), docs.end());

  // One snapshot for the term lists and the postings.
  const ScopedSnapshot snapshot(db_);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.get();

  // The candidates' term lists, then the postings of the query terms they hold.
  auto multi_get = [&](const std::vector<std::string>& keys, std::vector<std::string>* values) {
    std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
    std::vector<rocksdb::ColumnFamilyHandle*> cfs(keys.size(), cf_);
    return db_->MultiGet(ro, cfs, slices, values);
  };
  std::vector<std::string> list_keys;
  list_keys.reserve(docs.size());
  for (int64_t d : docs) list_keys.push_back(TermListKey(d));
  std::vector<std::string> lists;
  std::vector<rocksdb::Status> list_status = multi_get(list_keys, &lists);
  std::vector<std::string> posting_keys;
  std::vector<std::pair<int64_t, uint32_t>> posting_of;  // (doc, term)
  std::vector<uint32_t> terms;
  for (size_t i = 0; i < docs.size(); ++i) {
    if (list_status[i].IsNotFound()) continue;
    RETURN_IF_ERROR(RocksToStatus(list_status[i], "reading a term list"));
    RETURN_IF_ERROR(DecodeTermList(lists[i], &terms));
    for (uint32_t t : terms) {
      if (!query.contains(t)) continue;
      posting_keys.push_back(PostingKey(t, docs[i]));
      posting_of.emplace_back(docs[i], t);
    }
  }
  std::vector<std::string> postings;
  std::vector<rocksdb::Status> posting_status = multi_get(posting_keys, &postings);
  absl::flat_hash_map<int64_t, double> scores;
  for (size_t i = 0; i < posting_keys.size(); ++i) {
    if (posting_status[i].IsNotFound()) {
      return absl::DataLossError(absl::StrCat("bm25: document ", posting_of[i].first,
                                              " lists term ", posting_of[i].second,
                                              " but has no posting of it"));
    }
    RETURN_IF_ERROR(RocksToStatus(posting_status[i], "reading a posting"));
    absl::string_view value = postings[i];
    uint32_t tf = 0;
    uint32_t dl = 0;
    if (!GetVarint32(&value, &tf) || !GetVarint32(&value, &dl) || !value.empty()) {
      return absl::DataLossError(
          absl::StrCat("bm25: undecodable posting of term ", posting_of[i].second));
    }
    const auto& [query_tf, idf] = query.at(posting_of[i].second);
    scores[posting_of[i].first] +=
        query_tf * idf * tf * (k1 + 1.0) / (tf + LengthNorm(params_, dl, avgdl));
  }
  return index::TopKByScore(scores, static_cast<int>(k));
}

}  // namespace mnemo::db
