#include "eval/study.h"

#include <algorithm>
#include <set>
#include <chrono>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "engine/dist/comm.h"
#include "eval/run_eval.h"
#include "gan/run_config.h"
#include "gan/run_dir.h"
#include "gan/signals.h"
#include "gan/split.h"
#include "nn/checkpoint.h"

namespace wn::eval {

namespace fs = std::filesystem;

namespace {

// The finished runs of the study in plan.out (with resume), after making sure that a new
// study does not mix with an old one: a folder holding a study is refused, or with force
// cleared of everything a study writes.
std::map<std::string, StudyRun> open_study(const StudyPlan& plan, const std::string& state) {
  if (plan.resume) {
    if (!fs::exists(state) && fs::exists(gan::RunDir(plan.out).config()))
      throw std::invalid_argument(fmt::format("{} holds a train run, not a study", plan.out));
    return read_study_state(state);
  }
  const std::string& out = plan.out;
  if (fs::exists(gan::RunDir(out).config()))
    throw std::runtime_error(fmt::format("{} holds a train run (config.json); a study needs a folder of its own", out));
  if (fs::exists(state) || (fs::exists(out + "/runs") && !fs::is_empty(out + "/runs"))) {
    if (!plan.force)
      throw std::runtime_error(fmt::format("{} holds a study already: --resume continues it, --force replaces it, "
                                           "or choose another --out",
                                           out));
    for (const char* name : {"runs", "study.json", "results.md", "results.csv", "report.html", "plots", "strips",
                             "figures"})
      fs::remove_all(out + "/" + name);
    for (auto& e : fs::directory_iterator(out))
      if (e.path().filename().string().rfind("split_seed", 0) == 0) fs::remove(e.path());
  }
  // A new study starts in an empty folder: anything else would mix into it.
  std::string left;
  int count = 0;
  for (auto& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    if (name == ".lock" || name == "runs") continue;
    if (count++ < 8) left += (left.empty() ? "" : ", ") + name;
  }
  if (!left.empty())
    throw std::runtime_error(fmt::format("{} is not empty ({}{}): a new study starts in an empty folder; choose "
                                         "another --out",
                                         out, left, count > 8 ? ", ..." : ""));
  return {};
}

// On resume, before anything trains: every run already in the folder must agree with the
// options given (what would change its numbers is refused, naming the run and the
// option), and the finished runs' final tests with --final-n and --final-steps.
void check_resume(const StudyPlan& plan, const std::map<std::string, StudyRun>& done) {
  std::string conflicts;
  for (int64_t s = 0; s < plan.seeds; ++s)
    for (const std::string& m : plan.models) {
      const uint64_t seed = plan.first_seed + uint64_t(s);
      const std::string key = fmt::format("{}_seed{}", m, seed), dir = plan.out + "/runs/" + key;
      if (!fs::exists(gan::RunDir(dir).config())) continue;
      const gan::TrainConfig given = plan.config(m, seed), had = gan::load_train_config(dir);
      const std::string c = resume_conflicts(given, had, plan.test_every_given);
      if (!c.empty()) conflicts += fmt::format("\n {}:{}", key, c);
      if (given.iters < had.iters)
        conflicts += fmt::format("\n {}: --iters {} is below its {} (a resumed study may only train longer)", key,
                                 given.iters, had.iters);
      if (done.count(key) && done.at(key).error.empty() &&
          (done.at(key).eval_steps != plan.eval_steps || (done.at(key).eval_n > 0 && done.at(key).eval_n != plan.eval_n)))
        conflicts += fmt::format("\n {}: its final test has {} images x {} steps, {} x {} given", key,
                                 done.at(key).eval_n, done.at(key).eval_steps, plan.eval_n, plan.eval_steps);
    }
  // Every run of the folder is one of this study's: a changed --seed or --models would
  // leave rows out of the table (more seeds or models add runs, and are fine).
  std::set<std::string> planned;
  for (int64_t s = 0; s < plan.seeds; ++s)
    for (const std::string& m : plan.models) planned.insert(fmt::format("{}_seed{}", m, plan.first_seed + uint64_t(s)));
  std::error_code ec;
  if (fs::is_directory(plan.out + "/runs", ec))
    for (const auto& e : fs::directory_iterator(plan.out + "/runs"))
      if (e.is_directory() && !planned.count(e.path().filename().string()))
        conflicts += fmt::format("\n {}: a run of this study that --models {} and --seed {} --seeds {} leave out",
                                 e.path().filename().string(), fmt::join(plan.models, ","), plan.first_seed,
                                 plan.seeds);
  if (!conflicts.empty())
    throw std::invalid_argument(fmt::format(
        "--resume {}: these options differ from the study's runs (a resumed study keeps them, so that its table "
        "compares like with like; --iters may grow, --sample-every, --trace-grads and --device may change; start a "
        "new study to change the others):{}",
        plan.out, conflicts));
}

// Trains (or resumes) one run of a study and runs its final test. A signal that stops its
// training is stored in *interrupted (the run is then neither tested nor recorded).
StudyRun train_and_test(const StudyPlan& plan, const std::string& model, gan::TrainConfig c, bool resume_run,
                        const std::string& split, const std::function<void(const std::string&)>& log,
                        int* interrupted, dist::Comm* comm) {
  const auto t0 = std::chrono::steady_clock::now();
  gan::Trainer t(c, resume_run, comm);
  const bool root = comm->is_root();  // the run's rank 0 saves, tests and logs
  if (root && !fs::exists(split)) gan::save_split(split, t.split());
  t.running_test = running_test_hook(c.model.code, c.test_steps);
  bool diverged = false;
  try {
    if (!t.run()) {
      *interrupted = t.interrupted_by();
      return {};
    }
  } catch (const gan::DivergedError& e) {
    log(fmt::format("\n{}: {}\n", model, nn::error_text(e)));
    diverged = true;
  }
  StudyRun r;
  r.model = model;
  r.seed = c.seed;
  r.dir = c.out;
  r.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // A run that ended before its first running test has no best: its last checkpoint is tested.
  r.best_running = t.best_iteration() >= 0 ? t.best_loss() : NAN;
  r.best_iteration = t.best_iteration();
  r.diverged = diverged;
  // The final test, its images split over the run's ranks (rank 0 looks for the checkpoint).
  std::string ckpt = root ? final_checkpoint(c.out) : "";
  if (root && !fs::exists(gan::RunDir(c.out).checkpoint(ckpt))) ckpt.clear();
  comm->broadcast(ckpt);
  if (!ckpt.empty()) {
    EvalRequest e;
    e.run = c.out;
    e.checkpoint = ckpt;
    e.n = plan.eval_n;
    e.steps = plan.eval_steps;
    e.device = c.device;
    e.comm = comm;
    e.verbose = root;
    e.yardsticks = true;
    EvalResult er = evaluate_run(e);
    r.mean_image_loss = er.mean_image_loss;
    r.untrained_loss = er.untrained_loss;
    r.final_test = er.test_loss;
    r.final_train = er.train_loss;
    r.eval_iteration = er.iteration;
    r.eval_steps = e.steps;
    r.eval_n = er.n;
    r.eval_first = er.first_file;
    log(fmt::format("{}: final test loss {:.6f} (training images {:.6f}, {} checkpoint)\n", model, er.test_loss,
                    er.train_loss, ckpt));
  }
  return r;
}

// The record of a run that failed (an error on one of its ranks).
StudyRun failed_run(const std::string& model, uint64_t seed, const std::string& dir, const std::string& error) {
  StudyRun r;
  r.model = model;
  r.seed = seed;
  r.dir = dir;
  r.error = error;
  return r;
}

// The finished runs of before with those of now (now wins).
std::map<std::string, StudyRun> done_with(std::map<std::string, StudyRun> before, const std::map<std::string, StudyRun>& now) {
  for (const auto& [key, r] : now) before[key] = r;
  return before;
}

}  // namespace

StudyOutcome run_study(const StudyPlan& plan, const std::function<void(const std::string&)>& log_all) {
  std::unique_ptr<dist::Comm> own;
  dist::Comm* world = plan.comm;
  if (!world) {
    own = dist::Comm::self();
    world = own.get();
  }
  const int k = plan.ranks_per_run;
  if (k < 1 || world->size() % k != 0)
    throw std::invalid_argument(fmt::format("--ranks-per-run {} does not divide the {} ranks of this job (mpirun -np {})",
                                            k, world->size(), world->size()));
  const std::string state = plan.out + "/study.json";
  std::map<std::string, StudyRun> done;  // "model_seedS" -> its results
  std::unique_ptr<gan::RunLock> lock;  // one writer per study folder (rank 0 writes it)
  if (world->is_root()) {
    fs::create_directories(plan.out);
    lock = std::make_unique<gan::RunLock>(plan.out);
    done = open_study(plan, state);
    if (plan.resume) check_resume(plan, done);
    fs::create_directories(plan.out + "/runs");
  }
  world->barrier();  // the folder is ready (or rank 0's error reaches every rank here)
  if (!world->is_root() && plan.resume) done = read_study_state(state);
  // Run i (seeds, then models, in order) goes to group i % groups of k ranks.
  const int groups = world->size() / k, group = world->rank() / k;
  std::unique_ptr<dist::Comm> group_comm = world->size() > 1 ? world->split(group) : dist::Comm::self();
  const bool speaker = group_comm->is_root();
  auto log = [&](const std::string& line) {
    if (speaker) log_all(groups > 1 ? fmt::format("[ranks {}-{}] {}", group * k, group * k + k - 1, line) : line);
  };
  std::map<std::string, StudyRun> mine;  // the runs this group finished
  int interrupted = 0, index = 0;
  double trained_s = 0;  // this rank's time in runs (the final gather's bound)
  for (int64_t s = 0; s < plan.seeds && interrupted == 0; ++s) {
    const uint64_t seed = plan.first_seed + uint64_t(s);
    for (const std::string& m : plan.models) {
      if (index++ % groups != group) continue;
      if (const int sig = gan::stop_signal()) {  // a signal between runs stops the study here
        interrupted = sig;
        log(fmt::format("study interrupted; `wngan study --resume {}` continues it\n", plan.out));
        break;
      }
      gan::TrainConfig c = plan.config(m, seed);
      c.out = fmt::format("{}/runs/{}_seed{}", plan.out, m, seed);
      // One split per seed, shared by every model of that seed.
      const std::string split = fmt::format("{}/split_seed{}.json", plan.out, seed);
      if (fs::exists(split)) c.split_file = split;
      const std::string key = fmt::format("{}_seed{}", m, seed);
      // A finished run is kept, unless it failed (retried) or this study asks for more
      // iterations (continued from its last checkpoint and tested again).
      bool more = false;
      if (done.count(key)) {
        const StudyRun& was = done.at(key);
        if (!was.error.empty()) {
          log(fmt::format("\n== {} (seed {}): failed before ({}); retried\n", m, seed, was.error));
        } else {
          const int64_t had = gan::load_train_config(c.out).iters;
          if (c.iters <= had) {
            log(fmt::format("\n== {} (seed {}): finished before, kept ({})\n", m, seed, c.out));
            continue;
          }
          more = true;
          log(fmt::format("\n== {} (seed {}): finished at {} iterations; continued to {}\n", m, seed, had, c.iters));
        }
      }
      // An interrupted run resumes (with this study's --iters); anything else starts anew.
      const bool resume_run = plan.resume && fs::exists(gan::RunDir(c.out).checkpoint("last"));
      if (resume_run) {
        const int64_t iters = c.iters, sample_every = c.sample_every, trace = c.trace_grads, save = c.save_every;
        const Device device = c.device;
        c = gan::load_train_config(c.out);
        c.iters = iters;
        c.sample_every = sample_every;
        c.save_every = save;
        c.trace_grads = trace;
        c.device = device;
      } else {
        c.force = true;  // leftovers of a run that never saved are replaced
      }
      if (!more)
        log(fmt::format("\n== {} (seed {}): {} iterations -> {}{}\n", m, seed, c.iters, c.out,
                        resume_run ? " (resumed)" : ""));
      // A fresh communicator per run: a failed run leaves collectives behind on its own.
      std::unique_ptr<dist::Comm> run_comm = group_comm->dup();
      StudyRun r;
      const auto run_start = std::chrono::steady_clock::now();
      try {
        r = train_and_test(plan, m, c, resume_run, split, log, &interrupted, run_comm.get());
      } catch (const gan::Interrupted& e) {
        interrupted = e.signal();  // during the run's final test: the run is not recorded
      } catch (const dist::RankFailed& e) {
        run_comm->acknowledge_failure();
        r = failed_run(m, seed, c.out, nn::error_text(e));
      } catch (const std::exception& e) {
        run_comm->announce_failure(fmt::format("rank {} failed: {}", world->world_rank(), e.what()));
        r = failed_run(m, seed, c.out, fmt::format("rank {} failed: {}", world->world_rank(), e.what()));
      }
      trained_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
      if (!r.error.empty()) log(fmt::format("\n{} (seed {}): {}; the study goes on\n", m, seed, r.error));
      if (interrupted != 0) {
        log(fmt::format("study interrupted; `wngan study --resume {}` continues it\n", plan.out));
        break;
      }
      mine[key] = r;
      if (world->size() == 1) write_study_state(state, done_with(done, mine));
    }
  }
  // Rank 0 collects every group's runs as they come, waiting at most the gather's bound
  // (a failure announced by a rank still ends the wait at once).
  StudyOutcome outcome;
  const double timeout = world->timeout_s;
  const double limit = plan.gather_timeout_s > 0 ? plan.gather_timeout_s
                       : trained_s > 0           ? std::max(timeout, kGatherFactor * trained_s)
                                                 : 1e9;
  std::vector<double> stop = {double(interrupted != 0), double(interrupted)};
  std::vector<std::string> parts;
  try {
    parts = world->gather_within(
        speaker ? study_state_json(mine, plan.out) : std::string(), limit,
        fmt::format("the study's final gather (rank {} trained {:.0f} s; the bound is {} x that, or --gather-timeout)",
                    world->world_rank(), trained_s, kGatherFactor));
    world->timeout_s = limit;
    world->all_reduce_sum(stop);
  } catch (...) {
    world->timeout_s = timeout;
    throw;
  }
  world->timeout_s = timeout;
  if (!world->is_root()) {
    outcome.interrupted_by = stop[0] > 0 ? int(stop[1] / stop[0]) : 0;
    return outcome;
  }
  for (const std::string& part : parts)
    if (!part.empty())
      for (auto& [key, r] : parse_study_state(part, "the runs of another rank", plan.out)) mine[key] = r;
  done = done_with(done, mine);
  write_study_state(state, done);
  if (stop[0] > 0) {
    outcome.interrupted_by = int(stop[1] / stop[0]);
    return outcome;
  }
  for (int64_t s = 0; s < plan.seeds; ++s)
    for (const std::string& m : plan.models) {
      const std::string key = fmt::format("{}_seed{}", m, plan.first_seed + uint64_t(s));
      if (done.count(key)) outcome.runs.push_back(done.at(key));
    }
  StudyReport rep;
  rep.title = plan.title;
  if (!plan.models.empty()) rep.device = plan.config(plan.models.front(), plan.first_seed).device.str();
  rep.runs = outcome.runs;
  rep.eval_n = plan.eval_n;
  rep.eval_steps = plan.eval_steps;
  write_study_report(plan.out, rep);
  return outcome;
}

namespace {
// path relative to the study folder when it lies inside it (as written by run_study).
std::string inside(const std::string& path, const std::string& study) {
  const std::string base = fs::path(study).lexically_normal().string();
  const std::string p = fs::path(path).lexically_normal().string();
  if (!base.empty() && p.rfind(base + "/", 0) == 0) return p.substr(base.size() + 1);
  return path;
}
}  // namespace

std::string resume_conflicts(const gan::TrainConfig& given, const gan::TrainConfig& run, bool test_every_given) {
  gan::TrainConfig g = given;
  if (g.select_on != "train") g.running_test = std::min(g.running_test, g.final_test);  // as the split takes it
  nlohmann::json a = gan::train_to_json(g), b = gan::train_to_json(run);
  for (const char* k : {"iters", "sample_every", "trace_grads", "save_every", "log_every", "samples"}) {
    a.erase(k);
    b.erase(k);
  }
  if (!test_every_given) a["test_every"] = b["test_every"];
  // Sizes left to the data set (0) are the run's.
  for (const char* k : {"channels", "height", "width"})
    if (a["model"][k] == 0) a["model"][k] = b["model"][k];
  std::string out;
  for (auto it = a.begin(); it != a.end(); ++it) {
    if (it->is_object()) {
      for (auto jt = it->begin(); jt != it->end(); ++jt)
        if (!b[it.key()].contains(jt.key()) || b[it.key()][jt.key()] != *jt)
          out += fmt::format("\n  {}.{}: the study has {}, {} given", it.key(), jt.key(),
                             b[it.key()].value(jt.key(), nlohmann::json()).dump(), jt->dump());
    } else if (!b.contains(it.key()) || b[it.key()] != *it) {
      out += fmt::format("\n  {}: the study has {}, {} given", it.key(), b.value(it.key(), nlohmann::json()).dump(),
                         it->dump());
    }
  }
  return out;
}

std::string study_state_json(const std::map<std::string, StudyRun>& done, const std::string& study) {
  nlohmann::json j = nlohmann::json::object();
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  for (const auto& [key, r] : done) {
    j[key] = {{"model", r.model},           {"dir", inside(r.dir, study)},
              {"seed", r.seed},             {"final_test", num(r.final_test)},
              {"final_train", num(r.final_train)}, {"best_running", num(r.best_running)},
              {"train_seconds", r.train_seconds},  {"best_iteration", r.best_iteration},
              {"diverged", r.diverged},     {"eval_iteration", r.eval_iteration},
              {"eval_steps", r.eval_steps}, {"eval_first", inside(r.eval_first, study)}, {"eval_n", r.eval_n},
              {"mean_image_loss", num(r.mean_image_loss)}, {"untrained_loss", num(r.untrained_loss)}};
    if (!r.error.empty()) j[key]["error"] = r.error;  // only for failed runs: old files stay as they were
  }
  return j.dump(2) + "\n";
}

void write_study_state(const std::string& path, const std::map<std::string, StudyRun>& done) {
  nn::write_file_atomic(path, study_state_json(done, fs::path(path).parent_path().string()));
}

std::map<std::string, StudyRun> parse_study_state(const std::string& text, const std::string& what,
                                                  const std::string& study) {
  std::map<std::string, StudyRun> done;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    auto num = [](const nlohmann::json& v) { return v.is_number() ? v.get<double>() : NAN; };
    for (auto it = j.begin(); it != j.end(); ++it) {
      const auto& v = it.value();
      StudyRun r;
      r.model = v.at("model").get<std::string>();
      if (!v.at("seed").is_number_unsigned())
        throw std::runtime_error(fmt::format("{}: '{}' has a seed that is not a whole number >= 0", what, it.key()));
      r.seed = v.at("seed").get<uint64_t>();
      // The run's name says what it is; its folder is always runs/NAME of this study (a
      // stored path is not trusted: a hand edit could point one model's row at another's run).
      if (it.key() != fmt::format("{}_seed{}", r.model, r.seed))
        throw std::runtime_error(fmt::format("{}: the entry '{}' is for model '{}' seed {}; the names disagree", what,
                                             it.key(), r.model, r.seed));
      r.dir = (fs::path(study) / "runs" / it.key()).lexically_normal().string();
      for (const char* k : {"final_test", "final_train", "best_running"})
        if (!v.at(k).is_number() && !v.at(k).is_null())
          throw std::runtime_error(fmt::format("{}: '{}'.{} is not a number", what, it.key(), k));
      r.final_test = num(v.at("final_test"));
      r.final_train = num(v.at("final_train"));
      r.best_running = num(v.at("best_running"));
      r.train_seconds = v.at("train_seconds").get<double>();
      r.best_iteration = v.at("best_iteration").get<int64_t>();
      r.diverged = v.at("diverged").get<bool>();
      r.eval_iteration = v.at("eval_iteration").get<int64_t>();
      r.eval_steps = v.at("eval_steps").get<int64_t>();
      // Its first reconstructions: a file of the run's own eval/ folder.
      const std::string first = v.at("eval_first").get<std::string>();
      r.eval_first = first.empty() ? "" : (fs::path(r.dir) / "eval" / fs::path(first).filename()).string();
      r.eval_n = v.value("eval_n", int64_t(0));
      r.error = v.value("error", std::string());
      if (v.contains("mean_image_loss")) r.mean_image_loss = num(v.at("mean_image_loss"));
      if (v.contains("untrained_loss")) r.untrained_loss = num(v.at("untrained_loss"));
      done[it.key()] = r;
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("{}: not a study state ({}); --force starts the study anew", what, e.what()));
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string(e.what()) + "; --force starts the study anew");
  }
  return done;
}

std::map<std::string, StudyRun> read_study_state(const std::string& path) {
  if (nn::file_kind(path) == nn::FileKind::Missing) return {};
  if (nn::file_kind(path) != nn::FileKind::Regular)
    throw std::runtime_error(fmt::format("{} is not a regular file; --force starts the study anew", path));
  return parse_study_state(read_text(path), path, fs::path(path).parent_path().string());
}

}  // namespace wn::eval
