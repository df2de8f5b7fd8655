// `wngan study`: the paper's comparison (SPEC section 1). Trains the vanilla, BN and WN
// DCGANs (optionally WN-affine and the ResNets) on the same data, split and seeds,
// evaluates each on the final test set, and writes results.md / results.csv, gnuplot
// plots, sample strips and a self-contained report.html into one folder.
#include <stb_image.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/report.h"
#include "engine/parallel.h"
#include "gan/image_grid.h"
#include "gan/presets.h"
#include "gan/split.h"
#include "gan/trainer.h"
#include "nn/checkpoint.h"

namespace wn::app {

namespace fs = std::filesystem;

namespace {

// "weight" -> a model of --arch (a DCGAN by default), "resnet-weight" -> a ResNet.
gan::ModelConfig model_for(const std::string& name, const ModelOptions& base) {
  ModelOptions m = base;
  const bool resnet = name.rfind("resnet-", 0) == 0;
  if (resnet) m.arch = "resnet";
  m.norm = resnet ? name.substr(7) : name;
  if (m.image_size.empty()) m.image_size = "0";
  return m.config();
}

// The value of an option for one run: as given (or set by the preset), else what the
// run's architecture implies, else the command's default.
std::string arch_value(CLI::App* cmd, const std::string& option, const std::string& arch, const std::string& given) {
  if (cmd->get_option("--" + option)->count() > 0) return given;
  for (const auto& d : gan::arch_defaults(arch))
    if (d.option == option) return d.value;
  return given;
}

// study.json: the runs a study has finished, with their results, so --resume keeps them.
void write_study_state(const std::string& path, const std::map<std::string, StudyRun>& done) {
  nlohmann::json j = nlohmann::json::object();
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  for (const auto& [key, r] : done)
    j[key] = {{"model", r.model},           {"dir", r.dir},
              {"seed", r.seed},             {"final_test", num(r.final_test)},
              {"final_train", num(r.final_train)}, {"best_running", num(r.best_running)},
              {"train_seconds", r.train_seconds},  {"best_iteration", r.best_iteration},
              {"diverged", r.diverged},     {"eval_iteration", r.eval_iteration},
              {"eval_steps", r.eval_steps}, {"eval_first", r.eval_first}};
  nn::write_file_atomic(path, j.dump(2) + "\n");
}

std::map<std::string, StudyRun> read_study_state(const std::string& path) {
  std::map<std::string, StudyRun> done;
  if (!fs::exists(path)) return done;
  try {
    const nlohmann::json j = nlohmann::json::parse(read_text(path));
    auto num = [](const nlohmann::json& v) { return v.is_number() ? v.get<double>() : NAN; };
    for (auto it = j.begin(); it != j.end(); ++it) {
      const auto& v = it.value();
      StudyRun r;
      r.model = v.at("model").get<std::string>();
      r.dir = v.at("dir").get<std::string>();
      r.seed = v.at("seed").get<uint64_t>();
      r.final_test = num(v.at("final_test"));
      r.final_train = num(v.at("final_train"));
      r.best_running = num(v.at("best_running"));
      r.train_seconds = v.at("train_seconds").get<double>();
      r.best_iteration = v.at("best_iteration").get<int64_t>();
      r.diverged = v.at("diverged").get<bool>();
      r.eval_iteration = v.at("eval_iteration").get<int64_t>();
      r.eval_steps = v.at("eval_steps").get<int64_t>();
      r.eval_first = v.at("eval_first").get<std::string>();
      done[it.key()] = r;
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("{}: not a study state ({}); --force starts the study anew", path, e.what()));
  }
  return done;
}

}  // namespace

void add_study(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    std::string data = "fashion-mnist", models = "none,batch,weight", out = "study", device = "cpu";
    std::string preset, crop, loss = "bce", protocol = "alternating", select_on = "test";
    bool resume = false, force = false;
    int64_t final_test = 2000, running_test = 200;
    int64_t iters = 3000, seeds = 1, batch = 32, test_every = 500, sample_every = 100, eval_n = 500, eval_steps = 200,
            test_steps = 50;
    double lr = 1e-4, rms_eps = 1e-6;
    uint64_t seed = 1;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  o->model.image_size = "";
  o->model.channels = 0;
  CLI::App* cmd = app.add_subcommand("study", "Train vanilla, BN and WN GANs on the same data and compare them (report.html)");
  cmd->add_option("--models", o->models,
                  "Comma-separated: none, batch, weight, weight-affine, resnet-none, resnet-batch, resnet-weight")
      ->capture_default_str();
  cmd->add_option("--data", o->data, "Data set (as for train)")->capture_default_str();
  add_preset_option(cmd, o->preset);
  add_model_options(cmd, o->model);
  cmd->remove_option(cmd->get_option("--norm"));  // --models names the normalizations
  cmd->add_option("--crop", o->crop, "Centre crop S or HxW before resizing (the authors' --crop_size)");
  cmd->add_option("--loss", o->loss, "bce | ls")->capture_default_str()->check(CLI::IsMember({"bce", "ls"}));
  cmd->add_option("--protocol", o->protocol, "alternating | simultaneous (the ResNet's default)")
      ->capture_default_str()
      ->check(CLI::IsMember({"alternating", "simultaneous"}));
  cmd->add_option("--rms-eps", o->rms_eps, "RMSProp epsilon (the ResNet: 1e-8)")
      ->capture_default_str()
      ->check(above(0, 1));
  cmd->add_option("--select-on", o->select_on, "Running test on final-test (test) or training (train) images")
      ->capture_default_str()
      ->check(CLI::IsMember({"test", "train"}));
  cmd->add_option("--running-test", o->running_test, "Images in the running test")->capture_default_str()
      ->check(in_range(0, 1e12));
  cmd->add_option("--iters", o->iters, "Training iterations per model")->capture_default_str()
      ->check(in_range(0, 1e12));
  cmd->add_option("--seeds", o->seeds, "Repeats with seeds seed, seed+1, ... (mean and spread reported)")
      ->capture_default_str()
      ->check(in_range(1, 1000));
  cmd->add_option("--seed", o->seed, "First seed")->capture_default_str();
  cmd->add_option("--batch", o->batch, "Batch size")->capture_default_str()
      ->check(in_range(1, 65536));
  cmd->add_option("--lr", o->lr, "Learning rate (the ResNet: 2e-5)")->capture_default_str()
      ->check(above(0, 1e6));
  cmd->add_option("--test-steps", o->test_steps, "RMSProp steps of the running test")->capture_default_str()
      ->check(in_range(0, 1e9));
  cmd->add_option("--test-every", o->test_every, "Iterations between running tests")->capture_default_str()
      ->check(in_range(0, 1e12));
  cmd->add_option("--sample-every", o->sample_every, "Iterations between sample grids")->capture_default_str()
      ->check(in_range(0, 1e12));
  cmd->add_option("--final-test", o->final_test, "Images in each seed's final test set")->capture_default_str()
      ->check(in_range(1, 1e12));
  cmd->add_option("--final-n,--eval-n", o->eval_n, "Final-test images reconstructed per run")->capture_default_str()
      ->check(in_range(1, 1e12));
  cmd->add_option("--final-steps,--eval-steps", o->eval_steps, "RMSProp steps of the final test")->capture_default_str()
      ->check(in_range(0, 1e9));
  cmd->add_option("--out", o->out, "Study folder")->capture_default_str()
      ->check(non_empty());
  cmd->add_option("--threads", o->threads, "Worker threads (default: all cores)")
      ->check(in_range(0, 4096));
  cmd->add_option("--device", o->device, "cpu | cuda | cuda:N")->capture_default_str();
  add_max_pixels_option(cmd);
  cmd->add_flag("--resume", o->resume,
                "Continue the study in --out: finished runs are kept, an interrupted one resumes, the rest start");
  cmd->add_flag("--force", o->force, "Replace the study in --out (its runs and report are removed)");
  cmd->callback([o, cmd]() {
    apply_preset(cmd, o->preset);
    if (o->resume && o->force) throw std::invalid_argument("--resume and --force exclude each other");
    const std::string state = o->out + "/study.json";
    std::map<std::string, StudyRun> done;  // "model_seedS" -> its results
    if (o->resume) {
      done = read_study_state(state);
    } else if (fs::exists(state) || (fs::exists(o->out + "/runs") && !fs::is_empty(o->out + "/runs"))) {
      if (!o->force)
        throw std::runtime_error(fmt::format("{} holds a study already: --resume continues it, --force replaces it, "
                                             "or choose another --out",
                                             o->out));
      for (const char* name : {"runs", "study.json", "results.md", "results.csv", "report.html", "plots", "strips",
                               "figures"})
        fs::remove_all(o->out + "/" + name);
      for (auto& e : fs::directory_iterator(o->out))
        if (e.path().filename().string().rfind("split_seed", 0) == 0) fs::remove(e.path());
    }
    if (o->threads > 0) set_num_threads(o->threads);
    std::pair<int64_t, int64_t> crop{0, 0};
    if (!o->crop.empty()) crop = parse_size(o->crop, "--crop");
    fs::create_directories(o->out + "/runs");
    std::vector<std::string> models;
    {
      std::stringstream ss(o->models);
      std::string m;
      while (std::getline(ss, m, ','))
        if (!m.empty()) models.push_back(m);
    }
    for (auto& m : models) model_for(m, o->model);  // fail early on a bad name
    std::vector<StudyRun> runs;
    for (int64_t s = 0; s < o->seeds; ++s) {
      const uint64_t seed = o->seed + uint64_t(s);
      for (auto& m : models) {
        gan::TrainConfig c;
        c.model = model_for(m, o->model);
        c.data = o->data;
        c.batch = o->batch;
        const std::string arch = c.model.arch;
        c.lr = std::stod(arch_value(cmd, "lr", arch, fmt::format("{:.17g}", o->lr)));
        c.rms_eps = std::stod(arch_value(cmd, "rms-eps", arch, fmt::format("{:.17g}", o->rms_eps)));
        c.protocol = arch_value(cmd, "protocol", arch, o->protocol);
        c.loss = o->loss;
        c.select_on = o->select_on;
        c.running_test = o->running_test;
        std::tie(c.crop_h, c.crop_w) = crop;
        c.stretch = o->model.image_size.find('x') != std::string::npos;
        c.iters = o->iters;
        c.seed = seed;
        c.final_test = o->final_test;
        c.device = o->device;
        c.test_every = o->test_every;
        c.test_steps = o->test_steps;
        c.sample_every = o->sample_every;
        c.save_every = 0;
        c.out = fmt::format("{}/runs/{}_seed{}", o->out, m, seed);
        // One split per seed, shared by every model of that seed.
        const std::string split = fmt::format("{}/split_seed{}.json", o->out, seed);
        if (fs::exists(split)) c.split_file = split;
        const std::string key = fmt::format("{}_seed{}", m, seed);
        if (done.count(key)) {
          fmt::print(stderr, "\n== {} (seed {}): finished before, kept ({})\n", m, seed, c.out);
          runs.push_back(done.at(key));
          continue;
        }
        // An interrupted run resumes (with this study's --iters); anything else starts anew.
        const bool resume_run = o->resume && fs::exists(c.out + "/checkpoints/last.safetensors");
        if (resume_run) {
          const int64_t iters = c.iters;
          c = gan::load_train_config(c.out);
          c.iters = iters;
          c.device = o->device;
        } else {
          c.force = true;  // leftovers of a run that never saved are replaced
        }
        fmt::print(stderr, "\n== {} (seed {}): {} iterations -> {}{}\n", m, seed, c.iters, c.out,
                   resume_run ? " (resumed)" : "");
        const auto t0 = std::chrono::steady_clock::now();
        gan::Trainer t(c, resume_run);
        if (!fs::exists(split)) gan::save_split(split, t.split());
        t.running_test = running_test_hook(c.model.code, c.test_steps);
        bool diverged = false;
        try {
          if (!t.run()) {
            fmt::print(stderr, "study interrupted; `wngan study --resume --out {}` continues it\n", o->out);
            throw CLI::RuntimeError(128 + t.interrupted_by());
          }
        } catch (const gan::DivergedError& e) {
          fmt::print(stderr, "\n{}: {}\n", m, e.what());
          diverged = true;
        }
        StudyRun r;
        r.model = m;
        r.seed = seed;
        r.dir = c.out;
        r.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        // A run that ended before its first running test has no best: its last checkpoint is tested.
        r.best_running = t.best_iteration() >= 0 ? t.best_loss() : NAN;
        r.best_iteration = t.best_iteration();
        r.diverged = diverged;
        const std::string ckpt = fs::exists(c.out + "/checkpoints/best.safetensors") ? "best" : "last";
        if (fs::exists(c.out + "/checkpoints/" + ckpt + ".safetensors")) {
          EvalRequest e;
          e.run = c.out;
          e.checkpoint = ckpt;
          e.n = o->eval_n;
          e.steps = o->eval_steps;
          e.device = o->device;
          EvalResult er = evaluate_run(e);
          r.final_test = er.test_loss;
          r.final_train = er.train_loss;
          r.eval_iteration = er.iteration;
          r.eval_steps = e.steps;
          r.eval_first = er.first_file;
          fmt::print(stderr, "{}: final test loss {:.6f} (training images {:.6f}, {} checkpoint)\n", m, er.test_loss,
                     er.train_loss, ckpt);
        }
        done[key] = r;
        write_study_state(state, done);
        runs.push_back(r);
      }
    }
    StudyReport rep;
    rep.title = fmt::format("wngan study: {} on {}, {} iterations, {} seed(s)", o->models, o->data, o->iters, o->seeds);
    rep.runs = runs;
    rep.eval_n = o->eval_n;
    rep.eval_steps = o->eval_steps;
    write_study_report(o->out, rep);
    fmt::print("\n{}\nwrote {}/results.md, results.csv, plots and {}/report.html\n", read_text(o->out + "/results.md"),
               o->out, o->out);
  });
}

}  // namespace wn::app
