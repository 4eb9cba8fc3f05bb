// The one-line progress bar of long CLI operations (see progress.h).
#include "client/cli/progress.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mnemo::cli {
namespace {

constexpr int kBarWidth = 30;
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

}  // namespace

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = static_cast<uint64_t>(std::llround(seconds));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

ProgressBar::ProgressBar(std::FILE* out, std::string label, uint64_t total)
    : out_(out),
      label_(std::move(label)),
      total_(total),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - kRedrawInterval) {}

std::string ProgressBar::Render(uint64_t done, double elapsed_s) const {
  const double rate = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0.0;
  // Slow work (a few files a minute) still shows a rate.
  const int rate_digits = rate > 0 && rate < 1 ? 2 : 0;
  std::string line = label_.empty() ? "" : absl::StrCat(label_, " ");
  if (total_ == 0) {
    absl::StrAppendFormat(&line, "%d %s  %.*f %s/s  %s", done, unit_, rate_digits, rate, unit_,
                          FormatDuration(elapsed_s));
    if (!note_.empty()) absl::StrAppend(&line, "  ", note_);
    return line;
  }
  const double fraction =
      std::clamp(static_cast<double>(done) / static_cast<double>(total_), 0.0, 1.0);
  const int filled = static_cast<int>(fraction * kBarWidth);
  std::string bar(filled, '#');
  bar.append(kBarWidth - filled, '.');
  std::string eta = "?";
  if (done >= total_) {
    eta = FormatDuration(0);
  } else if (rate > 0) {
    eta = FormatDuration(static_cast<double>(total_ - done) / rate);
  }
  absl::StrAppendFormat(&line, "[%s] %d/%d %s %5.1f%%  %.*f %s/s  ETA %s", bar, done, total_,
                        unit_, fraction * 100.0, rate_digits, rate, unit_, eta);
  if (!note_.empty()) absl::StrAppend(&line, "  ", note_);
  return line;
}

void ProgressBar::Draw(uint64_t done) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string line = Render(done, elapsed);
  const size_t width = line.size();
  if (width < last_width_) line.append(last_width_ - width, ' ');
  last_width_ = width;
  std::fprintf(out_, "\r%s", line.c_str());
  std::fflush(out_);
}

void ProgressBar::Update(uint64_t done) {
  done_ = done;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  Draw(done);
}

void ProgressBar::Message(const std::string& line) {
  if (last_width_ > 0 && !finished_) {
    std::fprintf(out_, "\r%s\r", std::string(last_width_, ' ').c_str());
  }
  std::fprintf(out_, "%s\n", line.c_str());
  if (last_width_ > 0 && !finished_) {
    last_width_ = 0;
    Draw(done_);
  } else {
    std::fflush(out_);
  }
}

void ProgressBar::Finish() {
  if (finished_) return;
  finished_ = true;
  Draw(done_);
  std::fputc('\n', out_);
  std::fflush(out_);
}

}  // namespace mnemo::cli
