#include "gan/trainer.h"
#include "gan/signals.h"

#include <algorithm>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/ops/activation.h"
#include "engine/ops/loss.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"
#include "gan/grad_trace.h"
#include "gan/image_grid.h"
#include "gan/run_config.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"

namespace wn::gan {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string fmt_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The progress line of each iteration (losses, speed, time left, the running test): on a
// terminal one line redrawn at most four times a second and kept at each running test,
// elsewhere (a log file) a line every log_every iterations.
class Progress {
 public:
  Progress(const TrainConfig& cfg, int64_t start_iter, const std::function<void(const std::string&)>& log)
      : cfg_(cfg), log_(log), start_iter_(start_iter), tty_(::isatty(STDERR_FILENO)),
        t_start_(std::chrono::steady_clock::now()), last_print_(t_start_) {}
  // Shows iteration it (running < 0: no running test there).
  void show(int64_t it, const StepLosses& l, double running) {
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - t_start_).count();
    const double rate = double(it - start_iter_) / std::max(elapsed, 1e-9);
    const std::string line =
        fmt::format("iter {}/{}  D real {:.4f} fake {:.4f}  G {:.4f}  {:.2f} it/s  ETA {}{}", it, cfg_.iters,
                    l.d_real, l.d_fake, l.g, rate, fmt_duration(double(cfg_.iters - it) / rate),
                    running >= 0 ? fmt::format("  running test {:.6f}", running) : "");
    if (tty_) {
      if (std::chrono::duration<double>(now - last_print_).count() > 0.25 || it == cfg_.iters || running >= 0) {
        log_("\r\033[K" + line + (running >= 0 ? "\n" : ""));
        last_print_ = now;
      }
    } else if (it % std::max<int64_t>(1, cfg_.log_every) == 0 || it == cfg_.iters || running >= 0) {
      log_(line + "\n");
    }
  }
  // What ends the progress line before another message: a newline on a terminal.
  const char* line_end() const { return tty_ ? "\n" : ""; }
  // Ends the progress line when training ends.
  void end() {
    if (tty_) log_("\n");
  }

 private:
  const TrainConfig& cfg_;
  const std::function<void(const std::string&)>& log_;
  int64_t start_iter_;
  bool tty_;
  std::chrono::steady_clock::time_point t_start_, last_print_;
};

// The model description in a checkpoint's metadata (missing: an error saying `missing`).
ModelConfig checkpoint_model(const nn::TensorFile& f, const std::string& path, const std::string& missing) {
  auto it = f.metadata.find("model");
  if (it == f.metadata.end()) throw nn::CheckpointError(fmt::format("{}: {}", path, missing));
  try {
    return model_from_json(json::parse(it->second));
  } catch (const ConfigError& e) {
    throw nn::CheckpointError(fmt::format("{}: model description: {}", path, e.what()));
  } catch (const json::exception& e) {
    throw nn::CheckpointError(fmt::format("{}: malformed model description ({})", path, e.what()));
  }
}

// A test of failure handling: WNGAN_FAIL_AT=RANK:ITERATION makes that world rank throw
// after that iteration's step (iteration -1: never).
struct FailureInjection {
  int64_t iteration = -1;
};
FailureInjection failure_injection(int world_rank) {
  const char* s = std::getenv("WNGAN_FAIL_AT");
  if (!s || !*s) return {};
  int rank = -1;
  long long it = -1;
  char extra = 0;
  if (std::sscanf(s, "%d:%lld%c", &rank, &it, &extra) != 2 || rank < 0 || it < 1)
    throw std::invalid_argument(fmt::format("WNGAN_FAIL_AT='{}': expected RANK:ITERATION, e.g. 1:15", s));
  return rank == world_rank ? FailureInjection{it} : FailureInjection{};
}

// Sets requires_grad on every parameter of a module (used to freeze D during G's update
// so that no gradient of D's weights is computed there).
void set_trainable(nn::Module& m, bool on) {
  for (auto& [n, p] : m.named_parameters()) Tensor(p).set_requires_grad(on);
}

}  // namespace

