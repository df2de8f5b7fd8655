#include "eval/run_eval.h"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/dist/comm.h"
#include "eval/reconstruct.h"
#include "gan/image_grid.h"
#include "gan/loader.h"
#include "gan/run_config.h"
#include "gan/run_dir.h"
#include "gan/trainer.h"
#include "nn/checkpoint.h"

namespace wn::eval {

namespace fs = std::filesystem;

namespace {

// What every rank needs for its part of a final test: the data, the model, the images'
// indices (rank 0 reads them from the run folder and sends them to the others).
struct FinalTest {
  gan::TrainConfig cfg;  // the data, its sizes and crop (what open_dataset needs)
  gan::Gan gan;
  std::vector<int64_t> test, train;  // data-set indices of the final-test and training images
  int64_t iteration = -1;
  std::string checkpoint;  // the file (rank 0)
  std::unique_ptr<gan::Dataset> data;  // opened by rank 0 to check the split; the others open it after
};

// Rank 0's side: the run folder's configuration, split and checkpoint.
FinalTest read_final_test(const EvalRequest& r) {
  const gan::RunDir run(r.run);
  FinalTest t;
  t.cfg = gan::load_train_config(r.run);
  t.checkpoint = r.checkpoint;
  if (t.checkpoint == "best" || t.checkpoint == "last") t.checkpoint = run.checkpoint(t.checkpoint);
  if (!fs::exists(t.checkpoint)) throw std::runtime_error(fmt::format("{}: no such checkpoint", t.checkpoint));
  // The outputs are filed under the run: a checkpoint of another run would be filed as this one's.
  std::error_code ec;
  if (!fs::equivalent(fs::path(t.checkpoint).parent_path(), run.checkpoints(), ec))
    throw std::invalid_argument(fmt::format("{} is not one of {}'s checkpoints ({}): its results would be filed as "
                                            "this run's; evaluate the run it belongs to instead",
                                            t.checkpoint, r.run, run.checkpoints()));
  std::map<std::string, std::string> meta;
  t.gan = gan::load_gan_from_checkpoint(t.checkpoint, &meta);
  t.iteration = meta.count("iteration") ? std::stoll(meta.at("iteration")) : -1;
  const gan::TrainConfig& c = t.cfg;
  t.data = gan::open_dataset(c.data, c.model.height, c.model.width, c.model.channels, c.crop_h, c.crop_w, c.stretch);
  const gan::Dataset* data = t.data.get();
  if (t.gan.config.channels != data->channels || t.gan.config.height != data->height ||
      t.gan.config.width != data->width)
    throw std::runtime_error(fmt::format("{} makes {}x{}x{} images, the run's data are {}x{}x{}", t.checkpoint,
                                         t.gan.config.channels, t.gan.config.height, t.gan.config.width,
                                         data->channels, data->height, data->width));
  if (t.cfg.model.channels > 0 && t.gan.config.describe() != t.cfg.model.describe())
    throw std::invalid_argument(fmt::format("{} holds {}, the run {} is {}; evaluate the run it belongs to", t.checkpoint,
                                            t.gan.config.describe(), r.run, t.cfg.model.describe()));
  // A checkpoint of another run of the same model copied into this run's folder: the
  // settings that make a run what it is (its seed, data, schedule, split) must agree.
  if (const std::string why = gan::foreign_checkpoint(
          meta, t.cfg, gan::split_fingerprint(gan::load_split(run.split(), data->size())));
      !why.empty())
    throw std::invalid_argument(fmt::format("{} was saved by another run ({}); evaluate the run it belongs to",
                                            t.checkpoint, why));
  const gan::Split split = gan::load_split(r.split.empty() ? run.split() : r.split, data->size());
  if (!r.split.empty()) {
    // Another split's final-test images must not be this run's training images.
    const gan::Split own = gan::load_split(run.split(), data->size());
    std::vector<char> trained(size_t(data->size()), 0);
    for (int64_t i : own.train) trained[size_t(i)] = 1;
    for (int64_t i : split.final_test)
      if (trained[size_t(i)])
        throw std::invalid_argument(fmt::format("--split {}: its final-test image {} is one of {}'s training images; "
                                                "a final test must be on images the run never trained on",
                                                r.split, i, r.run));
  }
  const int64_t n = std::min<int64_t>(r.n, static_cast<int64_t>(split.final_test.size()));
  t.test.assign(split.final_test.begin(), split.final_test.begin() + n);
  t.train.assign(split.train.begin(), split.train.begin() + std::min<int64_t>(n, split.train.size()));
  return t;
}

// Rank 0's final test sent to the other ranks of comm (the others receive it): its
// settings as JSON, then G's parameters and buffers. G's weights on every rank are rank 0's.
void share_final_test(FinalTest& t, dist::Comm& comm) {
  if (comm.size() == 1) return;
  std::string text;
  if (comm.is_root()) {
    const nlohmann::json j = {{"data", t.cfg.data},           {"crop", {t.cfg.crop_h, t.cfg.crop_w}},
                              {"stretch", t.cfg.stretch},      {"model", gan::model_to_json(t.gan.config)},
                              {"test", t.test},                {"train", t.train},
                              {"iteration", t.iteration},      {"seed", t.cfg.seed}};
    text = j.dump();
  }
  comm.broadcast(text);
  if (!comm.is_root()) {
    const nlohmann::json j = nlohmann::json::parse(text);
    Generator init(0);
    t.gan = gan::build_gan(gan::model_from_json(j.at("model")), init);
    t.cfg.model = t.gan.config;
    t.cfg.data = j.at("data").get<std::string>();
    t.cfg.crop_h = j.at("crop")[0].get<int64_t>();
    t.cfg.crop_w = j.at("crop")[1].get<int64_t>();
    t.cfg.stretch = j.at("stretch").get<bool>();
    t.test = j.at("test").get<std::vector<int64_t>>();
    t.train = j.at("train").get<std::vector<int64_t>>();
    t.iteration = j.at("iteration").get<int64_t>();
    t.cfg.seed = j.at("seed").get<uint64_t>();
  }
  std::vector<Tensor> state;
  for (const auto& [name, x] : t.gan.G->state()) state.push_back(x);
  comm.broadcast(state);
}

// Appends doubles to a byte string, or reads them back.
void put(std::string& s, const std::vector<double>& v) {
  s.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(double));
}
std::vector<double> take(const std::string& s, size_t& off, size_t n, int rank) {
  if (off + n * sizeof(double) > s.size())
    throw std::runtime_error(fmt::format("final test: rank {} sent {} bytes, more were expected", rank, s.size()));
  std::vector<double> v(n);
  std::memcpy(v.data(), s.data() + off, n * sizeof(double));
  off += n * sizeof(double);
  return v;
}

// The loss of the mean of (up to 10,000 of) the training images against each test image,
// ||m - x||^2 / (C H W) averaged over the test images; and how many images m averages.
std::pair<double, int64_t> mean_image_loss(const gan::Dataset& data, const std::vector<int64_t>& train,
                                           const std::vector<int64_t>& test) {
  const int64_t n = std::min<int64_t>(int64_t(train.size()), 10000), per = data.channels * data.height * data.width;
  if (n == 0 || test.empty()) return {NAN, 0};
  std::vector<double> m(size_t(per), 0.0);
  for (int64_t b = 0; b < n; b += 500) {
    const std::vector<int64_t> idx(train.begin() + b, train.begin() + std::min<int64_t>(n, b + 500));
    const std::vector<double> x = gan::Loader::load(data, idx).to_vector();
    for (size_t i = 0; i < x.size(); ++i) m[i % size_t(per)] += x[i];
  }
  for (double& v : m) v /= double(n);
  double total = 0;
  for (int64_t b = 0; b < int64_t(test.size()); b += 500) {
    const std::vector<int64_t> idx(test.begin() + b, test.begin() + std::min<int64_t>(int64_t(test.size()), b + 500));
    const std::vector<double> x = gan::Loader::load(data, idx).to_vector();
    for (size_t img = 0; img < idx.size(); ++img) {
      double s = 0;
      for (int64_t i = 0; i < per; ++i) {
        const double d = m[size_t(i)] - x[img * size_t(per) + size_t(i)];
        s += d * d;
      }
      total += s / double(per);
    }
  }
  return {total / double(test.size()), n};
}

}  // namespace

