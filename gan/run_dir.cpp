#include "gan/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

#include "gan/run_config.h"
#include "nn/checkpoint.h"

namespace wn::gan {

namespace fs = std::filesystem;

const char* const kMetricsHeader = "iteration,d_real,d_fake,g_loss,seconds,running_test";
const char* const kEvalHeader = "checkpoint,iteration,images,steps,final_test_loss,train_loss,seconds";
const char* const kPerImageHeader = "index,set,loss";

std::string RunDir::sample(int64_t iteration) const { return fmt::format("{}/iter_{:07d}.png", samples(), iteration); }

std::map<int64_t, std::string> RunDir::sample_grids() const {
  std::map<int64_t, std::string> g;
  if (!fs::exists(samples())) return g;
  for (auto& e : fs::directory_iterator(samples())) {
    const std::string stem = e.path().stem().string();
    if (e.path().extension() != ".png" || stem.rfind("iter_", 0) != 0) continue;
    try {
      g[std::stoll(stem.substr(5))] = e.path().string();
    } catch (const std::exception&) {
    }
  }
  return g;
}

std::string RunDir::eval_file(const std::string& tag, const std::string& suffix) const {
  return eval_dir() + "/" + tag + "_" + suffix;
}

bool RunDir::holds_run() const {
  std::error_code ec;
  return fs::exists(config(), ec) || fs::exists(metrics(), ec) || fs::exists(checkpoints(), ec);
}

void RunDir::clear() const {
  for (const std::string& path : {config(), split(), metrics(), grad_trace(), eval_table(), samples(), checkpoints(),
                                  eval_dir(), report()}) {
    std::error_code ec;
    fs::remove_all(path, ec);
    if (ec) throw std::runtime_error(fmt::format("cannot remove {}: {}", path, ec.message()));
  }
}

namespace {
// The names (relative to the run folder) of what a run writes.
std::vector<std::string> run_entries(const RunDir& d, const std::string& root) {
  std::vector<std::string> names;
  for (const std::string& path : {d.config(), d.split(), d.metrics(), d.grad_trace(), d.eval_table(), d.samples(),
                                  d.checkpoints(), d.eval_dir(), d.report()})
    names.push_back(fs::path(path).lexically_relative(root).string());
  return names;
}
}  // namespace

void RunDir::set_aside() const {
  const fs::path aside = fs::path(dir_) / ".replaced";
  fs::create_directories(aside);  // absent: the trainer refuses a folder that still holds one
  for (const std::string& name : run_entries(*this, dir_)) {
    const fs::path from = fs::path(dir_) / name;
    if (fs::exists(fs::symlink_status(from))) fs::rename(from, aside / name);
  }
}

void RunDir::drop_set_aside() const {
  std::error_code ec;
  fs::remove_all(fs::path(dir_) / ".replaced", ec);
}

void RunDir::restore_set_aside() const {
  const fs::path aside = fs::path(dir_) / ".replaced";
  std::error_code ec;
  if (!fs::exists(aside, ec)) return;
  for (const std::string& name : run_entries(*this, dir_)) {
    const fs::path from = aside / name, to = fs::path(dir_) / name;
    if (fs::exists(fs::symlink_status(from, ec))) {
      fs::remove_all(to, ec);
      fs::rename(from, to, ec);
    }
  }
  fs::remove_all(aside, ec);
}

std::string RunDir::describe_checkpoints() const {
  std::string s;
  std::error_code ec;
  for (const char* name : {"best", "last"})
    if (fs::exists(checkpoint(name), ec)) s += (s.empty() ? "" : " and ") + std::string(name);
  return s.empty() ? "none" : s;
}

std::string format_metrics_row(const MetricsRow& r) {
  // Losses to float precision (9 digits), so that runs can be compared to 1e-7.
  return fmt::format("{},{:.9g},{:.9g},{:.9g},{:.4f},{}", r.iteration, r.d_real, r.d_fake, r.g_loss, r.seconds,
                     r.running_test >= 0 ? fmt::format("{:.8g}", r.running_test) : "");
}

namespace {
// A whole cell as a number.
std::optional<double> number(const std::string& cell) {
  try {
    size_t used = 0;
    const double v = std::stod(cell, &used);
    if (used == cell.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}
// The iteration in the first cell of a row, or -1.
int64_t row_iteration(const std::string& line) {
  int64_t it = 0;
  const auto comma = line.find(',');
  if (comma == std::string::npos) return -1;
  const auto r = std::from_chars(line.data(), line.data() + comma, it);
  return r.ec == std::errc() ? it : -1;
}
}  // namespace

std::optional<MetricsRow> parse_metrics_row(const std::string& line) {
  const std::vector<std::string> c = split_list(line, ',', /*keep_empty=*/true);
  if (c.size() < 5) return std::nullopt;
  std::optional<double> v[5];
  for (int i = 0; i < 5; ++i)
    if (!(v[i] = number(c[i]))) return std::nullopt;
  MetricsRow r{int64_t(*v[0]), *v[1], *v[2], *v[3], *v[4], -1};
  if (c.size() > 5 && !c[5].empty()) {
    const std::optional<double> running = number(c[5]);
    if (!running) return std::nullopt;
    r.running_test = *running;
  }
  return r;
}

std::vector<MetricsRow> read_metrics(const std::string& path) {
  std::vector<MetricsRow> rows;
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);  // the header
  while (std::getline(f, line))
    if (std::optional<MetricsRow> r = parse_metrics_row(line)) rows.push_back(*r);
  return rows;
}

void trim_metrics(const std::string& path, int64_t last_iteration) {
  std::ifstream in(path);
  std::string line, kept;
  int64_t last_row = 0;
  if (std::getline(in, line)) kept = line + "\n";
  while (std::getline(in, line)) {
    // Rows 1..last_iteration in order; a torn, repeated or later row is dropped.
    const int64_t it = row_iteration(line);
    if (it >= 0 && it <= last_iteration && it == last_row + 1) {
      kept += line + "\n";
      last_row = it;
    }
  }
  if (kept.empty()) kept = std::string(kMetricsHeader) + "\n";
  nn::write_file_atomic(path, kept);
}

void append_eval_row(const std::string& path, const EvalRow& r) {
  const bool fresh = !fs::exists(path);
  std::ofstream f(path, std::ios::app);
  if (fresh) f << kEvalHeader << "\n";
  f << fmt::format("{},{},{},{},{:.9g},{:.9g},{:.1f}\n", r.checkpoint, r.iteration, r.images, r.steps,
                   r.final_test_loss, r.train_loss, r.seconds);
  if (!f) throw std::runtime_error(fmt::format("cannot write {}", path));
}

std::string format_per_image_row(int64_t index, const char* set, double loss) {
  return fmt::format("{},{},{:.9g}\n", index, set, loss);
}

RunLock::RunLock(const std::string& dir) : path_(dir + "/.lock") {
  // The holder removes the file when it ends, so a lock taken on a file that was removed
  // meanwhile is no lock: take it again on the file now at the path.
  for (int attempt = 0;; ++attempt) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error(fmt::format("cannot create {}: {}", path_, std::strerror(errno)));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      char buf[32] = {};
      const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
      ::close(fd_);
      fd_ = -1;
      throw std::runtime_error(fmt::format("{} is in use by another wngan process{}; wait for it to end, or use "
                                           "another --out",
                                           dir, n > 0 ? fmt::format(" (pid {})", std::string(buf, size_t(n))) : ""));
    }
    struct stat held {}, now {};
    if (::fstat(fd_, &held) == 0 && ::stat(path_.c_str(), &now) == 0 && held.st_dev == now.st_dev &&
        held.st_ino == now.st_ino)
      break;
    ::close(fd_);
    fd_ = -1;
    if (attempt == 100) throw std::runtime_error(fmt::format("cannot lock {}: it keeps being replaced", path_));
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // The pid is only a courtesy for the message above.
  }
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // still holding the lock: no other process holds this file
  ::close(fd_);             // closing releases the lock
}

bool MetricsLog::append(const std::string& row) {
  pending_ += row + "\n";
  ++count_;
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const off_t before = ::lseek(fd, 0, SEEK_END);
  size_t off = 0;
  bool ok = before >= 0;
  while (ok && off < pending_.size()) {
    const ssize_t n = ::write(fd, pending_.data() + off, pending_.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ok = false;
    else off += size_t(n);
  }
  if (!ok && before >= 0 && ::ftruncate(fd, before) != 0) {
    // Could not cut the partial row off; the resume's clean-up drops torn rows.
  }
  ::close(fd);
  if (!ok) return false;
  pending_.clear();
  count_ = 0;
  return true;
}

}  // namespace wn::gan