Gan gan_from_checkpoint(const nn::TensorFile& f) {
  const ModelConfig m = checkpoint_model(f, f.path, "no model description in its metadata");
  Generator gen(0);
  Gan g = build_gan(m, gen);
  nn::assign_named(g.G->state(), f, "", "G.");
  nn::assign_named(g.D->state(), f, "", "D.");
  return g;
}

Gan load_gan_from_checkpoint(const std::string& path, std::map<std::string, std::string>* metadata) {
  nn::TensorFile f = nn::load_safetensors(path);
  Gan g = gan_from_checkpoint(f);
  if (metadata) *metadata = f.metadata;
  return g;
}

bool has_optimizer_state(const nn::TensorFile& f) {
  if (f.metadata.count("optim_G_steps") || f.metadata.count("optim_D_steps")) return true;
  for (const auto& [name, t] : f.tensors)
    if (name.rfind("optim.G.", 0) == 0 || name.rfind("optim.D.", 0) == 0) return true;
  return false;
}

void restore_optimizers(const nn::TensorFile& f, nn::Optimizer& opt_g, nn::Optimizer& opt_d) {
  constexpr int64_t kBig = int64_t(1) << 40;
  auto steps = [&](const std::string& k) {
    auto it = f.metadata.find(k);
    if (it == f.metadata.end()) throw nn::CheckpointError(fmt::format("{}: metadata '{}' missing", f.path, k));
    try {
      return parse_int(it->second, "metadata '" + k + "'", 0, kBig);
    } catch (const ConfigError& e) {
      throw nn::CheckpointError(fmt::format("{}: {}", f.path, e.what()));
    }
  };
  const int64_t steps_g = steps("optim_G_steps"), steps_d = steps("optim_D_steps");
  nn::assign_named(opt_g.state(), f, "optim.G.");
  nn::assign_named(opt_d.state(), f, "optim.D.");
  opt_g.set_steps(steps_g);
  opt_d.set_steps(steps_d);
}

Trainer::Trainer(TrainConfig cfg, bool resume, dist::Comm* comm)
    : cfg_(std::move(cfg)), dir_(cfg_.out), rng_(cfg_.seed * 7919 + 11) {
  if (!comm) {
    own_comm_ = dist::Comm::self();
    comm = own_comm_.get();
  }
  writer_ = comm->is_root();
  log = [w = writer_](const std::string& s) {
    if (w) std::fputs(s.c_str(), stderr);
  };
  if (cfg_.out.empty()) throw std::invalid_argument("the run folder (--out) must not be empty");
  if (cfg_.batch < 1 || cfg_.iters < 0 || !(cfg_.lr > 0) || !std::isfinite(cfg_.lr))
    throw std::invalid_argument("batch must be >= 1, iters >= 0 and lr a finite number > 0");
  if (cfg_.final_test < 1 || cfg_.running_test < 0 || cfg_.test_steps < 0)
    throw std::invalid_argument("the final test needs >= 1 image, the running test >= 0 images and >= 0 steps");
  if (cfg_.select_on != "test" && cfg_.select_on != "train")
    throw std::invalid_argument(fmt::format("--select-on '{}': expected test or train", cfg_.select_on));
  if (!(cfg_.rms_eps > 0)) throw std::invalid_argument("the RMSProp epsilon must be > 0");
  dp_ = std::make_unique<DataParallel>(*comm, cfg_.batch);
  if (writer_) prepare_folder(resume);
  try {
    start(resume);
  } catch (...) {
    if (!resume && writer_) undo_start();  // a start that fails leaves the folder as it was
    throw;
  }
  if (writer_ && cfg_.force && !resume) dir_.drop_set_aside();  // the new run has started: the old one goes
}

void Trainer::undo_start() noexcept {
  std::error_code ec;
  try {
    dir_.clear();  // what this start wrote; the folder held nothing else (prepare_folder)
    if (cfg_.force) dir_.restore_set_aside();  // the run --force was to replace comes back
  } catch (const std::exception&) {
  }
  lock_.reset();
  if (created_folder_) fs::remove(cfg_.out, ec);  // only if empty
}

