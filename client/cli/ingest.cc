// `mnemo ingest`: text files -> documents of an encoder namespace.
//
// Files are read one at a time (each bounded by --max-file-bytes; .jsonl
// files line by line), checked to be UTF-8 text and queued as documents.
// A queue is flushed when it holds --batch documents or --batch-bytes of
// text: the stored sha256 of its ids is fetched with one Get, the documents
// whose content did not change are dropped ("unchanged") and the rest go out
// as one UpsertStream call of one message (one atomic write on the server,
// which chunks and embeds them and replaces their previous chunks).
//
// Writes are pipelined: up to IngestPipelineOptions::in_flight batches are
// written at once, each by its own thread on its own stream, so mnemod
// embeds one batch while it commits another, and the next batch is read and
// checked meanwhile. Completions are taken in the order the batches were
// read, so the progress bar counts committed files and totals do not depend
// on scheduling; a batch holding an id still in flight first waits for it
// (see ingest_pipeline.h). Memory stays bounded by about in_flight + 1
// batches plus one file.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli/commands.h"
#include "client/cli/ingest_pipeline.h"
#include "client/cli/output.h"
#include "client/cli/progress.h"
#include "client/cli/text_files.h"
#include "nlohmann/json.hpp"

namespace mnemo::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// A document ready to be sent, with what identifies its content.
struct Pending {
  Document doc;
  std::string sha256;
};

struct Skipped {
  std::string source;
  std::string reason;
};

// Reads at most `max_bytes` + 1 bytes of `in`: a longer input is detected
// without being loaded.
std::string ReadAtMost(std::istream& in, uint64_t max_bytes) {
  std::string data;
  char buffer[1 << 16];
  while (data.size() <= max_bytes && in) {
    const uint64_t want = std::min<uint64_t>(sizeof(buffer), max_bytes + 1 - data.size());
    in.read(buffer, static_cast<std::streamsize>(want));
    data.append(buffer, static_cast<size_t>(in.gcount()));
    if (in.gcount() == 0) break;
  }
  return data;
}

class Ingester {
 public:
  Ingester(Client& client, const GlobalOptions& g, const IngestOptions& o, const Output& out,
           const IngestPipelineOptions& pipeline, ProgressBar* progress)
      : client_(client),
        g_(g),
        o_(o),
        out_(out),
        in_flight_limit_(static_cast<size_t>(std::max(pipeline.in_flight, 1))),
        progress_(progress),
        start_(Clock::now()) {}

  // Waits for the batches still being written (after an error, too: their
  // threads refer to this object's client).
  ~Ingester() {
    for (InFlight& batch : in_flight_) batch.result.wait();
  }

  // One input file (or stdin) has been read completely. It counts as done
  // for the progress bar once its documents are committed (or found
  // unchanged, or skipped), and every batch read before them too.
  void InputDone() {
    ++inputs_done_;
    if (queue_.empty()) CommittedAfterInFlight(inputs_done_);
  }

  void Skip(const std::string& source, const std::string& reason) {
    ++skipped_;
    const std::string line = absl::StrCat("skipped ", source, ": ", reason);
    if (progress_) {
      progress_->Message(line);
    } else {
      std::fprintf(out_.err, "%s\n", line.c_str());
    }
    skips_.push_back({source, reason});
  }

  // A whole text file (or stdin): `raw` as read, `text` what is sent.
  absl::Status AddText(const std::string& source, const std::string& id, FileFormat format,
                       const std::string& raw, json metadata) {
    if (raw.empty()) {
      Skip(source, "empty file");
      return absl::OkStatus();
    }
    if (absl::Status text = CheckUtf8Text(raw); !text.ok()) {
      Skip(source, std::string(text.message()));
      return absl::OkStatus();
    }
    std::string text = std::string(StripBom(raw));
    if (format == FileFormat::kHtml) text = HtmlToText(text);
    if (IsBlankText(text)) {
      Skip(source, format == FileFormat::kHtml ? "no text left after removing the HTML markup"
                                               : "only whitespace");
      return absl::OkStatus();
    }
    Pending pending;
    pending.sha256 = Sha256Hex(raw);
    metadata["sha256"] = pending.sha256;
    pending.doc.id = id;
    pending.doc.text = std::move(text);
    pending.doc.metadata_json = metadata.dump();
    return Add(std::move(pending));
  }

