// Reading text corpora for `mnemo ingest` (see text_files.h).
#include "client/cli/text_files.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace mnemo::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string LowerExtension(absl::string_view path) {
  return absl::AsciiStrToLower(fs::path(std::string(path)).extension().string());
}

bool IsHidden(const fs::path& path) {
  const std::string name = path.filename().string();
  return !name.empty() && name[0] == '.' && name != "." && name != "..";
}

// Appends code point `cp` as UTF-8 (U+FFFD for invalid ones).
void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Named character references HtmlToText decodes.
const std::map<std::string, uint32_t, std::less<>>& NamedEntities() {
  static const auto* entities = new std::map<std::string, uint32_t, std::less<>>{
      {"amp", '&'},       {"lt", '<'},       {"gt", '>'},       {"quot", '"'},
      {"apos", '\''},     {"nbsp", ' '},     {"ndash", 0x2013}, {"mdash", 0x2014},
      {"hellip", 0x2026}, {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C},
      {"rdquo", 0x201D},  {"copy", 0xA9},    {"reg", 0xAE},     {"trade", 0x2122},
      {"middot", 0xB7},   {"bull", 0x2022},  {"laquo", 0xAB},   {"raquo", 0xBB},
      {"deg", 0xB0},      {"euro", 0x20AC},  {"times", 0xD7},
  };
  return *entities;
}

// Decodes the character reference starting at html[i] == '&' into `out`
// and returns the index after it; keeps a lone '&' as is.
size_t DecodeEntity(absl::string_view html, size_t i, std::string& out) {
  constexpr size_t kMaxEntity = 32;
  const size_t semi = html.find(';', i + 1);
  if (semi == absl::string_view::npos || semi - i > kMaxEntity || semi == i + 1) {
    out.push_back('&');
    return i + 1;
  }
  absl::string_view body = html.substr(i + 1, semi - i - 1);
  if (body[0] == '#') {
    uint32_t cp = 0;
    bool hex = body.size() > 1 && (body[1] == 'x' || body[1] == 'X');
    absl::string_view digits = body.substr(hex ? 2 : 1);
    bool ok = !digits.empty();
    for (char c : digits) {
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (hex && absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
        d = absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10;
      } else {
        ok = false;
        break;
      }
      cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(d);
      if (cp > 0x10FFFF) cp = 0x110000;  // saturate: invalid either way
    }
    if (!ok) {
      out.push_back('&');
      return i + 1;
    }
    AppendUtf8(cp, out);
    return semi + 1;
  }
  auto it = NamedEntities().find(body);
  if (it == NamedEntities().end()) {
    out.push_back('&');
    return i + 1;
  }
  AppendUtf8(it->second, out);
  return semi + 1;
}

bool IsBreakTag(absl::string_view name) {
  static constexpr const char* kLineTags[] = {"br", "li", "tr", "dt", "dd", "option"};
  for (const char* tag : kLineTags) {
    if (name == tag) return true;
  }
  return false;
}

bool IsBlockTag(absl::string_view name) {
  static constexpr const char* kBlockTags[] = {
      "p",       "div",     "h1",     "h2",         "h3",    "h4",      "h5",       "h6",
      "ul",      "ol",      "dl",     "table",      "thead", "tbody",   "tfoot",    "section",
      "article", "header",  "footer", "nav",        "aside", "main",    "pre",      "blockquote",
      "hr",      "title",   "figure", "figcaption", "form",  "address", "fieldset", "details",
      "summary", "caption", "body",   "html",       "head"};
  for (const char* tag : kBlockTags) {
    if (name == tag) return true;
  }
  return false;
}

bool IsRawTextTag(absl::string_view name) {
  return name == "script" || name == "style" || name == "noscript" || name == "template";
}

// Index of the '>' closing the tag that starts at html[i] == '<', honouring
// quoted attribute values; npos when the tag never closes.
size_t TagEnd(absl::string_view html, size_t i) {
  char quote = 0;
  for (size_t j = i + 1; j < html.size(); ++j) {
    const char c = html[j];
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '>') {
      return j;
    }
  }
  return absl::string_view::npos;
}

// Case-insensitive find of `needle` (lower case) in `hay` from `from`.
size_t FindNoCase(absl::string_view hay, absl::string_view needle, size_t from) {
  if (needle.empty() || hay.size() < needle.size()) return absl::string_view::npos;
  for (size_t i = from; i + needle.size() <= hay.size(); ++i) {
    if (absl::EqualsIgnoreCase(hay.substr(i, needle.size()), needle)) return i;
  }
  return absl::string_view::npos;
}