EvalResult evaluate_run(const EvalRequest& r) {
  std::unique_ptr<dist::Comm> own;
  dist::Comm& comm = r.comm ? *r.comm : *(own = dist::Comm::self());
  const bool root = comm.is_root();
  const int ranks = comm.size();
  FinalTest t = root ? read_final_test(r) : FinalTest{};
  share_final_test(t, comm);
  t.gan.G->to(r.device);
  const gan::TrainConfig& c = t.cfg;
  if (!t.data)
    t.data = gan::open_dataset(c.data, t.gan.config.height, t.gan.config.width, t.gan.config.channels, c.crop_h,
                               c.crop_w, c.stretch);
  const gan::Dataset* data = t.data.get();
  const int64_t n = int64_t(t.test.size()), n_train = int64_t(t.train.size());
  // This rank's part of each image set (all of them on one rank).
  const auto [tb, te] = dist::even_part(n, comm.rank(), ranks);
  const auto [rb, re] = dist::even_part(n_train, comm.rank(), ranks);
  const std::vector<int64_t> my_test(t.test.begin() + tb, t.test.begin() + te),
      my_train(t.train.begin() + rb, t.train.begin() + re);
  ReconstructOptions o;
  o.steps = r.steps;
  o.batch = r.batch;
  const bool verbose = r.verbose && root;
  auto progress = [&](const char* what, int64_t total) {
    const std::string share = ranks > 1 ? fmt::format(" (rank 0's part; {} ranks)", ranks) : "";
    return [what, total, verbose, share](int64_t done) {
      if (verbose) fmt::print(stderr, "\r\033[Kreconstructing {} images: {}/{}{}", what, done, total, share);
    };
  };
  const auto t0 = std::chrono::steady_clock::now();
  // A rank without images (fewer images than ranks) reconstructs none.
  auto reconstruct_part = [&](nn::Module& G, const std::vector<int64_t>& idx, const char* what) {
    if (idx.empty()) return Reconstruction{};
    Reconstruction rec = reconstruct(G, t.gan.config.code, gan::Loader::load(*data, idx).to(r.device), o,
                                     progress(what, int64_t(idx.size())));
    if (verbose) fmt::print(stderr, "\n");
    return rec;
  };
  const Reconstruction rt = reconstruct_part(*t.gan.G, my_test, "test"),
                       rr = reconstruct_part(*t.gan.G, my_train, "training");
  const double eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The untrained generator: the run's initial weights (the trainer's initialisation
  // stream, gan/trainer.cpp), the same images and steps.
  Reconstruction ru;
  const auto t1 = std::chrono::steady_clock::now();
  if (r.yardsticks) {
    Generator init(t.cfg.seed);
    gan::Gan fresh = gan::build_gan(t.gan.config, init);
    fresh.G->to(r.device);
    ru = reconstruct_part(*fresh.G, my_test, "test (untrained generator)");
  }
  const double untrained_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  // The first (up to) 16 final-test images are shown with their reconstructions.
  const int64_t show = std::min<int64_t>(n, 16);
  const int64_t per = data->channels * data->height * data->width;
  // Every rank's per-image losses (and its reconstructions of shown images) to rank 0, in
  // image order: the means are those of one process.
  std::string mine;
  put(mine, rt.losses);
  put(mine, rr.losses);
  if (r.yardsticks) put(mine, ru.losses);
  if (tb < te && tb < show) {
    std::vector<double> y = rt.images.to_vector();
    y.resize(size_t((std::min(te, show) - tb) * per));
    put(mine, y);
  }
  const std::vector<std::string> parts = comm.gather(mine, 0);
  std::vector<double> test_losses, train_losses, untrained_losses, shown;
  for (int k = 0; k < int(parts.size()); ++k) {
    const auto [b, e] = dist::even_part(n, k, ranks);
    const auto [b2, e2] = dist::even_part(n_train, k, ranks);
    size_t off = 0;
    for (double v : take(parts[size_t(k)], off, size_t(e - b), k)) test_losses.push_back(v);
    for (double v : take(parts[size_t(k)], off, size_t(e2 - b2), k)) train_losses.push_back(v);
    if (r.yardsticks)
      for (double v : take(parts[size_t(k)], off, size_t(e - b), k)) untrained_losses.push_back(v);
    for (double v : take(parts[size_t(k)], off, size_t(std::max<int64_t>(0, std::min(e, show) - b) * per), k))
      shown.push_back(v);
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / double(v.size());
  };
  EvalResult res;
  res.test_loss = mean(test_losses);
  res.train_loss = mean(train_losses);
  // Every rank returns rank 0's means.
  std::vector<double> means = {root ? res.test_loss : 0.0, root ? res.train_loss : 0.0};
  comm.all_reduce_sum(means);
  res.test_loss = means[0];
  res.train_loss = means[1];
  res.iteration = t.iteration;
  res.seconds = eval_seconds;
  res.n = n;
  if (!root) return res;
  if (r.yardsticks) {
    res.untrained_loss = mean(untrained_losses);
    res.untrained_seconds = untrained_seconds;
    const gan::Split split = gan::load_split(r.split.empty() ? gan::RunDir(r.run).split() : r.split, data->size());
    std::tie(res.mean_image_loss, res.mean_image_n) = mean_image_loss(*data, split.train, t.test);
  }
  // Outputs (rank 0): per-image losses, target / reconstruction pairs, and a row in RUN/eval.csv.
  const gan::RunDir run(r.run);
  // Named by everything that made them: evals of other sizes or step counts never overwrite each other.
  const std::string tag = fmt::format("{}_{}images_{}steps", fs::path(t.checkpoint).stem().string(), n, r.steps);
  fs::create_directories(run.eval_dir());
  std::string csv = std::string(gan::kPerImageHeader) + "\n";
  for (int64_t i = 0; i < n; ++i) csv += gan::format_per_image_row(t.test[i], "final_test", test_losses[i]);
  for (int64_t i = 0; i < n_train; ++i) csv += gan::format_per_image_row(t.train[i], "train", train_losses[i]);
  res.per_image_csv = run.eval_file(tag, "per_image.csv");
  nn::write_file_atomic(res.per_image_csv, csv);
  const Tensor targets = gan::Loader::load(*data, std::vector<int64_t>(t.test.begin(), t.test.begin() + show));
  const Tensor recon = Tensor::from_vector(shown, {show, data->channels, data->height, data->width});
  res.pairs_png = run.eval_file(tag, "pairs.png");
  gan::write_png_rows(res.pairs_png, {targets, recon});
  res.first_file = run.eval_file(tag, "first.safetensors");
  nn::save_safetensors(res.first_file, {{"targets", targets}, {"reconstructions", recon}},
                       {{"checkpoint", t.checkpoint}, {"iteration", std::to_string(res.iteration)},
                        {"steps", std::to_string(r.steps)}});
  gan::append_eval_row(run.eval_table(),
                       {t.checkpoint, res.iteration, n, r.steps, res.test_loss, res.train_loss, res.seconds});
  return res;
}

std::string final_checkpoint(const std::string& run) {
  return fs::exists(gan::RunDir(run).checkpoint("best")) ? "best" : "last";
}

std::function<double(nn::Module&, const Tensor&)> running_test_hook(int64_t code, int64_t steps) {
  return [code, steps](nn::Module& G, const Tensor& images) {
    ReconstructOptions o;
    o.steps = steps;
    return reconstruct(G, code, images, o).mean_loss;
  };
}

}  // namespace wn::eval