  // A .jsonl file, line by line.
  absl::Status AddJsonl(const InputFile& file) {
    std::ifstream in(file.path, std::ios::binary);
    if (!in) {
      Skip(file.path, absl::StrCat("cannot open: ", std::strerror(errno)));
      return absl::OkStatus();
    }
    std::string line;
    bool too_long = false;
    uint64_t line_no = 0;
    uint64_t documents = 0;
    const uint64_t skipped_before = skipped_;
    while (ReadBoundedLine(in, o_.max_file_bytes, line, &too_long)) {
      ++line_no;
      const std::string source = absl::StrCat(file.path, ":", line_no);
      if (too_long) {
        Skip(source,
             absl::StrCat("line longer than --max-file-bytes (", o_.max_file_bytes, " bytes)"));
        continue;
      }
      if (IsBlankText(line)) continue;
      if (absl::Status text = CheckUtf8Text(line); !text.ok()) {
        Skip(source, std::string(text.message()));
        continue;
      }
      absl::StatusOr<Document> doc = ParseDocumentLine(line);
      if (!doc.ok()) {
        Skip(source, std::string(doc.status().message()));
        continue;
      }
      json metadata = doc->metadata_json.empty() ? json::object() : json::parse(doc->metadata_json);
      if (!metadata.contains("path")) metadata["path"] = file.path;
      Pending pending;
      pending.sha256 = Sha256Hex(line);
      metadata["sha256"] = pending.sha256;
      pending.doc = *std::move(doc);
      pending.doc.metadata_json = metadata.dump();
      ++documents;
      if (absl::Status added = Add(std::move(pending)); !added.ok()) return added;
    }
    if (in.bad()) {
      Skip(file.path, absl::StrCat("read error after line ", line_no));
    } else if (line_no == 0) {
      Skip(file.path, "empty file");
    } else if (documents == 0 && skipped_ == skipped_before) {
      Skip(file.path, "no documents (only blank lines)");
    }
    return absl::OkStatus();
  }

  // Sends what is queued and waits for every batch; the totals are final
  // then.
  absl::Status Finish() {
    if (absl::Status flushed = Flush(); !flushed.ok()) return flushed;
    while (!in_flight_.empty()) {
      if (absl::Status done = CompleteOldest(); !done.ok()) return done;
    }
    ShowProgress(inputs_done_);
    return absl::OkStatus();
  }

  json Summary() const {
    json skipped = json::array();
    for (const Skipped& s : skips_) {
      skipped.push_back(json{{"source", s.source}, {"reason", s.reason}});
    }
    const double seconds = Seconds();
    return json{{"namespace", o_.ns},
                {"inputs", inputs_done_},
                {"ingested", ingested_},
                {"unchanged", unchanged_},
                {"skipped", skipped_},
                {"documents_written", documents_written_},
                {"chunks_written", chunks_written_},
                {"seconds", seconds},
                {"chunks_per_second", seconds > 0 ? chunks_written_ / seconds : 0.0},
                {"skipped_inputs", std::move(skipped)}};
  }

  std::string SummaryLine() const {
    const double seconds = Seconds();
    return absl::StrFormat(
        "ingested %d, unchanged %d, skipped %d (%d inputs); %d chunks written into %s in "
        "%.2fs (%.1f chunks/s)\n",
        ingested_, unchanged_, skipped_, inputs_done_, chunks_written_, o_.ns, seconds,
        seconds > 0 ? chunks_written_ / seconds : 0.0);
  }

  uint64_t ingested() const { return ingested_; }

 private:
  double Seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  void ShowProgress(uint64_t inputs_committed) {
    if (progress_) progress_->Update(inputs_committed);
  }

