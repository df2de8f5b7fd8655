// A run folder: where each of its files lives, whether a folder holds a run, an exclusive
// lock so that two processes never write one run, and metrics.csv written so that its
// rows are always iterations 1..N with no hole and no repeat.
#pragma once
#include <cstdint>
#include <string>

namespace wn::gan {

class RunDir {
 public:
  explicit RunDir(std::string dir) : dir_(std::move(dir)) {}
  const std::string& path() const { return dir_; }
  std::string config() const { return dir_ + "/config.json"; }
  std::string split() const { return dir_ + "/split.json"; }
  std::string metrics() const { return dir_ + "/metrics.csv"; }
  std::string samples() const { return dir_ + "/samples"; }
  std::string checkpoints() const { return dir_ + "/checkpoints"; }
  // checkpoints/NAME.safetensors ("best", "last", "iter_0001000").
  std::string checkpoint(const std::string& name) const { return checkpoints() + "/" + name + ".safetensors"; }
  // Whether the folder holds (part of) a run: config.json, metrics.csv or checkpoints/.
  bool holds_run() const;
  // Removes the files a run writes (config, split, metrics, samples, checkpoints, eval,
  // report, eval.csv) and nothing else, so no stale checkpoint or picture survives.
  void clear() const;
  // "best and last (iteration 3000)", or "none": what a message may promise.
  std::string describe_checkpoints() const;

 private:
  std::string dir_;
};

// The header of metrics.csv.
extern const char* const kMetricsHeader;

// Holds RUN/.lock locked (flock) for its lifetime; a second holder gets an error naming
// the folder and the process that holds it.
class RunLock {
 public:
  explicit RunLock(const std::string& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// Appends rows to metrics.csv. A row that cannot be written (disk full) is kept and
// written before the next one, and a partly written row is cut off again, so the file
// never holds a hole or a torn line.
class MetricsLog {
 public:
  explicit MetricsLog(std::string path) : path_(std::move(path)) {}
  // Appends one row (without its newline); false if it is still pending.
  bool append(const std::string& row);
  // Rows not yet on disk.
  size_t pending() const { return count_; }

 private:
  std::string path_, pending_;
  size_t count_ = 0;
};

}  // namespace wn::gan