void Trainer::start(bool resume) {
  if (writer_) metrics_ = std::make_unique<MetricsLog>(dir_.metrics());
  data_ = open_dataset(cfg_.data, cfg_.model.height, cfg_.model.width, cfg_.model.channels, cfg_.crop_h, cfg_.crop_w,
                       cfg_.stretch);
  // Sizes left at 0 take the data set's own.
  cfg_.model.channels = data_->channels;
  cfg_.model.height = data_->height;
  cfg_.model.width = data_->width;
  if (!resume) write_config();
  if (!cfg_.split_file.empty())
    split_ = load_split(cfg_.split_file, data_->size());
  else if (resume)
    split_ = load_split(dir_.split(), data_->size());
  else
    split_ = make_split(data_->size(), cfg_.final_test,
                        cfg_.select_on == "train" ? cfg_.running_test : std::min(cfg_.running_test, cfg_.final_test),
                        cfg_.seed, cfg_.select_on == "train");
  if (writer_ && (!resume || !cfg_.split_file.empty())) save_split(dir_.split(), split_);
  // The split decides the counts the run records (a given split's, or the running test
  // capped by the final test's size), not the options as typed.
  if (!resume) {
    cfg_.final_test = int64_t(split_.final_test.size());
    cfg_.running_test = int64_t(split_.running_test.size());
  }
  // A given split decides where its running test comes from.
  cfg_.select_on = split_.running_from_train ? "train" : "test";
  if (!resume) write_config();
  Generator init(cfg_.seed);
  gan_ = build_gan(cfg_.model, init);
  if (cfg_.sync_bn) {
    dp_->sync_batch_norm(*gan_.G);
    dp_->sync_batch_norm(*gan_.D);
  }
  device_ = cfg_.device;
  if (device_ != kCPU) {
    gan_.G->to(device_);
    gan_.D->to(device_);
  }
  GanOptimizers opts = make_optimizers(gan_, cfg_.lr, cfg_.rms_eps);
  opt_g_ = std::move(opts.g);
  opt_d_ = std::move(opts.d);
  if (cfg_.trace_grads > 0 && writer_) trace_ = std::make_unique<GradTrace>(dir_.grad_trace(), gan_);
  loader_ = std::make_unique<Loader>(*data_, split_.train, cfg_.batch, cfg_.seed);
  if (!dp_->single()) loader_->set_slice(dp_->begin(), dp_->end());
  Generator zgen(cfg_.seed * 31 + 3);
  fixed_z_ = randn({cfg_.samples, cfg_.model.code}, zgen).to(device_);
  if (resume) {
    const std::string last = checkpoint_path("last");
    if (!fs::exists(last)) throw std::runtime_error(fmt::format("{}: no checkpoint to resume from", last));
    load_checkpoint(last);
    if (cfg_.iters < iter_)
      throw std::invalid_argument(fmt::format("--iters {}: the run has trained {} iterations already (a resume "
                                              "cannot take training back; start a new run for a shorter one)",
                                              cfg_.iters, iter_));
    if (writer_) write_config();  // with the changes a resume may make (--iters, --sample-every, ...)
  } else if (writer_) {
    nn::write_file_atomic(dir_.metrics(), std::string(kMetricsHeader) + "\n");
  }
  // Every rank starts from rank 0's weights, buffers and optimizer states.
  dp_->broadcast_state(gan_.G->state());
  dp_->broadcast_state(gan_.D->state());
  dp_->broadcast_state(opt_g_->state());
  dp_->broadcast_state(opt_d_->state());
}

Trainer::~Trainer() = default;

