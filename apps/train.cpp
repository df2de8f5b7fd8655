// `wngan train`: trains a GAN with the paper's protocol (gan/trainer.h), with the
// running reconstruction test of eval/ every --test-every iterations.
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "apps/commands.h"
#include "apps/report.h"
#include "engine/backend/backend.h"
#include "engine/parallel.h"
#include "eval/reconstruct.h"
#include "gan/run_config.h"
#include "gan/trainer.h"

namespace wn::app {

namespace fs = std::filesystem;

std::function<double(nn::Module&, const Tensor&)> running_test_hook(int64_t code, int64_t steps) {
  return [code, steps](nn::Module& G, const Tensor& images) {
    eval::ReconstructOptions o;
    o.steps = steps;
    return eval::reconstruct(G, code, images, o).mean_loss;
  };
}

// On --resume: applies the options that may change (saying so) and refuses any other
// option that disagrees with the run's config.json, naming it.
std::vector<std::string> resume_changes(CLI::App* cmd, gan::TrainConfig& run, const gan::TrainConfig& given) {
  std::vector<std::string> notes;
  auto given_opt = [&](const char* name) { return cmd->get_option(name)->count() > 0; };
  if (given_opt("--iters") && given.iters != run.iters) {
    notes.push_back(fmt::format("--iters: {} (was {})", given.iters, run.iters));
    run.iters = given.iters;
  }
  if (given_opt("--sample-every") && given.sample_every != run.sample_every) {
    notes.push_back(fmt::format("--sample-every: {} (was {})", given.sample_every, run.sample_every));
    run.sample_every = given.sample_every;
  }
  if (given_opt("--save-every") && given.save_every != run.save_every) {
    notes.push_back(fmt::format("--save-every: {} (was {})", given.save_every, run.save_every));
    run.save_every = given.save_every;
  }
  if (given_opt("--log-every")) run.log_every = given.log_every;
  run.device = given.device;
  if (given_opt("--split")) throw std::invalid_argument("--split: a resumed run keeps its own split.json");
  // Everything else is part of the run: given, it must agree.
  const nlohmann::json a = gan::train_to_json(run), b = gan::train_to_json(given);
  const std::vector<std::pair<const char*, std::vector<const char*>>> fixed = {
      {"--data", {"/data"}},         {"--batch", {"/batch"}},           {"--lr", {"/lr"}},
      {"--rms-eps", {"/rms_eps"}},   {"--protocol", {"/protocol"}},     {"--loss", {"/loss"}},
      {"--seed", {"/seed"}},         {"--final-test", {"/final_test"}}, {"--test-every", {"/test_every"}},
      {"--test-steps", {"/test_steps"}}, {"--select-on", {"/select_on"}}, {"--crop", {"/crop"}},
      {"--arch", {"/model/arch"}},   {"--norm", {"/model/norm"}},       {"--nf", {"/model/nf"}},
      {"--code", {"/model/code"}},   {"--nlayer", {"/model/nlayer"}},   {"--features", {"/model/features"}},
      {"--blocks", {"/model/blocks"}}, {"--channels", {"/model/channels"}},
      {"--image-size", {"/model/height", "/model/width"}}};
  std::string conflicts;
  for (const auto& [opt, paths] : fixed) {
    if (!given_opt(opt)) continue;
    for (const char* p : paths) {
      const auto ptr = nlohmann::json::json_pointer(p);
      if (a.at(ptr) != b.at(ptr)) {
        conflicts += fmt::format("\n  {}: the run has {}, {} given", opt, a.at(ptr).dump(), b.at(ptr).dump());
        break;
      }
    }
  }
  if (!conflicts.empty())
    throw std::invalid_argument(fmt::format("--resume {}: these options differ from the run's config.json (a resumed "
                                            "run keeps them; start a new run to change them):{}",
                                            run.out, conflicts));
  return notes;
}

void add_train(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    gan::TrainConfig train;
    std::string resume;
    int threads = 0;
    int64_t final_n = 500, final_steps = 200;
    bool final_test = true;
    std::string preset, crop;
  };
  auto o = std::make_shared<Opts>();
  o->model.image_size = "";
  o->model.channels = 0;
  CLI::App* cmd = app.add_subcommand("train", "Train a GAN with the paper's protocol (default: the WN DCGAN on Fashion-MNIST)");
  add_model_options(cmd, o->model);
  auto& t = o->train;
  cmd->add_option("--data", t.data, "fashion-mnist | mnist:DIR | cifar10:DIR | folder:DIR | lsun:DIR")->capture_default_str();
  cmd->add_option("--batch", t.batch, "Batch size")->capture_default_str()
      ->check(in_range(1, 65536));
  add_preset_option(cmd, o->preset);
  cmd->add_option("--lr", t.lr, "Learning rate of G and D (RMSProp; the ResNet: 2e-5)")
      ->capture_default_str()
      ->check(above(0, 1e6));
  cmd->add_option("--rms-eps", t.rms_eps, "RMSProp epsilon of G and D (the ResNet: 1e-8)")
      ->capture_default_str()
      ->check(above(0, 1));
  cmd->add_option("--protocol", t.protocol,
                  "alternating (D on real and fake batches, then G: the paper) | simultaneous (one fake batch for G "
                  "and D: the authors' ResNet code, the ResNet's default)")
      ->capture_default_str()
      ->check(CLI::IsMember({"alternating", "simultaneous"}));
  cmd->add_option("--crop", o->crop, "Centre crop S or HxW before resizing (the authors' --crop_size)");
  cmd->add_option("--select-on", t.select_on,
                  "Running test (and the 'best' checkpoint) on final-test images (test: the paper) or on training "
                  "images (train: the final test stays unseen by model selection)")
      ->capture_default_str()
      ->check(CLI::IsMember({"test", "train"}));
  cmd->add_option("--iters", t.iters, "Total iterations of the run")->capture_default_str()
      ->check(in_range(0, 1e12));
  cmd->add_option("--loss", t.loss, "bce | ls (least squares on D's sigmoid output, the authors' --ls)")
      ->capture_default_str()
      ->check(CLI::IsMember({"bce", "ls"}));
  cmd->add_option("--seed", t.seed, "Random seed (initialisation, split, batches, codes)")->capture_default_str();
  cmd->add_option("--out", t.out, "Run folder")->capture_default_str()
      ->check(non_empty());
  cmd->add_option("--resume", o->resume,
                  "Continue the run in this folder up to --iters (--iters, --sample-every, --save-every, --log-every "
                  "and --device may change; other options must agree with its config.json)");
  cmd->add_flag("--force", t.force, "Replace the run already in --out (its checkpoints, samples and report are removed)");
  cmd->add_option("--split", t.split_file, "Reuse this split.json");
  cmd->add_option("--final-test", t.final_test, "Images in the final test set")->capture_default_str()
      ->check(in_range(1, 1e12));
  cmd->add_option("--sample-every", t.sample_every, "Iterations between sample grids")->capture_default_str()
      ->check(in_range(0, 1e12));
  cmd->add_option("--test-every", t.test_every, "Iterations between running tests (and 'last' saves)")->capture_default_str()
      ->check(in_range(0, 1e12));
  cmd->add_option("--test-steps", t.test_steps, "RMSProp steps of the running test")->capture_default_str()
      ->check(in_range(0, 1e9));
  cmd->add_option("--save-every", t.save_every, "Iterations between numbered checkpoints (0: none)")->capture_default_str()
      ->check(in_range(0, 1e12));
  cmd->add_option("--log-every", t.log_every, "Iterations between progress lines when not on a terminal")->capture_default_str()
      ->check(in_range(1, 1e12));
  cmd->add_option("--threads", o->threads, "Worker threads (default: all cores)")
      ->check(in_range(0, 4096));
  cmd->add_option("--device", o->train.device, "cpu | cuda | cuda:N")->capture_default_str();
  add_max_pixels_option(cmd);
  cmd->add_flag("!--no-final-test", o->final_test, "Skip the final reconstruction test and report at the end");
  cmd->add_option("--final-n", o->final_n, "Final-test images reconstructed at the end (wngan eval does all)")
      ->capture_default_str()
      ->check(in_range(1, 1e12));
  cmd->add_option("--final-steps", o->final_steps, "RMSProp steps of that final test")->capture_default_str()
      ->check(in_range(0, 1e9));
  cmd->callback([o, cmd]() {
    if (o->threads > 0) set_num_threads(o->threads);
    gan::TrainConfig cfg;
    const bool resume = !o->resume.empty();
    if (resume && !o->preset.empty())
      throw std::invalid_argument("--preset sets up a new run; --resume continues with the run's own config.json");
    if (resume && o->train.force) throw std::invalid_argument("--force starts the run anew; it cannot go with --resume");
    if (!resume) {
      apply_preset(cmd, o->preset);
      apply_arch_defaults(cmd, o->model.arch);
    }
    // The configuration the options describe.
    gan::TrainConfig given = o->train;
    {
      ModelOptions m = o->model;
      if (m.image_size.empty()) m.image_size = "0";
      given.model = m.config();
      given.stretch = m.image_size.find('x') != std::string::npos;
      if (!o->crop.empty()) std::tie(given.crop_h, given.crop_w) = parse_size(o->crop, "--crop");
    }
    if (resume) {
      cfg = gan::load_train_config(o->resume);
      for (const std::string& note : resume_changes(cmd, cfg, given)) fmt::print(stderr, "{}\n", note);
    } else {
      cfg = given;
    }
    gan::Trainer trainer(cfg, resume);
    trainer.running_test = running_test_hook(trainer.config().model.code, trainer.config().test_steps);
    fmt::print(stderr, "{}\n{}\nrun folder {}: {} training images, final test {}, running test {}\n",
               trainer.config().model.describe(), trainer.data().describe(), trainer.config().out,
               trainer.split().train.size(), trainer.split().final_test.size(), trainer.split().running_test.size());
    if (resume) fmt::print(stderr, "resuming at iteration {}\n", trainer.iteration());
    const auto t0 = std::chrono::steady_clock::now();
    if (!trainer.run()) throw CLI::RuntimeError(128 + trainer.interrupted_by());
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print(stderr, "done: {} iterations in {:.0f} s; checkpoints in {}/checkpoints{}\n", trainer.iteration(), secs,
               trainer.config().out,
               trainer.best_iteration() >= 0
                   ? fmt::format(" (best running test {:.6f} at iteration {})", trainer.best_loss(), trainer.best_iteration())
                   : "");
    fmt::print(stderr, "data path: the trainer waited {:.2f} s for batches in total ({:.1f}% of the run)\n",
               trainer.data_wait_seconds(), 100 * trainer.data_wait_seconds() / std::max(secs, 1e-9));
    const Device dev = Device::parse(trainer.config().device);
    if (dev != kCPU) fmt::print(stderr, "convolutions on {}: {}\n", dev.str(), backend_for(dev).conv_library());
    if (!o->final_test || trainer.iteration() == 0) return;
    // The final test and a one-run report, so that a run ends with its measure.
    EvalRequest e;
    e.run = trainer.config().out;
    e.checkpoint = fs::exists(e.run + "/checkpoints/best.safetensors") ? "best" : "last";
    e.n = o->final_n;
    e.steps = o->final_steps;
    e.device = trainer.config().device;
    EvalResult r = evaluate_run(e);
    fmt::print("final test ({} checkpoint, iteration {}): reconstruction loss {:.6f} on {} final-test images ({} steps); "
               "training images {:.6f}\n",
               e.checkpoint, r.iteration, r.test_loss, r.n, e.steps, r.train_loss);
    StudyRun run;
    run.model = gan::norm_name(trainer.config().model.norm);
    run.seed = trainer.config().seed;
    run.dir = e.run;
    run.final_test = r.test_loss;
    run.final_train = r.train_loss;
    run.eval_iteration = r.iteration;
    run.eval_steps = e.steps;
    run.eval_first = r.first_file;
    run.best_running = trainer.best_loss();
    run.best_iteration = trainer.best_iteration();
    run.train_seconds = secs;
    StudyReport rep;
    rep.title = fmt::format("wngan run {}: {} on {}, {} iterations", e.run, trainer.config().model.describe(),
                            trainer.config().data, trainer.iteration());
    rep.runs = {run};
    rep.eval_n = r.n;
    rep.eval_steps = e.steps;
    write_study_report(e.run + "/report", rep);
    fmt::print("report: {}/report/report.html\n", e.run);
  });
}

}  // namespace wn::app
