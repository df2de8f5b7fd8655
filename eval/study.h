// The paper's comparison (docs/paper.md section 1) as a study folder: every model of a list
// trained on the same data, split and seeds (runs/MODEL_seedS, one split_seedS.json per
// seed), each tested on the final test set, the finished runs recorded in study.json so
// that an interrupted study resumes, and the report written over all of them.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/dist/comm.h"
#include "eval/report.h"
#include "gan/trainer.h"

namespace wn::eval {

struct StudyPlan {
  std::string out;                  // the study folder
  bool resume = false, force = false;
  std::vector<std::string> models;  // names as --models spells them ("weight", "resnet-batch", ...)
  uint64_t first_seed = 1;
  int64_t seeds = 1;
  // The training configuration of a model for one seed (the study sets its folder and split).
  std::function<gan::TrainConfig(const std::string& model, uint64_t seed)> config;
  int64_t eval_n = 500, eval_steps = 200;  // the final test of each run
  bool test_every_given = false;           // --test-every given (else a resumed run keeps its own)
  std::string title;                       // of the report
  // mpirun: the ranks of the job (null: this process alone) and the ranks that train each
  // run together (data-parallel groups; runs are dealt out to the groups in turn).
  dist::Comm* comm = nullptr;
  int ranks_per_run = 1;
  // How long the ranks wait for each other at the end, in seconds (--gather-timeout; 0:
  // kGatherFactor x the time this rank spent training, at least the collectives' timeout;
  // a rank that trained nothing in this session then waits without a limit).
  double gather_timeout_s = 0;
};

// The automatic bound of the final gather: this many times a rank's own training time.
constexpr double kGatherFactor = 4;

// How a study ended: its runs, or the signal that interrupted it (0: none).
struct StudyOutcome {
  std::vector<StudyRun> runs;
  int interrupted_by = 0;
};

// Runs a study (over the ranks of plan.comm: each group of ranks_per_run trains its share
// of the runs; a run that fails on a rank is recorded as failed and the others go on;
// rank 0 writes study.json and the report when all are done): with resume, keeps the runs study.json lists as finished, resumes an
// interrupted one and starts the rest; otherwise refuses a folder holding a study unless
// force, which removes it first. Writes the report into plan.out unless interrupted.
// Progress lines go to log.
StudyOutcome run_study(const StudyPlan& plan, const std::function<void(const std::string&)>& log);

// study.json: the runs a study has finished ("MODEL_seedS" -> results), their paths
// relative to the study folder, so that a study read from elsewhere or copied whole
// still finds its runs.
void write_study_state(const std::string& path, const std::map<std::string, StudyRun>& done);
std::map<std::string, StudyRun> read_study_state(const std::string& path);
// The same as text, and back (what names the text in errors; study: the study folder the
// paths are relative to).
std::string study_state_json(const std::map<std::string, StudyRun>& done, const std::string& study);
std::map<std::string, StudyRun> parse_study_state(const std::string& text, const std::string& what,
                                                  const std::string& study);
// On resume: the options of this study that would change what a finished or interrupted
// run computes, against the run's config.json ("--lr: the study has 0.0001, 0.001 given"),
// one line each; empty when they agree. --iters, --sample-every, --trace-grads and
// --device may change (and --test-every when not given: the run keeps its own).
std::string resume_conflicts(const gan::TrainConfig& given, const gan::TrainConfig& run, bool test_every_given);

}  // namespace wn::eval