void Trainer::prepare_folder(bool resume) {
  // The run folder first: an unwritable --out fails before anything else, and the lock
  // keeps a second process out before anything is written.
  try {
    created_folder_ = !fs::exists(cfg_.out);
    fs::create_directories(cfg_.out);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("cannot write the run folder {}: {}", cfg_.out, nn::error_text(e)));
  }
  lock_ = std::make_unique<RunLock>(cfg_.out);
  if (!resume) {
    // A new run starts in an empty folder: a run there is continued or replaced on
    // request, anything else is refused by name (it would mix into the new run's report).
    auto contents = [&] {
      std::vector<std::string> names;
      for (const auto& e : fs::directory_iterator(cfg_.out))
        if (e.path().filename() != ".lock" && e.path().filename() != ".replaced")
          names.push_back(e.path().filename().string());
      std::sort(names.begin(), names.end());
      std::string s;
      for (size_t i = 0; i < names.size() && i < 8; ++i) s += (i ? ", " : "") + names[i];
      if (names.size() > 8) s += fmt::format(" and {} more", names.size() - 8);
      return s;
    };
    if (dir_.holds_run() && !cfg_.force)
      throw std::runtime_error(fmt::format("{} holds a run already (config.json, metrics or checkpoints): --resume {} "
                                           "continues it, --force replaces it, or choose another --out",
                                           cfg_.out, cfg_.out));
    if (cfg_.force) {
      if (!cfg_.split_file.empty() &&
          fs::weakly_canonical(fs::absolute(cfg_.split_file)).string().rfind(
              fs::weakly_canonical(fs::absolute(cfg_.out)).string() + "/", 0) == 0)
        throw std::invalid_argument(fmt::format("--split {} lies in the run folder that --force replaces; copy it "
                                                "elsewhere first",
                                                cfg_.split_file));
      if (fs::exists(fs::path(cfg_.out) / ".replaced"))
        throw std::runtime_error(fmt::format("{}/.replaced holds a run set aside by a --force that never finished "
                                             "(the process was killed); move its files back into {} or remove it, "
                                             "then try again",
                                             cfg_.out, cfg_.out));
      dir_.set_aside();
    }
    if (const std::string left = contents(); !left.empty()) {
      if (cfg_.force) dir_.restore_set_aside();  // refused: the run --force was to replace stays where it was
      throw std::runtime_error(fmt::format("{} is not empty ({}){}: a new run starts in an empty folder; choose "
                                           "another --out, or remove them",
                                           cfg_.out, left, cfg_.force ? " (--force removes only a run's own files)" : ""));
    }
  }
  try {
    fs::create_directories(dir_.checkpoints());
    fs::create_directories(dir_.samples());
    if (!resume) write_config();  // the write probe; rewritten once the sizes are known
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("cannot write the run folder {}: {}", cfg_.out, nn::error_text(e)));
  }
}

std::string Trainer::checkpoint_path(const std::string& name) const {
  return dir_.checkpoint(name);
}

void Trainer::write_config() const {
  if (!writer_) return;
  nn::write_file_atomic(dir_.config(), train_to_json(cfg_).dump(2) + "\n");
}

Loss parse_loss(const std::string& s) {
  if (s == "bce") return Loss::BCE;
  if (s == "ls") return Loss::LS;
  throw std::invalid_argument(fmt::format("unknown loss '{}' (expected bce or ls)", s));
}

const char* loss_name(Loss loss) { return loss == Loss::LS ? "ls" : "bce"; }

Protocol parse_protocol(const std::string& s) {
  if (s == "alternating") return Protocol::Alternating;
  if (s == "simultaneous") return Protocol::Simultaneous;
  throw std::invalid_argument(fmt::format("unknown protocol '{}' (expected alternating or simultaneous)", s));
}

int64_t auto_test_every(int64_t iters) { return std::clamp<int64_t>(iters / 10, 1, 1000); }

const char* protocol_name(Protocol protocol) {
  return protocol == Protocol::Simultaneous ? "simultaneous" : "alternating";
}

GanOptimizers make_optimizers(const Gan& gan, double lr, double eps) {
  GanOptimizers o{std::make_unique<nn::RMSProp>(gan.G->named_parameters(), lr, nn::kPaperRMSPropAlpha, eps),
                  std::make_unique<nn::RMSProp>(gan.D->named_parameters(), lr, nn::kPaperRMSPropAlpha, eps)};
  auto G = gan.G, D = gan.D;
  o.g->add_post_step_hook([G] { nn::after_update_all(*G); });
  o.d->add_post_step_hook([D] { nn::after_update_all(*D); });
  return o;
}

