// `wngan study`: the paper's comparison (docs/paper.md section 1, eval/study.h). Trains the
// vanilla, BN and WN DCGANs (optionally WN-affine and the ResNets) on the same data, split
// and seeds, evaluates each on the final test set, and writes results.md / results.csv,
// gnuplot plots, sample strips and a self-contained report.html into one folder.
#include <memory>
#include <string>
#include <tuple>

#include <fmt/format.h>

#include "apps/commands.h"
#include "gan/signals.h"
#include "engine/dist/comm.h"
#include "engine/parallel.h"
#include "eval/study.h"
#include "gan/presets.h"
#include "gan/run_config.h"
#include "gan/trainer.h"

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
std::string arch_value(CLI::App* cmd, const std::string& option, gan::Arch arch, const std::string& given) {
  if (cmd->get_option("--" + option)->count() > 0) return given;
  for (const auto& d : gan::arch_defaults(arch))
    if (d.option == option) return d.value;
  return given;
}

}  // namespace

void add_study(CLI::App& app) {
  struct Opts {
    ModelOptions model = ModelOptions::sized_by_data();
    std::string data = "fashion-mnist", models = "none,batch,weight", out = "study", device = "cpu";
    std::string preset, crop, loss = "bce", protocol = "alternating", select_on = "test";
    bool resume = false, force = false;
    std::string resume_dir;
    int64_t final_test = 2000, running_test = 200;
    int64_t iters = 3000, seeds = 1, batch = 32, test_every = 500, sample_every = 100, eval_n = 500, eval_steps = 200,
            test_steps = 50, trace_grads = 0, save_every = 0;
    double lr = 1e-4, rms_eps = nn::kPaperRMSPropEps;
    uint64_t seed = 1;
    int threads = 0, ranks_per_run = 1;
    double gather_timeout = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("study", "Train vanilla, BN and WN GANs on the same data and compare them (report.html)");
  cmd->add_option("--models", o->models,
                  "Comma-separated: none, batch, weight, weight-affine, resnet-none, resnet-batch, resnet-weight")
      ->capture_default_str();
  cmd->add_option("--data", o->data, "Data set (as for train)")->capture_default_str();
  add_preset_option(cmd, o->preset);
  add_model_options(cmd, o->model);
  cmd->remove_option(cmd->get_option("--norm"));  // --models names the normalizations
  cmd->add_option("--crop", o->crop, "Centre crop S or HxW before resizing (the authors' --crop_size)");
  add_checked(cmd, "--loss", o->loss, "bce | ls", CLI::IsMember({"bce", "ls"}));
  add_checked(cmd, "--protocol", o->protocol, "alternating | simultaneous (the ResNet's default)",
              CLI::IsMember({"alternating", "simultaneous"}));
  add_checked(cmd, "--rms-eps", o->rms_eps, "RMSProp epsilon (the ResNet: 1e-8)", above(0, 1));
  add_checked(cmd, "--select-on", o->select_on, "Running test on final-test (test) or training (train) images",
              CLI::IsMember({"test", "train"}));
  add_checked(cmd, "--running-test", o->running_test, "Images in the running test", in_range(0, 1e12));
  add_checked(cmd, "--iters", o->iters, "Training iterations per model", in_range(0, 1e12));
  add_checked(cmd, "--seeds", o->seeds, "Repeats with seeds seed, seed+1, ... (mean and spread reported)",
              in_range(1, 1000));
  cmd->add_option("--seed", o->seed, "First seed")->capture_default_str()->check(seed_value());
  add_checked(cmd, "--batch", o->batch, "Batch size", in_range(1, 65536));
  add_checked(cmd, "--lr", o->lr, "Learning rate (the ResNet: 2e-5)", above(0, 1e6));
  add_checked(cmd, "--test-steps", o->test_steps, "RMSProp steps of the running test", in_range(0, 1e9));
  cmd->add_option("--test-every", o->test_every,
                  "Iterations between running tests; 0: none; auto: --iters / 10, at most 1000")
      ->check(in_range(0, 1e12))
      ->default_str("auto");
  add_checked(cmd, "--sample-every", o->sample_every, "Iterations between sample grids", in_range(0, 1e12));
  add_checked(cmd, "--save-every", o->save_every,
              "Iterations between each run's numbered checkpoints (0: none; kept for later evals)", in_range(0, 1e12));
  add_checked(cmd, "--trace-grads", o->trace_grads,
              "Trace each model's gradient flow at iteration 1 and every N (its grad_trace.csv; 0: off)",
              in_range(0, 1e12));
  add_checked(cmd, "--final-test", o->final_test, "Images in each seed's final test set", in_range(1, 1e12));
  add_checked(cmd, "--final-n,--eval-n", o->eval_n, "Final-test images reconstructed per run", in_range(1, 1e12));
  add_checked(cmd, "--final-steps,--eval-steps", o->eval_steps, "RMSProp steps of the final test", in_range(0, 1e9));
  add_checked(cmd, "--out", o->out, "Study folder", non_empty());
  cmd->add_option("--threads", o->threads, "Worker threads (default: all cores)")
      ->check(in_range(0, 4096));
  cmd->add_option("--device", o->device, "cpu | cuda | cuda:N")->capture_default_str();
  add_max_pixels_option(cmd);
  cmd->add_option("--resume", o->resume_dir,
                  "Continue the study in this folder (as train --resume RUN; alone: the one in --out): finished runs "
                  "are kept, an interrupted one resumes, the rest start")
      ->expected(0, 1)
      ->default_str("");
  cmd->add_flag("--force", o->force, "Replace the study in --out (its runs and report are removed)");
  add_checked(cmd, "--gather-timeout", o->gather_timeout,
              "Under mpirun: seconds the ranks wait for each other's results at the end (0: 4 x the rank's own "
              "training time, at least WNGAN_DIST_TIMEOUT)",
              in_range(0, 1e9));
  add_checked(cmd, "--ranks-per-run", o->ranks_per_run,
              "Under mpirun: ranks that train each run together (data-parallel; runs are dealt out to the groups)",
              in_range(1, 1 << 20));
  group_options(cmd, {{"Data", {"--data", "--image-size", "--crop", "--channels", "--max-image-pixels", "--final-test"}},
                      {"Models", {"--models", "--arch", "--nf", "--code", "--nlayer", "--features", "--blocks"}},
                      {"Training", {"--preset", "--iters", "--seeds", "--seed", "--batch", "--lr", "--rms-eps",
                                    "--protocol", "--loss"}},
                      {"Evaluation", {"--select-on", "--running-test", "--test-every", "--test-steps", "--final-n",
                                      "--final-steps"}},
                      {"Output", {"--out", "--resume", "--force", "--sample-every", "--save-every", "--trace-grads"}},
                      {"Performance", {"--threads", "--device", "--gather-timeout", "--ranks-per-run"}}});
  cmd->callback([o, cmd]() {
    gan::StopSignals signals;  // a signal at any point stops the command (rc 128 + signal)
    if (cmd->get_option("--resume")->count() > 0) {
      o->resume = true;
      if (!o->resume_dir.empty()) {
        if (cmd->get_option("--out")->count() > 0 && o->out != o->resume_dir)
          throw std::invalid_argument(fmt::format("--resume {} and --out {} name different folders", o->resume_dir, o->out));
        o->out = o->resume_dir;
      }
    }
    apply_preset(cmd, o->preset);
    const bool test_every_given = cmd->get_option("--test-every")->count() > 0;
    if (!test_every_given) o->test_every = gan::auto_test_every(o->iters);
    if (o->resume && o->force) throw std::invalid_argument("--resume and --force exclude each other");
    if (o->threads > 0) set_num_threads(o->threads);
    std::pair<int64_t, int64_t> crop{0, 0};
    if (!o->crop.empty()) crop = parse_size(o->crop, "--crop");
    dist::Comm& world = dist::world();
    Device device = Device::parse(o->device);
    // With --device cuda each rank takes the GPU of its local rank.
    if (world.size() > 1 && device.type == DeviceType::CUDA && o->device.find(':') == std::string::npos)
      device = Device{DeviceType::CUDA, world.local_rank()};
    eval::StudyPlan plan;
    plan.out = o->out;
    plan.resume = o->resume;
    plan.force = o->force;
    plan.test_every_given = test_every_given;
    plan.models = gan::split_list(o->models);
    // One name per model: the aliases (vanilla, bn, wn, ...) become the canonical names.
    for (auto& m : plan.models) {
      if (m.empty()) throw std::invalid_argument(fmt::format("--models '{}': an empty name", o->models));
      const bool resnet = m.rfind("resnet-", 0) == 0;
      m = (resnet ? "resnet-" : "") + gan::norm_name(gan::parse_norm(resnet ? m.substr(7) : m));
    }
    if (plan.models.empty()) throw std::invalid_argument("--models: name at least one model (e.g. none,batch,weight)");
    for (size_t i = 0; i < plan.models.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (plan.models[i] == plan.models[j])
          throw std::invalid_argument(fmt::format("--models '{}': '{}' is named twice", o->models, plan.models[i]));
    for (auto& m : plan.models) model_for(m, o->model);  // fail early on a bad name
    plan.first_seed = o->seed;
    plan.seeds = o->seeds;
    plan.eval_n = o->eval_n;
    plan.eval_steps = o->eval_steps;
    plan.comm = &world;
    plan.ranks_per_run = o->ranks_per_run;
    plan.gather_timeout_s = o->gather_timeout;
    plan.title = fmt::format("wngan study: {} on {}, {} iterations, {} seed(s)", o->models, o->data, o->iters, o->seeds);
    plan.config = [o, cmd, crop, device](const std::string& m, uint64_t seed) {
      gan::TrainConfig c;
      c.model = model_for(m, o->model);
      c.data = o->data;
      c.batch = o->batch;
      const gan::Arch arch = c.model.arch;
      c.lr = std::stod(arch_value(cmd, "lr", arch, fmt::format("{:.17g}", o->lr)));
      c.rms_eps = std::stod(arch_value(cmd, "rms-eps", arch, fmt::format("{:.17g}", o->rms_eps)));
      c.protocol = gan::parse_protocol(arch_value(cmd, "protocol", arch, o->protocol));
      c.loss = gan::parse_loss(o->loss);
      c.select_on = o->select_on;
      c.running_test = o->running_test;
      std::tie(c.crop_h, c.crop_w) = crop;
      c.stretch = o->model.image_size.find('x') != std::string::npos;
      c.iters = o->iters;
      c.seed = seed;
      c.final_test = o->final_test;
      c.device = device;
      c.test_every = o->test_every;
      c.test_steps = o->test_steps;
      c.sample_every = o->sample_every;
      c.trace_grads = o->trace_grads;
      c.save_every = o->save_every;
      return c;
    };
    const eval::StudyOutcome outcome =
        eval::run_study(plan, [](const std::string& line) { fmt::print(stderr, "{}", line); });
    if (outcome.interrupted_by != 0) throw CLI::RuntimeError(128 + outcome.interrupted_by);
    gan::throw_if_stopped();  // a signal while the report was written still stops the command
    if (!world.is_root()) return;
    fmt::print("\n{}\nwrote {}/results.md, results.csv, plots and {}/report.html\n",
               eval::read_text(o->out + "/results.md"), o->out, o->out);
    int64_t failed = 0;
    for (const auto& r : outcome.runs) failed += !r.error.empty();
    if (failed > 0)
      throw std::runtime_error(fmt::format("{} of {} runs failed (results.md says why); `wngan study --resume {}` "
                                           "retries them",
                                           failed, outcome.runs.size(), o->out));
  });
}

}  // namespace wn::app