// Collapses horizontal whitespace, trims lines and keeps at most one empty
// line in a row; no leading or trailing empty lines.
std::string NormalizeWhitespace(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  int pending_newlines = 0;
  bool pending_space = false;
  for (char c : text) {
    if (c == '\n') {
      ++pending_newlines;
      pending_space = false;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      pending_space = true;
      continue;
    }
    if (!out.empty()) {
      if (pending_newlines > 0) {
        out.append(pending_newlines > 1 ? "\n\n" : "\n");
      } else if (pending_space) {
        out.push_back(' ');
      }
    }
    pending_newlines = 0;
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

FileFormat FormatOf(absl::string_view path) {
  const std::string ext = LowerExtension(path);
  if (ext == ".html" || ext == ".htm") return FileFormat::kHtml;
  if (ext == ".jsonl") return FileFormat::kJsonl;
  return FileFormat::kText;
}

absl::StatusOr<std::vector<std::string>> ParseExtensions(absl::string_view list) {
  std::vector<std::string> extensions;
  for (absl::string_view part : absl::StrSplit(list, ',')) {
    std::string ext = absl::AsciiStrToLower(absl::StripAsciiWhitespace(part));
    if (ext.empty()) continue;
    if (ext[0] != '.') ext.insert(ext.begin(), '.');
    if (std::find(extensions.begin(), extensions.end(), ext) == extensions.end()) {
      extensions.push_back(std::move(ext));
    }
  }
  if (extensions.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--ext names no extension: \"", list, "\""));
  }
  return extensions;
}

absl::StatusOr<std::vector<InputFile>> CollectInputFiles(
    const std::vector<std::string>& paths, const std::vector<std::string>& extensions) {
  std::vector<InputFile> files;
  std::map<std::string, std::string> origin;  // id -> the path that gave it
  auto add = [&](InputFile file) -> absl::Status {
    auto [it, inserted] = origin.emplace(file.id, file.path);
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat("document id \"", file.id, "\" comes from both ", it->second, " and ",
                       file.path, "; ingest them in separate runs or from a common folder"));
    }
    files.push_back(std::move(file));
    return absl::OkStatus();
  };

  for (const std::string& given : paths) {
    std::error_code ec;
    const fs::path root(given);
    const fs::file_status status = fs::status(root, ec);
    if (ec || !fs::exists(status)) {
      return absl::NotFoundError(absl::StrCat("no such file or folder: ", given));
    }
    if (fs::is_regular_file(status)) {
      absl::Status added = add({given, root.filename().string()});
      if (!added.ok()) return added;
      continue;
    }
    if (!fs::is_directory(status)) {
      return absl::InvalidArgumentError(
          absl::StrCat(given, " is neither a regular file nor a folder"));
    }
    std::vector<InputFile> found;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
    if (ec) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot read folder ", given, ": ", ec.message()));
    }
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      const fs::directory_entry& entry = *it;
      if (IsHidden(entry.path())) {
        if (entry.is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (!entry.is_regular_file(ec)) continue;
      const std::string ext = LowerExtension(entry.path().string());
      if (std::find(extensions.begin(), extensions.end(), ext) == extensions.end()) continue;
      found.push_back(
          {entry.path().string(), entry.path().lexically_relative(root).generic_string()});
    }
    if (ec) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot walk folder ", given, ": ", ec.message()));
    }
    std::sort(found.begin(), found.end(),
              [](const InputFile& a, const InputFile& b) { return a.id < b.id; });
    for (InputFile& file : found) {
      absl::Status added = add(std::move(file));
      if (!added.ok()) return added;
    }
  }
  return files;
}

absl::Status CheckUtf8Text(absl::string_view bytes) {
  const void* nul = std::memchr(bytes.data(), '\0', bytes.size());
  if (nul != nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("binary: NUL byte at offset ", static_cast<const char*>(nul) - bytes.data()));
  }
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
      min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
      min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
      min = 0x10000;
    }
    bool ok = len != 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) {
        ok = false;
      } else {
        cp = (cp << 6) | (s[i + k] & 0x3F);
      }
    }
    if (ok && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrFormat("not valid UTF-8: bad byte 0x%02x at offset %d", c, i));
    }
    i += len;
  }
  return absl::OkStatus();
}