StepLosses gan_step(Gan& gan, nn::Optimizer& opt_g, nn::Optimizer& opt_d, const Tensor& real, Generator& rng,
                    bool ls, bool simultaneous, const StepHooks* hooks, const DataParallel* dp) {
  const bool keep = hooks && hooks->retain_graphs;
  nn::Module &G = *gan.G, &D = *gan.D;
  const int64_t code = gan.config.code;
  const bool parallel = dp && !dp->single();
  // A code batch: this rank's slice of the global batch's codes.
  auto codes = [&]() {
    if (!parallel) return randn({real.dim(0), code}, rng, 1.0, real.dtype()).to(real.device());
    Tensor z = randn({dp->global_batch(), code}, rng, 1.0, real.dtype());
    return slice(z, dp->begin(), dp->end()).to(real.device());
  };
  auto average = [&](const nn::Optimizer& opt) {
    if (parallel) dp->average_gradients(opt);
  };
  auto criterion = [&](const Tensor& logits, double target) {
    Tensor t = Tensor::full(logits.shape(), target, logits.dtype(), logits.device());
    return ls ? mse(sigmoid(logits), t) : bce_with_logits(logits, t);
  };
  G.train();
  D.train();
  StepLosses out;
  if (simultaneous) {
    // One generated batch. G's loss through D's current weights: its gradient reaches
    // the (detached) images only, D frozen; then through G, and G is updated.
    opt_g.zero_grad();
    Tensor fake = G(codes());
    Tensor image = fake.detach();
    image.set_requires_grad(true);
    Tensor d_fake = D(image);
    set_trainable(D, false);
    Tensor lg = criterion(d_fake, 1.0);
    backward(lg, Tensor(), /*retain_graph=*/true);
    set_trainable(D, true);
    backward(fake, image.grad(), keep);
    average(opt_g);
    if (hooks && hooks->before_g_update) hooks->before_g_update({lg, fake});
    opt_g.step();
    // D: the fake loss on the same D output, then the real loss; one D update.
    opt_d.zero_grad();
    Tensor lf = criterion(d_fake, 0.0);
    backward(lf, Tensor(), keep);
    Tensor lr = criterion(D(real), 1.0);
    backward(lr, Tensor(), keep);
    average(opt_d);
    if (hooks && hooks->before_d_update) hooks->before_d_update({lf, lr});
    opt_d.step();
    out.d_real = lr.item();
    out.d_fake = lf.item();
    out.g = lg.item();
    return out;
  }
  // D: a real batch and a separately generated batch (each with its own BN statistics).
  opt_d.zero_grad();
  Tensor fake;
  {
    NoGradGuard ng;
    fake = G(codes());
  }
  Tensor lr = criterion(D(real), 1.0);
  backward(lr, Tensor(), keep);
  Tensor lf = criterion(D(fake), 0.0);
  backward(lf, Tensor(), keep);
  average(opt_d);
  if (hooks && hooks->before_d_update) hooks->before_d_update({lr, lf});
  opt_d.step();
  // G: non-saturating loss on a fresh code batch, D frozen (no gradient for its weights).
  opt_g.zero_grad();
  set_trainable(D, false);
  Tensor lg = criterion(D(G(codes())), 1.0);
  backward(lg, Tensor(), keep);
  set_trainable(D, true);
  average(opt_g);
  if (hooks && hooks->before_g_update) hooks->before_g_update({lg});
  opt_g.step();
  // The losses are read at the end: on a GPU each read waits for the queued work.
  out.d_real = lr.item();
  out.d_fake = lf.item();
  out.g = lg.item();
  return out;
}

StepLosses Trainer::step(const Tensor& real) {
  const bool ls = cfg_.loss == Loss::LS, simultaneous = cfg_.protocol == Protocol::Simultaneous;
  if (!trace_ || !GradTrace::traced(iter_ + 1, cfg_.trace_grads))
    return gan_step(gan_, *opt_g_, *opt_d_, real, rng_, ls, simultaneous, nullptr, dp_.get());
  // A traced iteration: the same step, read through its hooks.
  const StepHooks& hooks = trace_->begin(iter_ + 1, simultaneous);
  StepLosses l;
  try {
    l = gan_step(gan_, *opt_g_, *opt_d_, real, rng_, ls, simultaneous, &hooks, dp_.get());
  } catch (...) {
    trace_->end();
    throw;
  }
  if (!trace_->end() && !trace_warned_) {
    log(fmt::format("\nwarning: cannot append to {} (disk full?); the trace misses iteration {}\n", dir_.grad_trace(),
                    iter_ + 1));
    trace_warned_ = true;
  }
  return l;
}