  absl::Status Add(Pending pending) {
    const size_t bytes = pending.doc.text.size();
    if (!queue_.empty() &&
        (queue_.size() >= static_cast<size_t>(o_.batch) || queue_bytes_ + bytes > o_.batch_bytes ||
         queued_ids_.count(pending.doc.id) > 0)) {
      if (absl::Status flushed = Flush(); !flushed.ok()) return flushed;
    }
    queued_ids_.insert(pending.doc.id);
    queue_bytes_ += bytes;
    queue_.push_back(std::move(pending));
    return absl::OkStatus();
  }

  // Inputs [0, inputs) are done once the batches now in flight commit.
  void CommittedAfterInFlight(uint64_t inputs) {
    if (in_flight_.empty()) {
      ShowProgress(inputs);
    } else {
      in_flight_.back().inputs_done = std::max(in_flight_.back().inputs_done, inputs);
    }
  }

  // Checks the queue against the stored sha256 and starts writing what
  // changed, as a new batch in flight (after waiting for the oldest when
  // in_flight_limit_ are already). Returns the first error of any batch.
  absl::Status Flush() {
    if (queue_.empty()) return absl::OkStatus();
    // Inputs read completely so far have all their documents in this batch
    // or in earlier ones (the input being read is not counted yet).
    const uint64_t inputs_in_batch = inputs_done_;
    // An id still being written: wait for it, so that the Get below sees
    // its committed version and two writes of one id never race.
    while (!in_flight_.empty() &&
           std::any_of(queue_.begin(), queue_.end(), [&](const Pending& p) {
             return in_flight_ids_.count(p.doc.id) > 0;
           })) {
      if (absl::Status done = CompleteOldest(); !done.ok()) return done;
    }
    std::vector<std::string> ids;
    ids.reserve(queue_.size());
    for (const Pending& p : queue_) ids.push_back(p.doc.id);
    absl::StatusOr<GetResult> stored =
        client_.Get(o_.ns, {}, ids, /*include_vectors=*/false, UnaryCall(g_));
    if (!stored.ok()) return stored.status();
    std::unordered_map<std::string, std::string> stored_sha;
    for (const Document& doc : stored->documents) {
      json metadata = json::parse(doc.metadata_json, nullptr, /*allow_exceptions=*/false);
      if (metadata.is_object() && metadata.contains("sha256") && metadata["sha256"].is_string()) {
        stored_sha[doc.id] = metadata["sha256"].get<std::string>();
      }
    }
    std::vector<Document> send;
    for (Pending& p : queue_) {
      auto it = stored_sha.find(p.doc.id);
      if (it != stored_sha.end() && it->second == p.sha256) {
        ++unchanged_;
      } else {
        send.push_back(std::move(p.doc));
      }
    }
    queue_.clear();
    queued_ids_.clear();
    queue_bytes_ = 0;
    if (send.empty()) {
      CommittedAfterInFlight(inputs_in_batch);
      return absl::OkStatus();
    }

    while (in_flight_.size() >= in_flight_limit_) {
      if (absl::Status done = CompleteOldest(); !done.ok()) return done;
    }
    InFlight batch;
    batch.inputs_done = inputs_in_batch;
    batch.documents = send.size();
    for (const Document& doc : send) batch.ids.push_back(doc.id);
    for (const std::string& id : batch.ids) in_flight_ids_.insert(id);
    batch.result = std::async(std::launch::async, &Ingester::WriteBatch, &client_, o_.ns,
                              StreamingCall(g_), std::move(send));
    in_flight_.push_back(std::move(batch));
    return absl::OkStatus();
  }

  // Runs on a batch's own thread: one UpsertStream call carrying the batch
  // as one message. Only touches its arguments (Client is thread-safe).
  static absl::StatusOr<UpsertResult> WriteBatch(Client* client, std::string ns,
                                                 CallOptions call, std::vector<Document> docs) {
    absl::StatusOr<std::unique_ptr<UpsertWriter>> writer = client->UpsertStream(ns, call);
    if (!writer.ok()) return writer.status();
    absl::Status written = (*writer)->Write(docs, {});
    // After a failed Write the server's reason is the stream's final status.
    absl::StatusOr<UpsertResult> result = (*writer)->Finish();
    if (!result.ok() || written.ok()) return result;
    return written;
  }

