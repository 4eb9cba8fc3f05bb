// Reading text corpora for `mnemo ingest`: finding the files under the
// given paths, deciding whether a file is text, turning HTML into plain
// text, parsing JSONL documents and hashing contents. No I/O beyond the file
// system walk; nothing here talks to the server.
//
// Thread safety: the functions are pure (or only read the file system) and
// may be called from any thread.
#ifndef MNEMO_CLIENT_CLI_TEXT_FILES_H_
#define MNEMO_CLIENT_CLI_TEXT_FILES_H_

#include <cstddef>
#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mnemo/client.h"

namespace mnemo::cli {

// How a file's bytes become documents.
enum class FileFormat {
  kText,   // .txt, .md and anything else: the whole file is one document
  kHtml,   // .html / .htm: markup stripped (HtmlToText), one document
  kJsonl,  // .jsonl: one document per line (ParseDocumentLine)
};

// By extension, case-insensitively.
FileFormat FormatOf(absl::string_view path);

// One file to ingest.
struct InputFile {
  std::string path;  // as it can be opened (the given root joined with id)
  // Document id: the path relative to the folder that was given, with '/'
  // separators ("guides/setup.md"); the file name for a file given itself.
  std::string id;
};

// Parses "--ext" (".txt,.md,HTML") into lower-case extensions with a
// leading dot ({".txt", ".md", ".html"}). INVALID_ARGUMENT when it names
// none.
absl::StatusOr<std::vector<std::string>> ParseExtensions(absl::string_view list);

// Expands `paths` (files and folders; "-" must be handled by the caller)
// into the files to ingest, in a deterministic order: each path in the
// order given, a folder's files sorted by id. Folders are walked
// recursively; hidden entries (names starting with '.') are skipped, as are
// files whose extension is not in `extensions` and anything that is not a
// regular file; symbolic links to folders are not followed. A file named
// explicitly is taken whatever its extension.
// NOT_FOUND when a path does not exist, INVALID_ARGUMENT when it is neither
// a file nor a folder, or when two inputs yield the same document id.
absl::StatusOr<std::vector<InputFile>> CollectInputFiles(
    const std::vector<std::string>& paths, const std::vector<std::string>& extensions);

// OK when `bytes` is UTF-8 text. INVALID_ARGUMENT with a reason for the user
// ("binary: NUL byte at offset 12", "not valid UTF-8: bad byte 0xff at offset
// 3") otherwise. Overlong encodings, surrogates and code points above
// U+10FFFF are invalid.
absl::Status CheckUtf8Text(absl::string_view bytes);

// Plain text of an HTML document, deliberately simple (no DOM):
// - <script>, <style>, <noscript>, <template> elements, comments, doctypes
//   and processing instructions are dropped with their content;
// - block elements (p, div, h1-h6, li, tr, br, ...) become line breaks,
//   table cells a space, every other tag nothing;
// - character references are decoded: the common named ones (&amp; &lt;
//   &gt; &quot; &apos; &nbsp; and a few typographic ones) and numeric ones
//   (&#233; &#xE9;); unknown ones are kept as written;
// - runs of spaces collapse to one, lines are trimmed and at most one empty
//   line separates paragraphs (also inside <pre>).
std::string HtmlToText(absl::string_view html);

// Strips a leading UTF-8 byte order mark.
absl::string_view StripBom(absl::string_view text);

// True when `text` holds only ASCII whitespace.
bool IsBlankText(absl::string_view text);

// One line of an ingest JSONL file: {"id": "...", "text": "...",
// "metadata": {...}}. "id" (a string or an integer) and a non-empty "text"
// are required, "metadata" must be an object when present, other fields are
// ignored. INVALID_ARGUMENT with a reason otherwise (the caller adds
// file:line).
absl::StatusOr<Document> ParseDocumentLine(absl::string_view line);

// Reads one line (without its '\n' and a trailing '\r') of at most
// `max_bytes` bytes. Returns false at the end of the input. A longer line is
// consumed to its end without being stored; `*too_long` is set then and
// `line` holds its first max_bytes bytes.
bool ReadBoundedLine(std::istream& in, size_t max_bytes, std::string& line, bool* too_long);

// Lower-case hex SHA-256 of `bytes` (what sha256sum prints).
std::string Sha256Hex(absl::string_view bytes);

}  // namespace mnemo::cli

#endif  // MNEMO_CLIENT_CLI_TEXT_FILES_H_