void Trainer::sample(int64_t it) {
  if (!writer_) return;
  nn::Module& G = *gan_.G;
  const bool was = G.is_training();
  G.eval();
  Tensor imgs;
  {
    NoGradGuard ng;
    imgs = G(fixed_z_);
  }
  G.train(was);
  write_png_grid(dir_.sample(it), imgs);
}

double Trainer::running_loss(const Tensor& images) {
  if (dp_->single()) return running_test(*gan_.G, images);
  // Each rank tests its part with rank 0's batch-norm statistics; the mean over all images.
  nn::Named buffers = gan_.G->named_buffers();
  dp_->broadcast_state(buffers);
  std::vector<double> sum_count = {0, double(images.dim(0))};
  if (images.dim(0) > 0) sum_count[0] = running_test(*gan_.G, images) * double(images.dim(0));
  dp_->comm().all_reduce_sum(sum_count);
  return sum_count[0] / sum_count[1];
}

double Trainer::test_and_save(const Tensor& running_images) {
  double running = -1;
  if (running_test && running_images.defined()) {
    running = running_loss(running_images);
    if (best_iter_ < 0 || running < best_loss_) {
      best_loss_ = running;
      best_iter_ = iter_;
      save_checkpoint(checkpoint_path("best"));
    }
  }
  save_checkpoint(checkpoint_path("last"));
  return running;
}

void Trainer::append_metrics(int64_t it, const StepLosses& l, double secs, double running) {
  if (!writer_) return;
  const bool ok = metrics_->append(format_metrics_row({it, l.d_real, l.d_fake, l.g, secs, running}));
  if (!ok && !metrics_warned_) {
    log(fmt::format("\nwarning: cannot append to {} (disk full?); {} row(s) kept and written as soon as it works\n",
                    dir_.metrics(), metrics_->pending()));
    metrics_warned_ = true;
  }
  if (ok) metrics_warned_ = false;
}

void Trainer::check_sane(const StepLosses& l, bool tensors) const {
  auto bad = [](double v) { return !std::isfinite(v) || std::fabs(v) > kLossBound; };
  // The first parameter or optimizer state that is not finite (a scan of every weight).
  auto nonfinite = [&]() -> std::string {
    for (const nn::Named& named : {gan_.G->named_parameters(), gan_.D->named_parameters(), opt_g_->state(),
                                   opt_d_->state()})
      for (const auto& [name, t] : named)
        if (!std::isfinite(sum_squares(t))) return fmt::format("'{}' holds NaN or infinite values", name);
    return "";
  };
  std::string what;
  if (bad(l.d_real) || bad(l.d_fake) || bad(l.g))
    what = fmt::format("D real loss {}, D fake loss {}, G loss {}", l.d_real, l.d_fake, l.g);
  else if (tensors)
    what = nonfinite();
  if (what.empty()) return;
  throw DivergedError(fmt::format(
      "training diverged at iteration {}: {}; checkpoints in {}: {}{} (a smaller --lr may help)", iter_, what,
      dir_.checkpoints(), dir_.describe_checkpoints(),
      last_saved_ >= 0 ? fmt::format(", last saved at iteration {}", last_saved_) : ""));
}

void Trainer::save_checkpoint(const std::string& path) const {
  if (!writer_) return;
  SavingSection saving;  // a second signal waits for the file to be whole
  nn::Named t = gan_.G->state();
  for (auto& e : gan_.D->state()) t.push_back(e);
  for (auto& [n, s] : opt_g_->state()) t.emplace_back("optim.G." + n, s);
  for (auto& [n, s] : opt_d_->state()) t.emplace_back("optim.D." + n, s);
  t.emplace_back("fixed_z", fixed_z_);
  nn::save_safetensors(path, t, checkpoint_metadata());
  if (path == checkpoint_path("last")) last_saved_ = iter_;
}