std::string HtmlToText(absl::string_view html) {
  std::string out;
  out.reserve(html.size() / 2);
  size_t i = 0;
  const size_t n = html.size();
  while (i < n) {
    const char c = html[i];
    if (c == '&') {
      i = DecodeEntity(html, i, out);
      continue;
    }
    if (c != '<') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (html.substr(i, 4) == "<!--") {
      const size_t end = html.find("-->", i + 4);
      i = end == absl::string_view::npos ? n : end + 3;
      continue;
    }
    size_t j = i + 1;
    const bool closing = j < n && html[j] == '/';
    if (closing) ++j;
    if (j >= n) {
      out.push_back('<');
      ++i;
      continue;
    }
    const char first = html[j];
    if (first == '!' || first == '?') {  // doctype, CDATA-ish, processing instruction
      const size_t end = TagEnd(html, i);
      i = end == absl::string_view::npos ? n : end + 1;
      continue;
    }
    if (!absl::ascii_isalpha(static_cast<unsigned char>(first))) {
      out.push_back('<');  // a literal '<' in text ("a < b")
      ++i;
      continue;
    }
    size_t name_end = j;
    while (name_end < n && absl::ascii_isalnum(static_cast<unsigned char>(html[name_end]))) {
      ++name_end;
    }
    const std::string name = absl::AsciiStrToLower(html.substr(j, name_end - j));
    const size_t end = TagEnd(html, i);
    if (end == absl::string_view::npos) break;  // an unclosed tag ends the text
    i = end + 1;
    if (!closing && IsRawTextTag(name) && html[end - 1] != '/') {
      const size_t close = FindNoCase(html, absl::StrCat("</", name), i);
      if (close == absl::string_view::npos) {
        i = n;
      } else {
        const size_t close_end = TagEnd(html, close);
        i = close_end == absl::string_view::npos ? n : close_end + 1;
      }
      out.push_back('\n');
      continue;
    }
    if (IsBreakTag(name)) {
      if (!closing) out.push_back('\n');  // "</li><li>" is one line break
    } else if (IsBlockTag(name)) {
      out.append("\n\n");
    } else if (name == "td" || name == "th") {
      out.push_back(' ');
    }
  }
  return NormalizeWhitespace(out);
}

absl::string_view StripBom(absl::string_view text) {
  absl::ConsumePrefix(&text, "\xEF\xBB\xBF");
  return text;
}

bool IsBlankText(absl::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return absl::ascii_isspace(static_cast<unsigned char>(c)); });
}

absl::StatusOr<Document> ParseDocumentLine(absl::string_view line) {
  json value = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  if (!value.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a JSON object, got ", value.type_name()));
  }
  Document doc;
  auto id = value.find("id");
  if (id == value.end() || id->is_null()) return absl::InvalidArgumentError("missing \"id\"");
  if (id->is_string()) {
    doc.id = id->get<std::string>();
  } else if (id->is_number_integer()) {
    doc.id = id->dump();
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("\"id\" must be a string or an integer, got ", id->type_name()));
  }
  if (doc.id.empty()) return absl::InvalidArgumentError("\"id\" is empty");
  auto text = value.find("text");
  if (text == value.end() || text->is_null()) return absl::InvalidArgumentError("missing \"text\"");
  if (!text->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"text\" must be a string, got ", text->type_name()));
  }
  doc.text = text->get<std::string>();
  if (IsBlankText(doc.text)) return absl::InvalidArgumentError("empty \"text\"");
  auto metadata = value.find("metadata");
  if (metadata != value.end() && !metadata->is_null()) {
    if (!metadata->is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"metadata\" must be an object, got ", metadata->type_name()));
    }
    doc.metadata_json = metadata->dump();
  }
  return doc;
}

bool ReadBoundedLine(std::istream& in, size_t max_bytes, std::string& line, bool* too_long) {
  line.clear();
  *too_long = false;
  std::streambuf* buf = in.rdbuf();
  bool any = false;
  while (true) {
    const int c = buf->sbumpc();
    if (c == std::char_traits<char>::eof()) {
      in.setstate(std::ios::eofbit);
      break;
    }
    any = true;
    if (c == '\n') break;
    if (line.size() < max_bytes) {
      line.push_back(static_cast<char>(c));
    } else {
      *too_long = true;
    }
  }
  if (!*too_long && !line.empty() && line.back() == '\r') line.pop_back();
  return any;
}

std::string Sha256Hex(absl::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int k = 0; k < length; ++k) absl::StrAppendFormat(&hex, "%02x", digest[k]);
  return hex;
}

}  // namespace mnemo::cli