  // Waits for the oldest batch in flight and accounts for it. On its
  // failure, waits for the others too (what they stored counts as done) and
  // returns the error, naming the failed batch and what was stored.
  absl::Status CompleteOldest() {
    InFlight batch = std::move(in_flight_.front());
    in_flight_.pop_front();
    for (const std::string& id : batch.ids) in_flight_ids_.erase(in_flight_ids_.find(id));
    absl::StatusOr<UpsertResult> result = batch.result.get();
    if (result.ok()) {
      ingested_ += batch.documents;
      chunks_written_ += result->chunks_written;
      documents_written_ += result->documents_written;
      if (progress_) {
        const double seconds = Seconds();
        progress_->SetNote(absl::StrFormat("%d chunks  %.1f chunks/s", chunks_written_,
                                           seconds > 0 ? chunks_written_ / seconds : 0.0));
      }
      ShowProgress(batch.inputs_done);
      return absl::OkStatus();
    }
    while (!in_flight_.empty()) {
      InFlight other = std::move(in_flight_.front());
      in_flight_.pop_front();
      absl::StatusOr<UpsertResult> other_result = other.result.get();
      if (other_result.ok()) {
        ingested_ += other.documents;
        chunks_written_ += other_result->chunks_written;
        documents_written_ += other_result->documents_written;
      }
    }
    in_flight_ids_.clear();
    const std::string which =
        batch.ids.size() == 1
            ? absl::StrCat("document ", batch.ids.front())
            : absl::StrCat(batch.ids.size(), " documents ", batch.ids.front(), " .. ",
                           batch.ids.back());
    return absl::Status(
        result.status().code(),
        absl::StrCat(result.status().message(), " (writing ", which, "; ", ingested_,
                     " documents were stored before the failure; re-running resumes)"));
  }

  // A batch being written by its own thread.
  struct InFlight {
    std::future<absl::StatusOr<UpsertResult>> result;
    std::vector<std::string> ids;  // its documents, in the order read
    uint64_t documents = 0;
    uint64_t inputs_done = 0;  // inputs complete once it (and all before) commit
  };

  Client& client_;
  const GlobalOptions& g_;
  const IngestOptions& o_;
  const Output& out_;
  const size_t in_flight_limit_;
  ProgressBar* progress_;
  const Clock::time_point start_;

  std::vector<Pending> queue_;
  std::set<std::string> queued_ids_;
  uint64_t queue_bytes_ = 0;

  std::deque<InFlight> in_flight_;           // oldest first
  std::multiset<std::string> in_flight_ids_;  // ids of the batches in in_flight_

  uint64_t inputs_done_ = 0;
  uint64_t ingested_ = 0;
  uint64_t unchanged_ = 0;
  uint64_t skipped_ = 0;
  uint64_t chunks_written_ = 0;
  uint64_t documents_written_ = 0;
  std::vector<Skipped> skips_;
};

}  // namespace

absl::Status Ingest(Client& client, const GlobalOptions& g, const IngestOptions& o,
                    const Output& out) {
  IngestPipelineOptions pipeline;
  pipeline.in_flight = o.in_flight;
  return IngestPipelined(client, g, o, out, pipeline);
}

