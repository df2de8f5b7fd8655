// `wngan eval RUN`: the final test (SPEC section 5): reconstructs the final-test images
// with a checkpoint's generator and reports the mean per-image loss, with the same
// measure on as many training images so that over-fitting shows as a gap.
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "apps/commands.h"
#include "engine/parallel.h"
#include "eval/reconstruct.h"
#include "gan/image_grid.h"
#include "gan/loader.h"
#include "gan/trainer.h"
#include "nn/checkpoint.h"

namespace wn::app {

namespace fs = std::filesystem;

EvalResult evaluate_run(const EvalRequest& r) {
  gan::TrainConfig cfg = gan::load_train_config(r.run);
  std::string ckpt = r.checkpoint;
  if (ckpt == "best" || ckpt == "last") ckpt = r.run + "/checkpoints/" + ckpt + ".safetensors";
  if (!fs::exists(ckpt)) throw std::runtime_error(fmt::format("{}: no such checkpoint", ckpt));
  std::map<std::string, std::string> meta;
  gan::Gan g = gan::load_gan_from_checkpoint(ckpt, &meta);
  const Device device = Device::parse(r.device);
  g.G->to(device);
  auto data = gan::open_dataset(cfg.data, cfg.model.height, cfg.model.width, cfg.model.channels, cfg.crop_h, cfg.crop_w,
                                cfg.stretch);
  if (g.config.channels != data->channels || g.config.height != data->height || g.config.width != data->width)
    throw std::runtime_error(fmt::format("{} makes {}x{}x{} images, the run's data are {}x{}x{}", ckpt, g.config.channels,
                                         g.config.height, g.config.width, data->channels, data->height, data->width));
  gan::Split split = gan::load_split(r.split.empty() ? r.run + "/split.json" : r.split, data->size());
  const int64_t n = std::min<int64_t>(r.n, static_cast<int64_t>(split.final_test.size()));
  std::vector<int64_t> test(split.final_test.begin(), split.final_test.begin() + n);
  std::vector<int64_t> train(split.train.begin(), split.train.begin() + std::min<int64_t>(n, split.train.size()));
  eval::ReconstructOptions o;
  o.steps = r.steps;
  o.batch = r.batch;
  auto progress = [&](const char* what, int64_t total) {
    return [what, total, &r](int64_t done) {
      if (r.verbose) fmt::print(stderr, "\r\033[Kreconstructing {} images: {}/{}", what, done, total);
    };
  };
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor test_images = gan::Loader::load(*data, test);
  eval::Reconstruction rt = eval::reconstruct(*g.G, g.config.code, test_images.to(device), o,
                                                 progress("test", n));
  if (r.verbose) fmt::print(stderr, "\n");
  eval::Reconstruction rr =
      eval::reconstruct(*g.G, g.config.code, gan::Loader::load(*data, train).to(device), o,
                        progress("training", train.size()));
  if (r.verbose) fmt::print(stderr, "\n");
  EvalResult res;
  res.test_loss = rt.mean_loss;
  res.train_loss = rr.mean_loss;
  res.iteration = meta.count("iteration") ? std::stoll(meta.at("iteration")) : -1;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.n = n;
  // Outputs: per-image losses, target / reconstruction pairs, and a row in RUN/eval.csv.
  const std::string tag = fmt::format("{}_{}steps", fs::path(ckpt).stem().string(), r.steps);
  const std::string dir = r.run + "/eval";
  fs::create_directories(dir);
  std::string csv = "index,set,loss\n";
  for (int64_t i = 0; i < n; ++i) csv += fmt::format("{},final_test,{:.9g}\n", test[i], rt.losses[i]);
  for (size_t i = 0; i < train.size(); ++i) csv += fmt::format("{},train,{:.9g}\n", train[i], rr.losses[i]);
  res.per_image_csv = dir + "/" + tag + "_per_image.csv";
  nn::write_file_atomic(res.per_image_csv, csv);
  // The first (up to) 16 images and their reconstructions.
  const int64_t show = std::min<int64_t>(n, 16), per = test_images.numel() / std::max<int64_t>(n, 1);
  const Shape shown{show, test_images.dim(1), test_images.dim(2), test_images.dim(3)};
  auto first = [&](const Tensor& t) {
    std::vector<double> v = t.to_vector();
    v.resize(static_cast<size_t>(show * per));
    return Tensor::from_vector(v, shown);
  };
  res.pairs_png = dir + "/" + tag + "_pairs.png";
  gan::write_png_rows(res.pairs_png, {first(test_images), first(rt.images)});
  res.first_file = dir + "/" + tag + "_first.safetensors";
  nn::save_safetensors(res.first_file, {{"targets", first(test_images)}, {"reconstructions", first(rt.images)}},
                       {{"checkpoint", ckpt}, {"iteration", std::to_string(res.iteration)},
                        {"steps", std::to_string(r.steps)}});
  const std::string table = r.run + "/eval.csv";
  const bool fresh = !fs::exists(table);
  std::ofstream f(table, std::ios::app);
  if (fresh) f << "checkpoint,iteration,images,steps,final_test_loss,train_loss,seconds\n";
  f << fmt::format("{},{},{},{},{:.9g},{:.9g},{:.1f}\n", ckpt, res.iteration, n, r.steps, res.test_loss, res.train_loss,
                   res.seconds);
  if (!f) throw std::runtime_error(fmt::format("cannot write {}", table));
  return res;
}

void add_eval(CLI::App& app) {
  auto r = std::make_shared<EvalRequest>();
  auto threads = std::make_shared<int>(0);
  CLI::App* cmd = app.add_subcommand("eval", "Final test: reconstruction loss of the final-test images (and as many training images)");
  cmd->add_option("run", r->run, "Run folder")->required();
  cmd->add_option("--checkpoint", r->checkpoint, "best | last | a checkpoint file")->capture_default_str();
  cmd->add_option("--n", r->n, "Final-test images to reconstruct")->capture_default_str()
      ->check(in_range(1, 1e12));
  cmd->add_option("--steps", r->steps, "RMSProp steps on z per image")->capture_default_str()
      ->check(in_range(0, 1e9));
  cmd->add_option("--batch", r->batch, "Images per batch (does not change the result)")->capture_default_str()
      ->check(in_range(1, 65536));
  cmd->add_option("--split", r->split, "Use this split.json instead of the run's");
  cmd->add_option("--threads", *threads, "Worker threads (default: all cores)")
      ->check(in_range(0, 4096));
  cmd->add_option("--device", r->device, "cpu | cuda | cuda:N")->capture_default_str();
  add_max_pixels_option(cmd);
  cmd->callback([r, threads]() {
    if (*threads > 0) set_num_threads(*threads);
    EvalResult e = evaluate_run(*r);
    fmt::print("final test reconstruction loss: {:.6f}  ({} images, {} steps, checkpoint at iteration {})\n", e.test_loss,
               e.n, r->steps, e.iteration);
    fmt::print("training images, same measure:  {:.6f}  (gap train - test {:+.6f})\n", e.train_loss,
               e.train_loss - e.test_loss);
    fmt::print("per-image losses: {}\ntargets (top) and reconstructions (bottom): {}\nrow added to {}/eval.csv\n",
               e.per_image_csv, e.pairs_png, r->run);
  });
}

}  // namespace wn::app
