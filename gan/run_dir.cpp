#include "gan/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

namespace wn::gan {

namespace fs = std::filesystem;

const char* const kMetricsHeader = "iteration,d_real,d_fake,g_loss,seconds,running_test";

bool RunDir::holds_run() const {
  std::error_code ec;
  return fs::exists(config(), ec) || fs::exists(metrics(), ec) || fs::exists(checkpoints(), ec);
}

void RunDir::clear() const {
  for (const char* name : {"config.json", "split.json", "metrics.csv", "eval.csv", "samples", "checkpoints", "eval",
                           "report"}) {
    std::error_code ec;
    fs::remove_all(dir_ + "/" + name, ec);
    if (ec) throw std::runtime_error(fmt::format("cannot remove {}/{}: {}", dir_, name, ec.message()));
  }
}

std::string RunDir::describe_checkpoints() const {
  std::string s;
  std::error_code ec;
  for (const char* name : {"best", "last"})
    if (fs::exists(checkpoint(name), ec)) s += (s.empty() ? "" : " and ") + std::string(name);
  return s.empty() ? "none" : s;
}

RunLock::RunLock(const std::string& dir) {
  const std::string path = dir + "/.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error(fmt::format("cannot create {}: {}", path, std::strerror(errno)));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error(fmt::format("{} is in use by another wngan process{}; wait for it to end, or use another "
                                         "--out",
                                         dir, n > 0 ? fmt::format(" (pid {})", std::string(buf, size_t(n))) : ""));
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // The pid is only a courtesy for the message above.
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
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
