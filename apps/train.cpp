// `wngan train`: trains a GAN with the paper's protocol (gan/trainer.h), with the
// running reconstruction test of eval/ every --test-every iterations.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "apps/commands.h"
#include "engine/parallel.h"
#include "eval/reconstruct.h"
#include "gan/trainer.h"

namespace wn::app {

std::function<double(nn::Module&, const Tensor&)> running_test_hook(int64_t code, int64_t steps) {
  return [code, steps](nn::Module& G, const Tensor& images) {
    eval::ReconstructOptions o;
    o.steps = steps;
    return eval::reconstruct(G, code, images, o).mean_loss;
  };
}

void add_train(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    gan::TrainConfig train;
    std::string resume;
    int threads = 0;
    int64_t test_steps = 50;
  };
  auto o = std::make_shared<Opts>();
  o->model.image_size = "";
  o->model.channels = 0;
  CLI::App* cmd = app.add_subcommand("train", "Train a GAN with the paper's protocol (default: the WN DCGAN on Fashion-MNIST)");
  add_model_options(cmd, o->model);
  auto& t = o->train;
  cmd->add_option("--data", t.data, "fashion-mnist | mnist:DIR | cifar10:DIR | folder:DIR | lsun:DIR")->capture_default_str();
  cmd->add_option("--batch", t.batch, "Batch size")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--lr", t.lr, "Learning rate of G and D (RMSProp)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--iters", t.iters, "Total iterations of the run")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--loss", t.loss, "bce | ls")->capture_default_str()->check(CLI::IsMember({"bce", "ls"}));
  cmd->add_option("--seed", t.seed, "Random seed (initialisation, split, batches, codes)")->capture_default_str();
  cmd->add_option("--out", t.out, "Run folder")->capture_default_str();
  cmd->add_option("--resume", o->resume, "Continue the run in this folder up to --iters");
  cmd->add_option("--split", t.split_file, "Reuse this split.json");
  cmd->add_option("--final-test", t.final_test, "Images in the final test set")->capture_default_str();
  cmd->add_option("--sample-every", t.sample_every, "Iterations between sample grids")->capture_default_str();
  cmd->add_option("--test-every", t.test_every, "Iterations between running tests (and 'last' saves)")->capture_default_str();
  cmd->add_option("--test-steps", o->test_steps, "RMSProp steps of the running test")->capture_default_str();
  cmd->add_option("--save-every", t.save_every, "Iterations between numbered checkpoints (0: none)")->capture_default_str();
  cmd->add_option("--log-every", t.log_every, "Iterations between progress lines when not on a terminal")->capture_default_str();
  cmd->add_option("--threads", o->threads, "Worker threads (default: all cores)");
  cmd->add_option("--device", o->train.device, "cpu | cuda | cuda:N")->capture_default_str();
  cmd->callback([o, cmd]() {
    if (o->threads > 0) set_num_threads(o->threads);
    gan::TrainConfig cfg;
    const bool resume = !o->resume.empty();
    if (resume) {
      cfg = gan::load_train_config(o->resume);
      if (cmd->count("--iters")) cfg.iters = o->train.iters;
      cfg.device = o->train.device;
    } else {
      cfg = o->train;
      ModelOptions m = o->model;
      if (m.image_size.empty()) m.image_size = "0";
      cfg.model = m.config();
    }
    gan::Trainer trainer(cfg, resume);
    trainer.running_test = running_test_hook(trainer.config().model.code, o->test_steps);
    fmt::print(stderr, "{}\n{}\nrun folder {}: {} training images, final test {}, running test {}\n",
               trainer.config().model.describe(), trainer.data().describe(), trainer.config().out,
               trainer.split().train.size(), trainer.split().final_test.size(), trainer.split().running_test.size());
    if (resume) fmt::print(stderr, "resuming at iteration {}\n", trainer.iteration());
    if (!trainer.run()) throw CLI::RuntimeError(130);
    fmt::print(stderr, "done: {} iterations; checkpoints in {}/checkpoints{}\n", trainer.iteration(), trainer.config().out,
               trainer.best_iteration() >= 0
                   ? fmt::format(" (best running test {:.6f} at iteration {})", trainer.best_loss(), trainer.best_iteration())
                   : "");
  });
}

}  // namespace wn::app
