// A run folder: where each of its files lives, whether a folder holds a run, an exclusive
// lock so that two processes never write one run, and the CSV files of a run with their
// columns defined once: metrics.csv (one row per iteration, written so that its rows are
// always iterations 1..N with no hole and no repeat), eval.csv (one row per final test)
// and the final test's per-image losses.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace wn::gan {

class RunDir {
 public:
  explicit RunDir(std::string dir) : dir_(std::move(dir)) {}
  const std::string& path() const { return dir_; }
  std::string config() const { return dir_ + "/config.json"; }
  std::string split() const { return dir_ + "/split.json"; }
  std::string metrics() const { return dir_ + "/metrics.csv"; }
  // grad_trace.csv: the gradient-flow trace (`--trace-grads N`, gan/grad_trace.h).
  std::string grad_trace() const { return dir_ + "/grad_trace.csv"; }
  std::string samples() const { return dir_ + "/samples"; }
  // samples/iter_0000100.png: the sample grid of an iteration.
  std::string sample(int64_t iteration) const;
  // The sample grids present: iteration -> file.
  std::map<int64_t, std::string> sample_grids() const;
  std::string checkpoints() const { return dir_ + "/checkpoints"; }
  // checkpoints/NAME.safetensors ("best", "last", "iter_0001000").
  std::string checkpoint(const std::string& name) const { return checkpoints() + "/" + name + ".safetensors"; }
  // eval/: the final tests' per-image losses, pairs and first reconstructions.
  std::string eval_dir() const { return dir_ + "/eval"; }
  // eval/TAG_SUFFIX, e.g. eval/best_500images_200steps_per_image.csv.
  std::string eval_file(const std::string& tag, const std::string& suffix) const;
  // eval.csv: one row per final test (EvalRow).
  std::string eval_table() const { return dir_ + "/eval.csv"; }
  // report/: the one-run report written at the end of `wngan train`.
  std::string report() const { return dir_ + "/report"; }
  // Whether the folder holds (part of) a run: config.json, metrics.csv or checkpoints/.
  bool holds_run() const;
  // Removes the files a run writes (config, split, metrics, samples, checkpoints, eval,
  // report, eval.csv) and nothing else, so no stale checkpoint or picture survives.
  void clear() const;
  // --force: moves a run's files aside into DIR/.replaced (kept until the new run has
  // started, then dropped; put back if the new start fails), so that a start that fails
  // loses nothing.
  void set_aside() const;
  void drop_set_aside() const;
  void restore_set_aside() const;
  // "best and last (iteration 3000)", or "none": what a message may promise.
  std::string describe_checkpoints() const;

 private:
  std::string dir_;
};

// One row of metrics.csv: the losses of an iteration, the seconds its step took, and the
// running test's loss at the iterations that ran one.
struct MetricsRow {
  int64_t iteration = 0;
  double d_real = 0, d_fake = 0, g_loss = 0, seconds = 0;
  double running_test = -1;  // < 0: no running test at this iteration (an empty cell)
};
// The header of metrics.csv.
extern const char* const kMetricsHeader;
// A row as metrics.csv holds it (without its newline).
std::string format_metrics_row(const MetricsRow& r);
// A row back; nullopt for a line that is not one (torn, or not numbers).
std::optional<MetricsRow> parse_metrics_row(const std::string& line);
// The rows of a metrics.csv (an unreadable file: none; lines that are not rows are skipped).
std::vector<MetricsRow> read_metrics(const std::string& path);
// Keeps the header and the rows 1..last_iteration in order of a metrics.csv (a torn,
// repeated or later row is dropped): the rows of the run a resume continues.
void trim_metrics(const std::string& path, int64_t last_iteration);

// One row of eval.csv: a final test of one checkpoint.
struct EvalRow {
  std::string checkpoint;
  int64_t iteration = -1, images = 0, steps = 0;
  double final_test_loss = 0, train_loss = 0, seconds = 0;
};
// The header of eval.csv.
extern const char* const kEvalHeader;
// Appends a row to eval.csv (with the header first when the file is new).
void append_eval_row(const std::string& path, const EvalRow& r);
// The header of a final test's per-image losses (eval/TAG_per_image.csv).
extern const char* const kPerImageHeader;
// One line of it: the data set index of an image, its set ("final_test" or "train") and
// its reconstruction loss (with its newline).
std::string format_per_image_row(int64_t index, const char* set, double loss);

// Holds RUN/.lock locked (flock) for its lifetime; a second holder gets an error naming
// the folder and the process that holds it. The file is removed when the holder ends
// (a process killed outright leaves it behind, unlocked: the next holder takes it).
class RunLock {
 public:
  explicit RunLock(const std::string& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
  std::string path_;
};

// Appends rows to metrics.csv. A row that cannot be written (disk full) is kept and
// written before the next one, and a partly written row is cut off again, so the file
// never holds a hole or a torn line.
class MetricsLog {
 public:
  explicit MetricsLog(std::string path) : path_(std::move(path)) {}
  // Appends one row (format_metrics_row, without its newline); false if it is still pending.
  bool append(const std::string& row);
  // Rows not yet on disk.
  size_t pending() const { return count_; }

 private:
  std::string path_, pending_;
  size_t count_ = 0;
};

}  // namespace wn::gan
