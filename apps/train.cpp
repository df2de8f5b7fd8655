// `wngan train`: trains a GAN with the paper's protocol (gan/trainer.h), with the
// running reconstruction test of eval/ every --test-every iterations, and ends with the
// final test and a one-run report (eval/report.h).
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "gan/signals.h"
#include "engine/backend/backend.h"
#include "engine/dist/comm.h"
#include "engine/parallel.h"
#include "eval/report.h"
#include "eval/run_eval.h"
#include "gan/run_config.h"
#include "gan/trainer.h"

namespace wn::app {

// On --resume: applies the options that may change (saying so) and refuses any other
// option that disagrees with the run's config.json, naming it.
std::vector<std::string> resume_changes(CLI::App* cmd, gan::TrainConfig& run, const gan::TrainConfig& given) {
  std::vector<std::string> notes;
  auto given_opt = [&](const char* name) { return cmd->get_option(name)->count() > 0; };
  // An option that may change on resume: applied when given and different, with a note.
  auto may_change = [&](const char* name, int64_t gan::TrainConfig::*field) {
    if (!given_opt(name) || given.*field == run.*field) return;
    notes.push_back(fmt::format("{}: {} (was {})", name, given.*field, run.*field));
    run.*field = given.*field;
  };
  may_change("--iters", &gan::TrainConfig::iters);
  may_change("--sample-every", &gan::TrainConfig::sample_every);
  may_change("--trace-grads", &gan::TrainConfig::trace_grads);
  may_change("--save-every", &gan::TrainConfig::save_every);
  if (given_opt("--log-every")) run.log_every = given.log_every;
  run.device = given.device;
  if (given_opt("--split")) throw std::invalid_argument("--split: a resumed run keeps its own split.json");
  // Everything else is part of the run: given, it must agree.
  const nlohmann::json a = gan::train_to_json(run), b = gan::train_to_json(given);
  const std::vector<std::pair<const char*, std::vector<const char*>>> fixed = {
      {"--data", {"/data"}},         {"--batch", {"/batch"}},           {"--lr", {"/lr"}},
      {"--rms-eps", {"/rms_eps"}},   {"--protocol", {"/protocol"}},     {"--loss", {"/loss"}},
      {"--seed", {"/seed"}},         {"--final-test", {"/final_test"}}, {"--test-every", {"/test_every"}},
      {"--running-test", {"/running_test"}},
      {"--test-steps", {"/test_steps"}}, {"--select-on", {"/select_on"}}, {"--crop", {"/crop"}},
      {"--arch", {"/model/arch"}},   {"--norm", {"/model/norm"}},       {"--nf", {"/model/nf"}},
      {"--code", {"/model/code"}},   {"--nlayer", {"/model/nlayer"}},   {"--features", {"/model/features"}},
      {"--blocks", {"/model/blocks"}}, {"--channels", {"/model/channels"}},
      {"--image-size", {"/model/height", "/model/width"}}};
  std::string conflicts;
  if (given_opt("--sync-bn") && given.sync_bn != run.sync_bn)
    conflicts += fmt::format("\n  --sync-bn: the run has {}, {} given", run.sync_bn, given.sync_bn);
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
    ModelOptions model = ModelOptions::sized_by_data();
    gan::TrainConfig train;
    std::string resume, loss = "bce", protocol = "alternating", device = "cpu";
    int threads = 0;
    int64_t final_n = 500, final_steps = 200;
    bool final_test = true;
    std::string preset, crop;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("train", "Train a GAN with the paper's protocol (default: the WN DCGAN on Fashion-MNIST)");
  add_model_options(cmd, o->model);
  auto& t = o->train;
  cmd->add_option("--data", t.data, "fashion-mnist | mnist:DIR | cifar10:DIR | folder:DIR | lsun:DIR")->capture_default_str();
  add_checked(cmd, "--batch", t.batch, "Batch size", in_range(1, 65536));
  add_preset_option(cmd, o->preset);
  add_checked(cmd, "--lr", t.lr, "Learning rate of G and D (RMSProp; the ResNet: 2e-5)", above(0, 1e6));
  add_checked(cmd, "--rms-eps", t.rms_eps, "RMSProp epsilon of G and D (the ResNet: 1e-8)", above(0, 1));
  add_checked(cmd, "--protocol", o->protocol,
              "alternating (D on real and fake batches, then G: the paper) | simultaneous (one fake batch for G "
              "and D: the authors' ResNet code, the ResNet's default)",
              CLI::IsMember({"alternating", "simultaneous"}));
  cmd->add_option("--crop", o->crop, "Centre crop S or HxW before resizing (the authors' --crop_size)");
  add_checked(cmd, "--select-on", t.select_on,
              "Running test (and the 'best' checkpoint) on final-test images (test: the paper) or on training "
              "images (train: the final test stays unseen by model selection)",
              CLI::IsMember({"test", "train"}));
  add_checked(cmd, "--iters", t.iters, "Total iterations of the run", in_range(0, 1e12));
  add_checked(cmd, "--loss", o->loss, "bce | ls (least squares on D's sigmoid output, the authors' --ls)",
              CLI::IsMember({"bce", "ls"}));
  cmd->add_option("--seed", t.seed, "Random seed (initialisation, split, batches, codes)")
      ->capture_default_str()
      ->check(seed_value());
  add_checked(cmd, "--out", t.out, "Run folder", non_empty());
  cmd->add_option("--resume", o->resume,
                  "Continue the run in this folder up to --iters (--iters, --sample-every, --trace-grads, --save-every, "
                  "--log-every and --device may change; other options must agree with its config.json)");
  cmd->add_flag("--sync-bn", t.sync_bn,
                "Under mpirun: batch-norm statistics over the global batch (default: each rank's slice, as PyTorch's DDP)");
  cmd->add_flag("--force", t.force, "Replace the run already in --out (its checkpoints, samples and report are removed)");
  cmd->add_option("--split", t.split_file, "Reuse this split.json");
  add_checked(cmd, "--final-test", t.final_test, "Images in the final test set", in_range(1, 1e12));
  add_checked(cmd, "--running-test", t.running_test,
              "Images in the running test (the first of the final-test set, or of the training set with --select-on "
              "train)",
              in_range(0, 1e12));
  add_checked(cmd, "--sample-every", t.sample_every, "Iterations between sample grids", in_range(0, 1e12));
  add_checked(cmd, "--trace-grads", t.trace_grads,
              "Trace the gradient flow per layer at iteration 1 and every N (RUN/grad_trace.csv; 0: off)",
              in_range(0, 1e12));
  cmd->add_option("--test-every", t.test_every,
                  "Iterations between running tests (and 'last' saves); 0: none; auto: --iters / 10, at most 1000 "
                  "(10 points over a short run)")
      ->check(in_range(0, 1e12))
      ->default_str("auto");
  add_checked(cmd, "--test-steps", t.test_steps, "RMSProp steps of the running test", in_range(0, 1e9));
  add_checked(cmd, "--save-every", t.save_every, "Iterations between numbered checkpoints (0: none)",
              in_range(0, 1e12));
  add_checked(cmd, "--log-every", t.log_every, "Iterations between progress lines when not on a terminal",
              in_range(1, 1e12));
  cmd->add_option("--threads", o->threads, "Worker threads (default: all cores)")
      ->check(in_range(0, 4096));
  cmd->add_option("--device", o->device, "cpu | cuda | cuda:N")->capture_default_str();
  add_max_pixels_option(cmd);
  cmd->add_flag("!--no-final-test", o->final_test, "Skip the final reconstruction test and report at the end")
      ->default_str("");
  add_checked(cmd, "--final-n", o->final_n, "Final-test images reconstructed at the end (wngan eval does all)",
              in_range(1, 1e12));
  add_checked(cmd, "--final-steps", o->final_steps, "RMSProp steps of that final test", in_range(0, 1e9));
  group_options(cmd, {{"Data", {"--data", "--image-size", "--crop", "--channels", "--max-image-pixels", "--split",
                                  "--final-test"}},
                      {"Model", {"--arch", "--norm", "--nf", "--code", "--nlayer", "--features", "--blocks"}},
                      {"Training", {"--preset", "--iters", "--batch", "--lr", "--rms-eps", "--protocol", "--loss",
                                    "--seed", "--sync-bn"}},
                      {"Evaluation", {"--select-on", "--running-test", "--test-every", "--test-steps", "--no-final-test", "--final-n",
                                      "--final-steps"}},
                      {"Output", {"--out", "--resume", "--force", "--sample-every", "--save-every", "--trace-grads",
                                  "--log-every"}},
                      {"Performance", {"--threads", "--device"}}});
  cmd->callback([o, cmd]() {
    gan::StopSignals signals;  // a signal at any point stops the command (rc 128 + signal)
    if (o->threads > 0) set_num_threads(o->threads);
    gan::TrainConfig cfg;
    const bool resume = !o->resume.empty();
    if (resume && !o->preset.empty())
      throw std::invalid_argument("--preset sets up a new run; --resume continues with the run's own config.json");
    if (resume && o->train.force) throw std::invalid_argument("--force starts the run anew; it cannot go with --resume");
    if (resume && cmd->get_option("--out")->count() > 0 && o->train.out != o->resume)
      throw std::invalid_argument(fmt::format("--resume {} and --out {} name different folders", o->resume, o->train.out));
    // A study's runs are the study's: train into one would replace a row of its table.
    {
      const std::filesystem::path run = std::filesystem::absolute(resume ? o->resume : o->train.out).lexically_normal();
      const std::filesystem::path study = run.parent_path().parent_path();
      if (run.parent_path().filename() == "runs" && std::filesystem::exists(study / "study.json"))
        throw std::invalid_argument(fmt::format("{} is a run of the study {}; use `wngan study --resume {}`",
                                                run.string(), study.string(), study.string()));
    }
    if (!resume) {
      apply_preset(cmd, o->preset);
      apply_arch_defaults(cmd, o->model.arch);
    }
    // The configuration the options describe.
    gan::TrainConfig given = o->train;
    if (cmd->get_option("--test-every")->count() == 0) given.test_every = gan::auto_test_every(given.iters);
    given.loss = gan::parse_loss(o->loss);
    given.protocol = gan::parse_protocol(o->protocol);
    given.device = Device::parse(o->device);
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
    dist::Comm& world = dist::world();
    // With --device cuda each rank takes the GPU of its local rank.
    if (world.size() > 1 && cfg.device.type == DeviceType::CUDA && o->device.find(':') == std::string::npos)
      cfg.device = Device{DeviceType::CUDA, world.local_rank()};
    gan::Trainer trainer(cfg, resume, &world);
    const bool root = world.is_root();
    auto say = [root](const std::string& s) {
      if (root) fmt::print(stderr, "{}", s);
    };
    trainer.running_test = eval::running_test_hook(trainer.config().model.code, trainer.config().test_steps);
    const gan::TrainConfig& tc = trainer.config();
    say(fmt::format("model: {}\ndata: {}\ntraining: {} iterations, batch size {}, RMSProp lr {:g} eps {:g}, {} "
                    "protocol, {} loss, seed {}\nrun folder {}: {} training images, {} final-test images, running test "
                    "of {} images every {} iterations\n",
                    tc.model.describe(), trainer.data().describe(), tc.iters, tc.batch, tc.lr, tc.rms_eps,
                    gan::protocol_name(tc.protocol), gan::loss_name(tc.loss), tc.seed, tc.out,
                    trainer.split().train.size(), trainer.split().final_test.size(),
                    trainer.split().running_test.size(), tc.test_every));
    if (world.size() > 1)
      say(fmt::format("data-parallel over {} ranks: {} images of each batch of {} per rank{}; gradients summed by {}\n",
                      world.size(), cfg.batch / world.size(), cfg.batch,
                      cfg.sync_bn ? ", batch norm over the global batch" : "", world.reduce_path(cfg.device)));
    if (resume) say(fmt::format("resuming at iteration {}\n", trainer.iteration()));
    // A finished run with its final test done: nothing to train or test again.
    if (resume && trainer.iteration() >= tc.iters && o->final_test && std::filesystem::exists(gan::RunDir(tc.out).report() + "/report.html")) {
      say(fmt::format("{} finished at iteration {} and has its final test ({}/report/report.html); nothing to do: "
                      "--iters N trains on, `wngan eval {}` tests again\n",
                      tc.out, trainer.iteration(), tc.out, tc.out));
      gan::throw_if_stopped();  // a signal during the start still ends the command with 128 + signal
      return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    if (!trainer.run()) throw CLI::RuntimeError(128 + trainer.interrupted_by());
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const Device dev = trainer.config().device;
    if (root) {
      fmt::print(stderr, "done: {} iterations in {:.0f} s; checkpoints in {}/checkpoints{}\n", trainer.iteration(), secs,
                 trainer.config().out,
                 trainer.best_iteration() >= 0
                     ? fmt::format(" (best running test {:.6f} at iteration {})", trainer.best_loss(), trainer.best_iteration())
                     : "");
      if (world.size() > 1)
        fmt::print(stderr, "all-reduce: rank 0 spent {:.2f} s averaging gradients over {} ranks ({:.1f}% of the run)\n",
                   trainer.data_parallel().reduce_seconds(), world.size(),
                   100 * trainer.data_parallel().reduce_seconds() / std::max(secs, 1e-9));
      fmt::print(stderr, "data path: the trainer waited {:.2f} s for batches in total ({:.1f}% of the run)\n",
                 trainer.data_wait_seconds(), 100 * trainer.data_wait_seconds() / std::max(secs, 1e-9));
      if (dev != kCPU) fmt::print(stderr, "convolutions on {}: {}\n", dev.str(), backend_for(dev).conv_library());
    }
    if (trainer.iteration() == 0) {
      say(fmt::format("--iters 0: nothing trained, so no final test; {}/checkpoints holds the untrained model\n", tc.out));
      gan::throw_if_stopped();
      return;
    }
    if (!o->final_test) return;
    // The final test and a one-run report, so that a run ends with its measure: the images
    // split over the ranks, rank 0 writing the outputs and the report.
    eval::EvalRequest e;
    e.run = trainer.config().out;
    e.checkpoint = root ? eval::final_checkpoint(e.run) : "";
    e.n = o->final_n;
    e.steps = o->final_steps;
    e.device = dev;
    e.comm = &world;
    e.yardsticks = true;
    eval::EvalResult r = eval::evaluate_run(e);
    if (!root) return;
    fmt::print("final test ({} checkpoint, iteration {}, {} steps): reconstruction error {:.6f} on {} final-test images; "
               "yardsticks on the same images: untrained generator {:.6f}, mean training image {:.6f}; {} training "
               "images {:.6f}\n",
               e.checkpoint, r.iteration, e.steps, r.test_loss, r.n, r.untrained_loss, r.mean_image_loss, r.n,
               r.train_loss);
    eval::write_run_report(trainer, r, e.steps, secs);
    gan::throw_if_stopped();  // a signal while the report was written still stops the command
    fmt::print("{}\nreport: {}/report/report.html\n", eval::run_headline(trainer.config(), trainer.iteration(),
                                                                         r.test_loss, r.n),
               e.run);
  });
}

}  // namespace wn::app