absl::Status IngestPipelined(Client& client, const GlobalOptions& g, const IngestOptions& o,
                             const Output& out, const IngestPipelineOptions& pipeline) {
  if (pipeline.in_flight < 1) return absl::InvalidArgumentError("in_flight must be positive");
  if (o.batch <= 0) return absl::InvalidArgumentError("--batch must be positive");
  if (o.batch_bytes == 0) return absl::InvalidArgumentError("--batch-bytes must be positive");
  if (o.max_file_bytes == 0) {
    return absl::InvalidArgumentError("--max-file-bytes must be positive");
  }
  if (o.paths.empty()) return absl::InvalidArgumentError("give at least one PATH");
  absl::StatusOr<std::vector<std::string>> extensions = ParseExtensions(o.extensions);
  if (!extensions.ok()) return extensions.status();

  bool from_stdin = false;
  std::vector<std::string> paths;
  for (const std::string& path : o.paths) {
    if (path == "-") {
      if (from_stdin) return absl::InvalidArgumentError("- (stdin) given twice");
      from_stdin = true;
    } else {
      paths.push_back(path);
    }
  }
  if (from_stdin && o.stdin_id.empty()) {
    return absl::InvalidArgumentError("--stdin-id must not be empty");
  }

  absl::StatusOr<NamespaceInfo> info = client.GetNamespace(o.ns, UnaryCall(g));
  if (!info.ok()) return info.status();
  if (info->config.encoder.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("namespace ", o.ns,
                     " has no encoder, so the server cannot embed text; create a text "
                     "namespace with `mnemo ns create NAME --encoder use-lite`"));
  }

  absl::StatusOr<std::vector<InputFile>> files = CollectInputFiles(paths, *extensions);
  if (!files.ok()) return files.status();
  if (from_stdin) {
    for (const InputFile& file : *files) {
      if (file.id == o.stdin_id) {
        return absl::InvalidArgumentError(absl::StrCat("document id \"", o.stdin_id,
                                                       "\" comes from both stdin and ", file.path,
                                                       "; pick another --stdin-id"));
      }
    }
  }
  const uint64_t total = files->size() + (from_stdin ? 1 : 0);

  std::unique_ptr<ProgressBar> progress;
  if (o.progress || isatty(fileno(out.err))) {
    progress = std::make_unique<ProgressBar>(out.err, absl::StrCat("ingest ", o.ns), total);
    progress->SetUnit("files");
    progress->Update(0);
  }
  Ingester ingester(client, g, o, out, pipeline, progress.get());
  auto fail = [&](absl::Status status) {
    if (progress) progress->Finish();
    return status;
  };

  if (from_stdin) {
    std::string raw = ReadAtMost(std::cin, o.max_file_bytes);
    if (std::cin.bad()) return fail(absl::DataLossError("error reading stdin"));
    if (raw.size() > o.max_file_bytes) {
      ingester.Skip("<stdin>",
                    absl::StrCat("more than --max-file-bytes (", o.max_file_bytes, " bytes)"));
    } else {
      json metadata{{"path", "-"}, {"bytes", raw.size()}};
      absl::Status added =
          ingester.AddText("<stdin>", o.stdin_id, FileFormat::kText, raw, std::move(metadata));
      if (!added.ok()) return fail(added);
    }
    ingester.InputDone();
  }

  for (const InputFile& file : *files) {
    const FileFormat format = FormatOf(file.path);
    struct stat st {};
    if (::stat(file.path.c_str(), &st) != 0) {
      ingester.Skip(file.path, absl::StrCat("cannot stat: ", std::strerror(errno)));
      ingester.InputDone();
      continue;
    }
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    absl::Status added;
    if (format == FileFormat::kJsonl) {
      added = ingester.AddJsonl(file);
    } else if (size > o.max_file_bytes) {
      ingester.Skip(file.path, absl::StrCat(size, " bytes is more than --max-file-bytes (",
                                            o.max_file_bytes, "); split it, or raise the limit"));
    } else {
      std::ifstream in(file.path, std::ios::binary);
      if (!in) {
        ingester.Skip(file.path, absl::StrCat("cannot open: ", std::strerror(errno)));
      } else {
        std::string raw = ReadAtMost(in, o.max_file_bytes);
        if (in.bad()) {
          ingester.Skip(file.path, "read error");
        } else if (raw.size() > o.max_file_bytes) {
          ingester.Skip(file.path, "grew past --max-file-bytes while being read");
        } else {
          json metadata{{"path", file.path},
                        {"bytes", raw.size()},
                        {"mtime", static_cast<int64_t>(st.st_mtime)}};
          added = ingester.AddText(file.path, file.id, format, raw, std::move(metadata));
        }
      }
    }
    if (!added.ok()) return fail(added);
    ingester.InputDone();
  }

  if (absl::Status finished = ingester.Finish(); !finished.ok()) return fail(finished);
  if (progress) progress->Finish();
  if (out.json) {
    PrintJson(out, ingester.Summary());
  } else {
    Print(out, ingester.SummaryLine());
  }
  return absl::OkStatus();
}

}  // namespace mnemo::cli
