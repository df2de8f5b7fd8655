// `wngan inspect`: one training step on one batch, shown layer by layer, for teaching
// how normalization shapes gradient flow (the work is gan/inspect.h's, the tables
// apps/inspect_table.h's): a table for the D step and one for the G step, the tapes of
// both steps as DOT coloured by gradient norm (and SVG with graphviz), and with --json /
// --csv every number in machine-readable form. With --checkpoint the step continues the
// checkpoint's run: its RMSProp state and, from its run folder, its training settings.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "apps/commands.h"
#include "apps/inspect_table.h"
#include "eval/grad_plots.h"
#include "gan/data.h"
#include "gan/inspect.h"
#include "gan/run_config.h"
#include "gan/run_dir.h"
#include "gan/trainer.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"

namespace wn::app {

namespace fs = std::filesystem;

namespace {

struct Opts {
  ModelOptions model;
  std::string data = "fashion-mnist", checkpoint, compare, out = "inspect", device = "cpu", json, csv, run;
  std::string loss = "bce", protocol = "alternating";
  double lr = 1e-4, rms_eps = nn::kPaperRMSPropEps;
  int64_t batch = 32;
  uint64_t seed = 1;
};

// Where each of the step's settings came from, for the summary line.
struct SettingSources {
  std::string lr, rms_eps, loss, protocol, data;
};

// The run folder holding a checkpoint (RUN/checkpoints/NAME.safetensors), if its
// config.json is there; "" otherwise.
std::string run_folder_of(const std::string& checkpoint) {
  const fs::path dir = fs::path(checkpoint).parent_path();
  if (dir.filename() != "checkpoints") return "";
  const std::string run = dir.parent_path().empty() ? "." : dir.parent_path().string();
  return nn::file_kind(gan::RunDir(run).config()) == nn::FileKind::Regular ? run : "";
}

// The settings of the step: the options given, else (with a checkpoint in a run folder
// whose config.json loads) the run's, else the architecture's defaults. Returns where
// each came from; sets run_data to the run's configuration when its data set applies.
SettingSources resolve_settings(CLI::App* cmd, Opts& o, const std::string& arch,
                                std::optional<gan::TrainConfig>* run_data) {
  auto given = [&](const char* name) { return cmd->get_option(name)->count() > 0; };
  const bool g_lr = given("--lr"), g_eps = given("--rms-eps"), g_loss = given("--loss"), g_proto = given("--protocol"),
             g_data = given("--data");
  apply_arch_defaults(cmd, arch);
  const std::string def = fmt::format("the {} default", arch);
  SettingSources src{g_lr ? "--lr" : def, g_eps ? "--rms-eps" : def, g_loss ? "--loss" : def,
                     g_proto ? "--protocol" : def, g_data ? "--data" : "the default"};
  if (o.checkpoint.empty()) return src;
  const std::string run = run_folder_of(o.checkpoint);
  if (run.empty()) return src;
  gan::TrainConfig cfg;
  try {
    cfg = gan::load_train_config(run);
  } catch (const std::exception& e) {
    fmt::print("warning: {} (the step's settings come from the options and defaults)\n", e.what());
    return src;
  }
  const std::string from = gan::RunDir(run).config();
  if (!g_lr) o.lr = cfg.lr, src.lr = from;
  if (!g_eps) o.rms_eps = cfg.rms_eps, src.rms_eps = from;
  if (!g_loss) o.loss = gan::loss_name(cfg.loss), src.loss = from;
  if (!g_proto) o.protocol = gan::protocol_name(cfg.protocol), src.protocol = from;
  if (!g_data) *run_data = cfg, src.data = from, o.data = cfg.data;
  return src;
}

// "a, b (from X); c (from Y)": the settings grouped by where they came from.
std::string describe_sources(const Opts& o, const SettingSources& s) {
  std::vector<std::pair<std::string, std::string>> items{{fmt::format("lr {:g}", o.lr), s.lr},
                                                         {fmt::format("eps {:g}", o.rms_eps), s.rms_eps},
                                                         {fmt::format("{} loss", o.loss), s.loss},
                                                         {fmt::format("{} protocol", o.protocol), s.protocol}};
  std::string out;
  std::vector<bool> done(items.size(), false);
  for (size_t i = 0; i < items.size(); ++i) {
    if (done[i]) continue;
    std::string group;
    for (size_t j = i; j < items.size(); ++j)
      if (!done[j] && items[j].second == items[i].second) {
        group += (group.empty() ? "" : ", ") + items[j].first;
        done[j] = true;
      }
    out += (out.empty() ? "" : "; ") + group + " (from " + items[i].second + ")";
  }
  return out;
}

// Writes a step's tape as DOT and, with graphviz, SVG (both atomically); returns what was written.
std::string write_tape(const std::string& dot_text, const std::string& dot) {
  nn::write_file_atomic(dot, dot_text);
  const std::string svg = dot.substr(0, dot.size() - 4) + ".svg", tmp = svg + ".tmp";
  auto quote = [](const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  if (std::system("command -v dot >/dev/null 2>&1") != 0) return dot + " (install graphviz for an SVG)";
  if (std::system(fmt::format("dot -Tsvg {} -o {}", quote(dot), quote(tmp)).c_str()) != 0) {
    fs::remove(tmp);
    return dot + " (graphviz's dot failed on it: no SVG)";
  }
  fs::rename(tmp, svg);
  return dot + " and " + svg;
}

}  // namespace

void add_inspect(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  o->model.image_size = "";
  o->model.channels = 0;
  CLI::App* cmd =
      app.add_subcommand("inspect", "One training step shown layer by layer: activations, gradients, WN and BN");
  add_model_options(cmd, o->model);
  cmd->add_option("--data", o->data, "Data set for the real batch (with --checkpoint: its run's)")->capture_default_str();
  cmd->add_option("--checkpoint", o->checkpoint,
                  "Inspect this checkpoint's model, with its RMSProp state and its run's lr, eps, loss and protocol");
  cmd->add_option("--compare", o->compare, "Several variants side by side, e.g. none,batch,weight");
  cmd->add_option("--batch", o->batch, "Batch size")->capture_default_str()->check(in_range(1, 4096));
  cmd->add_option("--seed", o->seed, "Seed")->capture_default_str()->check(seed_value());
  cmd->add_option("--out", o->out, "Folder for the tapes of both steps (DOT, and SVG with graphviz)")
      ->capture_default_str()
      ->check(non_empty());
  cmd->add_option("--json", o->json, "Also write every number of the tables (and more) to this JSON file")
      ->check(output_file());
  cmd->add_option("--csv", o->csv, "Also write them as tidy CSV rows variant,step,layer,quantity,value")
      ->check(output_file());
  cmd->add_option("--device", o->device, "cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_option("--lr", o->lr, "Learning rate of the step's RMSProp (the ResNet: 2e-5)")->capture_default_str()
      ->check(above(0, 1e6));
  cmd->add_option("--rms-eps", o->rms_eps, "RMSProp epsilon (the ResNet: 1e-8)")->capture_default_str()
      ->check(above(0, 1));
  cmd->add_option("--loss", o->loss, "bce | ls")->capture_default_str()->check(CLI::IsMember({"bce", "ls"}));
  cmd->add_option("--protocol", o->protocol, "alternating | simultaneous (the ResNet's default)")
      ->capture_default_str()
      ->check(CLI::IsMember({"alternating", "simultaneous"}));
  cmd->add_option("--run", o->run,
                  "Instead of a step: draw the gradient-flow trace of a finished run or study (trained with "
                  "--trace-grads) into --out (default RUN/grad_flow)");
  cmd->callback([o, cmd]() {
    if (!o->run.empty()) {
      for (const CLI::Option* opt : cmd->get_options())
        if (opt->count() > 0 && opt->get_name() != "--run" && opt->get_name() != "--out")
          throw std::invalid_argument(
              fmt::format("--run draws a recorded trace; {} belongs to inspecting a step", opt->get_name()));
      const std::string out = cmd->count("--out") ? o->out : o->run + "/grad_flow";
      {
        namespace fs = std::filesystem;
        const fs::path r = fs::weakly_canonical(fs::absolute(o->run)), w = fs::weakly_canonical(fs::absolute(out));
        for (const char* sub : {"", "checkpoints", "samples", "eval", "report", "runs"})
          if (w == (std::string(sub).empty() ? r : r / sub))
            throw std::invalid_argument(fmt::format("--out {} would write the pictures among the files of {}; give "
                                                    "a folder of their own (the default is {}/grad_flow)",
                                                    out, o->run, o->run));
      }
      const std::string page = eval::write_grad_flow_page(o->run, out);
      fmt::print("gradient flow of {}: {} (pictures and their data in {})\n", o->run, page, out);
      return;
    }
    check_distinct_outputs({{"--json", o->json}, {"--csv", o->csv}}, o->out, {"tape_"});
    check_not_input("--json", o->json, {o->checkpoint}, o->data);
    check_not_input("--csv", o->csv, {o->checkpoint}, o->data);
    if (std::filesystem::exists(std::filesystem::path(o->out) / "config.json") ||
        std::filesystem::exists(std::filesystem::path(o->out) / "study.json"))
      throw std::invalid_argument(fmt::format("--out {} holds a run or a study; give the tapes a folder of their own", o->out));
    const Device device = Device::parse(o->device);
    std::vector<std::string> variants =
        o->compare.empty() ? std::vector<std::string>{o->model.norm} : gan::split_list(o->compare);
    if (!o->checkpoint.empty() && variants.size() > 1)
      throw std::invalid_argument("--compare builds fresh models; it cannot be combined with --checkpoint");
    nn::TensorFile ckpt;
    if (!o->checkpoint.empty()) {
      nn::require_regular_file(o->checkpoint, "checkpoint");
      ckpt = nn::load_safetensors(o->checkpoint);
    }
    gan::Gan from_checkpoint;
    if (!o->checkpoint.empty()) from_checkpoint = gan::gan_from_checkpoint(ckpt);
    // The step trains as `wngan train` would: the options given, else the run's settings,
    // else the architecture's defaults.
    std::optional<gan::TrainConfig> run_data;
    const SettingSources src = resolve_settings(
        cmd, *o, o->checkpoint.empty() ? o->model.arch : gan::arch_name(from_checkpoint.config.arch), &run_data);
    gan::InspectSettings st;
    st.lr = o->lr;
    st.rms_eps = o->rms_eps;
    st.loss = gan::parse_loss(o->loss);
    st.protocol = gan::parse_protocol(o->protocol);
    st.seed = o->seed;
    fs::create_directories(o->out);
    std::vector<gan::Inspection> all;
    std::string optimizer;
    for (auto& v : variants) {
      gan::Gan g;
      if (!o->checkpoint.empty()) {
        g = from_checkpoint;
      } else {
        ModelOptions m = o->model;
        m.norm = v;
        if (m.image_size.empty() || m.channels == 0) {
          auto d = gan::open_dataset(o->data);
          if (m.image_size.empty()) m.image_size = std::to_string(d->height);
          if (m.channels == 0) m.channels = d->channels;
        }
        Generator init(o->seed);
        g = gan::build_gan(m.config(), init);
      }
      auto data = run_data ? gan::open_dataset(o->data, g.config.height, g.config.width, g.config.channels,
                                               run_data->crop_h, run_data->crop_w, run_data->stretch)
                           : gan::open_dataset(o->data, g.config.height, g.config.width, g.config.channels);
      g.G->to(device);
      g.D->to(device);
      gan::GanOptimizers opt = gan::make_optimizers(g, st.lr, st.rms_eps);
      if (o->checkpoint.empty()) {
        optimizer = "fresh RMSProp (fresh models)";
      } else if (gan::has_optimizer_state(ckpt)) {
        gan::restore_optimizers(ckpt, *opt.g, *opt.d);
        optimizer = fmt::format("RMSProp state restored from the checkpoint (G: {} steps, D: {} steps)",
                                opt.g->steps(), opt.d->steps());
      } else {
        optimizer = "fresh RMSProp: the checkpoint holds no optimizer state (the update shown is a first step's)";
      }
      const Tensor real = gan::inspect_batch(*data, o->batch, o->seed).to(device);
      all.push_back(gan::inspect_step(g, opt, real, st));
      fmt::print("{}", format_inspection(all.back()));
      const std::string stem =
          fmt::format("{}/tape_{}_{}", o->out, gan::arch_name(g.config.arch), gan::norm_name(g.config.norm));
      fmt::print("  tape of the D step: {}\n", write_tape(all.back().tape_d, stem + "_D.dot"));
      fmt::print("  tape of the G step: {}\n", write_tape(all.back().tape_g, stem + "_G.dot"));
    }
    if (all.size() > 1) fmt::print("{}", format_compare(all));
    fmt::print("{}", inspect_legend());
    fmt::print("\nThe step: gan_step as in training, {}; {}; real batch of {} images from {} (from {}, seed {}).\n",
               describe_sources(*o, src), optimizer, o->batch, o->data, src.data, o->seed);
    const nlohmann::json settings = {{"lr", st.lr},
                                     {"rms_eps", st.rms_eps},
                                     {"loss", o->loss},
                                     {"protocol", o->protocol},
                                     {"seed", o->seed},
                                     {"batch", o->batch},
                                     {"data", o->data},
                                     {"checkpoint", o->checkpoint},
                                     {"optimizer", optimizer},
                                     {"sources",
                                      {{"lr", src.lr}, {"rms_eps", src.rms_eps}, {"loss", src.loss},
                                       {"protocol", src.protocol}, {"data", src.data}}}};
    if (!o->json.empty()) {
      nn::write_file_atomic(o->json, gan::inspection_json(all, settings).dump(2) + "\n");
      fmt::print("every number: {}\n", o->json);
    }
    if (!o->csv.empty()) {
      nn::write_file_atomic(o->csv, gan::inspection_csv(all));
      fmt::print("every number: {}\n", o->csv);
    }
  });
}

}  // namespace wn::app