std::map<std::string, std::string> Trainer::checkpoint_metadata() const {
  return {{"format", "pt"},
          {"model", model_to_json(cfg_.model).dump()},
          {"train", train_to_json(cfg_).dump()},
          {"iteration", std::to_string(iter_)},
          {"data_epoch", std::to_string(loader_->epoch())},
          {"data_position", std::to_string(loader_->position())},
          {"rng", rng_.state()},
          {"optim_G_steps", std::to_string(opt_g_->steps())},
          {"optim_D_steps", std::to_string(opt_d_->steps())},
          {"best_loss", fmt::format("{:.17g}", best_loss_)},
          {"best_iteration", std::to_string(best_iter_)},
          {"split", split_fingerprint(split_)}};
}

void Trainer::load_checkpoint(const std::string& path) {
  nn::TensorFile f = nn::load_safetensors(path);
  auto need = [&](const std::string& k) -> const std::string& {
    auto it = f.metadata.find(k);
    if (it == f.metadata.end()) throw nn::CheckpointError(fmt::format("{}: metadata '{}' missing", path, k));
    return it->second;
  };
  if (const std::string why = foreign_checkpoint(f.metadata, cfg_, split_fingerprint(split_)); !why.empty())
    throw nn::CheckpointError(fmt::format("{} was saved by another run ({}); a run resumes only from its own "
                                          "checkpoints",
                                          path, why));
  const ModelConfig m = checkpoint_model(f, path, "metadata 'model' missing");
  if (m.describe() != cfg_.model.describe())
    throw nn::CheckpointError(fmt::format("{}: the checkpoint holds {}, this run is {}", path, m.describe(),
                                          cfg_.model.describe()));
  // Every number of the metadata checked before anything is changed.
  constexpr int64_t kBig = int64_t(1) << 40;
  int64_t iteration, epoch, position, best_iter;
  double best_loss;
  try {
    iteration = parse_int(need("iteration"), "metadata 'iteration'", 0, kBig);
    epoch = parse_int(need("data_epoch"), "metadata 'data_epoch'", 0, kBig);
    position = parse_int(need("data_position"), "metadata 'data_position'", 0, int64_t(split_.train.size()));
    best_iter = parse_int(need("best_iteration"), "metadata 'best_iteration'", -1, iteration);
    size_t used = 0;
    const std::string& bl = need("best_loss");
    try {
      best_loss = std::stod(bl, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != bl.size() || bl.empty()) throw ConfigError(fmt::format("metadata 'best_loss' is '{}', not a number", bl));
  } catch (const ConfigError& e) {
    throw nn::CheckpointError(fmt::format("{}: {}", path, e.what()));
  }
  Generator rng;
  try {
    rng.set_state(need("rng"));
  } catch (const std::invalid_argument& e) {
    throw nn::CheckpointError(fmt::format("{}: metadata 'rng' is not a generator state ({})", path, e.what()));
  }
  // The optimizers' state and step counts (checked before anything is copied).
  restore_optimizers(f, *opt_g_, *opt_d_);
  nn::assign_named(gan_.G->state(), f, "", "G.");
  nn::assign_named(gan_.D->state(), f, "", "D.");
  if (f.get("fixed_z").shape() != fixed_z_.shape())
    throw nn::CheckpointError(fmt::format("{}: fixed_z has shape {}, {} expected", path, f.get("fixed_z").shape().str(),
                                          fixed_z_.shape().str()));
  fixed_z_.copy_from(f.get("fixed_z"));
  iter_ = iteration;
  last_saved_ = iteration;
  loader_->seek(epoch, position);
  rng_ = rng;
  best_loss_ = best_loss;
  best_iter_ = best_iter;
  // Metrics after the checkpoint belong to a run that did not survive: drop them.
  if (writer_) {
    trim_metrics(dir_.metrics(), iter_);
    trim_trace(dir_.grad_trace(), iter_);
  }
}

// The story of training: a batch, a step (D, then G), the checks, samples, the running
// test with its checkpoints, a row of metrics.csv and a progress line; a signal saves
// `last` and stops.
bool Trainer::run() {
  StopSignals guard;  // the command's own when it holds one (a signal before this run counts)
  signal_ = 0;
  Tensor running_images;
  if (running_test && !split_.running_test.empty()) {
    const auto [b, e] = dp_->part(int64_t(split_.running_test.size()));
    running_images =
        Loader::load(*data_, std::vector<int64_t>(split_.running_test.begin() + b, split_.running_test.begin() + e))
            .to(device_);
  }
  const FailureInjection inject = failure_injection(dp_->comm().world_rank());
  auto every = [&](int64_t interval) { return interval > 0 && iter_ % interval == 0; };
  if (iter_ == 0) sample(0);
  Progress progress(cfg_, iter_, log);
  bool saved_last = false;
  while (iter_ < cfg_.iters) {
    Tensor real = loader_->next().to(device_);
    const auto t0 = std::chrono::steady_clock::now();
    StepLosses l = step(real);
    const double secs = seconds_since(t0);
    ++iter_;
    if (iter_ == inject.iteration)
      throw std::runtime_error(fmt::format("failure injected at iteration {} (WNGAN_FAIL_AT)", iter_));
    if (!dp_->single()) {
      // The losses over the global batch.
      std::vector<double> v = {l.d_real, l.d_fake, l.g};
      dp_->comm().all_reduce_sum(v);
      const double k = dp_->ranks();
      l = {v[0] / k, v[1] / k, v[2] / k};
    }
    if (on_step) on_step(iter_, l);
    // Weights are scanned every 100 iterations and before any checkpoint is written, so no
    // checkpoint holds a non-finite value; in between a bad weight shows in the losses.
    const bool saves = every(cfg_.test_every) || every(cfg_.save_every) || iter_ == cfg_.iters || stop_signal();
    check_sane(l, saves || iter_ % 100 == 0);
    if (every(cfg_.sample_every)) sample(iter_);
    double running = -1;
    saved_last = every(cfg_.test_every);
    if (saved_last) {
      try {
        running = test_and_save(running_images);
      } catch (const Interrupted& e) {
        // A signal inside the running test: this iteration is kept (last, its metrics row),
        // its test is not; the resumed run goes on from here.
        signal_ = e.signal();
        save_checkpoint(checkpoint_path("last"));
        append_metrics(iter_, l, secs, -1);
        log(fmt::format("{}{} in the running test at iteration {}: saved {}\n", progress.line_end(), strsignal(signal_),
                        iter_, checkpoint_path("last")));
        return false;
      }
    }
    if (every(cfg_.save_every)) save_checkpoint(checkpoint_path(fmt::format("iter_{:07d}", iter_)));
    append_metrics(iter_, l, secs, running);
    progress.show(iter_, l, running);
    int caught = stop_signal();
    if (!dp_->single()) {
      // A signal seen by any rank stops all of them at this iteration.
      std::vector<double> v = {double(caught != 0), double(caught)};
      dp_->comm().all_reduce_sum(v);
      if (caught == 0 && v[0] > 0) caught = int(v[1] / v[0]);
    }
    if (caught != 0) {
      signal_ = caught;
      save_checkpoint(checkpoint_path("last"));
      log(fmt::format("{}{} at iteration {}: saved {}\n", progress.line_end(), strsignal(signal_), iter_,
                      checkpoint_path("last")));
      return false;
    }
  }
  progress.end();
  if (!saved_last) save_checkpoint(checkpoint_path("last"));
  if (cfg_.sample_every > 0 && iter_ % cfg_.sample_every != 0 && stop_signal() == 0) sample(iter_);
  // A signal after the loop's last check (the final save, a run with nothing left to
  // train) still stops the command: `last` is saved.
  if (const int caught = stop_signal()) {
    signal_ = caught;
    log(fmt::format("{} at iteration {}: saved {}\n", strsignal(signal_), iter_, checkpoint_path("last")));
    return false;
  }
  return true;
}

}  // namespace wn::gan
